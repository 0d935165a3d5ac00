"""The single env's fast step path against the general one.

``KernelEnv.step`` has shortcuts of its own (an int action checked inline, the kernel entry point
bound directly, scalar infos read through memoryviews, the three-component reward unrolled,
whole-array resets, the DAG ``invalid_action`` flag computed on Python floats). Each is checked
here against the general code that a native vector env with B = 2 runs (boolean-mask resets,
``weighted_sum``, the vector info layout, the DAG flag as a ufunc) and against
``_discrete_action``, the single env's general action check.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401  (registers the IDs)
from sysgym.envs.batched import _discrete_action

CASES = [("sysgym/DAG-EGS-v0", {}), ("sysgym/DAG-EGS-v0", {"max_episode_steps": 7}),
         ("sysgym/ABR-v0", {}), ("sysgym/ABR-Pensieve-v0", {}), ("sysgym/ABR-v0", {"max_episode_steps": 30})]
PYTHON_TYPE = {"b": bool, "i": int, "u": int, "f": float}    # the vector info's dtype kind -> single value's type


def _same_obs(single, row):
    if isinstance(single, dict):
        assert list(single) == list(row)
        for key in single:
            _same_obs(single[key], row[key])
        return
    assert single.dtype == row.dtype and single.shape == row.shape
    assert np.array_equal(single, row)


def _same_info(single: dict, infos: dict, ended: bool) -> None:
    """``single`` (the single env's info) is row 0 of the vector env's ``infos``, value, dtype and
    Python type alike."""
    row_keys = {k for k in infos if not k.startswith("_") and (k != "episode_metrics" or infos["_episode_metrics"][0])}
    assert set(single) == row_keys
    for key, value in single.items():
        if key == "episode_metrics":
            assert ended and infos["_episode_metrics"][0]
            assert list(value) == [k for k in infos[key] if not k.startswith("_")]
            for name, metric in value.items():
                assert type(metric) is float and metric == infos[key][name][0], name
            continue
        column = infos[key]
        if column.ndim == 1:       # a scalar per sub-env: the single env gives a Python scalar
            assert type(value) is PYTHON_TYPE[column.dtype.kind], (key, type(value), column.dtype)
            assert value == column[0], key
        else:
            assert isinstance(value, np.ndarray) and value.dtype == column.dtype, key
            assert np.array_equal(value, column[0]), key
    assert ("episode_metrics" in single) == ended


@pytest.mark.parametrize("env_id, kwargs", CASES, ids=[f"{i}{k}" for i, k in CASES])
def test_single_env_step_is_row_0_of_the_general_vector_path(env_id, kwargs):
    # the env itself applies max_episode_steps (gym.make would add a TimeLimit wrapper instead)
    single = type(gym.make(env_id).unwrapped)(**gym.spec(env_id).kwargs, **kwargs)
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    obs, info = single.reset(seed=3)
    obs_v, infos = vec.reset(seed=[3, 40])
    _same_obs(obs, {k: v[0] for k, v in obs_v.items()} if isinstance(obs_v, dict) else obs_v[0])
    _same_info(info, infos, False)
    rng = np.random.default_rng(5)
    seen = {"invalid": 0, "ends": 0, "truncated": 0}
    for _ in range(400):
        masks = vec.unwrapped.action_masks()
        pool = np.flatnonzero(masks[0])
        if "DAG" in env_id and rng.random() < 0.25:
            pool = np.flatnonzero(~masks[0])         # a rejected edge: invalid_action, component -1
        action = int(rng.choice(pool))
        actions = np.array([action, int(rng.choice(np.flatnonzero(masks[1])))])
        obs, reward, terminated, truncated, info = single.step(action)
        obs_v, rewards, terms, truncs, infos = vec.step(actions)
        _same_obs(obs, {k: v[0] for k, v in obs_v.items()} if isinstance(obs_v, dict) else obs_v[0])
        assert type(reward) is float and reward == rewards[0]    # bitwise: == on floats
        assert np.float64(reward).tobytes() == rewards[0].tobytes()
        assert type(terminated) is bool and type(truncated) is bool
        assert (terminated, truncated) == (bool(terms[0]), bool(truncs[0]))
        _same_info(info, infos, "episode_metrics" in infos and bool(infos["_episode_metrics"][0]))
        seen["invalid"] += bool(info.get("invalid_action"))
        seen["truncated"] += truncated
        done = terms | truncs
        if done[0]:
            seen["ends"] += 1
            obs, info = single.reset()
        if done.any():
            obs_v, infos = vec.reset(options={"reset_mask": done})
            if done[0]:
                _same_obs(obs, {k: v[0] for k, v in obs_v.items()} if isinstance(obs_v, dict) else obs_v[0])
                _same_info(info, infos, False)
    assert seen["ends"] >= 3, seen
    if "DAG" in env_id:
        assert seen["invalid"] > 0, seen
    if kwargs:
        assert seen["truncated"] > 0, seen


GOOD = [3, np.int64(3), np.int32(3), np.uint8(3), 3.0, np.float32(3.0), np.array(3), np.array(3.0)]
BAD = [-1, 6, 7, 2**70, -2**70, 1.5, float("nan"), float("inf"), True, False, np.bool_(True), np.int64(6),
       np.int64(-1), np.uint64(2**63), "3", None, [3], (3,), np.array([3]), np.array(3.5), 3 + 0j]


@pytest.mark.parametrize("action", GOOD + BAD, ids=repr)
def test_single_env_takes_and_refuses_what_the_general_check_does(action):
    """ABR-v0 has 6 levels: the inline check of an int must accept and refuse exactly what
    ``_discrete_action`` does, with its message, and leave the env steppable after a refusal."""
    env = gym.make("sysgym/ABR-v0").unwrapped
    twin = gym.make("sysgym/ABR-v0").unwrapped
    env.reset(seed=1)
    twin.reset(seed=1)
    n = int(env.action_space.n)
    assert n == 6
    try:
        expected = _discrete_action(action, n)
    except ValueError as err:
        with pytest.raises(ValueError) as refused:
            env.step(action)
        assert str(refused.value) == str(err)
        expected = 2
        action = 2                              # the env still steps, from where it was
    got = env.step(action)
    want = twin.step(expected)
    _same_obs(got[0], want[0])
    assert got[1:4] == want[1:4]
    assert set(got[4]) == set(want[4])
    for key in got[4]:
        assert np.array_equal(got[4][key], want[4][key]), key
