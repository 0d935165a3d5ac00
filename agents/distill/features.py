"""Observations as flat feature rows, their names, and threshold predicates over them.

Students see the flattened observation (C order; a Dict's entries in its key order, as
``gymnasium.spaces.flatten``), named by ``env.unwrapped.feature_names`` where the env has them
(``x[i]`` otherwise). Box, MultiBinary and MultiDiscrete observations and Dicts of them are
supported.

Optimal trees and Boolean rules search over *predicates* ``x[f] <= t``: for each feature the
midpoints between consecutive distinct training values (a 0/1 feature has the single threshold
0.5), thinned to at most ``max_thresholds`` per feature at evenly spaced quantiles of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

Layout = tuple[tuple[Any, tuple[int, ...]], ...]   # ((key or None, shape), ...)
_FLAT = (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)


def observation_layout(space: spaces.Space) -> Layout:
    """How an observation flattens: ``((None, shape),)`` for an array space, ``((key, shape), ...)``
    in the Dict's order (gymnasium's flatten order) for a Dict of array spaces."""
    if isinstance(space, _FLAT):
        return ((None, tuple(int(s) for s in space.shape)),)
    if isinstance(space, spaces.Dict) and space.spaces and all(isinstance(v, _FLAT) for v in space.spaces.values()):
        return tuple((str(k), tuple(int(s) for s in v.shape)) for k, v in space.spaces.items())
    raise ValueError(f"students read Box, MultiBinary or MultiDiscrete observations (or a Dict of them), "
                     f"not {space}")


def as_layout(value: Any) -> Layout:
    """A layout, or a plain shape such as ``(123,)`` meaning ``((None, (123,)),)``."""
    value = tuple(value)
    if all(isinstance(v, (int, np.integer)) for v in value):
        return ((None, tuple(int(v) for v in value)),)
    return tuple((None if k is None else str(k), tuple(int(s) for s in shape)) for k, shape in value)


def layout_size(layout: Layout) -> int:
    return sum(int(np.prod(shape)) for _, shape in layout)


def flatten(obs: Any, layout: Layout) -> tuple[np.ndarray, bool]:
    """``obs`` as (n, F) float32 rows and whether it was a batch (leading sub-env dimension)."""
    if layout[0][0] is None:
        return _flatten_array(obs, layout[0][1])
    if not isinstance(obs, dict) or set(obs) != {k for k, _ in layout}:
        raise ValueError(f"expected a dict observation with keys {[k for k, _ in layout]}")
    parts = [_flatten_array(obs[k], shape) for k, shape in layout]
    if len({len(x) for x, _ in parts}) != 1 or len({b for _, b in parts}) != 1:
        raise ValueError("the entries of a dict observation disagree on the batch size")
    return np.concatenate([x for x, _ in parts], axis=1), parts[0][1]


def _flatten_array(obs: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    arr = np.asarray(obs)
    if arr.shape == shape:
        return arr.reshape(1, -1).astype(np.float32), False
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        return arr.reshape(len(arr), -1).astype(np.float32), True
    raise ValueError(f"observation of shape {arr.shape} does not match {shape} or (B, *{shape})")


def feature_names(env: Any, size: int) -> tuple[str, ...]:
    """``env.unwrapped.feature_names`` when it has ``size`` entries, else ``x[0]``, ``x[1]``, ..."""
    names = getattr(getattr(env, "unwrapped", env), "feature_names", None)
    if names is not None and len(names) == size:
        return tuple(str(n) for n in names)
    return tuple(f"x[{i}]" for i in range(size))


def action_names(env: Any, n: int) -> tuple[str, ...]:
    """``env.unwrapped.action_names`` when present (``config.type_names`` for appointments;
    ``slot{i}`` and ``void`` for DeepRM), else the action indices as strings."""
    base = getattr(env, "unwrapped", env)
    for names in (getattr(base, "action_names", None), getattr(getattr(base, "config", None), "type_names", None)):
        if names is not None and len(names) == n:
            return tuple(str(a) for a in names)
    void = getattr(getattr(base, "batched", base), "void_action", None)
    if isinstance(void, int) and void == n - 1:
        return tuple(f"slot{i}" for i in range(void)) + ("void",)
    return tuple(str(a) for a in range(n))


def boolean_columns(X: np.ndarray) -> np.ndarray:
    """(F,) bool: the columns of ``X`` holding only 0 and 1."""
    X = np.asarray(X)
    return np.all((X == 0) | (X == 1), axis=0) if len(X) else np.zeros(X.shape[1], dtype=bool)


@dataclass
class Predicates:
    """Candidate tests ``x[feature[p]] <= threshold[p]``; ``boolean[f]``: feature f took only 0/1."""

    feature: np.ndarray
    threshold: np.ndarray
    boolean: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, max_thresholds: int | None = None) -> Predicates:
        """Midpoints of consecutive distinct values of every column of ``X`` (see module doc)."""
        if max_thresholds is not None and max_thresholds < 1:
            raise ValueError(f"max_thresholds must be >= 1 or None, got {max_thresholds}")
        X = np.asarray(X, dtype=np.float32)
        features, thresholds = [], []
        boolean = np.zeros(X.shape[1], dtype=bool)
        for f in range(X.shape[1]):
            column = X[:, f].astype(np.float64)
            values = np.unique(column)
            boolean[f] = bool(np.all((values == 0) | (values == 1)))
            if len(values) < 2:
                continue
            mids = (values[:-1] + values[1:]) / 2.0
            if max_thresholds is not None and len(mids) > max_thresholds:
                # the midpoints nearest to evenly spaced quantiles of the data
                qs = np.quantile(column, (np.arange(max_thresholds) + 0.5) / max_thresholds)
                mids = np.unique(mids[np.abs(mids[None, :] - qs[:, None]).argmin(axis=1)])
            features.append(np.full(len(mids), f))
            thresholds.append(mids)
        if not features:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0), boolean)
        return cls(np.concatenate(features).astype(np.int64), np.concatenate(thresholds), boolean)

    def __len__(self) -> int:
        return len(self.feature)

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """(n, P) bool: whether each row satisfies each predicate."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        return X[:, self.feature] <= self.threshold[None, :]
