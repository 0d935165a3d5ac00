"""Gymnasium front ends of the ABR kernel: the native vector env and its single-env view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.abr import N_ACC, N_HIST, AbrKernel

from ..batched import BatchedKernelEnv, KernelEnv
from . import render
from .config import AbrConfig, build_config

REWARD_COMPONENTS = ("quality", "rebuffer", "smoothness")
METRIC_NAMES = ("qoe_per_chunk", "quality_per_chunk", "rebuffer_per_chunk", "smoothness_per_chunk",
                "rebuffer_time_s", "switches", "mean_bitrate_kbps", "startup_delay_s", "session_time_s",
                "trace_index")
INFO_KEYS = {"chunk_index": "chunk", "buffer_s": "buffer", "delay_s": "delay", "rebuffer_s": "rebuffer",
             "sleep_s": "sleep", "chunk_bytes": "nbytes", "throughput_mbps": "throughput",
             "last_level": "last_level", "trace_index": "trace"}


class AbrVectorEnv(BatchedKernelEnv):
    """B video sessions stepped in one Cython call. Kwargs: see :mod:`sysgym.envs.abr`.

    ``reset(options={"trace_index": k})`` plays trace ``k`` (an int, or one index per sub-env).
    """

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        self.config: AbrConfig = build_config(**kwargs)
        cfg = self.config
        self.single_observation_space = spaces.Box(np.zeros(cfg.obs_shape, dtype=np.float32), cfg.obs_high(),
                                                   dtype=np.float32)
        self.single_action_space = spaces.Discrete(cfg.num_levels)
        self.reward_weights = np.ones(3)
        self._bank = cfg.trace_bank()
        b = self.num_envs
        ints = lambda: np.zeros(b, dtype=np.int64)  # noqa: E731
        floats = lambda: np.zeros(b, dtype=np.float64)  # noqa: E731
        return {
            "trace": ints(), "seg": ints(), "chunk": ints(), "last_level": ints(), "counter": ints(),
            "t": floats(), "buffer": floats(), "delay": floats(), "rebuffer": floats(), "sleep": floats(),
            "nbytes": floats(), "throughput": floats(),
            "acc": np.zeros((b, N_ACC), dtype=np.float64),
            "hist": np.zeros((b, cfg.num_chunks, N_HIST), dtype=np.float64),
        }

    def _connect(self) -> None:
        self._kernel = AbrKernel(self.config.kernel_config(self.num_envs), self._state, self._bank)
        # views of the state arrays (never reallocated: set_state copies into them)
        self._info_views = {key: self._state[name] for key, name in INFO_KEYS.items()}

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        forced = np.full(self.num_envs, -1, dtype=np.int64)
        options = dict(options or {})
        if "trace_index" in options:
            index = np.asarray(options.pop("trace_index"))
            if index.dtype.kind not in "iu" or index.ndim > 1 or (index.ndim == 1 and index.shape != (self.num_envs,)):
                raise ValueError(f"options['trace_index'] must be an int or {self.num_envs} ints, got {index!r}")
            if np.any(index < 0) or np.any(index >= self.config.num_traces):
                raise ValueError(f"options['trace_index'] must lie in [0, {self.config.num_traces - 1}], got {index}")
            forced[:] = index
        if options:
            raise ValueError(f"ABR reset takes options 'trace_index' and 'reset_mask' only, got {sorted(options)}")
        self._kernel.reset(mask, forced)

    def _kernel_step(self, active: np.ndarray) -> None:
        self._kernel.step(active)

    def _extra_infos(self) -> dict[str, np.ndarray]:
        return self._info_views

    # ------------------------------------------------------------------ read-only views for agents
    def trace_name(self, index: int) -> str:
        """Name of the trace sub-env ``index`` plays."""
        return self.config.traces[int(self._state["trace"][index])].name

    def trace_position(self, index: int) -> tuple[int, int, float]:
        """(trace index, segment, trace time in s) of sub-env ``index`` (planners fork from it)."""
        s = self._state
        return int(s["trace"][index]), int(s["seg"][index]), float(s["t"][index])

    def episode_history(self, index: int) -> dict[str, np.ndarray]:
        """Per-chunk level, buffer (s), counted rebuffer (s) and delay (s) of the current episode."""
        s = self._state
        n = int(s["chunk"][index])
        h = s["hist"][index, :n]
        return {"level": h[:, 0].astype(np.int64), "buffer_s": h[:, 1].copy(),
                "rebuffer_s": h[:, 2].copy(), "delay_s": h[:, 3].copy()}

    def render_frame(self, index: int, mode: str) -> Any:
        if mode == "ansi":
            return render.ansi(self, index)
        return render.rgb(self, index)


class AbrEnv(KernelEnv):
    """ABR video streaming over replayed traces (single env). Kwargs: see :mod:`sysgym.envs.abr`."""

    vector_class = AbrVectorEnv

    @property
    def config(self) -> AbrConfig:
        return self._vec.config
