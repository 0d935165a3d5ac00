"""Do ``sysgym train``'s defaults train? Each family's default PPO settings against its baseline.

    python -m benchmarks.defaults_train [--cases deeprm,abr,cc,dag,appointments] [--seeds 3] [--first-seed 0]
        [--cap-s 120] [--horizon 2000000] [--set key=value ...] [--label NAME]
        [--out benchmarks/results/defaults] [--report]

A run trains ``default_config(env_id)`` as ``sysgym train --env ID --steps HORIZON --seed S`` does
(the learning-rate schedule spans ``--horizon``; logging off, which changes no learning), with
``--set`` overrides on top (``--set encoder=cnn`` is the ABR default before this change), and
scores its greedy policy every ``eval_every`` env steps on the case's scoring episodes until it
reaches the target or ``--cap-s`` CPU seconds of training (``time.process_time``, scoring excluded:
on a shared machine wall time measures the load more than the trainer). Cases and scoring come
from :mod:`benchmarks.targets` (DeepRM-CompactSparse scenario 3 vs SJF's mean slowdown, ABR-v0
trained on the training traces and scored on the test traces vs BufferBased's return, CC-Discrete
vs AIMD's return) plus DAG-EGS-v0 vs the greedy EGS heuristic's return, Appointments-P1 vs
its best heuristic's return (``p1_rule``) and Appointments-P3-v1 vs ``p3_rule``'s (``appointments-p3``;
``appointments-p3-exact`` trains with the exact percentile rank that the default skips). Training seeds are first-seed ... first-seed+seeds-1 (sub-env seeds
below 1,000,000); scoring seeds 1,000,000 ... 1,000,063: disjoint.

Each finished run is appended to ``DIR/runs.jsonl`` (so Ctrl-C keeps what finished) and the table
``DIR/results.md`` is rewritten: per label and case, runs that reached the target, median training
CPU seconds and env steps to it, and the final greedy policy's most frequent action share (1.00: the
policy collapsed to one action, named in brackets: ABR runs stuck at the lowest bitrate show
``1.00 (all 0)``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.targets import CASES, Case, reached, score, target_score, train_scored
from sysgym.bench import format_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "defaults"
ALL_CASES: dict[str, Case] = {
    **CASES,
    "dag": Case("dag", "sysgym/DAG-EGS-v0", {}, {}, "greedy", "return", True, 25_000),
    "appointments": Case("appointments", "sysgym/Appointments-P1-v0", {}, {}, "p1_rule", "return", True, 25_000),
    # P3 trains without the percentile rank by default (agents/ppo/config.py, TRAIN_WITHOUT_RANK_FROM);
    # the -exact case trains with it, as sysgym train did before; both are scored with it
    "appointments-p3": Case("appointments-p3", "sysgym/Appointments-P3-v1", {}, {}, "p3_rule", "return", True,
                            25_000),
    "appointments-p3-exact": Case("appointments-p3-exact", "sysgym/Appointments-P3-v1", {"percentile": "exact"}, {},
                                  "p3_rule", "return", True, 25_000),
}


class CpuScorer:
    """Scores every ``eval_every`` env steps; the training clock is this process's CPU time, scoring
    excluded (on a shared machine wall time measures the load more than the trainer)."""

    def __init__(self, case: Case, target: float, cap_s: float):
        self.case, self.target, self.cap_s = case, target, cap_s
        self.start, self.eval_s = time.process_time(), 0.0
        self.next_eval = case.eval_every
        self.events: list[dict[str, Any]] = []

    def train_s(self) -> float:
        return time.process_time() - self.start - self.eval_s

    def after_iteration(self, steps: int, evaluate: Any) -> bool:
        """True when the run should stop (target reached or cap spent)."""
        train_s = self.train_s()
        if steps < self.next_eval and train_s < self.cap_s:
            return False
        t0 = time.process_time()
        value = evaluate()
        self.eval_s += time.process_time() - t0
        self.next_eval = (steps // self.case.eval_every + 1) * self.case.eval_every
        self.events.append({"steps": steps, "train_s": round(train_s, 2), "score": value})
        return reached(value, self.target, self.case.higher_is_better) or train_s >= self.cap_s


def run(case: Case, seed: int, horizon: int, cap_s: float, target: float, sets: dict[str, Any]) -> dict[str, Any]:
    """Train one seed of ``case`` with the default settings (plus ``sets``) until target or cap."""
    from sysgym.agents.ppo.config import default_config
    from sysgym.agents.ppo.trainer import PPOTrainer

    settings = {"env_kwargs": dict(case.train_kwargs), "seed": seed, "total_steps": horizon,
                "progress": False, "tensorboard": False, **sets}
    config = default_config(case.env_id, **settings)
    scorer = CpuScorer(case, target, cap_s)
    events = scorer.events
    trainer = PPOTrainer(case.env_id, config)
    actions: Counter = Counter()

    def act_fn(policy: Any, record: bool) -> Any:
        def act(obs: Any, mask: Any) -> Any:
            out = policy.act(obs, {} if mask is None else {"action_mask": mask})
            if record:
                actions.update(np.asarray(out).reshape(-1).tolist())
            return out
        return act

    def scored() -> bool:
        policy = trainer.policy(deterministic=True)
        actions.clear()
        return scorer.after_iteration(trainer.global_step, lambda: score(case, act_batch=act_fn(policy, True)))

    train_scored(trainer, horizon, scored)
    scores = [e["score"] for e in events]
    first = next((e for e in events if reached(e["score"], target, case.higher_is_better)), None)
    top = max(actions.values()) / sum(actions.values()) if actions else float("nan")
    return {"case": case.name, "seed": seed, "target": target, "reached": first is not None,
            "train_s": first["train_s"] if first else None, "steps": first["steps"] if first else None,
            "final_score": scores[-1] if scores else None,
            "best_score": (max(scores) if case.higher_is_better else min(scores)) if scores else None,
            "top_action_share": round(top, 4), "top_action": actions.most_common(1)[0][0] if actions else None,
            "evals": len(events), "total_train_s": round(scorer.train_s(), 2), "total_steps": trainer.global_step,
            "encoder": config.encoder, "load": round(os.getloadavg()[0], 1),
            "curve": [[e["steps"], e["train_s"], round(e["score"], 4)] for e in events]}


def _median(runs: list[dict[str, Any]], key: str, form: str) -> str:
    return form.format(statistics.median(r[key] for r in runs)) if runs else "-"


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (label, case): how many runs reached the target and how fast."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["label"], r["case"]), []).append(r)
    out = []
    for (label, case), runs in groups.items():
        hit = [r for r in runs if r["reached"]]
        finals = " ".join(f"{r['final_score']:.4g}" for r in sorted(runs, key=lambda r: r["seed"]))
        shares = " ".join(f"{r['top_action_share']:.2f}" + (f" (all {r['top_action']})" if r["top_action_share"] == 1 else "")
                          for r in sorted(runs, key=lambda r: r["seed"]))
        out.append([label, case, f"{runs[0]['target']:.4g}", f"{len(hit)}/{len(runs)}",
                    _median(hit, "train_s", "{:.1f}"), _median(hit, "steps", "{:,.0f}"),
                    finals, shares, f"{runs[0]['cap_s']:.0f}"])
    return format_table(out, ["settings", "case", "target", "reached", "median train CPU s", "median steps",
                              "final greedy score per seed", "top action share per seed", "cap CPU s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="deeprm,abr,cc,dag,appointments")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="train seeds first-seed ... first-seed+seeds-1")
    parser.add_argument("--cap-s", type=float, default=120.0)
    parser.add_argument("--horizon", type=int, default=2_000_000)
    parser.add_argument("--set", action="append", default=[], metavar="key=value",
                        help="a PPO setting on top of the defaults (as sysgym train's key=value)")
    parser.add_argument("--label", default="defaults")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--report", action="store_true", help="only rewrite DIR/results.md from DIR/runs.jsonl")
    args = parser.parse_args(argv)
    if args.report:
        return report(Path(args.out))
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(ALL_CASES)}")
    if not 1 <= args.seeds <= 100 or not 0 < args.cap_s <= 86_400 or not 1 <= args.horizon <= 10**10:
        parser.error("--seeds in [1, 100], --cap-s in (0, 86400], --horizon in [1, 1e10]")
    if not 0 <= args.first_seed <= 900:   # sub-env seeds (seed * num_envs + i) stay below the scoring seeds
        parser.error("--first-seed must lie in [0, 900]")
    from sysgym.agents.ppo.config import parse_overrides

    sets, env_sets = parse_overrides(args.set)
    if env_sets:
        parser.error("--set takes PPO settings only (the cases fix the env kwargs)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    command = "python -m benchmarks.defaults_train " + " ".join(argv if argv is not None else sys.argv[1:])
    targets = {c: target_score(ALL_CASES[c]) for c in cases}
    plan = [(seed, c) for seed in range(args.first_seed, args.first_seed + args.seeds) for c in cases]
    started = time.perf_counter()
    for k, (seed, c) in enumerate(plan):
        result = run(ALL_CASES[c], seed, args.horizon, args.cap_s, targets[c], sets)
        result.update(label=args.label, sets={k2: str(v) for k2, v in sets.items()}, cap_s=args.cap_s,
                      command=command)
        with log.open("a") as f:
            f.write(json.dumps(result) + "\n")
        eta = (time.perf_counter() - started) / (k + 1) * (len(plan) - k - 1)
        outcome = f"reached in {result['train_s']:.1f} CPU s" if result["reached"] else "not reached"
        print(f"[{k + 1}/{len(plan)}] {args.label} {c} seed {seed}: {outcome}, "
              f"final {result['final_score']:.4g} (target {targets[c]:.4g}), top action share "
              f"{result['top_action_share']:.2f}; ETA {eta:.0f} s", file=sys.stderr, flush=True)
    return report(out)


def report(out: Path) -> int:
    """Rewrite ``out/results.md`` from ``out/runs.jsonl`` and print it."""
    log = out / "runs.jsonl"
    if not log.is_file():
        raise SystemExit(f"{log}: no runs recorded")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    # the label may hold spaces: quote it as a shell would (rows keep the command as it ran)
    commands = sorted({r["command"].replace(f"--label {r['label']}", f"--label {shlex.quote(r['label'])}")
                       for r in rows})
    text = ("# Default `sysgym train` settings against each family's baseline\n\n"
            + "".join(f"    {c}\n" for c in commands) + "\n" + table(rows) + "\n")
    (out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
