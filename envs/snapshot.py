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


def is_sealed(state: Any) -> bool:
    """Whether ``state`` is a snapshot taken in this process and unchanged since."""
    if not isinstance(state, dict) or any(k not in state for k in _KEYS) or not isinstance(state["arrays"], dict):
        return False
    arrays = state["arrays"]
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        return False
    return sealed(state, layout(str(state["config"]), arrays), arrays)


def _rows_of(state: Any) -> dict[str, np.ndarray]:
    if not isinstance(state, dict) or any(k not in state for k in _KEYS):
        raise ValueError("expected a snapshot returned by a sysgym env's get_state()")
    n = state["num_envs"]
    for key, value in state["arrays"].items():
        if not isinstance(value, np.ndarray) or value.ndim == 0 or value.shape[0] != n:
            raise ValueError(f"snapshot array {key!r} has no leading sub-env dimension of size {n}; "
                             "its states cannot be taken row by row")
    return state["arrays"]


class RowBank:
    """Sub-env states (rows of snapshots of one env class and configuration), forkable in bulk.

    Every array of a snapshot has a leading sub-env dimension, and sub-envs are independent, so
    rows of snapshots can be picked and stacked into a snapshot for a vector env with as many
    sub-envs as rows: one state copied into many sub-envs (one per action and rollout) is how
    planners, distillation and explainers fork. A snapshot taken from a bank is sealed when every
    snapshot added to it was (so restoring it skips the value checks, as its source would have).
    """

    def __init__(self) -> None:
        self._envelope: dict[str, Any] | None = None
        self._parts: list[dict[str, np.ndarray]] = []
        self._merged: dict[str, np.ndarray] | None = None
        self._size = 0
        self._trusted = True

    def __len__(self) -> int:
        return self._size

    def append(self, state: dict[str, Any], rows: Any = None) -> None:
        """Keep sub-envs ``rows`` (all if None) of the snapshot ``state``."""
        arrays = _rows_of(state)
        envelope = {k: state[k] for k in ("format", "class", "config")}
        if self._envelope is None:
            self._envelope = envelope
        elif envelope != self._envelope:
            raise ValueError("all states of a bank must come from envs of one class and configuration")
        self._trusted = self._trusted and is_sealed(state)
        idx = np.arange(state["num_envs"]) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(idx):
            self._parts.append({k: v[idx] for k, v in arrays.items()})
            self._size += len(idx)
            self._merged = None

    def arrays(self) -> dict[str, np.ndarray]:
        """All kept rows, one array per state field (leading dimension: the states)."""
        if self._merged is None:
            if not self._parts:
                raise ValueError("the state bank is empty")
            keys = self._parts[0].keys()
            self._merged = {k: np.concatenate([p[k] for p in self._parts]) for k in keys}
            self._parts = [self._merged]
        return self._merged

    def take(self, idx: Any) -> dict[str, Any]:
        """A snapshot whose sub-env j is kept state ``idx[j]`` (repeats allowed)."""
        arrays = self.arrays()
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0 or idx.min() < 0 or idx.max() >= self._size:
            raise ValueError(f"state indices must be a non-empty list in [0, {self._size - 1}]")
        taken = {k: v[idx] for k, v in arrays.items()}
        state = {**self._envelope, "num_envs": len(idx), "arrays": taken}
        if self._trusted:
            state["seal"] = seal(layout(str(state["config"]), taken), taken.values())
        return state

    def subset(self, idx: Any) -> RowBank:
        """A bank holding only states ``idx``."""
        out = RowBank()
        out._envelope, out._trusted = self._envelope, self._trusted
        taken = self.take(idx)["arrays"]
        out._parts, out._merged, out._size = [taken], taken, len(np.asarray(idx))
        return out


def take_rows(state: dict[str, Any], rows: Any) -> dict[str, Any]:
    """The snapshot of sub-envs ``rows`` of ``state`` (in that order, repeats allowed), for a vector
    env of the same class and configuration with ``len(rows)`` sub-envs; sealed if ``state`` is."""
    bank = RowBank()
    bank.append(state)
    return bank.take(rows)
