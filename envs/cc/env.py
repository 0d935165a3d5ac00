"""Gymnasium front ends of the congestion-control kernel: the native vector env and its single view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.cc import (
    N_FLOW_STATS,
    N_FLOW_TOT,
    N_LINK_ACC,
    N_METRICS,
    N_MI_ACC,
    CCKernel,
)

from ..batched import BatchedKernelEnv, KernelEnv
from . import render
from .config import PLOT_LENGTH, CCConfig, build_config, kernel_config, kernel_tables

REWARD_COMPONENTS = ("throughput", "latency", "loss")
METRIC_NAMES = ("throughput", "latency", "loss_rate", "utilisation", "queueing_delay", "jain_index",
                "duration", "window_limited")
FLOW_METRIC_NAMES = ("throughput", "latency", "loss_rate")
FLOW_STAT_NAMES = ("sending_rate", "throughput", "latency", "loss_rate", "min_rtt", "send_rate")
assert len(METRIC_NAMES) == N_METRICS and len(FLOW_STAT_NAMES) == N_FLOW_STATS


def spaces_for(cfg: CCConfig) -> tuple[spaces.Box, spaces.Space]:
    """One flow's observation and action spaces (shared by the Gymnasium and PettingZoo envs)."""
    low, high = cfg.obs_bounds()
    obs = spaces.Box(low, high, dtype=np.float32)
    if cfg.action == "discrete":
        return obs, spaces.Discrete(len(cfg.rate_changes))
    return obs, spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


def family_arrays(cfg: CCConfig, num_envs: int) -> dict[str, np.ndarray]:
    """The kernel's state arrays for ``num_envs`` sub-envs (leading dimension B)."""
    b, n, links = num_envs, cfg.n_flows, cfg.n_links
    f8 = lambda *shape: np.zeros((b, *shape), dtype=np.float64)  # noqa: E731
    i8 = lambda *shape: np.zeros((b, *shape), dtype=np.int64)  # noqa: E731
    return {
        "now": f8(), "mi_start": f8(), "ret_delay": f8(), "base_rtt": f8(), "mi_duration": f8(),
        "mi_bandwidth": f8(), "steps": i8(), "trace_id": i8(), "plot_n": i8(),
        "cursor": i8(2), "origin": f8(2),
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


def link_indices(cfg: CCConfig, value: Any, num_envs: int) -> np.ndarray | None:
    """The ``link_index`` reset option as one link-set entry per sub-env (None: draw them)."""
    if value is None:
        return None
    if cfg.links is None:
        raise ValueError("reset option link_index needs link_set='train' or 'test'")
    index = np.asarray(value)
    if index.dtype.kind not in "iu" or index.ndim > 1 or (index.ndim == 1 and len(index) != num_envs):
        raise ValueError(f"link_index must be an int or {num_envs} ints, got {value!r}")
    if index.min() < 0 or index.max() >= len(cfg.links):
        raise ValueError(f"link_index must lie in [0, {len(cfg.links) - 1}], got {value!r}")
    return np.ascontiguousarray(np.broadcast_to(index, (num_envs,)), dtype=np.int64)


class CCVectorEnv(BatchedKernelEnv):
    """B single-flow congestion-control links stepped in one Cython call.

    Kwargs: see :mod:`sysgym.envs.cc`. ``action="continuous"`` is ``CC-v0``, ``"discrete"``
    is ``CC-Discrete-v0``.
    """

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        if kwargs.get("n_flows", 1) != 1:
            raise ValueError("the Gymnasium env has one flow; use sysgym.envs.cc.parallel_env(n_flows=...) "
                             "for several flows sharing a link")
        self.config: CCConfig = build_config(**kwargs)
        self.single_observation_space, self.single_action_space = spaces_for(self.config)
        self.reward_weights = self.config.reward_weights()
        return family_arrays(self.config, self.num_envs)

    def _connect(self) -> None:
        s, b = self._state, self.num_envs
        views = dict(s)
        views["obs"] = s["obs"].reshape(b, 1, -1)
        views["reward_components"] = s["reward_components"].reshape(b, 1, -1)
        views["actions"] = s["actions"].reshape(b, 1)
        if "action_mask" in s:
            s["action_mask"][:] = 1  # every rate change is always allowed
        self._kernel = CCKernel(kernel_config(self.config, b), views, kernel_tables(self.config))

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        options = dict(options or {})
        index = link_indices(self.config, options.pop("link_index", None), self.num_envs)
        if options:
            raise ValueError(f"CC reset takes the options reset_mask and link_index, got {sorted(options)}")
        self._kernel.reset(mask, index)

    def _kernel_step(self, active: np.ndarray) -> None:
        self._kernel.step(active)

    def _extra_infos(self) -> dict[str, np.ndarray]:
        s = self._state
        out = {name: s["flow_stats"][:, 0, k] for k, name in enumerate(FLOW_STAT_NAMES)}
        out["mi_duration"] = s["mi_duration"]
        out["time"] = s["now"]
        return out

    # ------------------------------------------------------------------ read-only views for agents
    def sending_rates(self) -> np.ndarray:
        """Current sending rate of every sub-env (packets/s), shape (B,)."""
        return self._state["rate"][:, 0].copy()

    def bottleneck_bandwidth(self) -> np.ndarray:
        """Bandwidth of the narrowest link now, packets/s, shape (B,) (what an oracle would know)."""
        return np.array([self._kernel.bottleneck_bandwidth(i) for i in range(self.num_envs)])

    def bottleneck_queue(self) -> np.ndarray:
        """Packets held now (queued or in transmission) by the narrowest link, shape (B,)."""
        return np.array([self._kernel.bottleneck_queue(i) for i in range(self.num_envs)])

    def render_frame(self, index: int, mode: str) -> Any:
        if mode == "ansi":
            return render.ansi(self._state, self._kernel, self.config, index)
        return render.rgb(self._state, self.config, index)


class CCEnv(KernelEnv):
    """Congestion control of one flow (Aurora, ICML'19). Kwargs: see :mod:`sysgym.envs.cc`."""

    vector_class = CCVectorEnv

    @property
    def config(self) -> CCConfig:
        return self._vec.config

    def sending_rate(self) -> float:
        """The flow's current sending rate (packets/s)."""
        return float(self._vec.sending_rates()[0])

    def bottleneck_bandwidth(self) -> float:
        """Bandwidth of the narrowest link now (packets/s)."""
        return float(self._vec.bottleneck_bandwidth()[0])

    def bottleneck_queue(self) -> int:
        """Packets held now by the narrowest link."""
        return int(self._vec.bottleneck_queue()[0])
