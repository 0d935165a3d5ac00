"""Gymnasium front ends of the DeepRM kernel: the native vector env and its single-env view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.cluster import N_ACC, ClusterKernel

from ..batched import BatchedKernelEnv, KernelEnv
from . import render
from .config import DeepRMConfig, build_config, kernel_config

REWARD_COMPONENTS = ("running", "window", "backlog")
METRIC_NAMES = ("mean_slowdown", "mean_bounded_slowdown", "mean_wait", "utilisation", "makespan",
                "jobs_finished", "jobs_left", "jobs_dropped", "invalid_actions", "episode_time",
                "mean_slowdown_all")


class DeepRMVectorEnv(BatchedKernelEnv):
    """B DeepRM clusters stepped in one Cython call. Kwargs: see :mod:`sysgym.envs.deeprm`."""

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        self.config: DeepRMConfig = build_config(**kwargs)
        cfg = self.config
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=cfg.obs_shape, dtype=np.float32)
        self.single_action_space = spaces.Discrete(cfg.window + 1)
        self.void_action = cfg.window
        weights = [1.0, 1.0, 1.0] if cfg.reward_jobs == "all" else [0.0, 1.0, 0.0]
        self.reward_weights = np.array(weights)
        self._trace = self._trace_arrays(cfg)

        b, n, r = self.num_envs, cfg.max_jobs_per_episode, cfg.num_resources
        scalar = lambda: np.zeros(b, dtype=np.int64)  # noqa: E731
        return {
            "now": scalar(), "head": scalar(), "n_wait": scalar(), "n_run": scalar(), "n_jobs": scalar(),
            "last_arrival": scalar(), "trace_ptr": scalar(), "trace_end": scalar(),
            "trace_base": scalar(), "elapsed": scalar(),
            "acc": np.zeros((b, N_ACC), dtype=np.float64),
            "used": np.zeros((b, r, cfg.timeline), dtype=np.int32),
            "wait": np.zeros((b, cfg.window + cfg.backlog), dtype=np.int32),
            "run": np.zeros((b, cfg.max_allocated_jobs), dtype=np.int32),
            "job_len": np.zeros((b, n), dtype=np.int32),
            "job_size": np.zeros((b, n, r), dtype=np.int32),
            "job_submit": np.zeros((b, n), dtype=np.int64),
            "job_start": np.zeros((b, n), dtype=np.int64),
            "job_feat": np.zeros((b, n, 4), dtype=np.int64),
        }

    @staticmethod
    def _trace_arrays(cfg: DeepRMConfig) -> dict[str, Any] | None:
        if cfg.trace is None:
            return None
        tr = cfg.trace
        window_end = np.searchsorted(tr.submit, tr.submit + cfg.episode_length, side="left")
        if cfg.trace_start == "random":
            fixed = -1
        elif cfg.trace_start == "first":
            fixed = 0
        else:
            fixed = int(cfg.trace_start)
        return {"submit": np.ascontiguousarray(tr.submit, dtype=np.int64),
                "length": np.ascontiguousarray(tr.length, dtype=np.int32),
                "size": np.ascontiguousarray(tr.size, dtype=np.int32),
                "window_end": window_end.astype(np.int64), "n_starts": len(tr), "fixed_start": fixed}

    def _connect(self) -> None:
        self._kernel = ClusterKernel(kernel_config(self.config, self.num_envs), self._state, self._trace)

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        if options:
            raise ValueError(f"DeepRM reset takes no options besides reset_mask, got {sorted(options)}")
        self._kernel.reset(mask)

    def _kernel_step(self, active: np.ndarray) -> None:
        self._kernel.step(active)

    def _extra_infos(self) -> dict[str, np.ndarray]:
        return {"time": self._state["now"], "elapsed": self._state["elapsed"]}

    # ------------------------------------------------------------------ read-only views for agents
    def window_jobs(self) -> dict[str, np.ndarray]:
        """The visible jobs of every sub-env (what heuristics look at).

        Returns arrays with leading shape (B, W): ``present`` (bool), ``length``, ``size``
        (B, W, R), ``age`` (time steps waited), ``fits`` (bool: can be allocated now).
        """
        s, cfg = self._state, self.config
        w = cfg.window
        present = np.arange(w)[None, :] < np.minimum(s["n_wait"], w)[:, None]
        ids = np.where(present, s["wait"][:, :w], 0)
        rows = np.arange(self.num_envs)[:, None]
        return {
            "present": present,
            "length": np.where(present, s["job_len"][rows, ids], 0),
            "size": np.where(present[..., None], s["job_size"][rows, ids], 0),
            "age": np.where(present, s["now"][:, None] - s["job_submit"][rows, ids], 0),
            "fits": s["action_mask"][:, :w].astype(bool),
        }

    def free_resources(self) -> np.ndarray:
        """Free units per resource over the horizon, (B, R, H)."""
        s, cfg = self._state, self.config
        slots = (s["head"][:, None] + np.arange(cfg.horizon)[None, :]) % cfg.timeline
        used = np.take_along_axis(s["used"], slots[:, None, :], axis=2)
        return np.asarray(cfg.capacity)[None, :, None] - used

    def render_frame(self, index: int, mode: str) -> Any:
        if mode == "ansi":
            return render.ansi(self, index)
        return render.rgb(self, index)


class DeepRMEnv(KernelEnv):
    """DeepRM cluster scheduling (single env). Kwargs: see :mod:`sysgym.envs.deeprm`."""

    vector_class = DeepRMVectorEnv

    @property
    def config(self) -> DeepRMConfig:
        return self._vec.config
