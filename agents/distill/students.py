"""The three students: CART, optimal small trees (STreeD) and exhaustive Boolean rules.

Each has ``fit(data: TrainingSet) -> Tree | Rule``:

* :class:`CartStudent` — scikit-learn's greedy ``DecisionTreeClassifier`` on the teacher's actions
  with sample weights (1, or VIPER's criticality).
* :class:`OptimalStudent` — the tree of at most ``max_depth`` levels (and ``max_nodes`` tests)
  with the least total cost over the threshold predicates of
  :class:`~sysgym.agents.distill.features.Predicates`, solved exactly by STreeD (van der Linden,
  de Weerdt, Demirović, "Necessary and Sufficient Conditions for Optimal Decision Trees using
  Dynamic Programming", NeurIPS 2023; package ``pystreed``). Its instance-cost-sensitive
  classifier minimises the sum over states of the cost of the chosen action, which with VIPER's
  regrets is VIPER's objective solved exactly, and with 0/1 costs is (weighted) accuracy.
  Strategy learning's M1 (Taub & Pianykh, PLoS ONE 2022) is this student on Boolean features.
* :class:`RuleStudent` — :func:`~sysgym.agents.distill.rules.learn_rule` (M2).

scikit-learn and pystreed are imported when a student fits, not before.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .features import Predicates, boolean_columns
from .rules import FORMS, Rule, learn_rule
from .samples import TrainingSet
from .tree import Tree, build_tree, prune

STUDENTS = ("cart", "optimal", "rules")


def _int(name: str, value: Any, lo: int, hi: int, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}]{' or None' if none else ''}, got {value!r}")
    return int(value)


class CartStudent:
    """Greedy CART (Breiman et al. 1984) via ``sklearn.tree.DecisionTreeClassifier`` (gini)."""

    name = "cart"

    def __init__(self, max_depth: int | None = 3, max_leaf_nodes: int | None = None, min_samples_leaf: int = 1,
                 random_state: int = 0):
        self.max_depth = _int("max_depth", max_depth, 1, 64, none=True)
        self.max_leaf_nodes = _int("max_leaf_nodes", max_leaf_nodes, 2, 2**20, none=True)
        self.min_samples_leaf = _int("min_samples_leaf", min_samples_leaf, 1, 2**30)
        self.random_state = random_state

    def fit(self, data: TrainingSet) -> Tree:
        from sklearn.tree import DecisionTreeClassifier

        keep = data.weights > 0
        if not keep.any():
            raise ValueError("no sample has a positive weight")
        clf = DecisionTreeClassifier(max_depth=self.max_depth, max_leaf_nodes=self.max_leaf_nodes,
                                     min_samples_leaf=self.min_samples_leaf, random_state=self.random_state)
        clf.fit(data.X[keep], data.y[keep], sample_weight=data.weights[keep])
        t = clf.tree_
        leaf = t.children_left < 0
        action = clf.classes_[np.argmax(t.value[:, 0, :], axis=1)]
        label_costs = (np.arange(data.n_actions)[None, :] != data.y[:, None]) * data.weights[:, None]
        return prune(build_tree(np.where(leaf, -1, t.feature), np.where(leaf, 0.0, t.threshold),
                                np.where(leaf, -1, t.children_left), np.where(leaf, -1, t.children_right),
                                action, data.X, label_costs, data.weights, boolean_columns(data.X)))


class OptimalStudent:
    """Exactly optimal depth-limited trees by STreeD (see the module docstring).

    ``max_thresholds`` caps the candidate thresholds per numeric feature (None: every midpoint);
    ``time_limit`` (s) stops the solver with the best tree found, and ``proven_optimal`` then says
    False. Identical training rows are merged (costs summed) before solving.
    """

    name = "optimal"

    def __init__(self, max_depth: int = 3, max_nodes: int | None = None, max_thresholds: int | None = 16,
                 time_limit: float = 600.0):
        self.max_depth = _int("max_depth", max_depth, 1, 10)
        self.max_nodes = _int("max_nodes", max_nodes, 1, 2**10 - 1, none=True)
        self.max_thresholds = _int("max_thresholds", max_thresholds, 1, 2**20, none=True)
        if not (isinstance(time_limit, (int, float)) and time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        self.time_limit = float(time_limit)
        self.proven_optimal: bool | None = None

    def fit(self, data: TrainingSet) -> Tree:
        try:
            from pystreed import STreeDInstanceCostSensitiveClassifier
        except ImportError:
            raise ValueError("the optimal-tree student needs pystreed: pip install 'pystreed>=1.4'") from None

        preds = Predicates.fit(data.X, self.max_thresholds)
        truth = preds.evaluate(data.X)
        # one column per distinct non-constant pattern, one row per distinct row
        varying = truth.any(axis=0) & ~truth.all(axis=0)
        _, first = np.unique(truth.T, axis=0, return_index=True)
        cols = np.array(sorted(set(first.tolist()) & set(np.flatnonzero(varying).tolist())), dtype=np.int64)
        boolean = boolean_columns(data.X)
        if len(cols) == 0:
            return self._leaf(data, boolean)
        rows, inverse = np.unique(truth[:, cols], axis=0, return_inverse=True)
        costs = np.zeros((len(rows), data.n_actions))
        np.add.at(costs, inverse.reshape(-1), data.costs)
        if len(rows) < 2:
            return self._leaf(data, boolean)
        model = STreeDInstanceCostSensitiveClassifier(max_depth=self.max_depth, max_num_nodes=self.max_nodes,
                                                      time_limit=self.time_limit, random_seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(rows.astype(np.intc), costs)
        if not model.is_fitted():
            raise ValueError(f"STreeD found no tree within time_limit={self.time_limit} s")
        self.proven_optimal = bool(model.fit_result.is_optimal())
        nodes: list[list] = []

        def walk(node) -> int:
            index = len(nodes)
            nodes.append([-1, 0.0, -1, -1, 0])
            if node.is_leaf_node():
                nodes[index][4] = int(node.label)
                return index
            p = cols[node.feature]
            # pystreed's right child holds the rows where the predicate (x <= t) is 1
            left, right = walk(node.right_child), walk(node.left_child)
            nodes[index] = [int(preds.feature[p]), float(preds.threshold[p]), left, right, -1]
            return index

        walk(model.tree_)
        feature, threshold, left, right, action = (list(c) for c in zip(*nodes))
        return prune(build_tree(feature, threshold, left, right, action, data.X, data.costs, data.weights, boolean))

    def _leaf(self, data: TrainingSet, boolean: np.ndarray) -> Tree:
        self.proven_optimal = True
        action = int(np.argmin(data.costs.sum(axis=0)))
        return build_tree([-1], [0.0], [-1], [-1], [action], data.X, data.costs, data.weights, boolean)


class RuleStudent:
    """Exhaustive best Boolean rule with at most ``max_literals`` literals (two actions only)."""

    name = "rules"

    def __init__(self, max_literals: int = 3, form: str = "dnf", max_thresholds: int | None = None,
                 max_candidates: int = 5_000_000):
        self.max_literals = _int("max_literals", max_literals, 0, 6)
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form = form
        self.max_thresholds = _int("max_thresholds", max_thresholds, 1, 2**20, none=True)
        self.max_candidates = _int("max_candidates", max_candidates, 1, 10**9)

    def check_actions(self, n_actions: int) -> None:
        """ValueError unless the problem has two actions (called before any data is collected)."""
        if n_actions != 2:
            raise ValueError(f"Boolean rules choose between two actions; this problem has {n_actions} "
                             "(use a tree student)")

    def fit(self, data: TrainingSet) -> Rule:
        return learn_rule(data, self.max_literals, self.form, self.max_thresholds, self.max_candidates)


def make_student(name: str, max_depth: int = 3, **kwargs: Any) -> CartStudent | OptimalStudent | RuleStudent:
    """A student by name: ``"cart"``, ``"optimal"`` (both take ``max_depth``) or ``"rules"``."""
    if name == "cart":
        return CartStudent(max_depth=max_depth, **kwargs)
    if name == "optimal":
        return OptimalStudent(max_depth=max_depth, **kwargs)
    if name == "rules":
        return RuleStudent(**kwargs)
    raise ValueError(f"unknown student {name!r}; choose from {STUDENTS}")
