"""Native vector env against Gymnasium's SyncVectorEnv of single envs (issue #21).

The contract says both give the same data for the same seeds and actions: rewards included, bit
for bit (they used to differ by ~1e-12 in CC, a batched BLAS product against a one-row dot).
``make_vec(..., vectorization_mode="sync", autoreset_mode=...)`` used to die inside Gymnasium
with a ``TypeError``; it is now a one-line ``ValueError`` naming the working spelling.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401  (registers the IDs)
from sysgym.envs.batched import weighted_sum


@pytest.mark.parametrize("env_id", ["sysgym/CC-v0", "sysgym/CC-Discrete-v0"])
def test_cc_native_and_sync_rewards_are_bit_equal(env_id):
    native = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync")
    native.action_space.seed(0)
    obs_a, _ = native.reset(seed=0)
    obs_b, _ = sync.reset(seed=0)
    differing = 0
    for _ in range(1500):
        actions = native.action_space.sample()
        obs_a, r_a, te_a, tr_a, _ = native.step(actions)
        obs_b, r_b, te_b, tr_b, _ = sync.step(actions)
        assert np.array_equal(obs_a, obs_b) and np.array_equal(te_a, te_b) and np.array_equal(tr_a, tr_b)
        differing += int(np.count_nonzero(r_a != r_b))
    assert differing == 0, f"{differing} rewards differ between the native and the sync vector env"


def test_weighted_sum_adds_left_to_right():
    # 1e16 + 1 rounds back to 1e16 (ulp 2 there), so the order is visible: ((1e16 + 1) - 1e16) + 1 = 1
    comps = np.array([[1e16, 1.0, -1e16, 1.0]] * 3)
    weights = np.ones(4)
    assert weighted_sum(comps, weights).tolist() == [1.0, 1.0, 1.0]
    assert weighted_sum(comps[0], weights) == 1.0


def test_single_env_reward_follows_the_same_order():
    env = gym.make("sysgym/CC-v0")
    env.reset(seed=0)
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert type(reward) is float
        assert reward == weighted_sum(info["reward_components"], env.unwrapped.reward_weights)
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("key, value", [("autoreset_mode", "SameStep"), ("copy", False)])
def test_vector_options_in_sync_mode_are_a_clear_error(mode, key, value):
    with pytest.raises(ValueError, match=rf"{key}= is an option of a vector env.*vector_kwargs"):
        gym.make_vec("sysgym/CC-v0", 2, vectorization_mode=mode, **{key: value})


def test_sync_mode_takes_the_autoreset_mode_through_vector_kwargs():
    env = gym.make_vec("sysgym/CC-v0", 2, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": "SameStep"})
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    env.close()
