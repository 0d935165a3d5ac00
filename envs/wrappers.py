"""Wrappers over any sysgym environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .validate import choice


class ActionMaskObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Dict observations ``{observation_key: obs, "action_mask": int8 mask}``.

    The form RLlib's action-masking RLModule (``{"observations", "action_mask"}``, the default key)
    and PettingZoo-style code (``observation_key="observation"``) expect, for any sysgym env with a
    Discrete action space. The mask is the one from ``info["action_mask"]``.
    """

    KEYS = ("observations", "observation", "obs")

    def __init__(self, env: gym.Env, observation_key: str = "observations"):
        gym.utils.RecordConstructorArgs.__init__(self, observation_key=observation_key)
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"ActionMaskObservation needs a Discrete action space, got {env.action_space}")
        self.observation_key = choice("observation_key", observation_key, self.KEYS)
        n = int(env.action_space.n)
        self.observation_space = spaces.Dict({
            self.observation_key: env.observation_space,
            "action_mask": spaces.Box(0, 1, shape=(n,), dtype=np.int8),
        })

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._wrap(obs, info), info

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._wrap(obs, info), reward, terminated, truncated, info

    def _wrap(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        return {self.observation_key: obs, "action_mask": info["action_mask"].copy()}
