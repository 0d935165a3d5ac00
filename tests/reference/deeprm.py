"""Pure-Python reference model of the DeepRM cluster (``sysgym.envs.deeprm``), for tests only.

Written from the dynamics specification in the docstring of :mod:`sysgym.envs.deeprm` (Mao et
al., HotNets'16; de Freitas Cunha & Chaimowicz, BRACIS'21), independently of the Cython kernel:
plain lists, ints and floats, one sub-environment, numpy only to assemble the observation. Slow
on purpose; the equivalence tests in tests/deeprm/test_reference.py hold the kernel to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sysgym.envs.deeprm import DeepRMConfig, bimodal_ranges
from sysgym.envs.seeding import rng_state as seed_state

from .rng import Rng

METRICS = ("mean_slowdown", "mean_bounded_slowdown", "mean_wait", "utilisation", "makespan",
           "jobs_finished", "jobs_left", "jobs_dropped", "invalid_actions", "episode_time",
           "mean_slowdown_all")


@dataclass(eq=False)
class Job:
    """One job; the four ``at_submit`` numbers are what the compact observation shows of it."""

    length: int
    size: list[int]
    submit: int
    queue_at_submit: int = 0
    work_at_submit: int = 0
    free_at_submit: int = 0
    remaining_at_submit: int = 0
    start: int = -1

    @property
    def end(self) -> int:
        return self.start + self.length


class Transition(NamedTuple):
    """What one ``step`` returns (unpacks like a tuple)."""

    obs: np.ndarray
    reward_components: list[float]
    terminated: bool
    truncated: bool
    action_mask: np.ndarray
    elapsed: int
    metrics: dict[str, float] | None


@dataclass
class Finished:
    """What the episode metrics need of the jobs that finished, in finish order."""

    slowdowns: list[float] = field(default_factory=list)
    bounded_slowdowns: list[float] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    last_end: int = 0


class ReferenceDeepRM:
    """One DeepRM cluster following the specification step by step.

    Args:
        config: a validated config from ``sysgym.envs.deeprm.build_config``.
        rng_state: the sub-env's 4-word xoshiro256** state (``sysgym.envs.seeding.rng_state(seed)``);
            the stream continues across ``reset`` calls, as the kernel's does.
    """

    def __init__(self, config: DeepRMConfig, rng_state: np.ndarray):
        self.cfg = config
        self.rng = Rng(rng_state)
        ranges = bimodal_ranges(config.max_job_length, config.max_job_size)
        self.small_length = ranges["small_length"]
        self.large_length = ranges["large_length"]
        self.dominant_size = ranges["dominant_size"]
        self.other_size = ranges["other_size"]
        self.episode_over = True

    # ------------------------------------------------------------------ episode start
    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        """Start an episode; returns (obs, action_mask). ``info["elapsed"]`` after a reset is 0."""
        cfg = self.cfg
        self.now = 0
        # used[r][k] is the usage of resource r at time now + k, k in [0, H + d)
        self.used = [[0] * cfg.timeline for _ in cfg.capacity]
        self.queue: list[Job] = []
        self.allocated: list[Job] = []
        self.last_arrival = 0
        self.busy = 0
        self.finished = Finished()
        self.dropped = 0
        self.invalid = 0
        self.terminated = False
        self.truncated = False
        self.episode_over = False
        if cfg.trace is not None:
            n = len(cfg.trace)
            if cfg.trace_start == "random":
                start = self.rng.integers(0, n - 1)
            elif cfg.trace_start == "first":
                start = 0
            else:
                start = int(cfg.trace_start)
            self.trace_next = start
            self.trace_base = int(cfg.trace.submit[start])
            limit = self.trace_base + cfg.episode_length
            self.trace_stop = start
            while self.trace_stop < n and int(cfg.trace.submit[self.trace_stop]) < limit:
                self.trace_stop += 1
        self._arrivals()
        self.components = [0.0, 0.0, 0.0]
        self.elapsed = 0
        if cfg.transitions == "sparse":
            # no reward is returned for these job-free steps; the skip stops one step before the
            # latest time the episode can reach, so that the first step can end it
            last = cfg.time_limit if cfg.protocol == "drain" else min(cfg.time_limit, cfg.episode_length)
            while not self.terminated and self.now + 1 < last and not any(self.action_mask()[:-1]):
                self._tick()
        return self.observation(), self.action_mask()

    # ------------------------------------------------------------------ one decision
    def step(self, action: int) -> Transition:
        """Apply ``action`` (window slot 0..W-1, or W = void) as the spec's Step(action) says."""
        if self.episode_over:
            raise RuntimeError("reset() first")
        cfg = self.cfg
        if not 0 <= action <= cfg.window:
            raise ValueError(f"action {action} out of range")
        self.components = [0.0, 0.0, 0.0]
        self.elapsed = 0
        job = self.queue[action] if action < min(cfg.window, len(self.queue)) else None
        start = self._fit(job) if job is not None else None
        if start is not None:
            self._allocate(action, start)
        else:
            if action != cfg.window:
                self.invalid += 1
            self._tick()
        if cfg.transitions == "sparse":
            self._skip_until_decision()
        metrics = None
        if self.terminated or self.truncated:
            self.episode_over = True
            metrics = self.metrics()
        return Transition(self.observation(), self.components, self.terminated, self.truncated,
                          self.action_mask(), self.elapsed, metrics)

    def set_future_input(self, trace: int, offset: int) -> None:
        """Replace the arrivals after ``now`` (spec: "Future input"); everything else is kept.

        SWF: the episode stream starting at trace job ``trace``, ``offset`` of its steps elapsed;
        generator: the arrivals are drawn from the stream ``reset(seed=trace)`` would start.
        """
        cfg = self.cfg
        if cfg.trace is None:
            assert offset == 0
            self.rng = Rng(seed_state(trace))
            return
        submit = [int(x) for x in cfg.trace.submit]
        first = submit[trace]
        self.trace_stop = trace
        while self.trace_stop < len(submit) and submit[self.trace_stop] < first + cfg.episode_length:
            self.trace_stop += 1
        self.trace_next = trace
        while self.trace_next < self.trace_stop and submit[self.trace_next] - first <= offset:
            self.trace_next += 1  # at or before the offset: in the new stream's past
        # the new stream's job at step k after its start arrives at now + (k - offset)
        self.trace_base = first + offset - self.now

    def _tick(self) -> None:
        """Advance one time step; add gamma^k c_k to the decision's components, k = steps so far."""
        step_components = self._advance()
        discount = self.cfg.smdp_gamma ** self.elapsed
        self.components = [total + discount * c for total, c in zip(self.components, step_components)]
        self.elapsed += 1
        self._check_end()

    def _skip_until_decision(self) -> None:
        """Sparse mode: time advances by itself while the episode goes on and no window job fits."""
        while not (self.terminated or self.truncated) and not any(self.action_mask()[:-1]):
            self._tick()

    # ------------------------------------------------------------------ dynamics
    def _fits_at(self, job: Job, offset: int) -> bool:
        return all(self.used[r][offset + k] + job.size[r] <= cap
                   for r, cap in enumerate(self.cfg.capacity) for k in range(job.length))

    def _fit(self, job: Job) -> int | None:
        """The start time the job would get now, or None if it does not fit."""
        if self.cfg.allocation == "now":
            ok = all(self.used[r][0] + job.size[r] <= cap for r, cap in enumerate(self.cfg.capacity))
            return self.now if ok else None
        for offset in range(self.cfg.horizon):
            if self._fits_at(job, offset):
                return self.now + offset
        return None

    def _allocate(self, slot: int, start: int) -> None:
        job = self.queue.pop(slot)
        job.start = start
        for r, cap in enumerate(self.cfg.capacity):
            for t in range(start, job.end):
                self.used[r][t - self.now] += job.size[r]
                assert self.used[r][t - self.now] <= cap, "an allocation overcommitted the cluster"
        self.allocated.append(job)

    def _advance(self) -> list[float]:
        """One time step (spec items 1-4); returns the step's reward components."""
        cfg = self.cfg
        # 1. charge every job in the system during [now, now + 1)
        window, backlog = self.queue[:cfg.window], self.queue[cfg.window:]
        components = [-sum(1.0 / j.length for j in group) / cfg.reward_divisor
                      for group in (self.allocated, window, backlog)]
        # 2. the clock moves
        self.busy += self.used[0][0]
        for profile in self.used:
            profile.pop(0)
            profile.append(0)
        self.now += 1
        # 3. jobs that end by the new now finish
        still = []
        for job in self.allocated:
            if job.end <= self.now:
                self.finished.slowdowns.append((job.end - job.submit) / job.length)
                bounded = max((job.end - job.submit) / max(job.length, 10), 1.0)
                self.finished.bounded_slowdowns.append(bounded)
                self.finished.waits.append(job.start - job.submit)
                self.finished.last_end = max(self.finished.last_end, job.end)
            else:
                still.append(job)
        self.allocated = still
        # 4. arrivals at the new now
        self._arrivals()
        return components

    def _arrivals(self) -> None:
        """Submit the jobs arriving at ``now`` (generator draw, or trace replay)."""
        cfg = self.cfg
        if cfg.trace is None:
            if self.now < cfg.episode_length:
                job = self._draw_job()
                if job is not None:
                    self._submit(job)
            return
        tr = cfg.trace
        while self.trace_next < self.trace_stop:
            i = self.trace_next
            if int(tr.submit[i]) - self.trace_base != self.now:
                break
            self._submit(Job(length=int(tr.length[i]), size=[int(tr.size[i][0])], submit=self.now))
            self.trace_next += 1

    def _draw_job(self) -> Job | None:
        rng, cfg = self.rng, self.cfg
        if not rng.uniform() < cfg.new_job_rate:
            return None
        lo, hi = self.small_length if rng.uniform() < cfg.small_job_chance else self.large_length
        length = rng.integers(lo, hi)
        num_resources = len(cfg.capacity)
        dominant = rng.integers(0, num_resources - 1) if num_resources > 1 else 0
        size = [rng.integers(*(self.dominant_size if r == dominant else self.other_size))
                for r in range(num_resources)]
        return Job(length=length, size=size, submit=self.now)

    def _submit(self, job: Job) -> None:
        cfg = self.cfg
        job.queue_at_submit = len(self.queue)
        job.work_at_submit = sum(j.length * j.size[0] for j in self.queue)
        job.free_at_submit = cfg.capacity[0] - self.used[0][0]
        job.remaining_at_submit = sum((j.end - max(j.start, self.now)) * j.size[0] for j in self.allocated)
        if len(self.queue) < cfg.window + cfg.backlog:
            self.queue.append(job)
        else:
            self.dropped += 1
        self.last_arrival = self.now

    def _arrivals_over(self) -> bool:
        if self.cfg.trace is None:
            return self.now >= self.cfg.episode_length - 1
        return self.trace_next >= self.trace_stop

    def _check_end(self) -> None:
        if self.cfg.protocol == "bracis":  # a fixed horizon: the episode is T steps long
            self.terminated = self.now >= self.cfg.episode_length
        else:  # "drain": arrivals end, then the cluster empties
            self.terminated = self._arrivals_over() and not self.queue and not self.allocated
        self.truncated = not self.terminated and self.now >= self.cfg.time_limit

    # ------------------------------------------------------------------ outputs
    def action_mask(self) -> np.ndarray:
        mask = np.zeros(self.cfg.window + 1, dtype=np.int8)
        for slot, job in enumerate(self.queue[:self.cfg.window]):
            mask[slot] = self._fit(job) is not None
        mask[self.cfg.window] = 1
        return mask

    def metrics(self) -> dict[str, float]:
        f, cfg = self.finished, self.cfg
        n = len(f.slowdowns)

        def mean(values: list) -> float:
            return sum(values) / n if n else 0.0

        return {
            "mean_slowdown": mean(f.slowdowns),
            "mean_bounded_slowdown": mean(f.bounded_slowdowns),
            "mean_wait": mean(f.waits),
            "utilisation": self.busy / (cfg.capacity[0] * self.now) if self.now else 0.0,
            "makespan": float(f.last_end),
            "jobs_finished": float(n),
            "jobs_left": float(len(self.queue) + len(self.allocated)),
            "jobs_dropped": float(self.dropped),
            "invalid_actions": float(self.invalid),
            "episode_time": float(self.now),
            "mean_slowdown_all": self._mean_slowdown_all(),
        }

    def _mean_slowdown_all(self) -> float:
        """Finished jobs' slowdowns plus what unfinished jobs have reached by now."""
        unfinished = [(self.now - job.submit) / job.length for job in self.allocated + self.queue]
        total = sum(self.finished.slowdowns)
        for value in unfinished:
            total += value
        count = len(self.finished.slowdowns) + len(unfinished)
        return total / count if count else 0.0

    def observation(self) -> np.ndarray:
        return self._image() if self.cfg.observation == "image" else self._compact()

    def _since_arrival(self) -> float:
        return min((self.now - self.last_arrival) / 10.0, 1.0)

    def _compact(self) -> np.ndarray:
        cfg = self.cfg
        d, cap0 = cfg.max_job_length, cfg.capacity[0]

        def squash(work: int) -> float:
            y = work / (cap0 * d)
            return y / (1.0 + y)

        values: list[float] = []
        for r, cap in enumerate(cfg.capacity):
            for t in range(cfg.horizon):
                values += [self.used[r][t] / cap, (cap - self.used[r][t]) / cap]
        window = self.queue[:cfg.window]
        for slot in range(cfg.window):
            if slot >= len(window):
                values += [0.0] * cfg.job_features
                continue
            job = window[slot]
            values += [1.0, min((self.now - job.submit) / cfg.episode_length, 1.0), job.length / d]
            values += [job.size[r] / cap for r, cap in enumerate(cfg.capacity)]
            values += [job.queue_at_submit / (cfg.window + cfg.backlog), squash(job.work_at_submit),
                       job.free_at_submit / cap0, squash(job.remaining_at_submit)]
        in_backlog = len(self.queue[cfg.window:])
        values += [in_backlog / cfg.backlog if cfg.backlog else 0.0, self._since_arrival(),
                   max(cfg.episode_length - 1 - self.now, 0) / cfg.episode_length]
        return np.array(values, dtype=np.float32)

    def _image(self) -> np.ndarray:
        cfg = self.cfg
        h, s = cfg.horizon, cfg.max_job_size
        image = np.zeros((h, cfg.image_width), dtype=np.float32)
        col = 0
        window = self.queue[:cfg.window]
        for r, cap in enumerate(cfg.capacity):
            for t in range(h):
                for c in range(self.used[r][t]):
                    image[t, col + c] = 1.0
            col += cap
            for slot in range(cfg.window):
                if slot < len(window):
                    job = window[slot]
                    for t in range(min(job.length, h)):
                        for c in range(job.size[r]):
                            image[t, col + c] = 1.0
                col += s
        backlog_columns = cfg.backlog_columns
        for i in range(len(self.queue[cfg.window:])):
            image[i // backlog_columns, col + i % backlog_columns] = 1.0
        col += backlog_columns
        image[:, col] = self._since_arrival()
        return image
