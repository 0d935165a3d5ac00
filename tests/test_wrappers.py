"""The Dict-observation action-mask wrapper on every discrete sysgym env."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sysgym
from sysgym.envs.wrappers import ActionMaskObservation
from tests.contract import sample_action

DISCRETE = [e.id for e in sysgym.ENVIRONMENTS
            if isinstance(gym.make(e.id).action_space, gym.spaces.Discrete)]


@pytest.mark.parametrize("env_id", DISCRETE)
def test_mask_travels_in_the_observation(env_id):
    env = ActionMaskObservation(gym.make(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # check_env always notes that a wrapped env is not the raw one; anything else fails.
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=True)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    for _ in range(50):
        assert env.observation_space.contains(obs)
        assert set(obs) == {"observations", "action_mask"}  # the keys RLlib's masking module reads
        assert np.array_equal(obs["action_mask"], info["action_mask"])
        obs, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            obs, info = env.reset()


def test_refuses_continuous_actions():
    with pytest.raises(TypeError):
        ActionMaskObservation(gym.make("Pendulum-v1"))


def test_observation_key_is_configurable_and_checked():
    env = ActionMaskObservation(gym.make("sysgym/DeepRM-Compact-v0"), observation_key="observation")
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "action_mask"}
    with pytest.raises(ValueError, match="observation_key"):
        ActionMaskObservation(gym.make("sysgym/DeepRM-Compact-v0"), observation_key="obz")
