"""Reading the text input files of every family (traces, workloads, videos, task graphs).

One place decides how a data file is opened and how its errors read, so every reader reports
``file:line: field N (name): what is wrong`` and none can be crashed by the bytes it is given:

* the file must exist and be a regular file (a dangling symlink is named as such);
* it must be UTF-8 text (a leading byte-order mark is skipped); the first undecodable line is named;
* blank lines and lines starting with ``#`` are skipped; fields are whitespace-separated;
* numbers are parsed in Python and range-checked (:mod:`sysgym.envs.validate`) before any cast.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .validate import FLOAT_MAX

# The largest input file any reader accepts: a bound on what a file can make an env allocate.
MAX_FILE_BYTES = 256 * 2**20
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it is a readable regular file; else ``FileNotFoundError``/``ValueError``."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise FileNotFoundError(f"{what} {path} is a dangling symbolic link (to {os.readlink(path)})")
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {what} of {size} bytes exceeds the {MAX_FILE_BYTES} byte limit")
    return path


def folder_files(folder: str | os.PathLike, what: str) -> list[Path]:
    """The visible entries of ``folder``, sorted by name; each must be a regular file.

    Hidden files (``.name``) are skipped, as documented; a subfolder or a dangling link is an error
    rather than being dropped silently.
    """
    folder = Path(folder)
    files = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        files.append(existing_file(entry, what))
    if not files:
        raise ValueError(f"{folder}: folder holds no {what} files")
    return files


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) for every line of a UTF-8 file (BOM skipped)."""
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text (byte {raw[err.start]:#04x} at "
                                 f"column {err.start + 1})") from None
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield lineno, text.rstrip("\r\n")


def data_lines(path: Path, comment: str = "#") -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank line that does not start with ``comment``."""
    for lineno, line in text_lines(path):
        text = line.strip()
        if text and not text.startswith(comment):
            yield lineno, text.split()


def expect_fields(path: Path, lineno: int, fields: list[str], names: tuple[str, ...]) -> None:
    """Refuse a line whose field count is not ``len(names)`` (extra columns are not ignored)."""
    if len(fields) != len(names):
        raise ValueError(f"{path}:{lineno}: expected {len(names)} field(s) ({' '.join(names)}), "
                         f"found {len(fields)}")


def number_field(path: Path, lineno: int, index: int, name: str, text: str, *,
                 lo: float | None = None, hi: float | None = FLOAT_MAX, lo_open: bool = False,
                 integral: bool = False) -> float | int:
    """Field ``index`` (1-based) of a line as a finite number in ``lo..hi`` (an int if ``integral``)."""
    where = f"{path}:{lineno}: field {index} ({name})"
    if integral and _DECIMAL.fullmatch(text):
        # whole numbers are read exactly (float() would round those above 2**53)
        if len(text) > 40:
            raise ValueError(f"{where} has too many digits: {text[:20]}...")
        exact = int(text)
        if lo is not None and (exact < lo or (lo_open and exact == lo)):
            raise ValueError(f"{where} must be {'>' if lo_open else '>='} {lo}: {text!r}")
        if hi is not None and exact > hi:
            raise ValueError(f"{where} must be <= {hi:g}: {text!r}")
        return exact
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where} is not finite: {text!r}")
    if integral and value != math.floor(value):
        raise ValueError(f"{where} must be a whole number: {text!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{where} must be {'>' if lo_open else '>='} {lo}: {text!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{where} must be <= {hi:g}: {text!r}")
    return int(value) if integral else value
