"""Regenerate the shipped DAG task sets: ``python -m sysgym.traces.dag.make_tasksets``.

Every file is drawn by the env's own generators (``sysgym.envs.dag.generate_tasks``) from a fixed
seed, so ``gym.make("sysgym/DAG-EGS-v0", num_nodes=(40, 40)).reset(seed=s)`` starts from the same
task as entry ``s - seed`` of ``layered_n40.dot``. One DOT file holds a whole set (one digraph
per task); the hand-worked 7-node example of the tests is written too.
"""

from __future__ import annotations

from pathlib import Path

from sysgym.envs.dag import format_dot, generate_tasks, make_task

HERE = Path(__file__).resolve().parent
TASKS_PER_SET = 50

SETS = {
    "layered_n20.dot": {"seed": 20_000, "workload": "layered", "num_nodes": (20, 20)},
    "layered_n40.dot": {"seed": 40_000, "workload": "layered", "num_nodes": (40, 40)},
    "layered_n60.dot": {"seed": 60_000, "workload": "layered", "num_nodes": (60, 60)},
    "forkjoin_n20-40.dot": {"seed": 90_000, "workload": "forkjoin", "num_nodes": (20, 40)},
}

EXAMPLE = make_task([1, 3, 2, 2, 2, 2, 1], [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 5), (4, 6), (5, 6)],
                    8, name="example_7nodes")


def header(name: str, params: dict) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return (f"// {name}: {TASKS_PER_SET} DAG tasks drawn by sysgym.envs.dag.generate_tasks({TASKS_PER_SET}, "
            f"{shown}) with the other generator parameters at their defaults.\n"
            f"// Node k is task node k; C = WCET, D = deadline (sysgym DAG-EGS, Sun et al. IEEE TC 2024).\n")


def main() -> None:
    for name, params in SETS.items():
        tasks = generate_tasks(TASKS_PER_SET, **params)
        text = header(name, params) + "".join(format_dot(task) for task in tasks)
        (HERE / name).write_text(text, encoding="utf-8")
    (HERE / "example_7nodes.dot").write_text(
        "// The 7-node example of tests/dag/test_fixture.py: width 3, L = 7, D = 8; adding 2 -> 3 gives\n"
        "// width 2 with L = 8.\n" + format_dot(EXAMPLE), encoding="utf-8")


if __name__ == "__main__":
    main()
