"""What ``sysgym train`` costs on top of the Python API (issue #24 item 4), measured in one run.

    python -m benchmarks.cli_overhead [--env sysgym/DeepRM-CompactSparse-v0] [--env-kwargs '{"scenario": 3}']
        [--steps 200000] [--reps 3] [--out benchmarks/results/throughput/cli_overhead.txt]

Each repetition runs, each in a fresh subprocess and alternating so that load on a shared machine
affects all alike, the same PPO run (the family's default settings, same seed, same steps):

* ``api``: ``sysgym.agents.ppo.trainer.train(env, steps, progress=False, tensorboard=False)``, no
  output folder (nothing logged, nothing saved);
* ``api+logs``: ``PPOTrainer`` with an output folder and the default logging (progress bar,
  TensorBoard, CSV, periodic checkpoint), as the CLI builds it, without the CLI around it;
* ``cli``: ``python -m sysgym.cli train --env ... --steps ...`` with its defaults (progress bar,
  TensorBoard, CSV logs, checkpoints, the learning curve at the end).

What is timed is CPU seconds (``time.process_time``, every thread of the process), which a loaded
machine disturbs far less than wall time: ``train`` covers ``PPOTrainer.train`` (the training loop
with its logging and the final checkpoint), ``process`` the whole interpreter run (imports, parser,
the learning curve drawn at the end). The progress bar writes to a pipe here (tqdm redraws a
terminal every 0.2 s, a pipe every 30 s). The overhead columns are the median over repetitions of
the per-repetition ratio to ``api``, minus one. On a shared machine only these ratios, measured
side by side, are meant to be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sysgym.bench import format_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "throughput" / "cli_overhead.txt"

CHILD = """
import json, sys, time
start_cpu = time.process_time()
from sysgym.agents.ppo import trainer as _trainer
variant, env_id, steps, kwargs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
spent = []
_train = _trainer.PPOTrainer.train
def timed_train(self, *a, **k):
    t = time.process_time()
    try:
        return _train(self, *a, **k)
    finally:
        spent.append(time.process_time() - t)
_trainer.PPOTrainer.train = timed_train
if variant == "api":
    _trainer.train(env_id, steps=steps, env_kwargs=kwargs, progress=False, tensorboard=False)
elif variant == "api+logs":
    from sysgym.agents.ppo.config import default_config
    t = _trainer.PPOTrainer(env_id, default_config(env_id, total_steps=steps, env_kwargs=kwargs), out)
    try:
        t.train()
    finally:
        t.close()
else:
    import contextlib, io
    from sysgym.cli import main
    argv = ["train", "--env", env_id, "--steps", str(steps), "--out", out]
    argv += [f"env.{k}={json.dumps(v)}" for k, v in kwargs.items()]
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code:
        raise SystemExit(code)
print("CPU_SECONDS", spent[0], time.process_time() - start_cpu)
"""
VARIANTS = ("api", "api+logs", "cli")


def run_once(variant: str, env_id: str, steps: int, kwargs: dict, folder: Path) -> tuple[float, float]:
    """(train seconds, wall seconds) of one run of ``variant`` in a fresh interpreter."""
    out = folder / f"{variant.replace('+', '_')}_{time.monotonic_ns()}"
    cmd = [sys.executable, "-c", CHILD, variant, env_id, str(steps), json.dumps(kwargs), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    found = re.search(r"CPU_SECONDS ([0-9.e+-]+) ([0-9.e+-]+)", proc.stdout)
    if found is None:
        raise SystemExit(f"{variant}: no CPU time in its output:\n{proc.stdout[-2000:]}")
    return float(found.group(1)), float(found.group(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="sysgym/DeepRM-CompactSparse-v0")
    parser.add_argument("--env-kwargs", default='{"scenario": 3}', help="JSON object passed to the env")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results file ('-' for stdout only)")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= 10**8 or not 1 <= args.reps <= 50:
        parser.error("--steps must lie in [1, 1e8] and --reps in [1, 50]")
    try:
        kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as error:
        parser.error(f"--env-kwargs is not JSON: {error}")
    if not isinstance(kwargs, dict):
        parser.error("--env-kwargs must be a JSON object")
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    started = time.perf_counter()
    total = args.reps * len(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="cli_overhead_") as tmp:
        for rep in range(args.reps):
            for k, variant in enumerate(VARIANTS):
                times[variant].append(run_once(variant, args.env, args.steps, kwargs, Path(tmp)))
                done = rep * len(VARIANTS) + k + 1
                eta = (time.perf_counter() - started) / done * (total - done)
                train_s, wall_s = times[variant][-1]
                print(f"[{done}/{total}] {variant}: train {train_s:.1f} s, wall {wall_s:.1f} s "
                      f"(ETA {eta:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    for variant in VARIANTS:
        train_ratio = statistics.median(t[0] / a[0] for t, a in zip(times[variant], times["api"]))
        wall_ratio = statistics.median(t[1] / a[1] for t, a in zip(times[variant], times["api"]))
        rows.append([variant, " ".join(f"{t[0]:.1f}" for t in times[variant]),
                     f"{100 * (train_ratio - 1):+.0f}%",
                     " ".join(f"{t[1]:.1f}" for t in times[variant]), f"{100 * (wall_ratio - 1):+.0f}%"])
    command = "python -m benchmarks.cli_overhead " + " ".join(
        ["--env", args.env, "--env-kwargs", f"'{args.env_kwargs}'", "--steps", str(args.steps),
         "--reps", str(args.reps)])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"# {command}\n# {args.env} {kwargs}, {args.steps:,} steps, default settings, seed 0; "
            f"{args.reps} alternating repetitions, load {load:.1f} at the end\n"
            + format_table(rows, ["run", "train CPU s", "train overhead", "process CPU s", "process overhead"]) + "\n")
    print(text, end="")
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
