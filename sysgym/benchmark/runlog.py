"""Finished work units of a benchmark run, saved as they finish so an interrupted run keeps them.

``--out DIR`` makes the run write ``DIR/episodes.json`` after every finished unit (episodes
``[start, stop)`` of one case for one policy; atomically: a temporary file, then a rename), and
``--resume`` reads it back and plays only the units it lacks. A unit is keyed by the policy's label,
the suite's identity (definition and input bytes), the case, the env ID it was played on and the
episode range; a unit's result depends on nothing else (see :mod:`sysgym.benchmark.runner`), so a
resumed run gives what an uninterrupted one gives. The file also names the policy and, for a policy
read from a file, that file's sha256: resuming with another policy is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

FORMAT = "sysgym-benchmark-episodes/1"
FILE_NAME = "episodes.json"

Key = tuple[str, str, str, str, int, int]   # (policy, suite identity, case, env ID, start, stop)
Result = tuple[str, dict[str, list[float]]]  # (mode, values per key), as runner.play_unit returns


def fingerprint(spec: Any) -> str:
    """sha256 of the file a ``--policy`` spec reads (checkpoint, SB3 zip, ``.py`` factory), or ''."""
    target = getattr(spec, "target", "")
    kind = getattr(spec, "kind", "")
    path = Path(target.rsplit(":", 1)[0]) if kind == "factory" else Path(target)
    if kind in ("checkpoint", "sb3") or (kind == "factory" and path.suffix == ".py"):
        if path.is_dir():
            path = path / "checkpoint.pt"
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return ""


class RunLog:
    """The finished units of one run; ``path=None`` keeps them in memory only."""

    def __init__(self, path: str | Path | None = None, policy: str = "", policy_sha256: str = "",
                 resume: bool = False):
        self.path = None if path is None else Path(path)
        self.policy, self.policy_sha256 = policy, policy_sha256
        self.units: dict[Key, Result] = {}
        if resume and self.path is not None and self.path.is_file():
            self._read()

    def __len__(self) -> int:
        return len(self.units)

    @property
    def episodes(self) -> int:
        return sum(k[5] - k[4] for k in self.units)

    def get(self, key: Key) -> Result | None:
        return self.units.get(key)

    def put(self, key: Key, result: Result) -> None:
        self.units[key] = result
        if self.path is not None:
            from sysgym.agents.runs import atomic_write_text

            atomic_write_text(self.path, json.dumps(self._data(), allow_nan=False) + "\n")

    # -------------------------------------------------------------- file
    def _data(self) -> dict[str, Any]:
        units = [{"policy": k[0], "suite": k[1], "case": k[2], "env_id": k[3], "start": k[4], "stop": k[5],
                  "mode": mode, "values": {n: [None if math.isnan(x) else x for x in v] for n, v in values.items()}}
                 for k, (mode, values) in self.units.items()]
        return {"format": FORMAT, "policy": self.policy, "policy_sha256": self.policy_sha256, "units": units}

    def _read(self) -> None:
        from sysgym.agents.serialization import MAX_FILE_BYTES, check_file_size, load_json_text
        from sysgym.envs.registry import registered_id

        where = str(self.path)
        check_file_size(self.path, "benchmark episodes file", MAX_FILE_BYTES)
        data = load_json_text(self.path.read_bytes(), where)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{where}: not a sysgym benchmark episodes file (format "
                             f"{data.get('format') if isinstance(data, dict) else None!r})")
        if data.get("policy") != self.policy or data.get("policy_sha256", "") != self.policy_sha256:
            raise ValueError(f"{where}: saved by a run of policy {data.get('policy')!r}"
                             f"{' (another file)' if data.get('policy') == self.policy else ''}, "
                             f"not {self.policy!r}; use another --out or --force")
        units = data.get("units")
        if not isinstance(units, list):
            raise ValueError(f"{where}: field 'units' must be a list")
        for i, unit in enumerate(units):
            key = _key(unit, f"{where}: units[{i}]", registered_id)
            self.units[key] = _result(unit, f"{where}: units[{i}]")


def _key(unit: Any, where: str, registered_id: Any) -> Key:
    if not isinstance(unit, dict):
        raise ValueError(f"{where}: expected an object")
    for name in ("policy", "suite", "case", "mode"):
        if not isinstance(unit.get(name), str):
            raise ValueError(f"{where}: field {name!r} must be a string")
    start, stop = unit.get("start"), unit.get("stop")
    if not (type(start) is int and type(stop) is int and 0 <= start < stop):
        raise ValueError(f"{where}: fields 'start' and 'stop' must be integers with 0 <= start < stop")
    env_id = registered_id(unit.get("env_id"), where)
    return unit["policy"], unit["suite"], unit["case"], env_id, start, stop


def _result(unit: dict[str, Any], where: str) -> Result:
    values = unit.get("values")
    n = unit["stop"] - unit["start"]
    if not isinstance(values, dict) or "return" not in values:
        raise ValueError(f"{where}: field 'values' must be an object with a 'return' list")
    out: dict[str, list[float]] = {}
    for name, column in values.items():
        ok = isinstance(column, list) and len(column) == n and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)) for v in column)
        if not ok:
            raise ValueError(f"{where}: values[{name!r}] must be {n} finite numbers or nulls")
        out[str(name)] = [math.nan if v is None else float(v) for v in column]
    return unit["mode"], out
