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
    """The inverse of :func:`dumps` (tuples come back as tuples)."""
    return _decode(json.loads(text))


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
            low = np.asarray(_unbounds(data["low"]), dtype=dtype).reshape(shape)
            high = np.asarray(_unbounds(data["high"]), dtype=dtype).reshape(shape)
            return spaces.Box(low, high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return spaces.Discrete(int(data["n"]), start=int(data["start"]))
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]))
        if kind == "MultiBinary":
            return spaces.MultiBinary(data["n"])
        if kind == "Dict":
            return spaces.Dict({str(k): space_from_data(v) for k, v in data["spaces"]})
    except (KeyError, TypeError, ValueError) as error:
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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = [line.strip() for line in str(error).splitlines() if "Unsupported global" in line]
        if not found:
            raise ValueError(f"{path}: not a readable {what}") from None
        raise ValueError(f"{path}: refused to load: not a plain-data {what} (it holds pickled objects, "
                         f"which could run code when loaded; {found[0].rstrip('.')})") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable {what}: {error}") from None
