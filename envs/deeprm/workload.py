"""Workloads for the DeepRM family: the bimodal DeepRM generator's parameters and SWF trace replay.

Standard Workload Format (Feitelson et al., Parallel Workloads Archive): one job per line, 18
whitespace-separated numeric fields, ``;`` starts a header/comment line, ``-1`` marks a missing
value. The fields used here are 2 (submit time, s), 4 (run time, s), 5 (allocated processors),
8 (requested processors) and 9 (requested time, s).

Cleaning rules applied by :meth:`SWFWorkload.load` (every one is counted in ``report``):

* requested processors missing (<= 0)  -> taken from allocated processors (``size_from_allocated``)
* requested time missing (<= 0)        -> taken from run time (``requested_time_from_runtime``)
* run time <= 0 (missing, cancelled)   -> job dropped (``dropped_nonpositive_runtime``)
* processors <= 0 after the rule above -> job dropped (``dropped_nonpositive_size``)
* processors > cluster size            -> clipped to the cluster (``size_clipped``)
* length in steps > ``max_job_length`` -> clipped (``length_clipped``), only when a cap is given
* lines out of submit order            -> stably sorted by submit time (``reordered``)

Time is discretised with ``time_unit`` seconds per step: submit step = floor((submit - first) /
time_unit), length = max(1, ceil(run time / time_unit)). A malformed line (wrong field count,
non-numeric field, negative submit time) raises ``ValueError`` naming the file, line and field.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SWF_FIELDS = (
    "job_number", "submit_time", "wait_time", "run_time", "allocated_processors",
    "average_cpu_time", "used_memory", "requested_processors", "requested_time",
    "requested_memory", "status", "user_id", "group_id", "executable", "queue",
    "partition", "preceding_job", "think_time",
)


def bimodal_ranges(max_job_length: int, max_job_size: int) -> dict[str, tuple[int, int]]:
    """DeepRM's job distribution (Mao et al., HotNets'16), inclusive integer ranges.

    Small jobs last U[1, d/5], large U[2d/3, d]; the dominant resource asks U[s/2, s], the
    others U[1, s/5] (integer division, each bound at least 1).
    """
    d, s = max_job_length, max_job_size
    return {
        "small_length": (1, max(1, d // 5)),
        "large_length": (max(1, (2 * d) // 3), d),
        "dominant_size": (max(1, s // 2), s),
        "other_size": (1, max(1, s // 5)),
    }


@dataclass(frozen=True)
class TraceJobs:
    """Cleaned, discretised jobs ready for the kernel (arrays sorted by submit step)."""

    submit: np.ndarray          # int64, steps since the first job
    length: np.ndarray          # int32, steps (actual run time)
    size: np.ndarray            # int32 (n, 1): processors
    requested_length: np.ndarray  # int32, steps (user estimate; informational)
    report: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.submit)


def parse_swf(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse an SWF file into an (n, 18) float array and the 1-based line number of each row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SWF trace not found: {path}")
    rows: list[list[float]] = []
    lines: list[int] = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith(";"):
                continue
            parts = text.split()
            if len(parts) != len(SWF_FIELDS):
                raise ValueError(f"{path}:{lineno}: expected {len(SWF_FIELDS)} fields, found {len(parts)}")
            values = []
            for index, part in enumerate(parts):
                try:
                    value = float(part)
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: field {index + 1} ({SWF_FIELDS[index]}) "
                                     f"is not a number: {part!r}") from None
                if not math.isfinite(value):
                    raise ValueError(f"{path}:{lineno}: field {index + 1} ({SWF_FIELDS[index]}) "
                                     f"is not finite: {part!r}")
                values.append(value)
            if values[1] < 0:
                raise ValueError(f"{path}:{lineno}: field 2 (submit_time) is negative: {parts[1]}")
            rows.append(values)
            lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no job lines (only comments or blank lines)")
    return np.asarray(rows, dtype=np.float64), np.asarray(lines, dtype=np.int64)


@dataclass(frozen=True)
class SWFWorkload:
    """An SWF trace to replay.

    Args:
        path: the ``.swf`` file.
        time_unit: seconds per simulation step.
        offset: index of the first job (after cleaning) to use.
        length: number of jobs to use from ``offset`` (``None``: all the rest).
        max_job_length: clip job lengths (in steps) to this; ``None`` keeps them (the kernel's
            timeline then grows to the longest job).
    """

    path: str | os.PathLike
    time_unit: float = 60.0
    offset: int = 0
    length: int | None = None
    max_job_length: int | None = None

    def __post_init__(self) -> None:
        if not self.time_unit > 0:
            raise ValueError(f"SWFWorkload.time_unit must be > 0, got {self.time_unit}")
        if self.offset < 0:
            raise ValueError(f"SWFWorkload.offset must be >= 0, got {self.offset}")
        if self.length is not None and self.length < 1:
            raise ValueError(f"SWFWorkload.length must be >= 1 or None, got {self.length}")
        if self.max_job_length is not None and self.max_job_length < 1:
            raise ValueError(f"SWFWorkload.max_job_length must be >= 1 or None, got {self.max_job_length}")

    def load(self, num_processors: int) -> TraceJobs:
        """Parse, clean and discretise the trace for a cluster of ``num_processors``."""
        rows, _ = parse_swf(self.path)
        report: Counter[str] = Counter(lines_read=len(rows))
        submit, runtime = rows[:, 1], rows[:, 3]
        size = rows[:, 7].copy()
        missing_size = size <= 0
        report["size_from_allocated"] = int(np.sum(missing_size & (rows[:, 4] > 0)))
        size[missing_size] = rows[missing_size, 4]
        requested = rows[:, 8].copy()
        missing_req = requested <= 0
        report["requested_time_from_runtime"] = int(np.sum(missing_req))
        requested[missing_req] = runtime[missing_req]

        bad_runtime = runtime <= 0
        bad_size = (size <= 0) & ~bad_runtime
        report["dropped_nonpositive_runtime"] = int(bad_runtime.sum())
        report["dropped_nonpositive_size"] = int(bad_size.sum())
        keep = ~(bad_runtime | bad_size)
        submit, runtime, size, requested = submit[keep], runtime[keep], size[keep], requested[keep]

        order = np.argsort(submit, kind="stable")
        report["reordered"] = int(np.sum(order != np.arange(len(order))))
        submit, runtime, size, requested = submit[order], runtime[order], size[order], requested[order]

        stop = None if self.length is None else self.offset + self.length
        submit, runtime, size, requested = (a[self.offset:stop] for a in (submit, runtime, size, requested))
        if len(submit) == 0:
            raise ValueError(f"{self.path}: no jobs left after cleaning and offset={self.offset}, "
                             f"length={self.length} ({dict(report)})")
        report["jobs_used"] = len(submit)

        size = np.ceil(size).astype(np.int64)
        report["size_clipped"] = int(np.sum(size > num_processors))
        size = np.minimum(size, num_processors)
        length = np.maximum(1, np.ceil(runtime / self.time_unit)).astype(np.int64)
        req_length = np.maximum(1, np.ceil(requested / self.time_unit)).astype(np.int64)
        if self.max_job_length is not None:
            report["length_clipped"] = int(np.sum(length > self.max_job_length))
            length = np.minimum(length, self.max_job_length)
        else:
            report["length_clipped"] = 0
        steps = np.floor((submit - submit[0]) / self.time_unit).astype(np.int64)
        return TraceJobs(submit=steps, length=length.astype(np.int32),
                         size=size.astype(np.int32).reshape(-1, 1),
                         requested_length=req_length.astype(np.int32), report=dict(report))


def generate_swf(path: str | os.PathLike, *, num_jobs: int, num_processors: int, seed: int,
                 mean_interarrival: float = 120.0, time_unit: float = 60.0,
                 max_job_length: int = 15, max_job_size: int | None = None,
                 small_job_chance: float = 0.8) -> Path:
    """Write a synthetic SWF trace from the DeepRM bimodal distribution with Poisson arrivals.

    Run times are whole multiples of ``time_unit`` seconds; about 3% of the jobs carry the defects
    real traces have (missing requested processors or time, cancelled jobs with run time -1) so
    the cleaning rules are exercised.
    """
    rng = np.random.default_rng(seed)
    ranges = bimodal_ranges(max_job_length, max_job_size or num_processors)
    t = 0.0
    lines = [
        "; Synthetic workload generated by sysgym (DeepRM bimodal jobs, Poisson arrivals)",
        "; Version: 2.2",
        f"; MaxProcs: {num_processors}",
        f"; MaxJobs: {num_jobs}",
        f"; Note: seed={seed} mean_interarrival={mean_interarrival}s time_unit={time_unit}s",
    ]
    for number in range(1, num_jobs + 1):
        t += rng.exponential(mean_interarrival)
        lo, hi = ranges["small_length"] if rng.random() < small_job_chance else ranges["large_length"]
        steps = int(rng.integers(lo, hi + 1))
        procs = int(rng.integers(ranges["dominant_size"][0], ranges["dominant_size"][1] + 1))
        run = steps * time_unit
        requested_time = run * float(rng.choice([1.0, 1.5, 2.0]))
        wait = 0
        defect = rng.random()
        allocated, requested_procs, status = procs, procs, 1
        if defect < 0.01:
            requested_procs = -1
        elif defect < 0.02:
            requested_time = -1
        elif defect < 0.03:
            run, allocated, status = -1, -1, 5
        fields = [number, int(t), wait, int(run), allocated, -1, -1, requested_procs,
                  int(requested_time), -1, status, 1 + number % 7, 1, 1, 1, 1, -1, -1]
        lines.append(" ".join(str(f) for f in fields))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
