"""Aurora at small scale: PPO on CC-v0 against fixed-rate, AIMD, Vegas-like and oracle senders.

N. Jay, N. H. Rotman, P. B. Godfrey, M. Schapira, A. Tamar, "A Deep Reinforcement Learning
Perspective on Internet Congestion Control", ICML 2019, trains a PPO agent (Aurora) in a simple
simulator on links drawn from fixed ranges (its Table 1: 1.2-6 Mbps = 100-500 packets/s, 50-500 ms
latency, 2-2981 packets of queue, 0-5% random loss), rewarded 10 x throughput - 1000 x latency -
2000 x loss per monitor interval, and reports that the policy gets near-capacity throughput with
low latency, comparable to hand-written protocols, and that it is robust to link parameters
outside its training ranges. We test those claims in our simulator (``sysgym/CC-v0``, the same
ranges and reward) with two agents:

* ``default``: CC-v0 as it is (action x 0.05 clipped to [-1, 1], first monitor interval 3 base
  RTTs), the library's continuous-action PPO defaults (CleanRL: observation and reward
  normalisation) with the batch layout in ``RUNS``.
* ``aurora``: ``aurora_compatible=True`` (Aurora's action scale 0.025, unbounded, first interval
  3 x the one-way delay; see ``sysgym.envs.cc``) with Aurora's reward scale 0.001, and PPO set as
  PCC-RL's ``stable_solve.py`` sets stable-baselines' PPO1: separate 32-16 tanh actor and critic,
  8192 steps per batch, minibatch 2048, 4 epochs, constant learning rate 1e-3, entropy 0.01,
  value coefficient 1, gamma 0.99, lambda 0.95, no normalisation. Kept from our PPO: per-minibatch
  advantage normalisation and gradient clipping at 0.5.

Both train on ``link_set="train"`` (1000 links from the ranges above) and are evaluated with the
policy's mean action (fixed before any result was seen) against the heuristics, each in the
agent's own env mode (in Aurora mode the heuristics' rate change is not clipped to [-1, 1] either,
see :func:`heuristic`), on:

1. the held-out test links (``link_set="test"``: 100 links from a disjoint seed stream), one
   400-interval episode each;
2. bandwidth traces never trained on: the env's seeded synthetic traces (0.2-6 Mbps, a new level
   every ~10 s on average) and, when ``--data`` holds them, the Norway HSDPA traces, replayed on the
   link with ``link_set="test"`` (100 entries: delay, queue, loss from the training ranges, a
   random start in a trace of the test split, ``test_fraction=0.5``), with the rate limits opened
   as in 3 (the traces fall below the default 40 packets/s floor);
3. one-parameter sweeps from a nominal link (300 packets/s, 100 ms one-way, 500-packet queue, no
   loss) to values inside and outside the training ranges, 16 episodes per point, with the rate
   limits opened to [1, 10000] packets/s so that the limits, not the policy, never decide.

Reward per monitor interval is reported unscaled (10 thr - 1000 lat - 2000 loss) in both modes.

    nice -n 10 python -m benchmarks.paper_aurora --steps 2000000 4000000 --seeds 3 --out benchmarks/results/aurora
    python -m benchmarks.paper_aurora --evaluate-only --out benchmarks/results/aurora
    python -m benchmarks.paper_aurora --quick --out /tmp/aurora
    python -m benchmarks.paper_aurora --report-only --out benchmarks/results/aurora   # tables, figures
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

import sysgym  # noqa: F401  (registers the environments)
from sysgym.bench import format_table, rounded

ENV_ID = "sysgym/CC-v0"
DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "abr"))
BASELINES = ("fixed", "aimd", "delay", "oracle")
WEIGHTS = np.array([10.0, -1000.0, -2000.0])   # Aurora's reward, unscaled
RUNS: dict[str, dict[str, Any]] = {
    "default": {"env": {}, "ppo": {"num_envs": 16, "n_steps": 128, "batch_size": 256}},
    "aurora": {"env": {"aurora_compatible": True, "reward_scale": 0.001},
               "ppo": {"hidden_sizes": (32, 16), "num_envs": 8, "n_steps": 1024, "batch_size": 2048,
                       "n_epochs": 4, "lr": 1e-3, "anneal_lr": False, "ent_coef": 0.01, "vf_coef": 1.0,
                       "gamma": 0.99, "gae_lambda": 0.95, "clip_coef": 0.2, "normalize_obs": False,
                       "normalize_reward": False}},
}
# Aurora's PCC-RL trains 6 x 1600 x 410 = 3.9M steps; the default run gets half of that.
DEFAULT_STEPS = {"default": 2_000_000, "aurora": 4_000_000}
TRAINING_RANGE = {"bandwidth": (100.0, 500.0), "delay": (0.05, 0.5), "queue": (2, 3000), "loss": (0.0, 0.05)}
NOMINAL = {"bandwidth": 300.0, "delay": 0.1, "queue": 500, "loss": 0.0}
SWEEPS = {"bandwidth": (25.0, 50.0, 100.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0),
          "delay": (0.005, 0.02, 0.05, 0.1, 0.5, 1.0, 2.0),
          "queue": (1, 2, 10, 100, 1000, 3000, 10000),
          "loss": (0.0, 0.01, 0.05, 0.08, 0.1, 0.15)}
SWEEP_LIMITS = {"min_rate": 1.0, "max_rate": 10_000.0}
# A sweep point counts as "near capacity with low latency" at utilisation >= 0.9 and mean RTT <= 1.5 x
# the minimum RTT (the claim's two halves as one threshold each; fixed before any result was seen).
GOOD_UTILISATION, GOOD_INFLATION = 0.9, 1.5


# ---------------------------------------------------------------------------- training
def train(run: dict[str, Any], steps: int, seed: int, run_dir: Path, extra_env: dict[str, Any]) -> dict[str, Any]:
    from sysgym.agents.ppo import PPOTrainer, default_config

    env_kwargs = {"link_set": "train", **run["env"], **extra_env}
    config = default_config(ENV_ID, **{**run["ppo"], "seed": seed, "total_steps": steps, "env_kwargs": env_kwargs,
                                       "progress": False, "tensorboard": False})
    trainer = PPOTrainer(ENV_ID, config, run_dir)
    try:
        result = trainer.train()
    finally:
        trainer.close()
    curve = [(r["global_step"], r.get("return_mean"), r.get("metric/utilisation"), r.get("metric/latency"))
             for r in result.history]
    return {"seed": seed, "steps": result.global_step, "seconds": result.seconds, "sps": result.sps,
            "checkpoint": str(result.checkpoint), "curve": curve}


# ---------------------------------------------------------------------------- evaluation
def play(make_policy: Any, n: int, seed: int, env_kwargs: dict[str, Any], trace_plot: bool = False) -> dict[str, Any]:
    """One episode on each of ``n`` sub-envs (link-set entries 0..n-1 when there is a link set)."""
    from sysgym.envs.cc import CCVectorEnv

    vec = CCVectorEnv(n, autoreset_mode="Disabled", **env_kwargs)
    policy = make_policy(vec)
    options = {"link_index": np.arange(n)} if env_kwargs.get("link_set") else None
    obs, info = vec.reset(seed=seed, options=options)
    rewards, series = [], []
    while True:
        obs, _, _, truncated, info = vec.step(policy.act(obs, info))
        rewards.append(np.asarray(info["reward_components"]).reshape(n, 3) @ WEIGHTS)
        if trace_plot:
            series.append((float(info["time"][0]), float(info["sending_rate"][0]), float(vec.bottleneck_bandwidth()[0])))
        if truncated.all():
            break
    m = info["episode_metrics"]
    latency, queueing = np.asarray(m["latency"]), np.asarray(m["queueing_delay"])
    base = latency - queueing
    inflation = np.where(base > 0, latency / np.where(base > 0, base, 1.0), np.nan)
    vec.close()
    out = {"reward": np.mean(rewards, axis=0).tolist(), "utilisation": np.asarray(m["utilisation"]).tolist(),
           "throughput": np.asarray(m["throughput"]).tolist(), "latency": latency.tolist(),
           "queueing_delay": queueing.tolist(), "loss_rate": np.asarray(m["loss_rate"]).tolist(),
           "inflation": inflation.tolist()}
    if trace_plot:
        out["series"] = series
    return out


def means(episodes: dict[str, Any]) -> dict[str, float]:
    return {k: float(np.nanmean(v)) for k, v in episodes.items() if k != "series"}


def heuristic(name: str, unbounded: bool) -> Any:
    """A baseline of :mod:`sysgym.agents.heuristics.cc`; with ``unbounded`` its rate change is clipped
    to the env's action bound instead of [-1, 1], so that in Aurora mode (where the agent's action is
    unbounded) a baseline too may reach its target rate in one step."""
    from sysgym.agents.heuristics.cc import HEURISTICS

    base = HEURISTICS[name]
    if not unbounded:
        return base

    class Unbounded(base):
        def actions(self, rate: np.ndarray, target: np.ndarray) -> np.ndarray:
            ratio = np.maximum(np.atleast_1d(target), 1e-9) / np.atleast_1d(rate)
            delta = np.where(ratio >= 1.0, ratio - 1.0, 1.0 - 1.0 / ratio) / self.config.delta_scale
            bound = self.config.action_bound
            return np.clip(delta, -bound, bound).astype(np.float32)[:, None]

    return Unbounded


def policies(checkpoints: list[str], unbounded: bool) -> dict[str, Any]:
    """``PPO s<k>`` (mean action) for each training seed, then the heuristics."""
    from sysgym.agents.ppo import load_policy

    out: dict[str, Any] = {}
    for seed, path in enumerate(checkpoints):
        out[f"PPO s{seed}"] = (lambda ppo: lambda vec: ppo)(load_policy(path, deterministic=True))
    return {**out, **{name: heuristic(name, unbounded) for name in BASELINES}}


def ppo_mean(per_policy: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean over seeds of the PPO agents' mean metrics."""
    rows = [m for p, m in per_policy.items() if p.startswith("PPO")]
    return {k: float(np.mean([m[k] for m in rows])) for k in rows[0]}


def test_sets(data: Path, quick: bool) -> dict[str, dict[str, Any]]:
    n = 4 if quick else 100
    traces = {"link_set": "test", "link_set_size": n, "test_fraction": 0.5, **SWEEP_LIMITS}  # traces go below 40 pkt/s
    sets = {"test links": {"link_set": "test", "link_set_size": n},
            "synthetic traces": {"traces": "synthetic", **traces}}
    norway = data / "traces" / "norway_train"
    if norway.is_dir() and not quick:
        sets["Norway traces"] = {"traces": str(norway), **traces}
    return sets


def evaluate_run(name: str, checkpoints: list[str], data: Path, quick: bool) -> dict[str, Any]:
    mode = {**RUNS[name]["env"], **({"max_steps": 50} if quick else {})}
    makers = policies(checkpoints, unbounded=bool(RUNS[name]["env"].get("aurora_compatible")))
    out: dict[str, Any] = {"sets": {}, "sweeps": {}}
    for label, kwargs in test_sets(data, quick).items():
        n = kwargs["link_set_size"]
        results = {pol: play(make, n, 0, {**mode, **kwargs}, trace_plot=label == "synthetic traces")
                   for pol, make in makers.items()}
        out["sets"][label] = results
        print(f"[{name} / {label}] " + ", ".join(f"{p} {means(r)['reward']:.0f}" for p, r in results.items()), flush=True)
    episodes = 4 if quick else 16
    for param, values in SWEEPS.items():
        values = (values[0], values[-1]) if quick else values
        rows = {}
        for value in values:
            link = {**NOMINAL, param: value}
            kwargs = {**mode, **SWEEP_LIMITS, **link}
            rows[str(value)] = {pol: means(play(make, episodes, 0, kwargs)) for pol, make in makers.items()}
        out["sweeps"][param] = rows
        print(f"[{name} / sweep {param}] done", flush=True)
    return out


# ---------------------------------------------------------------------------- verdicts and report
def outside(param: str, value: float) -> bool:
    lo, hi = TRAINING_RANGE[param]
    return not lo <= value <= hi


def good(m: dict[str, float]) -> bool:
    return m["utilisation"] >= GOOD_UTILISATION and m["inflation"] <= GOOD_INFLATION


def claims(ev: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, res in ev["sets"].items():
        m = {p: means(r) for p, r in res.items()}
        ppo = ppo_mean(m)
        best = max(BASELINES[:3], key=lambda b: m[b]["reward"])
        near = good(ppo)
        beats = ppo["reward"] >= m[best]["reward"]
        verdict = "reproduced" if near and beats else "partly" if near or beats else "not reproduced"
        rows.append([f"near-capacity throughput, low latency, comparable to or better than hand-written senders ({label})",
                     f"utilisation {ppo['utilisation']:.2f}, RTT {ppo['inflation']:.2f} x min RTT, reward "
                     f"{ppo['reward']:.0f} vs best heuristic {best} {m[best]['reward']:.0f} "
                     f"(oracle {m['oracle']['reward']:.0f})", verdict])
    for param, points in ev["sweeps"].items():
        out = [v for v in points if outside(param, float(v))]
        ok = [v for v in out if good(ppo_mean(points[v]))]
        base_ok = {b: sum(good(points[v][b]) for v in out) for b in BASELINES}
        share = len(ok) / len(out) if out else float("nan")
        verdict = "reproduced" if share >= 0.9 else "partly" if share >= 0.5 else "not reproduced"
        rows.append([f"robust to {param} outside training ({', '.join(out)})",
                     f"{len(ok)}/{len(out)} points near capacity with low latency (heuristics: "
                     + ", ".join(f"{b} {k}" for b, k in base_ok.items()) + ")", verdict])
    return rows


def tables(results: dict) -> str:
    b = results["budget"]
    lines = ["# Aurora (Jay et al. ICML'19) with PPO: results\n",
             "Budget: " + ", ".join(f"`{n}` {k:,}" for n, k in b["steps"].items())
             + f" env steps (monitor intervals) per training run, seeds {b['seeds']}. "
             f"Command: `{b['command']}`.\n",
             "Per episode: 400 monitor intervals; reward per interval unscaled (10 thr - 1000 lat - 2000 loss); "
             "utilisation = acknowledged packets / bottleneck capacity; RTT inflation = mean RTT / minimum RTT. "
             "PPO acts with its mean action; claims use the mean over the PPO seeds. A sweep point or test set counts "
             f"as near capacity with low latency at utilisation >= {GOOD_UTILISATION} and mean RTT <= "
             f"{GOOD_INFLATION} x minimum RTT; \"comparable or better\" = reward >= the best of fixed, AIMD and "
             "Vegas-like (the oracle reads the true link state and is shown for scale).\n"]
    for name, run in results["runs"].items():
        for r in run["training"]:
            lines.append(f"- `{name}` seed {r['seed']}: {r['steps']:,} steps in {r['seconds'] / 60:.1f} min "
                         f"({r['sps']:.0f} steps/s on the shared machine), env `{json.dumps(RUNS[name]['env'])}` + "
                         f"`link_set=\"train\"`, PPO over the library defaults `{json.dumps(RUNS[name]['ppo'])}`, "
                         f"checkpoint `{r['shipped']}`")
    lines.append("")
    for name, run in results["runs"].items():
        ev = run["evaluation"]
        for label, res in ev["sets"].items():
            rows = []
            for pol, r in res.items():
                m = means(r)
                rows.append([pol, f"{m['reward']:.0f}", f"{m['throughput']:.1f}", f"{m['utilisation']:.3f}",
                             f"{m['latency'] * 1e3:.0f}", f"{m['queueing_delay'] * 1e3:.0f}", f"{m['inflation']:.2f}",
                             f"{m['loss_rate'] * 100:.2f}"])
            lines.append(f"### `{name}` agent: {label} ({len(next(iter(res.values()))['reward'])} episodes)\n")
            lines.append(format_table(rows, ["policy", "reward / MI", "throughput (pkt/s)", "utilisation",
                                             "latency (ms)", "queueing (ms)", "RTT inflation", "loss (%)"]))
            lines.append("")
        for param, points in ev["sweeps"].items():
            rows = []
            for value, pols in points.items():
                tag = " (outside)" if outside(param, float(value)) else ""
                rows.append([f"{value}{tag}"] + [f"{pols[p]['utilisation']:.2f} / {pols[p]['inflation']:.2f}"
                                                 for p in pols])
            lines.append(f"### `{name}` agent: {param} sweep (utilisation / RTT inflation; training range "
                         f"{TRAINING_RANGE[param]}; other parameters {NOMINAL})\n")
            lines.append(format_table(rows, [param] + list(next(iter(points.values())))))
            lines.append("")
        lines.append(f"### `{name}` agent: claims\n")
        lines.append(format_table(claims(ev), ["claim (Aurora)", "ours", "verdict"]))
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, run in results["runs"].items():
        ev = run["evaluation"]
        fig, axes = plt.subplots(2, len(ev["sweeps"]), figsize=(4 * len(ev["sweeps"]), 6), squeeze=False)
        for j, (param, points) in enumerate(ev["sweeps"].items()):
            xs = [float(v) for v in points]
            for pol in next(iter(points.values())):
                for i, key in enumerate(("utilisation", "inflation")):
                    axes[i][j].plot(xs, [points[v][pol][key] for v in points], marker="o", ms=3, label=pol)
            for i, key in enumerate(("utilisation", "RTT inflation")):
                ax = axes[i][j]
                ax.axvspan(*TRAINING_RANGE[param], color="0.9")
                ax.set_xscale("symlog", linthresh=0.01) if param == "loss" else ax.set_xscale("log")
                ax.set_xlabel(param)
                ax.set_ylabel(key)
                ax.grid(alpha=0.3)
            axes[1][j].set_yscale("log")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{name} agent: one parameter swept (shaded: training range)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / f"robustness_{name}.png", dpi=110)
        plt.close(fig)

        res = ev["sets"].get("synthetic traces")
        if res:
            fig, ax = plt.subplots(figsize=(7, 3.5))
            t, _, bw = zip(*res["PPO s0"]["series"])
            ax.plot(t, bw, color="k", lw=1, label="bottleneck bandwidth")
            for pol in ("PPO s0", "aimd", "delay"):
                t, rate, _ = zip(*res[pol]["series"])
                ax.plot(t, rate, lw=1, label=pol)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("packets/s")
            ax.legend(fontsize=7)
            ax.set_title(f"{name} agent on synthetic trace entry 0 (sending rate)", fontsize=9)
            fig.tight_layout()
            fig.savefig(out / f"trace_{name}.png", dpi=110)
            plt.close(fig)


def save(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rounded(results), separators=(",", ":")))
    (out / "results.md").write_text(tables(results))
    plot(results, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help="env steps (monitor intervals) per training run: one value, or one per --runs entry "
                        f"(default {DEFAULT_STEPS})")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--data", type=Path, default=DATA, help="folder with traces/norway_train (optional)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/aurora"))
    p.add_argument("--run-dir", type=Path, default=Path("runs/aurora"), help="training logs")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate the checkpoints already in --out")
    p.add_argument("--quick", action="store_true", help="tiny budget, short episodes, few links (a smoke test)")
    p.add_argument("--report-only", action="store_true", help="rewrite results.md and the figures from results.json")
    args = p.parse_args(argv)
    if args.report_only:
        save(json.loads((args.out / "results.json").read_text()), args.out)
        print((args.out / "results.md").read_text())
        return 0

    steps = args.steps or [DEFAULT_STEPS[name] for name in args.runs]
    if len(steps) not in (1, len(args.runs)):
        p.error(f"--steps takes one value or one per run ({len(args.runs)})")
    budget = dict(zip(args.runs, steps * len(args.runs) if len(steps) == 1 else steps))
    if args.quick:
        budget = {name: min(n, 2048) for name, n in budget.items()}
    command = "python -m benchmarks.paper_aurora " + " ".join(argv if argv is not None else sys.argv[1:])
    previous = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").is_file() else {}
    results: dict = {"budget": {"steps": budget, "seeds": args.seeds, "command": command, "quick": args.quick},
                     "runs": {k: v for k, v in previous.get("runs", {}).items() if k not in args.runs}}
    if args.evaluate_only and previous:  # the budget and command of the runs that trained the checkpoints
        results["budget"] = previous["budget"]
    elif previous.get("runs") and len(results["runs"]):  # runs kept from before: keep their budgets too
        results["budget"]["steps"] = {**previous["budget"]["steps"], **budget}
        results["budget"]["command"] = f"{previous['budget']['command']}; then {command}"
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.runs:
        training = []
        for seed in range(args.seeds):
            shipped = args.out / f"policy{'' if name == 'default' else '_' + name}{'' if seed == 0 else f'_s{seed}'}.pt"
            if args.evaluate_only:
                if not shipped.is_file():
                    p.error(f"{shipped}: no checkpoint to evaluate")
                old = [r for r in previous.get("runs", {}).get(name, {}).get("training", []) if r["seed"] == seed]
                training.append({**(old[0] if old else {"seed": seed, "steps": 0, "seconds": 0.0, "sps": 0.0,
                                                        "curve": []}), "shipped": str(shipped)})
                continue
            print(f"training {name} seed {seed}: {budget[name]:,} steps", flush=True)
            quick_env = {"max_steps": 50, "link_set_size": 16} if args.quick else {}
            run = train(RUNS[name], budget[name], seed, args.run_dir / f"{name}_s{seed}", quick_env)
            shutil.copyfile(run["checkpoint"], shipped)
            run["shipped"] = str(shipped)
            print(f"  {run['seconds'] / 60:.1f} min, {run['sps']:.0f} steps/s", flush=True)
            training.append(run)
        results["runs"][name] = {"training": training, "evaluation": evaluate_run(
            name, [r["shipped"] for r in training], args.data, args.quick)}
        save(results, args.out)
    save(results, args.out)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
