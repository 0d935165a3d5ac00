"""DAG tasks (G, D): nodes with integer WCETs, precedence edges and a deadline, validated once.

Limits (every task, whether generated, read from DOT or built in Python, is checked against them):
at most ``MAX_NODES`` = 256 nodes (and ``MAX_TASKS`` = 65536 tasks per task set); WCETs in [0, ``MAX_TIME``] and deadlines in [1, ``MAX_TIME``]
with ``MAX_TIME`` = 2^53. Such times are exact in float64 (the observations divide them), and no
sum the kernel forms (volume, path lengths, deadline + volume) exceeds 256 * 2^53 + 2^53 < 2^62,
so int64 arithmetic cannot overflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..validate import integer

MAX_NODES = 256          # nodes per task (and the env's max_nodes): O(N^2) state per sub-env
MAX_TIME = 2**53         # largest WCET / deadline (exact in float64; sums stay below 2^62)
MAX_TASKS = 2**16        # tasks in one task set (file, directory or list)


@dataclass(frozen=True)
class DAGTask:
    """A DAG task: ``wcet[v]`` for nodes 0..n-1, edges ``(u, v)`` (u before v), deadline ``D``.

    Build one with :func:`make_task` (which validates); ``node_names`` keeps the names a DOT file
    used, for rendering and export.
    """

    wcet: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    deadline: int
    name: str = ""
    node_names: tuple[str, ...] = ()

    @property
    def num_nodes(self) -> int:
        return len(self.wcet)

    @property
    def volume(self) -> int:
        """vol(G): the sum of the WCETs."""
        return int(sum(self.wcet))

    def adjacency(self) -> np.ndarray:
        """(n, n) bool matrix, ``[u, v]`` true for an edge u -> v."""
        adj = np.zeros((self.num_nodes, self.num_nodes), dtype=bool)
        for u, v in self.edges:
            adj[u, v] = True
        return adj

    def critical_path(self) -> int:
        """L(G): the largest sum of WCETs along a path."""
        finish = [0] * self.num_nodes
        succ = _successors(self.num_nodes, self.edges)
        for v in topological_order(self.num_nodes, self.edges):
            finish[v] += self.wcet[v]
            for w in succ[v]:
                finish[w] = max(finish[w], finish[v])
        return max(finish, default=0)

    def label(self, v: int) -> str:
        return self.node_names[v] if self.node_names else str(v)


def _successors(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
    return succ


def topological_order(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Kahn's algorithm (smallest index first); raises ``ValueError`` naming a cycle."""
    succ = _successors(n, edges)
    indegree = [0] * n
    for _, v in edges:
        indegree[v] += 1
    ready = sorted(v for v in range(n) if indegree[v] == 0)
    order: list[int] = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for w in succ[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
        ready.sort()
    if len(order) < n:
        raise ValueError(f"the graph has a cycle: {' -> '.join(map(str, find_cycle(n, edges)))}")
    return order


def find_cycle(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """One directed cycle as a node list that starts and ends with the same node ([] if acyclic)."""
    succ = _successors(n, edges)
    state = [0] * n          # 0 new, 1 on the DFS stack, 2 finished
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, iter(succ[root]))]
        path = [root]
        state[root] = 1
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                stack.pop()
                path.pop()
                state[v] = 2
            elif state[w] == 1:
                return path[path.index(w):] + [w]
            elif state[w] == 0:
                state[w] = 1
                stack.append((w, iter(succ[w])))
                path.append(w)
    return []


def make_task(wcet: Sequence[int], edges: Iterable[tuple[int, int]], deadline: int, name: str = "",
              node_names: Sequence[str] = (), source: str = "task") -> DAGTask:
    """Validate and build a :class:`DAGTask`; errors are ``ValueError`` starting with ``source``.

    Rules: 1..``MAX_NODES`` nodes; WCETs are integers in [0, ``MAX_TIME``]; edges are pairs of
    distinct existing nodes (duplicates are merged); the graph is acyclic; D is an integer in
    [1, ``MAX_TIME``] with L(G) <= D.
    """
    if isinstance(wcet, (str, bytes)) or not isinstance(wcet, Iterable):
        raise ValueError(f"{source}: wcet must be a sequence of integers, got {wcet!r}")
    wcet_list = []
    for v, c in enumerate(wcet):
        if v >= MAX_NODES:
            raise ValueError(f"{source}: a DAG task has at most {MAX_NODES} nodes")
        wcet_list.append(integer(f"{source}: node {_name(node_names, v)}: WCET C", c, 0, MAX_TIME))
    n = len(wcet_list)
    if n == 0:
        raise ValueError(f"{source}: a DAG task needs at least one node")
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise ValueError(f"{source}: edges must be a sequence of (u, v) pairs, got {edges!r}")
    edge_set: dict[tuple[int, int], None] = {}
    for e in edges:
        if isinstance(e, (str, bytes)) or not isinstance(e, Sequence) or len(e) != 2:
            raise ValueError(f"{source}: an edge must be a (u, v) pair of node numbers, got {e!r}")
        u, v = (integer(f"{source}: edge {tuple(e)!r}: node", x, None, None) for x in e)
        if not (0 <= u < n and 0 <= v < n):
            raise ValueError(f"{source}: edge {u} -> {v} names a node outside 0..{n - 1}")
        if u == v:
            raise ValueError(f"{source}: self-loop on node {_name(node_names, u)}")
        edge_set[(u, v)] = None
    edge_list = tuple(edge_set)
    cycle = find_cycle(n, edge_list)
    if cycle:
        raise ValueError(f"{source}: the graph has a cycle: "
                         + " -> ".join(_name(node_names, v) for v in cycle))
    deadline = integer(f"{source}: deadline D", deadline, 1, MAX_TIME)
    if node_names and len(node_names) != n:
        raise ValueError(f"{source}: {len(node_names)} node names for {n} nodes")
    task = DAGTask(tuple(wcet_list), edge_list, deadline, str(name), tuple(str(s) for s in node_names))
    length = task.critical_path()
    if length > deadline:
        raise ValueError(f"{source}: critical path L={length} exceeds the deadline D={deadline}: "
                         f"no number of processors meets it")
    return task


def _name(names: Sequence[str], v: int) -> str:
    return repr(names[v]) if names else str(v)
