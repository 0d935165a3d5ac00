"""Per-component scaling of returns to [0, 1], fitted on the training data and stored with the model.

For component c the bounds are ``lo_c = min(0, min of its training returns)`` and
``hi_c = max(0, max of them)``; a return x maps to ``(x - lo_c) / (hi_c - lo_c)``. Zero is kept
inside the bounds so that the scale keeps the sign's meaning: a component that is never positive
(a penalty: rebuffering, latency, loss) maps 0 (no penalty) to 1 and its worst training return to
0; one that is never negative maps 0 to 0. A component whose training returns are all zero (a
weight of 0, e.g. DAG-EGS's slack) gets the span 1 and is flagged ``constant``: the explainer
then predicts exactly 0 with no spread for it. The predictor learns and predicts on this scale;
every output is transformed back to reward units (means by the inverse map, standard deviations
by the span).

:meth:`Normaliser.signed` is the return divided by the span: the scaled value for a component
that is never negative, the scaled value minus 1 for one that is never positive. CrystalBox's
alert thresholds (e.g. ABR: quality < 0.55, smoothness < -0.1, rebuffer < -0.25) are read on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Normaliser:
    """Bounds ``lo`` / ``hi`` (C,) per component; see the module docstring."""

    def __init__(self, lo: Any, hi: Any):
        lo, hi = np.asarray(lo, dtype=np.float64).ravel(), np.asarray(hi, dtype=np.float64).ravel()
        if lo.shape != hi.shape or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(lo > hi):
            raise ValueError(f"normaliser bounds must be finite with lo <= hi per component, got {lo}, {hi}")
        self.lo, self.hi = lo, hi
        span = hi - lo
        self.constant = span == 0
        self.span = np.where(self.constant, 1.0, span)

    @classmethod
    def fit(cls, returns: np.ndarray) -> Normaliser:
        x = np.asarray(returns, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0 or not np.all(np.isfinite(x)):
            raise ValueError("fit the normaliser on a non-empty (N, C) array of finite returns")
        return cls(np.minimum(x.min(axis=0), 0.0), np.maximum(x.max(axis=0), 0.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Reward units -> [0, 1] (outside for returns beyond the training bounds)."""
        return (np.asarray(x, dtype=np.float64) - self.lo) / self.span

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """[0, 1] -> reward units."""
        return np.asarray(z, dtype=np.float64) * self.span + self.lo

    def inverse_std(self, s: np.ndarray) -> np.ndarray:
        """A standard deviation on the [0, 1] scale -> reward units."""
        return np.asarray(s, dtype=np.float64) * self.span

    def signed(self, x: np.ndarray) -> np.ndarray:
        """Reward units -> return / span (the scale of the alert thresholds)."""
        return np.asarray(x, dtype=np.float64) / self.span

    def to_data(self) -> dict[str, list[float]]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}

    @classmethod
    def from_data(cls, data: Any) -> Normaliser:
        try:
            return cls(data["lo"], data["hi"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed normaliser data: {error}") from None
