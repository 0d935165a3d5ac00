"""CrystalBox's sampling baselines (AAAI 2024, section 6.2): estimate the returns by simulation.

Without a learned predictor, one can estimate Q_c^pi(s, a) by simulating: fork the state, replace
the future input by one drawn from the training inputs ("what if the network behaved like that
trace from now on"), take ``a``, follow pi for the rest of the horizon, and average ``rollouts``
such runs. Everything the controller has seen and done (buffer, history, last bitrate, sender
rate and queue) stays; only the future input changes (``set_future_input(trace, offset_s,
index)`` of the ABR and CC native vector envs).

* :class:`NaiveSampler` draws each future trace uniformly from the pool of training traces.
* :class:`DistributionAwareSampler` clusters the pool (scikit-learn k-means, or a Gaussian
  mixture, on each trace's mean bandwidth and coefficient of variation, standardised), maps the
  state to the nearest cluster from what the controller itself observed — the mean and
  coefficient of variation of its last ``history`` throughput measurements — and draws within
  that cluster. The public CrystalBox code looks up the cluster of the trace the episode really
  plays (an oracle label); here the label comes from the state. A state with fewer than two
  measurements, or whose cluster is empty, falls back to the whole pool.

The start offset into a drawn trace is uniform over that trace's clock (ABR: [loop start, last
timestamp]; CC: [0, duration)). DeepRM replaying an SWF file is input-driven too: its future input
is the job stream, and the naive sampler draws a stream start (a job of the file) and a whole
number of steps of it already elapsed, uniform in [0, episode_length]; the distribution-aware
sampler clusters bandwidth traces and does not apply there. All actions of one state see the same ``rollouts`` draws (common
random numbers), so differences between actions are not sampling noise between draws.
Observed throughput: ABR's ``info["throughput_mbps"]``; CC's ``info["throughput"]`` (delivered
packets/s of the last monitor interval, converted to Mbps with 1500-byte packets) — a lower
bound on the link's bandwidth, since a sender delivers at most what it sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sysgym.envs.validate import integer

from .forking import Forker

METHODS = ("kmeans", "gmm")


def _native(env: Any) -> Any:
    return getattr(env.unwrapped, "batched", env.unwrapped)


class FutureInputs:
    """The pool of future inputs a sampler draws from: traces of an env's table, their offset
    ranges and bandwidth statistics (time-weighted mean and coefficient of variation, Mbps).

    Build it with :meth:`from_env`; ``traces`` (indices into the env's trace table) defaults to
    the env's training inputs: every trace of an ABR env (build it on the training set), the
    training split of a CC env built with ``link_set`` (a ``"test"`` env keeps every trace in its
    table, so the training traces are the ones its split leaves out), or every trace otherwise.
    """

    def __init__(self, traces: np.ndarray, low: np.ndarray, high: np.ndarray, mean_mbps: np.ndarray | None,
                 cv: np.ndarray | None, family: str, whole_offsets: bool = False):
        self.traces = np.asarray(traces, dtype=np.int64)
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.mean_mbps = None if mean_mbps is None else np.asarray(mean_mbps, dtype=np.float64)
        self.cv = None if cv is None else np.asarray(cv, dtype=np.float64)
        self.family = family
        self.whole_offsets = whole_offsets
        if len(self.traces) == 0:
            raise ValueError("the pool of future inputs is empty")

    def __len__(self) -> int:
        return len(self.traces)

    @classmethod
    def from_env(cls, env: Any, traces: Any = None) -> FutureInputs:
        from sysgym.envs.abr import AbrVectorEnv
        from sysgym.envs.cc.env import CCVectorEnv
        from sysgym.envs.deeprm import DeepRMVectorEnv

        base = _native(env)
        cfg = base.config
        if isinstance(base, DeepRMVectorEnv) and cfg.trace is not None:
            index = _indices(np.arange(len(cfg.trace)) if traces is None else traces, len(cfg.trace), "job indices")
            zeros = np.zeros(len(index))
            return cls(index, zeros, zeros + cfg.episode_length, None, None, "deeprm", whole_offsets=True)
        if isinstance(base, AbrVectorEnv):
            family, table = "abr", cfg.traces
            default = np.arange(len(table))
            bounds = [(cfg.loop_start(tr), float(tr.time_s[-1])) for tr in table]
        elif isinstance(base, CCVectorEnv):
            if cfg.trace_table is None:
                raise ValueError("the sampling baselines replace the future trace: make the CC env with "
                                 "traces=... (e.g. traces='synthetic', link_set='train')")
            family, table = "cc", cfg.traces
            choices = np.asarray(cfg.trace_table.choices)
            default = {"train": choices, "test": np.setdiff1d(np.arange(len(table)), choices)}.get(
                cfg.link_set, np.arange(len(table)))
            bounds = [(0.0, float(d)) for d in cfg.trace_table.duration]
        else:
            raise ValueError(f"the sampling baselines need an env whose future input is a trace (ABR or CC, "
                             f"or DeepRM replaying an SWF file), got {type(base).__name__}")
        index = _indices(default if traces is None else traces, len(table), "trace indices")
        stats = np.array([_bandwidth_stats(table[k].time_s, table[k].mbps) for k in index])
        low = np.array([bounds[k][0] for k in index])
        high = np.array([bounds[k][1] for k in index])
        return cls(index, low, high, stats[:, 0], stats[:, 1], family)

    def draw(self, rng: np.random.Generator, candidates: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One (trace, offset) per row, the trace uniform among that row's candidate pool positions."""
        pos = np.array([c[rng.integers(len(c))] for c in candidates], dtype=np.int64)
        if self.whole_offsets:
            offset = rng.integers(self.low[pos].astype(np.int64), self.high[pos].astype(np.int64) + 1)
        else:
            offset = self.low[pos] + rng.random(len(pos)) * (self.high[pos] - self.low[pos])
        return self.traces[pos], offset


def _indices(value: Any, size: int, what: str) -> np.ndarray:
    index = np.asarray(value)
    if index.dtype.kind not in "iu" or index.ndim != 1 or len(index) == 0 or index.min() < 0 or index.max() >= size:
        raise ValueError(f"traces must be a non-empty list of {what} in [0, {size - 1}]")
    return index.astype(np.int64)


def _bandwidth_stats(time_s: np.ndarray, mbps: np.ndarray) -> tuple[float, float]:
    """Time-weighted mean and coefficient of variation (sample i holds until sample i+1)."""
    dt = np.diff(np.asarray(time_s, dtype=np.float64))
    b = np.asarray(mbps, dtype=np.float64)[:-1]
    if dt.sum() <= 0:
        return float(np.mean(mbps)), 0.0
    mean = float(np.sum(b * dt) / dt.sum())
    std = float(np.sqrt(np.sum((b - mean) ** 2 * dt) / dt.sum()))
    return mean, std / mean if mean > 0 else 0.0


def throughput_reader(env: Any) -> Callable[[dict[str, Any]], np.ndarray] | None:
    """A function ``info -> (B,)`` of what each sub-env's controller measured in its last step,
    in Mbps (None when ``env`` is not an ABR or CC env)."""
    from sysgym.envs.abr import AbrVectorEnv
    from sysgym.envs.cc.config import PACKET_BYTES
    from sysgym.envs.cc.env import CCVectorEnv

    base = _native(env)
    if isinstance(base, AbrVectorEnv):
        return lambda info: np.asarray(info["throughput_mbps"], dtype=np.float64)
    if isinstance(base, CCVectorEnv):
        return lambda info: np.asarray(info["throughput"], dtype=np.float64) * PACKET_BYTES * 8 / 1e6
    return None


def history_stats(history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, coefficient of variation, usable) of each row of measured throughputs (NaN = none)."""
    h = np.asarray(history, dtype=np.float64)
    seen = np.isfinite(h)
    count = seen.sum(axis=1)
    usable = count >= 2
    filled = np.where(seen, h, 0.0)
    mean = filled.sum(axis=1) / np.maximum(count, 1)
    var = np.where(seen, (h - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(count, 1)
    cv = np.divide(np.sqrt(var), mean, out=np.zeros_like(mean), where=mean > 0)
    return mean, cv, usable


class NaiveSampler:
    """Future inputs drawn uniformly from the pool; each estimate averages ``rollouts`` runs."""

    name = "naive"

    def __init__(self, inputs: FutureInputs, rollouts: int = 10, seed: int = 0):
        self.inputs = inputs
        self.rollouts = integer("rollouts", rollouts, 1, 100_000)
        self.rng = np.random.default_rng(seed)

    def candidates(self, history: np.ndarray | None, rows: int) -> list[np.ndarray]:
        """Pool positions each row may draw from."""
        return [np.arange(len(self.inputs))] * rows

    def estimate(self, forker: Forker, snapshot: dict[str, Any], policy: Any, firsts: list[np.ndarray],
                 rows: np.ndarray, history: np.ndarray | None) -> np.ndarray:
        """(R, B, C) estimated returns of the R rounds of first actions ``firsts`` for the sub-envs
        flagged in ``rows`` (others: whatever their fork gives; ignore them)."""
        b = len(rows)
        pool = self.candidates(history, b)
        draws = [self.inputs.draw(self.rng, pool) for _ in range(self.rollouts)]
        targets = np.flatnonzero(rows)
        total = None
        for traces, offsets in draws:
            def replace(env: Any, traces: np.ndarray = traces, offsets: np.ndarray = offsets) -> None:
                for i in targets:
                    env.set_future_input(int(traces[i]), offsets[i].item(), index=int(i))

            out = np.stack([forker.returns(snapshot, policy, first, replace) for first in firsts])
            total = out if total is None else total + out
        return total / self.rollouts


class DistributionAwareSampler(NaiveSampler):
    """Draws within the cluster of training traces nearest to the state's observed throughput."""

    name = "distribution-aware"

    def __init__(self, inputs: FutureInputs, k: int = 4, method: str = "kmeans", rollouts: int = 10,
                 seed: int = 0):
        super().__init__(inputs, rollouts, seed)
        k = integer("k", k, 1, 10_000)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        if inputs.mean_mbps is None:
            raise ValueError(f"the distribution-aware sampler clusters bandwidth traces; the future inputs of "
                             f"this env ({inputs.family}) are not bandwidth traces: use the naive sampler")
        points = np.column_stack([inputs.mean_mbps, inputs.cv])
        self._mu = points.mean(axis=0)
        self._sd = np.where(points.std(axis=0) > 0, points.std(axis=0), 1.0)
        scaled = (points - self._mu) / self._sd
        self.k = min(k, len(np.unique(scaled, axis=0)))
        if method == "kmeans":
            from sklearn.cluster import KMeans

            self.model = KMeans(n_clusters=self.k, n_init=10, random_state=seed).fit(scaled)
        else:
            from sklearn.mixture import GaussianMixture

            self.model = GaussianMixture(n_components=self.k, random_state=seed, reg_covar=1e-4).fit(scaled)
        self.labels = np.asarray(self.model.predict(scaled))

    def cluster_of(self, history: np.ndarray) -> np.ndarray:
        """Cluster of each row's observed throughput history; -1 when it has < 2 measurements."""
        mean, cv, usable = history_stats(history)
        out = np.full(len(mean), -1, dtype=np.int64)
        if usable.any():
            scaled = (np.column_stack([mean, cv])[usable] - self._mu) / self._sd
            out[usable] = self.model.predict(scaled)
        return out

    def candidates(self, history: np.ndarray | None, rows: int) -> list[np.ndarray]:
        everything = np.arange(len(self.inputs))
        if history is None:
            return [everything] * rows
        members = {c: np.flatnonzero(self.labels == c) for c in range(self.k)}
        return [members[c] if c >= 0 and len(members[c]) else everything for c in self.cluster_of(history)]
