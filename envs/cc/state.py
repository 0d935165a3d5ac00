"""The congestion-control kernel's state arrays: their layout, and the checks a snapshot must pass.

Both front ends (the vector env and the PettingZoo env) hold these arrays with a leading sub-env
dimension B and restore snapshots through :func:`check_family_state`, which checks every index,
pointer, count, time and rate the kernel relies on (see "Snapshots" in :mod:`sysgym.envs.cc`),
so that no snapshot can make the kernel read or write outside its arrays, loop longer than its
documented bounds, or produce NaN, infinity or an observation outside the space.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sysgym.cython_core.cc import N_FLOW_STATS, N_FLOW_TOT, N_LINK_ACC, N_METRICS, N_MI_ACC

from .. import snapshot
from ..validate import integer, number
from .config import PLOT_LENGTH, TIME_MAX, CCConfig

FLOW_METRIC_NAMES = ("throughput", "latency", "loss_rate")
# Counts and sums held as float64 stay exact integers / finite below this.
COUNT_MAX = 2.0**53


def family_arrays(cfg: CCConfig, num_envs: int) -> dict[str, np.ndarray]:
    """The kernel's state arrays for ``num_envs`` sub-envs (leading dimension B), initialised to a
    valid state (the lower ends of the ranges), so that a snapshot of a fresh env restores too."""
    b, n, links = num_envs, cfg.n_flows, cfg.n_links
    f8 = lambda *shape: np.zeros((b, *shape), dtype=np.float64)  # noqa: E731
    i8 = lambda *shape: np.zeros((b, *shape), dtype=np.int64)  # noqa: E731
    state = {
        "now": f8(), "mi_start": f8(), "ret_delay": f8(), "base_rtt": f8(), "mi_duration": f8(),
        "mi_bandwidth": f8(), "steps": i8(), "trace_id": i8(), "trace_pos": f8(), "plot_n": i8(),
        "heap": np.zeros((b, n), dtype=np.int32), "ev_time": f8(n),
        "bw": f8(links), "delay": f8(links), "loss": f8(links), "busy": f8(links),
        "queue": i8(links), "lq_head": i8(links), "lq_n": i8(links),
        "lq": f8(links, cfg.queue_capacity), "link_acc": f8(links, N_LINK_ACC),
        "rate": f8(n), "srtt": f8(n), "min_rtt": f8(n),
        "ring_t": f8(n, cfg.max_inflight), "ring_s": f8(n, cfg.max_inflight),
        "ring_head": i8(n), "ring_n": i8(n),
        "mi_acc": f8(n, N_MI_ACC), "flow_tot": f8(n, N_FLOW_TOT), "flow_stats": f8(n, N_FLOW_STATS),
        "flow_metrics": f8(n, len(FLOW_METRIC_NAMES)),
        "plot": f8(n, PLOT_LENGTH, 3), "plot_bw": f8(PLOT_LENGTH),
    }
    state["heap"][:] = np.arange(n, dtype=np.int32)
    state["rate"][:] = cfg.min_rate
    state["bw"][:] = cfg.bandwidth[0]
    if cfg.trace_table is not None:
        state["bw"][:, 0] = 0.0
    state["delay"][:] = cfg.delay[0]
    state["loss"][:] = cfg.loss[0]
    state["queue"][:] = cfg.queue[0]
    state["ret_delay"][:] = _path_delay(state["delay"][0])
    state["base_rtt"][:] = 2.0 * state["ret_delay"]
    return state


def _path_delay(delays: np.ndarray) -> float:
    """sum_k d_k, added in link order as the kernel does."""
    total = 0.0
    for d in delays.tolist():
        total += d
    return total


def check_family_state(cfg: CCConfig, arrays: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` naming the array, index and bound of the first value the kernel
    cannot accept (shapes and dtypes were checked before)."""
    a = arrays
    b = a["now"].shape[0]
    within, col = snapshot.check_range, lambda x: np.asarray(x)[:, None]  # noqa: E731
    # --- clock and counters
    within(a, "steps", 0, cfg.max_steps)
    within(a, "plot_n", 0, 2**62)
    within(a, "now", 0.0, (a["steps"] + 1) * cfg.mi_limits[1] * (1.0 + 1e-9))
    within(a, "mi_start", 0.0, a["now"])
    within(a, "mi_duration", 0.0, cfg.mi_limits[1] * (1.0 + 1e-9))  # end - start, rounded
    snapshot.check_finite(a, "mi_bandwidth")
    within(a, "mi_bandwidth", 0.0, np.inf)
    # --- the path: every value within the ranges the env draws from
    lo_bw, hi_bw = np.full(cfg.n_links, cfg.bandwidth[0]), np.full(cfg.n_links, cfg.bandwidth[1])
    if cfg.trace_table is not None:
        lo_bw[0] = hi_bw[0] = 0.0  # link 0 follows the trace
    within(a, "bw", lo_bw, hi_bw)
    within(a, "delay", cfg.delay[0], cfg.delay[1])
    within(a, "loss", cfg.loss[0], cfg.loss[1])
    within(a, "queue", cfg.queue[0], cfg.queue_capacity)
    for i in range(b):
        total = _path_delay(a["delay"][i])
        if a["ret_delay"][i] != total or a["base_rtt"][i] != 2.0 * total:
            raise ValueError(f"snapshot arrays 'ret_delay'[{i}] / 'base_rtt'[{i}] = {a['ret_delay'][i]!r} / "
                             f"{a['base_rtt'][i]!r} do not match the link delays (sum {total!r})")
    # --- the trace driving link 0
    tt = cfg.trace_table
    if tt is None:
        within(a, "trace_id", 0, 0)
        within(a, "trace_pos", 0.0, 0.0)
    else:
        within(a, "trace_id", 0, len(tt) - 1)
        within(a, "trace_pos", 0.0, tt.duration[a["trace_id"]])
    # --- link queues: ring pointers and counts inside the ring, departure times finite
    within(a, "lq_head", 0, cfg.queue_capacity - 1)
    within(a, "lq_n", 0, a["queue"])
    within(a, "busy", 0.0, TIME_MAX)
    within(a, "lq", 0.0, TIME_MAX)
    within(a, "link_acc", 0.0, COUNT_MAX)
    # --- senders: the event heap, rates, RTT estimates
    order = np.sort(a["heap"], axis=1)
    bad = np.flatnonzero((order != np.arange(cfg.n_flows)).any(axis=1))
    if bad.size:
        raise ValueError(f"snapshot array 'heap'[{int(bad[0])}] = {a['heap'][bad[0]].tolist()} is not a "
                         f"permutation of the flows 0..{cfg.n_flows - 1}")
    within(a, "rate", cfg.min_rate, cfg.max_rate)
    # a flow's next send is not before now (this bounds the sends per interval) and at most one
    # sending gap at the lowest rate after it (it was set by a send at or before now)
    within(a, "ev_time", col(a["now"]), col(a["now"]) + 1.0 / cfg.min_rate)
    _check_heap_order(a["heap"], a["ev_time"])
    within(a, "srtt", 0.0, TIME_MAX)
    within(a, "min_rtt", 0.0, TIME_MAX)
    # --- in-flight packets: ring pointers and counts, notification and send times
    within(a, "ring_head", 0, cfg.max_inflight - 1)
    within(a, "ring_n", 0, cfg.max_inflight)
    within(a, "ring_t", 0.0, TIME_MAX)
    within(a, "ring_s", -1.0, a["ring_t"])  # a send time <= its notification, or -1 for a lost packet
    lost_like = (a["ring_s"] < 0.0) & (a["ring_s"] != -1.0)
    if lost_like.any():
        where = [int(i) for i in np.argwhere(lost_like)[0]]
        raise ValueError(f"snapshot array 'ring_s'{where} = {a['ring_s'][tuple(where)]!r} is neither a send "
                         "time nor -1 (lost)")
    # --- statistics (shown in infos, metrics and renderings): finite, and counts non-negative
    snapshot.check_finite(a, "mi_acc", "flow_stats", "flow_metrics", "plot", "plot_bw")
    within(a, "flow_tot", 0.0, COUNT_MAX)
    for key in ("flow_stats", "flow_metrics", "plot", "plot_bw"):
        within(a, key, 0.0, np.inf)


def _check_heap_order(heap: np.ndarray, key: np.ndarray) -> None:
    """Each row of ``heap`` is a binary min-heap of flows ordered by (send time, flow)."""
    n = heap.shape[1]
    if n < 2:
        return
    children = np.arange(1, n)
    child = heap[:, children].astype(np.int64)
    parent = heap[:, (children - 1) // 2].astype(np.int64)
    t_child, t_parent = np.take_along_axis(key, child, 1), np.take_along_axis(key, parent, 1)
    bad = (t_child < t_parent) | ((t_child == t_parent) & (child < parent))
    if bad.any():
        i, c = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"snapshot array 'heap'[{i}] = {heap[i].tolist()} is not ordered by the send times "
                         f"'ev_time'[{i}] (position {c + 1} comes before its parent {c // 2})")


def check_outputs(arrays: dict[str, np.ndarray], obs_space: Any, discrete_n: int | None) -> None:
    """The PettingZoo env's own output arrays (the vector env's base class checks its own):
    flags, finite rewards and metrics, a live RNG, actions in range and observations in the space."""
    snapshot.check_flags(arrays, "terminated", "truncated")
    snapshot.check_finite(arrays, "reward_components", "metrics")
    if not np.all(arrays["rng"].any(axis=1)):
        raise ValueError("snapshot array 'rng' holds an all-zero xoshiro256** state")
    if discrete_n is not None:
        snapshot.check_range(arrays, "actions", 0, discrete_n - 1)
    else:
        snapshot.check_finite(arrays, "actions")
    snapshot.check_in_space(arrays, "obs", obs_space)
    assert arrays["metrics"].shape[-1] == N_METRICS


def future_input_values(cfg: CCConfig, trace: Any, offset_s: Any) -> tuple[int, float]:
    """Validated ``(trace, offset_s)`` of ``set_future_input``: a trace of the env's table and a
    position in [0, its duration) seconds."""
    tt = cfg.trace_table
    if tt is None:
        raise ValueError("set_future_input needs an env that replays traces (traces=...); this one draws "
                         "constant links")
    trace = integer("trace", trace, 0, len(tt) - 1)
    offset_s = number("offset_s", offset_s, 0.0, float(tt.duration[trace]), hi_open=True)
    return trace, offset_s
