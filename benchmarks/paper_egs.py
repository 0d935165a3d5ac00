"""EGS-PPO (Sun et al., IEEE TC 2024) against greedy EGS and the sound analyses, on the shipped task sets.

Train a graph policy (:mod:`sysgym.agents.ppo.graph`) with PPO on generated layered DAGs of 20-40
nodes, pick the checkpoint with the fewest cores on a validation set of generated tasks (seeds
disjoint from the test sets), then evaluate it on ``traces/dag/layered_n{20,40,60}.dot`` beside:

* greedy and random EGS (:mod:`sysgym.agents.heuristics.dag`), sound by construction (W <= M, L <= D);
* Graham's bound (1969) and He et al. 2019's response-time analysis with its priorities (sound);
* the initial width W(G) (EGS with no edge added, also sound);
* critical-path-first list scheduling at the WCETs, a yardstick that is *not* sound (anomalies:
  the script counts the tasks where shortening one node's WCET makes it miss D);
* with ``--egs-dir PATH``, the authors' released policy (github.com/binqi-sun/egs,
  ``models/pretrained``) run in its own venv on the very same task files, task by task, with a sign
  test (:mod:`benchmarks.egs_released`; ``released.md``, ``released.json``, ``released_tasks.csv``).

Outputs in ``--out``: ``results.json`` (per-task cores of every method), ``results.md`` (tables and
the training command), ``schedulability.png`` (share of tasks schedulable with <= m cores, per m,
the EGS paper's figure style) and ``policy.pt`` (the selected checkpoint).

This is a long run, not a ``bench_*`` module::

    nice -n 10 python -m benchmarks.paper_egs --steps 800000 --out benchmarks/results/egs
    python -m benchmarks.paper_egs --checkpoint benchmarks/results/egs/policy.pt --out /tmp/egs
    python -m benchmarks.paper_egs --report --out benchmarks/results/egs

(the second form evaluates a given checkpoint and trains nothing; the third rebuilds ``results.md``
from ``results.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sysgym  # noqa: F401  (registers the environments)
from benchmarks import egs_released
from sysgym.bench import format_table

ENV_ID = "sysgym/DAG-EGS-v0"
TRAIN_ENV = {"num_nodes": (20, 40), "max_nodes": 40}
SIZES = (20, 40, 60)
VALIDATION = {"count": 200, "seed": 700_000, "num_nodes": (20, 40)}     # disjoint from the test sets' seeds
SAMPLES = 8                                     # rollouts of the sampled policy ("best of 8" row)
MAX_CORES_PLOTTED = 16


# ---------------------------------------------------------------- training
def training_config(steps: int, seed: int, checkpoints: int) -> Any:
    """The PPO settings of the reference run (CleanRL's defaults where not stated)."""
    from sysgym.agents.ppo import PPOConfig

    num_envs, n_steps = 16, 64
    iterations = max(1, -(-steps // (num_envs * n_steps)))
    return PPOConfig(
        encoder="graph", hidden_sizes=(32, 32, 32), num_envs=num_envs, n_steps=n_steps, total_steps=steps,
        batch_size=256, n_epochs=4, lr=1e-3, anneal_lr=True, gamma=1.0, gae_lambda=0.95, ent_coef=0.005,
        normalize_reward=True, seed=seed, checkpoint_every=max(1, iterations // max(1, checkpoints)),
        torch_threads=1, tensorboard=False, progress=False, env_kwargs=dict(TRAIN_ENV))


def train(steps: int, seed: int, run_dir: Path, checkpoints: int) -> float:
    """Train into ``run_dir`` (``checkpoint.pt`` and the periodic ``checkpoint_<step>.pt``); returns seconds."""
    from sysgym.agents.ppo import PPOTrainer

    config = training_config(steps, seed, checkpoints)
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = PPOTrainer(ENV_ID, config, run_dir)
    start = time.perf_counter()
    try:
        result = trainer.train()
    finally:
        trainer.close()
    seconds = time.perf_counter() - start
    print(f"trained {result.global_step} steps in {seconds:.0f} s -> {run_dir}", flush=True)
    return seconds


# ---------------------------------------------------------------- EGS episodes
def egs_cores(make_policy: Any, episodes: int, reset_seed: int = 0, **env_kwargs: Any) -> np.ndarray:
    """Cores needed (final width) of one episode per sub-env; with a task-set workload sub-env k
    plays task k. ``make_policy(vec_env)`` builds the policy on the vector env."""
    vec = gym.make_vec(ENV_ID, num_envs=episodes, vectorization_mode="vector_entry_point", **env_kwargs)
    try:
        options = {"task": np.arange(episodes)} if "workload" in env_kwargs else None
        obs, info = vec.reset(seed=reset_seed, options=options)
        policy = make_policy(vec)
        cores = np.full(episodes, -1, dtype=np.int64)
        for _ in range(vec.unwrapped.config.max_steps + 1):
            obs, _, terminated, truncated, info = vec.step(policy.act(obs, info))
            ended = (terminated | truncated) & (cores < 0)
            if ended.any():
                cores[ended] = info["episode_metrics"]["cores_needed"][ended]
            if (cores >= 0).all():
                return cores
        raise RuntimeError("an EGS episode outlived max_steps")
    finally:
        vec.close()


def ppo_factory(checkpoint: Any, deterministic: bool = True, seed: int = 0):
    """``vec -> policy``: the graph policy rebuilt for the env's max_nodes."""
    from sysgym.agents.ppo.checkpoint import policy_for_spaces

    return lambda vec: policy_for_spaces(checkpoint, vec.single_observation_space, vec.single_action_space,
                                         deterministic=deterministic, seed=seed)


def validate(run_dir: Path) -> tuple[Path, dict[str, float]]:
    """Mean cores of every checkpoint in ``run_dir`` on the validation tasks; the best one (ties: later)."""
    from sysgym.agents.ppo import load_checkpoint

    scores: dict[str, float] = {}
    paths = sorted(run_dir.glob("checkpoint_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if (run_dir / "checkpoint.pt").exists():         # absent when a run was stopped early
        paths.append(run_dir / "checkpoint.pt")
    for path in paths:
        cores = egs_cores(ppo_factory(load_checkpoint(path)), VALIDATION["count"], VALIDATION["seed"],
                          num_nodes=VALIDATION["num_nodes"], max_nodes=TRAIN_ENV["max_nodes"])
        scores[path.name] = float(cores.mean())
        print(f"validation {path.name}: {scores[path.name]:.3f} cores", flush=True)
    best = min(reversed(paths), key=lambda p: scores[p.name])
    return best, scores


# ---------------------------------------------------------------- the comparison on the shipped sets
def list_anomaly(task: Any, cores: int) -> bool:
    """Whether shortening one node's WCET (to any smaller value) makes the critical-path-first list
    schedule on ``cores`` cores miss D."""
    from sysgym.agents.heuristics.dag import list_schedule

    for v, c in enumerate(task.wcet):
        for shorter in range(c):
            execution = list(task.wcet)
            execution[v] = shorter
            if list_schedule(task, cores, execution=execution)[0] > task.deadline:
                return True
    return False


def evaluate_size(n: int, checkpoint: Any, limit: int | None = None) -> dict[str, Any]:
    """Per-task cores of every method on ``layered_n{n}.dot`` (None: no core count certified);
    ``limit`` keeps the first tasks only (a smoke test)."""
    from sysgym.agents.heuristics.dag import (
        GreedyWidth,
        RandomEdge,
        graham_cores,
        he2019_cores,
        list_scheduling_cores,
    )
    from sysgym.envs.dag import analyse_task, load_tasks
    from sysgym.traces import trace_path

    path = trace_path("dag", f"layered_n{n}.dot")
    tasks = load_tasks(path)[:limit]
    if limit is not None:
        path = tasks                      # the env takes DAGTasks as a task set too
    k = len(tasks)
    out: dict[str, Any] = {}
    out["EGS-PPO"] = egs_cores(ppo_factory(checkpoint), k, workload=path).tolist()
    best = None
    for s in range(SAMPLES):
        sampled = egs_cores(ppo_factory(checkpoint, deterministic=False, seed=s), k, workload=path)
        best = sampled if best is None else np.minimum(best, sampled)
    out[f"EGS-PPO best of {SAMPLES}"] = best.tolist()
    out["greedy EGS"] = egs_cores(lambda vec: GreedyWidth(vec), k, workload=path).tolist()
    out["random EGS"] = egs_cores(lambda vec: RandomEdge(vec, seed=0), k, workload=path).tolist()
    out["initial width W(G)"] = [analyse_task(t)["width"] for t in tasks]
    out["Graham 1969"] = [graham_cores(t) for t in tasks]
    out["He et al. 2019"] = [he2019_cores(t) for t in tasks]
    out["list scheduling (not sound)"] = [list_scheduling_cores(t) for t in tasks]
    out["lower bound max(1, ceil(vol / D))"] = [max(1, -(-t.volume // t.deadline)) for t in tasks]
    out["list anomalies"] = sum(list_anomaly(t, c) for t, c in zip(tasks, out["list scheduling (not sound)"]))
    return out


def summary_rows(results: dict[int, dict[str, Any]]) -> tuple[list[list[str]], list[str]]:
    methods = [m for m in results[SIZES[0]] if m != "list anomalies"]
    rows = []
    for method in methods:
        row = [method]
        for n in SIZES:
            values = results[n][method]
            ok = [v for v in values if v is not None]
            cell = f"{np.mean(ok):.2f}" if ok else "-"
            if len(ok) < len(values):
                cell += f" ({len(values) - len(ok)} never)"
            row.append(cell)
        rows.append(row)
    return rows, ["method"] + [f"n = {n}: mean cores" for n in SIZES]


def ratio(values: list[Any], m: int) -> float:
    """Share of tasks schedulable with at most m cores."""
    return float(np.mean([v is not None and v <= m for v in values]))


def schedulability_table(results: dict[int, dict[str, Any]], n: int, methods: list[str]) -> str:
    top = max(max(v for v in results[n][m] if v is not None) for m in methods)
    cores = list(range(2, min(top, MAX_CORES_PLOTTED) + 1))
    rows = [[m] + [f"{ratio(results[n][m], c):.2f}" for c in cores] for m in methods]
    return format_table(rows, ["method"] + [f"m={c}" for c in cores])


def plot(results: dict[int, dict[str, Any]], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SIZES), figsize=(5 * len(SIZES), 3.8), sharey=True)
    cores = np.arange(1, MAX_CORES_PLOTTED + 1)
    for ax, n in zip(axes, SIZES):
        for method in methods:
            style = ":" if "not sound" in method else "-"
            ax.plot(cores, [ratio(results[n][method], c) for c in cores], style, marker=".", label=method)
        ax.set_title(f"layered_n{n}.dot ({len(results[n][methods[0]])} tasks)")
        ax.set_xlabel("cores m")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share schedulable with <= m cores")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _versus(a: list[int], b: list[int]) -> str:
    a_, b_ = np.array(a), np.array(b)
    return f"{int((a_ < b_).sum())} / {int((a_ > b_).sum())}"


def report(results: dict[int, dict[str, Any]], meta: dict[str, Any]) -> str:
    rows, headers = summary_rows(results)
    curve_methods = ["EGS-PPO", "greedy EGS", "He et al. 2019", "Graham 1969", "list scheduling (not sound)"]
    lines = ["# EGS-PPO on the shipped layered task sets", "",
             "Mean cores needed (lower is better; sound methods certify the deadline for any execution "
             "times up to the WCETs; \"never\": no core count up to n certified). No schedule of a task "
             "needs fewer than max(1, ceil(vol / D)) cores (its mean is the last row but one).", "",
             format_table(rows, headers), "",
             "List scheduling meets D at the WCETs only: on "
             + ", ".join(f"{results[n]['list anomalies']} / {len(results[n]['EGS-PPO'])} (n = {n})" for n in SIZES)
             + " tasks, shortening one node's WCET makes it miss D at its core count (anomalies).", "",
             "EGS-PPO against greedy EGS, tasks with fewer / more cores: "
             + ", ".join(_versus(results[n]["EGS-PPO"], results[n]["greedy EGS"]) + f" (n = {n})" for n in SIZES)
             + ".", "",
             "The authors' released policy on these same task files: `released.md` "
             "(`python -m benchmarks.egs_released --egs-dir PATH`).", ""]
    for n in SIZES:
        lines += [f"Share of tasks schedulable with at most m cores, n = {n}:", "",
                  schedulability_table(results, n, curve_methods), ""]
    lines += ["## Training", "", f"Command: `{meta['command']}`", "",
              f"Steps of the selected checkpoint: {meta['steps']} (budget {meta['planned_steps']}); training "
              f"wall time {meta['train_seconds'] / 60:.0f} min ({meta['machine']}). {meta['note']}", "",
              f"Settings: {meta['settings']}.", "",
              f"Checkpoint selected on {VALIDATION['count']} generated layered tasks "
              f"(n = {VALIDATION['num_nodes']}, seeds {VALIDATION['seed']}+): {meta['selected']}.",
              "Validation mean cores per checkpoint: "
              + ", ".join(f"{k} {v:.3f}" for k, v in meta["validation"].items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800_000, help="PPO env steps (the training budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", type=int, default=8, help="periodic checkpoints to validate")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/egs"), help="training logs and checkpoints")
    parser.add_argument("--train-only", action="store_true", help="train, then stop")
    parser.add_argument("--skip-training", action="store_true", help="validate the checkpoints already in --run-dir")
    parser.add_argument("--checkpoint", type=Path, help="evaluate this checkpoint; no training, no validation")
    parser.add_argument("--train-seconds", type=float, default=0.0, help="wall time of a previous training run (report)")
    parser.add_argument("--tasks", type=int, help="evaluate only the first TASKS tasks of each set (smoke test)")
    parser.add_argument("--note", default="", help="a sentence about the run for results.md")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/egs"))
    parser.add_argument("--report", action="store_true", help="rebuild results.md from --out's results.json")
    egs_released.add_arguments(parser, env_default=False)
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").is_file() \
            else parser.error(f"--report: no {args.out / 'results.json'}")
        results = {int(n): r for n, r in saved["results"].items()}
        (args.out / "results.md").write_text(report(results, saved["meta"]))
        print((args.out / "results.md").read_text())
        return
    if args.egs_dir is not None:     # refuse a bad checkout before any training
        try:
            egs_released.check_tool(args.egs_dir, args.egs_python)
        except FileNotFoundError as e:
            parser.error(str(e))
    import torch

    torch.set_num_threads(1)            # more threads only wait for each other on a shared machine
    meta: dict[str, Any] = {"steps": args.steps, "train_seconds": args.train_seconds,
                            "machine": "2 shared CPU cores, nice 10, torch 1 thread",
                            "command": f"nice -n 10 python -m benchmarks.paper_egs --steps {args.steps} "
                                       f"--seed {args.seed} --checkpoints {args.checkpoints}",
                            "validation": {}, "selected": str(args.checkpoint), "note": args.note}
    if args.checkpoint is None:
        if not args.skip_training:
            meta["train_seconds"] = train(args.steps, args.seed, args.run_dir, args.checkpoints)
        if args.train_only:
            return
        best, meta["validation"] = validate(args.run_dir)
        meta["selected"] = best.name
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, args.out / "policy.pt")
        checkpoint = args.out / "policy.pt"
    else:
        checkpoint = args.checkpoint
    from sysgym.agents.ppo import load_checkpoint

    payload = load_checkpoint(checkpoint)
    meta["settings"] = {k: payload["config"][k] for k in (
        "encoder", "hidden_sizes", "num_envs", "n_steps", "batch_size", "n_epochs", "lr", "anneal_lr", "gamma",
        "gae_lambda", "ent_coef", "normalize_reward", "seed", "env_kwargs")}
    meta["planned_steps"], meta["steps"] = meta["steps"], int(payload["global_step"])
    results = {n: evaluate_size(n, payload, args.tasks) for n in SIZES}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    (args.out / "results.md").write_text(report(results, meta))
    plot(results, ["EGS-PPO", "greedy EGS", "He et al. 2019", "Graham 1969", "initial width W(G)",
                   "list scheduling (not sound)"], args.out / "schedulability.png")
    print((args.out / "results.md").read_text())
    if args.egs_dir is not None:
        command = egs_released.command_line("python -m benchmarks.paper_egs", args, args.tasks, checkpoint)
        egs_released.run(args, checkpoint, args.out, args.tasks, command)


if __name__ == "__main__":
    main()
