"""The contract's robustness clauses on every registered ID (DESIGN.md items 6, 7 and 12).

* every observation lies in the declared space, with no NaN/inf, over random rollouts;
* ``max_episode_steps`` truncates in every vectorisation mode, as Gymnasium's TimeLimit does;
* a misspelt kwarg names the env, the nearest valid kwarg and all of them;
* ``set_state`` refuses anything but a snapshot of this env's configuration, leaving the env as it
  was, and random edits of a snapshot give a ValueError or a valid env, never a crash;
* an env entered by a second thread raises instead of racing inside the kernel.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import sysgym
from tests.contract import assert_same, sample_action, sample_actions

IDS = [e.id for e in sysgym.ENVIRONMENTS]


@pytest.fixture(params=IDS)
def env_id(request):
    return request.param


def _assert_in_space(obs, space, where):
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            _assert_in_space(obs[key], sub, f"{where}[{key!r}]")
        return
    obs = np.asarray(obs)
    assert obs.shape == space.shape and obs.dtype == space.dtype, where
    if obs.dtype.kind == "f":
        assert np.all(np.isfinite(obs)), f"{where}: NaN/inf in the observation"
    assert space.contains(obs), (f"{where}: outside the space, e.g. "
                                 f"{obs[~((obs >= space.low) & (obs <= space.high))][:5]}")


def test_every_observation_lies_in_the_declared_space(env_id):
    env = gym.make(env_id)
    rng = np.random.default_rng(13)
    obs, info = env.reset(seed=13)
    for step in range(1500):
        _assert_in_space(obs, env.observation_space, f"{env_id} step {step}")
        obs, reward, terminated, truncated, info = env.step(sample_action(env.action_space, info, rng))
        assert np.isfinite(reward) and np.all(np.isfinite(info["reward_components"]))
        if terminated or truncated:
            assert all(np.isfinite(v) for v in info["episode_metrics"].values())
            obs, info = env.reset()


@pytest.mark.parametrize("mode", [None, "sync", "vector_entry_point"])
def test_max_episode_steps_truncates_in_every_vectorisation_mode(env_id, mode):
    limit = 7
    kwargs = {} if mode is None else {"vectorization_mode": mode}
    vec = gym.make_vec(env_id, num_envs=2, max_episode_steps=limit, **kwargs)
    rng = np.random.default_rng(0)
    _, infos = vec.reset(seed=0)
    for step in range(1, limit + 1):
        _, _, terminated, truncated, infos = vec.step(sample_actions(vec, infos, rng))
        if step < limit:
            assert not truncated.any() or terminated.any()
    assert np.all(terminated | truncated), f"{env_id}: the episode outlived max_episode_steps={limit}"
    vec.close()


def test_native_and_sync_agree_under_a_time_limit(env_id):
    native = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", max_episode_steps=5)
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", max_episode_steps=5)
    obs_a, info_a = native.reset(seed=3)
    obs_b, _ = sync.reset(seed=3)
    assert_same(obs_a, obs_b)
    rng = np.random.default_rng(3)
    for _ in range(23):
        actions = sample_actions(native, info_a, rng)
        out_a = native.step(actions)
        out_b = sync.step(actions)
        for a, b in zip(out_a[:4], out_b[:4]):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
            else:
                assert_same(a, b)
        info_a, info_b = out_a[4], out_b[4]
        assert ("episode_metrics" in info_a) == ("episode_metrics" in info_b)
        if "episode_metrics" in info_a:
            assert_same(info_a["episode_metrics"], info_b["episode_metrics"])


def test_a_registered_time_limit_reaches_the_native_vector_env(env_id):
    entry = sysgym.envs.registry.entry(env_id)
    name = f"sysgym-test/{entry.name}-limited"
    if name not in gym.registry:
        gym.register(name, entry_point=entry.entry_point, vector_entry_point=entry.vector_entry_point,
                     kwargs=dict(entry.kwargs), max_episode_steps=4)
    vec = gym.make_vec(name, num_envs=2)  # default mode: the vector entry point
    assert vec.unwrapped.max_episode_steps == 4
    single = gym.make(name)
    rng = np.random.default_rng(1)
    _, infos = vec.reset(seed=1)
    _, info = single.reset(seed=1)
    for _ in range(4):
        _, _, term, trunc, infos = vec.step(sample_actions(vec, infos, rng))
        _, _, sterm, strunc, info = single.step(sample_action(single.action_space, info, rng))
    assert np.all(term | trunc) and (sterm or strunc)


def test_misspelt_kwarg_names_the_nearest_and_lists_the_valid_ones(env_id):
    valid = sorted(sysgym.envs.registry.entry(env_id).kwargs) or None
    with pytest.raises(ValueError, match="unexpected keyword argument 'no_such_option_anywhere'") as info:
        gym.make(env_id, no_such_option_anywhere=1)
    assert "valid kwargs:" in str(info.value)
    assert isinstance(info.value, TypeError)  # Python's own wording and type, which libraries probe for
    if valid:
        word = valid[0]
        typo = word[:-1] + ("x" if word[-1] != "x" else "y")
        with pytest.raises(ValueError, match=f"did you mean '{word}'"):
            gym.make(env_id, **{typo: 1})


@pytest.mark.parametrize("bad", [None, 3, "state", {}, {"format": "sysgym-state/1"}])
def test_set_state_refuses_what_is_not_a_snapshot(env_id, bad):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="snapshot|set_state"):
        env.set_state(bad)


def test_a_refused_snapshot_leaves_the_env_unchanged(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    before = env.get_state()
    broken = pickle.loads(pickle.dumps(before))
    broken["arrays"]["rng"][:] = 0  # the one state xoshiro256** cannot leave
    with pytest.raises(ValueError, match="rng"):
        env.set_state(broken)
    assert_same(env.get_state(), before)
    missing = pickle.loads(pickle.dumps(before))
    missing["arrays"].pop(sorted(missing["arrays"])[0])
    with pytest.raises(ValueError, match="missing"):
        env.set_state(missing)
    other = pickle.loads(pickle.dumps(before))
    other["config"] = "0" * 64
    with pytest.raises(ValueError, match="another configuration"):
        env.set_state(other)
    env.step(sample_action(env.action_space, info, rng))


def test_a_second_thread_entering_an_env_raises(env_id):
    env = gym.make(env_id).unwrapped
    _, info = env.reset(seed=0)
    action = sample_action(env.action_space, info, np.random.default_rng(0))
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    _, infos = vec.reset(seed=0)
    actions = sample_actions(vec, infos, np.random.default_rng(0))
    with env.batched._guard:  # as if another thread were inside step()
        with pytest.raises(RuntimeError, match="another thread"):
            env.step(action)
    with vec.unwrapped._guard:
        with pytest.raises(RuntimeError, match="another thread"):
            vec.step(actions)
    env.step(action)  # the guard is released again
    vec.step(actions)


FUZZ = textwrap.dedent('''
    import pickle, sys
    import gymnasium as gym, numpy as np
    from hypothesis import HealthCheck, given, settings, strategies as st
    import sysgym
    from tests.contract import sample_action

    env_id = sys.argv[1]
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    for _ in range(15):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            _, info = env.reset()
    base = env.get_state()
    names = sorted(base["arrays"])
    extremes = [0, 1, -1, 2, -5, 10**6, -10**6, 2**31 - 1, -2**31, 2**62, 0.5, 1e300, -1e300,
                float("nan"), float("inf")]

    @settings(max_examples=int(sys.argv[2]), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        state = pickle.loads(pickle.dumps(base))
        for _ in range(data.draw(st.integers(1, 3))):
            name = data.draw(st.sampled_from(names))
            arr = state["arrays"][name]
            if arr.size == 0:
                continue
            flat = arr.reshape(-1)
            k = data.draw(st.integers(0, flat.size - 1))
            value = data.draw(st.sampled_from(extremes))
            try:
                with np.errstate(all="ignore"):
                    flat[k] = value
            except (OverflowError, ValueError):
                continue
        try:
            env.set_state(state)
        except ValueError:
            return
        arrays = env.get_state()["arrays"]
        if arrays["needs_reset"][0]:
            _, info = env.reset()
        else:
            info = {"action_mask": arrays["action_mask"][0]} if "action_mask" in arrays else {}
        for _ in range(20):
            action = sample_action(env.action_space, info, rng)
            obs, reward, term, trunc, info = env.step(action)
            assert np.isfinite(reward), (name, reward)
            assert env.observation_space.contains(obs), name
            if term or trunc:
                break

    fuzz()
    print("ok")
''')


def test_random_snapshot_edits_never_crash(env_id):
    """Each example edits a few entries of a valid snapshot; set_state must refuse it or the env
    must keep stepping inside its spaces. In a subprocess, so a segfault fails the test."""
    result = subprocess.run([sys.executable, "-c", FUZZ, env_id, "60"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
