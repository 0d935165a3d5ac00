"""Stable-Baselines3 ``VecEnv`` over a sysgym native vector env: SB3 and sb3-contrib's
MaskablePPO step B environments in one kernel call instead of B Python envs.

    import sysgym
    from sb3_contrib import MaskablePPO
    from sysgym.integrations.sb3 import SB3VecEnv

    env = SB3VecEnv("sysgym/DeepRM-CompactSparse-v0", num_envs=16, scenario=3)
    model = MaskablePPO("MlpPolicy", env, n_steps=50, batch_size=64).learn(100_000)

SB3's conventions are kept: episodes reset in the step that ends them, the final observation is
``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` marks truncation; each
ended episode also reports ``info["episode"] = {"r", "l", "t"}`` (what SB3's ``Monitor`` adds, so
``rollout/ep_rew_mean`` is logged without a wrapper) and the env's ``info["episode_metrics"]``.
``action_masks()`` (through ``env_method``) is what MaskablePPO reads. Seeds set with
``seed(s)`` give sub-env ``i`` the seed ``s + i``, as SB3's ``DummyVecEnv`` does.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from sysgym.envs.batched import BatchedKernelEnv


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` adapter; ``env`` is an ID (made with ``num_envs`` and ``kwargs``) or a native
    vector env built with ``autoreset_mode="SameStep"``."""

    def __init__(self, env: str | BatchedKernelEnv, num_envs: int = 8, **kwargs: Any):
        if isinstance(env, str):
            env = gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point",
                               autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        elif kwargs:
            raise ValueError(f"env kwargs {sorted(kwargs)} apply only when env is an ID")
        native = env.unwrapped
        if not isinstance(native, BatchedKernelEnv):
            raise TypeError(f"SB3VecEnv needs a sysgym native vector env (make_vec with vectorization_mode="
                            f"'vector_entry_point'), got {type(native).__name__}")
        if native.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError("SB3 resets episodes in the step that ends them: build the vector env with "
                             f"autoreset_mode='SameStep' (it has {native.autoreset_mode.value!r})")
        self.venv = native
        super().__init__(native.num_envs, native.single_observation_space, native.single_action_space)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._started = time.time()

    def reset(self) -> Any:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options and self._options[0] else None
        if options and any(o != options for o in self._options):
            raise ValueError("SB3VecEnv resets every sub-env with the same options")
        obs, infos = self.venv.reset(seed=seeds, options=options)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        if isinstance(self.action_space, gym.spaces.Discrete):
            actions = np.asarray(actions).reshape(self.num_envs)
        obs, rewards, terminated, truncated, infos = self.venv.step(actions)
        self._returns += rewards
        self._lengths += 1
        done = terminated | truncated
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            info = out[i]
            info["terminal_observation"] = infos["final_obs"][i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            info["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i]),
                               "t": round(time.time() - self._started, 6)}
            final = infos["final_info"]   # Gymnasium's vector layout: dicts of arrays, _-masks
            if "episode_metrics" in final and final["_episode_metrics"][i]:
                info["episode_metrics"] = {k: float(v[i]) for k, v in final["episode_metrics"].items()
                                           if not k.startswith("_")}
            self._returns[i] = 0.0
            self._lengths[i] = 0
        return obs, rewards.astype(np.float32), done, out

    def action_masks(self) -> np.ndarray:
        """(B, n) bool: the valid actions of every sub-env."""
        return self.venv.action_masks()

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> list[np.ndarray]:
        if self.venv.render_mode != "rgb_array":
            raise ValueError("get_images() needs render_mode='rgb_array'")
        return list(self.venv.render())

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        value = getattr(self.venv, attr_name)  # AttributeError when absent, as SB3 expects
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        if len(self._indices(indices)) != self.num_envs:
            raise ValueError("the sub-envs of a native vector env share their attributes: set them all at once")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            masks = self.venv.action_masks()
            return [masks[i] for i in self._indices(indices)]
        raise AttributeError(f"SB3VecEnv supports env_method('action_masks') only, not {method_name!r}; "
                             "call the native vector env (SB3VecEnv.venv) directly")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return [int(i) for i in indices]
