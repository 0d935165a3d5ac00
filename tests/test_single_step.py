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


# ---------------------------------------------------------------- the C step against the Python step
# KernelEnv.step hands an int action of a discrete space to SingleStep (sysgym/cython_core/
# single_step.pyx), one typed call; KernelEnv._step is the Python step it mirrors. Each check below
# runs the two on twin envs (same seed, same actions) and compares everything a caller can see.

ALL_IDS = sorted(k for k in gym.registry if k.startswith("sysgym/"))
# an episode limit that ends some episodes by truncation within the steps run (None: the spec's)
LIMITS = [None, 9]


def _twins(env_id: str, limit: int | None):
    kwargs = dict(gym.spec(env_id).kwargs)
    if limit is not None:
        kwargs["max_episode_steps"] = limit
    cls = type(gym.make(env_id).unwrapped)
    return cls(**kwargs), cls(**kwargs)


def _identical(a, b, where: str) -> None:
    """``a`` and ``b`` alike: type, and for arrays dtype, shape and bytes; dicts in the same key order."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous == b.flags.c_contiguous, where
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), where    # bitwise, NaN included
    else:
        assert a == b, where


def _arrays(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, np.ndarray):
        yield value


def _not_aliased(result, earlier: list, state: dict) -> None:
    """No array of ``result`` shares memory with the env's state or with an earlier step's arrays."""
    for array in _arrays(result):
        assert array.base is None or not isinstance(array.base, np.ndarray), "a view, not a fresh array"
        for live in state.values():
            assert not np.shares_memory(array, live)
        for old in earlier:
            assert not np.shares_memory(array, old)


@pytest.mark.filterwarnings("ignore:.*is out of date")
@pytest.mark.parametrize("limit", LIMITS, ids=lambda x: f"limit{x}")
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_c_step_is_the_python_step(env_id, limit):
    fast, slow = _twins(env_id, limit)
    discrete = isinstance(fast.action_space, gym.spaces.Discrete)
    assert (fast._fast is not None) == discrete      # continuous actions: the Python step only
    _identical(fast.reset(seed=11), slow.reset(seed=11), "reset")
    rng = np.random.default_rng(2)
    ends = taken = metrics = 0
    earlier: list = []
    for t in range(160):
        if discrete:
            pool = np.flatnonzero(fast.action_masks())
            action = int(rng.choice(pool)) if rng.random() < 0.8 or pool.size == fast.action_space.n \
                else int(rng.integers(fast.action_space.n))          # a masked action now and then
            if t % 3 == 1:
                action = np.int64(action)                            # numpy integers take the C step too
        else:
            action = fast.action_space.sample()
        got = fast.step(action)
        want = slow._step(action)
        _identical(got, want, f"{env_id} step {t}")
        assert type(got[1]) is float and type(got[2]) is bool and type(got[3]) is bool
        if discrete:
            taken += 1
            assert fast._fast.taken == taken, "the C step did not take an int action"
        _not_aliased(got[0], earlier, fast.batched._state)
        _not_aliased(got[4], earlier, fast.batched._state)
        earlier = list(_arrays(got[0])) + list(_arrays(got[4]))
        metrics += "episode_metrics" in got[4]
        if got[2] or got[3]:
            ends += 1
            assert "episode_metrics" in got[4] or got[3]
            for step in (fast.step, slow._step):
                with pytest.raises(RuntimeError, match=r"^step\(\) called after the episode ended"):
                    step(0 if discrete else action)
            _identical(fast.reset(), slow.reset(), "reset after the end")
            earlier = []
    _identical(fast.get_state(), slow.get_state(), "state after the run")
    if limit is not None:
        assert ends >= 3
    elif not env_id.startswith("sysgym/CC"):      # (a CC episode outlasts the 160 steps)
        assert metrics >= 1, "no episode ended in the kernel: episode_metrics untested"


@pytest.mark.parametrize("action", GOOD + BAD, ids=repr)
def test_c_step_hands_every_other_action_to_the_python_step(action):
    """A Python int or numpy integer in range is the C step's; anything else is the Python step's,
    which takes it or refuses it with its message, and the env stays steppable."""
    env, twin = _twins("sysgym/ABR-v0", None)
    env.reset(seed=1)
    twin.reset(seed=1)
    try:
        expected = _discrete_action(action, 6)
        refusal = None
    except ValueError as err:
        refusal = str(err)
    if refusal is None:
        _identical(env.step(action), twin._step(expected), "step")
        assert env._fast.taken == (1 if type(action) is int or isinstance(action, np.integer) else 0)
    else:
        with pytest.raises(ValueError) as refused:
            env.step(action)
        assert str(refused.value) == refusal
        assert env._fast.taken == 0
        _identical(env.step(2), twin._step(2), "the step after a refusal")


def test_c_step_refuses_a_busy_env_and_a_step_before_reset():
    env, twin = _twins("sysgym/DAG-EGS-v0", None)
    with pytest.raises(RuntimeError, match=r"^step\(\) called after the episode ended \(or before reset\(\)\)"):
        env.step(0)
    env.reset(seed=4)
    twin.reset(seed=4)
    lock = env._lock
    assert lock.acquire(False)          # another thread is stepping it
    try:
        with pytest.raises(RuntimeError, match="already being stepped or reset by another thread"):
            env.step(0)
    finally:
        lock.release()
    assert env._fast.taken == 0
    action = int(np.flatnonzero(env.action_masks())[0])
    _identical(env.step(action), twin._step(action), "the step after the busy refusal")
    assert not lock.locked()


def test_c_step_survives_pickling_and_set_state():
    import pickle

    env, twin = _twins("sysgym/ABR-Pensieve-v0", None)
    env.reset(seed=8)
    twin.reset(seed=8)
    for _ in range(5):
        _identical(env.step(3), twin._step(3), "before")
    copy = pickle.loads(pickle.dumps(env))
    assert copy._fast is not env._fast and copy._fast.taken == 0
    saved = twin.get_state()
    for _ in range(4):
        _identical(copy.step(1), twin._step(1), "after unpickling")
    assert copy._fast.taken == 4
    env.set_state(saved)
    twin.set_state(saved)
    for _ in range(4):
        _identical(env.step(4), twin._step(4), "after set_state")


def _extras_of_every_kind() -> dict:
    """(1,)-row extras of the dtypes and layouts the C step reads each its own way."""
    grid = np.arange(6, dtype=np.float64).reshape(1, 6) * 1.5
    return {"flag": np.array([True]), "i1": np.array([-3], np.int8), "i2": np.array([-300], np.int16),
            "i4": np.array([-7], np.int32), "u1": np.array([250], np.uint8), "u2": np.array([60000], np.uint16),
            "u4": np.array([4_000_000_000], np.uint32), "u8": np.array([2**64 - 5], np.uint64),
            "f4": np.array([0.1], np.float32),
            "strided": grid[:, ::2][:, 1], "row": grid.copy(), "cube": np.ones((1, 2, 2), np.int32),
            "row_strided": grid[:, ::2]}


@pytest.mark.parametrize("per_call", [False, True], ids=["one dict kept", "a new dict per call"])
def test_c_step_reads_extras_of_every_dtype_as_the_python_step(per_call):
    """Families' extras are int64/float64/bool 1-D today; any other dtype or layout must come out
    as the Python step gives it (memoryview scalars, fresh row copies), from one dict kept or a new
    dict per call."""
    env, twin = _twins("sysgym/ABR-v0", None)
    kept, kept_twin = _extras_of_every_kind(), _extras_of_every_kind()
    env.batched._extra_infos = (lambda: _extras_of_every_kind()) if per_call else (lambda: kept)
    twin.batched._extra_infos = (lambda: _extras_of_every_kind()) if per_call else (lambda: kept_twin)
    _identical(env.reset(seed=3), twin.reset(seed=3), "reset")
    for t in range(6):
        got, want = env.step(t % 6), twin._step(t % 6)
        _identical(got, want, f"step {t}")
        info = got[4]
        assert type(info["u8"]) is int and info["u8"] == 2**64 - 5
        assert type(info["flag"]) is bool and type(info["f4"]) is float and info["f4"] == float(np.float32(0.1))
        assert info["strided"] == 3.0 and np.array_equal(info["row_strided"], [0.0, 3.0, 6.0])
        if not per_call:
            kept["u1"][0] = kept_twin["u1"][0] = t          # a kept dict's arrays are read on every call
            kept["row"][0, 0] = kept_twin["row"][0, 0] = t
    assert env._fast.taken == 6
