"""The native vector env's action check (envs/batched.py ``_load_actions``): every out-of-range or
non-integer discrete action is refused with a ValueError before the kernel runs, whatever the
integer dtype the caller uses, and every in-range one is accepted."""

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401  (registers the envs)

B = 4


@pytest.fixture(scope="module")
def env():
    vec = gym.make_vec("sysgym/DeepRM-CompactSparse-v0", num_envs=B, vectorization_mode="vector_entry_point")
    vec.reset(seed=3)
    yield vec
    vec.close()


def _n(env) -> int:
    return int(env.single_action_space.n)


@pytest.mark.parametrize("make", [
    lambda n: np.array([0, -1, 0, 0], dtype=np.int64),
    lambda n: np.array([0, -1, 0, 0], dtype=np.int32),
    lambda n: np.array([0, -128, 0, 0], dtype=np.int8),
    lambda n: np.array([0, n, 0, 0], dtype=np.int64),
    lambda n: np.array([0, n, 0, 0], dtype=np.uint16),
    lambda n: np.array([0, 2**63, 0, 0], dtype=np.uint64),
    lambda n: np.array([0, -(2**63), 0, 0], dtype=np.int64),
    lambda n: [0, -1, 0, 0],
    lambda n: np.array([0.0, 1.5, 0.0, 0.0]),
    lambda n: np.array([0.0, -1.0, 0.0, 0.0]),
], ids=["int64 -1", "int32 -1", "int8 -128", "int64 n", "uint16 n", "uint64 2^63", "int64 min",
        "list -1", "float 1.5", "float -1"])
def test_out_of_range_actions_are_refused(env, make):
    state = env.unwrapped.get_state()
    with pytest.raises(ValueError, match="actions must|integers"):
        env.step(make(_n(env)))
    after = env.unwrapped.get_state()["arrays"]
    for key, value in state["arrays"].items():     # refused before the kernel ran
        assert np.array_equal(after[key], value), key


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64, np.float64])
def test_in_range_actions_of_any_integer_dtype_are_accepted(env, dtype):
    n = _n(env)
    actions = np.array([0, n - 1, 0, n - 1], dtype=dtype)
    mask = env.unwrapped.action_masks()
    actions = np.where(mask[np.arange(B), actions.astype(np.int64)], actions, 0).astype(dtype)
    env.step(actions)
    assert env.unwrapped._state["actions"].tolist() == actions.astype(np.int64).tolist()
