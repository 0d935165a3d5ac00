"""Students against brute force: the optimal tree (STreeD) and the exhaustive rule learner must
reach the least cost any tree of depth <= 2 / any DNF of <= k literals reaches, found here by
plain enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sysgym.agents.distill import (
    CartStudent,
    OptimalStudent,
    RuleStudent,
    Samples,
    TrainingSet,
    training_set,
)
from sysgym.agents.distill.critical import criticality, regrets
from sysgym.agents.distill.tree import build_tree, prune


def small_problem(seed: int, n: int = 60, features: int = 3, values: int = 4, actions: int = 3) -> TrainingSet:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, values, (n, features)).astype(np.float32)
    costs = rng.random((n, actions))
    costs[X[:, 0] >= 2, 0] += 0.7          # some structure for the tree to find
    return TrainingSet(X, costs.argmin(axis=1), np.ones(n), costs)


def leaf_cost(costs: np.ndarray) -> float:
    return float(costs.sum(axis=0).min()) if len(costs) else 0.0


def brute_force(X: np.ndarray, costs: np.ndarray, depth: int) -> float:
    """Least total cost of any tree of depth <= ``depth`` testing x[f] <= t at midpoints."""
    tests = [(f, (a + b) / 2) for f in range(X.shape[1])
             for a, b in zip(np.unique(X[:, f])[:-1], np.unique(X[:, f])[1:])]

    def best(rows: np.ndarray, d: int) -> float:
        value = leaf_cost(costs[rows])
        if d == 0:
            return value
        for f, t in tests:
            go = X[rows, f] <= t
            value = min(value, best(rows[go], d - 1) + best(rows[~go], d - 1))
        return value

    return best(np.arange(len(X)), depth)


def tree_cost(tree, data: TrainingSet) -> float:
    return float(data.costs[np.arange(len(data.X)), tree.predict(data.X)].sum())


@pytest.mark.parametrize("seed", range(4))
def test_optimal_tree_matches_brute_force(seed):
    data = small_problem(seed)
    for depth in (1, 2):
        student = OptimalStudent(max_depth=depth, max_thresholds=None)
        tree = student.fit(data)
        assert tree.depth <= depth and student.proven_optimal
        assert tree_cost(tree, data) == pytest.approx(brute_force(data.X, data.costs, depth), abs=1e-9)


def test_optimal_tree_beats_or_ties_cart_on_its_objective():
    data = small_problem(7, n=200, features=4, values=6, actions=2)
    labels = training_set(Samples(data.X, np.ones((200, 2), bool), data.y))
    optimal = OptimalStudent(max_depth=2, max_thresholds=None).fit(labels)
    cart = CartStudent(max_depth=2).fit(labels)
    assert tree_cost(optimal, labels) <= tree_cost(cart, labels) + 1e-9


def brute_force_rule(X: np.ndarray, costs: np.ndarray, k: int) -> float:
    """Least cost of 'action b if DNF else action 1-b' over Boolean X, DNFs of <= k literals."""
    literals = [(f, v) for f in range(X.shape[1]) for v in (True, False)]
    terms = [t for size in range(1, k + 1) for t in itertools.combinations(literals, size)]
    best = min(costs.sum(axis=0))
    for count in range(1, k + 1):
        for dnf in itertools.combinations(terms, count):
            if sum(len(t) for t in dnf) > k:
                continue
            holds = np.zeros(len(X), dtype=bool)
            for term in dnf:
                holds |= np.all([(X[:, f] > 0.5) == v for f, v in term], axis=0)
            for b in (0, 1):
                best = min(best, costs[holds, b].sum() + costs[~holds, 1 - b].sum())
    return float(best)


@pytest.mark.parametrize("seed,k", [(0, 1), (1, 2), (2, 2), (3, 3)])
def test_rules_match_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, (80, 4)).astype(np.float32)
    costs = rng.random((80, 2))
    costs[(X[:, 1] == 1) & (X[:, 2] == 0), 1] += 1.0
    data = TrainingSet(X, costs.argmin(axis=1), np.ones(80), costs)
    for form in ("dnf", "cnf"):
        rule = RuleStudent(max_literals=k, form=form).fit(data)
        assert rule.n_literals <= k
        chosen = rule.predict(X)
        assert costs[np.arange(80), chosen].sum() == pytest.approx(brute_force_rule(X, costs, k), abs=1e-9)


def test_rules_refuse_more_than_two_actions_and_too_many_candidates():
    with pytest.raises(ValueError, match="two actions"):
        RuleStudent().fit(small_problem(0))
    rng = np.random.default_rng(0)
    data = TrainingSet(rng.random((50, 40)).astype(np.float32), np.zeros(50, np.int64), np.ones(50), rng.random((50, 2)))
    with pytest.raises(ValueError, match="max_candidates"):
        RuleStudent(max_literals=3).fit(data)


def test_viper_costs_are_regrets_and_weights_criticality():
    q = np.array([[1.0, 3.0, np.nan], [2.0, 2.0, 0.5], [4.0, np.nan, np.nan]])
    mask = np.array([[True, True, False], [True, True, True], [True, False, False]])
    np.testing.assert_allclose(criticality(q, mask), [2.0, 1.5, 0.0])
    np.testing.assert_allclose(regrets(q, mask), [[2.0, 0.0, 2.0], [0.0, 0.0, 1.5], [0.0, 0.0, 0.0]])
    samples = Samples(np.zeros((3, 1)), mask, [1, 0, 0], q)
    ts = training_set(samples, "viper")
    np.testing.assert_allclose(ts.weights, [2.0, 1.5, 0.0])
    with pytest.raises(ValueError, match="action values"):
        training_set(Samples(np.zeros((3, 1)), mask, [1, 0, 0]), "viper")


def test_cart_uses_sample_weights():
    X = np.array([[0.0], [0.0], [1.0], [1.0]], dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    heavy_one = TrainingSet(X, y, np.array([1.0, 5.0, 1.0, 5.0]), np.zeros((4, 2)))
    heavy_zero = TrainingSet(X, y, np.array([5.0, 1.0, 5.0, 1.0]), np.zeros((4, 2)))
    assert CartStudent(max_depth=2).fit(heavy_one).predict(X).tolist() == [1, 1, 1, 1]
    assert CartStudent(max_depth=2).fit(heavy_zero).predict(X).tolist() == [0, 0, 0, 0]


def test_student_settings_are_checked():
    for make in (lambda: CartStudent(max_depth=0), lambda: OptimalStudent(max_depth=11),
                 lambda: OptimalStudent(time_limit=-1), lambda: RuleStudent(max_literals=9),
                 lambda: RuleStudent(form="xor")):
        with pytest.raises(ValueError):
            make()


def test_pruning_keeps_every_decision():
    rng = np.random.default_rng(5)
    nodes: list[list] = []

    def grow(depth: int) -> int:  # a full tree in pre-order, random tests, leaves choosing 0 or 1
        index = len(nodes)
        nodes.append([-1, 0.0, -1, -1, int(rng.integers(0, 2))])
        if depth:
            left, right = grow(depth - 1), grow(depth - 1)
            nodes[index][:4] = [int(rng.integers(0, 3)), float(rng.integers(0, 3)) + 0.5, left, right]
        return index

    grow(4)
    columns = list(zip(*nodes))
    X = rng.integers(0, 4, (400, 3)).astype(np.float32)
    tree = build_tree(*columns, X, rng.random((400, 2)), np.ones(400), np.zeros(3, bool))
    pruned = prune(tree)
    assert pruned.n_nodes < tree.n_nodes
    assert np.array_equal(pruned.predict(X), tree.predict(X))
    inner = np.flatnonzero(pruned.feature >= 0)
    leaves = pruned.feature < 0
    same = leaves[pruned.left[inner]] & leaves[pruned.right[inner]] & \
        (pruned.action[pruned.left[inner]] == pruned.action[pruned.right[inner]])
    assert not same.any()
