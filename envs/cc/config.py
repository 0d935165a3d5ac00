"""Configuration of the congestion-control family: kwargs validation, link sets, trace tables."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..bandwidth import BandwidthTrace, load_traces, synthetic_trace

PACKET_BYTES = 1500
MBPS_TO_PKTS = 1e6 / (8 * PACKET_BYTES)  # 1 Mbps = 83.33 packets of 1500 bytes per second

MAX_LINKS = 8
MAX_FLOWS = 64
MAX_RATE_CHANGES = 16
SYNTHETIC_TRACES = 16  # traces="synthetic": synthetic_trace(seed) for seed in 0..15

# Observation features: name -> (low, high, value before the first monitor interval).
FEATURES: dict[str, tuple[float, float, float]] = {
    "latency_gradient": (-1.0, 10.0, 0.0),
    "latency_ratio": (1.0, 10.0, 1.0),
    "send_ratio": (0.0, 10.0, 1.0),
    "send_rate": (0.0, 2.0, 0.0),
    "recv_rate": (0.0, 2.0, 0.0),
    "loss_rate": (0.0, 1.0, 0.0),
}
AURORA_FEATURES = ("latency_gradient", "latency_ratio", "send_ratio")
DISCRETE_RATE_CHANGES = (-0.25, -0.05, 0.0, 0.05, 0.25)
DEFAULT_SET_SIZE = {"train": 1000, "test": 100}

CHOICES = {
    "action": ("continuous", "discrete"),
    "throughput": ("absolute", "normalised"),
    "link_set": (None, "train", "test"),
}


@dataclass(frozen=True)
class LinkTable:
    """A fixed set of S episode links (a train or test split): per-link arrays of shape (S, L).

    Link 0's bandwidth is unused (0) when traces drive it; ``trace``/``offset`` give the trace
    and the start offset into it (seconds) of each entry (-1 / 0 without traces).
    """

    bandwidth: np.ndarray
    delay: np.ndarray
    queue: np.ndarray
    loss: np.ndarray
    trace: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.delay)


@dataclass(frozen=True)
class TraceTable:
    """Traces concatenated for the kernel: ``rel`` (seconds from each trace's start) and ``rate``
    (packets/s holding on [rel[j], rel[j+1])), ``start``/``length`` index each trace's samples."""

    rel: np.ndarray
    rate: np.ndarray
    start: np.ndarray
    length: np.ndarray
    duration: np.ndarray
    choices: np.ndarray  # trace indices episodes may draw from (the split's traces)


@dataclass(frozen=True)
class CCConfig:
    """Validated congestion-control settings; see :mod:`sysgym.envs.cc` for what each one means."""

    action: str
    n_flows: int
    n_links: int
    bandwidth: tuple[float, float]
    delay: tuple[float, float]
    queue: tuple[int, int]
    loss: tuple[float, float]
    start_rate: tuple[float, float]
    min_rate: float
    max_rate: float
    delta_scale: float
    rate_changes: tuple[float, ...]
    history: int
    features: tuple[str, ...]
    first_mi: float
    mi_rtts: float
    mi_limits: tuple[float, float]
    max_steps: int
    max_inflight: int
    throughput: str
    reward_scale: float
    traces: tuple[BandwidthTrace, ...]
    link_set: str | None
    split_seed: int
    links: LinkTable | None
    trace_table: TraceTable | None

    @property
    def obs_size(self) -> int:
        return self.history * len(self.features)

    @property
    def queue_capacity(self) -> int:
        """Largest queue any episode can draw (sizes the per-link departure rings)."""
        if self.links is not None:
            return int(self.links.queue.max())
        return self.queue[1]

    def obs_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([FEATURES[f][0] for f in self.features], dtype=np.float32)
        high = np.array([FEATURES[f][1] for f in self.features], dtype=np.float32)
        return np.tile(low, self.history), np.tile(high, self.history)

    def reward_weights(self) -> np.ndarray:
        """[throughput, latency, loss] weights: Aurora's 10, -1000, -2000 (x reward_scale); the
        normalised throughput term (a fraction of the bottleneck) weighs 10 x 50 as in Genet."""
        thr = 10.0 if self.throughput == "absolute" else 500.0
        return np.array([thr, -1000.0, -2000.0]) * self.reward_scale


# ---------------------------------------------------------------------------- validation helpers
def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _positive(name: str, value: object) -> float:
    v = _number(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def _int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (
            hi is not None and value > hi):
        bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return int(value)


def _range(name: str, value: object, *, lo: float, hi: float = math.inf, lo_open: bool = False,
           hi_open: bool = False) -> tuple[float, float]:
    """A (low, high) pair (or one number for a fixed value) inside [lo, hi]."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ValueError(f"{name} must be a (low, high) pair or one number, got {value!r}")
    a, b = (_number(f"{name}[{i}]", v) for i, v in enumerate(pair))
    if a > b:
        raise ValueError(f"{name}: low {a} > high {b}")
    below = a <= lo if lo_open else a < lo
    above = b >= hi if hi_open else b > hi
    if below or above:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in {left}{lo}, {hi}{right}, got ({a}, {b})")
    return a, b


def _choice(name: str, value: object) -> object:
    if value not in CHOICES[name]:
        raise ValueError(f"{name} must be one of {CHOICES[name]}, got {value!r}")
    return value


def _features(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"features must be a non-empty list of names from {tuple(FEATURES)}, got {value!r}")
    for f in value:
        if f not in FEATURES:
            raise ValueError(f"features: unknown feature {f!r}; choose from {tuple(FEATURES)}")
    if len(set(value)) != len(value):
        raise ValueError(f"features: duplicate names in {value!r}")
    return tuple(value)


def _rate_changes(value: object) -> tuple[float, ...]:
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= MAX_RATE_CHANGES:
        raise ValueError(f"rate_changes must be a list of 1..{MAX_RATE_CHANGES} fractions, got {value!r}")
    out = tuple(_number(f"rate_changes[{i}]", v) for i, v in enumerate(value))
    if any(v <= -1.0 for v in out):
        raise ValueError(f"rate_changes must be > -1 (a rate cannot drop to zero), got {value!r}")
    return out


def _load(traces: object, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    if traces is None:
        return ()
    if isinstance(traces, str) and traces == "synthetic":
        return tuple(synthetic_trace(seed) for seed in range(SYNTHETIC_TRACES))
    if isinstance(traces, BandwidthTrace):
        return (traces,)
    if isinstance(traces, (str, os.PathLike, Iterable)):
        return tuple(load_traces(traces, fmt=fmt, bin_ms=bin_ms))
    raise ValueError(f"traces must be None, 'synthetic', a file, a directory or a list of them, got {traces!r}")


# ---------------------------------------------------------------------------- builders
def build_config(*, action: str = "continuous", n_flows: int = 1, n_links: int = 1,
                 bandwidth: object = (100.0, 500.0), delay: object = (0.05, 0.5),
                 queue: object = (2, 3000), loss: object = (0.0, 0.05),
                 start_rate: object = (0.3, 1.5), min_rate: float = 40.0, max_rate: float = 1000.0,
                 delta_scale: float = 0.05, rate_changes: object = DISCRETE_RATE_CHANGES,
                 history: int = 10, features: object = AURORA_FEATURES, first_mi: float = 3.0,
                 mi_rtts: float = 0.5, mi_limits: object = (0.01, 10.0), max_steps: int = 400,
                 max_inflight: int = 8192, throughput: str = "absolute", reward_scale: float = 1.0,
                 traces: object = None, trace_format: str = "auto", trace_bin_ms: float = 500.0,
                 link_set: str | None = None, link_set_size: int | None = None,
                 split_seed: int = 0, test_fraction: float = 0.2) -> CCConfig:
    """Validate congestion-control kwargs into a :class:`CCConfig` (``ValueError`` on bad input)."""
    action = _choice("action", action)
    n_flows = _int("n_flows", n_flows, 1, MAX_FLOWS)
    n_links = _int("n_links", n_links, 1, MAX_LINKS)
    bw = _range("bandwidth", bandwidth, lo=0.0, lo_open=True)
    dl = _range("delay", delay, lo=0.0, lo_open=True)
    q = _range("queue", queue, lo=1.0)
    if q[0] != int(q[0]) or q[1] != int(q[1]):
        raise ValueError(f"queue bounds must be whole packets, got {queue!r}")
    q = (int(q[0]), int(q[1]))
    ls = _range("loss", loss, lo=0.0, hi=1.0, hi_open=True)
    start = _range("start_rate", start_rate, lo=0.0, lo_open=True)
    min_rate = _positive("min_rate", min_rate)
    max_rate = _positive("max_rate", max_rate)
    if min_rate > max_rate:
        raise ValueError(f"min_rate {min_rate} > max_rate {max_rate}")
    delta_scale = _positive("delta_scale", delta_scale)
    rate_changes = _rate_changes(rate_changes)
    history = _int("history", history, 1, 1000)
    features = _features(features)
    first_mi = _positive("first_mi", first_mi)
    mi_rtts = _positive("mi_rtts", mi_rtts)
    mi_limits = _range("mi_limits", mi_limits, lo=0.0, lo_open=True)
    max_steps = _int("max_steps", max_steps, 1)
    max_inflight = _int("max_inflight", max_inflight, 1, 1 << 24)
    throughput = _choice("throughput", throughput)
    reward_scale = _positive("reward_scale", reward_scale)
    link_set = _choice("link_set", link_set)
    split_seed = _int("split_seed", split_seed, 0)
    test_fraction = _number("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bin_ms = _positive("trace_bin_ms", trace_bin_ms)

    loaded = _load(traces, trace_format, bin_ms)
    choices = _trace_split(len(loaded), link_set, split_seed, test_fraction)
    trace_table = _trace_table(loaded, choices) if loaded else None
    links = None
    if link_set is not None:
        size = DEFAULT_SET_SIZE[link_set] if link_set_size is None else _int("link_set_size", link_set_size, 1)
        links = _link_table(link_set, size, split_seed, n_links, bw, dl, q, ls, trace_table)
    elif link_set_size is not None:
        raise ValueError("link_set_size needs link_set='train' or 'test'")

    return CCConfig(
        action=action, n_flows=n_flows, n_links=n_links, bandwidth=bw, delay=dl, queue=q, loss=ls,
        start_rate=start, min_rate=min_rate, max_rate=max_rate, delta_scale=delta_scale,
        rate_changes=rate_changes, history=history, features=features, first_mi=first_mi,
        mi_rtts=mi_rtts, mi_limits=mi_limits, max_steps=max_steps, max_inflight=max_inflight,
        throughput=throughput, reward_scale=reward_scale, traces=loaded, link_set=link_set,
        split_seed=split_seed, links=links, trace_table=trace_table,
    )


def _trace_split(n: int, link_set: str | None, seed: int, test_fraction: float) -> np.ndarray:
    """Indices of the traces episodes may use: all of them, or a seeded train / test split."""
    if n == 0 or link_set is None:
        return np.arange(n, dtype=np.int64)
    if n < 2:
        raise ValueError(f"link_set={link_set!r} splits the traces into train and test: "
                         f"pass at least 2 traces, got {n}")
    order = np.random.default_rng(np.random.SeedSequence([seed, 2])).permutation(n)
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    picked = order[:n_test] if link_set == "test" else order[n_test:]
    return np.sort(picked).astype(np.int64)


def _trace_table(traces: tuple[BandwidthTrace, ...], choices: np.ndarray) -> TraceTable:
    rel, rate, start, length, duration = [], [], [], [], []
    offset = 0
    for tr in traces:
        t = tr.time_s - tr.time_s[0]  # BandwidthTrace guarantees data over a positive duration
        rel.append(t)
        rate.append(tr.mbps * MBPS_TO_PKTS)
        start.append(offset)
        length.append(len(t))
        duration.append(float(t[-1]))
        offset += len(t)
    return TraceTable(rel=np.ascontiguousarray(np.concatenate(rel), dtype=np.float64),
                      rate=np.ascontiguousarray(np.concatenate(rate), dtype=np.float64),
                      start=np.asarray(start, dtype=np.int64), length=np.asarray(length, dtype=np.int64),
                      duration=np.asarray(duration, dtype=np.float64), choices=choices)


def queue_from_uniform(u: np.ndarray | float, q: tuple[int, int]) -> np.ndarray | int:
    """Log-uniform whole queue size in [q_lo, q_hi] from a uniform u in [0, 1)."""
    lo, hi = math.log(q[0]), math.log(q[1] + 1)
    size = np.floor(np.exp(lo + (hi - lo) * np.asarray(u)))
    return np.minimum(size, q[1]).astype(np.int64)


def _link_table(split: str, size: int, seed: int, n_links: int, bw: tuple[float, float],
                dl: tuple[float, float], q: tuple[int, int], ls: tuple[float, float],
                traces: TraceTable | None) -> LinkTable:
    """``size`` links drawn from the ranges; train and test come from distinct seed streams."""
    stream = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    shape = (size, n_links)
    bandwidth = rng.uniform(bw[0], bw[1], shape)
    delay = rng.uniform(dl[0], dl[1], shape)
    queue = queue_from_uniform(rng.random(shape), q)
    loss = rng.uniform(ls[0], ls[1], shape)
    trace = np.full(size, -1, dtype=np.int64)
    offset = np.zeros(size)
    if traces is not None:
        bandwidth[:, 0] = 0.0
        trace = traces.choices[rng.integers(0, len(traces.choices), size)]
        offset = rng.random(size) * traces.duration[trace]
    return LinkTable(bandwidth=bandwidth, delay=delay, queue=queue, loss=loss,
                     trace=trace.astype(np.int64), offset=offset)


def kernel_config(cfg: CCConfig, num_envs: int) -> dict:
    """The flat dict of numbers the Cython kernel reads."""
    low, high = (np.array([FEATURES[f][i] for f in cfg.features]) for i in (0, 1))
    return {
        "num_envs": num_envs, "n_flows": cfg.n_flows, "n_links": cfg.n_links,
        "ring": cfg.max_inflight, "queue_capacity": cfg.queue_capacity, "plot": PLOT_LENGTH,
        "history": cfg.history, "features": [list(FEATURES).index(f) for f in cfg.features],
        "feature_low": low.tolist(), "feature_high": high.tolist(),
        "discrete": int(cfg.action == "discrete"), "rate_changes": list(cfg.rate_changes),
        "delta_scale": cfg.delta_scale, "min_rate": cfg.min_rate, "max_rate": cfg.max_rate,
        "start_rate": cfg.start_rate, "first_mi": cfg.first_mi, "mi_rtts": cfg.mi_rtts,
        "mi_limits": cfg.mi_limits, "max_steps": cfg.max_steps,
        "normalised": int(cfg.throughput == "normalised"),
        "bandwidth": cfg.bandwidth, "delay": cfg.delay, "queue": cfg.queue,
        "queue_log": (math.log(cfg.queue[0]), math.log(cfg.queue[1] + 1)), "loss": cfg.loss,
    }


def kernel_tables(cfg: CCConfig) -> dict[str, np.ndarray]:
    """The read-only arrays the kernel replays (traces, link set); empty when unused."""
    f8, i8 = np.zeros(0), np.zeros(0, dtype=np.int64)
    tt, lt = cfg.trace_table, cfg.links
    out = {"use_trace": int(tt is not None), "use_set": int(lt is not None),
           "tr_rel": f8, "tr_rate": f8, "tr_start": i8, "tr_length": i8, "tr_duration": f8,
           "tr_choices": i8, "set_bandwidth": np.zeros((0, cfg.n_links)),
           "set_delay": np.zeros((0, cfg.n_links)), "set_loss": np.zeros((0, cfg.n_links)),
           "set_queue": np.zeros((0, cfg.n_links), dtype=np.int64), "set_trace": i8, "set_offset": f8}
    if tt is not None:
        out.update(tr_rel=tt.rel, tr_rate=tt.rate, tr_start=tt.start, tr_length=tt.length,
                   tr_duration=tt.duration, tr_choices=tt.choices)
    if lt is not None:
        out.update(set_bandwidth=np.ascontiguousarray(lt.bandwidth), set_delay=np.ascontiguousarray(lt.delay),
                   set_loss=np.ascontiguousarray(lt.loss), set_queue=np.ascontiguousarray(lt.queue),
                   set_trace=lt.trace, set_offset=lt.offset)
    return out


PLOT_LENGTH = 128  # monitor intervals kept for rendering
