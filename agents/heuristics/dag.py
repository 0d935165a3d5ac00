"""Baselines for DAG edge-generation scheduling: random valid edge, greedy width reduction, and
global list scheduling (no edge generation) as the classic yardstick for "cores needed".

``random`` and ``greedy`` act on ``sysgym/DAG-EGS-v0`` (single env -> int, native vector env ->
one action per sub-env); an episode's ``info["episode_metrics"]["cores_needed"]`` is the width they
reach. :func:`list_scheduling_cores` answers the same question for a :class:`DAGTask` directly: the
fewest processors on which critical-path-first global list scheduling (Graham 1969; priorities by
bottom level as in HLFET / CP-first list schedulers) finishes by the deadline.

References: Sun et al., "Edge Generation Scheduling for DAG Tasks Using Deep Reinforcement
Learning", IEEE TC 2024 (EGS, the random and greedy edge baselines); R. L. Graham, "Bounds on
multiprocessing timing anomalies", SIAM J. Appl. Math. 1969 (list scheduling); T. L. Adam,
K. M. Chandy, J. R. Dickson, "A comparison of list schedules for parallel processing systems",
CACM 1974 (highest-level-first priorities).
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


# ---------------------------------------------------------------- list scheduling (no edges added)
def bottom_levels(task: DAGTask) -> list[int]:
    """b(v) = C_v + the largest b over v's successors: the critical path from v to an exit."""
    succ: list[list[int]] = [[] for _ in range(task.num_nodes)]
    for u, v in task.edges:
        succ[u].append(v)
    level = [0] * task.num_nodes
    for v in reversed(topological_order(task.num_nodes, task.edges)):
        level[v] = task.wcet[v] + max((level[w] for w in succ[v]), default=0)
    return level


def list_schedule(task: DAGTask, processors: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Non-preemptive global list scheduling on ``processors`` identical cores, critical path first.

    Whenever a core is free and nodes are ready (all predecessors finished), the ready node with the
    largest bottom level starts (ties: smallest index) on the free core with the smallest index.
    Returns (makespan, start time per node, core per node).
    """
    if processors < 1:
        raise ValueError(f"processors must be >= 1, got {processors}")
    n = task.num_nodes
    level = bottom_levels(task)
    succ: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    for u, v in task.edges:
        succ[u].append(v)
        waiting[v] += 1
    ready = [(-level[v], v) for v in range(n) if waiting[v] == 0]
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
                heapq.heappush(ready, (-level[w], w))

    while finished < n:
        while free and ready:
            _, v = heapq.heappop(ready)
            c = heapq.heappop(free)
            start[v], core[v] = now, c
            makespan = max(makespan, now + task.wcet[v])
            if task.wcet[v] == 0:
                complete(v, c)                    # done at once; may release more ready nodes
            else:
                heapq.heappush(running, (now + task.wcet[v], c, v))
        if finished == n:
            break
        now = running[0][0]
        while running and running[0][0] == now:
            _, c, v = heapq.heappop(running)
            complete(v, c)
    return makespan, start, core


def list_scheduling_cores(task: DAGTask) -> int:
    """The fewest cores on which :func:`list_schedule` meets the deadline (searched upwards from
    ceil(vol / D); list scheduling is not monotone in the core count, so every count is tried)."""
    first = max(1, math.ceil(task.volume / task.deadline))
    for m in range(first, task.num_nodes + 1):
        if list_schedule(task, m)[0] <= task.deadline:
            return m
    raise AssertionError("with one core per node the makespan is L <= D")   # make_task checked L <= D
