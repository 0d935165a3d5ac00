"""Configuration of the DAG edge-generation family: kwargs validation and the arrays the kernel reads.

Every kwarg has a documented range (see :mod:`sysgym.envs.dag`), checked here in Python before
anything reaches the kernel; tasks from any source are revalidated against the limits of
:mod:`sysgym.envs.dag.tasks`, and task sets are capped in count and packed size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..validate import (
    FLOAT_MAX,
    INT32_MAX,
    choice,
    integer,
    number,
    number_pair,
    probability,
    suggestion,
)
from .dot import load_tasks
from .tasks import MAX_NODES, MAX_TASKS, MAX_TIME, DAGTask, make_task

GENERATORS = ("layered", "forkjoin")
OBSERVATIONS = ("dict", "flat")
INVALID_ACTIONS = ("reject", "raise")
MAX_NODES_LIMIT = MAX_NODES          # max_nodes; per-env state holds O(N^2) matchings
MAX_TASKSET_BYTES = 256 * 2**20      # a task set packed for the kernel (wcet + adjacency bitsets)

# Defaults of the generator parameters (see sysgym.envs.dag for their meaning).
LAYERED_DEFAULTS = {"parallelism": 8, "edge_probability": 0.1}
FORKJOIN_DEFAULTS = {"term_probability": 0.2, "fork_probability": 0.8, "max_branches": 5, "max_depth": 4}
COMMON_DEFAULTS = {"num_nodes": (20, 30), "wcet": (1, 10), "utilisation_min": 2.0}


@dataclass(frozen=True)
class DAGConfig:
    """Validated settings; see :mod:`sysgym.envs.dag` for what each one means."""

    workload: str                       # "layered" | "forkjoin" | "tasks"
    tasks: tuple[DAGTask, ...]          # the task set (workload == "tasks")
    source: str                         # where the tasks came from (for messages)
    num_nodes: tuple[int, int]
    max_nodes: int
    parallelism: int
    layers: tuple[int, int] | None
    edge_probability: float
    term_probability: float
    fork_probability: float
    max_branches: int
    max_depth: int
    wcet: tuple[int, int]
    utilisation_min: float
    processors: int | None
    max_steps: int
    observation: str
    slack_weight: float
    invalid_action: str
    invalid_weight: float

    @property
    def num_actions(self) -> int:
        return self.max_nodes * self.max_nodes

    @property
    def words(self) -> int:
        """uint64 words per node bitset."""
        return (self.max_nodes + 63) // 64


def forkjoin_max_nodes(max_branches: int, max_depth: int, cap: int = MAX_NODES) -> int:
    """The most nodes a fork-join task can have, M(max_depth) with M(0) = 1,
    M(d) = max(2 + b M(d-1), 2 M(d-1)); any value above ``cap`` is reported as ``cap + 1``."""
    most = 1
    for _ in range(max_depth):
        most = max(2 + max_branches * most, 2 * most)
        if most > cap:
            return cap + 1
    return most


def _task_list(workload: Any) -> tuple[tuple[DAGTask, ...], str]:
    if isinstance(workload, DAGTask):
        return (_revalidated(workload, 0),), workload.name or "a DAGTask"
    if isinstance(workload, (str, os.PathLike)):
        path = Path(workload)
        if not path.exists() and path.suffix != ".dot" and len(path.parts) == 1:
            raise ValueError(f"workload must be one of {GENERATORS} or a path to a .dot file or directory, "
                             f"got {str(workload)!r} (no such file either){suggestion(str(workload), GENERATORS)}")
        return tuple(load_tasks(path)), str(workload)
    if isinstance(workload, Sequence) and workload and all(isinstance(t, DAGTask) for t in workload):
        if len(workload) > MAX_TASKS:
            raise ValueError(f"workload: a task set holds at most {MAX_TASKS} tasks, got {len(workload)}")
        return tuple(_revalidated(t, k) for k, t in enumerate(workload)), f"a list of {len(workload)} DAGTasks"
    raise ValueError(f"workload must be one of {GENERATORS}, a path to a .dot file or directory, a DAGTask "
                     f"or a non-empty list of DAGTasks, got {workload!r}")


def _revalidated(task: DAGTask, k: int) -> DAGTask:
    """A DAGTask built directly (not by make_task) is checked like any other input."""
    where = f"workload task {k}" + (f" ({task.name!r})" if task.name else "")
    return make_task(task.wcet, task.edges, task.deadline, name=task.name, node_names=task.node_names,
                     source=where)


def build_config(*, workload: Any = "layered", num_nodes: Any = None, max_nodes: int | None = None,
                 parallelism: int | None = None, layers: Any = None, edge_probability: float | None = None,
                 term_probability: float | None = None, fork_probability: float | None = None,
                 max_branches: int | None = None, max_depth: int | None = None, wcet: Any = None,
                 utilisation_min: float | None = None, processors: int | None = None,
                 max_steps: int | None = None, observation: str = "dict",
                 slack_weight: float = 0.0, invalid_action: str = "reject",
                 invalid_weight: float = 0.0) -> DAGConfig:
    """Validate the family's kwargs into a :class:`DAGConfig` (``ValueError`` on bad input)."""
    given = {k: v for k, v in (("parallelism", parallelism), ("layers", layers),
                               ("edge_probability", edge_probability),
                               ("term_probability", term_probability), ("fork_probability", fork_probability),
                               ("max_branches", max_branches), ("max_depth", max_depth),
                               ("num_nodes", num_nodes), ("wcet", wcet), ("utilisation_min", utilisation_min))
             if v is not None}
    generated = isinstance(workload, str) and workload in GENERATORS
    own: set[str] = set()
    if generated:
        own = set(COMMON_DEFAULTS) | set(LAYERED_DEFAULTS if workload == "layered" else FORKJOIN_DEFAULTS)
        if workload == "layered":
            own.add("layers")
    stray = sorted(set(given) - own)
    if stray:
        kind = f"workload={workload!r}" if generated else "a task-set workload"
        raise ValueError(f"{', '.join(stray)} do(es) not apply to {kind}")
    params = {**COMMON_DEFAULTS, **LAYERED_DEFAULTS, **FORKJOIN_DEFAULTS, **given}

    choice("observation", observation, OBSERVATIONS)
    choice("invalid_action", invalid_action, INVALID_ACTIONS)
    procs = None if processors is None else integer("processors", processors, 1, MAX_NODES)
    steps = None if max_steps is None else integer("max_steps", max_steps, 1, INT32_MAX)
    slack_weight = number("slack_weight", slack_weight, -FLOAT_MAX, FLOAT_MAX)
    invalid_weight = number("invalid_weight", invalid_weight, -FLOAT_MAX, FLOAT_MAX)

    n_range = number_pair("num_nodes", params["num_nodes"], 2, MAX_NODES, integral=True)
    wcet_range = number_pair("wcet", params["wcet"], 0, MAX_TIME, integral=True)
    u = number("utilisation_min", params["utilisation_min"], 0.0, FLOAT_MAX, lo_open=True)
    if layers is not None and parallelism is not None:
        raise ValueError("give parallelism (layer sizes 1..parallelism) or layers (a layer count), not both")
    par = integer("parallelism", params["parallelism"], 2, MAX_NODES)
    layer_range = None if layers is None else number_pair("layers", layers, 1, MAX_NODES, integral=True)
    edge_p = probability("edge_probability", params["edge_probability"])
    term_p = number("term_probability", params["term_probability"], 0.0, 1.0, hi_open=True)
    fork_p = probability("fork_probability", params["fork_probability"])
    branches = integer("max_branches", params["max_branches"], 2, MAX_NODES)
    depth = integer("max_depth", params["max_depth"], 1, MAX_NODES)

    tasks: tuple[DAGTask, ...] = ()
    if generated:
        kind, source = workload, f"the {workload} generator"
        if wcet_range[1] == 0:
            raise ValueError("wcet must allow a positive WCET (high >= 1)")
        # the largest volume, and the largest deadline drawn from it, must stay within MAX_TIME
        most_volume = n_range[1] * wcet_range[1]
        if most_volume > MAX_TIME:
            raise ValueError(f"num_nodes high {n_range[1]} x wcet high {wcet_range[1]} = {most_volume} exceeds "
                             f"2^53, the largest critical path and deadline a task may have: lower wcet")
        if most_volume / u > MAX_TIME:
            raise ValueError(f"num_nodes high {n_range[1]} x wcet high {wcet_range[1]} / utilisation_min {u:g} "
                             f"exceeds 2^53, the largest deadline: raise utilisation_min or lower wcet")
        if workload == "forkjoin" and forkjoin_max_nodes(branches, depth) < n_range[0]:
            raise ValueError(f"fork-join tasks with max_branches={branches}, max_depth={depth} have at most "
                             f"{forkjoin_max_nodes(branches, depth)} nodes < num_nodes low={n_range[0]}")
        largest = n_range[1]
    else:
        kind = "tasks"
        tasks, source = _task_list(workload)
        largest = max(t.num_nodes for t in tasks)
    if max_nodes is None:
        max_nodes = max(largest, 2)   # the env then sets a one-node task aside (skipped_tasks), naming its file
    max_nodes = integer("max_nodes", max_nodes, 2, MAX_NODES_LIMIT)
    if max_nodes < largest:
        raise ValueError(f"max_nodes={max_nodes} is smaller than the largest task of {source} ({largest} nodes)")
    packed = len(tasks) * max_nodes * 8 * (1 + (max_nodes + 63) // 64)
    if packed > MAX_TASKSET_BYTES:
        raise ValueError(f"the task set of {source} ({len(tasks)} tasks padded to max_nodes={max_nodes}) "
                         f"needs {packed} bytes, more than the {MAX_TASKSET_BYTES} byte limit")

    return DAGConfig(workload=kind, tasks=tasks, source=source, num_nodes=n_range, max_nodes=max_nodes,
                     parallelism=par, layers=layer_range, edge_probability=edge_p, term_probability=term_p,
                     fork_probability=fork_p, max_branches=branches, max_depth=depth, wcet=wcet_range,
                     utilisation_min=u, processors=procs,
                     max_steps=max_nodes * max_nodes if steps is None else steps, observation=observation,
                     slack_weight=slack_weight, invalid_action=invalid_action,
                     invalid_weight=invalid_weight)


def kernel_config(cfg: DAGConfig, num_envs: int) -> dict[str, Any]:
    """The flat dict of numbers the Cython kernel reads."""
    return {
        "num_envs": num_envs, "max_nodes": cfg.max_nodes,
        "workload": {"tasks": 0, "layered": 1, "forkjoin": 2}[cfg.workload],
        "flat": int(cfg.observation == "flat"), "processors": cfg.processors or 0,
        "max_steps": cfg.max_steps, "reject_invalid": int(cfg.invalid_action == "reject"), "num_nodes": cfg.num_nodes, "wcet": cfg.wcet,
        "parallelism": cfg.parallelism, "layers": cfg.layers or (0, 0),
        "edge_probability": cfg.edge_probability,
        "term_probability": cfg.term_probability, "fork_probability": cfg.fork_probability,
        "max_branches": cfg.max_branches, "max_depth": cfg.max_depth, "utilisation_min": cfg.utilisation_min,
    }


def task_arrays(cfg: DAGConfig) -> dict[str, np.ndarray]:
    """The task set packed for the kernel: n, deadline, wcet (K, N), adj bitsets (K, N, words)."""
    k, n, words = len(cfg.tasks), cfg.max_nodes, cfg.words
    out = {"n": np.zeros(k, dtype=np.int64), "deadline": np.zeros(k, dtype=np.int64),
           "wcet": np.zeros((k, n), dtype=np.int64), "adj": np.zeros((k, n, words), dtype=np.uint64),
           "playable": np.arange(k, dtype=np.int64)}
    for i, task in enumerate(cfg.tasks):
        out["n"][i] = task.num_nodes
        out["deadline"][i] = task.deadline
        out["wcet"][i, :task.num_nodes] = task.wcet
        for u, v in task.edges:
            out["adj"][i, u, v // 64] |= np.uint64(1) << np.uint64(v % 64)
    return out
