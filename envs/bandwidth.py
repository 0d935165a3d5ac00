"""Network bandwidth traces shared by the trace-replay families (ABR, CC).

Formats
-------
*cooked* (Pensieve's format): one sample per line, ``time_s  Mbps`` separated by whitespace,
time non-decreasing from near 0. The bandwidth holds from its timestamp to the next one.
*mahimahi* (Netravali et al., USENIX ATC'15): one integer per line, the millisecond timestamp of
a 1500-byte delivery opportunity; converted here to piecewise-constant Mbps over ``bin_ms`` bins.

Blank lines and lines starting with ``#`` are skipped. A malformed line, a negative bandwidth, a
decreasing timestamp, or a trace with no positive bandwidth raises ``ValueError`` naming the file
and line; a missing file raises ``FileNotFoundError``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAHIMAHI_PACKET_BYTES = 1500


@dataclass(frozen=True)
class BandwidthTrace:
    """Piecewise-constant bandwidth: ``mbps[i]`` holds on ``[time_s[i], time_s[i+1])``."""

    name: str
    time_s: np.ndarray
    mbps: np.ndarray
    source: str = "memory"

    def __post_init__(self) -> None:
        t, b = np.asarray(self.time_s, dtype=np.float64), np.asarray(self.mbps, dtype=np.float64)
        if t.ndim != 1 or t.shape != b.shape or len(t) < 2:
            raise ValueError(f"{self.source}: a trace needs >= 2 samples of (time_s, mbps), got {len(t)}")
        if np.any(np.diff(t) < 0) or not np.all(np.isfinite(t)):
            raise ValueError(f"{self.source}: time_s must be finite and non-decreasing")
        if np.any(b < 0) or not np.all(np.isfinite(b)):
            raise ValueError(f"{self.source}: mbps must be finite and >= 0")
        if not np.sum(b[:-1] * np.diff(t)) > 0:
            raise ValueError(f"{self.source}: the trace carries no data (no positive bandwidth "
                             "over a positive duration)")
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


def _data_lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            text = raw.strip()
            if text and not text.startswith("#"):
                yield lineno, text.split()


def _number(path: Path, lineno: int, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: field {field} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{lineno}: field {field} is not finite: {text!r}")
    return value


def read_cooked(path: str | os.PathLike) -> BandwidthTrace:
    """Read a ``time_s Mbps`` trace."""
    path = _existing(path)
    times, rates = [], []
    for lineno, parts in _data_lines(path):
        if len(parts) < 2:
            raise ValueError(f"{path}:{lineno}: expected 'time_s Mbps', found {len(parts)} field(s)")
        t = _number(path, lineno, "time_s", parts[0])
        b = _number(path, lineno, "Mbps", parts[1])
        if t < 0:
            raise ValueError(f"{path}:{lineno}: field time_s is negative: {parts[0]}")
        if b < 0:
            raise ValueError(f"{path}:{lineno}: field Mbps is negative: {parts[1]}")
        if times and t < times[-1]:
            raise ValueError(f"{path}:{lineno}: field time_s goes backwards ({t} after {times[-1]})")
        times.append(t)
        rates.append(b)
    if len(times) < 2:
        raise ValueError(f"{path}: empty trace (needs at least 2 samples, found {len(times)})")
    return BandwidthTrace(path.name, np.asarray(times), np.asarray(rates), str(path))


def read_mahimahi(path: str | os.PathLike, bin_ms: float = 500.0) -> BandwidthTrace:
    """Read a Mahimahi delivery-opportunity trace and bin it into Mbps."""
    if not bin_ms > 0:
        raise ValueError(f"bin_ms must be > 0, got {bin_ms}")
    path = _existing(path)
    stamps: list[float] = []
    for lineno, parts in _data_lines(path):
        if len(parts) != 1:
            raise ValueError(f"{path}:{lineno}: expected one millisecond timestamp, found {len(parts)} fields")
        ms = _number(path, lineno, "timestamp_ms", parts[0])
        if ms < 0 or ms != int(ms):
            raise ValueError(f"{path}:{lineno}: field timestamp_ms must be a non-negative integer: {parts[0]}")
        if stamps and ms < stamps[-1]:
            raise ValueError(f"{path}:{lineno}: field timestamp_ms goes backwards ({ms} after {stamps[-1]})")
        stamps.append(ms)
    if not stamps:
        raise ValueError(f"{path}: empty trace (no delivery opportunities)")
    n_bins = max(1, math.ceil((stamps[-1] + 1) / bin_ms))
    counts = np.bincount((np.asarray(stamps) // bin_ms).astype(np.int64), minlength=n_bins)
    mbps = counts * MAHIMAHI_PACKET_BYTES * 8 / (bin_ms / 1000.0) / 1e6
    times = np.arange(n_bins + 1) * bin_ms / 1000.0
    return BandwidthTrace(path.name, times, np.append(mbps, mbps[-1]), str(path))


def detect_format(path: str | os.PathLike) -> str:
    """'cooked' if the first data line has two fields, 'mahimahi' if it has one integer."""
    path = _existing(path)
    for _, parts in _data_lines(path):
        if len(parts) >= 2:
            return "cooked"
        if len(parts) == 1:
            return "mahimahi"
    raise ValueError(f"{path}: empty trace (no data lines)")


def load_trace(path: str | os.PathLike, fmt: str = "auto", bin_ms: float = 500.0) -> BandwidthTrace:
    """Read one trace file in ``fmt`` ('auto', 'cooked' or 'mahimahi')."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "cooked":
        return read_cooked(path)
    if fmt == "mahimahi":
        return read_mahimahi(path, bin_ms=bin_ms)
    raise ValueError(f"trace format must be 'auto', 'cooked' or 'mahimahi', got {fmt!r}")


def load_traces(source: str | os.PathLike | Iterable[str | os.PathLike] | Iterable[BandwidthTrace],
                fmt: str = "auto", bin_ms: float = 500.0) -> list[BandwidthTrace]:
    """Traces from a directory (every visible file, sorted by name), one file, or a list of either."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise ValueError(f"{path}: trace directory holds no files")
            return [load_trace(p, fmt, bin_ms) for p in files]
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


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    return path
