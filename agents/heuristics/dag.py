"""Baselines for DAG edge-generation scheduling: random and greedy edge choice, the fewest cores
two sound response-time analyses certify (Graham 1969; He et al. 2019), and global list scheduling
as a simulation yardstick that is *not* a schedulability test.

``random`` and ``greedy`` act on ``sysgym/DAG-EGS-v0`` (single env -> int, native vector env ->
one action per sub-env); an episode's ``info["episode_metrics"]["cores_needed"]`` is the width they
reach, and an EGS result is sound by construction (W <= M and L <= D: every node runs at its
earliest start on its own chain's core, whatever the execution times up to the WCETs).

The analyses answer "how many cores does the task need" for a :class:`DAGTask` without adding edges:

* :func:`graham_cores` -- Graham's bound. Any work-conserving schedule of G on m identical cores
  (no core idles while a node is ready) ends within ``R <= L + (vol - L) / m``, for any execution
  times up to the WCETs (Graham 1969). Cores: the fewest m in 1..n with ``L + (vol - L) / m <= D``;
  None when there is none (D = L < vol: the bound exceeds L at every m).
* :func:`he2019_cores` -- He et al. 2019: intra-task priorities plus a response-time bound that
  counts as interference only the higher-priority nodes that may run in parallel; see
  :func:`he2019_priorities` and :func:`he2019_bound` for the exact formulas. Its scheduler is
  global *preemptive* fixed-priority scheduling of the task's nodes (:func:`preemptive_schedule`).
* :func:`list_scheduling_cores` -- the fewest cores on which one non-preemptive, critical-path-first
  list schedule *at the WCETs* meets D. Not sound: list scheduling has timing anomalies (Graham
  1969) -- a node finishing early can change which ready node takes a free core, and the makespan
  can grow, so meeting D at the WCETs does not mean meeting it when nodes run shorter
  (``test_list_scheduling_is_not_sound`` shows a 6-node task; ``benchmarks/paper_egs.py`` counts
  such tasks in the shipped task sets).

References: Sun et al., "Edge Generation Scheduling for DAG Tasks Using Deep Reinforcement
Learning", IEEE TC 2024 (EGS, the random and greedy edge baselines, the analyses it compares with);
R. L. Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17(2), 1969 (the
bound, list scheduling and its anomalies); Q. He, X. Jiang, N. Guan, Z. Guo, "Intra-Task Priority
Assignment in Real-Time Scheduling of DAG Tasks on Multi-Cores", IEEE TPDS 30(10), 2019;
T. L. Adam, K. M. Chandy, J. R. Dickson, "A comparison of list schedules for parallel processing
systems", CACM 1974 (highest-level-first priorities).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.envs.dag.env import DAGVectorEnv
from sysgym.envs.dag.tasks import DAGTask, topological_order

from .base import Heuristic, native_env


class DAGHeuristic(Heuristic):
    """Picks one valid edge per sub-env; subclasses implement :meth:`choose`."""

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        super().__init__(env, seed)
        self._env, self._single = native_env(env, DAGVectorEnv, type(self).__name__)

    def choose(self, index: int, mask: np.ndarray) -> int:
        raise NotImplementedError

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        masks = np.atleast_2d(info["action_mask"])
        actions = np.array([self.choose(i, masks[i]) for i in range(len(masks))], dtype=np.int64)
        return int(actions[0]) if self._single else actions


class RandomEdge(DAGHeuristic):
    """A uniformly random valid edge."""

    name = "random"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        super().__init__(env, seed)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        masks = np.atleast_2d(info["action_mask"])
        actions = np.argmax(self.rng.random(masks.shape) * masks, axis=1)
        return int(actions[0]) if self._single else actions


class GreedyWidth(DAGHeuristic):
    """The valid edge that lowers the width most; ties go to the edge leaving the most slack
    (smallest critical path after it), then to the smallest action index."""

    name = "greedy"

    def choose(self, index: int, mask: np.ndarray) -> int:
        width, length = self._env.edge_outcomes(index)
        valid = width >= 0
        if not valid.any():
            return int(np.argmax(mask))          # the episode is over; the action is ignored
        candidates = np.flatnonzero(valid)
        # np.lexsort's last key is the primary one: smallest width, then length, then index
        best = np.lexsort((candidates, length[candidates], width[candidates]))[0]
        return int(candidates[best])


HEURISTICS: dict[str, type[DAGHeuristic]] = {"random": RandomEdge, "greedy": GreedyWidth}


# ---------------------------------------------------------------- schedules of a task without added edges
def _successors(task: DAGTask) -> list[list[int]]:
    succ: list[list[int]] = [[] for _ in range(task.num_nodes)]
    for u, v in task.edges:
        succ[u].append(v)
    return succ


def bottom_levels(task: DAGTask) -> list[int]:
    """b(v) = C_v + the largest b over v's successors: the critical path from v to an exit."""
    succ = _successors(task)
    level = [0] * task.num_nodes
    for v in reversed(topological_order(task.num_nodes, task.edges)):
        level[v] = task.wcet[v] + max((level[w] for w in succ[v]), default=0)
    return level


def _schedule_inputs(task: DAGTask, processors: int, priority: Any, execution: Any) -> tuple[list[int], list[int]]:
    """Checked (priority ranks, execution times); ValueError naming the argument."""
    n = task.num_nodes
    if isinstance(processors, bool) or not isinstance(processors, (int, np.integer)) or processors < 1:
        raise ValueError(f"processors must be an int >= 1, got {processors!r}")
    if priority is None:
        level = bottom_levels(task)
        order = sorted(range(n), key=lambda v: (-level[v], v))
        priority = [0] * n
        for rank, v in enumerate(order):
            priority[v] = rank
    priority = [int(p) for p in priority]
    if len(priority) != n:
        raise ValueError(f"priority must give one rank per node ({n}), got {len(priority)}")
    execution = list(task.wcet) if execution is None else [int(e) for e in execution]
    if len(execution) != n or any(not 0 <= e <= c for e, c in zip(execution, task.wcet)):
        raise ValueError(f"execution must give one time per node in [0, WCET], got {execution!r}")
    return priority, execution


def list_schedule(task: DAGTask, processors: int, priority: Any = None,
                  execution: Any = None) -> tuple[int, np.ndarray, np.ndarray]:
    """Non-preemptive global list scheduling on ``processors`` identical cores.

    Whenever a core is free and nodes are ready (all predecessors finished), the ready node of
    highest priority starts on the free core with the smallest index. ``priority``: one rank per
    node, smaller first (ties: smallest index); default critical path first (largest bottom level).
    ``execution``: the times the nodes actually run, each in [0, WCET] (default the WCETs).
    Returns (makespan, start time per node, core per node).
    """
    priority, execution = _schedule_inputs(task, processors, priority, execution)
    n = task.num_nodes
    succ = _successors(task)
    waiting = [0] * n
    for _, v in task.edges:
        waiting[v] += 1
    ready = [(priority[v], v) for v in range(n) if waiting[v] == 0]
    heapq.heapify(ready)
    free = list(range(processors))
    running: list[tuple[int, int, int]] = []       # (finish, core, node)
    start = np.full(n, -1, dtype=np.int64)
    core = np.full(n, -1, dtype=np.int64)
    now = makespan = 0
    finished = 0

    def complete(v: int, c: int) -> None:
        nonlocal finished
        finished += 1
        heapq.heappush(free, c)
        for w in succ[v]:
            waiting[w] -= 1
            if waiting[w] == 0:
                heapq.heappush(ready, (priority[w], w))

    while finished < n:
        while free and ready:
            _, v = heapq.heappop(ready)
            c = heapq.heappop(free)
            start[v], core[v] = now, c
            makespan = max(makespan, now + execution[v])
            if execution[v] == 0:
                complete(v, c)                    # done at once; may release more ready nodes
            else:
                heapq.heappush(running, (now + execution[v], c, v))
        if finished == n:
            break
        now = running[0][0]
        while running and running[0][0] == now:
            _, c, v = heapq.heappop(running)
            complete(v, c)
    return makespan, start, core


def preemptive_schedule(task: DAGTask, processors: int, priority: Any = None, execution: Any = None) -> int:
    """Makespan of global preemptive fixed-priority scheduling of the task's nodes: at every
    instant the (at most ``processors``) ready nodes of highest priority run; a node that becomes
    ready preempts a lower-priority one. Arguments as :func:`list_schedule`."""
    priority, execution = _schedule_inputs(task, processors, priority, execution)
    n = task.num_nodes
    succ = _successors(task)
    waiting = [0] * n
    for _, v in task.edges:
        waiting[v] += 1
    remaining = list(execution)
    ready = {v for v in range(n) if waiting[v] == 0}
    now = 0
    for _ in range(n):                      # every round completes at least one node
        if not ready:
            break
        running = heapq.nsmallest(processors, ready, key=lambda v: (priority[v], v))
        step = min(remaining[v] for v in running)
        now += step
        for v in running:
            remaining[v] -= step
            if remaining[v] == 0:
                ready.discard(v)
                for w in succ[v]:
                    waiting[w] -= 1
                    if waiting[w] == 0:
                        ready.add(w)
    return now


def list_scheduling_cores(task: DAGTask) -> int:
    """The fewest cores on which :func:`list_schedule` (critical path first, at the WCETs) meets
    the deadline, searched upwards from ceil(vol / D); list scheduling is not monotone in the core
    count, so every count is tried. A simulation yardstick, not a schedulability test (see the
    module docstring: list-scheduling anomalies)."""
    first = max(1, math.ceil(task.volume / task.deadline))
    for m in range(first, task.num_nodes + 1):
        if list_schedule(task, m)[0] <= task.deadline:
            return m
    raise AssertionError("with one core per node the makespan is L <= D")   # make_task checked L <= D


# ---------------------------------------------------------------- sound analyses
def graham_bound(task: DAGTask, processors: int) -> float:
    """Graham (1969): any work-conserving schedule on m cores ends by ``L + (vol - L) / m``."""
    _schedule_inputs(task, processors, None, None)
    length = task.critical_path()
    return length + (task.volume - length) / processors


def graham_cores(task: DAGTask) -> int | None:
    """The fewest m in 1..n with ``L + (vol - L) / m <= D`` (None if there is none)."""
    length, volume, deadline = task.critical_path(), task.volume, task.deadline
    for m in range(1, task.num_nodes + 1):
        if length * m + (volume - length) <= deadline * m:       # exact in integers
            return m
    return None


def _relatives(task: DAGTask) -> tuple[list[int], list[int]]:
    """Ancestor and descendant sets of every node as bitmasks (bit u set: u is one)."""
    n = task.num_nodes
    succ = _successors(task)
    order = topological_order(n, task.edges)
    below = [0] * n
    for v in reversed(order):
        for w in succ[v]:
            below[v] |= below[w] | (1 << w)
    above = [0] * n
    for v in range(n):
        for u in range(n):
            if below[u] >> v & 1:
                above[v] |= 1 << u
    return above, below


def he2019_priorities(task: DAGTask) -> list[int]:
    """The intra-task priority assignment of He et al. (2019); rank 0 is the highest priority.

    With lf(v) / lb(v) the longest path ending / starting at v (both counting C_v) and
    l(v) = lf(v) + lb(v) - C_v the longest path through v, ``assign(G)`` repeats, while G has
    nodes: take the source of G with the largest l (ties: smallest index), give it the next rank,
    remove it, and follow its successors: among the current node's successors still in G take the
    one with the largest l (ties: largest lb, then smallest index); if it still has ancestors in G,
    first ``assign`` the subgraph they induce and remove them; then give it the next rank, remove
    it and continue from its successors. Every node is ranked after its ancestors (a topological
    order; He et al. assign priorities that comply with it).
    """
    n = task.num_nodes
    succ = _successors(task)
    above, _ = _relatives(task)
    backward = bottom_levels(task)
    forward = [0] * n
    for v in topological_order(n, task.edges):
        forward[v] += task.wcet[v]
        for w in succ[v]:
            forward[w] = max(forward[w], forward[v])
    through = [forward[v] + backward[v] - task.wcet[v] for v in range(n)]
    rank = [-1] * n
    given = 0

    def give(v: int, nodes: set[int]) -> None:
        nonlocal given
        rank[v] = given
        given += 1
        nodes.discard(v)

    def assign(nodes: set[int]) -> None:          # recursion depth <= n (each level has fewer nodes)
        while nodes:
            mask = sum(1 << u for u in nodes)
            sources = [v for v in nodes if not above[v] & mask]
            v = min(sources, key=lambda x: (-through[x], x))
            give(v, nodes)
            nxt = [w for w in succ[v] if w in nodes]
            while nxt:
                v = min(nxt, key=lambda x: (-through[x], -backward[x], x))
                pending = {u for u in nodes if above[v] >> u & 1}
                if pending:
                    assign(set(pending))
                    nodes -= pending
                give(v, nodes)
                nxt = [w for w in succ[v] if w in nodes]

    assign(set(range(n)))
    return rank


MAX_PATH_LABELS = 512       # Pareto labels kept per node before they are merged (see he2019_paths)


def he2019_paths(task: DAGTask, priority: list[int] | None = None) -> list[tuple[int, int]]:
    """(len(lambda), vol(I(lambda))) for every path lambda from a source to a sink that can give the
    maximum in :func:`he2019_bound` (the Pareto-optimal ones; dominated paths are dropped).

    I(v) = {u != v : u neither ancestor nor descendant of v, rank(u) < rank(v)} (the nodes of higher
    priority that can run in parallel with v) and I(lambda) the union of I(v) over v in lambda.
    The search runs over nodes in topological order, extending every kept path of each predecessor;
    a path is dropped when another one ending at the same node is at least as long and its
    interference set contains its own. This maximum over paths is exact; should a node ever hold
    more than ``MAX_PATH_LABELS`` paths, they are merged into one (the longest length and the union
    of the sets): a larger, still sound bound.
    """
    n = task.num_nodes
    rank = he2019_priorities(task) if priority is None else [int(p) for p in priority]
    above, below = _relatives(task)
    interference = [sum(1 << u for u in range(n) if u != v and rank[u] < rank[v]
                        and not (above[v] | below[v]) >> u & 1) for v in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in task.edges:
        preds[v].append(u)
    labels: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for v in topological_order(n, task.edges):
        grown = [(task.wcet[v], interference[v])] if not preds[v] else [
            (length + task.wcet[v], seen | interference[v]) for p in preds[v] for length, seen in labels[p]]
        grown.sort(key=lambda x: (-x[0], -x[1].bit_count()))
        kept: list[tuple[int, int]] = []
        for length, seen in grown:
            if not any(k_len >= length and k_seen | seen == k_seen for k_len, k_seen in kept):
                kept.append((length, seen))
        if len(kept) > MAX_PATH_LABELS:
            merged = 0
            for _, seen in kept:
                merged |= seen
            kept = [(kept[0][0], merged)]
        labels[v] = kept
    sinks = [v for v in range(n) if not any(below[v] >> w & 1 for w in range(n))]
    volume = lambda seen: sum(task.wcet[u] for u in range(n) if seen >> u & 1)  # noqa: E731
    return sorted({(length, volume(seen)) for v in sinks for length, seen in labels[v]})


def he2019_bound(task: DAGTask, processors: int, priority: list[int] | None = None) -> float:
    """He et al. (2019): the response time of the task on ``processors`` = m cores, scheduled by
    global preemptive fixed priorities (:func:`preemptive_schedule`) with the ranks of
    :func:`he2019_priorities`, is at most ``max over paths lambda of len(lambda) + vol(I(lambda)) / m``
    (see :func:`he2019_paths`), for any execution times up to the WCETs: while a node of the
    critical chain is ready but not running, all m cores run higher-priority nodes parallel to it.

    The bound holds for that preemptive scheduler only: under non-preemptive list scheduling a
    lower-priority node started earlier can block a chain node (``test_he2019_needs_preemption``).
    """
    _schedule_inputs(task, processors, None, None)
    return max(length + volume / processors for length, volume in he2019_paths(task, priority))


def he2019_cores(task: DAGTask) -> int | None:
    """The fewest m in 1..n with :func:`he2019_bound` <= D (None if there is none)."""
    paths = he2019_paths(task)
    for m in range(1, task.num_nodes + 1):
        if all(length * m + volume <= task.deadline * m for length, volume in paths):   # exact
            return m
    return None
