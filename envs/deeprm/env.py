"""Gymnasium front ends of the DeepRM kernel: the native vector env and its single-env view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.cluster import N_ACC, ClusterKernel

from .. import snapshot
from ..batched import BatchedKernelEnv, KernelEnv
from ..seeding import rng_state
from ..validate import INT64_MAX, integer
from . import render
from .config import DeepRMConfig, build_config, kernel_config

REWARD_COMPONENTS = ("running", "window", "backlog")
METRIC_NAMES = ("mean_slowdown", "mean_bounded_slowdown", "mean_wait", "utilisation", "makespan",
                "jobs_finished", "jobs_left", "jobs_dropped", "invalid_actions", "episode_time",
                "mean_slowdown_all")
# Columns of the kernel's per-sub-env accumulator array ``acc``.
ACC_SLOWDOWN, ACC_BOUNDED, ACC_WAIT, ACC_FINISHED, ACC_BUSY, ACC_DROPPED, ACC_INVALID, ACC_MAKESPAN = range(N_ACC)
# Largest value a snapshot's accumulators may hold (far below where float64 sums lose integers).
ACC_MAX = 2.0**53
TRACE_STATE = ("trace_ptr", "trace_end", "trace_base", "stream_start")


class DeepRMVectorEnv(BatchedKernelEnv):
    """B DeepRM clusters stepped in one Cython call. Kwargs: see :mod:`sysgym.envs.deeprm`."""

    metric_names = METRIC_NAMES
    reward_components = REWARD_COMPONENTS
    config_builder = staticmethod(build_config)

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        self.config: DeepRMConfig = build_config(**kwargs)
        cfg = self.config
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=cfg.obs_shape, dtype=np.float32)
        self.single_action_space = spaces.Discrete(cfg.window + 1)
        self.void_action = cfg.window
        weights = [1.0, 1.0, 1.0] if cfg.reward_jobs == "all" else [0.0, 1.0, 0.0]
        self.reward_weights = np.array(weights)
        self._trace = self._trace_arrays(cfg)
        self._feature_names: tuple[str, ...] | None = None

        b, n, r = self.num_envs, cfg.job_slots, cfg.num_resources
        scalar = lambda: np.zeros(b, dtype=np.int64)  # noqa: E731
        return {
            "now": scalar(), "head": scalar(), "n_wait": scalar(), "n_run": scalar(), "n_free": scalar(),
            "n_jobs": scalar(), "last_arrival": scalar(), "trace_ptr": scalar(), "trace_end": scalar(),
            "trace_base": scalar(), "stream_start": scalar(), "elapsed": scalar(),
            "acc": np.zeros((b, N_ACC), dtype=np.float64),
            "used": np.zeros((b, r, cfg.timeline), dtype=np.int32),
            "wait": np.zeros((b, cfg.queue_capacity), dtype=np.int32),
            "run": np.zeros((b, cfg.max_allocated_jobs), dtype=np.int32),
            "free": np.zeros((b, n), dtype=np.int32),
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
        # views of the state arrays (never reallocated: set_state copies into them)
        self._info_views = {"time": self._state["now"], "elapsed": self._state["elapsed"]}

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            super().set_state(state)
        finally:
            # The kernel caches what the image shows and the window's fit offsets (see the header of
            # cython_core/cluster.pyx); after the arrays are rewritten it recomputes both from them.
            self._kernel.forget()

    set_state.__doc__ = BatchedKernelEnv.set_state.__doc__

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        if options:
            raise ValueError(f"DeepRM reset takes no options besides reset_mask, got {sorted(options)}")
        self._kernel.reset(mask)

    def _extra_infos(self) -> dict[str, np.ndarray]:
        return self._info_views

    # ------------------------------------------------------------------ future input (CrystalBox)
    def set_future_input(self, trace: int, offset: int, index: int | None = None) -> None:
        """Replace the jobs that arrive after the current clock in sub-env ``index`` (all if None).

        Kept: the clock, the waiting and allocated jobs, the usage profile, the accumulators and
        the current observation. Replaced: every arrival at a later time step.

        * SWF replay: the future stream becomes the episode stream that starts at trace job
          ``trace`` (a job index, as ``trace_start``), with ``offset`` of its steps already elapsed:
          its jobs whose submit step lies in (offset, episode_length) after job ``trace``'s arrive
          ``submit step - offset`` steps from now, in file order; those at or before ``offset``
          count as past. ``set_future_input(*future_input()[i]-as-ints, index=i)`` changes nothing.
        * Generator workload: ``trace`` is a seed; the future arrivals are drawn from the stream a
          ``reset(seed=trace)`` would start (every targeted sub-env gets that same stream), and
          ``offset`` must be 0.

        Raises ``ValueError`` for arguments out of range or a sub-env whose episode has ended.
        """
        with self._guard:
            cfg, s = self.config, self._state
            targets = range(self.num_envs) if index is None else \
                [integer("index (a sub-env)", index, 0, self.num_envs - 1)]
            for i in targets:
                if s["needs_reset"][i]:
                    raise ValueError(f"sub-env {i} has no episode in progress (it ended or was never reset): "
                                     "reset it before replacing its future input")
            if self._trace is None:
                seed = integer("trace (the seed of the future arrivals, generator workload)", trace, 0, INT64_MAX)
                integer("offset (generator workload)", offset, 0, 0)
                state = rng_state(seed)
                for i in targets:
                    s["rng"][i] = state
                return
            tr = self._trace
            start = integer("trace (a job index of the SWF trace)", trace, 0, tr["n_starts"] - 1)
            elapsed = integer("offset (steps of the new stream already elapsed)", offset, 0, cfg.episode_length)
            first = int(tr["submit"][start])
            end = int(tr["window_end"][start])
            pointer = min(max(start, int(np.searchsorted(tr["submit"], first + elapsed, side="right"))), end)
            for i in targets:
                s["trace_ptr"][i] = pointer
                s["trace_end"][i] = end
                s["trace_base"][i] = first + elapsed - int(s["now"][i])
                s["stream_start"][i] = start

    def future_input(self) -> tuple[np.ndarray, np.ndarray]:
        """SWF replay: per sub-env, the trace job its job stream starts at and the stream's offset
        (steps elapsed) at the current clock; passing them to :meth:`set_future_input` changes
        nothing."""
        if self._trace is None:
            raise ValueError("the generator workload has no recorded job stream (its future is the RNG "
                             "stream; set_future_input(seed, 0) replaces it)")
        s = self._state
        starts = s["stream_start"].copy()
        return starts, s["now"] + s["trace_base"] - self._trace["submit"][starts]

    # ------------------------------------------------------------------ snapshots
    def _check_state(self, a: dict[str, np.ndarray]) -> None:
        """Every count, index and value the kernel relies on (see the package docstring)."""
        cfg = self.config
        now = a["now"]
        # protocol "bracis" ends every episode at T, so its clock never passes T
        last = min(cfg.time_limit, cfg.episode_length) if cfg.protocol == "bracis" else cfg.time_limit
        snapshot.check_range(a, "now", 0, last)
        snapshot.check_range(a, "elapsed", 0, cfg.time_limit)
        snapshot.check_range(a, "head", now % cfg.timeline, now % cfg.timeline)
        snapshot.check_range(a, "last_arrival", 0, now)
        snapshot.check_range(a, "n_wait", 0, cfg.queue_capacity)
        snapshot.check_range(a, "n_run", 0, cfg.max_allocated_jobs)
        free_slots = cfg.job_slots - a["n_wait"] - a["n_run"]
        snapshot.check_range(a, "n_free", free_slots, free_slots)
        self._check_accumulators(a)
        waiting, running = self._check_job_slots(a)
        self._check_jobs(a, *waiting, running=False)
        self._check_jobs(a, *running, running=True)
        self._check_profile(a, *running)
        if self._trace is None:
            for key in TRACE_STATE:
                snapshot.check_range(a, key, 0, 0)
        else:
            self._check_stream(a)

    def _check_accumulators(self, a: dict[str, np.ndarray]) -> None:
        snapshot.check_finite(a, "acc")
        acc, now = a["acc"], a["now"].astype(np.float64)
        high = np.full(acc.shape, ACC_MAX)
        high[:, ACC_BUSY] = self.config.capacity[0] * now
        high[:, ACC_MAKESPAN] = now
        snapshot.check_range(a, "acc", 0.0, high)
        counts = acc[:, [ACC_FINISHED, ACC_DROPPED, ACC_INVALID]]
        if np.any(counts != np.floor(counts)):
            raise ValueError("snapshot array 'acc' holds a fractional job or action count")
        arrived = counts[:, 0].astype(np.int64) + counts[:, 1].astype(np.int64) + a["n_wait"] + a["n_run"]
        snapshot.check_range(a, "n_jobs", arrived, arrived)

    def _check_job_slots(self, a: dict[str, np.ndarray]) -> tuple[tuple, tuple]:
        """Every job slot is in exactly one of the wait list, the run list and the free stack.

        Returns (sub-env, slot) index arrays of the waiting and the allocated jobs.
        """
        slots = self.config.job_slots
        count = np.zeros((self.num_envs, slots), dtype=np.int64)
        listed = []
        for key, n in (("wait", a["n_wait"]), ("run", a["n_run"]), ("free", a["n_free"])):
            live = np.arange(a[key].shape[1])[None, :] < n[:, None]
            envs, places = np.nonzero(live)
            ids = a[key][envs, places].astype(np.int64)
            bad = (ids < 0) | (ids >= slots)
            if bad.any():
                k = int(np.argmax(bad))
                raise ValueError(f"snapshot array {key!r}[{envs[k]}, {places[k]}] = {ids[k]} is not a job slot "
                                 f"in [0, {slots - 1}]")
            np.add.at(count, (envs, ids), 1)
            listed.append((envs, ids))
        if np.any(count != 1):
            env, slot = (int(v) for v in np.argwhere(count != 1)[0])
            raise ValueError(f"snapshot: job slot {slot} of sub-env {env} appears {count[env, slot]} times in "
                             "'wait', 'run' and 'free' (each slot must be in exactly one)")
        return listed[0], listed[1]

    def _check_jobs(self, a: dict[str, np.ndarray], envs: np.ndarray, ids: np.ndarray, *, running: bool) -> None:
        cfg = self.config
        what = "an allocated job" if running else "a waiting job"
        now = a["now"][envs]

        def check(key: str, values: np.ndarray, lo: Any, hi: Any) -> None:
            bad = ~((values >= lo) & (values <= hi))
            if bad.any():
                k = np.argwhere(bad)[0]
                lo_k, hi_k = np.broadcast_to(lo, values.shape)[tuple(k)], np.broadcast_to(hi, values.shape)[tuple(k)]
                raise ValueError(f"snapshot array {key!r}[{envs[k[0]]}, {ids[k[0]]}{''.join(f', {i}' for i in k[1:])}]"
                                 f" = {values[tuple(k)]} ({what}) is outside [{lo_k}, {hi_k}]")

        length = a["job_len"][envs, ids].astype(np.int64)
        submit = a["job_submit"][envs, ids]
        start = a["job_start"][envs, ids]
        feat = a["job_feat"][envs, ids]
        check("job_len", length, 1, cfg.max_job_length)
        check("job_size", a["job_size"][envs, ids], 1, cfg.max_job_size)
        check("job_submit", submit, 0, now)
        qcap, cap0 = cfg.queue_capacity, cfg.capacity[0]
        check("job_feat", feat, 0, [qcap - 1, (qcap - 1) * cfg.max_job_length * cfg.max_job_size, cap0,
                                    cap0 * (cfg.timeline - 1)])
        if not running:
            check("job_start", start, -1, -1)
            return
        latest = now + (cfg.horizon - 1 if cfg.allocation == "reserve" else 0)
        check("job_start", start, submit, latest)
        check("job_start", start, now - length + 1, latest)  # not finished: start + length > now

    def _check_profile(self, a: dict[str, np.ndarray], envs: np.ndarray, ids: np.ndarray) -> None:
        """``used`` is exactly what the allocated jobs hold, and within the capacities."""
        cfg = self.config
        steps = cfg.timeline
        now = a["now"][envs]
        start = a["job_start"][envs, ids]
        first = np.maximum(start - now, 0)
        stop = start + a["job_len"][envs, ids] - now
        sizes = a["job_size"][envs, ids].astype(np.int64)
        change = np.zeros((self.num_envs, cfg.num_resources, steps + 1), dtype=np.int64)
        for r in range(cfg.num_resources):
            np.add.at(change[:, r], (envs, first), sizes[:, r])
            np.add.at(change[:, r], (envs, stop), -sizes[:, r])
        expected = np.cumsum(change, axis=2)[:, :, :steps]
        order = (a["head"][:, None] + np.arange(steps)[None, :]) % steps
        used = np.take_along_axis(a["used"], order[:, None, :], axis=2)
        if np.any(used != expected):
            env, r, t = (int(v) for v in np.argwhere(used != expected)[0])
            raise ValueError(f"snapshot array 'used': sub-env {env} resource {r} at now+{t} holds {used[env, r, t]} "
                             f"units, but its allocated jobs hold {expected[env, r, t]}")
        over = expected > np.asarray(cfg.capacity)[None, :, None]
        if over.any():
            env, r, t = (int(v) for v in np.argwhere(over)[0])
            raise ValueError(f"snapshot: sub-env {env}'s allocated jobs hold {expected[env, r, t]} units of resource "
                             f"{r} at now+{t}, more than its capacity {cfg.capacity[r]}")

    def _check_stream(self, a: dict[str, np.ndarray]) -> None:
        """The SWF stream pointers: a start job, its window end, and a read position that agrees
        with the clock (every job before it has arrived, none after it)."""
        tr, now = self._trace, a["now"]
        submit = tr["submit"]
        snapshot.check_range(a, "stream_start", 0, tr["n_starts"] - 1)
        start = a["stream_start"]
        end = tr["window_end"][start]
        snapshot.check_range(a, "trace_end", end, end)
        snapshot.check_range(a, "trace_ptr", start, end)
        snapshot.check_range(a, "trace_base", submit[start] - now, submit[start] + self.config.episode_length)
        pointer, base = a["trace_ptr"], a["trace_base"]
        late = (pointer > start) & (submit[np.maximum(pointer - 1, 0)] - base > now)
        early = (pointer < end) & (submit[np.minimum(pointer, len(submit) - 1)] - base <= now)
        if late.any() or early.any():
            env = int(np.argmax(late | early))
            raise ValueError(f"snapshot array 'trace_ptr'[{env}] = {pointer[env]} disagrees with the clock "
                             f"now = {now[env]}: the job before it has not arrived yet, or the job at it has")

    # ------------------------------------------------------------------ feature names
    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the flattened observation's entries (layouts in :mod:`sysgym.envs.deeprm`)."""
        if self._feature_names is None:
            self._feature_names = image_feature_names(self.config) if self.config.observation == "image" \
                else compact_feature_names(self.config)
        return self._feature_names

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

    def image(self, index: int) -> np.ndarray:
        """The DeepRM image of sub-env ``index`` as float32 (horizon, width), in any observation mode."""
        out = np.zeros((self.config.horizon, self.config.image_width), dtype=np.float32)
        self._kernel.write_image(index, out)
        return out

    def render_frame(self, index: int, mode: str) -> Any:
        s = self._state
        frame = render.DeepRMFrame(
            image=self.image(index), now=int(s["now"][index]), waiting=int(s["n_wait"][index]),
            allocated=int(s["n_run"][index]), finished=int(s["acc"][index, 3]),
            dropped=int(s["acc"][index, 5]), free_now=self.free_resources()[index, :, 0],
            jobs={key: value[index] for key, value in self.window_jobs().items()})
        return render.ansi(frame, self.config) if mode == "ansi" else render.rgb(frame, self.config)


class DeepRMEnv(KernelEnv):
    """DeepRM cluster scheduling (single env). Kwargs: see :mod:`sysgym.envs.deeprm`."""

    vector_class = DeepRMVectorEnv

    @property
    def config(self) -> DeepRMConfig:
        return self._vec.config

    def set_future_input(self, trace: int, offset: int, index: int | None = None) -> None:
        """Replace the jobs arriving after the current clock (see
        :meth:`DeepRMVectorEnv.set_future_input`; ``index`` may only be None or 0)."""
        if index is not None:
            integer("index (a single env has sub-env 0 only)", index, 0, 0)
        self._vec.set_future_input(trace, offset, 0)

    def future_input(self) -> tuple[int, int]:
        """SWF replay: (trace job the job stream starts at, its offset at the current clock)."""
        starts, offsets = self._vec.future_input()
        return int(starts[0]), int(offsets[0])


def compact_feature_names(cfg: DeepRMConfig) -> tuple[str, ...]:
    """Names of the compact observation, in its order (see the package docstring)."""
    names = []
    for r in range(cfg.num_resources):
        for t in range(cfg.horizon):
            names += [f"used[r{r},t+{t}]", f"free[r{r},t+{t}]"]
    for i in range(cfg.window):
        slot = f"slot{i}."
        names += [slot + "present", slot + "waited", slot + "length"]
        names += [f"{slot}size[r{r}]" for r in range(cfg.num_resources)]
        names += [slot + "queue_at_submit", slot + "queued_work_at_submit", slot + "free_at_submit",
                  slot + "remaining_work_at_submit"]
    return tuple(names + ["backlog", "since_last_job", "time_left"])


def image_feature_names(cfg: DeepRMConfig) -> tuple[str, ...]:
    """Names of the image's cells, row by row (the flattened (horizon, width) order)."""
    columns: list[str] = []  # each with a {t} placeholder for the row
    for r in range(cfg.num_resources):
        columns += [f"cluster[r{r}][t{{t}},c{c}]" for c in range(cfg.capacity[r])]
        for i in range(cfg.window):
            columns += [f"slot{i}[r{r}][t{{t}},c{c}]" for c in range(cfg.max_job_size)]
    columns += [f"backlog[t{{t}},c{c}]" for c in range(cfg.backlog_columns)]
    columns.append("since_last_job[t{t}]")
    return tuple(column.format(t=t) for t in range(cfg.horizon) for column in columns)
