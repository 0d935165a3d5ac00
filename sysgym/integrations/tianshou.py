"""Tianshou vector env over a sysgym native vector env: Tianshou's ``Collector`` steps B
environments in one kernel call instead of B Python envs behind ``DummyVectorEnv``.

    import sysgym
    from tianshou.data import Collector, VectorReplayBuffer
    from sysgym.integrations.tianshou import TianshouVectorEnv

    envs = TianshouVectorEnv("sysgym/CC-Discrete-v0", num_envs=16)
    collector = Collector(policy, envs, VectorReplayBuffer(20_000, len(envs)))

Tianshou's conventions are kept (those of its ``BaseVectorEnv``): ``len(envs)`` is B, ``reset``
and ``step`` take the sub-env ids they apply to and return the rows of those ids, infos are an
object array of one dict per sub-env (with ``env_id``), ended sub-envs are reset by the caller
(``reset(env_id=...)``: the native env runs in autoreset mode ``Disabled``), and ``seed(s)``
seeds sub-env ``i`` with ``s + i``, resetting them as Tianshou's workers do.

The kernel steps all B sub-envs at once. When ``step`` is given a subset of ids (Tianshou's
``Collector`` leaves out surplus envs near the end of ``collect(n_episode=...)``, and resets every
env before it uses them again), the others are stepped too, on a placeholder action (the first
valid action of a masked env, otherwise its previous action), restarted when they end, and their
results are dropped.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from tianshou.env import BaseVectorEnv

from sysgym.envs.batched import BatchedKernelEnv


class TianshouVectorEnv(BaseVectorEnv):
    """Tianshou ``BaseVectorEnv`` adapter; ``env`` is an ID (made with ``num_envs`` and ``kwargs``)
    or a native vector env built with ``autoreset_mode="Disabled"``."""

    def __init__(self, env: str | BatchedKernelEnv, num_envs: int = 8, **kwargs: Any):
        # BaseVectorEnv.__init__ builds one worker per env; there are none here, only its attributes.
        if isinstance(env, str):
            env = gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point",
                               autoreset_mode=AutoresetMode.DISABLED, **kwargs)
        elif kwargs:
            raise ValueError(f"env kwargs {sorted(kwargs)} apply only when env is an ID")
        native = env.unwrapped
        if not isinstance(native, BatchedKernelEnv):
            raise TypeError(f"TianshouVectorEnv needs a sysgym native vector env (make_vec with "
                            f"vectorization_mode='vector_entry_point'), got {type(native).__name__}")
        if native.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError("Tianshou resets ended envs itself: build the vector env with "
                             f"autoreset_mode='Disabled' (it has {native.autoreset_mode.value!r})")
        self.venv = native
        self.env_num = native.num_envs
        self.wait_num, self.timeout, self.is_async = self.env_num, None, False
        self.waiting_conn, self.waiting_id = [], []
        self.ready_id = list(range(self.env_num))
        self.is_closed = False
        self._spaces = {"action_space": native.single_action_space,
                        "observation_space": native.single_observation_space}
        self._action_spaces = [native.single_action_space] * self.env_num   # Collector samples from these
        self._actions = np.stack([native.single_action_space.sample() for _ in range(self.env_num)])
        self._ended = np.zeros(self.env_num, dtype=bool)
        self._masks: np.ndarray | None = None

    # ------------------------------------------------------------------ attributes
    def get_env_attr(self, key: str, id: Any = None) -> list[Any]:
        ids = self._ids(id)
        if key == "action_space":
            return [self._action_spaces[i] for i in ids]
        value = self._spaces[key] if key in self._spaces else getattr(self.venv, key)
        return [value for _ in ids]

    def set_env_attr(self, key: str, value: Any, id: Any = None) -> None:
        if len(self._ids(id)) != self.env_num:
            raise ValueError("the sub-envs of a native vector env share their attributes: set them all at once")
        setattr(self.venv, key, value)

    # ------------------------------------------------------------------ reset / step
    def reset(self, env_id: Any = None, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        self._assert_is_not_closed()
        ids = self._ids(env_id)
        if len(ids) == self.env_num:
            obs, infos = self.venv.reset(**kwargs)
        else:
            if kwargs.get("seed") is not None:
                raise ValueError("TianshouVectorEnv seeds all sub-envs at once: reset(seed=...) without env_id")
            mask = np.zeros(self.env_num, dtype=bool)
            mask[ids] = True
            obs, infos = self.venv.reset(options={**(kwargs.get("options") or {}), "reset_mask": mask})
        self._ended[ids] = False
        self._keep_masks(infos)
        return obs[ids], np.array([_row(infos, i) for i in ids], dtype=object)

    def step(self, action: Any, id: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._assert_is_not_closed()
        ids = self._ids(id)
        if action is None:
            raise ValueError("action must be given: TianshouVectorEnv is synchronous")
        action = np.asarray(action)
        if len(action) != len(ids):
            raise ValueError(f"got {len(action)} actions for {len(ids)} env ids")
        if len(ids) < self.env_num:
            self._park(np.setdiff1d(np.arange(self.env_num), ids))
        self._actions[ids] = action.reshape(self._actions[ids].shape)
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions.copy())
        self._ended = terminated | truncated
        self._keep_masks(infos)
        rows = np.array([{**_row(infos, i), "env_id": i} for i in ids], dtype=object)
        return obs[ids], rewards[ids], terminated[ids], truncated[ids], rows

    def _park(self, parked: np.ndarray) -> None:
        """Placeholder actions for sub-envs outside this step's ids; restart those that ended."""
        ended = parked[self._ended[parked]]
        if len(ended):
            mask = np.zeros(self.env_num, dtype=bool)
            mask[ended] = True
            _, infos = self.venv.reset(options={"reset_mask": mask})
            self._ended[ended] = False
            self._keep_masks(infos)
        if self._masks is not None:
            self._actions[parked] = self._masks[parked].argmax(axis=1)

    def _keep_masks(self, infos: dict[str, Any]) -> None:
        if "action_mask" in infos:
            self._masks = infos["action_mask"]

    def seed(self, seed: int | list[int] | None = None) -> list[list[int] | None]:
        """Seed sub-env ``i`` with ``seed + i`` (or ``seed[i]``) and reset every sub-env, as
        Tianshou's workers do; the action spaces are seeded the same way."""
        self._assert_is_not_closed()
        seeds = [None] * self.env_num if seed is None else \
            [seed + i for i in range(self.env_num)] if isinstance(seed, (int, np.integer)) else list(seed)
        if len(seeds) != self.env_num:
            raise ValueError(f"got {len(seeds)} seeds for {self.env_num} sub-envs")
        self._action_spaces = [_seeded_copy(self._spaces["action_space"], s) for s in seeds]
        self.reset(seed=seeds if seed is not None else None)
        return [[s] for s in seeds]

    def render(self, **kwargs: Any) -> list[Any]:
        if self.venv.render_mode is None:
            raise ValueError("render() needs the vector env built with render_mode='ansi' or 'rgb_array'")
        return list(self.venv.render())

    def close(self) -> None:
        self._assert_is_not_closed()
        self.venv.close()
        self.is_closed = True

    def _ids(self, id: Any) -> list[int]:
        if id is None:
            return list(range(self.env_num))
        ids = [int(id)] if np.isscalar(id) else [int(i) for i in id]
        if any(not 0 <= i < self.env_num for i in ids):
            raise ValueError(f"env ids must lie in [0, {self.env_num}), got {ids}")
        return ids


def _seeded_copy(space: gym.Space, seed: int | None) -> gym.Space:
    out = copy.deepcopy(space)
    out.seed(seed)
    return out


def _row(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s info from Gymnasium's vector layout (arrays with ``_key`` masks)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        present = infos.get("_" + key)
        if present is not None and not present[i]:
            continue
        out[key] = _row(value, i) if isinstance(value, dict) else value[i]
    return out
