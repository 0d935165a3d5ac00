"""Labelled states (what DAgger aggregates) and the training signal a student is fit on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .critical import criticality, regrets

WEIGHTINGS = ("none", "viper")


@dataclass
class Samples:
    """States with their teacher labels: flat features ``X`` (n, F) float32, ``mask`` (n, A)
    bool, the teacher's action ``teacher`` (n,), optional action values ``q`` (n, A) (higher is
    better; NaN where unknown or invalid) and the DAgger ``iteration`` that collected each row."""

    X: np.ndarray
    mask: np.ndarray
    teacher: np.ndarray
    q: np.ndarray | None = None
    iteration: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)
        self.teacher = np.asarray(self.teacher, dtype=np.int64)
        n = len(self.X)
        if self.X.ndim != 2 or self.mask.shape[0] != n or self.teacher.shape != (n,):
            raise ValueError(f"samples need X (n, F), mask (n, A) and teacher (n,), got {self.X.shape}, "
                             f"{self.mask.shape}, {self.teacher.shape}")
        if n and (self.teacher.min() < 0 or self.teacher.max() >= self.mask.shape[1]):
            raise ValueError(f"teacher actions must lie in [0, {self.mask.shape[1] - 1}]")
        if self.q is not None:
            self.q = np.asarray(self.q, dtype=np.float64)
            if self.q.shape != self.mask.shape:
                raise ValueError(f"q must be (n, A) = {self.mask.shape}, got {self.q.shape}")
        self.iteration = np.zeros(n, dtype=np.int64) if self.iteration is None else \
            np.asarray(self.iteration, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_actions(self) -> int:
        return self.mask.shape[1]

    def criticality(self) -> np.ndarray:
        if self.q is None:
            raise ValueError("these samples have no action values (criticality needs Q)")
        return criticality(self.q, self.mask)

    def subset(self, keep: np.ndarray) -> Samples:
        return Samples(self.X[keep], self.mask[keep], self.teacher[keep],
                       None if self.q is None else self.q[keep], self.iteration[keep])

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        with_q = [p.q is not None for p in parts]
        if any(with_q) and not all(with_q):
            raise ValueError("cannot aggregate samples with and without action values")
        cat = np.concatenate
        return Samples(cat([p.X for p in parts]), cat([p.mask for p in parts]), cat([p.teacher for p in parts]),
                       cat([p.q for p in parts]) if all(with_q) else None, cat([p.iteration for p in parts]))


@dataclass
class TrainingSet:
    """What a student minimises: ``costs[i, a]`` of choosing a in state i (already weighted);
    ``y`` and ``weights`` are the same signal as weighted labels (for CART)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    costs: np.ndarray

    @property
    def n_actions(self) -> int:
        return self.costs.shape[1]


def training_set(samples: Samples, weighting: str = "none") -> TrainingSet:
    """``"none"``: every state weighs 1 and a choice other than the teacher's costs 1.
    ``"viper"``: states weigh their criticality and each action costs its regret (VIPER's loss;
    needs action values)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if len(samples) == 0:
        raise ValueError("no samples to train on")
    y = samples.teacher
    if weighting == "none":
        weights = np.ones(len(samples))
        costs = (np.arange(samples.n_actions)[None, :] != y[:, None]).astype(np.float64)
    else:
        if samples.q is None:
            raise ValueError("weighting='viper' needs action values (Q) for every state")
        weights = samples.criticality()
        costs = regrets(samples.q, samples.mask)
        if not np.any(weights > 0):
            raise ValueError("every state has criticality 0: VIPER weights leave nothing to learn")
    return TrainingSet(samples.X, y, weights, costs)
