"""Any teacher, any env: depth-3 trees distilled from robustMPC on ABR and from AIMD on CC-Discrete.

DAgger (VIPER's schedule: the student drives from iteration 1 on, best iterate on held-out seeds)
into CART and optimal (STreeD) trees of depth 3; reports what the tree keeps of the teacher's
return and family metric (QoE per chunk for ABR, utilisation for CC) on held-out episodes,
fidelity on held-out teacher states, decision latency, and prints the tree.

Seeds: DAgger trains on episodes from seed 1, chooses its iterate on 16 selection episodes from
seed 1,000,000, and every policy is scored on ``--episodes`` test episodes from seed 2,000,000
(fidelity: teacher states from the seeds after them); the ranges are checked disjoint and printed.

    python -m benchmarks.distill_any [--quick] [--iterations N] [--samples N] [--episodes N]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

import sysgym  # noqa: F401
from sysgym.agents.distill import DistillConfig, EnvMaker, OptimalStudent, distill, resolve_teacher
from sysgym.agents.distill.rollouts import (
    FAMILY_METRICS,
    collect,
    decision_latency,
    evaluate,
    fidelity,
)
from sysgym.agents.distill.seeds import check_disjoint, collection_bound, describe, episode_range
from sysgym.bench import format_table

CASES = (("sysgym/ABR-v0", "heuristic:robust_mpc", "abr"), ("sysgym/CC-Discrete-v0", "heuristic:aimd", "cc"))
SEED = 2_000_000                                     # test episodes
TRAIN_SEED, SELECTION_SEED, SELECTION_EPISODES = 1, 1_000_000, 16
FIDELITY_STATES = 2000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--samples", type=int, default=4000, help="states per DAgger iteration")
    parser.add_argument("--episodes", type=int, default=64, help="held-out episodes")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--optimal-time-limit", type=float, default=120.0)
    parser.add_argument("--weighting", choices=("none", "viper"), default="none",
                        help="viper needs set_state on the env (simulated Q)")
    parser.add_argument("--critical", type=float, default=None, help="train on this top fraction of critical states")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.samples, args.episodes, args.optimal_time_limit = 2, 500, 8, 20.0
    config = DistillConfig(iterations=args.iterations, samples=args.samples, eval_episodes=SELECTION_EPISODES,
                           eval_seed=SELECTION_SEED, seed=TRAIN_SEED, weighting=args.weighting, critical=args.critical)
    ranges = {"training episodes (bound)": config.training_seeds(), "selection episodes": config.selection_seeds(),
              "test episodes": episode_range(SEED, args.episodes),
              "fidelity states (bound)": collection_bound(SEED + args.episodes, FIDELITY_STATES, 16)}
    check_disjoint(ranges)
    trained: list[int] = []
    start = time.perf_counter()
    rows, texts = [], []
    for env_id, spec, family in CASES:
        maker = EnvMaker(env_id)
        teacher = resolve_teacher(spec, env_id)
        metric = FAMILY_METRICS[family][0]
        base = evaluate(maker, teacher.build, args.episodes, SEED)
        held, _ = collect(maker, teacher, None, 1.0, FIDELITY_STATES, itertools.count(SEED + args.episodes),
                          num_envs=16, rng=np.random.default_rng(0))
        teacher_us = decision_latency(maker, teacher.build, 300)
        rows.append([env_id.split("/")[1], spec, "-", f"{base.mean_return():.4g}", f"{base.mean(metric):.4g}",
                     "100%", "1", f"{teacher_us:.1f}"])
        for name, student in (("cart", "cart"), ("optimal", OptimalStudent(args.depth, max_thresholds=8,
                                                                          time_limit=args.optimal_time_limit))):
            kwargs = {"max_depth": args.depth} if name == "cart" else {}
            result = distill(env_id, teacher, student, config=config, **kwargs)
            trained.append(result.training_seeds[1])
            policy = result.policy
            e = evaluate(maker, lambda env, p=policy: p, args.episodes, SEED)
            kept = e.mean(metric) / base.mean(metric) if base.mean(metric) else float("nan")
            size = policy.size()
            rows.append([env_id.split("/")[1], f"{name} depth {args.depth} (iterate {result.best})",
                         f"{size['leaves']} / {size['nodes']}", f"{e.mean_return():.4g}", f"{e.mean(metric):.4g}",
                         f"{100 * kept:.1f}%", f"{fidelity(policy, held)['fidelity']:.3f}",
                         f"{decision_latency(maker, lambda env, p=policy: p, 300):.1f}"])
            texts.append(f"{env_id} {name} depth {args.depth}, from {spec}:\n{policy.text()}")
            print(f"  {rows[-1]} ({time.perf_counter() - start:.0f} s)", flush=True)
    used = {"training episodes": (TRAIN_SEED, max(trained)),
            **{k: v for k, v in ranges.items() if k != "training episodes (bound)"}}
    check_disjoint(used)
    print(f"\nDistilling any teacher: DAgger {args.iterations} x {args.samples} states; scores on {args.episodes} "
          "test episodes")
    print("\n".join(describe(name, r) for name, r in used.items()) + "\n")
    print(format_table(rows, ["env", "policy", "leaves / nodes", "mean return", "family metric",
                              "metric kept", "fidelity", "latency µs"]))
    print("\n(family metric: qoe_per_chunk for ABR, utilisation for CC; latency: median µs per act on a single env)")
    for text in texts:
        print("\n" + text, end="")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
