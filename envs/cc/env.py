"""Gymnasium front ends of the congestion-control kernel: the native vector env and its single view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.cc import N_FLOW_STATS, N_METRICS, CCKernel

from ..batched import BatchedKernelEnv, KernelEnv
from ..validate import integer
from . import render
from .config import PLOT_LENGTH, CCConfig, build_config, kernel_config, kernel_tables
from .state import check_family_state, family_arrays, future_input_values

REWARD_COMPONENTS = ("throughput", "latency", "loss")
METRIC_NAMES = ("throughput", "latency", "loss_rate", "utilisation", "queueing_delay", "jain_index",
                "duration", "window_limited")
FLOW_STAT_NAMES = ("sending_rate", "throughput", "latency", "loss_rate", "min_rtt", "send_rate")
assert len(METRIC_NAMES) == N_METRICS and len(FLOW_STAT_NAMES) == N_FLOW_STATS


def spaces_for(cfg: CCConfig) -> tuple[spaces.Box, spaces.Space]:
    """One flow's observation and action spaces (shared by the Gymnasium and PettingZoo envs)."""
    low, high = cfg.obs_bounds()
    obs = spaces.Box(low, high, dtype=np.float32)
    if cfg.action == "discrete":
        return obs, spaces.Discrete(len(cfg.rate_changes))
    bound = cfg.action_bound
    return obs, spaces.Box(-bound, bound, shape=(1,), dtype=np.float32)


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
    config_builder = staticmethod(build_config)

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        if kwargs.get("n_flows", 1) != 1:
            raise ValueError("the Gymnasium env has one flow; use sysgym.envs.cc.parallel_env(n_flows=...) "
                             "for several flows sharing a link")
        self.config: CCConfig = build_config(**kwargs)
        self.single_observation_space, self.single_action_space = spaces_for(self.config)
        self.reward_weights = self.config.reward_weights()
        return family_arrays(self.config, self.num_envs)

    def _output_buffers(self) -> dict[str, np.ndarray]:
        out = super()._output_buffers()
        out["obs"][:] = self.config.neutral_obs()  # in the space before the first reset too
        return out

    def _connect(self) -> None:
        s, b = self._state, self.num_envs
        views = dict(s)
        views["obs"] = s["obs"].reshape(b, 1, -1)
        views["reward_components"] = s["reward_components"].reshape(b, 1, -1)
        views["actions"] = s["actions"].reshape(b, 1)
        if "action_mask" in s:
            s["action_mask"][:] = 1  # every rate change is always allowed
        self._kernel = CCKernel(kernel_config(self.config, b), views, kernel_tables(self.config))
        # info views of the state arrays (never reallocated: set_state copies into them)
        self._info_views = {name: s["flow_stats"][:, 0, k] for k, name in enumerate(FLOW_STAT_NAMES)}
        self._info_views.update(mi_duration=s["mi_duration"], time=s["now"])

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        options = dict(options or {})
        index = link_indices(self.config, options.pop("link_index", None), self.num_envs)
        if options:
            raise ValueError(f"CC reset takes the options reset_mask and link_index, got {sorted(options)}")
        self._kernel.reset(mask, index)

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        check_family_state(self.config, arrays)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the observation's entries, oldest monitor interval first:
        ``latency_gradient[t-10]``, ``latency_ratio[t-10]``, ..., ``send_ratio[t-1]``."""
        return self.config.feature_names()

    def set_future_input(self, trace: int, offset_s: float, index: int | None = None) -> None:
        """From now on, link 0 follows trace ``trace`` of the env's trace table (``config.traces``),
        starting ``offset_s`` seconds into it, in sub-env ``index`` (None: every sub-env).

        Everything the sender has seen and done is kept: rates, observation history, RTT
        estimates, packets in flight and queued (their departure times stay as scheduled), the
        episode's statistics. Only the capacity the trace link offers from now on changes.
        ``future_input()`` gives the current (trace, offset_s); setting those back changes nothing.
        """
        trace, offset_s = future_input_values(self.config, trace, offset_s)
        with self._guard:
            rows = self._live_rows(index)
            self._state["trace_id"][rows] = trace
            self._state["trace_pos"][rows] = offset_s

    def future_input(self) -> tuple[np.ndarray, np.ndarray]:
        """Each sub-env's trace and position in it now (seconds), shape (B,) each."""
        if self.config.trace_table is None:
            raise ValueError("future_input needs an env that replays traces (traces=...)")
        return self._state["trace_id"].copy(), self._state["trace_pos"].copy()

    def _live_rows(self, index: int | None) -> np.ndarray:
        rows = np.arange(self.num_envs) if index is None else \
            np.array([integer("index", index, 0, self.num_envs - 1)])
        ended = rows[self._state["needs_reset"][rows].astype(bool)]
        if ended.size:
            raise ValueError(f"sub-env {int(ended[0])} has no running episode (reset it first): its next "
                             "reset draws a new trace")
        return rows

    def _extra_infos(self) -> dict[str, np.ndarray]:
        return self._info_views

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
        return draw_frame(self._state, self._kernel, self.config, index, mode)


def draw_frame(state: dict[str, np.ndarray], kernel: CCKernel, cfg: CCConfig, index: int, mode: str) -> Any:
    """The ``mode`` frame of sub-env ``index`` (also the PettingZoo env's): what it shows, gathered
    from the state arrays and the kernel, then drawn by :mod:`.render`."""
    count = int(state["plot_n"][index])
    order = np.arange(count - min(count, PLOT_LENGTH), count) % PLOT_LENGTH   # recorded intervals, oldest first
    links = range(cfg.n_links)
    frame = render.CCFrame(
        now=float(state["now"][index]), steps=int(state["steps"][index]),
        mi_duration=float(state["mi_duration"][index]),
        bandwidth=tuple(kernel.link_bandwidth(index, k) for k in links),
        queued=tuple(kernel.queue_length(index, k) for k in links), queue=state["queue"][index].copy(),
        delay=state["delay"][index].copy(), loss=state["loss"][index].copy(),
        flow_stats=state["flow_stats"][index].copy(), history=state["plot"][index][:, order, :],
        history_bandwidth=state["plot_bw"][index][order])
    return render.ansi(frame, cfg) if mode == "ansi" else render.rgb(frame, cfg)


class CCEnv(KernelEnv):
    """Congestion control of one flow (Aurora, ICML'19). Kwargs: see :mod:`sysgym.envs.cc`."""

    vector_class = CCVectorEnv

    @property
    def config(self) -> CCConfig:
        return self._vec.config

    def set_future_input(self, trace: int, offset_s: float, index: int | None = None) -> None:
        """From now on, link 0 follows trace ``trace`` from ``offset_s`` seconds into it (see
        :meth:`CCVectorEnv.set_future_input`; ``index`` must be None or 0)."""
        if index is not None:
            integer("index", index, 0, 0)
        self._vec.set_future_input(trace, offset_s)

    def future_input(self) -> tuple[int, float]:
        """The trace link 0 follows and the position in it now (seconds)."""
        trace, pos = self._vec.future_input()
        return int(trace[0]), float(pos[0])

    def sending_rate(self) -> float:
        """The flow's current sending rate (packets/s)."""
        return float(self._vec.sending_rates()[0])

    def bottleneck_bandwidth(self) -> float:
        """Bandwidth of the narrowest link now (packets/s)."""
        return float(self._vec.bottleneck_bandwidth()[0])

    def bottleneck_queue(self) -> int:
        """Packets held now by the narrowest link."""
        return int(self._vec.bottleneck_queue()[0])
