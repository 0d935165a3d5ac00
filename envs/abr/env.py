"""Gymnasium front ends of the ABR kernel: the native vector env and its single-env view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.abr import N_ACC, N_HIST, AbrKernel

from .. import snapshot
from ..batched import BatchedKernelEnv, KernelEnv
from ..seeding import per_env_seeds
from ..validate import integer, number
from . import render
from .config import AbrConfig, build_config

REWARD_COMPONENTS = ("quality", "rebuffer", "smoothness")
METRIC_NAMES = ("qoe_per_chunk", "quality_per_chunk", "rebuffer_per_chunk", "smoothness_per_chunk",
                "rebuffer_time_s", "switches", "mean_bitrate_kbps", "startup_delay_s", "session_time_s",
                "trace_index", "capped_downloads")
INFO_KEYS = {"chunk_index": "chunk", "buffer_s": "buffer", "delay_s": "delay", "rebuffer_s": "rebuffer",
             "sleep_s": "sleep", "chunk_bytes": "nbytes", "throughput_mbps": "throughput",
             "last_level": "last_level", "trace_index": "trace"}
RESET_OPTIONS = ("trace", "trace_index")   # "trace_index": the earlier name, kept as an alias
# Slack on bounds that a step meets up to rounding (the buffer after a sleep, the obs high).
ROUNDING = 1.0 + 1e-9


class AbrVectorEnv(BatchedKernelEnv):
    """B video sessions stepped in one Cython call. Kwargs: see :mod:`sysgym.envs.abr`.

    ``reset(options={"trace": k})`` plays trace ``k`` (an int, or one index per sub-env;
    ``"trace_index"`` is accepted as an alias). With ``trace_order="sequential"`` a seeded reset
    restarts the walk at trace 0 for every seeded sub-env.
    """

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS
    config_builder = staticmethod(build_config)
    _rewind: np.ndarray | None = None     # sub-envs whose sequential walk a seeded reset restarts

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
        # Before the first reset every sub-env sits at a valid position: the start of trace 0.
        return {
            "trace": ints(), "seg": ints(), "chunk": ints(), "counter": ints(),
            "last_level": np.full(b, -1 if cfg.initial_level is None else cfg.initial_level, dtype=np.int64),
            "t": np.full(b, self._bank["tau"][0]), "buffer": floats(), "delay": floats(), "rebuffer": floats(),
            "sleep": floats(),
            "nbytes": floats(), "throughput": floats(),
            "acc": np.zeros((b, N_ACC), dtype=np.float64),
            "hist": np.zeros((b, cfg.num_chunks, N_HIST), dtype=np.float64),
        }

    def _connect(self) -> None:
        self._kernel = AbrKernel(self.config.kernel_config(self.num_envs), self._state, self._bank)
        # views of the state arrays (never reallocated: set_state copies into them)
        self._info_views = {key: self._state[name] for key, name in INFO_KEYS.items()}
        self._draw_traces = np.full(self.num_envs, -1, dtype=np.int64)
        self._draw_traces.flags.writeable = False

    # ------------------------------------------------------------------ reset / step
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None and self.config.trace_order == "sequential":
            self._rewind = np.array([s is not None for s in per_env_seeds(seed, self.num_envs)])
        try:
            return super().reset(seed=seed, options=options)
        finally:
            self._rewind = None

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        forced = self._draw_traces        # -1: every sub-env picks its trace
        if options:
            forced = self._forced_traces(options)
        if self._rewind is not None:
            self._state["counter"][self._rewind & mask.astype(bool)] = 0
        self._kernel.reset(mask, forced)

    def _forced_traces(self, options: dict[str, Any]) -> np.ndarray:
        """The trace per sub-env that ``options`` asks for (-1: the kernel picks), checked."""
        forced = np.full(self.num_envs, -1, dtype=np.int64)
        options = dict(options)
        given = [key for key in RESET_OPTIONS if key in options]
        if len(given) > 1:
            raise ValueError("pass options['trace'] or its alias options['trace_index'], not both")
        if given:
            key = given[0]
            index = np.asarray(options.pop(key))
            if index.dtype.kind not in "iu" or index.ndim > 1 or (index.ndim == 1 and index.shape != (self.num_envs,)):
                raise ValueError(f"options[{key!r}] must be an int or {self.num_envs} ints, got {index!r}")
            if np.any(index < 0) or np.any(index >= self.config.num_traces):
                raise ValueError(f"options[{key!r}] must lie in [0, {self.config.num_traces - 1}], got {index}")
            forced[:] = index
        if options:
            raise ValueError(f"ABR reset takes options 'trace' (alias 'trace_index') and 'reset_mask' only, "
                             f"got {sorted(options)}")
        return forced

    def _extra_infos(self) -> dict[str, np.ndarray]:
        return self._info_views

    # ------------------------------------------------------------------ replacing the future input
    def set_future_input(self, trace: int, offset_s: float, index: int | None = None) -> None:
        """From now on, sub-env ``index`` (every sub-env if None) downloads over trace ``trace``
        starting at time ``offset_s`` on that trace's clock (its own timestamps, as
        :meth:`trace_position` reports them; the offset from its start for traces that start at 0).

        Everything the player has seen and done stays: buffer, chunk counter, last level,
        observation history, accumulated QoE, RNG. So ``set_future_input(*future_input(i), i)``
        changes nothing (the one exception: a trace whose first timestamps repeat has two
        positions at that time, which round a long download's whole-loop skip differently), and
        another trace changes only what happens next (CrystalBox's
        "what if the network behaved like that trace from now on"). The sub-env's episode must be
        in progress. ``offset_s`` lies in [loop start, last timestamp] of the trace (see
        ``loop_clock``); the position is the last segment starting at or before it.
        :meth:`future_input` reads the current (trace, offset_s).
        """
        cfg = self.config
        k = integer("trace", trace, 0, cfg.num_traces - 1)
        tau = cfg.traces[k].time_s
        t = number("offset_s", offset_s, cfg.loop_start(cfg.traces[k]), float(tau[-1]))
        targets = list(range(self.num_envs)) if index is None else [integer("index", index, 0, self.num_envs - 1)]
        segment = min(max(int(np.searchsorted(tau, t, side="right")) - 1, 0), len(tau) - 2)
        with self._guard:
            s = self._state
            idle = [b for b in targets if s["needs_reset"][b]]
            if idle:
                raise ValueError(f"sub-env {idle[0]} has no episode in progress: reset it before "
                                 "replacing its future input")
            for b in targets:
                s["trace"][b] = k
                s["seg"][b] = segment
                s["t"][b] = t

    def future_input(self, index: int = 0) -> tuple[int, float]:
        """(trace, offset_s) of sub-env ``index``: passing them to :meth:`set_future_input` changes nothing."""
        k, _, t = self.trace_position(integer("index", index, 0, self.num_envs - 1))
        return k, t

    # ------------------------------------------------------------------ feature names
    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the flattened (6, history) observation, row by row.

        ``[t]`` is the chunk just downloaded, ``[t-k]`` the one k chunks earlier. Row 4 holds the
        next chunk's size per level; past the levels it is padding (clean) or, in Pensieve's layout,
        the level-0 size of recent chunks (``size0_MB[t-k]``).
        """
        cfg = self.config
        h, levels = cfg.history, cfg.num_levels
        lag = [f"[t-{h - 1 - j}]" if j < h - 1 else "[t]" for j in range(h)]
        names = [f"bitrate_frac{x}" for x in lag] + [f"buffer_10s{x}" for x in lag]
        names += [f"throughput_MBps{x}" for x in lag] + [f"delay_10s{x}" for x in lag]
        for j in range(h):
            if j < levels:
                names.append(f"next_size_MB[{j}]")
            elif cfg.observation == "pensieve":
                names.append(f"size0_MB{lag[j]}")
            else:
                names.append(f"pad[{j}]")
        names += [f"chunks_left_frac{x}" for x in lag]
        return tuple(names)

    # ------------------------------------------------------------------ snapshots
    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Every index, count and time a step relies on, against this configuration's bounds."""
        cfg = self.config
        bank = self._bank
        n_chunks, levels, k_max = cfg.num_chunks, cfg.num_levels, cfg.num_traces
        snapshot.check_range(arrays, "trace", 0, k_max - 1)
        k = arrays["trace"]
        n_seg = bank["first"][k + 1] - bank["first"][k] - 1
        snapshot.check_range(arrays, "seg", 0, n_seg - 1)
        point = bank["first"][k] + arrays["seg"]
        loop_start = np.array([cfg.loop_start(tr) for tr in cfg.traces])[k]
        lo = np.where(arrays["seg"] == 0, np.minimum(bank["tau"][point], loop_start), bank["tau"][point])
        snapshot.check_range(arrays, "t", lo, bank["tau"][point + 1])
        snapshot.check_range(arrays, "counter", 0, k_max)
        snapshot.check_range(arrays, "chunk", 0, n_chunks)
        chunk = arrays["chunk"]
        done = np.flatnonzero((chunk == n_chunks) & (arrays["needs_reset"] == 0))
        if len(done):
            raise ValueError(f"snapshot sub-env {done[0]} has played all {n_chunks} chunks but is not "
                             "waiting for a reset ('needs_reset' is 0)")
        initial = -1 if cfg.initial_level is None else cfg.initial_level
        snapshot.check_range(arrays, "last_level", np.where(chunk == 0, initial, 0),
                             np.where(chunk == 0, initial, levels - 1))

        delay_max = (cfg.max_transfer_s + cfg.rtt_s) * (cfg.noise_range[1] if cfg.noise else 1.0) * ROUNDING
        sleep_max = (cfg.chunk_s + cfg.sleep_step_s + cfg.buffer_cap_s) * ROUNDING   # generous: info only
        buffer_max = cfg.buffer_cap_s * ROUNDING
        snapshot.check_range(arrays, "buffer", 0.0, buffer_max)
        snapshot.check_range(arrays, "delay", 0.0, delay_max)
        snapshot.check_range(arrays, "rebuffer", 0.0, delay_max)
        snapshot.check_range(arrays, "sleep", 0.0, sleep_max)
        snapshot.check_range(arrays, "nbytes", 0.0, float(cfg.sizes.max()))
        snapshot.check_range(arrays, "throughput", 0.0, float(cfg.obs_bounds()[2, 0]) * 8.0)

        # Accumulators: what `chunk` steps can have summed (so the metrics stay finite).
        q = np.abs(np.asarray(cfg.quality))
        c = chunk.astype(np.float64)[:, None]
        per_chunk = np.array([[-q.max(), -cfg.rebuffer_penalty * delay_max, -2 * cfg.smoothness_penalty * q.max(),
                               0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                              [q.max(), 0.0, 0.0, delay_max, 0.0, 1.0, max(cfg.bitrates_kbps),
                               delay_max + sleep_max, 1.0]])
        lo_acc, hi_acc = per_chunk[0] * c * ROUNDING, per_chunk[1] * c * ROUNDING
        hi_acc[:, 4] = np.where(chunk > 0, delay_max, 0.0)     # the startup delay is one chunk's
        snapshot.check_range(arrays, "acc", lo_acc, hi_acc)

        hist = arrays["hist"]
        snapshot.check_finite(arrays, "hist")
        played = np.arange(n_chunks)[None, :] < chunk[:, None]
        level = hist[:, :, 0]
        bad = played & ~((level >= 0) & (level <= levels - 1) & (level == np.floor(level)))
        bad |= played & ~((hist[:, :, 1] >= 0) & (hist[:, :, 1] <= buffer_max))
        bad |= played & ~((hist[:, :, 2] >= 0) & (hist[:, :, 2] <= delay_max))
        bad |= played & ~((hist[:, :, 3] >= 0) & (hist[:, :, 3] <= delay_max))
        if bad.any():
            b, row = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(f"snapshot array 'hist'[{b}, {row}] = {hist[b, row].tolist()} is not a played "
                             f"chunk (level in [0, {levels - 1}], buffer, rebuffer and delay in range)")
        last = np.flatnonzero((chunk > 0) & (level[np.arange(len(chunk)), np.maximum(chunk - 1, 0)]
                                             != arrays["last_level"]))
        if len(last):
            raise ValueError(f"snapshot sub-env {last[0]}: 'last_level' does not match the level of its last "
                             "chunk in 'hist'")

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
        s = self._state
        frame = render.AbrFrame(
            chunk=int(s["chunk"][index]), last_level=int(s["last_level"][index]),
            buffer_s=float(s["buffer"][index]), trace_name=self.trace_name(index), trace=int(s["trace"][index]),
            t=float(s["t"][index]), nbytes=int(s["nbytes"][index]), delay=float(s["delay"][index]),
            rebuffer=float(s["rebuffer"][index]), sleep=float(s["sleep"][index]), qoe=s["acc"][index, :3].copy(),
            history=self.episode_history(index))
        return render.ansi(frame, self.config) if mode == "ansi" else render.rgb(frame, self.config)


class AbrEnv(KernelEnv):
    """ABR video streaming over replayed traces (single env). Kwargs: see :mod:`sysgym.envs.abr`."""

    vector_class = AbrVectorEnv

    @property
    def config(self) -> AbrConfig:
        return self._vec.config

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        vec = self._vec
        if seed is not None and vec.config.trace_order == "sequential":
            vec._rewind = np.ones(1, dtype=bool)
        try:
            return super().reset(seed=seed, options=options)
        finally:
            vec._rewind = None

    def set_future_input(self, trace: int, offset_s: float) -> None:
        """Continue the current episode over trace ``trace`` from time ``offset_s`` on its clock,
        keeping everything the player has seen and done (see :meth:`AbrVectorEnv.set_future_input`)."""
        self._vec.set_future_input(trace, offset_s, 0)

    def future_input(self) -> tuple[int, float]:
        """(trace, offset_s) now: passing them to :meth:`set_future_input` changes nothing."""
        return self._vec.future_input(0)
