"""Evaluate many episodes at once on a native vector env (one sub-env per episode).

Faster than :func:`sysgym.agents.evaluation.evaluate` when the policy acts on batches (the PPO
policy and the DeepRM heuristics do): sub-env ``k`` plays episode ``k`` and its first episode's
return, length and ``info["episode_metrics"]`` are kept.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from sysgym.agents.evaluation import EvaluationResult


def evaluate_batched(make_policy: Any, env_id: str, episodes: int, seed: int = 0,
                     max_steps: int = 1_000_000, **env_kwargs: Any) -> EvaluationResult:
    """Play ``episodes`` episodes in parallel; ``make_policy`` is a policy, a class or a callable ``vec_env -> policy``.

    Sub-env seeds come from ``reset(seed=seed)`` on the vector env, so the same ``seed`` gives the
    same episodes to every policy compared.
    """
    env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.DISABLED, **env_kwargs)
    try:
        is_factory = isinstance(make_policy, type) or not hasattr(make_policy, "act")
        policy = make_policy(env) if is_factory else make_policy
        if hasattr(policy, "reset"):
            policy.reset()
        obs, info = env.reset(seed=seed)
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        finished = np.zeros(episodes, dtype=bool)
        metrics: list[dict[str, float]] = [{} for _ in range(episodes)]
        for _ in range(max_steps):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
            live = ~finished
            returns[live] += np.asarray(reward)[live]
            lengths[live] += 1
            ended = np.asarray(terminated) | np.asarray(truncated)
            if ended.any():
                em = info.get("episode_metrics", {})
                for i in np.flatnonzero(ended & live):
                    metrics[i] = {k: float(v[i]) for k, v in em.items() if not k.startswith("_")}
                finished |= ended
                if finished.all():
                    break
                # restart ended sub-envs so the batch keeps stepping; only first episodes count
                obs, info = env.reset(options={"reset_mask": ended})
    finally:
        env.close()
    return EvaluationResult(returns=returns.tolist(), lengths=lengths.tolist(), metrics=metrics)
