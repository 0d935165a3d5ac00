"""The Appointments kernel refuses malformed buffers with a ValueError before its nogil loops
(compiled without bounds checks) read or write them, and ranks only with a 4-word RNG state."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.cython_core.appointments import AppointmentsKernel, Problem
from sysgym.envs.appointments import build_config
from sysgym.envs.appointments.config import kernel_config


@pytest.fixture
def env():
    vec = gym.make_vec("sysgym/Appointments-P1-v0", num_envs=2, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    yield vec.unwrapped
    vec.close()


def test_entry_points_refuse_buffers_of_the_wrong_length(env):
    kernel, T = env._kernel, env.config.num_types
    draws = np.ones((1, 2, env.config.factor_columns))
    with pytest.raises(ValueError, match="which must have one entry per sub-env \\(2\\), got 3"):
        kernel.oracle(np.ones(3, dtype=np.uint8), draws, 0, np.zeros((2, T)))
    with pytest.raises(ValueError, match="out must have one entry per sub-env \\(2\\), got 1"):
        kernel.write_features(np.zeros((1, len(env.config.feature_names)), dtype=np.int8))
    with pytest.raises(ValueError, match="active must have one entry per sub-env \\(2\\), got 1"):
        kernel.step(np.ones(1, dtype=np.uint8))


@pytest.mark.parametrize("key, shape, message", [
    ("seq", (3, None), "'seq' must have one row per sub-env \\(2\\)"),
    ("rng", (2, 3), "'rng' must have shape \\(2, 4\\)"),
    ("perc_rng", (2, 3), "'perc_rng' must have rows of shape \\(4,\\)"),
    ("start", (2, 5), "'start' must have rows of shape \\(12,\\)"),
    ("reward_components", (2, 2), "'reward_components' must have rows of shape \\(3,\\)"),
])
def test_kernel_refuses_state_arrays_of_the_wrong_shape(env, key, shape, message):
    cfg = kernel_config(env.config, 2)
    AppointmentsKernel(cfg, dict(env._state))          # the env's own state is accepted
    old = env._state[key]
    bad = np.zeros(tuple(old.shape[i] if n is None else n for i, n in enumerate(shape)), dtype=old.dtype)
    with pytest.raises(ValueError, match=message):
        AppointmentsKernel(cfg, dict(env._state, **{key: bad}))


def test_rank_refuses_an_rng_state_that_is_not_4_words():
    cfg = build_config(problem="P1")
    problem = Problem(kernel_config(cfg))
    fac = np.ones((2, cfg.factor_columns))
    assert problem.rank(0.0, fac, 0, np.ones(4, dtype=np.uint64))[2] == 924   # C(12, 6) orderings
    for samples in (0, 5):
        with pytest.raises(ValueError, match="rng must be a 4-word xoshiro256\\*\\* state, got 3 words"):
            problem.rank(0.0, fac, samples, np.ones(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="samples must be >= 0"):
        problem.rank(0.0, fac, -1, np.ones(4, dtype=np.uint64))
