"""Draw task sets from the env's own generators (the same tasks an episode would start from)."""

from __future__ import annotations

from typing import Any

from ..validate import integer
from .env import DAGVectorEnv
from .tasks import MAX_TASKS, DAGTask

CHUNK = 256


def generate_tasks(count: int, seed: int = 0, **kwargs: Any) -> list[DAGTask]:
    """``count`` tasks: task k is the one ``reset(seed=seed + k)`` starts from with these kwargs
    (``workload="layered"`` or ``"forkjoin"`` and the generator parameters of
    :mod:`sysgym.envs.dag`), named ``"<workload>-<seed + k>"``. Tasks done before any edge is added
    are redrawn, as in the env."""
    count = integer("count", count, 1, MAX_TASKS)
    tasks: list[DAGTask] = []
    workload = kwargs.get("workload", "layered")
    for start in range(0, count, CHUNK):
        b = min(CHUNK, count - start)
        vec = DAGVectorEnv(b, copy=False, **kwargs)
        if vec.config.workload == "tasks":
            raise ValueError("generate_tasks needs a generator workload ('layered' or 'forkjoin')")
        vec.reset(seed=seed + start)
        for i in range(b):
            task = vec.task(i)
            tasks.append(DAGTask(task.wcet, task.edges, task.deadline, f"{workload}-{seed + start + i}"))
    return tasks
