"""The strategies Taub & Pianykh publish for P1-P3 (PLoS ONE 2022, section 3), played on held-out
days and scored both ways: the paper's percentile efficacy (the percentile of the strategy's
*mean* cost among the pooled costs of every ordering of those days, section 3.1) and the mean of
each day's own mid-rank (the env's ``percentile_efficacy``), next to the paper's number.

    python -m benchmarks.paper_strategy [--quick] [--days N] [--out FILE]

Days: seeds DAY_SEED .. DAY_SEED + days - 1, never used to build or choose any of these rules
(they come from the paper's text) nor by ``benchmarks.distill_ocs`` for training.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sysgym  # noqa: F401
from sysgym.agents.heuristics.appointments import HEURISTICS, PAPER_STRATEGIES
from sysgym.bench import format_table
from sysgym.envs.appointments import percentile_of_mean

DAY_SEED = 700_000
# The paper's percentile efficacy of its learned strategies at alpha 0.5 and 5% noise (sections
# 3.1-3.3, Table 2 M1) and of P3 at alpha 0.75 (section 3.3).
PAPER = {"P1": 93.0, "P2": 95.0, "P3": 91.0}
PAPER_P3_ALPHA = {0.25: "> 91", 0.5: "91", 0.75: "82"}
NOISES = (0.0, 0.05, 0.25, 0.5, 1.0)


def play_days(problem: str, make_policy: Any, days: int, seed: int = DAY_SEED,
              **kwargs: Any) -> dict[str, Any]:
    """One episode per day (sub-env i: seed + i) of ``Appointments-<problem>-v0``: per-day costs,
    mid-rank percentiles and multipliers, and both efficacies. ``make_policy(vec)`` gives a policy
    acting on the whole native vector env."""
    vec = gym.make_vec(f"sysgym/Appointments-{problem}-v0", num_envs=days, vectorization_mode="vector_entry_point",
                       autoreset_mode="NextStep", **kwargs)
    try:
        policy = make_policy(vec)
        obs, infos = vec.reset(seed=seed)
        factors = vec.unwrapped.day_factors()
        costs, ranks = np.full(days, np.nan), np.full(days, np.nan)
        finished = np.zeros(days, dtype=bool)
        while not finished.all():
            obs, _, terminated, _, infos = vec.step(policy.act(obs, infos))
            ended = terminated & ~finished
            if not ended.any():
                continue
            ep = infos["episode_metrics"]
            costs[ended] = ep["cost"][ended]
            ranks[ended] = ep["percentile_efficacy"][ended]
            finished |= ended
        paper = percentile_of_mean(vec.unwrapped.config, factors, costs)
    finally:
        vec.close()
    return {"costs": costs, "ranks": ranks, "paper": paper["percentile_efficacy"], "mean_rank": float(ranks.mean()),
            "mean_cost": float(costs.mean())}


def heuristic(name: str) -> Any:
    return lambda vec: HEURISTICS[name](vec, seed=0)


def strategy_rows(days: int, alpha: float = 0.5, noise: float = 0.05) -> list[list[str]]:
    rows = []
    for problem in ("P1", "P2", "P3"):
        for name in (*PAPER_STRATEGIES[problem], "alternate", "random", "oracle"):
            r = play_days(problem, heuristic(name), days, alpha=alpha, noise=noise)
            paper = f"{PAPER[problem]:.0f} (learnt tree)" if name in PAPER_STRATEGIES[problem] else ""
            rows.append([problem, name, f"{r['paper']:.1f}", f"{r['mean_rank']:.1f}", f"{r['mean_cost']:.2f}", paper])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--out", type=Path, default=None, help="also write the output to this file")
    args = parser.parse_args(argv)
    days = 40 if args.quick else args.days
    start = time.perf_counter()
    lines = [f"Taub & Pianykh's published strategies on {days} held-out days (seeds {DAY_SEED}..{DAY_SEED + days - 1}),"
             " alpha 0.5, noise 5% (uniform multipliers in [0.95, 1.05])", ""]
    heads = ["problem", "policy", "paper's percentile (of the mean cost)", "mean per-day mid-rank", "mean C_alpha",
             "paper says"]
    lines.append(format_table(strategy_rows(days), heads))
    lines += ["", "P3 against alpha (section 3.3: 91% at 0.5, 82% at 0.75, above 91% at 0.25): paper's percentile", ""]
    rows = []
    for alpha in (0.25, 0.5, 0.75):
        row = [f"{alpha:g}", PAPER_P3_ALPHA[alpha]]
        for name in ("p3_paper_tree", "oracle"):
            row.append(f"{play_days('P3', heuristic(name), days, alpha=alpha)['paper']:.1f}")
        rows.append(row)
    lines.append(format_table(rows, ["alpha", "paper (learnt tree)", "p3_paper_tree", "oracle"]))
    lines += ["", "Noise (the paper's Fig 6 axis; multipliers uniform in [1 - noise, 1 + noise]): paper's percentile", ""]
    rows = []
    for noise in NOISES:
        row = [f"{noise:g}"]
        for problem, name in (("P1", "p1_paper_tree"), ("P2", "p2_paper_tree"), ("P3", "p3_paper_tree")):
            row.append(f"{play_days(problem, heuristic(name), days, noise=noise)['paper']:.1f}")
        rows.append(row)
    lines.append(format_table(rows, ["noise", "P1 p1_paper_tree", "P2 p2_paper_tree", "P3 p3_paper_tree"]))
    lines += ["", "(oracle: best next type with an optimal continuation over 32 common noise draws; random: a "
              "uniformly random ordering)", f"({time.perf_counter() - start:.0f} s)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
