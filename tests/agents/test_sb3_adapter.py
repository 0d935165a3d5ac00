"""SB3VecEnv: SB3 and MaskablePPO on the native vector env see exactly what DummyVecEnv shows them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

import gymnasium as gym  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

import sysgym  # noqa: E402, F401
from sysgym.integrations.sb3 import SB3VecEnv  # noqa: E402
from tests.contract import assert_same  # noqa: E402


@pytest.mark.parametrize("env_id, kwargs", [
    ("sysgym/DeepRM-CompactSparse-v0", {"episode_length": 20}),
    ("sysgym/CC-v0", {}),
])
def test_same_data_as_dummy_vec_env(env_id, kwargs):
    n = 3
    ours = SB3VecEnv(env_id, num_envs=n, **kwargs)
    theirs = make_vec_env(env_id, n_envs=n, env_kwargs=kwargs)
    ours.seed(5)
    theirs.seed(5)
    assert_same(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(400):
        if isinstance(ours.action_space, gym.spaces.Discrete):
            masks = np.stack(ours.env_method("action_masks"))
            assert np.array_equal(masks, np.stack(theirs.env_method("action_masks")))
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        else:
            actions = rng.uniform(-1, 1, size=(n, *ours.action_space.shape)).astype(np.float32)
        obs_a, rew_a, done_a, info_a = ours.step(actions)
        obs_b, rew_b, done_b, info_b = theirs.step(actions)
        assert_same(obs_a, obs_b)
        np.testing.assert_allclose(rew_a, rew_b, rtol=1e-6)
        assert_same(done_a, done_b)
        for i in np.flatnonzero(done_a):
            ended += 1
            assert_same(info_a[i]["terminal_observation"], info_b[i]["terminal_observation"])
            assert info_a[i]["TimeLimit.truncated"] == info_b[i].get("TimeLimit.truncated", False)
            assert_same(info_a[i]["episode_metrics"], info_b[i]["episode_metrics"])
    assert ended > 0, "no episode ended: the autoreset path went untested"


def test_maskable_ppo_learns_on_the_adapter_without_invalid_actions():
    from sb3_contrib import MaskablePPO

    env = SB3VecEnv("sysgym/DeepRM-CompactSparse-v0", num_envs=4, episode_length=20)
    model = MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) > 0  # the "episode" infos reached SB3's logger
    env.seed(1)
    obs = env.reset()
    invalid = 0
    for _ in range(200):
        masks = np.stack(env.env_method("action_masks"))
        actions, _ = model.predict(obs, action_masks=masks)
        invalid += int((~masks[np.arange(env.num_envs), actions]).sum())
        obs, _, _, _ = env.step(actions)
    assert invalid == 0


def test_refuses_a_next_step_vector_env_and_foreign_envs():
    vec = gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="SameStep"):
        SB3VecEnv(vec)
    sync = gym.make_vec("sysgym/DeepRM-Compact-v0", num_envs=2, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    with pytest.raises(TypeError, match="native vector env"):
        SB3VecEnv(sync)
