"""Configuration of the ABR family: kwargs validation, Pensieve's constants, the trace bank."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..bandwidth import BIN_MS_RANGE, BandwidthTrace, load_traces
from ..validate import INT64_MAX, boolean, choice, integer, number, number_pair
from .video import MAX_CHUNKS, load_video, synthetic_video, validate_sizes

PENSIEVE_BITRATES_KBPS = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)
PENSIEVE_HD_QUALITY = (1.0, 2.0, 3.0, 12.0, 15.0, 20.0)
DEFAULT_REBUFFER_PENALTY = {"linear": 4.3, "log": 2.66, "hd": 8.0}
SHIPPED_SETS = ("train", "test")
SYNTHETIC_VIDEO_CHUNKS = 49

# Documented ranges of the numeric kwargs (see the package docstring). They keep every product
# and sum the kernel forms far from float64 overflow and every observation finite in float32.
MAX_LEVELS = 32
MIN_KBPS = 1e-3
MAX_KBPS = 1e7
MAX_HISTORY = 1024
MAX_BANK_POINTS = 2**24           # trace points over all traces of one env (256 MiB of tau + rate)
MAX_PENALTY = 1e6                 # rebuffer/smoothness penalties and |quality values|
CHUNK_S_RANGE = (1e-3, 3600.0)
RTT_S_RANGE = (0.0, 60.0)
PAYLOAD_RANGE = (0.01, 1.0)
BUFFER_CAP_MAX_S = 86_400.0
SLEEP_STEP_RANGE = (1e-3, 3600.0)
NOISE_FACTOR_RANGE = (0.01, 100.0)
MAX_TRANSFER_RANGE = (1e-3, 1e6)
OBSERVATIONS = ("clean", "pensieve")
LOOP_CLOCKS = ("first", "zero")
FIRST_CHUNK = ("agent", "initial")  # who picks chunk 0: the agent, or initial_level (Pensieve)

# Values Pensieve's simulator fixes; pensieve_compatible=True refuses other values for them.
PENSIEVE = {
    "bitrates_kbps": PENSIEVE_BITRATES_KBPS, "chunk_s": 4.0, "num_chunks": 48, "rtt_s": 0.08,
    "payload_portion": 0.95, "buffer_cap_s": 60.0, "sleep_step_s": 0.5, "noise_range": (0.9, 1.1),
    "rebuffer_penalty": None, "smoothness_penalty": 1.0, "initial_level": 1,
    "startup_rebuffer": True, "rate_at": "end", "loop_clock": "zero", "history": 8,
}
GENERIC = {**PENSIEVE, "num_chunks": None, "initial_level": None, "rate_at": "start", "loop_clock": "first"}

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
    loop_clock: str
    observation: str
    max_transfer_s: float
    history: int
    first_chunk: str = "agent"

    @property
    def num_levels(self) -> int:
        return len(self.bitrates_kbps)

    @property
    def num_traces(self) -> int:
        return len(self.traces)

    @property
    def obs_shape(self) -> tuple[int, int]:
        return (6, self.history)

    def loop_start(self, trace: BandwidthTrace) -> float:
        """Trace time at which the walk resumes after the last segment (``loop_clock``)."""
        return float(trace.time_s[0]) if self.loop_clock == "first" else 0.0

    def obs_high(self) -> np.ndarray:
        """The observation space's upper bounds (float32; rounding to float32 is monotone, so every
        observation, rounded the same way from a value below :meth:`obs_bounds`, lies below)."""
        return self.obs_bounds().astype(np.float32)

    def obs_bounds(self) -> np.ndarray:
        """Finite upper bounds of the observation in float64, row by row (see the observation spec).

        Throughput (delivered bytes) / d <= (top link rate) * payload / noise_low, since every byte
        takes at least 1 / (rate * payload) seconds. A transfer reaches the loop start within one
        loop (D = last timestamp - loop start) and then gets the loop's bytes L per D, so it lasts
        at most (1 + ceil(S_max / L)) * D, and never more than max_transfer_s; the delay is at most
        (that + rtt) * noise_high. A 1e-9 relative slack covers rounding.
        """
        lo, hi = self.noise_range if self.noise else (1.0, 1.0)
        top_rate = max(float(np.max(self.segment_rates(tr))) for tr in self.traces)
        worst_transfer = 0.0
        for tr in self.traces:
            rates = self.segment_rates(tr)
            durations = np.diff(tr.time_s)
            durations[0] = tr.time_s[1] - self.loop_start(tr)
            loop_bytes = float(np.sum(rates * durations)) * self.payload_portion
            loop_s = float(tr.time_s[-1]) - self.loop_start(tr)
            ratio = float(self.sizes.max()) / loop_bytes if loop_bytes > 0 else math.inf
            loops = 1.0 + math.ceil(ratio) if ratio < 1e300 else math.inf
            worst_transfer = max(worst_transfer, min(loops * loop_s, self.max_transfer_s))
        high = np.zeros(self.obs_shape, dtype=np.float64)
        high[0] = 1.0
        high[1] = self.buffer_cap_s / 10.0
        high[2] = top_rate * self.payload_portion / lo / 1e6
        high[3] = (worst_transfer + self.rtt_s) * hi / 10.0
        high[4] = self.sizes[:, :self.num_chunks].max() / 1e6   # clean: columns >= levels stay 0
        high[5] = 1.0
        return high * (1.0 + 1e-9)

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
            "loop_zero": self.loop_clock == "zero", "pensieve_obs": self.observation == "pensieve",
            "max_transfer_s": self.max_transfer_s, "first_fixed": self.first_chunk == "initial",
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
                 observation: str | None = None, first_chunk: str | None = None, max_transfer_s: float = 3600.0,
                 bitrates_kbps: object = _UNSET, chunk_s: object = _UNSET, num_chunks: object = _UNSET,
                 rtt_s: object = _UNSET, payload_portion: object = _UNSET, buffer_cap_s: object = _UNSET,
                 sleep_step_s: object = _UNSET, noise_range: object = _UNSET,
                 rebuffer_penalty: object = _UNSET, smoothness_penalty: object = _UNSET,
                 initial_level: object = _UNSET, startup_rebuffer: object = _UNSET, rate_at: object = _UNSET,
                 loop_clock: object = _UNSET, history: object = _UNSET) -> AbrConfig:
    """Validate ABR kwargs into an :class:`AbrConfig` (raises ``ValueError`` on bad input)."""
    given = {"bitrates_kbps": bitrates_kbps, "chunk_s": chunk_s, "num_chunks": num_chunks, "rtt_s": rtt_s,
             "payload_portion": payload_portion, "buffer_cap_s": buffer_cap_s, "sleep_step_s": sleep_step_s,
             "noise_range": noise_range, "rebuffer_penalty": rebuffer_penalty,
             "smoothness_penalty": smoothness_penalty, "initial_level": initial_level,
             "startup_rebuffer": startup_rebuffer, "rate_at": rate_at, "loop_clock": loop_clock,
             "history": history}
    pensieve_compatible = boolean("pensieve_compatible", pensieve_compatible)
    if pensieve_compatible:
        clash = sorted(k for k, v in given.items() if v is not _UNSET)
        if clash:
            raise ValueError(f"pensieve_compatible=True fixes {', '.join(clash)}; "
                             "pass pensieve_compatible=False to change them")
    defaults = PENSIEVE if pensieve_compatible else GENERIC
    v = {k: (defaults[k] if value is _UNSET else value) for k, value in given.items()}

    trace_order = choice("trace_order", trace_order, ("random", "sequential"))
    rate_at = choice("rate_at", v["rate_at"], ("start", "end"))
    loop = choice("loop_clock", v["loop_clock"], LOOP_CLOCKS)
    if observation is None:
        observation = "pensieve" if pensieve_compatible else "clean"
    obs_layout = choice("observation", observation, OBSERVATIONS)
    rates = _ladder(v["bitrates_kbps"])
    levels = len(rates)
    chunk = number("chunk_s", v["chunk_s"], *CHUNK_S_RANGE)
    rtt = number("rtt_s", v["rtt_s"], *RTT_S_RANGE)
    payload = number("payload_portion", v["payload_portion"], *PAYLOAD_RANGE)
    cap = number("buffer_cap_s", v["buffer_cap_s"], chunk, BUFFER_CAP_MAX_S)
    sleep_step = number("sleep_step_s", v["sleep_step_s"], *SLEEP_STEP_RANGE)
    if sleep_step > cap:
        raise ValueError(f"sleep_step_s={sleep_step} must be <= buffer_cap_s={cap}: a longer sleep would "
                         "drain the buffer below zero")
    max_transfer = number("max_transfer_s", max_transfer_s, *MAX_TRANSFER_RANGE)
    noise = (trace_order == "random") if noise is None else boolean("noise", noise)
    lo_hi = number_pair("noise_range", v["noise_range"], *NOISE_FACTOR_RANGE)
    history = integer("history", v["history"], levels, MAX_HISTORY)
    init = v["initial_level"]
    if init is not None:
        init = integer("initial_level", init, 0, levels - 1)
    startup = boolean("startup_rebuffer", v["startup_rebuffer"])
    if first_chunk is None:
        first_chunk = "initial" if pensieve_compatible else "agent"
    first_chunk = choice("first_chunk", first_chunk, FIRST_CHUNK)
    if first_chunk == "initial" and init is None:
        raise ValueError("first_chunk='initial' plays chunk 0 at initial_level: set initial_level")

    qoe_name, quality, mu = _qoe(qoe, rates, v["rebuffer_penalty"], pensieve_compatible)
    lam = number("smoothness_penalty", v["smoothness_penalty"], 0.0, MAX_PENALTY)

    n_chunks = v["num_chunks"]
    if n_chunks is not None:
        n_chunks = integer("num_chunks", n_chunks, 1, MAX_CHUNKS)
    sizes = _video(video, rates, chunk, n_chunks, video_seed)
    if n_chunks is None:
        n_chunks = sizes.shape[1]
    if n_chunks > sizes.shape[1]:
        raise ValueError(f"num_chunks={n_chunks} but the video has only {sizes.shape[1]} chunks")

    bin_ms = number("mahimahi_bin_ms", mahimahi_bin_ms, *BIN_MS_RANGE)
    trace_format = choice("trace_format", trace_format, ("auto", "cooked", "mahimahi"))
    bank = _traces(traces, trace_format, bin_ms)
    cfg = AbrConfig(
        pensieve_compatible=pensieve_compatible, traces=bank, trace_order=trace_order, sizes=sizes,
        bitrates_kbps=tuple(rates), quality=tuple(quality), qoe=qoe_name, chunk_s=chunk,
        num_chunks=int(n_chunks), rtt_s=rtt, payload_portion=payload, buffer_cap_s=cap,
        sleep_step_s=sleep_step, noise=noise, noise_range=lo_hi, rebuffer_penalty=mu,
        smoothness_penalty=lam, initial_level=init, startup_rebuffer=startup, rate_at=rate_at,
        loop_clock=loop, observation=obs_layout, max_transfer_s=max_transfer, history=history,
        first_chunk=first_chunk,
    )
    for tr in cfg.traces:
        segment_bytes = cfg.segment_rates(tr) * np.diff(tr.time_s)
        if not np.any(segment_bytes > 0):
            raise ValueError(f"{tr.source}: no segment delivers any bytes under rate_at={cfg.rate_at!r} "
                             "(every segment has zero bandwidth or zero duration)")
    return cfg


def _ladder(value: object) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(f"bitrates_kbps must be a sequence of numbers, got {value!r}")
    if not 1 <= len(value) <= MAX_LEVELS:
        raise ValueError(f"bitrates_kbps must have 1 to {MAX_LEVELS} levels, got {len(value)}")
    rates = [number(f"bitrates_kbps[{i}]", x, MIN_KBPS, MAX_KBPS) for i, x in enumerate(value)]
    if any(b <= a for a, b in zip(rates, rates[1:])):
        raise ValueError(f"bitrates_kbps must be strictly increasing, got {value!r}")
    return rates


def _qoe(qoe: object, rates: list[float], mu: object, pensieve: bool) -> tuple[str, list[float], float]:
    if isinstance(qoe, str):
        choice("qoe", qoe, ("linear", "log", "hd"))
        if qoe == "linear":
            quality = [r / 1000.0 for r in rates]
        elif qoe == "log":
            quality = [math.log(r / rates[0]) for r in rates]
        else:
            if len(rates) != len(PENSIEVE_HD_QUALITY):
                raise ValueError(f"qoe='hd' uses Pensieve's 6 HD values; the ladder has {len(rates)} "
                                 "levels: pass qoe as a sequence of per-level quality values")
            quality = list(PENSIEVE_HD_QUALITY)
        name = qoe
        mu = DEFAULT_REBUFFER_PENALTY[qoe] if mu is None else mu
    else:
        if pensieve:
            raise ValueError("pensieve_compatible=True takes qoe='linear', 'log' or 'hd'")
        if isinstance(qoe, bytes) or not isinstance(qoe, Sequence | np.ndarray) or len(qoe) != len(rates):
            raise ValueError(f"qoe must be 'linear', 'log', 'hd' or one quality value per level "
                             f"({len(rates)}), got {qoe!r}")
        quality = [number(f"qoe[{i}]", q, -MAX_PENALTY, MAX_PENALTY) for i, q in enumerate(qoe)]
        if mu is None:
            raise ValueError("a custom qoe needs rebuffer_penalty (in the quality's units per second of stall)")
        name = "custom"
    if max(abs(q) for q in quality) > MAX_PENALTY:
        raise ValueError(f"quality values must lie in [-{MAX_PENALTY:g}, {MAX_PENALTY:g}]; qoe={qoe!r} "
                         f"with this ladder gives {quality}")
    return name, quality, number("rebuffer_penalty", mu, 0.0, MAX_PENALTY)


def _video(video: object, rates: list[float], chunk_s: float, num_chunks: int | None, seed: object) -> np.ndarray:
    if video is None:
        seed = integer("video_seed", seed, 0, INT64_MAX)
        n = max(num_chunks or SYNTHETIC_VIDEO_CHUNKS, SYNTHETIC_VIDEO_CHUNKS)
        return validate_sizes(synthetic_video(rates, chunk_s, n, seed=seed), len(rates))
    if isinstance(video, (str, os.PathLike)):
        return validate_sizes(load_video(video, num_levels=len(rates)), len(rates), str(video))
    return validate_sizes(video, len(rates))


def _traces(traces: object, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    if isinstance(traces, BandwidthTrace):
        bank: tuple[BandwidthTrace, ...] = (traces,)
    elif isinstance(traces, str) and traces in SHIPPED_SETS:
        from sysgym.traces import trace_path

        path = trace_path("abr", traces)
        bank = _load_cached(str(path), _stamp(path), fmt, bin_ms)
    elif isinstance(traces, (str, os.PathLike)):
        bank = _load_cached(str(Path(traces).resolve()), _stamp(traces), fmt, bin_ms)
    elif isinstance(traces, Sequence) and not isinstance(traces, (bytes, bytearray)):
        bank = tuple(load_traces(list(traces), fmt=fmt, bin_ms=bin_ms))
    else:
        raise ValueError(f"traces must be 'train', 'test', a path, or a list of files/BandwidthTrace, "
                         f"got {traces!r}")
    points = sum(len(tr.time_s) for tr in bank)
    if points > MAX_BANK_POINTS:
        raise ValueError(f"traces hold {points} points in all; at most {MAX_BANK_POINTS} are allowed per env")
    return bank


def _stamp(path: str | os.PathLike) -> tuple:
    """What identifies the current contents of a trace file or folder for the cache: every entry's
    name, size and modification time (links not followed: a dangling one is reported by the reader)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"trace file or directory not found: {p}")
    entries = sorted(p.iterdir()) if p.is_dir() else [p]
    return tuple((e.name, e.lstat().st_size, e.lstat().st_mtime_ns) for e in entries)


@lru_cache(maxsize=16)
def _load_cached(path: str, stamp: tuple, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    """Trace sets are read once per process (sync vector envs build one env per sub-env)."""
    return tuple(load_traces(path, fmt=fmt, bin_ms=bin_ms))
