"""Output folders of long commands: checked before any work, written atomically, kept on interrupt.

Every long command (``train``, ``benchmark``, ``explain``, ``distill``, ``dataset``) follows the
same three rules, so a user can stop any of them and keep what is done:

1. :func:`prepare_out_dir` checks ``--out`` before any work: it must be creatable and writable,
   and an existing non-empty folder is refused unless ``--force`` (overwrite) or ``--resume``
   (continue the run saved there) is given.
2. Files are written with :func:`atomic_write_text` / :func:`atomic_write_bytes` /
   :func:`atomic_replace` (a temporary file in the same folder, then ``os.replace``), so an
   interrupt never leaves a half-written file behind.
3. :func:`stop_signals` turns SIGINT, SIGTERM and SIGHUP into ``KeyboardInterrupt`` inside its block
   (and records them, for loops that check between units of work), so
   a command catches one exception for Ctrl-C and ``kill``, saves, and exits with status 130
   and a one-line message (:data:`INTERRUPTED_EXIT`). Work that must not stop half-way (an
   RLlib iteration, whose state a save would capture half-updated) runs inside
   :meth:`StopRequest.deferred`: the first signal lets it finish, a second stops it at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

INTERRUPTED_EXIT = 130  # the shell's status for a command stopped by SIGINT


def prepare_out_dir(out: str | Path, *, force: bool = False, resume: bool = False,
                    flag: str = "--out") -> Path:
    """Create ``out`` (a folder) and check it is writable, before any work is done.

    An existing folder holding files is refused with a ValueError unless ``force`` (its files
    may be overwritten) or ``resume`` (the run saved there continues) is set; a path that is an
    existing file, or cannot be created or written, is a ValueError naming it.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (force or resume):
        raise ValueError(f"{flag} {path}: folder is not empty; pass --force to overwrite its files"
                         " (or --resume where the command supports it)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot write there ({error.strerror or error})") from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    return atomic_replace(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_replace(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; a plain open() would not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StopRequest:
    """What :func:`stop_signals` yields: whether a stop signal arrived (``signal`` names it).

    A signal's ``KeyboardInterrupt`` can be lost when it lands inside code that swallows
    exceptions (a weakref callback or ``__del__``, e.g. in matplotlib); long loops call
    :meth:`check` between units of work, so such a stop still ends the command there.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.deferred_notice: str | None = None

    @contextlib.contextmanager
    def deferred(self, notice: str) -> Iterator[None]:
        """Inside the block the first stop signal is only recorded (and ``notice`` printed to
        stderr), so a unit of work that cannot be interrupted cleanly can finish; a second signal
        raises ``KeyboardInterrupt`` at once. Callers check :attr:`requested` after the block."""
        self.deferred_notice = notice
        try:
            yield
        finally:
            self.deferred_notice = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a stop signal arrived."""
        if self.signal is not None:
            raise KeyboardInterrupt(self.signal)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Inside the block, SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` (as Ctrl-C does)
    and are recorded on the yielded :class:`StopRequest`.

    Outside the main thread (where Python cannot install handlers) it only yields.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def interrupt(signum: int, frame: object) -> None:
        first = stop.signal is None
        stop.signal = signal.Signals(signum).name
        if first and stop.deferred_notice is not None:
            print(stop.deferred_notice, file=sys.stderr, flush=True)
            return
        raise KeyboardInterrupt(stop.signal)

    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, interrupt) for s in wanted}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def interrupted_message(command: str, kept: str) -> str:
    """The one line a command prints when stopped: what was kept and where."""
    return f"sysgym {command}: interrupted; {kept}"
