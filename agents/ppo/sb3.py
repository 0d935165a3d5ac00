"""Training a sysgym env with Stable-Baselines3 / sb3-contrib: the runnable example.

sysgym envs need no adapter for SB3: ``gymnasium.make`` gives a standard Gymnasium env and the
env's ``action_masks()`` method is what sb3-contrib's ``MaskablePPO`` looks for. Run::

    python -m sysgym.agents.ppo.sb3 sysgym/DeepRM-CompactSparse-v0 50000

which is equivalent to::

    import gymnasium as gym, sysgym
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.env_util import make_vec_env
    env = make_vec_env("sysgym/DeepRM-CompactSparse-v0", n_envs=8, seed=0)
    model = MaskablePPO("MlpPolicy", env, n_steps=50, batch_size=64, learning_rate=1e-4).learn(50_000)

``tests/agents/test_sb3_example.py`` runs it with a tiny budget when SB3 is installed
(``pip install sysgym[dev]``).
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np

import sysgym  # noqa: F401  (registers the environments)


def train_sb3(env_id: str, steps: int, n_envs: int = 8, seed: int = 0, masked: bool | None = None,
              env_kwargs: dict[str, Any] | None = None, **algo_kwargs: Any):
    """Train SB3 PPO (or MaskablePPO when the env has action masks); returns the SB3 model.

    Hyper-parameters default to BRACIS'21 Table 2 (n_steps 50, batch 64, lr 1e-4, 10 epochs,
    entropy 0.01) and can be overridden with ``algo_kwargs``.
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    if masked is None:
        probe = gym.make(env_id, **(env_kwargs or {}))
        masked = "action_mask" in probe.reset(seed=seed)[1]
        probe.close()
    if masked:
        from sb3_contrib import MaskablePPO as algo
    else:
        algo = PPO
    settings = {"n_steps": 50, "batch_size": 64, "learning_rate": 1e-4, "n_epochs": 10,
                "ent_coef": 0.01, "gae_lambda": 0.95, "gamma": 0.99, "seed": seed, "verbose": 0,
                "device": "cpu", **algo_kwargs}
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    model = algo("MlpPolicy", env, **settings)
    model.learn(total_timesteps=steps)
    return model


class SB3Policy:
    """Wraps an SB3 model in sysgym's ``act(obs, info)`` interface (deterministic by default)."""

    def __init__(self, model: Any, deterministic: bool = True):
        self.model = model
        self.deterministic = deterministic
        # MaskablePPO's predict takes the mask; plain PPO's does not
        self.masked = "action_masks" in inspect.signature(model.predict).parameters

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        kwargs = {}
        if self.masked and "action_mask" in info:
            kwargs["action_masks"] = np.asarray(info["action_mask"], dtype=bool)
        action, _ = self.model.predict(obs, deterministic=self.deterministic, **kwargs)
        return int(action) if np.ndim(action) == 0 else action


def main(argv: list[str] | None = None) -> int:
    """``python -m sysgym.agents.ppo.sb3 [ENV_ID] [STEPS] [--num-envs N] [--seed S] [--threads T]``."""
    import argparse

    from sysgym.envs.registry import registered_id

    parser = argparse.ArgumentParser(
        prog="python -m sysgym.agents.ppo.sb3",
        description="Train SB3 PPO (MaskablePPO where the env has action masks) on a sysgym env "
                    "through gymnasium.make, then evaluate it on 10 seeded episodes.")
    parser.add_argument("env_id", nargs="?", default="sysgym/DeepRM-CompactSparse-v0",
                        help="a registered sysgym ID (`sysgym list`; default %(default)s)")
    parser.add_argument("steps", nargs="?", type=int, default=50_000, help="training steps (default %(default)s)")
    parser.add_argument("--num-envs", type=int, default=8, help="SB3 DummyVecEnv size (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: at MLP sizes more threads only contend)")
    args = parser.parse_args(argv)
    try:
        registered_id(args.env_id, "env_id")
    except ValueError as error:
        parser.error(str(error))
    for label, value in (("steps", args.steps), ("--num-envs", args.num_envs), ("--threads", args.threads)):
        if value < 1:
            parser.error(f"{label} must be at least 1, got {value}")
    import torch  # after parsing: --help and input errors answer at once

    from sysgym.agents.evaluation import evaluate

    torch.set_num_threads(args.threads)
    model = train_sb3(args.env_id, args.steps, n_envs=args.num_envs, seed=args.seed)
    env = gym.make(args.env_id)
    result = evaluate(SB3Policy(model), env, episodes=10, seed=args.seed)
    print(f"{args.env_id}: SB3 {type(model).__name__} after {args.steps} steps: {result.mean()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
