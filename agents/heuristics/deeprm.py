"""DeepRM scheduling heuristics: random, SJF, Packer, Tetris, FCFS.

Each picks among the window jobs that fit now (the action mask) and takes the void action only
when none fits (work conserving), except FCFS, which never skips the head of the queue. They read
the env's public helpers (``window_jobs()``, ``free_resources()``), so they behave the same on every
observation type, and they work on a single env (returning an int) or on a native vector env
(returning one action per sub-env, computed for the whole batch with numpy).

References: Mao et al., HotNets'16 (SJF, Packer, Tetris* baselines); Grandl et al., "Multi-resource
packing for cluster schedulers", SIGCOMM'14 (Tetris).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.envs.deeprm import DeepRMVectorEnv

from .base import Heuristic, native_env


class DeepRMHeuristic(Heuristic):
    """Scores the fitting window jobs; subclasses implement :meth:`scores` (higher is better)."""

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        super().__init__(env, seed)
        self._env, self._single = native_env(env, DeepRMVectorEnv, type(self).__name__)
        self.void = self._env.void_action

    def scores(self, jobs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        jobs = self._env.window_jobs()
        fits = jobs["fits"]
        scores = np.where(fits, self.scores(jobs), -np.inf)
        actions = np.where(fits.any(axis=1), np.argmax(scores, axis=1), self.void)
        return int(actions[0]) if self._single else actions

    def _capacity(self) -> np.ndarray:
        return np.asarray(self._env.config.capacity, dtype=np.float64)


class RandomScheduler(DeepRMHeuristic):
    """A uniformly random fitting job; ``include_void=True`` also draws the void action.

    Seeded (0 by default) so that benchmark tables repeat; ``seed=None`` draws fresh entropy.
    """

    name = "random"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = 0, include_void: bool = False):
        super().__init__(env, seed)
        self.include_void = include_void
        self.rng = np.random.default_rng(seed)

    def scores(self, jobs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.random(jobs["fits"].shape)

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        if not self.include_void:
            return super().act(obs, info)
        fits = self._env.window_jobs()["fits"]
        choices = np.concatenate([fits, np.ones((len(fits), 1), dtype=bool)], axis=1)
        actions = np.argmax(np.where(choices, self.rng.random(choices.shape), -1.0), axis=1)
        return int(actions[0]) if self._single else actions


class ShortestJobFirst(DeepRMHeuristic):
    """The fitting job with the shortest length (ties: the oldest)."""

    name = "sjf"

    def scores(self, jobs: dict[str, np.ndarray]) -> np.ndarray:
        return -jobs["length"].astype(np.float64)


class Packer(DeepRMHeuristic):
    """The fitting job whose request best aligns with the free resources now (dot product)."""

    name = "packer"

    def scores(self, jobs: dict[str, np.ndarray]) -> np.ndarray:
        free_now = self._env.free_resources()[:, :, 0].astype(np.float64)        # (B, R)
        return np.einsum("bwr,br->bw", jobs["size"].astype(np.float64), free_now)


class Tetris(DeepRMHeuristic):
    """Tetris-style: normalised packing alignment plus ``weight`` x normalised shortest-job score.

    alignment = sum_r (free_r / cap_r)(size_r / cap_r); sjf = 1 / length; both divided by their
    maximum over the fitting jobs, then combined as (1 - weight) * alignment + weight * sjf.
    """

    name = "tetris"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None, weight: float = 0.5):
        super().__init__(env, seed)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        self.weight = weight

    def scores(self, jobs: dict[str, np.ndarray]) -> np.ndarray:
        cap = self._capacity()
        free = self._env.free_resources()[:, :, 0] / cap                          # (B, R)
        align = np.einsum("bwr,br->bw", jobs["size"] / cap, free)
        sjf = np.where(jobs["present"], 1.0 / np.maximum(jobs["length"], 1), 0.0)
        fits = jobs["fits"]
        align = align / np.maximum(np.max(np.where(fits, align, 0.0), axis=1, keepdims=True), 1e-12)
        sjf = sjf / np.maximum(np.max(np.where(fits, sjf, 0.0), axis=1, keepdims=True), 1e-12)
        return (1.0 - self.weight) * align + self.weight * sjf


class FirstComeFirstServed(DeepRMHeuristic):
    """Strict FCFS: the oldest waiting job when it fits, otherwise wait (no backfilling)."""

    name = "fcfs"

    def act(self, obs: Any, info: dict[str, Any]) -> int | np.ndarray:
        head_fits = self._env.window_jobs()["fits"][:, 0]
        actions = np.where(head_fits, 0, self.void)
        return int(actions[0]) if self._single else actions


HEURISTICS: dict[str, type[DeepRMHeuristic]] = {
    "random": RandomScheduler,
    "sjf": ShortestJobFirst,
    "packer": Packer,
    "tetris": Tetris,
    "fcfs": FirstComeFirstServed,
}
