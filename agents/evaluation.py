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


def _build_policy(make_policy: Any, env: Any) -> Any:
    """A policy object from an instance, a class or a factory ``env -> policy``."""
    if isinstance(make_policy, type) or not hasattr(make_policy, "act"):
        return make_policy(env)
    return make_policy


def evaluate(make_policy: Any, env: gym.Env, episodes: int, seed: int = 0,
             max_steps: int = 1_000_000) -> EvaluationResult:
    """Run ``episodes`` episodes; episode ``k`` is reset with seed ``seed + k``.

    ``make_policy`` is either a policy object (with ``act``) or a callable ``env -> policy``
    (a heuristic class works). Policies with a ``reset()`` method are reset at the start of each
    episode.
    """
    policy = _build_policy(make_policy, env)
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


def evaluate_batched(make_policy: Any, vec_env: gym.vector.VectorEnv, seed: int = 0,
                     max_steps: int = 1_000_000) -> EvaluationResult:
    """One episode per sub-env of a native vector env, all stepped together (sub-env i: seed + i).

    The policy's ``act(obs, infos)`` must return one action per sub-env. Sub-envs that finished
    keep being stepped (the vector env autoresets them) but only first episodes are recorded.
    """
    policy = _build_policy(make_policy, vec_env)
    n = vec_env.num_envs
    obs, infos = vec_env.reset(seed=seed)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    metrics: list[dict[str, float] | None] = [None] * n
    finished = np.zeros(n, dtype=bool)
    for _ in range(max_steps):
        obs, rewards, terminated, truncated, infos = vec_env.step(policy.act(obs, infos))
        returns += np.where(finished, 0.0, rewards)
        lengths += ~finished
        done = (terminated | truncated) & ~finished
        for i in np.flatnonzero(done):
            ep = infos.get("episode_metrics", {})
            metrics[i] = {k: float(v[i]) for k, v in ep.items() if not k.startswith("_")}
        finished |= done
        if finished.all():
            break
    result = EvaluationResult()
    for i in range(n):
        if finished[i]:
            result.returns.append(float(returns[i]))
            result.lengths.append(int(lengths[i]))
            result.metrics.append(metrics[i] or {})
    return result
