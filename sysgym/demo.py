"""``make demo``: train PPO on a DeepRM variant, compare it with SJF / Packer, print a table, save a plot.

Runs in a few minutes on 2 CPU cores::

    python -m sysgym.demo                 # DeepRM-CompactSparse-v0, scenario 3, 1M steps
    python -m sysgym.demo --steps 200000  # quicker, weaker agent

Writes under ``./demo_out/``: ``ppo/`` (checkpoint, progress.csv, episodes.csv, TensorBoard),
``results.md`` (the table) and ``demo.png`` (learning curve next to the heuristics' level, and
the final comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sysgym  # noqa: F401  (registers the environments)


def plot(history: list[dict], results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    points = [(r["global_step"], r["metric/mean_slowdown"]) for r in history if "metric/mean_slowdown" in r]
    if points:
        xs, ys = zip(*points)
        left.plot(xs, ys, label="PPO (training, last 20 episodes)")
    for name, style in (("sjf", "--"), ("packer", ":")):
        if name in results:
            left.axhline(results[name].mean()["mean_slowdown"], color="k", linestyle=style, label=name)
    left.set_xlabel("env steps")
    left.set_ylabel("mean job slowdown")
    left.set_title(title)
    left.legend()
    names = list(results)
    means = [results[n].mean() for n in names]
    # mean_slowdown_all also counts unfinished jobs (with the slowdown reached so far), so a policy
    # cannot look good by stranding long jobs.
    bars = right.bar(names, [m.get("mean_slowdown_all", m["mean_slowdown"]) for m in means], color="tab:blue")
    for bar, m in zip(bars, means):
        if m.get("jobs_left", 0.0) > 0.05:  # slowdown counts finished jobs only: show what was left
            right.annotate(f"{m['jobs_left']:.1f} jobs left", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                           ha="center", va="bottom", fontsize=8)
    right.tick_params(axis="x", labelrotation=20)
    right.set_ylabel("mean slowdown incl. unfinished jobs")
    right.set_title("evaluation on the same seeded episodes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="sysgym/DeepRM-CompactSparse-v0")
    parser.add_argument("--scenario", type=int, default=3, help="BRACIS'21 scenario 1-10")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="demo_out")
    args = parser.parse_args(argv)

    from sysgym.agents.heuristics import heuristics_for
    from sysgym.agents.ppo import PPOTrainer, default_config
    from sysgym.agents.ppo.commands import compare_with_heuristics, results_table

    out = Path(args.out)
    env_kwargs = {"scenario": args.scenario}
    config = default_config(args.env, total_steps=args.steps, num_envs=args.num_envs, seed=args.seed,
                            env_kwargs=env_kwargs)
    print(f"Training PPO on {args.env} (scenario {args.scenario}) for {args.steps} steps "
          f"with {args.num_envs} sub-envs (BRACIS'21 Table 2 settings)...", file=sys.stderr)
    trainer = PPOTrainer(args.env, config, out / "ppo")
    try:
        result = trainer.train()
    finally:
        trainer.close()
    print(f"trained in {result.seconds:.0f} s ({result.sps:.0f} env steps/s); evaluating on "
          f"{args.episodes} seeded episodes...", file=sys.stderr)
    heuristics = heuristics_for(args.env)
    policies = {"ppo (sampled)": trainer.policy(deterministic=False, seed=args.seed),
                "ppo (greedy)": trainer.policy(deterministic=True)}
    policies.update({name: heuristics[name] for name in ("sjf", "packer", "tetris", "random") if name in heuristics})
    results = compare_with_heuristics(policies, args.env, args.episodes, seed=10_000, env_kwargs=env_kwargs)
    table = results_table(results)
    header = (f"{args.env}, scenario {args.scenario}: PPO after {result.global_step} env steps "
              f"({result.seconds:.0f} s), {args.episodes} evaluation episodes\n\n")
    print(header + table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(header + table + "\n")
    plot(result.history, results, out / "demo.png", f"{args.env.split('/')[-1]}, scenario {args.scenario}")
    print(f"\nwrote {out / 'results.md'}, {out / 'demo.png'} and the training logs in {out / 'ppo'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
