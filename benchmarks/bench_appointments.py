"""Appointment scheduling (Taub & Pianykh, PLoS ONE 2022): percentile efficacy and C_alpha of the
baselines on P1-P3 at three alphas, a noise sweep (the paper's Fig 6 axis), and the speed of the
exact routines (one day's full enumeration, one day's exact rank by the plain walk and with the
shared tails, labelling every reachable P3 state).

The paper reports 93 / 95 / 91 percentile efficacy for its learned small trees on P1 / P2 / P3
at alpha 0.5 and 5% noise. Here "percentile" is the mean of each day's own mid-rank among its
orderings (the env's ``percentile_efficacy``); ``benchmarks.paper_strategy`` reports the paper's
reading (the percentile of the mean cost) for the published strategies.

    python -m benchmarks.bench_appointments [--quick] [--speed-only] [--out FILE]
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from sysgym.agents.evaluation import evaluate_batched
from sysgym.agents.heuristics.appointments import HEURISTICS, PAPER_STRATEGIES
from sysgym.bench import format_table, human, measure_vector
from sysgym.cython_core.appointments import Problem
from sysgym.envs.appointments import build_config, label_states
from sysgym.envs.appointments.config import kernel_config

PROBLEMS = ("P1", "P2", "P3")
ALPHAS = (0.25, 0.5, 0.75)
NOISES = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
PAPER_TREES = {"P1": 93.0, "P2": 95.0, "P3": 91.0}
DAY_SEED = 20_000


def policies(problem: str) -> list[str]:
    return ["random", "alternate", *PAPER_STRATEGIES[problem], "oracle"]


def run(problem: str, name: str, days: int, draws: int, **kwargs) -> tuple[np.ndarray, np.ndarray, float]:
    """Percentile efficacy and C_alpha of ``days`` days (seeds DAY_SEED + i), and CPU seconds."""
    vec = gym.make_vec(f"sysgym/Appointments-{problem}-v0", num_envs=days, vectorization_mode="vector_entry_point",
                       **kwargs)
    options = {"draws": draws} if name == "oracle" else {}
    cpu = time.process_time()
    result = evaluate_batched(HEURISTICS[name](vec, seed=0, **options), vec, seed=DAY_SEED)
    cpu = time.process_time() - cpu
    vec.close()
    metrics = result.metrics
    return (np.array([m["percentile_efficacy"] for m in metrics]), np.array([m["cost"] for m in metrics]), cpu)


def efficacy_table(quick: bool) -> str:
    days, draws = (20, 8) if quick else (200, 32)
    rows = []
    for problem in PROBLEMS:
        for name in policies(problem):
            row = [problem, name]
            for alpha in ALPHAS:
                pct, cost, _ = run(problem, name, days, draws, alpha=alpha)
                row.append(f"{pct.mean():.1f} / {cost.mean():.2f}")
            rows.append(row)
        rows.append([problem, "paper's small tree", "", f"{PAPER_TREES[problem]:.0f} / -", ""])
    table = format_table(rows, ["problem", "policy"] + [f"alpha = {a}: percentile / C_alpha" for a in ALPHAS])
    return table + (f"\n\n({days} days per cell, seeds {DAY_SEED}+, noise 5%, 6 short + 6 long (+ up to 2 breaks "
                    f"in P3); oracle with {draws} common noise draws; percentile: mid-rank among every "
                    f"ordering of the same day; C_alpha in minutes)")


def noise_table(quick: bool) -> str:
    days, draws = (10, 4) if quick else (100, 16)
    rows = []
    for problem in PROBLEMS:
        for name in ["alternate", PAPER_STRATEGIES[problem][0], "oracle"]:
            row = [problem, name]
            for noise in NOISES:
                pct, _, _ = run(problem, name, days, draws, noise=noise)
                row.append(f"{pct.mean():.1f}")
            rows.append(row)
    table = format_table(rows, ["problem", "policy"] + [f"noise {n:.0%}" for n in NOISES])
    return table + (f"\n\n(percentile efficacy at alpha 0.5; {days} days per cell; multipliers uniform in "
                    f"[1 - noise, 1 + noise]; oracle with {draws} draws)")


def speed_table(quick: bool) -> str:
    rows = []
    cfg = build_config(problem="P3")
    problem = Problem(kernel_config(cfg))
    factors = 1.0 + cfg.noise * (2.0 * np.random.default_rng(0).random((2, cfg.factor_columns)) - 1.0)
    rng = np.ones(4, dtype=np.uint64)
    repeats = 5 if quick else 50
    cut, problem.rank_cut = problem.rank_cut, -1         # the plain walk: every ordering's cost
    cpu = time.process_time()
    for _ in range(repeats):
        worse, ties, total, _ = problem.rank(np.inf, factors, 0, rng)    # nothing cut: every ordering
    per_day = (time.process_time() - cpu) / repeats
    problem.rank_cut = cut
    rows.append([f"P3 day: cost of all {total:,.0f} orderings (no cuts)", f"{1000 * per_day:.1f} ms", "target < 100 ms"])
    walk, shared = rank_times(problem, cfg, 5 if quick else 40)
    rows.append(["P3 day: exact rank of a random ordering's cost, plain walk (rank_cut=-1)", f"{1e6 * walk:.0f} µs",
                 "alternating with the next row"])
    rows.append([f"P3 day: the same with shared tails (rank_cut={problem.rank_cut}, the default)",
                 f"{1e6 * shared:.0f} µs", f"{walk / shared:.2f}x faster (ratio of the medians)"])
    draws = 4 if quick else 32
    cpu = time.process_time()
    labels = label_states("P3", draws=draws)
    seconds = time.process_time() - cpu
    rows.append([f"label every reachable P3 state ({len(labels):,}), K={draws}", f"{seconds:.1f} s",
                 "target < 60 s (K=32)"])
    steps = 20 if quick else 200
    for name, kwargs in (("P1, percentile on", {}), ("P3, percentile on", {}),
                         ("P3, percentile sample (10,000 orderings)", {"percentile": "sample"}),
                         ("P3, percentile off", {"percentile": "off"})):
        env_id = "sysgym/Appointments-P1-v0" if name.startswith("P1") else "sysgym/Appointments-P3-v1"
        result = measure_vector(env_id, num_envs=256, steps=steps, **kwargs)
        rows.append([f"make_vec B=256 steps/s (wall clock), {env_id[7:]}: {name[4:]}, random valid actions",
                     human(result.steps_per_second), ""])
    return format_table(rows, ["what", "result (CPU time of one core unless said)", "note"])


def rank_times(problem: Problem, cfg, days: int) -> tuple[float, float]:
    """Median CPU seconds of one day's exact rank, by the plain walk and with the shared tails
    (alternating, same days and costs: each day's multipliers and a uniformly random ordering's cost)."""
    rng, state = np.random.default_rng(DAY_SEED), np.ones(4, dtype=np.uint64)
    cut, times = problem.rank_cut, {-1: [], problem.rank_cut: []}
    for _ in range(days):
        factors = 1.0 + cfg.noise * (2.0 * rng.random((2, cfg.factor_columns)) - 1.0)
        tasks = list(rng.permutation([0] * cfg.n_short + [1] * cfg.n_long))
        for _ in range(int(rng.integers(0, cfg.n_breaks + 1))):
            tasks.insert(int(rng.integers(0, len(tasks))), 2)
        cost = problem.cost_of(np.array(tasks + [-1] * (cfg.num_items - len(tasks)), dtype=np.int64), factors)
        for k in times:
            problem.rank_cut = k
            start = time.process_time()
            problem.rank(cost, factors, 0, state)
            times[k].append(time.process_time() - start)
    problem.rank_cut = cut
    return float(np.median(times[-1])), float(np.median(times[cut]))


def main(quick: bool = False, out: str | None = None, speed_only: bool = False) -> None:
    parts = [] if speed_only else [
        "Appointments: percentile efficacy (mean per-day mid-rank) and mean C_alpha (higher / lower is "
        "better)\n", efficacy_table(quick),
        "\nAppointments: percentile efficacy against duration noise (Fig 6 axis)\n", noise_table(quick)]
    parts += ["\nAppointments: speed of the exact routines (this machine, this run)\n", speed_table(quick)]
    print("\n".join(parts))
    if out:
        from pathlib import Path

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    import sys

    out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    main(quick="--quick" in sys.argv, out=out, speed_only="--speed-only" in sys.argv)
