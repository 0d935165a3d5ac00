"""Run any policy with ``act(obs, info)`` for a number of episodes and collect episode metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class EvaluationResult:
    """Per-episode returns, lengths and ``info["episode_metrics"]`` of an evaluation run."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)

    def mean(self) -> dict[str, float]:
        """Mean of the return, length and every episode metric."""
        out = {"return": float(np.mean(self.returns)), "length": float(np.mean(self.lengths))}
        for key in self.metrics[0] if self.metrics else ():
            out[key] = float(np.mean([m[key] for m in self.metrics]))
        return out


def evaluate(make_policy: Any, env: gym.Env, episodes: int, seed: int = 0,
             max_steps: int = 1_000_000) -> EvaluationResult:
    """Run ``episodes`` episodes; episode ``k`` is reset with seed ``seed + k``.

    ``make_policy`` is either a policy object (with ``act``) or a callable ``env -> policy``.
    Policies with a ``reset()`` method are reset at the start of each episode.
    """
    policy = make_policy if hasattr(make_policy, "act") else make_policy(env)
    result = EvaluationResult()
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        if hasattr(policy, "reset"):
            policy.reset()
        total, steps = 0.0, 0
        while True:
            obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
            total += float(reward)
            steps += 1
            if terminated or truncated or steps >= max_steps:
                break
        result.returns.append(total)
        result.lengths.append(steps)
        result.metrics.append(dict(info.get("episode_metrics", {})))
    return result
