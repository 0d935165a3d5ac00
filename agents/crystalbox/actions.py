"""Which actions CrystalBox asks about, and how an action is fed to the predictor.

*Discrete* actions (``Discrete(n)``): at a sampled state the factual action (pi's choice) and
every other valid action (``info["action_mask"]``) when ``n <= max_actions``; for larger spaces
(DAG-EGS has N^2 edges) ``alternatives`` valid actions other than pi's, drawn uniformly without
replacement. The predictor sees the action as a one-hot vector (stored as an embedding row).

*Continuous* actions (``Box``): the factual action and a documented perturbation set, by default
five points spread evenly over the action range, applied to every dimension alike: for
``CC-v0``'s rate change in [-1, 1] that is {-1, -0.5, 0, 0.5, 1} (full decrease, half decrease,
hold, half increase, full increase). CrystalBox's public congestion-control code draws its
alternatives from {-1, 0, 1} around the factual action; this set contains those and the half
steps. Pass ``perturbations`` (an array of shape (k, *action_shape)) for another set. The
predictor sees the raw action vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.envs.validate import integer

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)   # fractions of each dimension's range


class ActionQueries:
    """The queried actions of one action space (see the module docstring)."""

    def __init__(self, space: spaces.Space, max_actions: int = 16, alternatives: int = 4,
                 perturbations: Any = None):
        self.space = space
        self.max_actions = integer("max_actions", max_actions, 1, 1_000_000)
        self.alternatives = integer("alternatives", alternatives, 0, 1_000_000)
        if isinstance(space, spaces.Discrete):
            self.discrete = True
            self.n = int(space.n)
            self.start = int(space.start)
            self.width = self.n
            self.perturbations = None
        elif isinstance(space, spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            self.discrete = False
            self.shape = tuple(space.shape)
            self.width = int(np.prod(self.shape))
            self.perturbations = self._perturbations(space, perturbations)
        else:
            raise ValueError(f"CrystalBox explains Discrete or bounded Box action spaces, got {space}")

    @staticmethod
    def _perturbations(space: spaces.Box, value: Any) -> np.ndarray:
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        if value is None:
            return np.stack([low + f * (high - low) for f in DEFAULT_GRID])
        grid = np.asarray(value, dtype=np.float64)
        if grid.ndim == len(space.shape):
            grid = grid[None]
        if grid.shape[1:] != space.shape or len(grid) == 0 or not np.all(np.isfinite(grid)):
            raise ValueError(f"perturbations must be finite actions of shape (k, {', '.join(map(str, space.shape))}), "
                             f"got shape {grid.shape}")
        if np.any(grid < low) or np.any(grid > high):
            raise ValueError(f"perturbations must lie in the action space [{space.low}, {space.high}]")
        return grid

    # ------------------------------------------------------------------ rounds of queries
    def rounds(self, factual: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Queries for a batch of B states: a list of (actions, valid) per round, round 0 being the
        factual actions. ``actions`` has one (steppable) action per sub-env; ``valid`` says which
        sub-envs really ask about it (others repeat their factual action as a filler)."""
        factual = np.asarray(factual)
        b = len(factual)
        out = [(factual.copy(), np.ones(b, dtype=bool))]
        if not self.discrete:
            for point in self.perturbations:
                out.append((np.broadcast_to(point.astype(factual.dtype), factual.shape).copy(), np.ones(b, dtype=bool)))
            return out
        index = factual.astype(np.int64) - self.start
        valid = np.ones((b, self.n), dtype=bool) if mask is None else np.asarray(mask).astype(bool).copy()
        valid[np.arange(b), index] = False          # the others: valid actions other than pi's
        if self.n <= self.max_actions:
            order = np.argsort(~valid, axis=1, kind="stable")    # valid alternatives first, by index
            count = valid.sum(axis=1)
            rounds = self.n - 1
        else:
            keys = np.where(valid, rng.random(valid.shape), np.inf)
            order = np.argsort(keys, axis=1)[:, :self.alternatives]
            count = np.minimum(valid.sum(axis=1), self.alternatives)
            rounds = self.alternatives
        for r in range(rounds):
            asked = r < count
            if not asked.any():
                break
            actions = np.where(asked, order[:, min(r, order.shape[1] - 1)], index) + self.start
            out.append((actions.astype(factual.dtype), asked))
        return out

    def every_action(self, mask: np.ndarray | None) -> np.ndarray:
        """All actions an explanation shows by default: the valid ones (discrete) or the
        perturbation set (continuous)."""
        if not self.discrete:
            return self.perturbations.copy()
        valid = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
        if valid.shape != (self.n,):
            raise ValueError(f"action_mask must have {self.n} entries, got shape {valid.shape}")
        return np.flatnonzero(valid) + self.start

    # ------------------------------------------------------------------ predictor input
    def check(self, actions: Any) -> np.ndarray:
        """``actions`` as an array of actions of this space: (k,) ints or (k, *shape) floats."""
        a = np.asarray(actions)
        if self.discrete:
            a = np.atleast_1d(a)
            if a.ndim != 1 or a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and np.all(a == np.floor(a))):
                raise ValueError(f"discrete actions must be integers, got {actions!r}")
            a = a.astype(np.int64)
            if len(a) and (a.min() < self.start or a.max() >= self.start + self.n):
                raise ValueError(f"actions must lie in [{self.start}, {self.start + self.n - 1}], got {a.tolist()}")
            return a
        a = a.astype(np.float64)
        if a.shape == self.shape:
            a = a[None]
        if a.shape[1:] != self.shape or not np.all(np.isfinite(a)):
            raise ValueError(f"continuous actions must be finite arrays of shape {self.shape}, got {np.shape(actions)}")
        return a

    def index(self, actions: np.ndarray) -> np.ndarray:
        """Discrete: the 0-based action index (the one-hot position). Continuous: (k, width) floats."""
        if self.discrete:
            return np.asarray(actions, dtype=np.int64) - self.start
        return np.asarray(actions, dtype=np.float32).reshape(len(actions), self.width)

    def label(self, action: Any) -> str:
        if self.discrete:
            return str(int(action))
        values = np.asarray(action, dtype=np.float64).ravel()
        return ", ".join(f"{v:+.3g}" for v in values)
