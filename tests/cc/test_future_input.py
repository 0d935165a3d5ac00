"""Replacing the future input (CrystalBox's "what if the network behaved like that trace from now
on"): the same trace and position change nothing; another trace keeps everything the sender has
seen and done and changes only what comes after; bad arguments are clear errors. (The replaced
dynamics are checked against the reference model in test_reference.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.bandwidth import BandwidthTrace
from sysgym.envs.cc import CCEnv, CCVectorEnv, parallel_env
from tests.contract import assert_same

# Two traces far apart: 0.6 Mbps (50 packets/s) and 6 Mbps (500 packets/s), 60 s loops.
SLOW = BandwidthTrace("slow", np.array([0.0, 30.0, 60.0]), np.array([0.6, 0.6, 0.6]))
FAST = BandwidthTrace("fast", np.array([0.0, 30.0, 60.0]), np.array([6.0, 6.0, 6.0]))
KW = dict(traces=[SLOW, FAST], delay=0.02, queue=50, loss=0.0, max_rate=800.0, max_steps=60)


def rollout(env, actions) -> list:
    return [env.step(a) for a in actions]


def test_same_trace_and_position_leave_the_trajectory_unchanged():
    vec = CCVectorEnv(3, traces="synthetic", loss=(0.0, 0.05), max_steps=50)
    vec.reset(seed=5)
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 3, 1))
    rollout(vec, actions[:10])
    fork = vec.get_state()
    first = rollout(vec, actions[10:])
    vec.set_state(fork)
    traces, positions = vec.future_input()
    for i in range(3):
        vec.set_future_input(int(traces[i]), float(positions[i]), index=i)
    for a, expected in zip(actions[10:], first):
        assert_same(vec.step(a), expected)
    vec.set_state(fork)
    vec.set_future_input(int(traces[0]), float(positions[0]))  # index=None: every sub-env
    assert (vec.future_input()[0] == traces[0]).all() and (vec.future_input()[1] == positions[0]).all()


def test_position_follows_the_spec_from_the_episode_offset():
    """With a link set the offset is known: after the first monitor interval [0, t) the position is
    fmod(offset + t, duration), and each step adds its interval's length."""
    env = CCEnv(traces="synthetic", link_set="test", link_set_size=4)
    _, info = env.reset(seed=0, options={"link_index": 2})
    links, table = env.config.links, env.config.trace_table
    trace, offset = int(links.trace[2]), float(links.offset[2])
    duration = float(table.duration[trace])
    assert env.future_input() == (trace, math.fmod(offset + (info["time"] - 0.0), duration))
    for _ in range(5):
        before, start = env.future_input()[1], info["time"]
        _, _, _, _, info = env.step(np.zeros(1, dtype=np.float32))
        assert env.future_input() == (trace, math.fmod(before + (info["time"] - start), duration))


def test_other_trace_changes_only_what_comes_after():
    env = CCEnv(**KW, start_rate=2.0)  # sends well above the slow trace, below the fast one
    env.reset(seed=0)
    env.set_future_input(0, 0.0)  # start on the slow trace
    hold = np.zeros(1, dtype=np.float32)
    for _ in range(10):
        obs, _, _, _, info = env.step(hold)
    fork = env.get_state()
    base = [env.step(hold) for _ in range(20)]
    env.set_state(fork)
    env.set_future_input(1, 10.0)
    after = env.get_state()["arrays"]
    changed = {k for k, v in fork["arrays"].items() if not np.array_equal(v, after[k], equal_nan=True)}
    assert changed == {"trace_id", "trace_pos"}  # rates, history, queues, packets in flight: kept
    assert env.bottleneck_bandwidth() == pytest.approx(500.0)
    replaced = [env.step(hold) for _ in range(20)]
    features = len(env.config.features)
    # the first observation after the switch still carries the history from before it
    np.testing.assert_array_equal(replaced[0][0][:-features], base[0][0][:-features])
    assert replaced[0][4]["sending_rate"] == base[0][4]["sending_rate"]
    # then the fast link drains the queue the slow one built: latency falls, throughput rises
    assert np.mean([s[4]["latency"] for s in replaced[10:]]) < 0.5 * np.mean([s[4]["latency"] for s in base[10:]])
    assert np.mean([s[4]["throughput"] for s in replaced[10:]]) > 1.5 * np.mean([s[4]["throughput"] for s in base[10:]])


def test_vector_replacement_touches_only_the_chosen_sub_env():
    vec = CCVectorEnv(3, **KW)
    vec.reset(seed=1)
    for _ in range(3):
        vec.step(np.zeros((3, 1)))
    traces, positions = vec.future_input()
    vec.set_future_input(1 - int(traces[1]), 12.5, index=1)
    new_traces, new_positions = vec.future_input()
    assert new_traces.tolist() == [traces[0], 1 - traces[1], traces[2]]
    assert new_positions.tolist() == [positions[0], 12.5, positions[2]]


def test_pettingzoo_env_replaces_the_future_input_too():
    env = parallel_env(n_flows=2, **KW)
    env.reset(seed=0)
    env.set_future_input(1, 3.0)
    assert env.future_input() == (1, 3.0)
    assert env.bottleneck_bandwidth() == pytest.approx(500.0)


@pytest.mark.parametrize("args, words", [
    ((2, 0.0), "trace must be an integer in \\[0, 1\\]"),
    ((-1, 0.0), "trace must be"),
    ((0.5, 0.0), "trace must be an integer"),
    ((0, -1.0), "offset_s must be a number in \\[0.0, 60.0\\)"),
    ((0, 60.0), "offset_s must be a number in \\[0.0, 60.0\\)"),
    ((0, float("nan")), "offset_s must be finite"),
    ((0, "3"), "offset_s must be a number"),
])
def test_bad_arguments_are_clear_errors(args, words):
    vec = CCVectorEnv(2, **KW)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=words):
        vec.set_future_input(*args)
    with pytest.raises(ValueError, match=words):
        single = CCEnv(**KW)
        single.reset(seed=0)
        single.set_future_input(*args)


def test_index_episode_and_trace_requirements():
    vec = CCVectorEnv(2, autoreset_mode=AutoresetMode.DISABLED, **KW)
    with pytest.raises(ValueError, match="sub-env 0 has no running episode"):
        vec.set_future_input(0, 0.0)  # before any reset
    vec.reset(seed=0, options={"reset_mask": np.array([False, True])})
    vec.set_future_input(0, 0.0, index=1)
    with pytest.raises(ValueError, match="index must be an integer in \\[0, 1\\]"):
        vec.set_future_input(0, 0.0, index=2)
    single = CCEnv(**KW)
    single.reset(seed=0)
    with pytest.raises(ValueError, match="index"):
        single.set_future_input(0, 0.0, index=1)
    for env in (CCEnv(), parallel_env(n_flows=2)):
        env.reset(seed=0)
        with pytest.raises(ValueError, match="needs an env that replays traces"):
            env.set_future_input(0, 0.0)
    ended = parallel_env(n_flows=2, max_steps=1, **{k: v for k, v in KW.items() if k != "max_steps"})
    ended.reset(seed=0)
    ended.step({a: np.zeros(1) for a in ended.agents})
    with pytest.raises(ValueError, match="no running episode"):
        ended.set_future_input(0, 0.0)
