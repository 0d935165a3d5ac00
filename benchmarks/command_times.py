"""How long each ``sysgym`` command takes here, run as the docs print it (issue #21).

    python -m benchmarks.command_times --out benchmarks/results/command_times

Runs every command of the CLI once, in a fresh process, with the settings the docs show (each
command's defaults where it has them), and writes ``times.md`` / ``times.json``: wall seconds,
CPU seconds of the process tree, and the 1-minute load average before each run (a shared machine
makes wall time longer than CPU time). Results are written after every command, so an interrupted
run keeps what it measured. Takes about 10 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sysgym.agents.runs import atomic_write_text

# (name, arguments after `sysgym`); {tmp} is a scratch folder, {run} the train command's output
COMMANDS = [
    ("list", ["list"]),
    ("bench --quick", ["bench", "--quick"]),
    ("train (DeepRM-CompactSparse, 200k steps)",
     ["train", "--env", "sysgym/DeepRM-CompactSparse-v0", "--steps", "200000", "--out", "{run}", "env.scenario=3",
      "progress=false"]),
    ("evaluate (that checkpoint, 20 episodes, beside the heuristics)",
     ["evaluate", "--checkpoint", "{run}", "--episodes", "20"]),
    ("explain (defaults: 50 episodes of BufferBased on ABR)",
     ["explain", "--policy", "heuristic:bb", "--env", "sysgym/ABR-v0", "--out", "{tmp}/explain"]),
    ("distill (defaults: SJF into a tree on DeepRM-CompactSparse)",
     ["distill", "--teacher", "heuristic:sjf", "--env", "sysgym/DeepRM-CompactSparse-v0", "--out", "{tmp}/distill"]),
    ("benchmark (SJF on the deeprm suite, defaults)",
     ["benchmark", "--policy", "heuristic:sjf", "--suite", "deeprm", "--out", "{tmp}/benchmark"]),
    ("dataset (SJF, 64 episodes)",
     ["dataset", "--env", "sysgym/DeepRM-CompactSparse-v0", "--policy", "heuristic:sjf", "--episodes", "64",
      "--out", "{tmp}/dataset", "--no-progress"]),
]


def run_one(args: list[str], timeout: float) -> dict[str, float | int | str]:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "sysgym", *args], capture_output=True, text=True,
                              timeout=timeout)
        code, tail = done.returncode, (done.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        code, tail = -1, f"stopped after {timeout:.0f} s"
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_1min": round(load, 1), "exit": code,
            "last_line": tail[:200]}


def table(rows: list[dict]) -> str:
    lines = ["| command | wall s | CPU s | load before | exit |", "|---|---|---|---|---|"]
    lines += [f"| `sysgym {r['command']}` | {r['wall_s']} | {r['cpu_s']} | {r['load_1min']} | {r['exit']} |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/command_times")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per command")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="sysgym-times-") as tmp:
        run = str(Path(tmp) / "train")
        for k, (name, template) in enumerate(COMMANDS, 1):
            argv_k = [a.format(tmp=tmp, run=run) for a in template]
            print(f"[{k}/{len(COMMANDS)}] sysgym {' '.join(argv_k)}", file=sys.stderr, flush=True)
            rows.append({"command": name, "argv": template, **run_one(argv_k, args.timeout)})
            print(f"    {rows[-1]['wall_s']} s wall, {rows[-1]['cpu_s']} s CPU, exit {rows[-1]['exit']}",
                  file=sys.stderr, flush=True)
            atomic_write_text(out / "times.json", json.dumps(rows, indent=1) + "\n")
            atomic_write_text(out / "times.md", f"`python -m benchmarks.command_times` on {os.cpu_count()} "
                                                f"cores\n\n{table(rows)}\n")
    print(table(rows))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
