"""IRL reproduction: distil a PPO scheduler on DeepRM-CompactSparse with an SWF workload into trees.

Li et al., "Interpretable Modeling of Deep Reinforcement Learning Driven Scheduling" (arXiv
2403.16293): DAgger from a DRL scheduler; training on the critical states only gives trees 2-3x
smaller at equal performance and a lower decision cost than the network. Here: a PPO teacher
trained by ``sysgym.agents.ppo`` on a CPU budget (``--ppo-steps``), CART students of depth 2-5
on all states, on the critical states only (top ``--critical`` fraction by simulated Q-gap) and
with VIPER's weights, optimal trees (STreeD) of depth 2-5 fit on the same aggregated data (with
VIPER: on the regrets, VIPER's objective exactly); mean slowdown next to the teacher and
SJF on test episodes, tree size, decision latency; and the labelling speed of simulated
Q-values (10,000 DeepRM-Compact states, 11 actions, horizon 10, one core).

Seeds: DAgger trains on episodes from ``--seed`` on, chooses its iterate on 16 selection episodes
from seed 1,000,000 and every policy is scored on ``--eval-episodes`` test episodes from seed
2,000,000 (fidelity: teacher states from the seeds after them); the script checks the ranges are
pairwise disjoint and prints them.

    python -m benchmarks.distill_irl [--quick] [--ppo-steps N] [--teacher runs/X] ...
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

import sysgym  # noqa: F401
from sysgym.agents.distill import (
    DistillConfig,
    EnvMaker,
    OptimalStudent,
    distill,
    policy_for,
    resolve_teacher,
    select_critical,
    simulate_q,
    training_set,
)
from sysgym.agents.distill.rollouts import collect, decision_latency, evaluate, fidelity
from sysgym.agents.distill.seeds import check_disjoint, collection_bound, describe, episode_range
from sysgym.bench import format_table
from sysgym.traces import trace_path

ENV = "sysgym/DeepRM-CompactSparse-v0"
SELECTION_SEED, SELECTION_EPISODES = 1_000_000, 16  # DAgger's choice of iterate
TEST_SEED = 2_000_000                                # every score in the table
FIDELITY_STATES = 2000


def teacher_checkpoint(args: argparse.Namespace, env_kwargs: dict) -> Path:
    if args.teacher:
        return Path(args.teacher)
    from sysgym.agents.ppo import train

    out = Path(args.out) / "ppo"
    start = time.perf_counter()
    train(ENV, steps=args.ppo_steps, out_dir=out, env_kwargs=env_kwargs, progress=False, tensorboard=False,
          seed=args.seed)
    print(f"PPO teacher: {args.ppo_steps} steps in {time.perf_counter() - start:.0f} s -> {out}")
    return out


def labelling_speed(teacher, states: int) -> list[list[str]]:
    """Seconds to label ``states`` DeepRM-Compact states with simulated Q (horizon 10)."""
    maker = EnvMaker("sysgym/DeepRM-Compact-v0")
    rows = []
    for name, spec in (("sjf", "heuristic:sjf"), ("ppo", teacher)):
        data, bank = collect(maker, spec, None, 1.0, states, itertools.count(0), num_envs=64,
                             rng=np.random.default_rng(0), record_states=True)
        for label, mask in (("valid actions", data.mask), ("all 11 actions", np.ones_like(data.mask))):
            start = time.perf_counter()
            simulate_q(maker, bank, mask, spec, horizon=10, gamma=0.99)
            rows.append([name, label, f"{int(mask.sum()):,}", f"{time.perf_counter() - start:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds-scale budgets")
    parser.add_argument("--ppo-steps", type=int, default=500_000, help="PPO teacher training budget")
    parser.add_argument("--teacher", default=None, help="reuse a trained checkpoint (file or folder)")
    parser.add_argument("--workload", default=None, help="SWF file (default: shipped synthetic_10.swf)")
    parser.add_argument("--depths", default="2,3,4,5")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--samples", type=int, default=3000, help="states per DAgger iteration")
    parser.add_argument("--critical", type=float, default=0.3)
    parser.add_argument("--variants", default="all,critical,viper", help="training-state variants to run")
    parser.add_argument("--eval-episodes", type=int, default=64)
    parser.add_argument("--optimal-thresholds", type=int, default=4)
    parser.add_argument("--optimal-time-limit", type=float, default=120.0)
    parser.add_argument("--label-states", type=int, default=10_000)
    parser.add_argument("--tolerance", type=float, default=0.1, help="'equal performance': within this fraction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/distill_irl")
    args = parser.parse_args(argv)
    if args.quick:
        args.ppo_steps, args.depths, args.iterations, args.samples = 20_000, "2,3", 2, 500
        args.eval_episodes, args.optimal_time_limit, args.label_states = 8, 30.0, 1000
    depths = [int(d) for d in args.depths.split(",")]
    import torch

    torch.set_num_threads(1)  # one core: latency and labelling speed as the issue states them
    env_kwargs = {"workload": args.workload or str(trace_path("deeprm", "synthetic_10.swf"))}
    maker = EnvMaker(ENV, env_kwargs)
    seed = TEST_SEED
    base = DistillConfig(iterations=args.iterations, samples=args.samples, eval_episodes=SELECTION_EPISODES,
                         eval_seed=SELECTION_SEED, seed=args.seed)
    # PPO resets its 16 sub-envs from seeds seed*16 .. seed*16 + 15 (then continues their streams)
    ppo = episode_range(args.seed * 16, 16) if not args.teacher else None
    train = base.training_seeds()
    train = (min(train[0], ppo[0]), max(train[1], ppo[1])) if ppo else train
    ranges = {"training (bound)": train, "selection episodes": base.selection_seeds(),
              "test episodes": episode_range(seed, args.eval_episodes),
              "fidelity states (bound)": collection_bound(seed + args.eval_episodes, FIDELITY_STATES, 16)}
    check_disjoint(ranges)
    teacher = resolve_teacher(str(teacher_checkpoint(args, env_kwargs)), ENV)
    ev = {"teacher (PPO)": evaluate(maker, teacher.build, args.eval_episodes, seed),
          "sjf": evaluate(maker, resolve_teacher("heuristic:sjf", ENV).build, args.eval_episodes, seed)}
    latency = {"teacher (PPO)": decision_latency(maker, teacher.build, 300),
               "sjf": decision_latency(maker, resolve_teacher("heuristic:sjf", ENV).build, 300)}
    held, _ = collect(maker, teacher, None, 1.0, FIDELITY_STATES, itertools.count(seed + args.eval_episodes),
                      num_envs=16, rng=np.random.default_rng(1))
    rows = [[name, "-", "-", f"{e.mean('mean_slowdown'):.3f}", f"{e.mean('mean_slowdown_all'):.3f}", "-", "1",
             f"{latency[name]:.1f}"] for name, e in ev.items()]
    sizes: dict[str, list[tuple[int, float]]] = {}
    trained: list[int] = []
    variants = {"all": ("all states", None, "none"), "critical": (f"critical {args.critical:g}", args.critical, "none"),
                "viper": ("VIPER weights", None, "viper")}
    for tag, critical, weighting in (variants[v] for v in args.variants.split(",")):
        for depth in depths:
            config = DistillConfig(iterations=args.iterations, samples=args.samples, critical=critical,
                                   weighting=weighting, eval_episodes=SELECTION_EPISODES, eval_seed=SELECTION_SEED,
                                   seed=args.seed)
            start = time.perf_counter()
            result = distill(ENV, teacher, "cart", max_depth=depth, env_kwargs=env_kwargs, config=config)
            trained.append(result.training_seeds[1])
            students = {f"cart d{depth}": (result.policy, time.perf_counter() - start)}
            data = result.data
            keep = select_critical(data.criticality(), critical) if critical is not None else np.ones(len(data), bool)
            start = time.perf_counter()
            opt = OptimalStudent(max_depth=depth, max_thresholds=args.optimal_thresholds,
                                 time_limit=args.optimal_time_limit)
            model = opt.fit(training_set(data.subset(keep), weighting))
            optimal = policy_for(model, result.policy.feature_names, result.policy.action_names,
                                 result.policy.observation)
            proof = "" if opt.proven_optimal else " (time limit)"
            students[f"optimal d{depth}{proof}"] = (optimal, time.perf_counter() - start)
            for name, (policy, seconds) in students.items():
                e = evaluate(maker, lambda env, p=policy: p, args.eval_episodes, seed)
                size = policy.size()
                agree = fidelity(policy, held)["fidelity"]
                rows.append([name, tag, f"{size['leaves']} / {size['nodes']}", f"{e.mean('mean_slowdown'):.3f}",
                             f"{e.mean('mean_slowdown_all'):.3f}", f"{seconds:.0f}", f"{agree:.3f}",
                             f"{decision_latency(maker, lambda env, p=policy: p, 300):.1f}"])
                if name.startswith("cart"):
                    sizes.setdefault(tag, []).append((size["leaves"], e.mean("mean_slowdown_all")))
                print(f"  {rows[-1]}", flush=True)
    print(f"\nIRL on {ENV} (SWF {Path(env_kwargs['workload']).name}); DAgger {args.iterations} x {args.samples} "
          f"states; scores on {args.eval_episodes} test episodes")
    used = {"DAgger training episodes": (args.seed, max(trained, default=args.seed - 1)),
            **{k: v for k, v in ranges.items() if k != "training (bound)"}}
    check_disjoint(used)
    lines = [describe(name, r) for name, r in used.items()]
    lines.insert(1, describe("PPO teacher training (sub-env resets)", ppo) if ppo else
                 f"PPO teacher training: {args.teacher} (seeds not known to this script)")
    print("\n".join(lines) + "\n")
    print(format_table(rows, ["policy", "training states", "leaves / nodes", "mean slowdown",
                              "slowdown incl. unfinished", "fit s", "fidelity", "latency µs"]))
    target = ev["teacher (PPO)"].mean("mean_slowdown_all") * (1 + args.tolerance)
    eq = [[tag, next((f"{leaves}" for leaves, s in sorted(pairs) if s <= target), "none reached it")]
          for tag, pairs in sizes.items()]
    print(f"\nSmallest CART tree (leaves) within {100 * args.tolerance:g}% of the teacher's slowdown incl. "
          f"unfinished jobs ({target:.3f}):\n")
    print(format_table(eq, ["training states", "leaves"]))
    print(f"\nSimulated Q labelling speed: {args.label_states:,} DeepRM-Compact states, horizon 10, one core\n")
    print(format_table(labelling_speed(teacher, args.label_states), ["teacher", "actions", "forks", "seconds"]))


if __name__ == "__main__":
    main()
