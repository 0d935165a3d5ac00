"""Replacing the future input of a running DeepRM episode (``set_future_input``, CrystalBox's need).

What is kept (clock, queue, allocations, profile, observation) and what is replaced (the arrivals
after now) is specified in the docstring of :mod:`sysgym.envs.deeprm`; the step-for-step check
against the reference model with random replacements is in test_reference.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.deeprm import SWFWorkload
from sysgym.traces import trace_path
from tests.contract import assert_same, sample_actions

TRACE_KINDS = ("swf", "deeprm")
SWF = str(trace_path("deeprm", "synthetic_10.swf"))
TRACE_STATE = ("trace_ptr", "trace_end", "trace_base", "stream_start")


def make_vec(kind, num_envs=4, **kwargs):
    workload = {"workload": SWF, "num_processors": 10} if kind == "swf" else {}
    return gym.make_vec("sysgym/DeepRM-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                        episode_length=60, **workload, **kwargs).unwrapped


def advance(vec, infos, rng, steps):
    for _ in range(steps):
        *_, infos = vec.step(sample_actions(vec, infos, rng))
    return infos


def hand_trace(tmp_path):
    """Jobs A, B, C, D submitted at 0, 5, 7, 12 s lasting 2, 3, 4, 5 s (1 s per step)."""
    lines = [" ".join(str(f) for f in [i + 1, t, 0, run, 1, -1, -1, 1, run, -1, 1, 1, 1, 1, 1, 1, -1, -1])
             for i, (t, run) in enumerate([(0, 2), (5, 3), (7, 4), (12, 5)])]
    path = tmp_path / "abcd.swf"
    path.write_text("\n".join(lines) + "\n")
    return gym.make("sysgym/DeepRM-v0", workload=SWFWorkload(path, time_unit=1.0), num_processors=4,
                    max_job_size=1, episode_length=10, trace_start="first", window=4).unwrapped


def waiting_lengths(env):
    jobs = env.batched.window_jobs()
    return jobs["length"][0][jobs["present"][0]].tolist()


def test_hand_worked_replacement(tmp_path):
    env = hand_trace(tmp_path)
    env.reset(seed=0)
    env.step(4)
    env.step(4)                                  # now = 2; A (length 2) waits
    assert waiting_lengths(env) == [2] and env.future_input() == (0, 2)
    env.set_future_input(0, 6)                   # same stream, 6 of its steps elapsed: B (k=5) is past
    assert env.future_input() == (0, 6)
    _, _, _, _, info = env.step(4)               # now = 3: C (k=7) arrives 7 - 6 = 1 step from now
    assert info["time"] == 3 and waiting_lengths(env) == [2, 4]
    env.set_future_input(1, 0)                   # B's stream: B (k=0) is past; C at k=2, D at k=7
    assert env.future_input() == (1, 0)
    env.step(4)
    assert waiting_lengths(env) == [2, 4]
    env.step(4)                                  # now = 5: a second C arrives
    assert waiting_lengths(env) == [2, 4, 4] and env.future_input() == (1, 2)
    for _ in range(4):
        env.step(4)
    assert waiting_lengths(env) == [2, 4, 4]     # now = 9
    env.step(4)                                  # now = 10: D
    assert waiting_lengths(env) == [2, 4, 4, 5]
    while True:                                  # D was the stream's last job: the episode can end
        _, _, term, trunc, info = env.step(int(np.argmax(info["action_mask"])))
        if term or trunc:
            break
    assert term and info["episode_metrics"]["jobs_finished"] == 4


@pytest.mark.parametrize("kind", TRACE_KINDS)
def test_replacement_keeps_everything_but_the_future_arrivals(kind):
    vec = make_vec(kind)
    rng = np.random.default_rng(0)
    _, infos = vec.reset(seed=0)
    infos = advance(vec, infos, rng, 12)
    before = vec.get_state()["arrays"]
    vec.set_future_input(5, 0 if kind == "deeprm" else 3, index=2)
    after = vec.get_state()["arrays"]
    replaced = TRACE_STATE if kind == "swf" else ("rng",)
    for key, value in before.items():
        if key in replaced:
            np.testing.assert_array_equal(np.delete(value, 2, axis=0), np.delete(after[key], 2, axis=0))
            assert not np.array_equal(value[2], after[key][2]), key
        else:
            np.testing.assert_array_equal(value, after[key], err_msg=key)


def test_same_stream_leaves_the_state_and_trajectory_unchanged():
    vec = make_vec("swf")
    rng = np.random.default_rng(1)
    _, infos = vec.reset(seed=1)
    assert len(set(vec.future_input()[0].tolist())) > 1     # random starts
    infos = advance(vec, infos, rng, 15)
    snapshot, actions_state, start_infos = vec.get_state(), rng.bit_generator.state, infos
    first = []
    for _ in range(80):
        first.append(vec.step(sample_actions(vec, infos, rng)))
        infos = first[-1][4]
    vec.set_state(snapshot)
    rng.bit_generator.state, infos = actions_state, start_infos
    starts, offsets = vec.future_input()
    for i in range(vec.num_envs):
        vec.set_future_input(int(starts[i]), int(offsets[i]), index=i)
    assert_same(vec.get_state(), snapshot)
    for expected in first:
        out = vec.step(sample_actions(vec, infos, rng))
        assert_same(out, expected)
        infos = out[4]


@pytest.mark.parametrize("kind", TRACE_KINDS)
def test_replaced_futures_are_deterministic_and_differ(kind):
    vec = make_vec(kind, num_envs=2, new_job_rate=0.5) if kind == "deeprm" else make_vec(kind, num_envs=2)
    rng = np.random.default_rng(2)
    _, infos = vec.reset(seed=2)
    infos = advance(vec, infos, rng, 5)
    snapshot = vec.get_state()
    actions = [np.full(2, vec.void_action)] * 40

    def future(trace):
        vec.set_state(snapshot)
        vec.set_future_input(trace, 0)
        return [vec.step(a)[0] for a in actions]

    a, b, c = future(7), future(7), future(40)
    assert_same(a, b)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_single_env_and_bad_arguments(tmp_path):
    env = hand_trace(tmp_path)
    with pytest.raises(ValueError, match="no episode in progress"):
        env.set_future_input(0, 0)                # before reset
    env.reset(seed=0)
    state = env.get_state()
    for args, match in [((-1, 0), "trace"), ((4, 0), "trace"), ((1.5, 0), "trace"), ((True, 0), "trace"),
                        (("0", 0), "trace"), ((None, 0), "trace"), ((0, -1), "offset"), ((0, 11), "offset"),
                        ((0, 0.5), "offset"), ((0, 0, 1), "index"), ((0, 0, -1), "index")]:
        with pytest.raises(ValueError, match=match):
            env.set_future_input(*args)
    assert_same(env.get_state(), state)          # a refused call changes nothing
    while True:
        _, _, term, trunc, _ = env.step(4)
        if term or trunc:
            break
    with pytest.raises(ValueError, match="no episode in progress"):
        env.set_future_input(0, 0)


def test_vector_and_generator_bad_arguments():
    vec = make_vec("deeprm", num_envs=3)
    vec.reset(seed=0)
    for args, kwargs, match in [((1, 1), {}, "offset"), ((-1, 0), {}, "trace"), ((2**64, 0), {}, "trace"),
                                ((1, 0), {"index": 3}, "index"), ((1, 0), {"index": True}, "index")]:
        with pytest.raises(ValueError, match=match):
            vec.set_future_input(*args, **kwargs)
    with pytest.raises(ValueError, match="generator"):
        vec.future_input()
