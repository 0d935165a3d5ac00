"""The SB3 example (sysgym.agents.ppo.sb3) runs on a DeepRM variant with a tiny budget."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

import sysgym  # noqa: E402,F401
from sysgym.agents.evaluation import evaluate  # noqa: E402
from sysgym.agents.ppo.sb3 import SB3Policy, train_sb3  # noqa: E402

SHORT = {"episode_length": 20, "time_limit": 60}


def test_maskable_ppo_trains_on_deeprm_through_gymnasium_make():
    model = train_sb3("sysgym/DeepRM-CompactSparse-v0", steps=200, n_envs=2, env_kwargs=SHORT,
                      n_steps=50, batch_size=50)
    assert type(model).__name__ == "MaskablePPO"
    assert model.num_timesteps >= 200
    env = gym.make("sysgym/DeepRM-CompactSparse-v0", **SHORT)
    result = evaluate(SB3Policy(model, deterministic=False), env, episodes=2, seed=0)
    assert all(m["invalid_actions"] == 0 for m in result.metrics)  # masks reached MaskablePPO


def test_plain_ppo_on_an_unmasked_run():
    model = train_sb3("sysgym/DeepRM-Compact-v0", steps=100, n_envs=2, masked=False, env_kwargs=SHORT,
                      n_steps=50, batch_size=50)
    assert type(model).__name__ == "PPO"
    env = gym.make("sysgym/DeepRM-Compact-v0")
    obs, info = env.reset(seed=0)
    action = SB3Policy(model).act(obs, {})
    assert 0 <= int(np.asarray(action)) < env.action_space.n
