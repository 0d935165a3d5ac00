"""Appointment-scheduling baselines: random order, alternation, the rules of Taub & Pianykh
(PLoS ONE 17(3): e0264485, 2022) and the exact oracle.

Every policy reads the env's Boolean features (``env.unwrapped.boolean_features()``, named by
``config.feature_names``; available in either observation mode) and action mask, and works on a
single env (returning an int) or a native vector env (one action per sub-env). A chosen type
with no item left falls back to the first type that has one, as the env's "substitute" rule does,
so no baseline ever takes an invalid action.

The paper's text was not available when these were written: the rules follow the descriptions in
the issue that commissioned this family ("after two shorts a long, otherwise a short, long ones
after 75%" for P2) and, for P1 and P3, our reading of them in terms of the same features; their
docstrings say exactly what they do.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.envs.appointments import AppointmentsVectorEnv
from sysgym.envs.appointments.oracle import best_action

from .base import Heuristic, native_env

SHORT, LONG, BREAK = 0, 1, 2


class AppointmentsHeuristic(Heuristic):
    """Base: subclasses implement :meth:`choose` on the (B, F) Boolean features."""

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        super().__init__(env, seed)
        self._env, self._single = native_env(env, AppointmentsVectorEnv, type(self).__name__)
        self._names = self._env.config.feature_names

    def f(self, features: np.ndarray, name: str) -> np.ndarray:
        """Column ``name`` of the features as bool (all False if the problem lacks it)."""
        if name not in self._names:
            return np.zeros(len(features), dtype=bool)
        return features[:, self._names.index(name)].astype(bool)

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        mask = self._env.action_masks()
        actions = np.asarray(self.choose(self._env.boolean_features(), mask), dtype=np.int64)
        rows = np.arange(len(actions))
        ok = mask[rows, actions]
        actions = np.where(ok, actions, np.argmax(mask, axis=1))
        return int(actions[0]) if self._single else actions


class RandomOrder(AppointmentsHeuristic):
    """A uniformly random remaining item (a type with probability proportional to its items
    left), so that the day is a uniformly random ordering: percentile efficacy 50% on average.
    ``by_type=True`` draws uniformly among the types with items left instead. Seeded (0)."""

    name = "random"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = 0, by_type: bool = False):
        super().__init__(env, seed)
        self.by_type = by_type
        self.rng = np.random.default_rng(seed)

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t = mask.shape[1]
        weight = mask.astype(np.float64) if self.by_type else \
            self._env._state["rem"][:, :t].astype(np.float64)
        cumulative = np.cumsum(weight, axis=1)
        u = self.rng.random(len(weight)) * cumulative[:, -1]
        return np.minimum(np.sum(cumulative <= u[:, None], axis=1), t - 1)


class Alternate(AppointmentsHeuristic):
    """Alternate short and long tasks, starting with ``first`` (short by default); breaks only
    when nothing else is left."""

    name = "alternate"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None, first: int = SHORT):
        super().__init__(env, seed)
        if first not in (SHORT, LONG):
            raise ValueError(f"first must be 0 (short) or 1 (long), got {first!r}")
        self.first = first

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        other = LONG if self.first == SHORT else SHORT
        prev_first = self.f(features, f"prev_{('short', 'long')[self.first]}")
        prev_other = self.f(features, f"prev_{('short', 'long')[other]}")
        prev2_first = self.f(features, f"prev2_{('short', 'long')[self.first]}")
        # After a break, continue from the task before it.
        after_first = prev_first | (self.f(features, "prev_break") & prev2_first)
        started = prev_first | prev_other | self.f(features, "prev_break")
        return np.where(started & after_first, other, self.first)


class P1Tree(AppointmentsHeuristic):
    """P1 decision tree (our reading of the paper's Fig 3): a significantly delayed day takes a
    short task; a delayed one takes a short task after a long one and a long task otherwise; a
    day on time takes a long task (it fills the 45-min slot without idling)."""

    name = "p1_tree"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        delayed, significant = self.f(features, "delayed"), self.f(features, "significantly_delayed")
        short = significant | (delayed & self.f(features, "prev_long"))
        return np.where(short, SHORT, LONG)


class P1Rule(AppointmentsHeuristic):
    """The two-feature Boolean rule for P1 (our reading of section 3.1): a short task iff the
    day is delayed and the previous task was long; otherwise a long task."""

    name = "p1_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        short = self.f(features, "delayed") & self.f(features, "prev_long")
        return np.where(short, SHORT, LONG)


class P2Rule(AppointmentsHeuristic):
    """P2: "after two shorts a long, otherwise a short, long ones after 75%": once more than 75%
    of the items are placed, long tasks; before, a long task when the last two were short and a
    short task otherwise."""

    name = "p2_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        two_shorts = self.f(features, "prev_short") & self.f(features, "prev2_short")
        return np.where(self.f(features, "progress_gt_75") | two_shorts, LONG, SHORT)


class P3Rule(AppointmentsHeuristic):
    """P3 (our reading of section 3.3): the P2 rule, but a break is taken when one is available
    and the day is significantly delayed (the break's elasticity absorbs part of the overrun)."""

    name = "p3_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        base = P2Rule.choose(self, features, mask)
        take_break = self.f(features, "break_available") & self.f(features, "significantly_delayed")
        return np.where(take_break, BREAK, base)


class OraclePolicy(AppointmentsHeuristic):
    """The type with the lowest oracle value (expected C_alpha with an optimal continuation over
    ``draws`` common noise draws; ``oracle="average"``: the mean over continuations); ties go to
    the lowest type index. See :mod:`sysgym.envs.appointments.oracle`."""

    name = "oracle"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = 0, draws: int = 32,
                 oracle: str = "best"):
        super().__init__(env, seed)
        self.draws, self.oracle = draws, oracle
        self._env.oracle_setup(draws=draws, oracle=oracle, seed=seed or 0)   # validate early

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        values = self._env.oracle_values(draws=self.draws, oracle=self.oracle, seed=self.seed or 0)
        actions = best_action(values)
        return int(actions[0]) if self._single else actions


HEURISTICS: dict[str, type[AppointmentsHeuristic]] = {
    "random": RandomOrder,
    "alternate": Alternate,
    "p1_tree": P1Tree,
    "p1_rule": P1Rule,
    "p2_rule": P2Rule,
    "p3_rule": P3Rule,
    "oracle": OraclePolicy,
}

# The rules each problem is benchmarked with (the paper's rule for that problem).
PAPER_RULES: dict[str, tuple[str, ...]] = {"P1": ("p1_tree", "p1_rule"), "P2": ("p2_rule",), "P3": ("p3_rule",)}
