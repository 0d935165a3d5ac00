"""`sysgym train`'s default settings per family: which encoder "auto" picks, the family presets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import sysgym  # noqa: F401
from sysgym.agents.ppo import ActorCritic
from sysgym.agents.ppo.config import default_config, is_image


def _convolutions(env_id: str, config) -> int:
    env = gym.make(env_id, **config.env_kwargs)
    try:
        model = ActorCritic(env.observation_space, env.action_space, config)
    finally:
        env.close()
    return sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())


@pytest.mark.parametrize("shape, image", [
    ((20, 114), True),          # DeepRM's image: time x (cluster + job slots)
    ((6, 8), False),            # ABR: six quantities over the last eight chunks
    ((30, 5), False),           # DAG node features
    ((16, 16), True),
    ((15, 64), False),
    ((84, 84, 3), True),        # channels last
    ((3, 84, 84), True),        # channels first
    ((1, 6, 8), False),
    ((123,), False),
])
def test_an_image_has_two_spatial_sides_of_at_least_16(shape, image):
    assert is_image(gym.spaces.Box(0.0, 1.0, shape, np.float32)) is image


def test_abr_defaults_flatten_its_6x8_state_into_an_mlp_with_normalisation():
    config = default_config("sysgym/ABR-v0")
    assert config.encoder == "mlp"
    assert config.normalize_obs and config.normalize_reward
    assert _convolutions("sysgym/ABR-v0", config) == 0


def test_a_real_image_keeps_the_cnn():
    config = default_config("sysgym/DeepRM-Image-v0")
    assert config.encoder == "auto"
    assert _convolutions("sysgym/DeepRM-Image-v0", config) == 2      # one per cnn_channels entry


def test_dag_defaults_use_the_graph_network():
    assert default_config("sysgym/DAG-EGS-v0").encoder == "graph"


def test_an_explicit_encoder_wins_over_the_defaults():
    assert default_config("sysgym/ABR-v0", encoder="cnn").encoder == "cnn"
    assert default_config("sysgym/DAG-EGS-v0", encoder="mlp").encoder == "mlp"


def test_flat_observations_keep_auto_and_cleanrl_values():
    config = default_config("sysgym/Appointments-P1-v0")
    assert (config.encoder, config.num_envs, config.n_steps, config.lr) == ("auto", 8, 128, 2.5e-4)
    assert not (config.normalize_obs or config.normalize_reward)


def test_cc_discrete_normalises_and_cc_continuous_keeps_cleanrl_continuous():
    discrete = default_config("sysgym/CC-Discrete-v0")
    assert (discrete.normalize_obs, discrete.normalize_reward, discrete.num_envs) == (True, True, 16)
    assert (discrete.n_steps, discrete.lr) == (128, 2.5e-4)
    continuous = default_config("sysgym/CC-v0")      # CleanRL ppo_continuous_action.py
    assert (continuous.num_envs, continuous.n_steps, continuous.batch_size, continuous.ent_coef) == (1, 2048, 64, 0.0)


# Orderings per day: P1/P2 12!/(6! 6!) = 924; P3-v0 (two slot breaks) 14!/(6! 6! 2!) = 84,084.
@pytest.mark.parametrize("env_id, kwargs, rank_in_training", [
    ("sysgym/Appointments-P1-v0", {}, True),
    ("sysgym/Appointments-P2-v0", {}, True),
    ("sysgym/Appointments-P3-v0", {}, False),
    ("sysgym/Appointments-P3-v1", {}, False),
    ("sysgym/Appointments-v0", {"problem": "P3", "break_model": "slot"}, False),
    ("sysgym/Appointments-P3-v1", {"percentile": "exact"}, True),     # the user's choice wins
    ("sysgym/Appointments-P3-v1", {"percentile": "sample"}, True),
])
def test_large_appointment_days_train_without_the_percentile_rank(env_id, kwargs, rank_in_training):
    config = default_config(env_id, env_kwargs=dict(kwargs))
    assert config.env_kwargs == kwargs                   # what evaluation and the checkpoint's users make
    assert config.train_env_kwargs == ({} if rank_in_training else {"percentile": "off"})
    assert config.training_env_kwargs == {**kwargs, **config.train_env_kwargs}


def test_other_families_have_no_training_only_env_kwargs():
    for env_id in ("sysgym/DeepRM-CompactSparse-v0", "sysgym/ABR-v0", "sysgym/DAG-EGS-v0"):
        assert default_config(env_id).train_env_kwargs == {}


def test_the_trainer_makes_its_envs_with_the_training_kwargs_and_the_checkpoint_keeps_both(tmp_path):
    from sysgym.agents.policy_specs import parse, trained_env
    from sysgym.agents.ppo import PPOTrainer

    config = default_config("sysgym/Appointments-P3-v1", num_envs=2, n_steps=14, total_steps=28,
                            tensorboard=False, progress=False)
    trainer = PPOTrainer("sysgym/Appointments-P3-v1", config, tmp_path)
    try:
        assert trainer.env.unwrapped.config.percentile == "off"
        trainer.train()
    finally:
        trainer.close()
    resumed = PPOTrainer.resume(tmp_path / "checkpoint.pt", env="sysgym/Appointments-P3-v1")
    try:
        assert resumed.env.unwrapped.config.percentile == "off"
    finally:
        resumed.close()
    env_id, kwargs, _ = trained_env(parse(str(tmp_path)))
    assert env_id == "sysgym/Appointments-P3-v1" and kwargs == {}
    env = gym.make(env_id, **kwargs)
    try:
        assert env.unwrapped.config.percentile == "exact"          # evaluation ranks every day
    finally:
        env.close()


def test_train_env_kwargs_must_be_a_dict():
    with pytest.raises(ValueError, match="train_env_kwargs must be a dict"):
        default_config("sysgym/Appointments-P1-v0", train_env_kwargs=[("percentile", "off")])
