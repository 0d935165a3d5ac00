"""Strategy learning on the appointment problems P1-P3 with the exact oracle as teacher.

Taub & Pianykh, "An alternative to the black box: Strategy learning", PLoS ONE 17(3): e0264485
(2022): every reachable state of a day is labelled with the oracle's best next task type; small
exhaustive trees (M1, "at most three variables past the root": here depth <= 4 with at most 4
tests) and Boolean rules (M2) learnt from them are scored by percentile efficacy, next to greedy
CART with the same limits. Their Table 2 (alpha 0.5, 5% noise): M1 93 / 95 / 91, CART 91 / 87 / 81
on P1 / P2 / P3. Here: the same students on ``label_states`` (all reachable states, oracle over
``--draws`` common noise draws), M1 both on the labels (accuracy) and on the oracle's cost gaps
(regret, VIPER's objective), rules with 2-3 literals (two-action problems P1, P2), the paper's
rules and the oracle as baselines; a noise sweep (its Fig 6 axis) and alpha 0.25 / 0.75 on P3;
and the learnt trees printed. Efficacy: mean ``percentile_efficacy`` over held-out days.

    python -m benchmarks.distill_ocs [--quick] [--episodes N] [--draws K]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sysgym  # noqa: F401
from sysgym.agents.distill import (
    CartStudent,
    DistillConfig,
    EnvMaker,
    OptimalStudent,
    RuleStudent,
    Samples,
    distill,
    policy_for,
    training_set,
)
from sysgym.agents.distill.rollouts import evaluate
from sysgym.agents.heuristics.appointments import HEURISTICS, PAPER_RULES
from sysgym.bench import format_table
from sysgym.envs.appointments import label_states

PAPER = {"P1": (93, 91), "P2": (95, 87), "P3": (91, 81)}   # Table 2: M1, CART (alpha 0.5, 5% noise)
SEED = 500_000


def labelled(problem: str, draws: int, **kwargs) -> tuple[Samples, tuple[str, ...]]:
    """Every reachable state with the oracle's best action and values (minus expected cost)."""
    lab = label_states(problem, draws=draws, **kwargs)
    q = np.where(lab.mask, -np.where(np.isfinite(lab.values), lab.values, 0.0), np.nan)
    return Samples(lab.features.astype(np.float32), lab.mask, lab.best_action, q), lab.feature_names


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


def efficacy(policy, problem: str, episodes: int, **kwargs) -> float:
    maker = EnvMaker(f"sysgym/Appointments-{problem}-v0", kwargs)
    make = policy if isinstance(policy, type) else (lambda env, p=policy: p)
    return evaluate(maker, make, episodes, SEED).mean("percentile_efficacy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--episodes", type=int, default=400, help="held-out days per cell")
    parser.add_argument("--draws", type=int, default=32, help="oracle noise draws (K)")
    parser.add_argument("--noise", default="0,0.05,0.25,0.5,0.75,1", help="noise sweep levels")
    parser.add_argument("--sweep-problems", default="P1,P2,P3", help="problems in the noise sweep")
    parser.add_argument("--dagger-iterations", type=int, default=4)
    parser.add_argument("--dagger-samples", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.draws, args.noise, args.sweep_problems = 30, 8, "0,1", "P1"
        args.dagger_iterations, args.dagger_samples = 2, 300
    sweep_problems = args.sweep_problems.split(",")
    start = time.perf_counter()
    rows, trees = [], {}
    for problem in ("P1", "P2", "P3"):
        policies = fit_all(problem, args.draws)
        for name, policy in policies.items():
            paper = {"M1 optimal (labels)": PAPER[problem][0], "CART (same limits)": PAPER[problem][1]}.get(name, "")
            rows.append([problem, name, f"{efficacy(policy, problem, args.episodes):.1f}", str(paper),
                         ", ".join(f"{v} {k}" for k, v in policy.size().items())])
            trees[(problem, name)] = policy.text()
        dagger = distill(f"sysgym/Appointments-{problem}-v0", "oracle", OptimalStudent(max_depth=4, max_nodes=4),
                         config=DistillConfig(iterations=args.dagger_iterations, samples=args.dagger_samples,
                                              weighting="viper", eval_episodes=32, seed=1))
        rows.append([problem, "M1 optimal via DAgger (regret)", f"{efficacy(dagger.policy, problem, args.episodes):.1f}",
                     "", ", ".join(f"{v} {k}" for k, v in dagger.policy.size().items())])
        trees[(problem, "M1 optimal via DAgger (regret)")] = dagger.policy.text()
        baselines = ["oracle", *PAPER_RULES[problem], "alternate", "random"]
        for name in baselines:
            rows.append([problem, f"baseline: {name}", f"{efficacy(HEURISTICS[name], problem, args.episodes):.1f}",
                         "", ""])
        print(f"  {problem} done ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\nPercentile efficacy (%), alpha 0.5, noise 5%, {args.episodes} held-out days from seed {SEED}; "
          f"students trained on every reachable state labelled by the oracle (K={args.draws})\n")
    print(format_table(rows, ["problem", "policy", "efficacy", "paper Table 2", "size"]))

    sweep = []
    for noise in [float(x) for x in args.noise.split(",")]:
        row = [f"{noise:g}"]
        for problem in sweep_problems:
            policies = fit_all(problem, args.draws, noise=noise)
            for name in ("M1 optimal (labels)", "CART (same limits)"):
                row.append(f"{efficacy(policies[name], problem, args.episodes, noise=noise):.1f}")
            row.append(f"{efficacy(HEURISTICS['oracle'], problem, args.episodes, noise=noise):.1f}")
        sweep.append(row)
        print(f"  noise {noise:g} done ({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nNoise sweep (duration noise half-width; the paper's Fig 6 axis): percentile efficacy (%)\n")
    print(format_table(sweep, ["noise", *(f"{p} {w}" for p in sweep_problems for w in ("M1", "CART", "oracle"))]))

    alpha_rows = []
    for alpha in (0.25, 0.75) if args.quick else (0.25, 0.5, 0.75):
        policies = fit_all("P3", args.draws, alpha=alpha)
        alpha_rows.append([f"{alpha:g}"] + [f"{efficacy(policies[n], 'P3', args.episodes, alpha=alpha):.1f}"
                                            for n in ("M1 optimal (labels)", "M1 optimal (regret)", "CART (same limits)")]
                          + [f"{efficacy(HEURISTICS['oracle'], 'P3', args.episodes, alpha=alpha):.1f}"])
    print("\nP3, alpha = weight of idle time in C_alpha (paper: M1 91% at 0.5 -> 82% at 0.75)\n")
    print(format_table(alpha_rows, ["alpha", "M1 (labels)", "M1 (regret)", "CART", "oracle"]))

    print("\nLearnt trees and rules (alpha 0.5, noise 5%), next to the paper's rules as our heuristics read them")
    for problem in ("P1", "P2", "P3"):
        for rule in PAPER_RULES[problem]:
            doc = " ".join((HEURISTICS[rule].__doc__ or "").split())
            print(f"\n{problem} paper rule {rule}: {doc}")
        for (p, name), text in trees.items():
            if p == problem:
                print(f"\n{problem} {name}:\n{text}", end="")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
