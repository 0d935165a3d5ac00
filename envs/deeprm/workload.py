"""Workloads for the DeepRM family: the bimodal DeepRM generator's parameters and SWF trace replay.

Standard Workload Format (Feitelson et al., Parallel Workloads Archive): one job per line, 18
whitespace-separated numeric fields, ``;`` starts a header/comment line, ``-1`` marks a missing
value. The file is read through :mod:`sysgym.envs.textfile` (UTF-8, a leading byte-order mark
skipped, at most 256 MiB). Every field must be a finite number; the fields used have these ranges
(a value outside raises ``ValueError("file.swf:LINE: field N (name) ...")``):

====  ======================  ===================  =========================================
 2    submit_time             [0, 1e12] s          required
 4    run_time                [-1e12, 1e12] s      <= 0: missing or cancelled
 5    allocated_processors    [-1e12, 1e12]        <= 0: missing
 8    requested_processors    [-1e12, 1e12]        <= 0: missing
 9    requested_time          [-1e12, 1e12] s      <= 0: missing
====  ======================  ===================  =========================================

Cleaning rules applied by :meth:`SWFWorkload.load` (every one is counted in ``report``):

* requested processors missing (<= 0)  -> taken from allocated processors (``size_from_allocated``)
* requested time missing (<= 0)        -> taken from run time (``requested_time_from_runtime``)
* run time <= 0 (missing, cancelled)   -> job dropped (``dropped_nonpositive_runtime``)
* processors <= 0 after the rule above -> job dropped (``dropped_nonpositive_size``)
* lines out of submit order            -> stably sorted by submit time (``reordered``)
* fractional processors                -> rounded up (``size_rounded_up``)
* processors > cluster size            -> clipped to the cluster (``size_clipped``)
* length in steps > ``max_job_length`` -> clipped (``length_clipped``), only when a cap is given

Time is discretised with ``time_unit`` seconds per step: submit step = floor((submit - first) /
time_unit), length = max(1, ceil(run time / time_unit)). Without ``max_job_length`` a job longer
than ``MAX_JOB_LENGTH`` steps is an error naming its line (the kernel's usage profile spans the
longest job, so one absurd run time would otherwise allocate gigabytes). Every rounding, clipping
and range check happens on Python floats before any cast to a C integer type.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..textfile import data_lines, existing_file, expect_fields, number_field
from ..validate import INT32_MAX, integer, number

SWF_FIELDS = (
    "job_number", "submit_time", "wait_time", "run_time", "allocated_processors",
    "average_cpu_time", "used_memory", "requested_processors", "requested_time",
    "requested_memory", "status", "user_id", "group_id", "executable", "queue",
    "partition", "preceding_job", "think_time",
)
# Valid ranges of the fields the reader uses (0-based column: (low, high)); the others need only
# be finite numbers.
SWF_RANGES = {1: (0.0, 1e12), 3: (-1e12, 1e12), 4: (-1e12, 1e12), 7: (-1e12, 1e12), 8: (-1e12, 1e12)}

# The longest job, in steps, an env accepts (2^22 steps: ~8 years at 60 s per step). The kernel's
# usage profile has horizon + max_job_length slots per resource and sub-env.
MAX_JOB_LENGTH = 2**22
TIME_UNIT_RANGE = (1e-3, 1e9)


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
    length: np.ndarray          # int32, steps (actual run time), in [1, MAX_JOB_LENGTH]
    size: np.ndarray            # int32 (n, 1): processors, in [1, cluster size]
    requested_length: np.ndarray  # int64, steps (user estimate; informational)
    line: np.ndarray            # int64, the 1-based line of each job in the file
    source: str = ""            # the file the jobs come from
    report: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.submit)

    def where(self, job: int) -> str:
        """``file:line`` of job ``job`` (for error messages)."""
        return f"{self.source}:{int(self.line[job])}"


def parse_swf(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse an SWF file into an (n, 18) float array and the 1-based line number of each row.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file, line and
    field for anything else: not UTF-8, a wrong field count, a field that is not a finite number
    or (for the fields used) outside the range in the module docstring.
    """
    path = existing_file(path, "SWF trace")
    rows: list[list[float]] = []
    lines: list[int] = []
    for lineno, fields in data_lines(path, comment=";"):
        expect_fields(path, lineno, fields, SWF_FIELDS)
        try:
            values = [float(text) for text in fields]
        except ValueError:
            values = []
        if len(values) != len(fields) or not all(map(math.isfinite, values)):
            for index, text in enumerate(fields):  # names the first bad field
                number_field(path, lineno, index + 1, SWF_FIELDS[index], text)
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no job lines (only comments or blank lines)")
    table = np.asarray(rows, dtype=np.float64)
    numbers = np.asarray(lines, dtype=np.int64)
    columns = list(SWF_RANGES)
    lo, hi = (np.array([SWF_RANGES[c][k] for c in columns]) for k in (0, 1))
    bad = (table[:, columns] < lo) | (table[:, columns] > hi)
    if bad.any():
        row, k = np.argwhere(bad)[0]  # the first line with a bad field, then its first bad field
        _raise_field(path, int(numbers[row]), columns[k], *SWF_RANGES[columns[k]])
    return table, numbers


def _raise_field(path: Path, lineno: int, column: int, lo: float, hi: float) -> None:
    """Re-read line ``lineno`` and raise the reader's message for its out-of-range field."""
    for current, fields in data_lines(path, comment=";"):
        if current == lineno:
            number_field(path, lineno, column + 1, SWF_FIELDS[column], fields[column], lo=lo, hi=hi)
    raise AssertionError(f"{path}:{lineno}: field {column + 1} was out of range but passed on re-reading")


@dataclass(frozen=True)
class SWFWorkload:
    """An SWF trace to replay.

    Args:
        path: the ``.swf`` file.
        time_unit: seconds per simulation step, in [1e-3, 1e9].
        offset: index of the first job (after cleaning) to use, in [0, 2^31 - 1].
        length: number of jobs to use from ``offset`` (``None``: all the rest), in [1, 2^31 - 1].
        max_job_length: clip job lengths (in steps) to this, in [1, MAX_JOB_LENGTH]; ``None``
            keeps them (the kernel's usage profile then spans the longest job; a job longer than
            ``MAX_JOB_LENGTH`` steps is an error).
    """

    path: str | os.PathLike
    time_unit: float = 60.0
    offset: int = 0
    length: int | None = None
    max_job_length: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise ValueError(f"SWFWorkload.path must be a file path, got {self.path!r}")
        checked = {
            "time_unit": number("SWFWorkload.time_unit", self.time_unit, *TIME_UNIT_RANGE),
            "offset": integer("SWFWorkload.offset", self.offset, 0, INT32_MAX),
            "length": None if self.length is None else integer("SWFWorkload.length", self.length, 1, INT32_MAX),
            "max_job_length": None if self.max_job_length is None else
            integer("SWFWorkload.max_job_length", self.max_job_length, 1, MAX_JOB_LENGTH),
        }
        for name, value in checked.items():  # plain Python numbers from here on
            object.__setattr__(self, name, value)

    def load(self, num_processors: int) -> TraceJobs:
        """Parse, clean and discretise the trace for a cluster of ``num_processors``."""
        rows, lines = parse_swf(self.path)
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
        submit, runtime, size, requested, lines = (a[keep] for a in (submit, runtime, size, requested, lines))

        order = np.argsort(submit, kind="stable")
        report["reordered"] = int(np.sum(order != np.arange(len(order))))
        submit, runtime, size, requested, lines = (a[order] for a in (submit, runtime, size, requested, lines))

        stop = None if self.length is None else self.offset + self.length
        submit, runtime, size, requested, lines = (a[self.offset:stop]
                                                   for a in (submit, runtime, size, requested, lines))
        if len(submit) == 0:
            raise ValueError(f"{self.path}: no jobs left after cleaning and offset={self.offset}, "
                             f"length={self.length} ({dict(report)})")
        report["jobs_used"] = len(submit)

        # Everything below is on floats bounded by the field ranges; the casts come last.
        rounded = np.ceil(size)
        report["size_rounded_up"] = int(np.sum(rounded != size))
        report["size_clipped"] = int(np.sum(rounded > num_processors))
        size = np.minimum(rounded, num_processors)
        length = np.maximum(1.0, np.ceil(runtime / self.time_unit))
        if self.max_job_length is not None:
            report["length_clipped"] = int(np.sum(length > self.max_job_length))
            length = np.minimum(length, self.max_job_length)
        else:
            report["length_clipped"] = 0
            too_long = length > MAX_JOB_LENGTH
            if too_long.any():
                k = int(np.argmax(too_long))
                raise ValueError(
                    f"{self.path}:{int(lines[k])}: field 4 (run_time) {runtime[k]:g} s is {length[k]:.0f} "
                    f"steps of {self.time_unit:g} s, more than the {MAX_JOB_LENGTH}-step limit on a job's "
                    "length; clip with SWFWorkload(max_job_length=...) or use a larger time_unit")
        req_length = np.maximum(1.0, np.ceil(requested / self.time_unit))
        steps = np.floor((submit - submit[0]) / self.time_unit)
        return TraceJobs(submit=steps.astype(np.int64), length=length.astype(np.int32),
                         size=size.astype(np.int32).reshape(-1, 1),
                         requested_length=req_length.astype(np.int64), line=lines.astype(np.int64),
                         source=str(self.path), report=dict(report))


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
    for job_number in range(1, num_jobs + 1):
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
        fields = [job_number, int(t), wait, int(run), allocated, -1, -1, requested_procs,
                  int(requested_time), -1, status, 1 + job_number % 7, 1, 1, 1, 1, -1, -1]
        lines.append(" ".join(str(f) for f in fields))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
