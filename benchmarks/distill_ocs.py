"""Strategy learning on the appointment problems P1-P3 with the exact oracle as teacher.

Taub & Pianykh, "An alternative to the black box: Strategy learning", PLoS ONE 17(3): e0264485
(2022): every reachable state of a day is labelled with the next task type whose tails cost least
*on average* (section 2.3, Fig 1: "consider all possible branching tails ... compute the average
cost"; our ``oracle="average"``, the default here; ``--oracle best`` labels with an optimal
continuation instead), and small exhaustive trees (M1, "limited by three variables past the root
node", section 2.5: here depth <= 4 with at most 4 tests) and Boolean rules (M2) learnt from them
are scored by percentile efficacy, next to greedy CART with the same limits (Table 2, alpha 0.5,
5% noise: M1 93 / 95 / 91, CART 91 / 87 / 81 on P1 / P2 / P3). Efficacy is reported both ways:
the paper's (the percentile of the mean cost among the pooled orderings of the test days,
section 3.1) and the mean per-day mid-rank. Also: M1 on the oracle's cost gaps (regret, VIPER's
objective), M1 in a DAgger loop, the paper's published strategies and the oracle as baselines, a
noise sweep (Fig 6 axis) of M1 and CART on every problem, alpha 0.25 / 0.5 / 0.75 on P3 (section
3.3) and the learnt trees.

    python -m benchmarks.distill_ocs [--quick] [--episodes N] [--draws K] [--oracle average|best]
        [--part all|main|noise|alpha] [--sweep-problems P1,P2,P3]

Seeds: students are fitted on every reachable state (no episode seeds; noise draws of the oracle
from seed 0); DAgger trains on seeds from 1 and selects its iterate on seeds from 1,000,000; all
efficacies are measured on the test days of ``benchmarks.paper_strategy`` (700,000 on).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sysgym  # noqa: F401
from sysgym.agents.distill import (
    CartStudent,
    DistillConfig,
    OptimalStudent,
    RuleStudent,
    Samples,
    Teacher,
    distill,
    policy_for,
    training_set,
)
from sysgym.agents.heuristics.appointments import HEURISTICS, PAPER_STRATEGIES, OraclePolicy
from sysgym.bench import format_table
from sysgym.envs.appointments import label_states

from .paper_strategy import DAY_SEED, play_days

PAPER = {"P1": (93, 91), "P2": (95, 87), "P3": (91, 81)}   # Table 2: M1, CART (alpha 0.5, 5% noise)
ORACLE = "average"


def labelled(problem: str, draws: int, **kwargs) -> tuple[Samples, tuple[str, ...]]:
    """Every reachable state with the oracle's best action and values (minus expected cost)."""
    lab = label_states(problem, draws=draws, oracle=ORACLE, **kwargs)
    q = np.where(lab.mask, -np.where(np.isfinite(lab.values), lab.values, 0.0), np.nan)
    return Samples(lab.features.astype(np.float32), lab.mask, lab.best_action, q), lab.feature_names


def oracle_teacher(draws: int) -> Teacher:
    """The appointment oracle in the labels' mode (ORACLE) as a DAgger teacher, with its values."""
    def values(vec) -> np.ndarray:
        cost = np.asarray(vec.unwrapped.oracle_values(draws=draws, oracle=ORACLE), dtype=np.float64)
        return np.where(np.isfinite(cost), -cost, np.nan)

    return Teacher(f"oracle ({ORACLE})", lambda env: OraclePolicy(env, draws=draws, oracle=ORACLE), values=values)


def students(n_actions: int) -> dict[str, tuple[object, str]]:
    out = {"M1 optimal (labels)": (OptimalStudent(max_depth=4, max_nodes=4, max_thresholds=None), "none"),
           "M1 optimal (regret)": (OptimalStudent(max_depth=4, max_nodes=4, max_thresholds=None), "viper"),
           "CART (same limits)": (CartStudent(max_depth=4, max_leaf_nodes=5), "none")}
    if n_actions == 2:
        for k in (2, 3):
            out[f"M2 rule, {k} literals"] = (RuleStudent(max_literals=k), "viper")
    return out


def fit_all(problem: str, draws: int, **kwargs) -> dict[str, object]:
    data, names = labelled(problem, draws, **kwargs)
    actions = ("short", "long", "break")[:data.n_actions]
    policies = {}
    for name, (student, weighting) in students(data.n_actions).items():
        model = student.fit(training_set(data, weighting))
        policies[name] = policy_for(model, names, actions, (len(names),))
    return policies


def scores(policy, problem: str, episodes: int, **kwargs) -> tuple[float, float]:
    """(the paper's percentile of the mean cost, the mean per-day mid-rank) on the test days."""
    make = policy if isinstance(policy, type) else (lambda env, p=policy: p)
    r = play_days(problem, make, episodes, **kwargs)
    return r["paper"], r["mean_rank"]


def efficacy(policy, problem: str, episodes: int, **kwargs) -> float:
    return scores(policy, problem, episodes, **kwargs)[0]


def both(policy, problem: str, episodes: int, **kwargs) -> list[str]:
    return [f"{x:.1f}" for x in scores(policy, problem, episodes, **kwargs)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--episodes", type=int, default=400, help="held-out days per cell")
    parser.add_argument("--draws", type=int, default=32, help="oracle noise draws (K)")
    parser.add_argument("--noise", default="0,0.05,0.25,0.5,1", help="noise sweep levels")
    parser.add_argument("--oracle", default="average", choices=("average", "best"), help="labels")
    parser.add_argument("--sweep-problems", default="P1,P2,P3", help="problems in the noise sweep")
    parser.add_argument("--dagger-iterations", type=int, default=4)
    parser.add_argument("--dagger-samples", type=int, default=2000)
    parser.add_argument("--part", default="all", choices=("all", "main", "noise", "alpha"),
                        help="main: the table and the trees; noise: the sweep; alpha: P3 against alpha")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.draws, args.noise, args.sweep_problems = 30, 8, "0,1", "P1"
        args.dagger_iterations, args.dagger_samples = 2, 300
    global ORACLE
    ORACLE = args.oracle
    sweep_problems = args.sweep_problems.split(",")
    start = time.perf_counter()
    if args.part in ("all", "main"):
        main_table(args, start)
    if args.part in ("all", "noise"):
        noise_table(args, sweep_problems, start)
    if args.part in ("all", "alpha"):
        alpha_table(args)
    print(f"\n({time.perf_counter() - start:.0f} s)")


def main_table(args, start: float) -> None:
    rows, trees, seeds = [], {}, []
    for problem in ("P1", "P2", "P3"):
        policies = fit_all(problem, args.draws)
        for name, policy in policies.items():
            paper = {"M1 optimal (labels)": PAPER[problem][0], "CART (same limits)": PAPER[problem][1]}.get(name, "")
            rows.append([problem, name, *both(policy, problem, args.episodes), str(paper),
                         ", ".join(f"{v} {k}" for k, v in policy.size().items())])
            trees[(problem, name)] = policy.text()
        dagger = distill(f"sysgym/Appointments-{problem}-v0", oracle_teacher(args.draws),
                         OptimalStudent(max_depth=4, max_nodes=4),
                         config=DistillConfig(iterations=args.dagger_iterations, samples=args.dagger_samples,
                                              weighting="viper", eval_episodes=32, seed=1))
        rows.append([problem, "M1 optimal via DAgger (regret)", *both(dagger.policy, problem, args.episodes),
                     "", ", ".join(f"{v} {k}" for k, v in dagger.policy.size().items())])
        trees[(problem, "M1 optimal via DAgger (regret)")] = dagger.policy.text()
        seeds.append(f"{problem} DAgger: training seeds {dagger.training_seeds[0]}-{dagger.training_seeds[1]}, "
                     f"selection seeds {dagger.selection_seeds[0]}-{dagger.selection_seeds[1]}")
        teacher = play_days(problem, lambda vec: OraclePolicy(vec, draws=args.draws, oracle=ORACLE), args.episodes)
        rows.append([problem, f"baseline: the labels' oracle ({ORACLE})", f"{teacher['paper']:.1f}",
                     f"{teacher['mean_rank']:.1f}", "", ""])
        for name in ["oracle", *PAPER_STRATEGIES[problem], "alternate", "random"]:
            rows.append([problem, f"baseline: {name}", *both(HEURISTICS[name], problem, args.episodes), "", ""])
        print(f"  {problem} done ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\nPercentile efficacy (%), alpha 0.5, noise 5%, {args.episodes} test days (seeds {DAY_SEED}-"
          f"{DAY_SEED + args.episodes - 1}); students trained on every reachable state labelled by the "
          f"{ORACLE!r} oracle (K={args.draws} noise draws)\n")
    print(format_table(rows, ["problem", "policy", "paper's percentile", "mean mid-rank", "paper Table 2", "size"]))
    print("\n".join(["", *seeds]))
    print("\nLearnt trees and rules (alpha 0.5, noise 5%), next to the paper's strategies as our heuristics read them")
    for problem in ("P1", "P2", "P3"):
        for rule in PAPER_STRATEGIES[problem]:
            doc = " ".join((HEURISTICS[rule].__doc__ or "").split())
            print(f"\n{problem} paper strategy {rule}: {doc}")
        for (p, name), text in trees.items():
            if p == problem:
                print(f"\n{problem} {name}:\n{text}", end="")


def noise_table(args, sweep_problems: list[str], start: float) -> None:
    sweep = []
    for noise in [float(x) for x in args.noise.split(",")]:
        row = [f"{noise:g}"]
        for problem in sweep_problems:
            policies = fit_all(problem, args.draws, noise=noise)
            for name in ("M1 optimal (labels)", "CART (same limits)"):
                row.append(f"{efficacy(policies[name], problem, args.episodes, noise=noise):.1f}")
        sweep.append(row)
        print(f"  noise {noise:g} done ({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nNoise sweep (duration noise half-width; the paper's Fig 6 axis): the paper's percentile (%)\n")
    print(format_table(sweep, ["noise", *(f"{p} {w}" for p in sweep_problems for w in ("M1", "CART"))]))
    print(f"({args.episodes} test days per cell from seed {DAY_SEED}; labels: {ORACLE!r} oracle, K={args.draws})")


def alpha_table(args) -> None:
    alpha_rows = []
    for alpha in (0.25, 0.75) if args.quick else (0.25, 0.5, 0.75):
        policies = fit_all("P3", args.draws, alpha=alpha)
        alpha_rows.append([f"{alpha:g}"] + [f"{efficacy(policies[n], 'P3', args.episodes, alpha=alpha):.1f}"
                                            for n in ("M1 optimal (labels)", "M1 optimal (regret)", "CART (same limits)")])
    print("\nP3, alpha = weight of idle time in C_alpha (paper: M1 91% at 0.5 -> 82% at 0.75, above 91% at "
          "0.25): the paper's percentile (%)\n")
    print(format_table(alpha_rows, ["alpha", "M1 (labels)", "M1 (regret)", "CART"]))
    print(f"({args.episodes} test days per cell from seed {DAY_SEED}; noise 5%; labels: {ORACLE!r} oracle, "
          f"K={args.draws})")


if __name__ == "__main__":
    main()
