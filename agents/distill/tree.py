"""A decision tree as plain arrays: what every tree student produces and :class:`TreePolicy` runs.

Node 0 is the root. An internal node n tests ``x[feature[n]] <= threshold[n]`` and goes to
``left[n]`` when true, ``right[n]`` otherwise; a leaf has ``feature = -1``. Every node has an
``action`` (the student's choice there) and ``order``: all actions, most preferred first
(``order[n, 0] == action[n]``), so a policy can fall back to the best action the mask allows.
``cost[n, a]`` is the training cost of choosing action a for the samples reaching node n (the
student's objective; lower is better) and ``weight[n]`` their total weight; they order the
fallbacks and annotate the exports. Students return :func:`prune`-d trees (no test whose two
leaves choose the same action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tree:
    feature: np.ndarray     # (N,) int64, -1 at leaves
    threshold: np.ndarray   # (N,) float64
    left: np.ndarray        # (N,) int64, -1 at leaves
    right: np.ndarray       # (N,) int64
    action: np.ndarray      # (N,) int64
    order: np.ndarray       # (N, A) int64
    cost: np.ndarray        # (N, A) float64
    weight: np.ndarray      # (N,) float64
    boolean: np.ndarray     # (F,) bool: features that are 0/1 flags (printed as conditions)

    @property
    def n_actions(self) -> int:
        return self.order.shape[1]

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.feature < 0))

    @property
    def depth(self) -> int:
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for n in range(self.n_nodes):  # children always come after their parent
            if self.feature[n] >= 0:
                depth[self.left[n]] = depth[self.right[n]] = depth[n] + 1
        return int(depth.max())

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row of ``X`` (n, F) reaches."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        node = np.zeros(len(X), dtype=np.int64)
        rows = np.arange(len(X))
        for _ in range(self.n_nodes):
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                break
            go_left = X[rows, np.where(inner, f, 0)] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return node

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.action[self.apply(X)]

    def preferences(self, X: np.ndarray) -> np.ndarray:
        """(n, A): the actions in order of preference for each row."""
        return self.order[self.apply(X)]

    def size(self) -> dict[str, int]:
        return {"nodes": self.n_nodes, "leaves": self.n_leaves, "depth": self.depth}


def build_tree(feature, threshold, left, right, action, X, costs, weights, boolean) -> Tree:
    """A :class:`Tree` from its structure and node actions (-1: the node's cheapest); node costs,
    weights and fallback orders come from routing the training rows ``X`` with ``costs`` (n, A)."""
    feature = np.asarray(feature, dtype=np.int64)
    tree = Tree(feature=feature, threshold=np.asarray(threshold, dtype=np.float64),
                left=np.asarray(left, dtype=np.int64), right=np.asarray(right, dtype=np.int64),
                action=np.asarray(action, dtype=np.int64), order=np.zeros((len(feature), costs.shape[1]), np.int64),
                cost=np.zeros((len(feature), costs.shape[1])), weight=np.zeros(len(feature)),
                boolean=np.asarray(boolean, dtype=bool))
    leaves = tree.apply(X)
    np.add.at(tree.cost, leaves, costs)
    np.add.at(tree.weight, leaves, weights)
    for n in range(tree.n_nodes - 1, -1, -1):  # internal nodes sum their children
        if feature[n] >= 0:
            tree.cost[n] = tree.cost[tree.left[n]] + tree.cost[tree.right[n]]
            tree.weight[n] = tree.weight[tree.left[n]] + tree.weight[tree.right[n]]
    unset = tree.action < 0  # a node without its own choice takes its cheapest action
    tree.action[unset] = np.argmin(tree.cost[unset], axis=1)
    tree.order = preference_order(tree.action, tree.cost)
    return tree


def preference_order(action: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Each row: ``action`` first, then the other actions by increasing cost (ties: lower index)."""
    order = np.argsort(cost, axis=1, kind="stable")
    rest = [row[row != a] for row, a in zip(order, action)]
    return np.array([[a, *r] for a, r in zip(action, rest)], dtype=np.int64).reshape(cost.shape)



def prune(tree: Tree) -> Tree:
    """The same policy with fewer nodes: every test whose two children are leaves choosing the same
    action becomes a leaf (bottom up, so whole redundant subtrees collapse)."""
    feature, left, right, action = tree.feature.copy(), tree.left.copy(), tree.right.copy(), tree.action.copy()
    for n in range(tree.n_nodes - 1, -1, -1):  # children come after their parent
        lc, rc = left[n], right[n]
        if feature[n] >= 0 and feature[lc] < 0 and feature[rc] < 0 and action[lc] == action[rc]:
            feature[n], left[n], right[n], action[n] = -1, -1, -1, action[lc]
    keep, stack = [], [0]
    while stack:  # reachable nodes in pre-order, left subtree first
        n = stack.pop()
        keep.append(n)
        if feature[n] >= 0:
            stack += [right[n], left[n]]
    keep = np.array(keep)
    new = np.full(tree.n_nodes, -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))
    remap = lambda child: np.where(child[keep] >= 0, new[np.maximum(child[keep], 0)], -1)  # noqa: E731
    return Tree(feature=feature[keep], threshold=np.where(feature[keep] >= 0, tree.threshold[keep], 0.0),
                left=remap(left), right=remap(right), action=action[keep],
                order=preference_order(action[keep], tree.cost[keep]), cost=tree.cost[keep],
                weight=tree.weight[keep], boolean=tree.boolean)
