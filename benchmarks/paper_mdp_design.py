"""Small-scale reproduction of de Freitas Cunha & Chaimowicz, "On the impact of MDP design for
Reinforcement Learning agents in Resource Management" (BRACIS 2021).

PPO (Table 2 hyper-parameters, see :mod:`sysgym.agents.ppo.config`) is trained on the four MDP
variants (DeepRM-Image, -Compact, -CompactSparse, -CompactSparseReduced) in scenarios 3 and 9 of
Table 3, several seeds each, and its mean job slowdown is compared with SJF and Packer on the same
seeded evaluation episodes. Transfer: the compact agents trained on scenario 9 are evaluated on
all ten scenarios without retraining (the compact state has the same size in every scenario).

This is a long run, not a ``bench_*`` module::

    python -m benchmarks.paper_mdp_design --steps 200000 --seeds 3 --out benchmarks/results/mdp_design

It writes ``results.json``, ``results.md`` (the tables) and ``learning_curves.png`` to ``--out``.
Runs can be split over cores with ``--variants`` and merged afterwards::

    python -m benchmarks.paper_mdp_design --variants DeepRM-Image-v0 --out /tmp/image &
    python -m benchmarks.paper_mdp_design --variants DeepRM-Compact-v0 DeepRM-CompactSparse-v0 \
        DeepRM-CompactSparseReduced-v0 --out /tmp/compact
    python -m benchmarks.paper_mdp_design --combine /tmp/compact /tmp/image
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import sysgym  # noqa: F401  (registers the environments)
from sysgym.bench import format_table

VARIANTS = ("DeepRM-Image-v0", "DeepRM-Compact-v0", "DeepRM-CompactSparse-v0", "DeepRM-CompactSparseReduced-v0")
COMPACT = VARIANTS[1:]
HEURISTICS = ("sjf", "packer")


def _evaluate(policy, env_id: str, episodes: int, seed: int, **env_kwargs) -> dict[str, float]:
    from sysgym.agents.ppo.evaluation import evaluate_batched

    m = evaluate_batched(policy, env_id, episodes, seed=seed, **env_kwargs).mean()
    return {"mean_slowdown": m["mean_slowdown"], "jobs_left": m["jobs_left"], "return": m["return"]}


def _scores(policy, env_id: str, episodes: int, seed: int, **env_kwargs) -> dict[str, float]:
    """The policy sampled (as trained; the headline number) and greedy (argmax of its masked logits)."""
    policy.deterministic = False
    policy.generator.manual_seed(seed)
    sampled = _evaluate(policy, env_id, episodes, seed, **env_kwargs)
    policy.deterministic = True
    greedy = _evaluate(policy, env_id, episodes, seed, **env_kwargs)
    return {**sampled, **{f"greedy_{k}": v for k, v in greedy.items()}}


def run(steps: int, seeds: int, scenarios: tuple[int, ...], episodes: int, num_envs: int, out: Path,
        variants: tuple[str, ...] = VARIANTS) -> dict:
    from sysgym.agents.heuristics import heuristics_for
    from sysgym.agents.ppo import train

    eval_seed = 10_000
    results: dict = {"budget": {"steps_per_run": steps, "seeds": seeds, "num_envs": num_envs,
                                "eval_episodes": episodes, "eval_seed": eval_seed},
                     "runs": [], "heuristics": {}, "transfer": []}
    heuristics = heuristics_for("sysgym/DeepRM-v0")
    for scenario in range(1, 11):
        for name in HEURISTICS:
            key = f"{name}/{scenario}"
            results["heuristics"][key] = _evaluate(heuristics[name], "sysgym/DeepRM-Compact-v0", episodes,
                                                   eval_seed, scenario=scenario)
    policies = {}
    for scenario in scenarios:
        for variant in sorted(variants, key=lambda v: v == "DeepRM-Image-v0"):  # the slow image runs last
            env_id = f"sysgym/{variant}"
            for seed in range(seeds):
                start = time.perf_counter()
                policy, result = train(env_id, steps=steps, seed=seed, num_envs=num_envs, encoder="mlp",
                                       progress=False, tensorboard=False, env_kwargs={"scenario": scenario})
                score = _scores(policy, env_id, episodes, eval_seed, scenario=scenario)
                curve = [(r["global_step"], r.get("metric/mean_slowdown")) for r in result.history]
                results["runs"].append({"variant": variant, "scenario": scenario, "seed": seed,
                                        "seconds": time.perf_counter() - start, "sps": result.sps,
                                        **score, "curve": curve})
                policies[(variant, scenario, seed)] = policy
                print(f"{variant} scenario {scenario} seed {seed}: slowdown {score['mean_slowdown']:.3f} "
                      f"(sampled), {score['greedy_mean_slowdown']:.3f} (greedy) "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
                save(results, out)
    if 9 in scenarios:
        for variant in (v for v in COMPACT if v in variants):
            for target in range(1, 11):
                for seed in range(seeds):
                    score = _scores(policies[(variant, 9, seed)], f"sysgym/{variant}", episodes, eval_seed,
                                    scenario=target)
                    results["transfer"].append({"variant": variant, "scenario": target, "seed": seed, **score})
    save(results, out)
    return results


def save(results: dict, out: Path) -> None:
    """Write what has been measured so far (called after every run, so a long job keeps its results)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(tables(results))
    plot(results, out / "learning_curves.png")


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def tables(results: dict) -> str:
    """The comparison table (per scenario) and the transfer table, as markdown."""
    runs, heur = results["runs"], results["heuristics"]
    scenarios = sorted({r["scenario"] for r in runs})
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    rows = []
    for v in variants:
        row = [v.replace("-v0", "")]
        for s in scenarios:
            rs = [r for r in runs if r["variant"] == v and r["scenario"] == s]
            if not rs:
                row += ["", "", ""]
                continue
            row += [_mean_std([r["mean_slowdown"] for r in rs]), f"{np.mean([r['jobs_left'] for r in rs]):.1f}",
                    f"{np.mean([r['greedy_mean_slowdown'] for r in rs]):.2f} "
                    f"({np.mean([r['greedy_jobs_left'] for r in rs]):.1f})"]
        rows.append(row)
    for name in HEURISTICS:
        row = [name.upper() if name == "sjf" else name.capitalize()]
        for s in scenarios:
            row += [f"{heur[f'{name}/{s}']['mean_slowdown']:.2f}", f"{heur[f'{name}/{s}']['jobs_left']:.1f}", ""]
        rows.append(row)
    headers = ["agent"]
    for s in scenarios:
        headers += [f"scenario {s}: mean slowdown", "jobs left", "greedy: slowdown (jobs left)"]
    b = results["budget"]
    text = (f"PPO budget: {b['steps_per_run']} env steps per run, {b['seeds']} seeds, {b['num_envs']} sub-envs; "
            f"evaluation: {b['eval_episodes']} seeded episodes, PPO sampling its actions (greedy in the last "
            f"column); mean ± std over seeds. Mean slowdown counts finished jobs; 'jobs left' were still "
            f"waiting or running when the episode ended.\n\n")
    text += format_table(rows, headers) + "\n"
    if results["transfer"]:
        tr = results["transfer"]
        targets = sorted({t["scenario"] for t in tr})
        rows = []
        for v in [v for v in COMPACT if any(t["variant"] == v for t in tr)]:
            rows.append([v.replace("-v0", "") + " (trained on 9)"]
                        + [f"{np.mean([t['mean_slowdown'] for t in tr if t['variant'] == v and t['scenario'] == s]):.2f}"
                           for s in targets])
        for name in HEURISTICS:
            rows.append([name.upper() if name == "sjf" else name.capitalize()]
                        + [f"{heur[f'{name}/{s}']['mean_slowdown']:.2f}" for s in targets])
        text += "\nTransfer (mean slowdown, mean over seeds):\n\n"
        text += format_table(rows, ["agent"] + [f"sc. {s}" for s in targets]) + "\n"
    return text


def plot(results: dict, path: Path) -> None:
    """Learning curves: recent mean slowdown vs env steps, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    scenarios = sorted({r["scenario"] for r in runs})
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4), squeeze=False)
    for ax, s in zip(axes[0], scenarios):
        for v in VARIANTS:
            curves = [r["curve"] for r in runs if r["variant"] == v and r["scenario"] == s]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            steps = np.array([c[i][0] for i in range(n) for c in curves[:1]])
            ys = np.array([[np.nan if c[i][1] is None else c[i][1] for i in range(n)] for c in curves])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # steps before any episode ended
                mean = np.nanmean(ys, axis=0)
            ax.plot(steps, mean, label=v.replace("DeepRM-", "").replace("-v0", ""))
        for name, style in zip(HEURISTICS, ("--", ":")):
            ax.axhline(results["heuristics"][f"{name}/{s}"]["mean_slowdown"], color="k", linestyle=style,
                       label=name.upper() if name == "sjf" else name.capitalize())
        ax.set_title(f"scenario {s}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("mean slowdown (last 20 episodes)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def combine(parts: list[Path], out: Path) -> dict:
    """Merge result folders of runs made in parallel (e.g. one ``--variants`` subset per core)."""
    loaded = [json.loads((p / "results.json").read_text()) for p in parts]
    budgets = {json.dumps(r["budget"], sort_keys=True) for r in loaded}
    if len(budgets) != 1:
        raise ValueError(f"cannot combine runs made with different budgets: {sorted(budgets)}")
    merged = {"budget": loaded[0]["budget"], "heuristics": {}, "runs": [], "transfer": []}
    for r in loaded:
        merged["heuristics"].update(r["heuristics"])
        merged["runs"] += r["runs"]
        merged["transfer"] += r["transfer"]
    save(merged, out)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per training run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scenarios", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--episodes", type=int, default=32, help="evaluation episodes")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default="benchmarks/results/mdp_design")
    parser.add_argument("--combine", nargs="+", type=Path, metavar="DIR",
                        help="merge the results.json of these folders into --out instead of training")
    args = parser.parse_args()
    if args.combine:
        print(tables(combine(args.combine, Path(args.out))))
        return
    results = run(args.steps, args.seeds, tuple(args.scenarios), args.episodes, args.num_envs, Path(args.out),
                  tuple(args.variants))
    print(tables(results))


if __name__ == "__main__":
    main()
