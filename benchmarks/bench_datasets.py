"""Offline datasets (issue #25): the documented set per family, and collection speed.

``python -m benchmarks.bench_datasets --build datasets`` (``make datasets``) writes the set below
with ``sysgym dataset`` into ``datasets/`` (gitignored; built, not committed) and its table (size,
episodes, steps, mean return, episodes/s) to ``benchmarks/results/datasets/set.md``.
``make bench`` runs :func:`main`: episodes/s of ``sysgym dataset`` per family (into a temporary
folder), batched on the native vector env. Every dataset's episodes use seeds 0..N-1 (episode k:
seed k), the same for every policy of a family, so the rows compare policies on the same inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "datasets"

# (env ID, env.key=value overrides, policies, episodes)
SET = [
    ("sysgym/DeepRM-CompactSparse-v0", ["env.scenario=3"],
     ["heuristic:sjf", "heuristic:tetris", "heuristic:random", "reference"], 64),
    # noise=False: the offline optimum plans on a deterministic env; the other two play the same one
    ("sysgym/ABR-v0", ["env.noise=False"], ["heuristic:bb", "heuristic:robust_mpc", "heuristic:offline_optimal"], 32),
    ("sysgym/CC-v0", [], ["heuristic:aimd", "heuristic:oracle"], 32),
    ("sysgym/DAG-EGS-v0", [], ["heuristic:greedy", "reference"], 64),
    ("sysgym/Appointments-P1-v0", [], ["oracle", "heuristic:p1_paper_rule", "heuristic:p1_paper_tree"], 64),
]
# make bench: one policy per family
SPEED = [("sysgym/DeepRM-CompactSparse-v0", ["env.scenario=3"], "heuristic:sjf"),
         ("sysgym/ABR-v0", [], "heuristic:bb"),
         ("sysgym/CC-v0", [], "heuristic:aimd"),
         ("sysgym/DAG-EGS-v0", [], "heuristic:greedy"),
         ("sysgym/Appointments-P1-v0", [], "oracle")]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def build_one(out: Path, env_id: str, overrides: list[str], policy: str, episodes: int,
              batch: int = 16) -> dict:
    """One dataset with ``sysgym dataset``; its summary and size."""
    from sysgym.agents.datasets.collect import dataset_id_for, load
    from sysgym.agents.policy_specs import parse
    from sysgym.cli import main as cli

    dataset_id = dataset_id_for(env_id, parse(policy).label)
    stdout = io.StringIO()
    began = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        code = cli(["dataset", "--env", env_id, "--policy", policy, "--episodes", str(episodes), "--out", str(out),
                    "--force", "--batch", str(batch), "--no-progress", *overrides])
    seconds = time.perf_counter() - began
    if code != 0:
        raise SystemExit(f"sysgym dataset --env {env_id} --policy {policy} failed ({code})")
    dataset = load(out, dataset_id)
    returns = [float(ep.rewards.sum()) for ep in dataset.iterate_episodes()]
    found = re.search(r"([0-9.e+]+) episodes/s \((batched|per-episode)\)", stdout.getvalue())
    if found is None:
        raise SystemExit(f"sysgym dataset printed no summary: {stdout.getvalue()!r}")
    return {"dataset_id": dataset_id, "episodes": dataset.total_episodes, "steps": dataset.total_steps,
            "mean_return": sum(returns) / len(returns), "size": _size(out / dataset_id),
            "episodes_per_s": float(found.group(1)), "mode": found.group(2), "seconds": seconds}


def build_set(out: Path, results: Path | None, only: list[str] | None = None) -> None:
    from sysgym.bench import format_table

    rows = []
    began = time.perf_counter()
    for env_id, overrides, policies, episodes in SET:
        if only and not any(o in env_id for o in only):
            continue
        for policy in policies:
            r = build_one(out, env_id, overrides, policy, episodes)
            rows.append([r["dataset_id"], " ".join(overrides) or "-", policy, str(r["episodes"]), str(r["steps"]),
                         f"{r['mean_return']:.4g}", _human(r["size"]), f"{r['episodes_per_s']:.3g} ({r['mode']})"])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    table = format_table(rows, ["dataset id", "env kwargs", "policy", "episodes", "steps", "mean return", "size",
                                "episodes/s (collect + write)"])
    print(table)
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(f"# Offline datasets: the documented set (seeds 0..N-1 in every dataset)\n\n"
                           f"Command: python -m benchmarks.bench_datasets --build {out} "
                           f"(make datasets); one machine, 2 shared CPU cores; the whole set took "
                           f"{time.perf_counter() - began:.0f} s.\n\n{table}\n")
        print(f"wrote {results}", file=sys.stderr)


def main(quick: bool = False) -> None:
    """``make bench``: episodes/s of ``sysgym dataset`` per family (batched, written to a temporary folder)."""
    try:
        import minari  # noqa: F401
    except ModuleNotFoundError:
        print('skipped: minari is not installed (pip install "sysgym[datasets]")')
        return
    from sysgym.bench import format_table

    episodes = 8 if quick else 64
    rows = []
    with tempfile.TemporaryDirectory(prefix="sysgym-datasets-") as tmp:
        for env_id, overrides, policy in SPEED:
            out = Path(tmp) / env_id.split("/")[1]
            r = build_one(out, env_id, overrides, policy, episodes)
            rows.append([env_id, policy, str(r["episodes"]), str(r["steps"]), f"{r['episodes_per_s']:.3g}",
                         f"{r['steps'] / r['episodes'] * r['episodes_per_s']:.4g}", r["mode"]])
            shutil.rmtree(out, ignore_errors=True)
    print(format_table(rows, ["env", "policy", "episodes", "steps", "episodes/s", "steps/s", "mode"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", metavar="DIR", help="build the documented set into DIR")
    parser.add_argument("--results", default=str(RESULTS / "set.md"), help="table file ('' for none)")
    parser.add_argument("--only", action="append", help="families whose env ID contains this (repeatable)")
    parser.add_argument("--quick", action="store_true", help="(speed run) 8 episodes per family")
    args = parser.parse_args()
    if args.build:
        build_set(Path(args.build), Path(args.results) if args.results else None, args.only)
    else:
        main(quick=args.quick)
