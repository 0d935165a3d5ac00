"""Model files that are safe to open: plain data only, never pickled code.

Every model file sysgym writes (PPO checkpoints, distilled trees, explainers, reference policies)
keeps its settings, spaces and metadata as JSON text and its weights as tensors, and is read
with ``torch.load(..., weights_only=True)`` (for torch files) or ``json`` — so opening a file
someone else made cannot run their code. Anything else is refused with a ``ValueError``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

_TUPLE = "__tuple__"


def dumps(value: Any) -> str:
    """JSON text for settings made of None, bool, int, float, str, lists, tuples and str-keyed dicts."""
    return json.dumps(_encode(value, "value"), allow_nan=False, sort_keys=True)


def loads(text: str) -> Any:
    """The inverse of :func:`dumps` (tuples come back as tuples); ValueError on malformed text."""
    return _decode(load_json_text(text, "model settings"))


# Files read from users are bounded before anything is allocated from them.
MAX_FILE_BYTES = 256 * 2**20        # any model or data file sysgym reads
MAX_INFLATED_BYTES = 256 * 2**20    # a torch (zip) file's members, added up, once inflated
MAX_JSON_DEPTH = 64                 # nesting of JSON text inside a model file or export
MAX_PARAMETERS = 20_000_000         # weights of one network built from a file's settings (80 MB)
MAX_SPACE_SIZE = 1_000_000          # actions of a Discrete space, elements of a Box, read from a file


def load_json_text(text: str | bytes, where: str) -> Any:
    """``json.loads`` with a nesting bound: deep or malformed text is a ValueError naming ``where``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected JSON text, found {type(text).__name__}")
    depth = _max_nesting(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where}: JSON nested {depth} levels deep (at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: malformed JSON at line {error.lineno}, column {error.colno}: "
                         f"{error.msg}") from None


def _max_nesting(text: str) -> int:
    # an upper bound of the nesting (brackets inside strings count too): cheap and never recursive
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_file_size(path: Path, what: str, limit: int | None = None) -> None:
    """A ValueError if ``path`` is larger than ``limit`` bytes (default ``MAX_FILE_BYTES``),
    checked before it is read."""
    limit = MAX_FILE_BYTES if limit is None else limit
    size = Path(path).stat().st_size
    if size > limit:
        raise ValueError(f"{path}: {size / 2**20:.0f} MiB is too large for a {what} "
                         f"(at most {limit / 2**20:.0f} MiB)")


def check_finite_tensors(value: Any, path: str | Path, what: str) -> None:
    """A ValueError naming the first tensor or array in ``value`` holding NaN or infinity."""
    import torch

    def walk(v: Any, key: str) -> None:
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise ValueError(f"{path}: {what} holds non-finite values (NaN or infinity) in {key}")
        elif isinstance(v, np.ndarray):
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                raise ValueError(f"{path}: {what} holds non-finite values (NaN or infinity) in {key}")
        elif isinstance(v, dict):
            for k, item in v.items():
                walk(item, f"{key}.{k}" if key else str(k))
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, f"{key}[{i}]")

    walk(value, "")


def check_parameter_count(count: int, where: str) -> None:
    """A ValueError when a network described by a file or setting would exceed ``MAX_PARAMETERS``."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{where}: the network would have {count:,} parameters "
                         f"(at most {MAX_PARAMETERS:,}); lower hidden_sizes")


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not finite and cannot be stored")
        return float(value)
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: dict keys must be strings to be stored, got {list(value)!r}")
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    raise ValueError(f"{where}: a {type(value).__name__} cannot be stored in a model file "
                     "(only numbers, strings, booleans, None, lists, tuples and dicts)")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode(v) for v in value[_TUPLE])
        return {k: _decode(v) for k, v in value.items()}
    return value


def space_to_data(space: spaces.Space) -> dict[str, Any]:
    """A Gymnasium space as plain data (Box, Discrete, MultiDiscrete, MultiBinary, Dict)."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": space.dtype.str,
                "low": _bounds(space.low), "high": _bounds(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "dtype": space.dtype.str}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": [[k, space_to_data(v)] for k, v in space.spaces.items()]}
    raise ValueError(f"cannot store a {type(space).__name__} space")


def space_from_data(data: Any) -> spaces.Space:
    """The space described by :func:`space_to_data` output (ValueError on anything malformed)."""
    try:
        kind = data["type"]
        if kind == "Box":
            dtype = np.dtype(data["dtype"])
            shape = tuple(int(s) for s in data["shape"])
            if any(s < 0 for s in shape) or math.prod(shape) > MAX_SPACE_SIZE:
                raise ValueError(f"Box shape {shape} is negative or has over {MAX_SPACE_SIZE:,} elements")
            low = np.asarray(_unbounds(data["low"]), dtype=dtype).reshape(shape)
            high = np.asarray(_unbounds(data["high"]), dtype=dtype).reshape(shape)
            return spaces.Box(low, high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            n = int(data["n"])
            if not 1 <= n <= MAX_SPACE_SIZE:
                raise ValueError(f"Discrete({n}) must have between 1 and {MAX_SPACE_SIZE:,} actions")
            return spaces.Discrete(n, start=int(data["start"]))
        if kind == "MultiDiscrete":
            if len(data["nvec"]) > MAX_SPACE_SIZE or max(map(int, data["nvec"]), default=1) > MAX_SPACE_SIZE:
                raise ValueError(f"MultiDiscrete nvec larger than {MAX_SPACE_SIZE:,}")
            return spaces.MultiDiscrete(np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]))
        if kind == "MultiBinary":
            return spaces.MultiBinary(data["n"])
        if kind == "Dict":
            return spaces.Dict({str(k): space_from_data(v) for k, v in data["spaces"]})
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"malformed space description: {error}") from None
    raise ValueError(f"unknown space type {data.get('type')!r}" if isinstance(data, dict)
                     else f"malformed space description: {data!r}")


def same_layout(a: spaces.Space, b: spaces.Space) -> bool:
    """Whether a network built for space ``a`` reads space ``b``: same kind, keys, shape, dtype and
    action count (Box bounds may differ: ABR's depend on its traces, which evaluation changes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Dict):
        return list(a.spaces) == list(b.spaces) and all(same_layout(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Discrete):
        return int(a.n) == int(b.n) and int(a.start) == int(b.start)
    return a.shape == b.shape and a.dtype == b.dtype


def describe_space(space: spaces.Space) -> str:
    """A short name for a space in error messages: ``Discrete(11)``, ``Box(6, 8)``, ``Dict(...)``."""
    if isinstance(space, spaces.Discrete):
        return f"Discrete({int(space.n)})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe_space(v)}" for k, v in space.spaces.items()) + ")"
    return f"{type(space).__name__}{tuple(space.shape)}"


def _bounds(a: np.ndarray) -> list[Any]:
    # JSON has no infinity: store it as a string
    flat = np.asarray(a, dtype=np.float64).ravel()
    return [x if math.isfinite(x) else ("inf" if x > 0 else "-inf") for x in flat.tolist()]


def _unbounds(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


def load_torch_file(path: str | Path, what: str) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers only.

    A file holding pickled objects (which could run code when loaded) is refused with a
    ``ValueError`` naming the file, without executing anything.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    check_file_size(path, what)
    _check_inflated_size(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = [line.strip() for line in str(error).splitlines() if "Unsupported global" in line]
        if not found:
            raise ValueError(f"{path}: not a readable {what}") from None
        raise ValueError(f"{path}: refused to load: not a plain-data {what} (it holds pickled objects, "
                         f"which could run code when loaded; {found[0].rstrip('.')})") from None
    except (RuntimeError, EOFError, OSError, IndexError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a readable {what}: {first}") from None


def check_inflated_size(path: Path, what: str) -> None:
    """A ValueError if the zip archive ``path`` would inflate past ``MAX_INFLATED_BYTES`` (a zip
    bomb); files that are not zip archives pass (their own reader refuses them)."""
    _check_inflated_size(path, what)


def _check_inflated_size(path: Path, what: str) -> None:
    # torch files are zip archives: refuse one that would inflate past the bound (a zip bomb)
    import zipfile

    if not zipfile.is_zipfile(path):
        return  # torch's legacy format or not a torch file at all: torch.load refuses it
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable {what}: {error}") from None
    if total > MAX_INFLATED_BYTES:
        raise ValueError(f"{path}: inflates to {total / 2**20:.0f} MiB, too large for a {what} "
                         f"(at most {MAX_INFLATED_BYTES / 2**20:.0f} MiB)")
