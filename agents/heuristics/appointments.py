"""Appointment-scheduling baselines: random order, alternation, the rules of Taub & Pianykh
(PLoS ONE 17(3): e0264485, 2022) and the exact oracle.

Every policy reads the env's Boolean features (``env.unwrapped.boolean_features()``, named by
``config.feature_names``; available in either observation mode) and action mask, and works on a
single env (returning an int) or a native vector env (one action per sub-env). A chosen type
with no item left falls back to the first type that has one, as the env's "substitute" rule does,
so no baseline ever takes an invalid action.

The strategies the paper publishes are the ``*_paper_*`` policies, each built from the words of
its section 3 (the trees themselves are in Figs 3-5, which our copy of the paper lacks; where only
a figure holds a detail, the docstring says which reading of the text we took). ``p1_tree``,
``p1_rule``, ``p2_rule`` and ``p3_rule`` are sysgym's earlier hand-made rules, kept as baselines.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.envs.appointments import AppointmentsVectorEnv
from sysgym.envs.appointments.config import multinomial_table
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
        """Column ``name`` of the features as bool (all False if the problem lacks it: only the
        break features are absent from P1/P2; any other unknown name is a bug, KeyError)."""
        if name not in self._names:
            if "break" not in name:
                raise KeyError(f"no feature {name!r}; features: {self._names}")
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
    """A type with probability proportional to the number of orderings of the day that go on
    with it, so that the day is a uniformly random ordering (with optional breaks too):
    percentile efficacy 50% on average. ``by_type=True`` draws uniformly among the valid types
    instead. Seeded (0)."""

    name = "random"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = 0, by_type: bool = False):
        super().__init__(env, seed)
        self.by_type = by_type
        self.rng = np.random.default_rng(seed)
        self._table = multinomial_table(self._env.config)

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t = mask.shape[1]
        rem = self._env._state["rem"]
        after = np.stack([self._table[tuple((rem - np.eye(3, dtype=np.int64)[a]).clip(0).T)] for a in range(t)], axis=1)
        weight = mask.astype(np.float64) if self.by_type else np.where(mask > 0, after, 0.0)
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
        prev_first = self.f(features, f"prev_is_{('short', 'long')[self.first]}")
        prev_other = self.f(features, f"prev_is_{('short', 'long')[other]}")
        prev2_first = self.f(features, f"second_prev_is_{('short', 'long')[self.first]}")
        # After a break, continue from the task before it.
        after_first = prev_first | (self.f(features, "prev_is_break") & prev2_first)
        started = prev_first | prev_other | self.f(features, "prev_is_break")
        return np.where(started & after_first, other, self.first)


class P1PaperTree(AppointmentsHeuristic):
    """P1, the tree of the paper's Fig 3 as section 3.1 describes it: the root is "Currently
    Delayed"; the second split, "more than half of tasks scheduled", keeps long tasks for the end
    of the day. Delayed and at most half scheduled: short; otherwise long. (Which branch carries
    the second split is only in the figure; this is the reading that matches the M2 rule
    "short when Currently Delayed and Less Time Spent than Left".)"""

    name = "p1_paper_tree"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        short = self.f(features, "currently_delayed") & ~self.f(features, "more_than_50pct_scheduled")
        return np.where(short, SHORT, LONG)


class P1PaperRule(AppointmentsHeuristic):
    """P1, the M2 Boolean rule exactly as section 3.1 prints it: short when ("Currently Delayed"
    and "Less Time Spent than Left") and ("Currently Delayed" and "More than 75% of Jobs
    Scheduled"); otherwise long."""

    name = "p1_paper_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        delayed = self.f(features, "currently_delayed")
        short = (delayed & self.f(features, "less_time_spent_than_left")) & \
            (delayed & self.f(features, "more_than_75pct_scheduled"))
        return np.where(short, SHORT, LONG)


class P1PaperRuleAny(AppointmentsHeuristic):
    """P1, the M2 rules of section 3.1 read as two strategies ("the most powerful strategies ...
    were"), either of which prescribes a short task: short when "Currently Delayed" and ("Less
    Time Spent than Left" or "More than 75% of Jobs Scheduled"); otherwise long."""

    name = "p1_paper_rule_any"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        either = self.f(features, "less_time_spent_than_left") | self.f(features, "more_than_75pct_scheduled")
        return np.where(self.f(features, "currently_delayed") & either, SHORT, LONG)


class P2PaperRule(AppointmentsHeuristic):
    """P2, the simplified strategy of section 3.2: "if the previous two tasks were short, then
    choose a long job. Otherwise, choose a short job"."""

    name = "p2_paper_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        two_shorts = self.f(features, "prev_is_short") & self.f(features, "second_prev_is_short")
        return np.where(two_shorts, LONG, SHORT)


class P2PaperTree(AppointmentsHeuristic):
    """P2, the tree of Fig 4 as section 3.2 describes it: the rule above, with the threshold for
    "defaulting to long tasks" at "More than 75%" of jobs scheduled: long once more than 75% are
    scheduled or after two shorts; otherwise short."""

    name = "p2_paper_tree"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        two_shorts = self.f(features, "prev_is_short") & self.f(features, "second_prev_is_short")
        return np.where(self.f(features, "more_than_75pct_scheduled") | two_shorts, LONG, SHORT)


class P3PaperTree(AppointmentsHeuristic):
    """P3, the tree of Fig 5 as section 3.3 describes it. Root "Significantly Delayed": with a
    break available, take it. Otherwise the double alternation ([long, long], [short, short]),
    with "Second-to-Previous Job is Not a Break" telling a finished pair from a break: when the
    previous job equals the second-to-previous one in length and the second-to-previous job is not
    a break, a pair is complete and the type switches (short after longs, long after shorts);
    otherwise the pair continues (short after a short, long after a long, a break or nothing)."""

    name = "p3_paper_tree"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        take_break = self.f(features, "significantly_delayed") & self.f(features, "break_available")
        pair_done = self.f(features, "prev_equal_to_second_prev") & ~self.f(features, "second_prev_is_break")
        prev_short = self.f(features, "prev_is_short")
        task = np.where(pair_done, np.where(prev_short, LONG, SHORT), np.where(prev_short, SHORT, LONG))
        return np.where(take_break, BREAK, task)


class P1Tree(AppointmentsHeuristic):
    """sysgym's earlier hand-made P1 tree (not the paper's): a significantly delayed day takes a
    short task; a delayed one takes a short task after a long one and a long task otherwise; a
    day on time takes a long task (it fills the 45-min slot without idling)."""

    name = "p1_tree"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        delayed, significant = self.f(features, "currently_delayed"), self.f(features, "significantly_delayed")
        short = significant | (delayed & self.f(features, "prev_is_long"))
        return np.where(short, SHORT, LONG)


class P1Rule(AppointmentsHeuristic):
    """sysgym's earlier hand-made P1 rule (not the paper's M2 rule, see ``p1_paper_rule``): a
    short task iff the day is delayed and the previous task was long; otherwise a long task."""

    name = "p1_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        short = self.f(features, "currently_delayed") & self.f(features, "prev_is_long")
        return np.where(short, SHORT, LONG)


class P2Rule(P2PaperTree):
    """The same policy as ``p2_paper_tree`` under its earlier name: long once more than 75% of the
    items are placed or after two shorts; otherwise short."""

    name = "p2_rule"


class P3Rule(AppointmentsHeuristic):
    """sysgym's earlier hand-made P3 rule (not the paper's, see ``p3_paper_tree``): the P2 rule,
    but a break is taken when one is available and the day is significantly delayed."""

    name = "p3_rule"

    def choose(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        base = P2PaperTree.choose(self, features, mask)
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
    "p1_paper_tree": P1PaperTree,
    "p1_paper_rule": P1PaperRule,
    "p1_paper_rule_any": P1PaperRuleAny,
    "p2_paper_rule": P2PaperRule,
    "p2_paper_tree": P2PaperTree,
    "p3_paper_tree": P3PaperTree,
    "p1_tree": P1Tree,
    "p1_rule": P1Rule,
    "p2_rule": P2Rule,
    "p3_rule": P3Rule,
    "oracle": OraclePolicy,
}

# The strategies Taub & Pianykh publish for each problem (section 3), by our names.
PAPER_STRATEGIES: dict[str, tuple[str, ...]] = {
    "P1": ("p1_paper_tree", "p1_paper_rule", "p1_paper_rule_any"),
    "P2": ("p2_paper_tree", "p2_paper_rule"),
    "P3": ("p3_paper_tree",),
}
# The rules each problem is benchmarked with (sysgym.benchmark suites): the paper's tree and rule.
PAPER_RULES: dict[str, tuple[str, ...]] = {"P1": ("p1_paper_tree", "p1_paper_rule"), "P2": ("p2_paper_tree",),
                                           "P3": ("p3_paper_tree",)}
