"""DAG edge-generation scheduling: kernel throughput at n = 20/40/60 and the cores each baseline
needs on the same generated tasks.

For scale, the public Python/scipy reference implementation of EGS (github.com/binqi-sun/egs)
takes 8 / 26 / 47 ms per step at n = 20 / 40 / 60 on this machine (~40 steps/s at n = 40; numbers
from the issue that commissioned this family).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from sysgym.agents.evaluation import evaluate_batched
from sysgym.agents.heuristics.dag import (
    HEURISTICS,
    graham_cores,
    he2019_cores,
    list_scheduling_cores,
)
from sysgym.bench import format_table, human, measure_single, measure_vector
from sysgym.envs.dag import generate_tasks

ENV_ID = "sysgym/DAG-EGS-v0"
SIZES = (20, 40, 60)
TASK_SEED = 10_000


def _timed(measure, *args, **kwargs):
    """A Throughput plus the steps per second of this process's CPU time (what one uncontended
    core would do; on a shared machine wall time also counts the waits for a core)."""
    cpu = time.process_time()
    result = measure(*args, **kwargs)
    return result, result.steps / (time.process_time() - cpu)


def throughput(quick: bool) -> str:
    single_steps, calls, b = (1_500, 8, 256) if quick else (30_000, 200, 256)
    rows = []
    for n in SIZES:
        kwargs = {"num_nodes": (n, n)}
        single, single_cpu = _timed(measure_single, ENV_ID, steps=single_steps, **kwargs)
        vector, vector_cpu = _timed(measure_vector, ENV_ID, num_envs=b, steps=calls, **kwargs)
        rows.append([str(n), f"{human(single.steps_per_second)} / {human(single_cpu)}",
                     f"{human(vector.steps_per_second)} / {human(vector_cpu)}"])
    return format_table(rows, ["n", "single env (gymnasium.make) steps/s, wall / CPU",
                               f"make_vec B={b} steps/s, wall / CPU"])


def cores_table(quick: bool) -> str:
    tasks_per_size = 20 if quick else 200
    rows = []
    for n in SIZES:
        vec = gym.make_vec(ENV_ID, num_envs=tasks_per_size, vectorization_mode="vector_entry_point",
                           num_nodes=(n, n))
        cores, seconds = {}, {}
        for name, cls in HEURISTICS.items():
            start = time.perf_counter()
            result = evaluate_batched(cls(vec, seed=0), vec, seed=TASK_SEED)
            seconds[name] = time.perf_counter() - start
            cores[name] = np.array([m["cores_needed"] for m in result.metrics])
            if name == "greedy":
                lower = np.array([m["width_lower_bound"] for m in result.metrics])
                initial = np.array([m["initial_width"] for m in result.metrics])
        vec.close()
        start = time.perf_counter()
        tasks = generate_tasks(tasks_per_size, seed=TASK_SEED, num_nodes=(n, n))
        cores["list"] = np.array([list_scheduling_cores(t) for t in tasks])
        seconds["list"] = time.perf_counter() - start
        row = [str(n), f"{initial.mean():.2f}"]
        for name in ("random", "greedy"):
            row.append(f"{cores[name].mean():.2f} / {cores[name].max():.0f}")
        for analysis in (graham_cores, he2019_cores):
            row.append(_certified(analysis(t) for t in tasks))
        row.append(f"{cores['list'].mean():.2f} / {cores['list'].max():.0f}")
        row += [f"{lower.mean():.2f}", f"{np.mean(cores['greedy'] < cores['list']):.0%} / "
                                       f"{np.mean(cores['greedy'] > cores['list']):.0%}"]
        rows.append(row)
    table = format_table(rows, ["n", "initial width", "random EGS mean / worst", "greedy EGS mean / worst",
                                "Graham mean (never)", "He'19 mean (never)",
                                "list scheduling, not sound: mean / worst", "final lower bound (greedy)",
                                "greedy better / worse than list"])
    return table + (f"\n\n({tasks_per_size} layered tasks per size, seeds {TASK_SEED}+, default generator "
                    f"parameters; cores needed = final width for EGS, the fewest cores the analysis "
                    f"certifies for Graham 1969 and He et al. 2019 (\"never\": none up to n), the fewest "
                    f"cores on which one list schedule at the WCETs meets D for list scheduling; EGS and "
                    f"the analyses are sound, list scheduling is not: see sysgym.agents.heuristics.dag)")


def _certified(cores) -> str:
    """'mean (never)' over the tasks an analysis certifies at some core count."""
    values = list(cores)
    ok = [c for c in values if c is not None]
    return f"{np.mean(ok):.2f} ({len(values) - len(ok)})" if ok else f"- ({len(values)})"


def main(quick: bool = False) -> None:
    print("DAG-EGS throughput (random valid edges; one core)\n")
    print(throughput(quick))
    print("\nDAG-EGS: cores needed to meet the deadline (lower is better)\n")
    print(cores_table(quick))


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
