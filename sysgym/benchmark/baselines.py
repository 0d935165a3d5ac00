"""The reference rows of every case (random policy, classical baselines, oracle or bound): played
once by ``benchmarks/make_reference.py`` and shipped as ``reference.json`` next to this module.

The file stores, per suite and case, the case's hash (:func:`sysgym.benchmark.suites.case_hash`)
and, per reference row, its role and the primary metric of every episode (plus the means of the
secondary metrics). A benchmark run takes a case's rows from the file only when the hash matches
the case it plays, and the first ``n`` episodes of each row when it plays ``n``; otherwise (a case
made from the user's own data, or a changed definition) it plays the rows itself. The numbers are
exact JSON floats (Python writes the shortest repr that reads back to the same float).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sysgym

from . import runner
from .policies import parse
from .runlog import RunLog
from .suites import Case, Suite, case_hash

FORMAT = "sysgym-benchmark-reference/1"
FILE = Path(__file__).resolve().with_name("reference.json")
INPUT_ROWS = ("list_scheduling", "width_lower_bound")


@dataclass
class Row:
    """One reference row of a case: per-episode primary values and secondary means."""

    name: str
    role: str
    policy: str
    values: np.ndarray
    secondary: dict[str, float]
    note: str = ""


def input_values(case: Case, name: str, n: int) -> np.ndarray:
    """``input:NAME`` rows, computed from each episode's input (the DAG task) without playing it."""
    if name not in INPUT_ROWS:
        raise ValueError(f"unknown input row {name!r}; known: {INPUT_ROWS}")
    from sysgym.agents.heuristics.dag import list_scheduling_cores
    from sysgym.envs.dag import analyse_task, load_tasks

    tasks = load_tasks(case.kwargs()["workload"])
    picked = [tasks[k] for k in case.option_values[:n]]
    if name == "list_scheduling":
        return np.array([list_scheduling_cores(t) for t in picked], dtype=np.float64)
    return np.array([analyse_task(t)["lower_bound"] for t in picked], dtype=np.float64)


def compute(pairs: list[tuple[Suite, Case]], episodes: int | None = None, jobs: int = 1,
            progress: bool = False, log: RunLog | None = None) -> dict[tuple[str, str], dict[str, Row]]:
    """Play (or compute) every reference row of the given cases (``log``: see :func:`runner.run`)."""
    items, order = [], []
    for suite, case in pairs:
        for ref in case.references:
            if not ref.policy.startswith("input:"):
                items.append((parse(ref.policy), suite, case))
                order.append(ref)
    runs = iter(runner.run(items, episodes, jobs, progress, desc="baselines", log=log))
    out: dict[tuple[str, str], dict[str, Row]] = {}
    for suite, case in pairs:
        rows = {}
        n = case.episodes if episodes is None else min(episodes, case.episodes)
        for ref in case.references:
            if ref.policy.startswith("input:"):
                values, secondary = input_values(case, ref.policy.split(":", 1)[1], n), {}
            else:
                run = next(runs)
                if run.skipped:
                    raise ValueError(f"{suite.name}/{case.name}: reference row {ref.name} did not play: {run.skipped}")
                values = run.values[suite.primary.name]
                secondary = {k: float(np.mean(run.values[k])) for k in suite.secondary if k in run.values}
            rows[ref.name] = Row(ref.name, ref.role, ref.policy, np.asarray(values, dtype=np.float64), secondary, ref.note)
        out[(suite.name, case.name)] = rows
    return out


def to_data(suites: list[Suite], rows: dict[tuple[str, str], dict[str, Row]], command: str) -> dict[str, Any]:
    """The reference file's JSON data."""
    data: dict[str, Any] = {"format": FORMAT, "sysgym_version": sysgym.__version__, "generated_by": command,
                            "suites": {}}
    for suite in suites:
        cases = {}
        for case in suite.cases:
            if (suite.name, case.name) not in rows:
                continue
            case_rows = rows[(suite.name, case.name)]
            n = len(next(iter(case_rows.values())).values)
            cases[case.name] = {
                "hash": case_hash(case, suite.primary), "env_id": case.env_id, "episodes": n,
                "rows": {r.name: {"role": r.role, "policy": r.policy, "note": r.note,
                                  "mean": _number(float(np.mean(r.values))),
                                  "values": [_number(v) for v in r.values.tolist()],
                                  "secondary": {k: _number(v) for k, v in r.secondary.items()}}
                         for r in case_rows.values()}}
        data["suites"][suite.name] = {"identity": suite.identity(), "generated_by": command,
                                      "primary": suite.primary.name, "direction": suite.primary.direction,
                                      "cases": cases}
    return data


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x


def write(data: dict[str, Any], path: str | Path = FILE) -> Path:
    """Indented JSON with each list of numbers on one line (a row per line in diffs)."""
    text = json.dumps(data, indent=1, allow_nan=False)
    text = re.sub(r"\[\n\s+([^\[\]{}]*?)\n\s*\]", lambda m: "[" + re.sub(r",\n\s+", ", ", m.group(1)) + "]", text)
    from sysgym.agents.runs import atomic_write_text

    return atomic_write_text(path, text + "\n")


def load(path: str | Path = FILE) -> dict[str, Any]:
    """The shipped reference data (an empty one if the file is missing)."""
    from sysgym.agents.serialization import check_file_size, load_json_text
    from sysgym.envs.registry import registered_id

    path = Path(path)
    if not path.is_file():
        return {"format": FORMAT, "suites": {}}
    check_file_size(path, "benchmark reference file")
    data = load_json_text(path.read_bytes(), str(path))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ValueError(f"{path}: not a sysgym benchmark reference file (format {found!r})")
    if not isinstance(data.get("suites"), dict):
        raise ValueError(f"{path}: field 'suites' must be an object")
    for name, suite in data["suites"].items():
        cases = suite.get("cases") if isinstance(suite, dict) else None
        if not isinstance(cases, dict):
            raise ValueError(f"{path}: suites.{name}.cases must be an object")
        for case, entry in cases.items():
            where = f"{path}: suites.{name}.cases.{case}"
            if not (isinstance(entry, dict) and isinstance(entry.get("hash"), str)
                    and type(entry.get("episodes")) is int and isinstance(entry.get("rows"), dict)):
                raise ValueError(f"{where}: needs 'hash' (string), 'episodes' (integer) and 'rows' (object)")
            registered_id(entry.get("env_id"), where)
    return data


def shipped_rows(data: dict[str, Any], suite: Suite, case: Case, n: int) -> dict[str, Row] | None:
    """The first ``n`` episodes of ``case``'s rows from ``data``, or None when the file has no
    rows for exactly this case (hash) or fewer than ``n`` episodes."""
    entry = data.get("suites", {}).get(suite.name, {}).get("cases", {}).get(case.name)
    if entry is None or entry["hash"] != case_hash(case, suite.primary) or entry["episodes"] < n:
        return None
    try:
        return {name: Row(name, str(r["role"]), str(r["policy"]),
                          np.array([np.nan if v is None else v for v in r["values"][:n]], dtype=np.float64),
                          {k: np.nan if v is None else float(v) for k, v in r["secondary"].items()}, r.get("note", ""))
                for name, r in entry["rows"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"reference rows of {suite.name}/{case.name}: damaged ({type(error).__name__}: {error})") from None


def rows_for(pairs: list[tuple[Suite, Case, int]], data: dict[str, Any] | None = None, jobs: int = 1,
             progress: bool = False, log: RunLog | None = None) -> tuple[dict[tuple[str, str], dict[str, Row]], list[str]]:
    """Reference rows for each (suite, case, episodes): shipped when the file has them, played here
    otherwise. Returns the rows and the keys of the cases whose rows were played in this run."""
    data = load() if data is None else data
    rows: dict[tuple[str, str], dict[str, Row]] = {}
    missing: dict[int, list[tuple[Suite, Case]]] = {}
    for suite, case, n in pairs:
        found = shipped_rows(data, suite, case, n)
        if found is None:
            missing.setdefault(n, []).append((suite, case))
        else:
            rows[(suite.name, case.name)] = found
    played = []
    for n, group in missing.items():
        rows.update(compute(group, episodes=n, jobs=jobs, progress=progress, log=log))
        played += [f"{s.name}/{c.name}" for s, c in group]
    return rows, played
