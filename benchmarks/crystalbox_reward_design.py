"""CrystalBox for reward design (the paper's section 7.4 and Fig. 5): why does an ABR policy lower
the bitrate although its buffer is healthy, under several rebuffering penalties?

For each penalty mu in ``--penalties`` (QoE units per second of stall; default 4.3 — Pensieve's
and the env's default — and two of the paper's three weights, 25 and 100) two kinds of policy
optimised for the QoE with ``rebuffer_penalty=mu`` are explained:

* ``robust_mpc`` plans with the env's own QoE, so each penalty gives a different controller;
* ``ppo`` is retrained per penalty, as the paper does with its learned controller (``--ppo-steps``
  steps with the ABR recipe of :mod:`benchmarks.crystalbox_common`; the mu = 4.3 agent is the one
  ``crystalbox_fidelity`` trains, cached under ``runs/crystalbox/``).

A CrystalBox explainer is fitted on each policy on the training traces. On the held-out test
traces we sample states where the policy picks a lower level than the last one although the
buffer holds at least ``--healthy`` seconds, and contrast its action with the steady one (keep the
last bitrate): the dominant component is, as in the paper, the one with the largest absolute
difference between the two actions' predicted returns. The same is computed on the ground truth
(both actions forked on the future the episode really has): per state (one realised future, so
rare stalls rarely show) and on the mean difference over all such states (an unbiased estimate
of the mean expected difference, which is what CrystalBox predicts). The table gives how often
each component dominates, per policy and penalty; the chart is written to ``--out``.

``python -m benchmarks.crystalbox_reward_design --results benchmarks/results/crystalbox/reward_design.txt``
(``--quick`` for tiny budgets; ``--policies robust_mpc,ppo --penalties 4.3,25,100 --ppo-steps N
--train-states N --test-states N --healthy S``)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.crystalbox_common import (
    ABR_PPO,
    RUNS,
    Report,
    abr_train_traces,
    action_summary,
    ppo_policy,
)
from sysgym.agents.crystalbox import CrystalBox, collect
from sysgym.bench import format_table

ENV_ID = "sysgym/ABR-v0"
DEFAULT_MU = 4.3   # the env's default rebuffer penalty (Pensieve's linear QoE)


def make_policy(kind: str, mu: float, steps: int, seed: int, log=print):
    if kind == "robust_mpc":
        from sysgym.agents.heuristics.abr import RobustMPC

        return RobustMPC
    if kind != "ppo":
        raise ValueError(f"--policies takes robust_mpc and ppo, got {kind!r}")
    return ppo_policy(ENV_ID, train_kwargs(mu), ABR_PPO, steps, seed, log)


def train_kwargs(mu: float) -> dict:
    """The training env's kwargs; the default penalty is left implicit so that the agent is shared
    with ``crystalbox_fidelity``'s."""
    return {"traces": "train"} if mu == DEFAULT_MU else {"traces": "train", "rebuffer_penalty": mu}


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


def dominant(returns_a: np.ndarray, returns_b: np.ndarray) -> int:
    """The paper's dominant component (section 7.4): the largest absolute difference between the
    decomposed returns of the two actions (index into the components)."""
    return int(np.argmax(np.abs(np.asarray(returns_a, dtype=np.float64) - np.asarray(returns_b, dtype=np.float64))))


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


def analyse(policy_kind: str, mu: float, args, report) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One table row, and the shares of dominant components (predicted, truth) for one policy and penalty."""
    import gymnasium as gym

    kwargs = {"traces": "train", "rebuffer_penalty": mu}
    policy = make_policy(policy_kind, mu, args.ppo_steps, args.seed, report)
    box, _ = CrystalBox.fit(policy, ENV_ID, env_kwargs=kwargs, states=args.train_states, num_envs=64,
                            seed=args.seed, predictor={"epochs": args.epochs, "finetune_epochs": 10})
    test_kwargs = {**kwargs, "traces": "test"}
    samples = collect(policy, ENV_ID, env_kwargs=test_kwargs, states=args.test_states, num_envs=64, warmup=2,
                      every=2, seed=args.seed + 1)
    env = gym.make(ENV_ID, **test_kwargs)
    report(f"  {policy_kind}, mu = {mu:g}: {action_summary(samples, discrete=True)}")
    states, last = downshifts(samples, env, args.healthy)
    components = samples.components
    c = len(components)
    count_pred, count_true = np.zeros(c), np.zeros(c)
    diff_pred, diff_true = np.zeros(c), np.zeros(c)
    agree = 0
    for s in states:
        a, keep = int(samples.policy_action[s]), int(last[s])
        rows_a = (samples.state == s) & (samples.action == a)
        rows_k = (samples.state == s) & (samples.action == keep)
        mean, _ = box.predict(samples.inputs(box.features)[s:s + 1], np.array([a, keep]))
        p = dominant(mean[0], mean[1])
        t = dominant(samples.returns[rows_a][0], samples.returns[rows_k][0])
        count_pred[p] += 1
        count_true[t] += 1
        diff_pred += mean[0] - mean[1]
        diff_true += samples.returns[rows_a][0] - samples.returns[rows_k][0]
        agree += p == t
    n = max(len(states), 1)
    factual = samples.returns[samples.factual].sum(axis=1).mean()
    row = [policy_kind, f"{mu:g}", str(samples.num_states), f"{factual:+.2f}", str(len(states))]
    row += [f"{count_pred[k] / n:.2f} ({count_true[k] / n:.2f})" for k in range(c)]
    row += [f"{agree / n:.2f}" if states else "-"]
    row += ["-" if not states else
            f"{components[dominant(diff_pred, np.zeros(c))]} ({components[dominant(diff_true, np.zeros(c))]})"]
    row += ["-" if not states else " / ".join(f"{diff_pred[k] / n:+.2f} ({diff_true[k] / n:+.2f})" for k in range(c))]
    return row, count_pred / n, count_true / n


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--penalties", default="4.3,25,100")
    parser.add_argument("--policies", default="robust_mpc,ppo", help="comma list of robust_mpc, ppo")
    parser.add_argument("--ppo-steps", type=int, default=300_000)
    parser.add_argument("--train-states", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--test-states", type=int, default=3000)
    parser.add_argument("--healthy", type=float, default=10.0, help="buffer (s) counted as healthy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RUNS))
    parser.add_argument("--results", default=None, help="also write what is printed to this file")
    args = parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None))
    if args.quick:
        args.ppo_steps, args.train_states, args.epochs, args.test_states = 20_000, 300, 20, 300
    penalties = [float(p) for p in args.penalties.split(",")]
    kinds = [k.strip() for k in args.policies.split(",")]
    report = Report(args.results)
    report(f"budget: explainer fitted on {args.train_states} states of the {len(abr_train_traces())} shipped training "
           f"traces (abr/train); down-switches sampled among {args.test_states} states (every 2nd chunk) of the "
           f"shipped test traces (abr/test, disjoint); PPO {args.ppo_steps} steps per penalty on the training "
           f"traces; seed {args.seed}")
    rows, shares = {}, {}
    components = tuple(gym_components())
    for kind in kinds:
        for mu in penalties:    # run in the order given (a cached agent last), shown by penalty
            rows[kind, mu], *shares[kind, mu] = analyse(kind, mu, args, report)
            report(f"  done: {' | '.join(rows[kind, mu])}")
    penalties = sorted(penalties)
    rows = [rows[kind, mu] for kind in kinds for mu in penalties]
    report("\ndominant component = largest absolute difference between the two actions' returns (the paper's "
           "rule); CrystalBox (truth): truth = the same on the forked ground-truth returns of the realised "
           "future; 'of the mean difference' = the rule applied to the mean over the down-switch states\n")
    report(format_table(rows, ["policy", "rebuffer penalty", "test states", "mean factual return",
                               f"down-switches, buffer >= {args.healthy:g} s"]
                        + [f"{c} dominates" for c in components]
                        + ["CrystalBox = truth", "of the mean difference", "mean difference per component"]))
    for kind in kinds:
        bar_chart(Path(args.out) / f"reward_design_{kind}.png", penalties, components,
                  np.array([shares[kind, mu][0] for mu in penalties]), np.array([shares[kind, mu][1] for mu in penalties]))


def gym_components() -> list[str]:
    import gymnasium as gym

    return list(gym.make(ENV_ID).unwrapped.reward_components)


if __name__ == "__main__":
    main()
