"""CrystalBox for reward design (the paper's Fig. 5): why does an ABR policy lower the bitrate
although its buffer is healthy, under three rebuffering penalties?

For each penalty mu in ``--penalties`` (default 4.3, 10, 25 in QoE units per second of stall) a
policy optimised for the QoE with ``rebuffer_penalty=mu`` is explained: by default robustMPC,
which plans with the env's own QoE (so each penalty gives a different controller), or with
``--policy ppo`` a PPO agent trained on that QoE (the paper trains Pensieve-style RL agents; our
PPO preset collapses to the lowest level on ABR within a few hundred thousand steps, so PPO
needs ``--ppo-steps`` well beyond that or a tuned recipe). A CrystalBox explainer is fitted on
each policy (training traces). On the held-out test traces we sample states where the
policy picks a lower level than the last one although the buffer holds at least ``--healthy``
seconds, and contrast its action with "keep the last bitrate": the dominant component of the
predicted difference (and of the ground-truth difference, from forking both actions) says what
the policy is buying by going down. The table gives how often each component dominates, per
penalty; the chart is written to ``--out``.

``python -m benchmarks.crystalbox_reward_design [--quick] [--penalties 4.3,10,25] [--ppo-steps N]
[--train-states N] [--test-states N] [--healthy S]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.crystalbox_common import RUNS
from sysgym.agents.crystalbox import CrystalBox, Explanation, collect
from sysgym.bench import format_table

ENV_ID = "sysgym/ABR-v0"


def make_policy(kind: str, mu: float, steps: int, seed: int):
    if kind == "robust_mpc":
        from sysgym.agents.heuristics.abr import RobustMPC

        return RobustMPC
    if kind != "ppo":
        raise ValueError(f"--policy must be robust_mpc or ppo, got {kind!r}")
    from sysgym.agents.ppo import load_policy, train

    out = RUNS / f"ppo_abr_mu{mu:g}_{steps}_s{seed}"
    if (out / "checkpoint.pt").is_file():
        return load_policy(out)
    start = time.perf_counter()
    policy, _ = train(ENV_ID, steps=steps, out_dir=out, seed=seed, progress=False, tensorboard=False,
                      env_kwargs={"traces": "train", "rebuffer_penalty": mu})
    print(f"  PPO with rebuffer_penalty={mu:g}: {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    return policy


def downshifts(samples, env, healthy: float) -> tuple[list[int], np.ndarray]:
    """States where the policy goes below the last level with at least ``healthy`` s of buffer, and
    the last level of every state."""
    names = env.unwrapped.feature_names
    ladder = np.asarray(env.unwrapped.config.bitrates_kbps)
    buffer_s = samples.obs[:, names.index("buffer_10s[t]")] * 10.0
    last_kbps = samples.obs[:, names.index("bitrate_frac[t]")] * ladder[-1]
    last = np.abs(last_kbps[:, None] - ladder[None, :]).argmin(axis=1)
    chosen = samples.policy_action.astype(np.int64)
    keep = (chosen < last) & (buffer_s >= healthy)
    return [int(s) for s in np.flatnonzero(keep)], last


def dominant(components, returns_a, returns_b) -> str:
    e = Explanation(components, np.array([0, 1]), ["a", "b"], np.stack([returns_a, returns_b]), np.ones((2, len(components))))
    return e.contrast_at(0, 1).dominant


def bar_chart(path: Path, penalties: list[float], components: tuple[str, ...], predicted: np.ndarray,
              truth: np.ndarray) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(penalties))
    width = 0.8 / (2 * len(components))
    for c, name in enumerate(components):
        ax.bar(x - 0.4 + width * (2 * c + 0.5), predicted[:, c], width, label=f"{name} (CrystalBox)",
               edgecolor="black", linewidth=0.5, color=f"C{c}")
        ax.bar(x - 0.4 + width * (2 * c + 1.5), truth[:, c], width, label=f"{name} (ground truth)",
               edgecolor="black", linewidth=0.5, color=f"C{c}", hatch="//", alpha=0.6)
    ax.set_xticks(x, [f"mu = {p:g}" for p in penalties])
    ax.set_ylabel("share of down-switches dominated by")
    ax.set_ylim(0, 1)
    ax.set_title("why lower the bitrate with a healthy buffer (vs keeping it); hatched: ground truth", fontsize=9)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    import gymnasium as gym

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--penalties", default="4.3,10,25")
    parser.add_argument("--policy", default="robust_mpc", help="robust_mpc or ppo")
    parser.add_argument("--ppo-steps", type=int, default=500_000)
    parser.add_argument("--train-states", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--test-states", type=int, default=3000)
    parser.add_argument("--healthy", type=float, default=10.0, help="buffer (s) counted as healthy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RUNS))
    args = parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None))
    if args.quick:
        args.ppo_steps, args.train_states, args.epochs, args.test_states = 20_000, 300, 20, 300
    penalties = [float(p) for p in args.penalties.split(",")]
    rows, predicted, truth = [], [], []
    components = None
    for mu in penalties:
        kwargs = {"traces": "train", "rebuffer_penalty": mu}
        policy = make_policy(args.policy, mu, args.ppo_steps, args.seed)
        box, _ = CrystalBox.fit(policy, ENV_ID, env_kwargs=kwargs, states=args.train_states, num_envs=64,
                                seed=args.seed, predictor={"epochs": args.epochs, "finetune_epochs": 10})
        test_kwargs = {**kwargs, "traces": "test"}
        samples = collect(policy, ENV_ID, env_kwargs=test_kwargs, states=args.test_states, num_envs=64, warmup=2,
                          every=2, seed=args.seed + 1)
        env = gym.make(ENV_ID, **test_kwargs)
        states, last = downshifts(samples, env, args.healthy)
        components = samples.components
        count_pred, count_true = np.zeros(len(components)), np.zeros(len(components))
        agree = 0
        for s in states:
            a, keep = int(samples.policy_action[s]), int(last[s])
            rows_a = (samples.state == s) & (samples.action == a)
            rows_k = (samples.state == s) & (samples.action == keep)
            mean, _ = box.predict(samples.inputs(box.features)[s:s + 1], np.array([a, keep]))
            p = components.index(dominant(components, mean[0], mean[1]))
            t = components.index(dominant(components, samples.returns[rows_a][0], samples.returns[rows_k][0]))
            count_pred[p] += 1
            count_true[t] += 1
            agree += p == t
        n = max(len(states), 1)
        predicted.append(count_pred / n)
        truth.append(count_true / n)
        rows.append([f"{mu:g}", str(samples.num_states), str(len(states))]
                    + [f"{count_pred[c] / n:.2f} ({count_true[c] / n:.2f})" for c in range(len(components))]
                    + [f"{agree / n:.2f}" if states else "-"])
    print(f"policy: {args.policy}; (truth) = the same contrast on the forked ground-truth returns\n")
    print(format_table(rows, ["rebuffer penalty", "test states", "down-switches, buffer >= "
                              f"{args.healthy:g} s"] + [f"{c} dominates: CrystalBox (truth)" for c in components]
                       + ["CrystalBox = truth"]))
    bar_chart(Path(args.out) / f"reward_design_{args.policy}.png", penalties, components, np.array(predicted), np.array(truth))


if __name__ == "__main__":
    main()
