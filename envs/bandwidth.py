"""Network bandwidth traces shared by the trace-replay families (ABR, CC).

Formats
-------
*cooked* (Pensieve's format): one sample per line, exactly two whitespace-separated fields
``time_s  Mbps``, time non-decreasing. The bandwidth holds from its timestamp to the next one.
*mahimahi* (Netravali et al., USENIX ATC'15): one integer per line, the millisecond timestamp of
a 1500-byte delivery opportunity; converted here to piecewise-constant Mbps over ``bin_ms`` bins.

Files are read through :mod:`sysgym.envs.textfile`: UTF-8, blank lines and lines starting with
``#`` skipped, an extra or missing field is an error. Valid ranges (checked before anything is
allocated or cast; a value outside raises ``ValueError`` naming the file, line and field; a
missing file or a dangling link in a trace folder raises ``FileNotFoundError``):

=====================  =======================================================================
time_s                 [0, MAX_TIME_S = 1e7] s, non-decreasing
Mbps                   [0, MAX_MBPS = 1e6] (1 Tbit/s)
timestamp_ms           whole numbers in [0, 1e10], non-decreasing
bin_ms                 [1, 60000]
points per trace       at most MAX_TRACE_POINTS = 2**22 (a Mahimahi file: bins + 1)
=====================  =======================================================================

A trace must carry data: some positive bandwidth over a positive duration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .textfile import data_lines, existing_file, expect_fields, folder_files, number_field
from .validate import number

MAHIMAHI_PACKET_BYTES = 1500
MAX_TIME_S = 1e7
MAX_MBPS = 1e6
MAX_MAHIMAHI_MS = 1e10
MAX_TRACE_POINTS = 2**22
BIN_MS_RANGE = (1.0, 60_000.0)


@dataclass(frozen=True)
class BandwidthTrace:
    """Piecewise-constant bandwidth: ``mbps[i]`` holds on ``[time_s[i], time_s[i+1])``.

    ``time_s`` must be finite, non-decreasing and in [0, MAX_TIME_S]; ``mbps`` in [0, MAX_MBPS];
    2 to MAX_TRACE_POINTS samples; some positive bandwidth over a positive duration.
    """

    name: str
    time_s: np.ndarray
    mbps: np.ndarray
    source: str = "memory"

    def __post_init__(self) -> None:
        where = self.source
        t, b = _float_array(where, "time_s", self.time_s), _float_array(where, "mbps", self.mbps)
        if t.ndim != 1 or t.shape != b.shape or not 2 <= len(t) <= MAX_TRACE_POINTS:
            raise ValueError(f"{where}: a trace needs 2 to {MAX_TRACE_POINTS} samples of (time_s, mbps) "
                             f"of equal length, got shapes {t.shape} and {b.shape}")
        _in_range(where, "time_s", t, 0.0, MAX_TIME_S)
        _in_range(where, "mbps", b, 0.0, MAX_MBPS)
        back = np.flatnonzero(np.diff(t) < 0)
        if len(back):
            raise ValueError(f"{where}: time_s goes backwards at sample {back[0] + 1} "
                             f"({t[back[0] + 1]} after {t[back[0]]})")
        if not np.sum(b[:-1] * np.diff(t)) > 0:
            raise ValueError(f"{where}: the trace carries no data (no positive bandwidth "
                             "over a positive duration)")
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "mbps", b)

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0])

    @property
    def mean_mbps(self) -> float:
        """Time-weighted mean bandwidth."""
        dt = np.diff(self.time_s)
        return float(np.sum(self.mbps[:-1] * dt) / np.sum(dt))


def _float_array(where: str, name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{where}: {name} must be an array of numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _in_range(where: str, name: str, values: np.ndarray, lo: float, hi: float) -> None:
    bad = np.flatnonzero(~((values >= lo) & (values <= hi)))
    if len(bad):
        raise ValueError(f"{where}: {name}[{bad[0]}] = {values[bad[0]]!r} is outside [{lo:g}, {hi:g}]")


def read_cooked(path: str | os.PathLike) -> BandwidthTrace:
    """Read a ``time_s Mbps`` trace."""
    path = existing_file(path, "trace file")
    times: list[float] = []
    rates: list[float] = []
    for lineno, parts in data_lines(path):
        expect_fields(path, lineno, parts, ("time_s", "Mbps"))
        t = number_field(path, lineno, 1, "time_s", parts[0], lo=0.0, hi=MAX_TIME_S)
        b = number_field(path, lineno, 2, "Mbps", parts[1], lo=0.0, hi=MAX_MBPS)
        if times and t < times[-1]:
            raise ValueError(f"{path}:{lineno}: field 1 (time_s) goes backwards ({t} after {times[-1]})")
        if len(times) == MAX_TRACE_POINTS:
            raise ValueError(f"{path}:{lineno}: more than {MAX_TRACE_POINTS} samples (the limit per trace)")
        times.append(t)
        rates.append(b)
    if len(times) < 2:
        raise ValueError(f"{path}: empty trace (needs at least 2 samples, found {len(times)})")
    return BandwidthTrace(path.name, np.asarray(times), np.asarray(rates), str(path))


def read_mahimahi(path: str | os.PathLike, bin_ms: float = 500.0) -> BandwidthTrace:
    """Read a Mahimahi delivery-opportunity trace and bin it into Mbps.

    Bin j covers [j bin_ms, (j + 1) bin_ms) ms; the trace has ceil((last + 1) / bin_ms) bins (at
    most MAX_TRACE_POINTS - 1) and one more point at the end repeating the last bin's rate.
    """
    bin_ms = number("bin_ms", bin_ms, *BIN_MS_RANGE)
    path = existing_file(path, "trace file")
    max_bins = MAX_TRACE_POINTS - 1
    bins: list[int] = []      # distinct bins in order, with their packet counts
    counts: list[int] = []
    last = -1
    for lineno, parts in data_lines(path):
        expect_fields(path, lineno, parts, ("timestamp_ms",))
        ms = number_field(path, lineno, 1, "timestamp_ms", parts[0], lo=0, hi=MAX_MAHIMAHI_MS, integral=True)
        if ms < last:
            raise ValueError(f"{path}:{lineno}: field 1 (timestamp_ms) goes backwards ({ms} after {last})")
        needed = math.ceil((ms + 1) / bin_ms)
        if needed > max_bins:
            raise ValueError(f"{path}:{lineno}: field 1 (timestamp_ms) = {ms} needs {needed} bins of {bin_ms:g} ms; "
                             f"at most {max_bins} are allowed (MAX_TRACE_POINTS - 1): use a larger bin_ms")
        last = ms
        j = int(ms // bin_ms)
        if bins and bins[-1] == j:
            counts[-1] += 1
        else:
            bins.append(j)
            counts.append(1)
    if not bins:
        raise ValueError(f"{path}: empty trace (no delivery opportunities)")
    n_bins = max(1, math.ceil((last + 1) / bin_ms))
    per_bin = np.zeros(n_bins, dtype=np.float64)
    per_bin[np.asarray(bins, dtype=np.int64)] = counts
    mbps = per_bin * MAHIMAHI_PACKET_BYTES * 8 / (bin_ms / 1000.0) / 1e6
    times = np.arange(n_bins + 1) * bin_ms / 1000.0
    return BandwidthTrace(path.name, times, np.append(mbps, mbps[-1]), str(path))


def detect_format(path: str | os.PathLike) -> str:
    """'cooked' if the first data line has two fields, 'mahimahi' if it has one."""
    path = existing_file(path, "trace file")
    for lineno, parts in data_lines(path):
        if len(parts) == 2:
            return "cooked"
        if len(parts) == 1:
            return "mahimahi"
        raise ValueError(f"{path}:{lineno}: expected 2 fields (time_s Mbps: cooked) or 1 field "
                         f"(timestamp_ms: Mahimahi), found {len(parts)}")
    raise ValueError(f"{path}: empty trace (no data lines)")


def load_trace(path: str | os.PathLike, fmt: str = "auto", bin_ms: float = 500.0) -> BandwidthTrace:
    """Read one trace file in ``fmt`` ('auto', 'cooked' or 'mahimahi')."""
    if fmt not in ("auto", "cooked", "mahimahi"):
        raise ValueError(f"trace format must be 'auto', 'cooked' or 'mahimahi', got {fmt!r}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "cooked":
        return read_cooked(path)
    return read_mahimahi(path, bin_ms=bin_ms)


def load_traces(source: str | os.PathLike | Iterable[str | os.PathLike] | Iterable[BandwidthTrace],
                fmt: str = "auto", bin_ms: float = 500.0) -> list[BandwidthTrace]:
    """Traces from a directory (every visible file, sorted by name; a subfolder or a dangling link
    is an error), one file, or a list of files / :class:`BandwidthTrace` objects."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return [load_trace(p, fmt, bin_ms) for p in folder_files(path, "trace file")]
        return [load_trace(path, fmt, bin_ms)]
    traces = [t if isinstance(t, BandwidthTrace) else load_trace(t, fmt, bin_ms) for t in source]
    if not traces:
        raise ValueError("empty list of traces")
    return traces


def write_cooked(trace: BandwidthTrace, path: str | os.PathLike) -> Path:
    """Write ``trace`` in the cooked format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{t:.3f}\t{b:.6f}" for t, b in zip(trace.time_s, trace.mbps)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def synthetic_trace(seed: int, duration_s: float = 320.0, *, min_mbps: float = 0.2, max_mbps: float = 6.0,
                    mean_hold_s: float = 10.0, step_s: float = 1.0, noise: float = 0.1,
                    name: str | None = None) -> BandwidthTrace:
    """A Markov-modulated bandwidth trace sampled every ``step_s`` seconds.

    The link holds a level drawn log-uniformly from [min_mbps, max_mbps] for an exponentially
    distributed time (mean ``mean_hold_s``), then jumps to a fresh level; each sample carries
    multiplicative Gaussian noise of relative std ``noise`` (clipped at 5% of the level).
    """
    if not 0 < min_mbps <= max_mbps:
        raise ValueError(f"need 0 < min_mbps <= max_mbps, got {min_mbps}, {max_mbps}")
    if not (duration_s > 0 and mean_hold_s > 0 and step_s > 0 and noise >= 0):
        raise ValueError("duration_s, mean_hold_s and step_s must be > 0 and noise >= 0")
    if not duration_s / step_s < MAX_TRACE_POINTS - 2:
        raise ValueError(f"duration_s / step_s must be below {MAX_TRACE_POINTS - 2} samples, "
                         f"got {duration_s} / {step_s}")
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, duration_s + step_s, step_s)
    rates = np.empty_like(times)
    level, switch_at = 0.0, -1.0
    for i, t in enumerate(times):
        if t >= switch_at:
            level = float(np.exp(rng.uniform(np.log(min_mbps), np.log(max_mbps))))
            switch_at = t + rng.exponential(mean_hold_s)
        rates[i] = max(0.05 * level, level * (1.0 + noise * rng.standard_normal()))
    return BandwidthTrace(name or f"synthetic_{seed}", times, rates, source=f"synthetic(seed={seed})")
