"""Replacing the future input of a forked session (CrystalBox's sampling baselines) and the
feature names of the observation."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from sysgym.envs.abr import AbrEnv, AbrVectorEnv


def _rollout(env, levels):
    out = []
    for level in levels:
        obs, reward, terminated, _, info = env.step(level)
        out.append((obs, reward, info["delay_s"], info["buffer_s"], terminated))
        if terminated:
            break
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b))


@pytest.mark.parametrize("kwargs", [{}, {"pensieve_compatible": True}, {"traces": "test", "noise": False}])
def test_same_trace_and_offset_leave_the_trajectory_unchanged(kwargs):
    env = AbrEnv(**kwargs)
    env.reset(seed=3)
    _rollout(env, [2, 3, 4, 1, 0, 5, 5])
    fork = env.get_state()
    levels = np.random.default_rng(0).integers(0, 6, 60)
    plain = _rollout(env, levels)
    env.set_state(fork)
    k, t = env.unwrapped.future_input()
    assert (k, t) == env.unwrapped.batched.trace_position(0)[::2]
    env.unwrapped.set_future_input(k, t)
    assert _same(_rollout(env, levels), plain)


def test_another_trace_changes_only_the_future():
    env = AbrEnv(traces="test", noise=False)
    env.reset(seed=1)
    before = _rollout(env, [1, 2, 3, 4])
    fork = env.get_state()
    obs_now = before[-1][0]
    plain = _rollout(env, [3] * 10)
    env.set_state(fork)
    k = env.unwrapped.batched.trace_position(0)[0]
    other = (k + 5) % env.unwrapped.config.num_traces
    env.unwrapped.set_future_input(other, 100.0)
    state = env.get_state()["arrays"]
    fork_arrays = fork["arrays"]
    for key in ("buffer", "chunk", "last_level", "obs", "acc", "hist", "rng", "counter"):
        assert np.array_equal(state[key], fork_arrays[key]), key          # the past is kept
    assert env.unwrapped.batched.trace_position(0) == (other, 100, 100.0)  # 1 s samples from 0
    replaced = _rollout(env, [3] * 10)
    assert not _same(replaced, plain)
    assert replaced[0][0][:4, :-1].tolist() == obs_now[:4, 1:].tolist()    # the history shifts on as before


def test_vector_env_replaces_one_sub_env_or_all():
    vec = AbrVectorEnv(3, traces="test", noise=False, autoreset_mode=AutoresetMode.DISABLED)
    vec.reset(seed=0)
    vec.step(np.array([1, 1, 1]))
    positions = [vec.trace_position(i) for i in range(3)]
    vec.set_future_input(7, 12.5, index=1)
    assert vec.trace_position(0) == positions[0] and vec.trace_position(2) == positions[2]
    assert vec.trace_position(1) == (7, 12, 12.5)
    vec.set_future_input(2, 0.0)
    assert [vec.trace_position(i) for i in range(3)] == [(2, 0, 0.0)] * 3
    _, _, _, _, infos = vec.step(np.array([0, 0, 0]))
    assert infos["trace_index"].tolist() == [2, 2, 2]
    assert len(set(infos["delay_s"].tolist())) == 1      # the same download on the same trace


@pytest.mark.parametrize("args, match", [
    ((64, 0.0), "trace"), ((-1, 0.0), "trace"), ((1.5, 0.0), "trace"), ((0, -1.0), "offset_s"),
    ((0, 1e9), "offset_s"), ((0, float("nan")), "offset_s"), ((0, 0.0, 3), "index"), ((0, "1"), "offset_s"),
])
def test_bad_arguments_are_value_errors(args, match):
    vec = AbrVectorEnv(2, traces="test")
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        vec.set_future_input(*args)


def test_a_session_must_be_in_progress():
    env = AbrEnv(traces="test", num_chunks=1)
    with pytest.raises(ValueError, match="reset"):
        env.unwrapped.set_future_input(0, 0.0)     # before the first reset
    env.reset(seed=0)
    env.step(0)                                    # the one chunk: episode over
    with pytest.raises(ValueError, match="reset"):
        env.unwrapped.set_future_input(0, 0.0)


@pytest.mark.parametrize("kwargs", [{}, {"pensieve_compatible": True}, {"history": 10, "bitrates_kbps": [1, 2, 3]}])
def test_feature_names_follow_the_flattened_observation(kwargs):
    env = AbrEnv(**kwargs)
    names = env.unwrapped.feature_names
    cfg = env.unwrapped.config
    assert len(names) == spaces.flatdim(env.observation_space) and len(set(names)) == len(names)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, _, _, _, info = env.step(env.action_space.n - 1)
    flat = dict(zip(names, spaces.flatten(env.observation_space, obs)))
    assert flat["bitrate_frac[t]"] == np.float32(1.0)
    assert flat["buffer_10s[t]"] == np.float32(info["buffer_s"] / 10)
    assert flat["delay_10s[t]"] == np.float32(info["delay_s"] / 10)
    assert flat["throughput_MBps[t]"] == np.float32(info["throughput_mbps"] / 8)
    assert flat["chunks_left_frac[t]"] == np.float32((cfg.num_chunks - 3) / cfg.num_chunks)
    assert flat[f"buffer_10s[t-{cfg.history - 1}]"] == 0.0
    for j in range(cfg.num_levels):
        assert flat[f"next_size_MB[{j}]"] == np.float32(cfg.sizes[j, 3] / 1e6)
    if cfg.observation == "pensieve":
        assert flat["size0_MB[t]"] == np.float32(cfg.sizes[0, 2] / 1e6)    # the chunk just downloaded
        assert flat["size0_MB[t-1]"] == np.float32(cfg.sizes[0, 1] / 1e6)
    else:
        assert all(flat[f"pad[{j}]"] == 0.0 for j in range(cfg.num_levels, cfg.history))
