"""Configuration of the congestion-control family: kwargs validation, link sets, trace tables.

Every numeric kwarg and trace value is checked here, in Python, against the documented ranges of
:mod:`sysgym.envs.cc` (module docstring, "Valid ranges") before anything reaches the kernel.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..bandwidth import BandwidthTrace, load_traces, synthetic_trace
from ..validate import INT64_MAX, boolean, choice, integer, number, number_pair

PACKET_BYTES = 1500
MBPS_TO_PKTS = 1e6 / (8 * PACKET_BYTES)  # 1 Mbps = 83.33 packets of 1500 bytes per second

MAX_LINKS = 8
MAX_FLOWS = 64
MAX_RATE_CHANGES = 16
SYNTHETIC_TRACES = 16  # traces="synthetic": synthetic_trace(seed) for seed in 0..15

# Valid ranges (see the module docstring of sysgym.envs.cc for why each one is what it is).
BANDWIDTH_RANGE = (1.0, 1e7)        # packets/s of a constant link
DELAY_MAX = 100.0                   # s, one-way propagation delay of one link (> 0)
QUEUE_MAX = 2**20                   # packets a link holds
RATE_RANGE = (1e-3, 1e7)            # packets/s, min_rate and max_rate
START_RATE_MAX = 1000.0             # x bottleneck bandwidth
DELTA_SCALE_MAX = 10.0
RATE_CHANGE_MAX = 10.0
HISTORY_MAX = 1000
MI_FACTOR_MAX = 1000.0              # first_mi and mi_rtts (x RTT)
MI_RANGE = (1e-6, 60.0)             # s, monitor-interval limits
MAX_STEPS_MAX = 10**6
INFLIGHT_MAX = 2**20
REWARD_SCALE_MAX = 1e6
LINK_SET_MAX = 100_000
BIN_MS_RANGE = (1.0, 3.6e6)
# What one sub-env may cost: sends per monitor interval (n_flows x MI cap x max_rate) and state.
MAX_SENDS_PER_MI = 10**7
MAX_STATE_BYTES = 64 * 2**20
# Trace values CC replays.
TRACE_MBPS_MAX = 1e5                # 100 Gbps
TRACE_DURATION_MAX = 1e6            # s (one loop)
TRACE_SAMPLES_MAX = 2**22           # samples of all traces together (3 float64 arrays: 96 MiB)
# Largest time (s) any state value may hold: far above what the ranges above can reach
# ((max_steps + 1) x 60 s of clock, plus a full queue of the slowest link or trace loop).
TIME_MAX = 1e15

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
# aurora_compatible=True: PCC-RL's network_sim.py scales the action by 0.025 (config.DELTA_SCALE)
# without bounding it (its action space is [-1e12, 1e12]) and runs its first monitor interval for
# 3 x the one-way delay = 1.5 x the base RTT.
AURORA = {"delta_scale": 0.025, "first_mi": 1.5}
AURORA_ACTION_BOUND = float(np.float32(1e12))
_UNSET = object()

CHOICES = {
    "action": ("continuous", "discrete"),
    "throughput": ("absolute", "normalised"),
    "link_set": (None, "train", "test"),
    "trace_format": ("auto", "cooked", "mahimahi"),
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
    """Traces concatenated for the kernel: ``rel`` (seconds from each trace's start), ``rate``
    (packets/s holding on [rel[j], rel[j+1])) and ``cum`` (packets deliverable from the trace's
    start to rel[j]); ``start``/``length`` index each trace's samples, ``duration`` is its loop
    period and ``packets`` what one loop delivers."""

    rel: np.ndarray
    rate: np.ndarray
    cum: np.ndarray
    start: np.ndarray
    length: np.ndarray
    duration: np.ndarray
    packets: np.ndarray
    choices: np.ndarray  # trace indices episodes may draw from (the split's traces)

    def __len__(self) -> int:
        return len(self.start)


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
    aurora_compatible: bool
    traces: tuple[BandwidthTrace, ...]
    link_set: str | None
    split_seed: int
    links: LinkTable | None
    trace_table: TraceTable | None

    @property
    def obs_size(self) -> int:
        return self.history * len(self.features)

    @property
    def action_bound(self) -> float:
        """Continuous actions are clipped to [-bound, bound] (the action space's bounds)."""
        return AURORA_ACTION_BOUND if self.aurora_compatible else 1.0

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

    def neutral_obs(self) -> np.ndarray:
        """The observation before any monitor interval: every row at the features' neutral values."""
        return np.tile(np.array([FEATURES[f][2] for f in self.features], dtype=np.float32), self.history)

    def feature_names(self) -> tuple[str, ...]:
        """Names of the observation's entries: ``feature[t-k]`` for the MI k intervals back."""
        return tuple(f"{f}[t-{self.history - row}]" for row in range(self.history) for f in self.features)

    def reward_weights(self) -> np.ndarray:
        """[throughput, latency, loss] weights: Aurora's 10, -1000, -2000 (x reward_scale); the
        normalised throughput term (a fraction of the bottleneck) weighs 10 x 50 as in Genet."""
        thr = 10.0 if self.throughput == "absolute" else 500.0
        return np.array([thr, -1000.0, -2000.0]) * self.reward_scale


# ---------------------------------------------------------------------------- validation helpers
def _features(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"features must be a non-empty list of names from {tuple(FEATURES)}, got {value!r}")
    for f in value:
        if not isinstance(f, str) or f not in FEATURES:
            raise ValueError(f"features: unknown feature {f!r}; choose from {tuple(FEATURES)}")
    if len(set(value)) != len(value):
        raise ValueError(f"features: duplicate names in {value!r}")
    return tuple(value)


def _rate_changes(value: object) -> tuple[float, ...]:
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= MAX_RATE_CHANGES:
        raise ValueError(f"rate_changes must be a list of 1..{MAX_RATE_CHANGES} fractions, got {value!r}")
    out = tuple(number(f"rate_changes[{i}]", v, -1.0, RATE_CHANGE_MAX, lo_open=True) for i, v in enumerate(value))
    return out


def _load(traces: object, fmt: str, bin_ms: float) -> tuple[BandwidthTrace, ...]:
    if traces is None:
        return ()
    if isinstance(traces, str) and traces == "synthetic":
        loaded: list[BandwidthTrace] = [synthetic_trace(seed) for seed in range(SYNTHETIC_TRACES)]
    elif isinstance(traces, BandwidthTrace):
        loaded = [traces]
    elif isinstance(traces, (str, os.PathLike, Iterable)) and not isinstance(traces, bytes):
        loaded = list(load_traces(traces, fmt=fmt, bin_ms=bin_ms))
    else:
        raise ValueError(f"traces must be None, 'synthetic', a file, a directory or a list of them, got {traces!r}")
    total = 0
    for tr in loaded:
        if not isinstance(tr, BandwidthTrace):
            raise ValueError(f"traces must be files or BandwidthTrace objects, got {type(tr).__name__}")
        total += len(tr.time_s)
        if total > TRACE_SAMPLES_MAX:
            raise ValueError(f"traces hold more than {TRACE_SAMPLES_MAX} samples in all (the limit of the "
                             f"CC trace table, {3 * 8 * TRACE_SAMPLES_MAX // 2**20} MiB); reached at {tr.source}")
        check_trace(tr)
    return tuple(loaded)


def check_trace(tr: BandwidthTrace) -> None:
    """Refuse a trace whose values lie outside what CC replays (ValueError naming the trace)."""
    rel = tr.time_s - tr.time_s[0]
    duration = float(rel[-1])
    if not 0.0 < duration <= TRACE_DURATION_MAX:
        raise ValueError(f"{tr.source}: field time_s spans {duration:g} s; CC replays traces lasting "
                         f"(0, {TRACE_DURATION_MAX:g}] s")
    high = np.flatnonzero(tr.mbps > TRACE_MBPS_MAX)
    if high.size:
        i = int(high[0])
        raise ValueError(f"{tr.source}: sample {i + 1} (time_s {tr.time_s[i]:g}): field Mbps = {tr.mbps[i]:g} "
                         f"exceeds CC's limit of {TRACE_MBPS_MAX:g} Mbps")
    packets = float(_cumulative(rel, tr.mbps * MBPS_TO_PKTS)[-1])
    if not packets >= 1.0:
        raise ValueError(f"{tr.source}: the trace delivers {packets:.3g} packets of {PACKET_BYTES} bytes per "
                         f"loop of {duration:g} s; CC needs at least 1 (a mean above "
                         f"{1.0 / MBPS_TO_PKTS / duration:.3g} Mbps)")


def _cumulative(rel: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """cum[0] = 0, cum[j+1] = cum[j] + rate[j] (rel[j+1] - rel[j]), summed in order."""
    cum = np.zeros(len(rel))
    np.cumsum(rate[:-1] * (rel[1:] - rel[:-1]), out=cum[1:])
    return cum


def _state_bytes(n_flows: int, n_links: int, queue: int, inflight: int, history: int, features: int) -> int:
    """Bytes of state one sub-env holds (rings, link queues, observation history, plot)."""
    return (16 * n_flows * inflight + 8 * n_links * queue + 4 * n_flows * history * features
            + 8 * (3 * n_flows + 1) * PLOT_LENGTH + 8192)


# ---------------------------------------------------------------------------- builders
def build_config(*, action: str = "continuous", n_flows: int = 1, n_links: int = 1,
                 bandwidth: object = (100.0, 500.0), delay: object = (0.05, 0.5),
                 queue: object = (2, 3000), loss: object = (0.0, 0.05),
                 start_rate: object = (0.3, 1.5), min_rate: float = 40.0, max_rate: float = 1000.0,
                 delta_scale: object = _UNSET, rate_changes: object = DISCRETE_RATE_CHANGES,
                 history: int = 10, features: object = AURORA_FEATURES, first_mi: object = _UNSET,
                 mi_rtts: float = 0.5, mi_limits: object = (0.01, 10.0), max_steps: int = 400,
                 max_inflight: int = 8192, throughput: str = "absolute", reward_scale: float = 1.0,
                 aurora_compatible: bool = False,
                 traces: object = None, trace_format: str = "auto", trace_bin_ms: float = 500.0,
                 link_set: str | None = None, link_set_size: int | None = None,
                 split_seed: int = 0, test_fraction: float = 0.2) -> CCConfig:
    """Validate congestion-control kwargs into a :class:`CCConfig` (``ValueError`` on bad input)."""
    action = choice("action", action, CHOICES["action"])
    aurora = boolean("aurora_compatible", aurora_compatible)
    if aurora:
        fixed = [k for k, v in (("delta_scale", delta_scale), ("first_mi", first_mi)) if v is not _UNSET]
        if fixed:
            raise ValueError(f"aurora_compatible=True fixes {', '.join(fixed)}; "
                             "pass aurora_compatible=False to change them")
        if action != "continuous":
            raise ValueError("aurora_compatible=True needs action='continuous' (Aurora's action is a "
                             "real-valued rate change)")
        delta_scale, first_mi = AURORA["delta_scale"], AURORA["first_mi"]
    delta_scale = 0.05 if delta_scale is _UNSET else delta_scale
    first_mi = 3.0 if first_mi is _UNSET else first_mi

    n_flows = integer("n_flows", n_flows, 1, MAX_FLOWS)
    n_links = integer("n_links", n_links, 1, MAX_LINKS)
    bw = number_pair("bandwidth", bandwidth, *BANDWIDTH_RANGE)
    dl = number_pair("delay", delay, 0.0, DELAY_MAX, lo_open=True)
    q = number_pair("queue", queue, 1, QUEUE_MAX, integral=True)
    ls = number_pair("loss", loss, 0.0, 1.0)
    if ls[1] >= 1.0:
        raise ValueError(f"loss must lie in [0, 1) (a link that loses every packet carries nothing), got {loss!r}")
    start = number_pair("start_rate", start_rate, 0.0, START_RATE_MAX, lo_open=True)
    min_rate = number("min_rate", min_rate, *RATE_RANGE)
    max_rate = number("max_rate", max_rate, *RATE_RANGE)
    if min_rate > max_rate:
        raise ValueError(f"min_rate {min_rate} > max_rate {max_rate}")
    delta_scale = number("delta_scale", delta_scale, 0.0, DELTA_SCALE_MAX, lo_open=True)
    rate_changes = _rate_changes(rate_changes)
    history = integer("history", history, 1, HISTORY_MAX)
    features = _features(features)
    first_mi = number("first_mi", first_mi, 0.0, MI_FACTOR_MAX, lo_open=True)
    mi_rtts = number("mi_rtts", mi_rtts, 0.0, MI_FACTOR_MAX, lo_open=True)
    mi_limits = number_pair("mi_limits", mi_limits, *MI_RANGE)
    max_steps = integer("max_steps", max_steps, 1, MAX_STEPS_MAX)
    max_inflight = integer("max_inflight", max_inflight, 1, INFLIGHT_MAX)
    throughput = choice("throughput", throughput, CHOICES["throughput"])
    reward_scale = number("reward_scale", reward_scale, 0.0, REWARD_SCALE_MAX, lo_open=True)
    link_set = choice("link_set", link_set, CHOICES["link_set"])
    split_seed = integer("split_seed", split_seed, 0, INT64_MAX)
    test_fraction = number("test_fraction", test_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    trace_format = choice("trace_format", trace_format, CHOICES["trace_format"])
    bin_ms = number("trace_bin_ms", trace_bin_ms, *BIN_MS_RANGE)
    sends = n_flows * mi_limits[1] * max_rate
    if sends > MAX_SENDS_PER_MI:
        raise ValueError(f"n_flows x mi_limits[1] x max_rate = {n_flows} x {mi_limits[1]:g} s x {max_rate:g} "
                         f"packets/s = {sends:.3g} sends per monitor interval exceeds the limit of "
                         f"{MAX_SENDS_PER_MI:.0e}: lower max_rate or mi_limits[1]")
    size = _state_bytes(n_flows, n_links, q[1], max_inflight, history, len(features))
    if size > MAX_STATE_BYTES:
        raise ValueError(f"this configuration needs {size / 2**20:.0f} MiB of state per sub-env (n_flows x "
                         f"max_inflight x 16 bytes of in-flight packets, n_links x queue[1] x 8 bytes of link "
                         f"queues), more than the {MAX_STATE_BYTES // 2**20} MiB limit: lower max_inflight "
                         "or queue")

    loaded = _load(traces, trace_format, bin_ms)
    choices = _trace_split(len(loaded), link_set, split_seed, test_fraction)
    trace_table = _trace_table(loaded, choices) if loaded else None
    links = None
    if link_set is not None:
        set_size = DEFAULT_SET_SIZE[link_set] if link_set_size is None else \
            integer("link_set_size", link_set_size, 1, LINK_SET_MAX)
        links = _link_table(link_set, set_size, split_seed, n_links, bw, dl, q, ls, trace_table)
    elif link_set_size is not None:
        raise ValueError("link_set_size needs link_set='train' or 'test'")

    return CCConfig(
        action=action, n_flows=n_flows, n_links=n_links, bandwidth=bw, delay=dl, queue=q, loss=ls,
        start_rate=start, min_rate=min_rate, max_rate=max_rate, delta_scale=delta_scale,
        rate_changes=rate_changes, history=history, features=features, first_mi=first_mi,
        mi_rtts=mi_rtts, mi_limits=mi_limits, max_steps=max_steps, max_inflight=max_inflight,
        throughput=throughput, reward_scale=reward_scale, aurora_compatible=aurora, traces=loaded,
        link_set=link_set, split_seed=split_seed, links=links, trace_table=trace_table,
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
    rel, rate, cum, start, length, duration, packets = [], [], [], [], [], [], []
    offset = 0
    for tr in traces:
        t = tr.time_s - tr.time_s[0]  # BandwidthTrace guarantees data over a positive duration
        r = tr.mbps * MBPS_TO_PKTS
        c = _cumulative(t, r)
        rel.append(t)
        rate.append(r)
        cum.append(c)
        start.append(offset)
        length.append(len(t))
        duration.append(float(t[-1]))
        packets.append(float(c[-1]))
        offset += len(t)
    f8 = lambda parts: np.ascontiguousarray(np.concatenate(parts), dtype=np.float64)  # noqa: E731
    return TraceTable(rel=f8(rel), rate=f8(rate), cum=f8(cum),
                      start=np.asarray(start, dtype=np.int64), length=np.asarray(length, dtype=np.int64),
                      duration=np.asarray(duration, dtype=np.float64),
                      packets=np.asarray(packets, dtype=np.float64), choices=choices)


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
        "delta_scale": cfg.delta_scale, "action_bound": cfg.action_bound,
        "min_rate": cfg.min_rate, "max_rate": cfg.max_rate,
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
           "tr_rel": f8, "tr_rate": f8, "tr_cum": f8, "tr_start": i8, "tr_length": i8, "tr_duration": f8,
           "tr_packets": f8, "tr_choices": i8, "set_bandwidth": np.zeros((0, cfg.n_links)),
           "set_delay": np.zeros((0, cfg.n_links)), "set_loss": np.zeros((0, cfg.n_links)),
           "set_queue": np.zeros((0, cfg.n_links), dtype=np.int64), "set_trace": i8, "set_offset": f8}
    if tt is not None:
        out.update(tr_rel=tt.rel, tr_rate=tt.rate, tr_cum=tt.cum, tr_start=tt.start, tr_length=tt.length,
                   tr_duration=tt.duration, tr_packets=tt.packets, tr_choices=tt.choices)
    if lt is not None:
        out.update(set_bandwidth=np.ascontiguousarray(lt.bandwidth), set_delay=np.ascontiguousarray(lt.delay),
                   set_loss=np.ascontiguousarray(lt.loss), set_queue=np.ascontiguousarray(lt.queue),
                   set_trace=lt.trace, set_offset=lt.offset)
    return out


PLOT_LENGTH = 128  # monitor intervals kept for rendering
