"""The authors' released EGS policy and sysgym's EGS-PPO on the very same tasks, task by task.

Sun et al. (IEEE TC 2024) release a trained policy with their tool (github.com/binqi-sun/egs,
``models/pretrained``, a TensorFlow SavedModel). This script gives both policies identical task
files and compares the cores each needs, per task, with a two-sided exact sign test::

    python -m benchmarks.egs_released --egs-dir PATH [--egs-python PY] [--sets shipped generated]
    python -m benchmarks.paper_egs --checkpoint benchmarks/results/egs/policy.pt --egs-dir PATH

Getting the tool (its pinned TensorFlow 2.13 needs Python <= 3.11, in a venv of its own)::

    git clone https://github.com/binqi-sun/egs          # 3d63b2f012d44b487e9a5f9adb362c834245b048
    python3.11 -m venv egs/.venv && egs/.venv/bin/pip install -r egs/requirements.txt

``--egs-dir`` (or ``SYSGYM_PEER_EGS``, as :mod:`benchmarks.peers`) names the checkout;
``--egs-python`` its interpreter (default ``<egs-dir>/.venv/bin/python``). Nothing of the tool is
part of sysgym: it runs in a subprocess (:mod:`benchmarks.egs_released_runner`), reads the task
files written here and writes its output files into a scratch folder.

Task sets (``--sets``): ``shipped`` = ``traces/dag/layered_n{20,40,60}.dot`` (50 tasks each);
``generated`` = the 200 tasks per size ``benchmarks.bench_dag`` scores its baselines on
(``generate_tasks(200, seed=10000, num_nodes=(n, n))``). Each task is written in the tool's input
format (one file per task: ``T=<deadline>;``, node k on line k as ``k [label="C=<wcet>"];``, one
``u -> v;`` per edge) and read back with sysgym's own loader; the read-back tasks must equal the
originals, and they are what EGS-PPO plays, so both sides see the same files.

The tool's answer is its output ``.dot`` (the scheduled graph, ``Worker=`` per node). It is checked
here, not trusted: same WCETs and deadline as the input, every input edge still ordered, critical
path <= D, each worker's nodes a chain; its cores are the width sysgym computes for that graph,
and the worker count the tool printed is kept beside it. Outputs in ``--out`` (default
``benchmarks/results/egs``): ``released.json`` (per task), ``released_tasks.csv`` and
``released.md`` (per set: mean cores, tasks with fewer / equal / more cores, sign test).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "SYSGYM_PEER_EGS"
RUNNER = Path(__file__).with_name("egs_released_runner.py")
MODEL = Path("models") / "pretrained"
SIZES = (20, 40, 60)
GENERATED = {"count": 200, "seed": 10_000}      # benchmarks.bench_dag's task set
SETS = ("shipped", "generated")
CHECKPOINT = Path("benchmarks/results/egs/policy.pt")
# The released policy's mean cores that issue #19 reports on the generated set (measured outside this
# repository); printed beside what this script measures, never used in a computation.
ISSUE_19 = {20: 3.47, 40: 4.13, 60: 4.58}


# ---------------------------------------------------------------- statistics
def sign_test(a: Any, b: Any) -> dict[str, Any]:
    """Two-sided exact sign test of paired values: ``fewer`` (a < b), ``ties``, ``more`` (a > b) and
    p = min(1, 2 P(X <= min(fewer, more))) for X ~ Binomial(fewer + more, 1/2); ties are dropped.
    p is 1 when every pair ties."""
    a_, b_ = np.asarray(a), np.asarray(b)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise ValueError(f"sign_test needs two 1-D sequences of one length, got shapes {a_.shape} and {b_.shape}")
    fewer, more = int((a_ < b_).sum()), int((a_ > b_).sum())
    n, k = fewer + more, min(fewer, more)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    return {"fewer": fewer, "ties": int(len(a_) - n), "more": more, "p": float(min(Fraction(1), 2 * tail))}


# ---------------------------------------------------------------- the tool's file format
def format_released(task: Any, name: str = "task") -> str:
    """``task`` in the EGS tool's input format: its parser reads the period from the line holding
    ``T=``, one WCET per line holding ``C=`` (node k = the k-th such line) and one edge per line
    holding ``->``, so everything else stays off those lines."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", name):
        raise ValueError(f"task name {name!r} must be a DOT identifier (letters, digits, _)")
    lines = [f"digraph {name} {{", f"    T={task.deadline};"]
    lines += [f'    {v} [label="C={c}"];' for v, c in enumerate(task.wcet)]
    lines += [f"    {u} -> {v};" for u, v in sorted(task.edges)]
    return "\n".join(lines + ["}"]) + "\n"


def export_tasks(tasks: list[Any], folder: Path) -> list[Any]:
    """Write one file per task into ``folder`` (``task_0000.dot`` ...) and return the tasks read back
    from it by sysgym's loader; a task that does not read back identical is a ``ValueError``."""
    from sysgym.envs.dag import load_tasks

    folder.mkdir(parents=True, exist_ok=True)
    for k, task in enumerate(tasks):
        (folder / f"task_{k:04d}.dot").write_text(format_released(task, f"task_{k:04d}"))
    back = load_tasks(folder)
    for k, (a, b) in enumerate(zip(tasks, back)):
        if (a.wcet, a.deadline, set(a.edges)) != (b.wcet, b.deadline, set(b.edges)):
            raise ValueError(f"{folder}/task_{k:04d}.dot does not read back as the task written")
    return back


def closure(task: Any) -> np.ndarray:
    """(n, n) bool reachability: ``[u, v]`` true iff a path u ~> v of one or more edges exists."""
    reach = task.adjacency()
    for k in range(task.num_nodes):
        reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
    return reach


_WORKER = re.compile(r'^\s*([0-9]+)\s*\[label="[^"]*\bWorker=([0-9]+)')


def read_released(task: Any, path: Path) -> dict[str, Any]:
    """Check the tool's output graph for ``task`` and measure it: ``cores`` (the width sysgym
    computes for it) and ``workers`` (distinct ``Worker=`` labels). A graph that
    changes the task, drops an ordering, misses D or puts two unordered nodes on one worker is a
    ``ValueError`` naming the file."""
    from sysgym.envs.dag import analyse_task, load_tasks

    if not path.is_file():
        raise FileNotFoundError(f"{path}: the released policy wrote no output for this task")
    outs = load_tasks(path)
    if len(outs) != 1:
        raise ValueError(f"{path}: expected one digraph, found {len(outs)}")
    out = outs[0]
    if out.wcet != task.wcet or out.deadline != task.deadline:
        raise ValueError(f"{path}: WCETs or deadline differ from the task given to the tool")
    reach = closure(out)
    lost = [(u, v) for u, v in task.edges if not reach[u, v]]
    if lost:
        raise ValueError(f"{path}: input edge {lost[0][0]} -> {lost[0][1]} is no longer ordered")
    if out.critical_path() > out.deadline:
        raise ValueError(f"{path}: critical path {out.critical_path()} exceeds the deadline {out.deadline}")
    workers: dict[int, list[int]] = {}
    for line in path.read_text().splitlines():
        found = _WORKER.match(line)
        if found:
            workers.setdefault(int(found.group(2)), []).append(int(found.group(1)))
    if sorted(v for nodes in workers.values() for v in nodes) != list(range(out.num_nodes)):
        raise ValueError(f"{path}: not every node has exactly one Worker= label")
    for w, nodes in workers.items():
        for i, u in enumerate(nodes):
            for v in nodes[i + 1:]:
                if not (reach[u, v] or reach[v, u]):
                    raise ValueError(f"{path}: nodes {u} and {v} share Worker={w} but are not ordered")
    return {"cores": int(analyse_task(out)["width"]), "workers": len(workers)}


# ---------------------------------------------------------------- running both sides
def check_tool(egs_dir: Any, python: Any = None) -> tuple[Path, Path]:
    """The checkout and its interpreter, or a one-line ``FileNotFoundError`` saying what is missing."""
    if egs_dir is None or str(egs_dir) == "":
        raise FileNotFoundError(f"no EGS checkout given: pass --egs-dir PATH (or set {ENV_VAR}) to a clone of "
                                f"github.com/binqi-sun/egs")
    egs_dir = Path(egs_dir).expanduser()
    if not egs_dir.is_dir():
        raise FileNotFoundError(f"--egs-dir {egs_dir}: not a folder")
    for part in (Path("egs.py"), Path("envs") / "dag_sched_env.py", MODEL / "saved_model.pb"):
        if not (egs_dir / part).is_file():
            raise FileNotFoundError(f"--egs-dir {egs_dir}: no {part} (not a checkout of github.com/binqi-sun/egs?)")
    python = Path(python).expanduser() if python else egs_dir / ".venv" / "bin" / "python"
    if not python.is_file():
        raise FileNotFoundError(f"--egs-python {python}: no such interpreter (make the tool's venv or pass "
                                f"--egs-python)")
    return egs_dir, python


def run_released(egs_dir: Path, python: Path, task_dir: Path, out_dir: Path, timeout: float) -> dict[str, int]:
    """Run the tool's policy on every task file of ``task_dir`` in its own interpreter; returns the
    worker count it printed per file name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [str(python), str(RUNNER), str(egs_dir), str(egs_dir / MODEL), str(task_dir), str(out_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the released policy did not finish {task_dir} within {timeout:.0f} s (--timeout)") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"the released policy failed on {task_dir} (exit {done.returncode}): {tail}")
    printed = {}
    for line in (out_dir / "workers.txt").read_text().splitlines():
        name, count = line.split()
        printed[name] = int(count)
    return printed


def task_sets(names: list[str], limit: int | None, sizes: tuple[int, ...] = SIZES) -> dict[str, list[Any]]:
    """The task sets by label (``layered_n20.dot``, ``generated n = 20`` ...)."""
    from sysgym.envs.dag import generate_tasks, load_tasks
    from sysgym.traces import trace_path

    sets: dict[str, list[Any]] = {}
    for which in names:
        for n in sizes:
            if which == "shipped":
                sets[f"layered_n{n}.dot"] = load_tasks(trace_path("dag", f"layered_n{n}.dot"))[:limit]
            else:
                count = min(GENERATED["count"], limit or GENERATED["count"])
                sets[f"generated n = {n}"] = generate_tasks(count, seed=GENERATED["seed"], num_nodes=(n, n))
    return sets


def compare(egs_dir: Path, python: Path, checkpoint: Path, sets: dict[str, list[Any]], timeout: float,
            work: Path) -> dict[str, Any]:
    """Per task set: the tasks' cores under EGS-PPO (argmax), the released policy, greedy EGS, and
    the bound max(1, ceil(vol / D))."""
    from benchmarks.paper_egs import egs_cores, ppo_factory
    from sysgym.agents.heuristics.dag import GreedyWidth
    from sysgym.agents.ppo import load_checkpoint

    payload = load_checkpoint(checkpoint)
    results: dict[str, Any] = {}
    for label, tasks in sets.items():
        folder = work / re.sub(r"[^A-Za-z0-9]+", "_", label)
        played = export_tasks(tasks, folder / "tasks")
        start = time.perf_counter()
        printed = run_released(egs_dir, python, folder / "tasks", folder / "out", timeout)
        seconds = time.perf_counter() - start
        released = [read_released(t, folder / "out" / f"task_{i:04d}.dot") for i, t in enumerate(played)]
        results[label] = {
            "tasks": [t.name or f"task_{i:04d}" for i, t in enumerate(tasks)],
            "nodes": [t.num_nodes for t in played],
            "EGS-PPO": egs_cores(ppo_factory(payload), len(played), workload=played).tolist(),
            "released": [r["cores"] for r in released],
            "released printed": [printed.get(f"task_{i:04d}.dot", -1) for i in range(len(played))],
            "released workers": [r["workers"] for r in released],
            "greedy EGS": egs_cores(lambda vec: GreedyWidth(vec), len(played), workload=played).tolist(),
            "lower bound": [max(1, -(-t.volume // t.deadline)) for t in played],
            "released seconds": round(seconds, 1),
        }
        r = results[label]
        print(f"{label}: EGS-PPO {np.mean(r['EGS-PPO']):.2f}, released {np.mean(r['released']):.2f}, "
              f"greedy {np.mean(r['greedy EGS']):.2f} mean cores ({len(played)} tasks; released {seconds:.0f} s)",
              flush=True)
    return results


# ---------------------------------------------------------------- reports
def report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    from sysgym.bench import format_table

    rows = []
    for label, r in results.items():
        ours_vs = sign_test(r["EGS-PPO"], r["released"])
        greedy_vs = sign_test(r["greedy EGS"], r["released"])
        rows.append([label, str(len(r["released"])), f"{np.mean(r['EGS-PPO']):.2f}", f"{np.mean(r['released']):.2f}",
                     f"{np.mean(r['greedy EGS']):.2f}", f"{np.mean(r['lower bound']):.2f}",
                     f"{ours_vs['fewer']} / {ours_vs['ties']} / {ours_vs['more']}", f"{ours_vs['p']:.3g}",
                     f"{greedy_vs['fewer']} / {greedy_vs['ties']} / {greedy_vs['more']}", f"{greedy_vs['p']:.3g}"])
    mismatched = sum(int(a != b) for r in results.values() for a, b in zip(r["released"], r["released printed"]))
    commands = sorted(set(meta["commands"].values()))
    lines = ["# The authors' released EGS policy and EGS-PPO on the same tasks", "",
             "Command" + ("s" if len(commands) > 1 else "") + ": " + ", ".join(f"`{c}`" for c in commands)
             + " (the sets each command measured: `released.json`, `meta.commands`).", "",
             f"Released policy: github.com/binqi-sun/egs at {meta['egs_commit']}, `models/pretrained`, run by its own "
             f"`egs.py` functions (argmax over the masked policy) under Python {meta['egs_python_version']} "
             f"in its venv. EGS-PPO: `{meta['checkpoint']}`, argmax. Both read the same task files (written in the "
             "tool's format, read back identical by sysgym). Cores: the width sysgym computes for each final graph "
             "(every released output checked: same task, input order kept, L <= D, workers are chains). Lower is "
             "better; no schedule needs fewer than max(1, ceil(vol / D)) cores.", "",
             format_table(rows, ["task set", "tasks", "EGS-PPO", "released", "greedy EGS", "lower bound",
                                 "EGS-PPO vs released: fewer / same / more", "sign test p",
                                 "greedy vs released: fewer / same / more", "sign test p"]), "",
             "Sign test: two-sided, exact (binomial, p = 1/2), ties dropped. "
             f"Tasks where the worker count the tool printed differs from the width measured here: {mismatched}.",
             "", f"Machine: {meta['machine']}. Per-task values: `released_tasks.csv`, `released.json`."]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], meta: dict[str, Any], out: Path) -> None:
    from sysgym.bench import rounded

    out.mkdir(parents=True, exist_ok=True)
    (out / "released.json").write_text(json.dumps(rounded({"meta": meta, "results": results}), indent=1))
    (out / "released.md").write_text(report(results, meta))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["nodes", "lower bound", "greedy EGS", "EGS-PPO", "released", "released printed"]
    writer.writerow(["task set", "task"] + columns)
    for label, r in results.items():
        for i, name in enumerate(r["tasks"]):
            writer.writerow([label, name] + [r[c][i] for c in columns])
    (out / "released_tasks.csv").write_text(buffer.getvalue())


def _git_commit(folder: Path) -> str:
    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown commit"
    return done.stdout.strip() if done.returncode == 0 else "unknown commit"


def _python_version(python: Path) -> str:
    try:
        done = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def add_arguments(parser: argparse.ArgumentParser, env_default: bool = True) -> None:
    """The options this comparison adds to a parser (here and in :mod:`benchmarks.paper_egs`, where
    ``--egs-dir`` must be given explicitly: ``env_default=False``)."""
    default = (os.environ.get(ENV_VAR) or None) if env_default else None
    parser.add_argument("--egs-dir", type=Path, default=default,
                        help="a checkout of github.com/binqi-sun/egs" + (f" (default: ${ENV_VAR})" if env_default else ""))
    parser.add_argument("--egs-python", type=Path, help="its interpreter (default: EGS_DIR/.venv/bin/python)")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="task sets to compare on")
    parser.add_argument("--sizes", nargs="+", type=int, choices=SIZES, default=list(SIZES), help="task sizes n")
    parser.add_argument("--egs-timeout", type=float, default=3600.0, help="seconds the tool may take per task set")


def combine(folders: list[Path], out: Path) -> None:
    """Merge the ``released.json`` of runs on different sets (later folders win a set both measured);
    the runs must share the tool's commit and the checkpoint."""
    results: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for folder in folders:
        path = Path(folder) / "released.json"
        if not path.is_file():
            raise FileNotFoundError(f"--combine: no {path}")
        part = json.loads(path.read_text())
        commands = part["meta"].get("commands") or {label: part["meta"]["command"] for label in part["results"]}
        if meta and any(part["meta"][k] != meta[k] for k in ("egs_commit", "checkpoint")):
            raise ValueError(f"--combine: {path} measured another tool commit or checkpoint than {folders[0]}")
        meta = {**part["meta"], "commands": {**meta.get("commands", {}), **commands}}
        meta.pop("command", None)
        results.update(part["results"])
    write(results, meta, out)


def save(results: dict[str, Any], meta: dict[str, Any], out: Path) -> None:
    """Write ``results`` into ``out``, keeping the sets of an earlier run there that ``results`` lacks
    if it measured the same tool commit and checkpoint."""
    old = out / "released.json"
    if old.is_file():
        kept = json.loads(old.read_text())
        if all(kept["meta"].get(k) == meta[k] for k in ("egs_commit", "checkpoint")):
            commands = kept["meta"].get("commands", {})
            meta = {**meta, "commands": {**{k: v for k, v in commands.items() if k not in results}, **meta["commands"]}}
            results = {**{k: v for k, v in kept["results"].items() if k not in results}, **results}
    write(results, meta, out)


def command_line(prefix: str, args: argparse.Namespace, limit: int | None, checkpoint: Path) -> str:
    """The command that reproduces a run, with the user's checkout written as EGS_DIR."""
    parts = [prefix, "--egs-dir EGS_DIR", "--sets " + " ".join(args.sets)]
    if list(args.sizes) != list(SIZES):
        parts.append("--sizes " + " ".join(map(str, args.sizes)))
    if checkpoint != CHECKPOINT:
        parts.append(f"--checkpoint {checkpoint}")
    if limit is not None:
        parts.append(f"--limit {limit}")
    return " ".join(parts)


def run(args: argparse.Namespace, checkpoint: Path, out: Path, limit: int | None, command: str) -> dict[str, Any]:
    """The comparison for parsed ``args`` (after :func:`check_tool` passed)."""
    egs_dir, python = check_tool(args.egs_dir, args.egs_python)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {checkpoint}: no such file")
    meta = {"commands": {}, "egs_commit": _git_commit(egs_dir), "egs_python_version": _python_version(python),
            "checkpoint": str(checkpoint),
            "machine": f"{os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, tool on CPU",
            "generated": GENERATED}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="egs-released-") as work:
        for label, tasks in task_sets(args.sets, limit, tuple(args.sizes)).items():
            results.update(compare(egs_dir, python, Path(checkpoint), {label: tasks}, args.egs_timeout, Path(work)))
            meta["commands"][label] = command
            save(results, meta, out)        # after every set: a run cut short keeps the sets it finished
    print((out / "released.md").read_text())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.egs_released", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="the EGS-PPO checkpoint")
    parser.add_argument("--limit", type=int, help="only the first LIMIT tasks of each set (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/egs"))
    parser.add_argument("--report", action="store_true", help="rebuild released.md and the CSV from released.json")
    parser.add_argument("--combine", nargs="+", type=Path, metavar="DIR",
                        help="merge the released.json of these runs into --out (no tool needed)")
    args = parser.parse_args(argv)
    if args.combine:
        try:
            combine(args.combine, args.out)
        except (ValueError, KeyError, FileNotFoundError) as e:
            parser.error(str(e))
        print((args.out / "released.md").read_text())
        return 0
    if args.report:
        saved = args.out / "released.json"
        if not saved.is_file():
            parser.error(f"--report: no {saved}")
        kept = json.loads(saved.read_text())
        write(kept["results"], kept["meta"], args.out)
        print((args.out / "released.md").read_text())
        return 0
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit {args.limit}: must be at least 1")
    try:
        check_tool(args.egs_dir, args.egs_python)
        if not args.checkpoint.is_file():
            raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such file")
    except FileNotFoundError as e:
        parser.error(str(e))
    command = command_line("python -m benchmarks.egs_released", args, args.limit, args.checkpoint)
    try:
        run(args, args.checkpoint, args.out, args.limit, command)
    except (ValueError, RuntimeError, FileNotFoundError) as e:     # a bad output or a failing tool: one line
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
