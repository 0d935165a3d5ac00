"""De Freitas Cunha & Chaimowicz, "On the impact of MDP design for Reinforcement Learning agents in
Resource Management" (BRACIS 2021), under the paper's own protocol, on all ten scenarios.

Protocol (``protocol="bracis"`` of :mod:`sysgym.envs.deeprm`): every episode lasts exactly
``episode_length`` steps with jobs arriving all along, and the metric is the mean slowdown of the
jobs that finished. PPO: Table 2 hyper-parameters with separate 2x64 actor and critic networks
(``BRACIS_PRESET``, the network whose parameter counts the paper reports). Two claims are tested:

* Fig. 4: the Compact+Sparse+Reduced agent (compact state, semi-MDP transitions, reward over the
  window jobs, bounded to [-1, 0]) has a lower mean slowdown than the Image agent (DeepRM's image
  state, dense transitions, reward over all jobs), scenario by scenario, at the same number of
  env steps.
* Transfer: the Compact+Sparse+Reduced agent trained on scenario 9 and run, without retraining, in
  the dense compact env of every scenario beats the agents trained on that scenario (the paper:
  in 80% of the scenarios).

Each trained agent plays the same ``--episodes`` seeded episodes (identical job streams for every
agent) in the dense env of its observation (a masked policy makes the same decisions in the
sparse and the dense env: the dense env only adds steps where the void action is the only valid
one). Per scenario: mean slowdown with a 95% t confidence interval over the evaluation episodes of
all seeds, and two-sided two-sample t-tests over the same episodes, Welch's (unequal variances;
the verdicts use it) and Student's (pooled variance), plus Welch's test over the per-seed means;
every table is repeated for ``mean_slowdown_all`` (unfinished jobs counted with the slowdown they
reached), which a policy cannot improve by leaving long jobs unfinished. Budget and seeds are
arguments; the defaults are the committed run (``benchmarks/results/bracis/``)::

    python -m benchmarks.paper_bracis --seeds 3 --image-seeds 2 --steps 30000 --csr-steps 30000 200000

Image runs are ~10x slower per step than compact ones (up to 14,160 inputs), so the committed run
used two processes, and continued the Image agents of the two cheapest scenarios to 200,000 steps
(training is deterministic given the seed, so a continued run repeats the shorter one exactly and
``--combine`` checks that their common evaluations agree)::

    python -m benchmarks.paper_bracis --variants image --image-seeds 2 --steps 30000 --out parts/image &
    python -m benchmarks.paper_bracis --variants csr --seeds 3 --csr-steps 30000 200000 --out parts/csr
    python -m benchmarks.paper_bracis --variants image --image-seeds 2 --steps 30000 200000 --scenarios 1 2 \
        --out parts/image_200k
    python -m benchmarks.paper_bracis --combine parts/image parts/csr parts/image_200k --out benchmarks/results/bracis

``--report`` rebuilds ``results.md``, ``analysis.json`` and ``bracis.png`` from ``--out``'s
``results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import sysgym  # noqa: F401  (registers the environments)

SCENARIOS = tuple(range(1, 11))
# Image runs cost more in the larger clusters: cheap scenarios first, so a cut-short run still
# covers as many scenarios as possible.
IMAGE_ORDER = (1, 2, 3, 4, 5, 7, 9, 6, 8, 10)
VARIANTS = {
    # name: (training env, its extra kwargs, dense evaluation env)
    "image": ("sysgym/DeepRM-Image-v0", {}, "sysgym/DeepRM-Image-v0"),
    "csr": ("sysgym/DeepRM-CompactSparseReduced-v0", {"reward_scale": "bounded"}, "sysgym/DeepRM-Compact-v0"),
}
LABELS = {"image": "Image", "csr": "Compact+Sparse+Reduced", "sjf": "SJF", "packer": "Packer"}
TRANSFER_SOURCE = 9
EVAL_SEED = 10_000
ALPHA = 0.05


def env_kwargs(scenario: int, episode_length: int) -> dict:
    return {"scenario": scenario, "protocol": "bracis", "episode_length": episode_length}


def _evaluate(policy, env_id: str, episodes: int, **kwargs) -> dict[str, list[float]]:
    from sysgym.agents.ppo.evaluation import evaluate_batched

    result = evaluate_batched(policy, env_id, episodes, seed=EVAL_SEED, **kwargs)
    m = result.metrics
    return {"mean_slowdown": [round(e["mean_slowdown"], 5) for e in m],
            "mean_slowdown_all": [round(e["mean_slowdown_all"], 5) for e in m],
            "jobs_left": float(np.mean([e["jobs_left"] for e in m])),
            "jobs_finished": float(np.mean([e["jobs_finished"] for e in m]))}


def evaluate_agent(trainer, env_id: str, episodes: int, **kwargs) -> dict:
    """PPO sampling its actions as trained (the headline) and greedy (masked argmax)."""
    sampled = _evaluate(trainer.policy(deterministic=False, seed=EVAL_SEED), env_id, episodes, **kwargs)
    greedy = _evaluate(trainer.policy(deterministic=True), env_id, episodes, **kwargs)
    return {**sampled, "greedy_mean_slowdown": greedy["mean_slowdown"], "greedy_jobs_left": greedy["jobs_left"]}


def run(args: argparse.Namespace) -> dict:
    from sysgym.agents.heuristics import heuristics_for
    from sysgym.agents.ppo.config import BRACIS_PRESET, default_config
    from sysgym.agents.ppo.trainer import PPOTrainer

    out = Path(args.out)
    results = {"budget": budget(args), "runs": [], "transfer": [], "heuristics": {}}
    if "csr" in args.variants:
        heuristics = heuristics_for("sysgym/DeepRM-v0")
        for scenario in args.scenarios:
            for name in ("sjf", "packer"):
                results["heuristics"][f"{name}/{scenario}"] = _evaluate(
                    heuristics[name], "sysgym/DeepRM-Compact-v0", args.episodes,
                    **env_kwargs(scenario, args.episode_length))
    save(results, out)
    for seed in range(max(args.seeds, args.image_seeds)):
        for variant in args.variants:
            if seed >= (args.image_seeds if variant == "image" else args.seeds):
                continue
            train_id, extra, eval_id = VARIANTS[variant]
            steps = args.steps if variant == "image" else args.csr_steps
            order = [s for s in (IMAGE_ORDER if variant == "image" else
                                 (TRANSFER_SOURCE, *SCENARIOS)) if s in args.scenarios]
            for scenario in dict.fromkeys(order):
                kwargs = env_kwargs(scenario, args.episode_length)
                config = default_config(train_id, **BRACIS_PRESET, seed=seed, num_envs=args.num_envs,
                                        encoder="mlp", progress=False, tensorboard=False,
                                        env_kwargs={**kwargs, **extra})
                trainer = PPOTrainer(train_id, config)
                start, done, curve, evaluations = time.perf_counter(), 0, [], {}
                try:
                    for target in sorted(steps):
                        result = trainer.train(target - done)
                        done = trainer.global_step
                        curve += [(r["global_step"], r.get("metric/mean_slowdown")) for r in result.history]
                        evaluations[str(target)] = evaluate_agent(trainer, eval_id, args.episodes, **kwargs)
                    run_record = {"variant": variant, "scenario": scenario, "seed": seed,
                                  "seconds": round(time.perf_counter() - start, 1), "evaluations": evaluations,
                                  "curve": curve[:: max(1, len(curve) // 200)]}
                    results["runs"].append(run_record)
                    last = evaluations[str(max(steps))]
                    print(f"{variant} scenario {scenario} seed {seed}: mean slowdown "
                          f"{np.mean(last['mean_slowdown']):.3f} after {max(steps)} steps "
                          f"({run_record['seconds']:.0f} s)", flush=True)
                    if variant == "csr" and scenario == TRANSFER_SOURCE:
                        for target_scenario in args.scenarios:
                            results["transfer"].append({
                                "seed": seed, "scenario": target_scenario, "steps": max(steps),
                                **evaluate_agent(trainer, eval_id, args.episodes,
                                                 **env_kwargs(target_scenario, args.episode_length))})
                finally:
                    trainer.close()
                save(results, out)
    return results


def budget(args: argparse.Namespace) -> dict:
    return {"image_steps": sorted(args.steps), "csr_steps": sorted(args.csr_steps),
            "seeds": max(args.seeds, args.image_seeds),
            "num_envs": args.num_envs, "eval_episodes": args.episodes, "eval_seed": EVAL_SEED,
            "episode_length": args.episode_length, "scenarios": list(args.scenarios)}


# ---------------------------------------------------------------------------------------------
# statistics


def summary(values: list[float]) -> dict:
    """Mean and 95% t confidence interval of ``values``."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(x.mean()), "ci95": half, "n": n}


def compare(better: list[float], worse: list[float]) -> dict:
    """Two-sided two-sample t-tests of 'better has the lower mean' (Welch's and Student's)."""
    from scipy import stats

    welch = stats.ttest_ind(better, worse, equal_var=False)
    student = stats.ttest_ind(better, worse, equal_var=True)
    lower = float(np.mean(better)) < float(np.mean(worse))
    p = float(welch.pvalue)
    if lower and p < ALPHA:
        verdict = "reproduced"
    elif not lower and p < ALPHA:
        verdict = "not reproduced (significantly the other way)"
    else:
        verdict = "not reproduced (no significant difference)"
    return {"p_welch": p, "p_student": float(student.pvalue), "verdict": verdict, "lower": lower}


def seed_means(runs: list[dict], variant: str, scenario: int, steps: int, key: str = "mean_slowdown") -> list[float]:
    """One mean per seed's agent (the spread the episode-level tests do not see)."""
    return [float(np.mean(r["evaluations"][str(steps)][key])) for r in runs
            if r["variant"] == variant and r["scenario"] == scenario and str(steps) in r["evaluations"]]


def jobs_left(runs: list[dict], variant: str, scenario: int, steps: int) -> float | None:
    """Mean number of jobs still waiting or running at the end of the evaluation episodes."""
    values = [r["evaluations"][str(steps)]["jobs_left"] for r in runs
              if r["variant"] == variant and r["scenario"] == scenario and str(steps) in r["evaluations"]]
    return float(np.mean(values)) if values else None


def p_seeds(better: list[float], worse: list[float]) -> float | None:
    """Welch's test over per-seed means (None with fewer than two seeds on either side)."""
    from scipy import stats

    if min(len(better), len(worse)) < 2:
        return None
    return float(stats.ttest_ind(better, worse, equal_var=False).pvalue)


def pooled(runs: list[dict], variant: str, scenario: int, steps: int, key: str = "mean_slowdown") -> list[float]:
    """Per-episode values of every seed's agent (variant, scenario) evaluated after ``steps`` steps."""
    values: list[float] = []
    for r in runs:
        if r["variant"] == variant and r["scenario"] == scenario and str(steps) in r["evaluations"]:
            values += r["evaluations"][str(steps)][key]
    return values


def analyse(results: dict, key: str = "mean_slowdown") -> dict:
    """Fig. 4 and transfer comparisons, scenario by scenario, on metric ``key`` (the paper's
    ``mean_slowdown`` over finished jobs, or ``mean_slowdown_all``)."""
    b, runs = results["budget"], results["runs"]
    equal = min(b["image_steps"])          # the image budget: the equal-steps comparison
    final = max(b["csr_steps"])
    fig4, transfer = [], []
    for s in b["scenarios"]:
        image, csr = pooled(runs, "image", s, equal, key), pooled(runs, "csr", s, equal, key)
        row = {"scenario": s, "jobs_left": {"image": jobs_left(runs, "image", s, equal),
                                            "csr": jobs_left(runs, "csr", s, equal)}}
        if image:
            row["image"] = summary(image)
        if csr:
            row["csr"] = summary(csr)
        if image and csr:
            row.update(compare(csr, image))
            row["seed_means"] = {"image": seed_means(runs, "image", s, equal, key),
                                 "csr": seed_means(runs, "csr", s, equal, key)}
            row["p_seeds"] = p_seeds(row["seed_means"]["csr"], row["seed_means"]["image"])
        if final != equal and pooled(runs, "csr", s, final, key):
            row["csr_final"] = summary(pooled(runs, "csr", s, final, key))
            row["jobs_left"]["csr_final"] = jobs_left(runs, "csr", s, final)
            if image:  # the CSR agent trained longer, for no more compute than the Image agent
                row["final_vs_image"] = compare(pooled(runs, "csr", s, final, key), image)
        fig4.append(row)
        moved_runs = [t for t in results["transfer"] if t["scenario"] == s]
        moved = [v for t in moved_runs for v in t[key]]
        special = pooled(runs, "csr", s, final, key)
        if moved and special:
            moved_seeds = [float(np.mean(t[key])) for t in moved_runs]
            special_seeds = seed_means(runs, "csr", s, final, key)
            row = {"scenario": s, "transferred": summary(moved), "specialised": summary(special),
                   **compare(moved, special), "seed_means": {"transferred": moved_seeds, "specialised": special_seeds},
                   "p_seeds": p_seeds(moved_seeds, special_seeds),
                   "jobs_left": {"transferred": float(np.mean([t["jobs_left"] for t in moved_runs])),
                                 "specialised": jobs_left(runs, "csr", s, final)}}
            image_final = pooled(runs, "image", s, equal, key)
            if image_final:
                row["image"] = summary(image_final)
                row["vs_image"] = compare(moved, image_final)
            transfer.append(row)
    others = [t for t in transfer if t["scenario"] != TRANSFER_SOURCE]
    versus = [t["vs_image"] for t in others if "vs_image" in t]
    count = {"scenarios": len(others), "lower_mean": sum(t["lower"] for t in others),
             "significantly_lower": sum(t["verdict"] == "reproduced" for t in others),
             "vs_image": {"scenarios": len(versus), "lower_mean": sum(v["lower"] for v in versus),
                          "significantly_lower": sum(v["verdict"] == "reproduced" for v in versus)}}
    # longer equal-steps comparisons, where some Image runs went on (e.g. in the cheap scenarios)
    longer = []
    for steps in sorted(set(b["image_steps"]) & set(b["csr_steps"]) - {equal}):
        for s in b["scenarios"]:
            image, csr = pooled(runs, "image", s, steps, key), pooled(runs, "csr", s, steps, key)
            if image and csr:
                longer.append({"steps": steps, "scenario": s, "image": summary(image), "csr": summary(csr),
                               **compare(csr, image),
                               "p_seeds": p_seeds(seed_means(runs, "csr", s, steps, key),
                                                  seed_means(runs, "image", s, steps, key)),
                               "jobs_left": {"image": jobs_left(runs, "image", s, steps),
                                             "csr": jobs_left(runs, "csr", s, steps)}})
    return {"metric": key, "equal_steps": equal, "final_steps": final, "fig4": fig4, "longer": longer,
            "transfer": transfer, "transfer_count": count}


# ---------------------------------------------------------------------------------------------
# output


def _p(p: float | None) -> str:
    return "" if p is None or math.isnan(p) else f"{p:.2g}"


def _cell(s: dict | None) -> str:
    return "" if not s else f"{s['mean']:.2f} ± {s['ci95']:.2f}"


def _left(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def tables(results: dict) -> str:
    b = results["budget"]
    seeds = {v: len({r["seed"] for r in results["runs"] if r["variant"] == v}) for v in VARIANTS}
    evaluated = {v: ", ".join(f"{sum(str(at) in r['evaluations'] for r in results['runs'] if r['variant'] == v)} "
                              f"after {at}" for at in b[f"{v}_steps"]) for v in VARIANTS}
    text = (f"Protocol 'bracis': episodes of {b['episode_length']} steps, jobs arriving all along. Budget (runs "
            f"evaluated after so many env steps): Image {evaluated['image']}; Compact+Sparse+Reduced (CSR) "
            f"{evaluated['csr']}; seeds: Image {seeds['image']}, CSR {seeds['csr']}; {b['eval_episodes']} seeded evaluation "
            f"episodes per agent (the same for every agent), PPO sampling its actions. Cells: mean ± 95% CI "
            f"half-width over the episodes of all seeds; p: two-sided Welch t-test over the same episodes "
            f"(Student's in brackets), the verdict's test at {ALPHA}; p seeds: Welch's test over the per-seed "
            f"means; jobs left: still waiting or running at the end (Image / CSR).\n\n")
    wall = {v: [1e4 * r["seconds"] / max(map(int, r["evaluations"])) for r in results["runs"] if r["variant"] == v]
            for v in VARIANTS}
    if all(wall.values()):
        text += (f"Wall time per 10,000 env steps (training and evaluations, on 2 shared cores at nice 10): Image "
                 f"{np.mean(wall['image']):.0f} s, CSR {np.mean(wall['csr']):.0f} s (means over runs).\n\n")
    text += "## The paper's metric: mean slowdown of the finished jobs\n\n" + _tables(results, "mean_slowdown")
    text += ("\n## The same comparisons on mean_slowdown_all (unfinished jobs counted with the slowdown they "
             "reached by the end)\n\n" + _tables(results, "mean_slowdown_all"))
    return text


def _tables(results: dict, key: str) -> str:
    from sysgym.bench import format_table

    a, heur = analyse(results, key), results["heuristics"]
    rows = []
    for row in a["fig4"]:
        s = row["scenario"]
        cells = [str(s), _cell(row.get("image")), _cell(row.get("csr"))]
        cells.append(f"{row['p_welch']:.2g} ({row['p_student']:.2g})" if "p_welch" in row else "")
        cells.append(_p(row.get("p_seeds")))
        cells.append(row.get("verdict", ""))
        cells.append(f"{_left(row['jobs_left']['image'])} / {_left(row['jobs_left']['csr'])}")
        if a["final_steps"] != a["equal_steps"]:
            cells.append(_cell(row.get("csr_final")))
            cells.append(_p(row["final_vs_image"]["p_welch"]) if "final_vs_image" in row else "")
        for name in ("sjf", "packer"):
            h = heur.get(f"{name}/{s}")
            cells.append(_cell(summary(h[key])) if h else "")
        rows.append(cells)
    headers = ["scenario", f"Image ({a['equal_steps']})", f"CSR ({a['equal_steps']})", "p Welch (Student)",
               "p seeds", "claim: CSR < Image", "jobs left"]
    if a["final_steps"] != a["equal_steps"]:
        headers += [f"CSR ({a['final_steps']})", "p vs Image"]
    headers += ["SJF", "Packer"]
    text = "Fig. 4 — Image vs Compact+Sparse+Reduced at equal env steps:\n\n" + format_table(rows, headers) + "\n"
    if a["longer"]:
        rows = [[str(r["steps"]), str(r["scenario"]), _cell(r["image"]), _cell(r["csr"]),
                 f"{r['p_welch']:.2g} ({r['p_student']:.2g})", _p(r["p_seeds"]), r["verdict"],
                 f"{_left(r['jobs_left']['image'])} / {_left(r['jobs_left']['csr'])}"] for r in a["longer"]]
        text += ("\nThe same comparison after more steps, where Image runs were continued:\n\n"
                 + format_table(rows, ["steps", "scenario", "Image", "CSR", "p Welch (Student)", "p seeds",
                                       "claim: CSR < Image", "jobs left"]) + "\n")
    if a["transfer"]:
        rows = []
        for row in a["transfer"]:
            rows.append([str(row["scenario"]), _cell(row["transferred"]), _cell(row["specialised"]),
                         f"{row['p_welch']:.2g} ({row['p_student']:.2g})", _p(row.get("p_seeds")),
                         "(same agent)" if row["scenario"] == TRANSFER_SOURCE else row["verdict"],
                         f"{_left(row['jobs_left']['transferred'])} / {_left(row['jobs_left']['specialised'])}",
                         _cell(row.get("image")),
                         f"{row['vs_image']['p_welch']:.2g}" if "vs_image" in row else ""])
        c = a["transfer_count"]
        text += (f"\nTransfer — CSR trained on scenario {TRANSFER_SOURCE} ({a['final_steps']} steps), run in the "
                 f"dense compact env, vs CSR agents trained on each scenario (same steps); Image agents "
                 f"({a['equal_steps']} steps) for reference:\n\n")
        text += format_table(rows, ["scenario", "transferred", "specialised CSR", "p Welch (Student)", "p seeds",
                                    "claim: transferred < specialised", "jobs left (tr. / sp.)",
                                    "specialised Image", "p vs Image"]) + "\n"
        v = c["vs_image"]
        text += (f"\nTransferred agent lower than the specialised CSR agent in {c['lower_mean']} of {c['scenarios']} "
                 f"other scenarios ({c['significantly_lower']} significantly at {ALPHA}), than the specialised Image "
                 f"agent in {v['lower_mean']} of {v['scenarios']} ({v['significantly_lower']} significantly); "
                 f"the paper: 80%.\n")
    return text


def plot(results: dict, path: Path) -> None:
    """Left: Fig. 4 per scenario with 95% CIs; right: transfer vs specialised agents."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = analyse(results)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    longer = [{"scenario": r["scenario"], "image_longer": r["image"]} for r in a["longer"]
              if r["steps"] == a["final_steps"]]
    series = [("image", f"Image ({a['equal_steps']})", a["fig4"], -0.3), ("csr", f"CSR ({a['equal_steps']})", a["fig4"], -0.1),
              ("image_longer", f"Image ({a['final_steps']})", longer, 0.1),
              ("csr_final", f"CSR ({a['final_steps']})", a["fig4"], 0.3)]
    for key, label, rows, dx in series:
        rows = [r for r in rows if key in r]
        if rows:
            axes[0].errorbar([r["scenario"] + dx for r in rows], [r[key]["mean"] for r in rows],
                             yerr=[r[key]["ci95"] for r in rows], fmt="o", capsize=3, label=label)
    sjf = [(s, summary(results["heuristics"][f"sjf/{s}"]["mean_slowdown"])["mean"])
           for s in results["budget"]["scenarios"] if f"sjf/{s}" in results["heuristics"]]
    if sjf:
        axes[0].plot(*zip(*sjf), "k_", markersize=14, label="SJF")
    axes[0].set_title("Image vs Compact+Sparse+Reduced (CSR)")
    series = [("transferred", f"CSR trained on {TRANSFER_SOURCE}", -0.15), ("specialised", "CSR trained here", 0.15)]
    for key, label, dx in series:
        rows = a["transfer"]
        if rows:
            axes[1].errorbar([r["scenario"] + dx for r in rows], [r[key]["mean"] for r in rows],
                             yerr=[r[key]["ci95"] for r in rows], fmt="o", capsize=3, label=label)
    axes[1].set_title(f"Transfer ({a['final_steps']} steps)")
    for ax in axes:
        ax.set_xlabel("scenario")
        ax.set_ylabel("mean slowdown (finished jobs)")
        ax.set_xticks(list(SCENARIOS))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save(results: dict, out: Path) -> None:
    """Write what has been measured so far (after every run, so a long job keeps its results)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results))
    if results["runs"]:
        (out / "results.md").write_text(tables(results))
        (out / "analysis.json").write_text(json.dumps({key: analyse(results, key) for key in
                                                       ("mean_slowdown", "mean_slowdown_all")}, indent=1))
        plot(results, out / "bracis.png")


def combine(parts: list[Path], out: Path) -> dict:
    """Merge result folders of runs made in parallel (one ``--variants`` subset per process)."""
    loaded = [json.loads((p / "results.json").read_text()) for p in parts]
    keep = ("num_envs", "eval_episodes", "eval_seed", "episode_length")
    if len({json.dumps({k: r["budget"][k] for k in keep}) for r in loaded}) != 1:
        raise ValueError("cannot combine runs evaluated differently: " +
                         "; ".join(json.dumps(r["budget"]) for r in loaded))
    merged = {"budget": dict(loaded[0]["budget"]), "runs": [], "transfer": [], "heuristics": {}}
    steps: dict[str, set[int]] = {"image_steps": set(), "csr_steps": set()}
    runs: dict[tuple, dict] = {}
    for r in loaded:
        for run in r["runs"]:
            key = (run["variant"], run["scenario"], run["seed"])
            if key not in runs:
                runs[key] = run
                continue
            # the same seed trained further in another part: training is deterministic, so the
            # evaluations both parts made must agree; keep the union (and the longer run's time)
            kept = runs[key]
            if max(map(int, run["evaluations"])) > max(map(int, kept["evaluations"])):
                kept["seconds"], kept["curve"] = run["seconds"], run["curve"]
            for at, evaluation in run["evaluations"].items():
                if kept["evaluations"].setdefault(at, evaluation) != evaluation:
                    raise ValueError(f"{key} after {at} steps was evaluated differently in two parts")
        merged["transfer"] += r["transfer"]
        merged["heuristics"].update(r["heuristics"])
        for v, key in (("image", "image_steps"), ("csr", "csr_steps")):
            if any(x["variant"] == v for x in r["runs"]):
                steps[key] |= set(r["budget"][key])
    merged["runs"] = list(runs.values())
    merged["budget"].update({key: sorted(values) for key, values in steps.items() if values})
    merged["budget"]["seeds"] = max(r["budget"]["seeds"] for r in loaded)
    save(merged, out)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds of the CSR agents")
    parser.add_argument("--image-seeds", type=int, default=2, help="training seeds of the Image agents")
    parser.add_argument("--steps", type=int, nargs="+", default=[30_000],
                        help="env steps after which each Image agent is evaluated (the smallest is the "
                             "equal-steps comparison)")
    parser.add_argument("--csr-steps", type=int, nargs="+", default=[30_000, 200_000],
                        help="env steps after which each Compact+Sparse+Reduced agent is evaluated (one run, "
                             "trained on); the largest is used for the transfer experiment")
    parser.add_argument("--scenarios", type=int, nargs="+", default=list(SCENARIOS))
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes per agent")
    parser.add_argument("--episode-length", type=int, default=100)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="benchmarks/results/bracis")
    parser.add_argument("--combine", nargs="+", type=Path, metavar="DIR",
                        help="merge the results.json of these folders into --out instead of training")
    parser.add_argument("--report", action="store_true", help="rebuild the tables and figure of --out")
    args = parser.parse_args()
    if args.combine:
        print(tables(combine(args.combine, Path(args.out))))
        return
    if args.report:
        results = json.loads((Path(args.out) / "results.json").read_text())
        save(results, Path(args.out))
        print(tables(results))
        return
    if "image" in args.variants and min(args.steps) not in args.csr_steps and "csr" in args.variants:
        parser.error("--csr-steps must include the smallest --steps value (the equal-steps comparison)")
    print(tables(run(args)))


if __name__ == "__main__":
    main()
