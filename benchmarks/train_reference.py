"""Retrain the shipped reference learned agents (``sysgym/reference/``) with stated budgets, and
score each on its benchmark suite.

    nice -n 10 python -m benchmarks.train_reference                    # every agent marked "ship"
    nice -n 10 python -m benchmarks.train_reference --only Appointments-P2-v0
    python -m benchmarks.train_reference --list                        # agents, budgets, status

Per agent: train PPO (:class:`sysgym.agents.ppo.PPOTrainer`, the family preset plus the settings
below, seed 0, one process) or copy a checkpoint another script trained (``source``), copy the
checkpoint to ``sysgym/reference/<name>.pt`` and write ``<name>.json``: the env, the training
command and budget, the sha256 of the weights, the action mode (``deterministic``; fixed here, not
chosen on the test suite), ``training_data`` (the sha256 of every input file it trained on) and
the agent's scorecard rows on the held-out cases of its suite (same seeds as every benchmark run);
a case sharing any input file with its training data is not scored (``not_scored`` says why).
The wall times in the metadata are from a shared 2-core machine.

Agents marked ``planned`` are copied only when named with ``--only``: the PPO agents of the
reproduction scripts (``paper_pensieve``, ``paper_aurora``, ``paper_egs``: their budgets and
selection live there), once their owners sign them off.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sysgym
from sysgym import reference
from sysgym.agents.heuristics import family_of
from sysgym.agents.runs import atomic_write_text
from sysgym.benchmark.heldout import split_label, training_data


@dataclass(frozen=True)
class Agent:
    env_id: str
    steps: int                                   # env steps of PPO training
    settings: dict[str, Any] = field(default_factory=dict)    # PPOConfig fields over the preset
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # training env kwargs
    deterministic: bool = True                   # act greedily (True) or sample (False) when scored
    status: str = "ship"                         # "ship" or "planned"
    source: str | None = None                    # a checkpoint trained elsewhere, copied as is
    loader: str = "ppo"
    command: str = ""                            # how ``source`` was trained
    note: str = ""
    abr_data: bool = False                       # scored on the --abr-data cases (its env ID is played only there)

    @property
    def name(self) -> str:
        return self.env_id.split("/", 1)[1]


AGENTS = [
    # percentile="off" while training: the metric is not part of the reward and its exact
    # enumeration costs time at every episode end; the suite measures it.
    Agent("sysgym/Appointments-P1-v0", 1_000_000, env_kwargs={"percentile": "off"}),
    Agent("sysgym/Appointments-P2-v0", 1_000_000, env_kwargs={"percentile": "off"}),
    Agent("sysgym/Appointments-P3-v1", 1_000_000, env_kwargs={"percentile": "off"}),
    # `sysgym train` with the BRACIS'21 preset on scenario 3 (the demo's run); sampled actions,
    # as the README shows the greedy policy can strand long jobs on the sparse variants.
    Agent("sysgym/DeepRM-CompactSparse-v0", 1_000_000, {"num_envs": 16}, {"scenario": 3}, deterministic=False),
    # Trained by their reproduction scripts (budgets there); copied when their owners sign them off.
    Agent("sysgym/ABR-v0", 5_000_000, source="benchmarks/results/pensieve/policy.pt",
          command="nice -n 10 python -m benchmarks.paper_pensieve --setups synthetic --seeds 3 --steps 5000000 "
                  "--out benchmarks/results/pensieve --run-dir runs/pensieve",
          note="PPO on the shipped synthetic training traces (Pensieve at small scale), seed 0, greedy"),
    Agent("sysgym/ABR-Pensieve-v0", 5_000_000, source="benchmarks/results/pensieve/policy_fcc.pt",
          command="nice -n 10 python -m benchmarks.paper_pensieve --setups fcc --seeds 3 --steps 5000000 "
                  "--out benchmarks/results/pensieve --run-dir runs/pensieve",
          note="PPO on Pensieve's own training traces (fcc_train) with the Envivio video, chunk 0 at the "
               "default level, seed 0, greedy; needs ../shared/data/abr to retrain and to score, not to run; "
               "scored on the held-out norway_train only (fcc_train trained it)",
          abr_data=True),
    Agent("sysgym/CC-v0", 2_000_000, source="benchmarks/results/aurora/policy.pt",
          command="nice -n 10 python -m benchmarks.paper_aurora --steps 2000000 4000000 --seeds 3 "
                  "--out benchmarks/results/aurora --run-dir runs/aurora",
          note="PPO as Aurora (Jay et al. ICML'19) at small scale on the training link set, seed 0"),
    Agent("sysgym/DAG-EGS-v0", 800_000, source="benchmarks/results/egs/policy.pt",
          loader="ppo-graph", command="nice -n 10 python -m benchmarks.paper_egs --steps 800000 --out benchmarks/results/egs",
          note="graph policy (sysgym.agents.ppo.graph), trained on generated 20-40 node DAGs; the run was "
               "stopped at 397k of 800k steps and the 298k checkpoint chosen on 200 validation tasks"),
]


def train(agent: Agent, out: Path, steps: int | None) -> tuple[Path, dict[str, Any]]:
    """Train (or copy) the agent's checkpoint; returns its path and the training record."""
    if agent.source is not None:
        source = Path(agent.source)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: not trained yet; run: {agent.command}")
        from sysgym.agents.ppo import load_checkpoint

        payload = load_checkpoint(source)      # every agent here is a PPO checkpoint (plain data)
        return source, {"command": agent.command, "steps": int(payload["global_step"]),
                        "config": payload["config"], "note": agent.note}
    from sysgym.agents.ppo import PPOTrainer, default_config

    budget = agent.steps if steps is None else steps
    config = default_config(agent.env_id, **agent.settings, total_steps=budget, seed=0,
                            env_kwargs=dict(agent.env_kwargs), tensorboard=False, progress=True)
    run_dir = Path("runs") / "reference" / agent.name
    trainer = PPOTrainer(agent.env_id, config, run_dir)
    try:
        result = trainer.train()
    finally:
        trainer.close()
    overrides = " ".join([*(f"{k}={_cli(v)}" for k, v in agent.settings.items() if k != "num_envs"),
                          *(f"env.{k}={_cli(v)}" for k, v in agent.env_kwargs.items())])
    num_envs = f" --num-envs {agent.settings['num_envs']}" if "num_envs" in agent.settings else ""
    record = {"command": f"python -m benchmarks.train_reference --only {agent.name}",
              "equivalent": f"sysgym train --env {agent.env_id} --steps {budget}{num_envs} --seed 0 {overrides}".strip(),
              "steps": result.global_step, "seconds": round(result.seconds, 1), "config": json.loads(json.dumps(config.to_dict())),
              "note": agent.note}
    return result.checkpoint, record


def _cli(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def score(agent: Agent, weights: Path, episodes: int | None, jobs: int, abr_data: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The agent's scorecard rows on the held-out cases of its family's suite (cases played on its
    env ID), and the cases left out because they share input files with its training data."""
    from sysgym.benchmark import benchmark

    if agent.abr_data and not Path(abr_data).is_dir():
        raise FileNotFoundError(f"{abr_data}: {agent.name} is scored on the real ABR traces; pass --abr-data DIR")
    card = benchmark(str(weights), suite=family_of(agent.env_id), episodes=episodes, jobs=jobs,
                     sample=not agent.deterministic, progress=True, abr_data=abr_data if agent.abr_data else None)
    rows, left_out = {}, {}
    for e in card.envs:
        if e.run.skipped or e.run.env_id != agent.env_id:
            continue
        if e.trained_on:
            left_out[e.case.name] = e.trained_on
            continue
        rows[e.case.name] = {"suite": e.suite.identity(), "split": split_label(e.case) or "seeds >= 10000000",
                             "metric": e.suite.primary.name, "episodes": e.run.episodes,
                             "mean": e.mean, "ci": list(e.ci), "random": e.row_mean("random"),
                             "best_baseline": e.best, "best": e.row_mean(e.best), "score": e.score.score,
                             "score_ci": list(e.score.score_ci), "gap": None if not e.oracle else e.score.gap,
                             "rank": f"{e.rank} of {e.ranked}"}
    return rows, left_out


def shipped_weights(checkpoint: Path, target: Path) -> None:
    """Copy a checkpoint without its resume state (optimiser moments, RNG and env state): a
    shipped agent only acts, and the state would triple the file."""
    import torch

    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    payload.pop("training", None)
    torch.save(payload, target)


def ship(agent: Agent, weights: Path, record: dict[str, Any], folder: Path, episodes: int | None, jobs: int,
         abr_data: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{agent.name}.pt"
    shipped_weights(weights, target)
    trained_with = record.get("config", {}).get("env_kwargs") or agent.env_kwargs
    meta = {"env_id": agent.env_id, "weights": target.name, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "loader": agent.loader, "deterministic": agent.deterministic, "env_kwargs": agent.env_kwargs,
            "sysgym_version": sysgym.__version__, "training": record,
            "training_data": training_data(agent.env_id, trained_with), "scores": {}}
    path = folder / f"{agent.name}.json"
    atomic_write_text(path, json.dumps(meta, indent=1) + "\n")         # loadable before it is scored
    meta["scores"], left_out = score(agent, target, episodes, jobs, abr_data)
    if left_out:
        meta["not_scored"] = {case: f"not held out: {why}" for case, why in left_out.items()}
    if not meta["scores"]:
        raise RuntimeError(f"{agent.name}: no held-out suite case plays {agent.env_id}; nothing to score it on")
    atomic_write_text(path, json.dumps(meta, indent=1, allow_nan=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME", help="agent (env ID without sysgym/); repeatable")
    parser.add_argument("--list", action="store_true", help="list the agents and their budgets")
    parser.add_argument("--steps", type=int, default=None, help="override every budget (smoke tests)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per env when scoring (default: the suite's)")
    parser.add_argument("--jobs", type=int, default=1, help="processes when scoring")
    parser.add_argument("--out", default=str(reference.FOLDER), help="where the .pt and .json go")
    parser.add_argument("--abr-data", default="../shared/data/abr",
                        help="real ABR traces and video (traces/<set>/, video_envivio/) for agents scored on them")
    args = parser.parse_args(argv)
    if args.list:
        for a in AGENTS:
            budget = f"{a.steps:>10,} steps" if a.source is None else "copied    "
            print(f"{a.name:28} {a.status:8} {budget}  {'greedy' if a.deterministic else 'sampled'}"
                  f"  {a.source or 'PPO'}  {json.dumps({**asdict(a)['settings'], **{f'env.{k}': v for k, v in a.env_kwargs.items()}})}")
        return 0
    names = {a.name: a for a in AGENTS}
    unknown = [n for n in args.only or () if n not in names]
    if unknown:
        raise SystemExit(f"unknown agent(s) {unknown}; known: {sorted(names)}")
    chosen = [names[n] for n in args.only] if args.only else [a for a in AGENTS if a.status == "ship"]
    for agent in chosen:
        start = time.perf_counter()
        weights, record = train(agent, Path(args.out), args.steps)
        path = ship(agent, weights, record, Path(args.out), args.episodes, args.jobs, args.abr_data)
        print(f"{agent.name}: {path} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
        for case, row in json.loads(path.read_text())["scores"].items():
            print(f"  {case}: {row['metric']} {row['mean']:.4g} (best baseline {row['best_baseline']} {row['best']:.4g}), "
                  f"score {row['score']:.3f}, rank {row['rank']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
