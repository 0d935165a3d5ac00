"""Wrappers over any sysgym environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ActionMaskObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Dict observations ``{"observation": obs, "action_mask": int8 mask}``.

    The form RLlib's action-masking models and PettingZoo-style code expect, for any sysgym env
    with a Discrete action space. The mask is the one from ``info["action_mask"]``.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"ActionMaskObservation needs a Discrete action space, got {env.action_space}")
        n = int(env.action_space.n)
        self.observation_space = spaces.Dict({
            "observation": env.observation_space,
            "action_mask": spaces.Box(0, 1, shape=(n,), dtype=np.int8),
        })

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._wrap(obs, info), info

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._wrap(obs, info), reward, terminated, truncated, info

    @staticmethod
    def _wrap(obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        return {"observation": obs, "action_mask": info["action_mask"].copy()}
