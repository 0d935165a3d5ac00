"""The environment contract of DESIGN.md, checked on every registered ID.

A family gets these tests by adding its rows to sysgym.envs.registry.ENVIRONMENTS.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import sysgym
from tests.contract import assert_same, rollout, sample_action, sample_actions

IDS = [e.id for e in sysgym.ENVIRONMENTS]
STEPS = 300


@pytest.fixture(params=IDS)
def env_id(request):
    return request.param


def test_registry_lists_every_id_once():
    assert len(IDS) == len(set(IDS))
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.vector_entry_point is not None, f"{env_id} has no native vector env"


def _make_quietly(env_id):
    """``gym.make``; a superseded version (an older -vN kept for reproducibility) warns that a newer
    one exists, as Gymnasium means it to, and only that warning is let through here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading")
        return gym.make(env_id)


def test_check_env_passes_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = _make_quietly(env_id)
        check_env(env.unwrapped)
        env.close()


def test_superseded_versions_warn_and_current_ones_do_not(env_id):
    name, version = env_id.rsplit("-v", 1)
    newer = any(e.id.startswith(name + "-v") and int(e.id.rsplit("-v", 1)[1]) > int(version)
                for e in sysgym.ENVIRONMENTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym.make(env_id).close()
    assert any("out of date" in str(w.message) for w in caught) == newer


def test_passive_checker_silent_over_a_rollout(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.wrappers.PassiveEnvChecker(_make_quietly(env_id))
        rollout(env, seed=3, steps=50)


def test_step_before_reset_is_refused(env_id):
    env = gym.make(env_id)  # registered without OrderEnforcing: the env refuses it itself
    action = env.action_space.sample()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)


def test_make_without_import_via_module_prefix(env_id):
    env = gym.make(f"sysgym:{env_id}")
    assert env.unwrapped.spec.id == env_id


def test_same_seed_same_actions_same_trajectory(env_id):
    a = rollout(gym.make(env_id), seed=11, steps=STEPS)
    b = rollout(gym.make(env_id), seed=11, steps=STEPS)
    assert_same(a, b)


def test_different_seeds_differ(env_id):
    a = rollout(gym.make(env_id), seed=1, steps=STEPS)
    b = rollout(gym.make(env_id), seed=2, steps=STEPS)
    with pytest.raises(AssertionError):
        assert_same(a, b)


def test_returned_data_never_shares_memory(env_id):
    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    obs0, info0 = env.reset(seed=0)
    obs1, _, _, _, info1 = env.step(sample_action(env.action_space, info0, rng))
    obs2, _, _, _, info2 = env.step(sample_action(env.action_space, info1, rng))
    for x, y in ((obs0, obs1), (obs1, obs2)):
        for u, v in zip(_arrays(x), _arrays(y)):
            assert not np.shares_memory(u, v)
    for x, y in ((info0, info1), (info1, info2)):
        for key in set(x) & set(y):
            if isinstance(x[key], np.ndarray):
                assert not np.shares_memory(x[key], y[key]), key


def test_uncopied_vector_observations_are_read_only(env_id):
    """``copy=False`` hands out the kernel's own buffers; a consumer writing into them (an in-place
    normalisation) would corrupt what some kernels draw the next observation over."""
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", copy=False)
    rng = np.random.default_rng(0)
    obs, info = vec.reset(seed=0)
    obs, *_, info = vec.step(sample_actions(vec, info, rng))
    for array in _arrays(obs):
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0


def _arrays(obs):
    return list(obs.values()) if isinstance(obs, dict) else [obs]


def test_reward_is_components_at_weights(env_id):
    env = gym.make(env_id)
    base = env.unwrapped
    names, weights = base.reward_components, base.reward_weights
    assert len(names) == len(weights) >= 1 and weights.dtype == np.float64
    rng = np.random.default_rng(5)
    _, info = env.reset(seed=5)
    nonzero = 0
    for _ in range(STEPS):
        _, reward, terminated, truncated, info = env.step(sample_action(env.action_space, info, rng))
        comps = info["reward_components"]
        assert comps.shape == (len(names),) and comps.dtype == np.float64
        assert reward == comps @ weights
        nonzero += reward != 0
        if terminated or truncated:
            _, info = env.reset()
    assert nonzero > 0, "the reward never moved in a random rollout"


def test_vector_rewards_are_components_at_weights(env_id):
    vec = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(0)
    _, infos = vec.reset(seed=0)
    for _ in range(100):
        _, rewards, _, _, infos = vec.step(sample_actions(vec, infos, rng))
        weights = vec.unwrapped.reward_weights   # row by row: a batched BLAS product may round otherwise
        assert np.array_equal(rewards, [row @ weights for row in infos["reward_components"]])


MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
@pytest.mark.parametrize("limit", [None, 25], ids=["natural-ends", "time-limit"])
def test_native_vector_matches_sync_vector(env_id, mode, limit):
    """make_vec(vector_entry_point) == make_vec(sync) in every autoreset mode: same seeds, same
    actions, same observations, rewards and infos, key by key and dtype by dtype (Gymnasium's
    layout: dicts of arrays with ``_`` masks, ``final_obs``/``final_info`` in SameStep)."""
    n = 3
    made = {"max_episode_steps": limit} if limit else {}
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                          autoreset_mode=mode, **made)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": mode}, **made)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    obs_a, info_a = native.reset(seed=7)
    obs_b, info_b = sync.reset(seed=7)
    assert_same(obs_a, obs_b)
    assert_same_layout(info_a, info_b)
    rng = np.random.default_rng(7)
    ends = 0
    for _ in range(STEPS):
        # after a masked reset the infos hold only the reset rows: read every row's mask live
        masks = {"action_mask": native.action_masks()} if "action_mask" in info_a else {}
        actions = sample_actions(native, masks, rng)
        obs_a, r_a, te_a, tr_a, info_a = native.step(actions)
        obs_b, r_b, te_b, tr_b, info_b = sync.step(actions)
        assert_same(obs_a, obs_b)
        assert_same_layout((r_a, te_a, tr_a), (r_b, te_b, tr_b))
        assert_same_layout(info_a, info_b)
        done = te_a | tr_a
        ends += int(done.sum())
        if mode == AutoresetMode.DISABLED and done.any():
            obs_a, info_a = native.reset(options={"reset_mask": done})
            obs_b, info_b = sync.reset(options={"reset_mask": done})
            assert_same(obs_a, obs_b)
            # same keys, dtypes and masks; rows not reset keep their values here (zeros in sync)
            assert_same_layout(_reported_rows(info_a), _reported_rows(info_b))
    if limit:
        assert ends > 0, "no episode ended: the test compared no end-of-episode infos"
    native.close()
    sync.close()


def _reported_rows(infos):
    """``infos`` with every entry whose ``_key`` mask is False zeroed (Gymnasium's placeholders)."""
    out = {}
    for key, value in infos.items():
        mask = infos.get(f"_{key}")
        if isinstance(value, dict):
            value = _reported_rows(value)
        elif mask is not None and isinstance(value, np.ndarray) and value.dtype != object:
            value = np.where(mask.reshape((-1,) + (1,) * (value.ndim - 1)), value, np.zeros((), value.dtype))
        out[key] = value
    return out


def assert_same_layout(a, b, path=""):
    """:func:`assert_same` that also requires equal dtypes (Gymnasium's info layout exactly)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same_layout(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_layout(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, \
            f"{path}: dtype {a.dtype} != {getattr(b, 'dtype', type(b))}"
        if a.dtype == object:
            assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
            for i, (x, y) in enumerate(zip(a.flat, b.flat)):
                assert_same_layout(x, y, f"{path}[{i}]") if isinstance(x, (dict, tuple)) else assert_same(x, y)
        else:
            assert_same(a, b, path)
    else:
        assert_same(a, b, path)


def test_same_step_autoreset_reports_final_observation(env_id):
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    single = gym.make(env_id)
    rng = np.random.default_rng(1)
    _, infos = vec.reset(seed=1)
    _, sinfo = single.reset(seed=1)
    for _ in range(5000):
        actions = sample_actions(vec, infos, rng)
        obs, _, term, trunc, infos = vec.step(actions)
        sobs, _, sterm, strunc, sinfo = single.step(actions[0])
        if term[0] or trunc[0]:
            assert sterm == term[0] and strunc == trunc[0]
            assert infos["_final_obs"][0]
            assert_same(infos["final_obs"][0], sobs)
            final = infos["final_info"]
            assert final["_episode_metrics"][0]
            assert_same({k: v[0].item() for k, v in final["episode_metrics"].items() if not k.startswith("_")},
                        sinfo["episode_metrics"])
            sobs, sinfo = single.reset()
            assert_same(_index(obs, 0), sobs)
            return
        assert_same(_index(obs, 0), sobs)
    pytest.fail("no episode ended within 5000 steps")


def _index(obs, i):
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def test_disabled_autoreset_requires_explicit_reset(env_id):
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.DISABLED)
    rng = np.random.default_rng(2)
    _, infos = vec.reset(seed=2)
    for _ in range(5000):
        _, _, term, trunc, infos = vec.step(sample_actions(vec, infos, rng))
        done = term | trunc
        if done.any():
            with pytest.raises(RuntimeError):
                vec.step(sample_actions(vec, infos, rng))
            _, infos = vec.reset(options={"reset_mask": done})
            # as SyncVectorEnv, the masks of a masked reset say which rows were reset; the other
            # rows keep their current values, so every row's action mask is still valid
            assert_same(infos["_reward_components"], done)
            vec.step(sample_actions(vec, infos, rng))
            return
    pytest.fail("no episode ended within 5000 steps")


def test_single_env_refuses_step_after_episode_end(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(4)
    _, info = env.reset(seed=4)
    for _ in range(5000):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            with pytest.raises(RuntimeError):
                env.step(sample_action(env.action_space, info, rng))
            return
    pytest.fail("no episode ended within 5000 steps")


def test_get_state_set_state_forks_identically(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(9)
    _, info = env.reset(seed=9)
    for _ in range(20):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            _, info = env.reset()
    snapshot = pickle.loads(pickle.dumps(env.get_state()))
    actions_rng_state = rng.bit_generator.state
    first = []
    start_info = info
    for _ in range(40):
        out = env.step(sample_action(env.action_space, info, rng))
        first.append(out)
        info = out[4]
        if out[2] or out[3]:
            break
    env.set_state(snapshot)
    rng.bit_generator.state = actions_rng_state
    info = start_info
    for expected in first:
        out = env.step(sample_action(env.action_space, info, rng))
        assert_same(out, expected)
        info = out[4]


def test_pickled_env_continues_identically(env_id):
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(3)
    _, info = env.reset(seed=3)
    for _ in range(10):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            _, info = env.reset()
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(50):
        action = sample_action(env.action_space, info, rng)
        out_a = env.step(action)
        out_b = clone.step(action)
        assert_same(out_a, out_b)
        info = out_a[4]
        if out_a[2] or out_a[3]:
            break


def test_set_state_rejects_foreign_state(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    state = env.get_state()
    state["num_envs"] = 7
    with pytest.raises(ValueError):
        env.set_state(state)


def test_action_masks_match_info(env_id):
    env = gym.make(env_id)
    if not isinstance(env.action_space, spaces.Discrete):
        pytest.skip("continuous actions have no mask")
    rng = np.random.default_rng(8)
    _, info = env.reset(seed=8)
    for _ in range(100):
        mask = info["action_mask"]
        assert mask.dtype == np.int8 and mask.shape == (env.action_space.n,)
        assert np.array_equal(env.unwrapped.action_masks(), mask.astype(bool))
        assert mask.any(), "some action must always be valid"
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            _, info = env.reset()


def test_episode_metrics_at_episode_end(env_id):
    env = gym.make(env_id)
    names = env.unwrapped.metric_names
    rng = np.random.default_rng(6)
    _, info = env.reset(seed=6)
    assert "episode_metrics" not in info
    for _ in range(20000):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        if term or trunc:
            metrics = info["episode_metrics"]
            assert tuple(metrics) == tuple(names)
            assert all(np.isfinite(v) for v in metrics.values())
            return
        assert "episode_metrics" not in info
    pytest.fail("no episode ended within 20000 random steps")


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render_modes(env_id, mode):
    env = gym.make(env_id, render_mode=mode)
    assert mode in env.metadata["render_modes"]
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
    frame = env.render()
    if mode == "ansi":
        assert isinstance(frame, str) and frame.strip()
    else:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] > 10 and frame.shape[1] > 10
        assert frame.std() > 0, "a blank picture"


def test_bad_kwarg_is_a_clear_error(env_id):
    with pytest.raises((ValueError, TypeError)):
        gym.make(env_id, no_such_option_anywhere=1)


def test_env_modules_do_not_import_torch_or_print():
    code = (
        "import sys, io, contextlib, gymnasium as gym, numpy as np, sysgym\n"
        "from tests.contract import sample_action\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    for e in sysgym.ENVIRONMENTS:\n"
        "        env = gym.make(e.id); _, info = env.reset(seed=0)\n"
        "        env.step(sample_action(env.action_space, info, np.random.default_rng(0)))\n"
        "        vec = gym.make_vec(e.id, num_envs=2, vectorization_mode='vector_entry_point')\n"
        "        vec.reset(seed=0)\n"
        "assert buf.getvalue() == '', buf.getvalue()\n"
        "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'tensorboard', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_feature_names_align_with_the_flattened_observation(env_id):
    env = gym.make(env_id)
    names = env.unwrapped.feature_names
    assert isinstance(names, tuple) and all(isinstance(n, str) and n for n in names)
    assert len(names) == spaces.flatdim(env.observation_space)
    assert len(set(names)) == len(names), "feature names must be unique"
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert vec.unwrapped.feature_names == names
