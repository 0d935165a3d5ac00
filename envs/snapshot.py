"""Snapshots of a kernel env's state: what identifies the configuration they come from, and the
checks that make ``set_state`` safe for any input.

A snapshot (``get_state()``) is a plain dict::

    {"format": "sysgym-state/1", "class": "DeepRMVectorEnv", "num_envs": B,
     "config": "<sha256 of the env's configuration>", "arrays": {name: ndarray, ...}}

``config`` is a fingerprint of everything the kwargs resolved to (including the contents of
loaded traces, workloads and task sets), so a snapshot of an env with another configuration is
refused even when its arrays have the same shapes. The family's ``_check_state`` then checks every
index and count against its bounds, so an edited snapshot cannot make a kernel read or write
outside its arrays.

A snapshot also carries a *seal*: a keyed hash of its arrays under a key that lives only in this
process. A snapshot restored unchanged in the process that took it (the forks of planners,
distillation and explainers) is known to be the env's own state and skips the value checks; an
edited snapshot, or one unpickled in another process, is checked in full.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from gymnasium import spaces

FORMAT = "sysgym-state/1"
_KEYS = ("format", "class", "num_envs", "config", "arrays")
_SEAL_KEY = os.urandom(32)  # never leaves this process: a seal cannot be forged elsewhere


def layout(config: str, arrays: dict[str, np.ndarray]) -> bytes:
    """What a seal covers besides the values: the configuration and each array's name, dtype, shape."""
    return (config + "".join(f"|{k}:{a.dtype.str}:{a.shape}" for k, a in arrays.items())).encode()


def seal(prefix: bytes, arrays: Iterable[np.ndarray]) -> str:
    """Keyed digest of ``prefix`` (see :func:`layout`) and the arrays' bytes, in order."""
    digest = hashlib.blake2b(prefix, key=_SEAL_KEY, digest_size=16)
    for a in arrays:
        digest.update(a)  # C-contiguous arrays only: anything else raises and is not sealed
    return digest.hexdigest()


def sealed(state: dict[str, Any], prefix: bytes, names: Iterable[str]) -> bool:
    """Whether ``state`` is unchanged since this process sealed it (arrays already shape-checked)."""
    mark = state.get("seal")
    if not isinstance(mark, str):
        return False
    arrays = state["arrays"]
    try:
        return hmac.compare_digest(mark, seal(prefix, (arrays[k] for k in names)))
    except (BufferError, ValueError, TypeError):
        return False


def fingerprint(obj: Any) -> str:
    """A stable hex digest of a configuration object (dataclasses, containers, arrays, scalars)."""
    digest = hashlib.sha256()
    _feed(digest, obj, depth=0)
    return digest.hexdigest()


def _feed(digest: Any, obj: Any, depth: int) -> None:
    if depth > 64:
        raise ValueError("configuration nested too deeply to fingerprint")
    put = digest.update
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        put(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, np.ndarray):
        put(f"nd:{obj.dtype.str}:{obj.shape};".encode())
        put(np.ascontiguousarray(obj).tobytes() if obj.dtype != object else repr(obj.tolist()).encode())
    elif isinstance(obj, enum.Enum):
        put(f"enum:{type(obj).__name__}.{obj.name};".encode())
    elif isinstance(obj, os.PathLike):
        put(f"path:{os.fspath(obj)};".encode())
    elif isinstance(obj, (list, tuple)):
        put(f"{type(obj).__name__}[{len(obj)}](".encode())
        for item in obj:
            _feed(digest, item, depth + 1)
        put(b");")
    elif isinstance(obj, (set, frozenset)):
        _feed(digest, sorted(repr(x) for x in obj), depth + 1)
    elif isinstance(obj, dict):
        put(f"dict[{len(obj)}](".encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key, depth + 1)
            _feed(digest, obj[key], depth + 1)
        put(b");")
    elif dataclasses.is_dataclass(obj):
        put(f"dc:{type(obj).__qualname__}(".encode())
        for f in dataclasses.fields(obj):
            put(f.name.encode())
            _feed(digest, getattr(obj, f.name), depth + 1)
        put(b");")
    elif hasattr(obj, "__dict__"):
        put(f"obj:{type(obj).__qualname__}(".encode())
        _feed(digest, vars(obj), depth + 1)
        put(b");")
    else:
        put(f"repr:{type(obj).__qualname__}:{obj!r};".encode())


def check_envelope(state: Any, cls_name: str, num_envs: int, config: str) -> dict[str, np.ndarray]:
    """The arrays of ``state`` if it is a snapshot of this env's class, size and configuration."""
    if not isinstance(state, dict):
        raise ValueError(f"set_state expects a snapshot dict returned by get_state(), got {type(state).__name__}")
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise ValueError(f"not a sysgym snapshot: missing {', '.join(map(repr, missing))} "
                         f"(expected the dict returned by get_state())")
    if state["format"] != FORMAT:
        raise ValueError(f"snapshot format {state['format']!r} is not {FORMAT!r}")
    if state["class"] != cls_name or state["num_envs"] != num_envs:
        raise ValueError(f"snapshot was taken from {state['class']} with {state['num_envs']} sub-env(s), "
                         f"not {cls_name} with {num_envs}")
    if state["config"] != config:
        raise ValueError(f"snapshot was taken from a {cls_name} with another configuration "
                         f"(config fingerprint {str(state['config'])[:12]}..., this env's {config[:12]}...): "
                         "different kwargs, traces or workload")
    arrays = state["arrays"]
    if not isinstance(arrays, dict):
        raise ValueError(f"snapshot 'arrays' must be a dict of numpy arrays, got {type(arrays).__name__}")
    return arrays


def check_arrays_match(live: dict[str, np.ndarray], saved: dict[str, Any]) -> None:
    """Same names, shapes and dtypes as the live state arrays."""
    if set(saved) != set(live):
        extra, missing = sorted(set(saved) - set(live)), sorted(set(live) - set(saved))
        raise ValueError(f"snapshot arrays do not match this env: missing {missing}, unexpected {extra}")
    for key, dst in live.items():
        src = saved[key]
        if not isinstance(src, np.ndarray):
            raise ValueError(f"snapshot array {key!r} is a {type(src).__name__}, not a numpy array")
        if src.shape != dst.shape or src.dtype != dst.dtype:
            raise ValueError(f"snapshot array {key!r} has shape {src.shape} {src.dtype}, "
                             f"expected {dst.shape} {dst.dtype}")


def check_range(arrays: dict[str, np.ndarray], key: str, lo: Any, hi: Any) -> None:
    """Every element of ``arrays[key]`` lies in ``[lo, hi]`` (bounds broadcast; NaN fails)."""
    a = arrays[key]
    bad = ~((a >= lo) & (a <= hi))
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        lo_v = np.broadcast_to(lo, a.shape)[where]
        hi_v = np.broadcast_to(hi, a.shape)[where]
        raise ValueError(f"snapshot array {key!r}{list(where)} = {_plain(a[where])} is outside "
                         f"[{_plain(lo_v)}, {_plain(hi_v)}]")


def check_flags(arrays: dict[str, np.ndarray], *keys: str) -> None:
    """The arrays ``keys`` hold only 0 and 1."""
    for key in keys:
        check_range(arrays, key, 0, 1)


def check_finite(arrays: dict[str, np.ndarray], *keys: str) -> None:
    """No NaN or infinity in the arrays ``keys``."""
    for key in keys:
        a = arrays[key]
        if not np.all(np.isfinite(a)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(f"snapshot array {key!r}{list(where)} = {_plain(a[where])} is not finite")


def check_in_space(arrays: dict[str, np.ndarray], key: str, space: spaces.Space) -> None:
    """A batch of observations lies inside ``space`` (Box bounds; finite)."""
    if isinstance(space, spaces.Box):
        check_finite(arrays, key)
        check_range(arrays, key, space.low, space.high)
    elif isinstance(space, spaces.MultiBinary):
        check_flags(arrays, key)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
