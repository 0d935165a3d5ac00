"""The native vector step's fast paths (envs/batched.py) return exactly what its general paths
return, and refuse what they refuse:

* the common call runs in one typed call (``VectorStep.step``, cython_core/vector_step.pyx):
  int64 (B,) actions of a discrete space (range-checked in C) or finite float actions of a Box
  space, the kernel call, NextStep resets, the step count and truncation, the reward sum, fresh
  flags, observations and infos (copied with a plan made once when the family returns the same
  extras dict every call); anything else, a refused action or a SameStep autoreset goes through
  the general Python path (``_load_actions``, ``_step_limit``, ``_finish``, ``_general_infos``);
* rewards: ``VectorStep`` and ``_rewards`` (one multiply into a scratch buffer, then column adds)
  both equal :func:`weighted_sum` bit for bit;

A reference env built with the same kwargs and seed is forced onto the general paths; both are
stepped with the same actions through every autoreset mode, and every output is compared key
order, dtype, shape and bytes. Also: what one step returns is never written by later steps
(a caller may keep it), and Appointments' in-place extras equal the formula worked by hand.
"""

from __future__ import annotations

import copy
import pickle
import struct
import types

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401  (registers the envs)
from sysgym.cython_core.vector_step import weighted_rewards
from sysgym.envs.batched import BatchedKernelEnv, weighted_sum
from tests.contract import sample_actions

B = 8
IDS = ["sysgym/DeepRM-CompactSparse-v0", "sysgym/ABR-v0", "sysgym/CC-Discrete-v0", "sysgym/CC-v0",
       "sysgym/Appointments-P1-v0", "sysgym/DAG-EGS-v0"]
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


def _make(env_id, mode=AutoresetMode.NEXT_STEP, **kwargs):
    return gym.make_vec(env_id, num_envs=B, vectorization_mode="vector_entry_point", autoreset_mode=mode,
                        **kwargs).unwrapped


def _general(vec):
    """``vec`` forced onto the general paths of the step."""
    vec._fast = None
    vec._rewards = lambda comps: weighted_sum(comps, vec.reward_weights)
    return vec


def assert_identical(a, b, path="", strides=True):
    """Same structure, dict key order, types, dtypes, shapes, bytes and (with ``strides``) memory layout."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{path}.{key}", strides)
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]", strides)
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{path}: {a.dtype} {a.shape} != {b.dtype} {b.shape}"
        assert not strides or a.strides == b.strides, f"{path}: strides {a.strides} != {b.strides}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.flat, b.flat)):
                assert_identical(x, y, f"{path}[{i}]", strides)
        else:
            assert a.tobytes() == b.tobytes(), f"{path}: {a} != {b}"
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"


def _sharing(value):
    """Which arrays of a step's output (by position) share memory: the same in the fast and the
    general path (the ``_key`` masks of one dict may be one array; nothing else is shared)."""
    arrays = list(_arrays(value))
    return {(i, j) for i in range(len(arrays)) for j in range(i + 1, len(arrays))
            if np.shares_memory(arrays[i], arrays[j])}


def _arrays(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, tuple):
        for v in value:
            yield from _arrays(v)
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            for v in value.flat:
                yield from _arrays(v)
        else:
            yield value


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
@pytest.mark.parametrize("env_id", IDS)
def test_fast_paths_return_what_the_general_paths_return(env_id, mode):
    kwargs = {} if "ABR" in env_id or "Appointments" in env_id else {"max_episode_steps": 20}
    fast, slow = _make(env_id, mode, **kwargs), _general(_make(env_id, mode, **kwargs))
    assert_identical(fast.reset(seed=5), slow.reset(seed=5))
    rng = np.random.default_rng(5)
    ends = resets_in_step = expected = partial = 0
    for k in range(70):
        if k == 4:      # half the sub-envs start over: episodes end at different calls from now on
            half = np.arange(B) % 2 == 0
            assert_identical(fast.reset(options={"reset_mask": half}), slow.reset(options={"reset_mask": half}))
        masks = {"action_mask": fast.action_masks()} if fast.discrete else {}
        actions = sample_actions(fast, masks, rng)
        if k % 7 == 3:          # another dtype: the general action path on both
            actions = actions.astype(np.int32 if fast.discrete else np.float16)
        elif not fast.discrete and k % 2:
            actions = actions.astype(np.float64)     # both float dtypes VectorStep loads
        elif fast.discrete and k % 2:
            actions = np.stack([actions, actions[::-1]], axis=1)[:, 0]     # int64, strided
        resets_in_step += bool(fast._state["needs_reset"].any())
        out = fast.step(actions)
        expected_out = slow.step(actions.copy())
        assert_identical(out, expected_out)
        assert _sharing(out) == _sharing(expected_out), "other arrays of one step share memory"
        done = out[2] | out[3]
        ends += int(done.sum())
        partial += 0 < done.sum() < B
        # the fast path takes every call of int64 / float actions, SameStep's autoresets included
        expected += k % 7 != 3
        if mode == AutoresetMode.DISABLED and done.any():
            assert_identical(fast.reset(options={"reset_mask": done}), slow.reset(options={"reset_mask": done}))
    assert ends > 0 and partial > 0, "no episode ended while others ran: the autoreset paths were not compared"
    if mode == AutoresetMode.NEXT_STEP:
        assert resets_in_step > 0, "no NextStep reset inside a step was compared"
    assert fast._fast.taken == expected


@pytest.mark.parametrize("env_id", ["sysgym/ABR-v0", "sysgym/DAG-EGS-v0"])
def test_fast_action_check_refuses_what_the_general_one_refuses(env_id):
    fast, slow = _make(env_id), _general(_make(env_id))
    fast.reset(seed=1)
    slow.reset(seed=1)
    n = int(fast.single_action_space.n)
    valid = np.flatnonzero(fast.action_masks()[0])
    for bad in (-1, n, 2**62, -(2**63), 2**63 - 1):
        actions = np.full(B, valid[0], dtype=np.int64)
        actions[3] = bad
        before = fast.get_state()["arrays"]
        errors = []
        for env in (fast, slow):
            with pytest.raises(ValueError, match=rf"actions must lie in \[0, {n - 1}\]") as err:
                env.step(actions)
            errors.append(str(err.value))
        assert errors[0] == errors[1]
        after = fast.get_state()["arrays"]
        for key, value in before.items():       # refused before anything was written
            assert np.array_equal(after[key], value), key
    for edge in (0, n - 1):   # both ends of the range pass the fast check (the kernel sees them)
        actions = np.full(B, edge, dtype=np.int64)
        fast._load_actions = None                # the fast path must not need the general one
        try:
            fast.step(actions)
        except ValueError as err:     # DAG's default "reject" takes any edge; only a range error fails
            assert "must lie" not in str(err)
        finally:
            del fast._load_actions
        assert fast._state["actions"].tolist() == [edge] * B


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-CompactSparse-v0", "sysgym/CC-v0", "sysgym/DAG-EGS-v0"])
def test_fast_path_with_copy_false_returns_the_general_paths_views(env_id):
    fast = _make(env_id, copy=False, max_episode_steps=10)
    slow = _general(_make(env_id, copy=False, max_episode_steps=10))
    assert_identical(fast.reset(seed=3), slow.reset(seed=3))
    rng = np.random.default_rng(3)
    for _ in range(25):
        masks = {"action_mask": fast.action_masks()} if fast.discrete else {}
        actions = sample_actions(fast, masks, rng)
        out, expected = fast.step(actions), slow.step(actions)
        assert_identical(out, expected)
        for obs in (out[0].values() if isinstance(out[0], dict) else [out[0]]):
            assert not obs.flags.writeable and any(np.shares_memory(obs, a) for a in fast._state.values())
    assert fast._fast.taken == 25


@pytest.mark.parametrize("mode", [AutoresetMode.DISABLED, AutoresetMode.SAME_STEP], ids=["Disabled", "SameStep"])
def test_stepping_a_sub_env_awaiting_reset_is_refused_by_both(mode):
    """Before the first reset (every sub-env awaits one) and, with Disabled, after an episode ended."""
    for env in (_make("sysgym/ABR-v0", mode), _general(_make("sysgym/ABR-v0", mode))):
        with pytest.raises(RuntimeError, match="whose episode ended"):
            env.step(np.zeros(B, dtype=np.int64))
        assert not env._state["episode_steps"].any() and not env._state["actions"].any()
    if mode == AutoresetMode.DISABLED:
        fast, slow = _make("sysgym/ABR-v0", mode, max_episode_steps=3), \
            _general(_make("sysgym/ABR-v0", mode, max_episode_steps=3))
        for env in (fast, slow):
            env.reset(seed=0)
            for _ in range(3):
                env.step(np.ones(B, dtype=np.int64))
            before = env.get_state()["arrays"]
            with pytest.raises(RuntimeError, match="call reset"):
                env.step(np.ones(B, dtype=np.int64))
            after = env.get_state()["arrays"]
            assert all(np.array_equal(after[k], v) for k, v in before.items())
        assert fast._fast.taken == 3


def test_box_actions_refused_alike():
    fast, slow = _make("sysgym/CC-v0"), _general(_make("sysgym/CC-v0"))
    shape = fast._state["actions"].shape
    for env in (fast, slow):
        env.reset(seed=0)
    for bad in (np.full(shape, np.nan), np.full(shape, np.inf, dtype=np.float32), np.zeros((B + 1, *shape[1:])),
                np.zeros(shape, dtype=bool)):
        before = fast.get_state()["arrays"]
        errors = []
        for env in (fast, slow):
            with pytest.raises(ValueError) as err:
                env.step(bad)
            errors.append(str(err.value))
        assert errors[0] == errors[1]
        after = fast.get_state()["arrays"]
        assert all(np.array_equal(after[k], v) for k, v in before.items())
    assert fast._fast.taken == 0
    strided = np.full((*shape[:-1], 2 * shape[-1]), 0.5)[..., ::2]
    assert strided.shape == shape and not strided.flags.c_contiguous
    assert_identical(fast.step(strided), slow.step(strided))     # the general path loads it
    assert fast._fast.taken == 0
    assert_identical(fast.step(strided.copy()), slow.step(strided.copy()))
    assert fast._fast.taken == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("b", [1, 8, 300])
def test_rewards_add_the_same_products_left_to_right(k, b):
    rng = np.random.default_rng(k * 1000 + b)
    special = np.array([0.0, -0.0, 1e-310, -1e-310, 1e308, -1e308, np.inf, -np.inf, 1 / 3, 0.1, 1e16, 1.0])
    comps = np.where(rng.random((b, k)) < 0.3, rng.choice(special, (b, k)), rng.normal(0, 1e3, (b, k)))
    weights = rng.choice(np.array([1.0, -1.0, 0.5, 10.0, -1000.0, 1e-3, 3.0]), k)
    products = np.empty((b, k))
    env = types.SimpleNamespace(reward_weights=weights,
                                _reward_scratch=(products, tuple(products[:, j] for j in range(k))))
    with np.errstate(over="ignore", invalid="ignore"):
        got = BatchedKernelEnv._rewards(env, comps)
        reference = weighted_sum(comps, weights)
    assert got.dtype == np.float64 and got.shape == (b,)
    for i in range(b):
        c, w = comps[i].tolist(), weights.tolist()
        expected = c[0] * w[0]          # Python floats: IEEE products, added left to right
        for j in range(1, k):
            expected += c[j] * w[j]
        assert struct.pack("<d", got[i]) == struct.pack("<d", expected) or (expected != expected and got[i] != got[i]), \
            (i, c, w, got[i], expected)
    assert np.array_equal(got, reference, equal_nan=True)
    assert np.array_equal(weighted_rewards(comps, weights), got, equal_nan=True)   # VectorStep's sum
    assert weighted_rewards(comps, weights).view(np.uint64).tolist() == got.view(np.uint64).tolist() or \
        np.isnan(got).any()


def test_non_finite_rewards_take_numpys_path():
    """A reward sum that is not finite comes from numpy's ``_rewards`` (whose warnings it keeps)."""
    vec = _make("sysgym/CC-Discrete-v0")
    vec.reset(seed=0)
    assert not vec.step(np.zeros(B, dtype=np.int64))[2].any()
    calls = []
    general = vec._rewards
    vec._rewards = lambda comps: calls.append(1) or general(comps)
    vec.step(np.zeros(B, dtype=np.int64))
    assert calls == [], "a finite sum took numpy's path"
    vec._state["reward_components"][:] = 1e308     # the next step's kernel would overwrite it:
    vec._step_kernel = lambda active: None         # keep it, so that 10 x 1e308 overflows
    with pytest.warns(RuntimeWarning, match="overflow"):
        _, rewards, _, _, _ = vec.step(np.zeros(B, dtype=np.int64))
    assert calls == [1] and not np.isfinite(rewards).any()


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP], ids=["NextStep", "SameStep"])
@pytest.mark.parametrize("env_id", IDS)
def test_what_a_step_returns_is_never_written_later(env_id, mode):
    """A caller may keep a step's arrays (a rollout buffer holding infos): no later step, reset or
    autoreset changes them, and none of them is a view of the env's state."""
    vec = _make(env_id, mode, max_episode_steps=15)
    rng = np.random.default_rng(2)
    kept = [vec.reset(seed=2)]
    for _ in range(25):
        masks = {"action_mask": vec.action_masks()} if vec.discrete else {}
        kept.append(vec.step(sample_actions(vec, masks, rng)))
        for array in _arrays(kept[-1]):
            for key, state in vec._state.items():
                assert not np.shares_memory(array, state), key
    copies = copy.deepcopy(kept)
    for _ in range(25):
        masks = {"action_mask": vec.action_masks()} if vec.discrete else {}
        vec.step(sample_actions(vec, masks, rng))
    vec.reset(seed=3)
    for before, now in zip(copies, kept):
        assert_identical(before, now, strides=False)


@pytest.mark.parametrize("env_id", ["sysgym/Appointments-P1-v0", "sysgym/Appointments-P3-v1"])
def test_appointments_extras_follow_the_booked_schedule(env_id):
    """delay = end - booked start of the next item, booked = (tasks placed) x slot + (breaks placed)
    x break_booked, worked out here on Python numbers; invalid_action = reward component 2 < 0."""
    vec = _make(env_id)
    cfg = vec.config
    rng = np.random.default_rng(4)
    _, infos = vec.reset(seed=4)
    invalid_seen = 0
    for k in range(60):
        actions = rng.integers(0, vec.single_action_space.n, B)     # invalid ones too
        _, _, _, _, infos = vec.step(actions)
        s = vec._state
        for i in range(B):      # every row: a reset row reports its fresh schedule
            placed = [c - r for c, r in zip(cfg.counts, s["rem"][i].tolist())]
            booked = (placed[0] + placed[1]) * cfg.slot + placed[2] * cfg.break_booked
            assert infos["delay"][i] == float(s["end"][i]) - booked, (k, i)
            assert infos["invalid_action"][i] == (float(s["reward_components"][i, 2]) < 0)
        invalid_seen += int(infos["invalid_action"].sum())
    assert invalid_seen > 0


def _odd_extras(b):
    """Extras of every kind the info dtypes convert (int32, uint8, float32 to int64/float64), a bool
    one and a 2-D Fortran-order one (its dtype and memory order kept), rewritten each call."""
    block = np.zeros((3, b), dtype=np.float32).T       # (b, 3), F-ordered
    return {"small_int": np.zeros(b, dtype=np.int32), "byte": np.zeros(b, dtype=np.uint8),
            "single": np.zeros(b, dtype=np.float32), "flag": np.zeros(b, dtype=bool), "block": block}


def _fill(extras, state):
    steps = state["episode_steps"]
    extras["small_int"][:] = steps - 3
    extras["byte"][:] = steps % 256
    extras["single"][:] = steps / 3
    extras["flag"][:] = steps % 2 == 1
    extras["block"][:] = (steps[:, None] * np.array([1.0, 0.5, -2.0])).astype(np.float32)
    return extras


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP], ids=["NextStep", "SameStep"])
@pytest.mark.parametrize("per_call", [False, True], ids=["one dict", "a dict per call"])
def test_infos_plan_converts_dtypes_as_the_general_path(per_call, mode):
    fast, slow = _make("sysgym/ABR-v0", mode, max_episode_steps=7), \
        _general(_make("sysgym/ABR-v0", mode, max_episode_steps=7))
    for env in (fast, slow):
        kept = _odd_extras(B)
        env._extra_infos = (lambda env=env: _fill(_odd_extras(B), env._state)) if per_call else \
            (lambda env=env, kept=kept: _fill(kept, env._state))
    assert_identical(fast.reset(seed=0), slow.reset(seed=0))
    history = []
    for k in range(60):
        actions = np.full(B, k % 6, dtype=np.int64)
        out = fast.step(actions)
        assert_identical(out, slow.step(actions))
        history.append((out, copy.deepcopy(out)))
    infos = history[-1][0][4]
    assert [infos[key].dtype for key in ("small_int", "byte", "single", "flag", "block")] == \
        [np.int64, np.int64, np.float64, np.bool_, np.float32]
    assert infos["block"].flags.f_contiguous and not infos["block"].flags.c_contiguous
    for kept, copied in history:    # (a deep copy makes views contiguous: bytes compared, not strides)
        assert_identical(kept, copied, strides=False)
    assert fast._fast.taken > 0


@pytest.mark.parametrize("env_id", ["sysgym/ABR-v0", "sysgym/DAG-EGS-v0"])
def test_same_step_autoreset_of_a_family_building_its_extras_per_call(env_id):
    """Plain extras in a new dict every call: the plan made on a SameStep call where every sub-env
    ends (the first, with max_episode_steps=1) no longer fits the final infos' dict (general path)."""
    fast, slow = _make(env_id, AutoresetMode.SAME_STEP, max_episode_steps=1), \
        _general(_make(env_id, AutoresetMode.SAME_STEP, max_episode_steps=1))
    for env in (fast, slow):
        own = env._extra_infos
        env._extra_infos = lambda own=own: dict(own())
    assert_identical(fast.reset(seed=1), slow.reset(seed=1))
    rng = np.random.default_rng(1)
    for _ in range(4):
        actions = sample_actions(fast, {"action_mask": fast.action_masks()}, rng)
        out = fast.step(actions)
        assert out[3].all() and "final_info" in out[4]
        assert_identical(out, slow.step(actions))
    assert fast._fast.taken == 1        # the first call; then the plan is dropped (a new dict per call)


def test_unpickled_env_binds_its_own_arrays():
    vec = _make("sysgym/ABR-v0")
    vec.reset(seed=0)
    vec.step(np.zeros(B, dtype=np.int64))
    twin = pickle.loads(pickle.dumps(vec))
    for view in twin._views[:8]:
        assert any(np.shares_memory(view, a) for a in twin._state.values())
        assert not any(np.shares_memory(view, a) for a in vec._state.values())
    for k in range(60):
        actions = np.full(B, k % 6, dtype=np.int64)
        assert_identical(vec.step(actions), twin.step(actions))
