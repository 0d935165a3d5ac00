"""Configuration of the ABR family: kwargs validation, Pensieve's constants, the trace bank."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..bandwidth import BandwidthTrace, load_traces
from .video import load_video, synthetic_video, validate_sizes

PENSIEVE_BITRATES_KBPS = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)
PENSIEVE_HD_QUALITY = (1.0, 2.0, 3.0, 12.0, 15.0, 20.0)
DEFAULT_REBUFFER_PENALTY = {"linear": 4.3, "log": 2.66, "hd": 8.0}
SHIPPED_SETS = ("train", "test")
SYNTHETIC_VIDEO_CHUNKS = 49

# Values Pensieve's simulator fixes; pensieve_compatible=True refuses other values for them.
PENSIEVE = {
    "bitrates_kbps": PENSIEVE_BITRATES_KBPS, "chunk_s": 4.0, "num_chunks": 48, "rtt_s": 0.08,
    "payload_portion": 0.95, "buffer_cap_s": 60.0, "sleep_step_s": 0.5, "noise_range": (0.9, 1.1),
    "rebuffer_penalty": None, "smoothness_penalty": 1.0, "initial_level": 1,
    "startup_rebuffer": True, "rate_at": "end", "history": 8,
}
GENERIC = {**PENSIEVE, "num_chunks": None, "initial_level": None, "rate_at": "start"}

_UNSET = object()


@dataclass(frozen=True)
class AbrConfig:
    """Validated ABR settings; see :mod:`sysgym.envs.abr` for what each one means."""

    pensieve_compatible: bool
    traces: tuple[BandwidthTrace, ...]
    trace_order: str
    sizes: np.ndarray              # (levels, video chunks) bytes, float64
    bitrates_kbps: tuple[float, ...]
    quality: tuple[float, ...]
    qoe: str
    chunk_s: float
    num_chunks: int
    rtt_s: float
    payload_portion: float
    buffer_cap_s: float
    sleep_step_s: float
    noise: bool
    noise_range: tuple[float, float]
    rebuffer_penalty: float
    smoothness_penalty: float
    initial_level: int | None
    startup_rebuffer: bool
    rate_at: str
    history: int

    @property
    def num_levels(self) -> int:
        return len(self.bitrates_kbps)

    @property
    def num_traces(self) -> int:
        return len(self.traces)

    @property
    def obs_shape(self) -> tuple[int, int]:
        return (6, self.history)

    def obs_high(self) -> np.ndarray:
        """Finite upper bounds of the observation, row by row (see the observation spec).

        Throughput S/d <= (top link rate) * payload / noise_low, since every byte takes at least
        1 / (rate * payload) seconds; a transfer reaches the trace's loop start within one trace
        duration D and then gets at least the loop's bytes per D, so d <= ((1 + ceil(S_max /
        loop bytes)) * D + rtt) * noise_high. A 1e-9 relative slack covers rounding.
        """
        lo, hi = self.noise_range if self.noise else (1.0, 1.0)
        top_rate = max(float(np.max(self.segment_rates(tr))) for tr in self.traces)
        worst_transfer = 0.0
        for tr in self.traces:
            loop_bytes = float(np.sum(self.segment_rates(tr) * np.diff(tr.time_s))) * self.payload_portion
            loops = 1.0 + math.ceil(float(self.sizes.max()) / loop_bytes)
            worst_transfer = max(worst_transfer, loops * tr.duration_s)
        high = np.zeros(self.obs_shape, dtype=np.float64)
        high[0] = 1.0
        high[1] = self.buffer_cap_s / 10.0
        high[2] = top_rate * self.payload_portion / lo / 1e6
        high[3] = (worst_transfer + self.rtt_s) * hi / 10.0
        high[4] = self.sizes[:, :self.num_chunks].max() / 1e6   # columns >= levels stay 0
        high[5] = 1.0
        return (high * (1.0 + 1e-9)).astype(np.float32)

    def kernel_config(self, num_envs: int) -> dict:
        """The flat dict of numbers the Cython kernel (and the planners) read."""
        return {
            "num_envs": num_envs, "num_levels": self.num_levels, "history": self.history,
            "num_chunks": self.num_chunks, "chunk_s": self.chunk_s, "buffer_cap_s": self.buffer_cap_s,
            "sleep_step_s": self.sleep_step_s, "rtt_s": self.rtt_s, "payload_portion": self.payload_portion,
            "noise": self.noise, "noise_range": self.noise_range, "rebuffer_penalty": self.rebuffer_penalty,
            "smoothness_penalty": self.smoothness_penalty, "sequential": self.trace_order == "sequential",
            "startup_rebuffer": self.startup_rebuffer,
            "initial_level": -1 if self.initial_level is None else self.initial_level,
        }

    def segment_rates(self, trace: BandwidthTrace) -> np.ndarray:
        """Deliverable link rate (bytes/s) of each segment of ``trace`` under ``rate_at``."""
        mbps = trace.mbps[:-1] if self.rate_at == "start" else trace.mbps[1:]
        return mbps * 1e6 / 8.0

    def trace_bank(self) -> dict[str, np.ndarray]:
        """Every trace's points and segment rates, concatenated for the kernel."""
        counts = [len(tr.time_s) for tr in self.traces]
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        first[1:] = np.cumsum(counts)
        rate = np.zeros(int(first[-1]), dtype=np.float64)
        for k, tr in enumerate(self.traces):
            rate[first[k]:first[k + 1] - 1] = self.segment_rates(tr)
        return {
            "tau": np.ascontiguousarray(np.concatenate([tr.time_s for tr in self.traces]), dtype=np.float64),
            "rate": rate, "first": first, "sizes": self.sizes,
            "quality": np.asarray(self.quality, dtype=np.float64),
            "kbps": np.asarray(self.bitrates_kbps, dtype=np.float64),
        }


def build_config(*, pensieve_compatible: bool = False, traces: object = "train", trace_format: str = "auto",
                 mahimahi_bin_ms: float = 500.0, trace_order: str = "random", video: object = None,
                 video_seed: int = 0, noise: bool | None = None, qoe: object = "linear",
                 bitrates_kbps: object = _UNSET, chunk_s: object = _UNSET, num_chunks: object = _UNSET,
                 rtt_s: object = _UNSET, payload_portion: object = _UNSET, buffer_cap_s: object = _UNSET,
                 sleep_step_s: object = _UNSET, noise_range: object = _UNSET,
                 rebuffer_penalty: object = _UNSET, smoothness_penalty: object = _UNSET,
                 initial_level: object = _UNSET, startup_rebuffer: object = _UNSET, rate_at: object = _UNSET,
                 history: object = _UNSET) -> AbrConfig:
    """Validate ABR kwargs into an :class:`AbrConfig` (raises ``ValueError`` on bad input)."""
    given = {"bitrates_kbps": bitrates_kbps, "chunk_s": chunk_s, "num_chunks": num_chunks, "rtt_s": rtt_s,
             "payload_portion": payload_portion, "buffer_cap_s": buffer_cap_s, "sleep_step_s": sleep_step_s,
             "noise_range": noise_range, "rebuffer_penalty": rebuffer_penalty,
             "smoothness_penalty": smoothness_penalty, "initial_level": initial_level,
             "startup_rebuffer": startup_rebuffer, "rate_at": rate_at, "history": history}
    if not isinstance(pensieve_compatible, bool):
        raise ValueError(f"pensieve_compatible must be True or False, got {pensieve_compatible!r}")
    if pensieve_compatible:
        clash = sorted(k for k, v in given.items() if v is not _UNSET)
        if clash:
            raise ValueError(f"pensieve_compatible=True fixes {', '.join(clash)}; "
                             "pass pensieve_compatible=False to change them")
    defaults = PENSIEVE if pensieve_compatible else GENERIC
    v = {k: (defaults[k] if value is _UNSET else value) for k, value in given.items()}

    if trace_order not in ("random", "sequential"):
        raise ValueError(f"trace_order must be 'random' or 'sequential', got {trace_order!r}")
    if v["rate_at"] not in ("start", "end"):
        raise ValueError(f"rate_at must be 'start' or 'end', got {v['rate_at']!r}")
    rates = _ladder(v["bitrates_kbps"])
    levels = len(rates)
    chunk = _positive("chunk_s", v["chunk_s"])
    rtt = _non_negative("rtt_s", v["rtt_s"])
    payload = _positive("payload_portion", v["payload_portion"])
    if payload > 1.0:
        raise ValueError(f"payload_portion must be in (0, 1], got {payload}")
    cap = _positive("buffer_cap_s", v["buffer_cap_s"])
    if cap < chunk:
        raise ValueError(f"buffer_cap_s={cap} must be >= chunk_s={chunk} (one chunk must fit in the buffer)")
    sleep_step = _positive("sleep_step_s", v["sleep_step_s"])
    noise = (trace_order == "random") if noise is None else noise
    if not isinstance(noise, (bool, np.bool_)):
        raise ValueError(f"noise must be True, False or None, got {noise!r}")
    lo_hi = v["noise_range"]
    if (not isinstance(lo_hi, Sequence) or len(lo_hi) != 2
            or not all(isinstance(x, (int, float)) for x in lo_hi) or not 0 < lo_hi[0] <= lo_hi[1]):
        raise ValueError(f"noise_range must be (low, high) with 0 < low <= high, got {lo_hi!r}")
    history = v["history"]
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or history < levels:
        raise ValueError(f"history must be an int >= the number of levels ({levels}): row 4 of the "
                         f"observation holds one next-chunk size per level; got {history!r}")
    init = v["initial_level"]
    if init is not None and (isinstance(init, bool) or not isinstance(init, (int, np.integer))
                             or not 0 <= init < levels):
        raise ValueError(f"initial_level must be None or a level in [0, {levels - 1}], got {init!r}")
    if not isinstance(v["startup_rebuffer"], (bool, np.bool_)):
        raise ValueError(f"startup_rebuffer must be True or False, got {v['startup_rebuffer']!r}")

    qoe_name, quality, mu = _qoe(qoe, rates, v["rebuffer_penalty"], pensieve_compatible)
    lam = _non_negative("smoothness_penalty", v["smoothness_penalty"])

    sizes = _video(video, rates, chunk, v["num_chunks"], video_seed)
    n_chunks = v["num_chunks"]
    if n_chunks is None:
        n_chunks = sizes.shape[1]
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, (int, np.integer)) or n_chunks < 1:
        raise ValueError(f"num_chunks must be a positive int or None, got {n_chunks!r}")
    if n_chunks > sizes.shape[1]:
        raise ValueError(f"num_chunks={n_chunks} but the video has only {sizes.shape[1]} chunks")

    bank = _traces(traces, trace_format, mahimahi_bin_ms)
    cfg = AbrConfig(
        pensieve_compatible=pensieve_compatible, traces=bank, trace_order=trace_order, sizes=sizes,
        bitrates_kbps=tuple(rates), quality=tuple(quality), qoe=qoe_name, chunk_s=chunk,
        num_chunks=int(n_chunks), rtt_s=rtt, payload_portion=payload, buffer_cap_s=cap,
        sleep_step_s=sleep_step, noise=bool(noise), noise_range=(float(lo_hi[0]), float(lo_hi[1])),
        rebuffer_penalty=mu, smoothness_penalty=lam, initial_level=None if init is None else int(init),
        startup_rebuffer=bool(v["startup_rebuffer"]), rate_at=v["rate_at"], history=int(history),
    )
    for tr in cfg.traces:
        segment_bytes = cfg.segment_rates(tr) * np.diff(tr.time_s)
        if not np.any(segment_bytes > 0):
            raise ValueError(f"{tr.source}: no segment delivers any bytes under rate_at={cfg.rate_at!r} "
                             "(every segment has zero bandwidth or zero duration)")
    return cfg


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _ladder(value: object) -> list[float]:
    try:
        rates = [float(x) for x in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"bitrates_kbps must be a sequence of numbers, got {value!r}") from None
    if not rates or any(not (r > 0 and math.isfinite(r)) for r in rates) \
            or any(b <= a for a, b in zip(rates, rates[1:])):
        raise ValueError(f"bitrates_kbps must be positive and strictly increasing, got {value!r}")
    if len(rates) > 32:
        raise ValueError(f"at most 32 bitrate levels are supported, got {len(rates)}")
    return rates


def _qoe(qoe: object, rates: list[float], mu: object, pensieve: bool) -> tuple[str, list[float], float]:
    if isinstance(qoe, str):
        if qoe == "linear":
            quality = [r / 1000.0 for r in rates]
        elif qoe == "log":
            quality = [math.log(r / rates[0]) for r in rates]
        elif qoe == "hd":
            if len(rates) != len(PENSIEVE_HD_QUALITY):
                raise ValueError(f"qoe='hd' uses Pensieve's 6 HD values; the ladder has {len(rates)} "
                                 "levels: pass qoe as a sequence of per-level quality values")
            quality = list(PENSIEVE_HD_QUALITY)
        else:
            raise ValueError(f"qoe must be 'linear', 'log', 'hd' or a sequence of per-level values, got {qoe!r}")
        name = qoe
        mu = DEFAULT_REBUFFER_PENALTY[qoe] if mu is None else mu
    else:
        if pensieve:
            raise ValueError("pensieve_compatible=True takes qoe='linear', 'log' or 'hd'")
        try:
            quality = [float(x) for x in qoe]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"qoe must be 'linear', 'log', 'hd' or a sequence of numbers, got {qoe!r}") from None
        if len(quality) != len(rates) or not all(math.isfinite(q) for q in quality):
            raise ValueError(f"qoe needs one finite quality value per level ({len(rates)}), got {qoe!r}")
        if mu is None:
            raise ValueError("a custom qoe needs rebuffer_penalty (in the quality's units per second of stall)")
        name = "custom"
    return name, quality, _non_negative("rebuffer_penalty", mu)


def _video(video: object, rates: list[float], chunk_s: float, num_chunks: object, seed: object) -> np.ndarray:
    if video is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"video_seed must be a non-negative int, got {seed!r}")
        n = num_chunks if isinstance(num_chunks, (int, np.integer)) and num_chunks > 0 else SYNTHETIC_VIDEO_CHUNKS
        n = max(int(n), SYNTHETIC_VIDEO_CHUNKS)
        return validate_sizes(synthetic_video(rates, chunk_s, n, seed=int(seed)), len(rates))
    if isinstance(video, (str, os.PathLike)):
        return validate_sizes(load_video(video, num_levels=len(rates)), len(rates), str(video))
    return validate_sizes(video, len(rates))


def _traces(traces: object, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    if isinstance(traces, BandwidthTrace):
        return (traces,)
    if isinstance(traces, str) and traces in SHIPPED_SETS:
        from sysgym.traces import trace_path

        traces = trace_path("abr", traces)
    if isinstance(traces, (str, os.PathLike)):
        return _load_cached(str(Path(traces).resolve()), _mtime(traces), fmt, float(bin_ms))
    if isinstance(traces, Sequence) and not isinstance(traces, (bytes, bytearray)):
        return tuple(load_traces(list(traces), fmt=fmt, bin_ms=bin_ms))
    raise ValueError(f"traces must be 'train', 'test', a path, or a list of files/BandwidthTrace, got {traces!r}")


def _mtime(path: str | os.PathLike) -> float:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"trace file or directory not found: {p}")
    if p.is_dir():
        return max([p.stat().st_mtime] + [f.stat().st_mtime for f in p.iterdir() if f.is_file()])
    return p.stat().st_mtime


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime: float, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    """Trace sets are read once per process (sync vector envs build one env per sub-env)."""
    return tuple(load_traces(path, fmt=fmt, bin_ms=bin_ms))
