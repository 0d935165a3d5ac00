"""One validation layer for every numeric and choice input: kwargs, file fields, snapshot values.

Each function checks a value against a documented range *in Python* and returns it as a plain
Python ``int`` / ``float`` / ``str``, so that nothing out of range, NaN, infinite or too large for
a C type ever reaches a kernel. Errors are ``ValueError`` naming the input (``name`` is what the
user wrote: a kwarg, ``file:line: field``, or a snapshot array).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Largest magnitude a float kwarg may have unless a family documents a tighter range: far below
# where products and sums of a few such values overflow to inf.
FLOAT_MAX = 1e12


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = INT32_MAX) -> int:
    """``value`` as an int in ``[lo, hi]`` (bools and non-integral floats are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer{_range_text(lo, hi)}, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer{_range_text(lo, hi)}, got {value}")
    return value


def number(name: str, value: Any, lo: float | None = None, hi: float | None = FLOAT_MAX, *,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite float in the range ``lo..hi`` (``*_open``: the bound is excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number{_range_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    try:
        x = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large: {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if (lo is not None and (x < lo or (lo_open and x == lo))) or \
            (hi is not None and (x > hi or (hi_open and x == hi))):
        raise ValueError(f"{name} must be a number{_range_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return x


def probability(name: str, value: Any) -> float:
    """A float in [0, 1]."""
    return number(name, value, 0.0, 1.0)


def boolean(name: str, value: Any) -> bool:
    """``True``/``False`` (also numpy bools); anything else is refused rather than truth-tested."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def choice(name: str, value: Any, options: Sequence[Any]) -> Any:
    """``value`` if it is one of ``options``; otherwise a ValueError listing them."""
    try:
        ok = value in options
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        hint = suggestion(value, options) if isinstance(value, str) else ""
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}{hint}")
    return value


def number_pair(name: str, value: Any, lo: float | None = None, hi: float | None = FLOAT_MAX, *,
                lo_open: bool = False, integral: bool = False) -> tuple[float, float] | tuple[int, int]:
    """A ``(low, high)`` pair with ``low <= high``, each in ``lo..hi``; one number means ``(x, x)``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, Real, np.number)):
        raise ValueError(f"{name} must be a (low, high) pair or one number, got {value!r}")
    items = list(value) if isinstance(value, Iterable) else [value, value]
    if len(items) != 2:
        raise ValueError(f"{name} must be a (low, high) pair or one number, got {value!r}")
    if integral:
        a = integer(f"{name}[0]", items[0], None if lo is None else int(lo), None if hi is None else int(hi))
        b = integer(f"{name}[1]", items[1], None if lo is None else int(lo), None if hi is None else int(hi))
    else:
        a = number(f"{name}[0]", items[0], lo, hi, lo_open=lo_open)
        b = number(f"{name}[1]", items[1], lo, hi, lo_open=lo_open)
    if a > b:
        raise ValueError(f"{name}: low {a} > high {b}")
    return a, b


def suggestion(word: str, options: Iterable[Any]) -> str:
    """``"; did you mean 'x'?"`` for the nearest option, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class UnknownKwargError(TypeError, ValueError):
    """A kwarg the env does not take. A TypeError with Python's own wording, as libraries that probe
    optional kwargs (e.g. TorchRL's ``frameskip``) expect, and a ValueError like every input error."""


def check_kwargs(owner: str, builder: Callable[..., Any], kwargs: dict[str, Any],
                 extra: Iterable[str] = ()) -> None:
    """Refuse kwargs ``builder`` does not take (:class:`UnknownKwargError`), naming ``owner``, the
    nearest valid name and all of them."""
    params = inspect.signature(builder).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    valid = sorted({n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
                   | set(extra))
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        word = unknown[0]
        raise UnknownKwargError(f"{owner} got an unexpected keyword argument {word!r}"
                                f"{suggestion(word, valid)} (valid kwargs: {', '.join(valid)})")


def _range_text(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {_num(lo)}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {_num(hi)}"
    return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) or abs(x) < 1e6 else f"{x:g}"
