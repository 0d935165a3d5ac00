"""Hostile inputs for the DeepRM env, run in a fresh process (tests/isolation.py) by
test_snapshots.py and test_workload.py: hand-made bad snapshots, and hypothesis-generated snapshots
and SWF files. Each must give a clear ValueError/FileNotFoundError or a valid env; never a crash,
a hang, or a NaN/out-of-space observation."""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import timedelta
from pathlib import Path

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sysgym  # noqa: F401
from sysgym.envs.deeprm import SWFWorkload, parse_swf
from sysgym.traces import trace_path

SWF = str(trace_path("deeprm", "synthetic_10.swf"))


def fuzz_settings(examples: int) -> settings:
    # derandomized: the same examples on every run; no example database written into the tree
    return settings(max_examples=examples, deadline=timedelta(seconds=5), derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def vector(num_envs: int = 2, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec("sysgym/DeepRM-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                        **kwargs).unwrapped


def check_outputs(space: gym.spaces.Box, obs: np.ndarray, rewards: np.ndarray, infos: dict) -> None:
    assert obs.dtype == np.float32 and np.all(np.isfinite(obs)), "non-finite observation"
    assert np.all(obs >= space.low) and np.all(obs <= space.high), "observation outside its space"
    assert np.all(np.isfinite(rewards)) and np.all(np.isfinite(infos["reward_components"])), "non-finite reward"
    for name, value in infos.get("episode_metrics", {}).items():
        assert np.all(np.isfinite(value)), f"non-finite metric {name}"


def run_vector(vec, steps: int, rng: np.random.Generator) -> None:
    """Step with random actions (valid picks, void, anything) and check every output."""
    space = vec.single_observation_space
    for _ in range(steps):
        masks = vec.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) if rng.random() < 0.6 else rng.integers(len(m))
                            for m in masks])
        obs, rewards, _, _, infos = vec.step(actions)
        check_outputs(space, obs, rewards, infos)


def warmed(vec, steps: int, seed: int = 0):
    vec.reset(seed=seed)
    run_vector(vec, steps, np.random.default_rng(seed))
    return vec


# ---------------------------------------------------------------------------------------------
# Hand-made snapshots (issue 9's cases)

def _outcome(env, state) -> str:
    try:
        env.set_state(state)
    except ValueError as err:
        run_vector(env, 5, np.random.default_rng(0))  # the refused state left the env usable
        return f"ValueError: {err}"
    return "accepted"


def _edited(env, edit) -> dict:
    state = copy.deepcopy(env.get_state())
    edit(state["arrays"])
    return state


def _forged(state: dict, target) -> dict:
    """The snapshot with the target's configuration fingerprint, so only the array checks stand."""
    return {**state, "config": target._config_id}


def snapshot_cases() -> None:
    """Print {case: "ValueError: ..." | "accepted"} as JSON."""
    results = {}
    gen = warmed(vector(new_job_rate=0.8), 30)
    results["none"] = _outcome(gen, None)
    results["truncated"] = _outcome(gen, {k: v for k, v in list(gen.get_state().items())[:3]})
    results["missing_array"] = _outcome(gen, _edited(gen, lambda a: a.pop("used")))

    swf = warmed(vector(workload=SWF, num_processors=10), 25)
    cfg = swf.config
    twin = warmed(vector(num_processors=10, max_job_length=cfg.max_job_length, max_job_size=cfg.max_job_size), 3)
    shapes = {k: (v.shape, v.dtype) for k, v in swf.get_state()["arrays"].items()}
    assert shapes == {k: (v.shape, v.dtype) for k, v in twin.get_state()["arrays"].items()}
    results["swf_into_generator"] = _outcome(twin, swf.get_state())
    results["swf_into_generator_forged"] = _outcome(twin, _forged(swf.get_state(), twin))
    results["generator_into_swf_forged"] = _outcome(swf, _forged(twin.get_state(), swf))

    wide = vector(num_resources=2, resource_capacity=(10, 30), max_job_size=10, new_job_rate=1.0)
    narrow = warmed(vector(num_resources=2, resource_capacity=(10, 10), max_job_size=10, new_job_rate=1.0), 3)
    wide.reset(seed=1)
    for _ in range(300):  # allocate whenever something fits until resource 1 holds more than 10
        masks = wide.action_masks()
        wide.step(np.array([int(np.argmax(m)) for m in masks]))
        if wide._state["used"][:, 1].max() > 10:
            break
    assert wide._state["used"][:, 1].max() > 10
    results["capacity_10_30_into_10_10"] = _outcome(narrow, wide.get_state())
    results["capacity_10_30_into_10_10_forged"] = _outcome(narrow, _forged(wide.get_state(), narrow))

    def waiting_job(a, field, value, resource=None):
        """Set ``field`` of the first waiting job of a sub-env with a non-empty queue."""
        env_index = int(np.argmax(a["n_wait"] > 0))
        assert a["n_wait"][env_index] > 0
        where = (env_index, a["wait"][env_index, 0]) + (() if resource is None else (resource,))
        a[field][where] = value

    def listed_twice(a):
        env_index = int(np.argmax(a["n_wait"] > 0))
        assert a["n_free"][env_index] > 0
        a["free"][env_index, a["n_free"][env_index] - 1] = a["wait"][env_index, 0]

    def used_plus_one(a):
        a["used"][0, 0, a["head"][0]] += 1

    edits = {
        "n_wait_1e6": lambda a: a["n_wait"].__setitem__(0, 10**6),
        "head_-5": lambda a: a["head"].__setitem__(0, -5),
        "now_beyond_time_limit": lambda a: a["now"].__setitem__(0, gen.config.time_limit + 1),
        "wait_slot_1e6": lambda a: a["wait"].__setitem__((int(np.argmax(a["n_wait"] > 0)), 0), 10**6),
        "slot_listed_twice": listed_twice,
        "job_len_0": lambda a: waiting_job(a, "job_len", 0),
        "job_size_11": lambda a: waiting_job(a, "job_size", 11, resource=0),
        "job_submit_future": lambda a: waiting_job(a, "job_submit", 10**6),
        "job_start_set": lambda a: waiting_job(a, "job_start", 0),
        "used_plus_one": used_plus_one,
        "acc_nan": lambda a: a["acc"].__setitem__((0, 0), np.nan),
        "n_jobs_plus_one": lambda a: a["n_jobs"].__setitem__(0, a["n_jobs"][0] + 1),
        "obs_2": lambda a: a["obs"].__setitem__((0, 0), 2.0),
    }
    for name, edit in edits.items():
        results[name] = _outcome(gen, _edited(gen, edit))
    for name, edit in {"trace_ptr_1e9": lambda a: a["trace_ptr"].__setitem__(0, 10**9),
                       "trace_base_-2^62": lambda a: a["trace_base"].__setitem__(0, -2**62),
                       "stream_start_-1": lambda a: a["stream_start"].__setitem__(0, -1),
                       "trace_ptr_minus_one": lambda a: a["trace_ptr"].__setitem__(0, a["trace_ptr"][0] - 1)}.items():
        results[name] = _outcome(swf, _edited(swf, edit))
    # protocol "bracis" ends every episode at T = 40 (time_limit 400): a clock past T is refused
    bracis = warmed(vector(protocol="bracis", episode_length=40, new_job_rate=0.8), 20)
    results["bracis_now_beyond_T"] = _outcome(
        bracis, _edited(bracis, lambda a: (a["now"].__setitem__(0, 41), a["head"].__setitem__(0, 41 % 35))))
    print(json.dumps(results))


# ---------------------------------------------------------------------------------------------
# Random snapshots

SNAPSHOT_ENVS = [
    {"new_job_rate": 0.8, "backlog": 5, "window": 3},
    {"observation": "image", "allocation": "reserve", "num_resources": 2, "num_processors": 6,
     "resource_capacity": (6, 4),
     "max_job_size": 3, "max_job_length": 6, "horizon": 5, "new_job_rate": 0.9, "backlog": 4},
    {"workload": SWF, "num_processors": 10, "transitions": "sparse"},
    {"protocol": "bracis", "episode_length": 30, "new_job_rate": 0.9, "transitions": "sparse"},
]


JOB_ARRAYS = ("job_len", "job_size", "job_submit", "job_start", "job_feat")


def live_job_element(arrays: dict, key_pick: int, index_pick: int) -> int | None:
    """A flat index into one of the JOB_ARRAYS inside the record of a waiting or allocated job."""
    a = arrays[JOB_ARRAYS[key_pick % len(JOB_ARRAYS)]]
    env = index_pick % a.shape[0]
    ids = [int(j) for key, count in (("wait", "n_wait"), ("run", "n_run"))
           for j in arrays[key][env, :max(0, int(arrays[count][env]))]]
    ids = [j for j in ids if 0 <= j < a.shape[1]]
    if not ids:
        return None
    job = ids[(index_pick // a.shape[0]) % len(ids)]
    record = int(np.prod(a.shape[2:], dtype=np.int64))
    return (env * a.shape[1] + job) * record + index_pick % record


def fuzz_snapshots(examples: int = 200) -> None:
    envs = [warmed(vector(**kwargs), 25, seed) for seed, kwargs in enumerate(SNAPSHOT_ENVS)]
    snapshots = [env.get_state() for env in envs]
    keys = [sorted(s["arrays"]) for s in snapshots]
    accepted = refused = 0

    value = st.one_of(st.sampled_from([-1, 0, 1, 2, 3, 10**6, -(2**40), 2**62, -(2**63)]),
                      st.integers(-5, 5).map(lambda d: ("delta", d)),
                      st.sampled_from([float("nan"), float("inf"), 0.5, -0.5, 1e300]))
    # (aim at a live job's record?, which array, which element, new value)
    edit = st.tuples(st.booleans(), st.integers(0, 10**6), st.integers(0, 10**9), value)

    @fuzz_settings(examples)
    @given(st.integers(0, len(envs) - 1), st.lists(edit, min_size=1, max_size=3), st.integers(0, 2**32))
    def check(which, edits, seed):
        nonlocal accepted, refused
        env, state = envs[which], copy.deepcopy(snapshots[which])
        arrays = state["arrays"]
        for live, key_pick, index_pick, new in edits:
            if live:
                i = live_job_element(arrays, key_pick, index_pick)
                if i is None:
                    continue
                a = arrays[JOB_ARRAYS[key_pick % len(JOB_ARRAYS)]]
            else:
                a = arrays[keys[which][key_pick % len(keys[which])]]
                i = index_pick % a.size
            flat = a.reshape(-1)
            if isinstance(new, tuple):
                new = flat[i].item() + new[1]
            if a.dtype.kind in "iub":
                if isinstance(new, float):
                    continue
                info = np.iinfo(a.dtype) if a.dtype.kind != "b" else np.iinfo(np.uint8)
                new = min(max(int(new), info.min), info.max)
            with np.errstate(over="ignore"):
                flat[i] = new
        try:
            env.set_state(state)
        except ValueError:
            refused += 1
            return
        accepted += 1
        run_vector(env, 30, np.random.default_rng(seed))

    check()
    assert refused > examples // 4 and accepted > 5, (accepted, refused)
    print(json.dumps({"accepted": accepted, "refused": refused}))


# ---------------------------------------------------------------------------------------------
# SWF files: random bytes and random numeric fields

def _load_and_run(path: Path, time_unit: float, processors: int, seed: int) -> bool:
    """False if the file is refused with a clear error; True after a checked rollout."""
    try:
        env = gym.make("sysgym/DeepRM-v0", workload=SWFWorkload(path, time_unit=time_unit),
                       num_processors=processors, episode_length=30)
    except (ValueError, FileNotFoundError):
        return False
    space = env.observation_space
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    for _ in range(60):
        obs, reward, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        check_outputs(space, obs[None], np.array([reward]), {**info, "episode_metrics":
                                                             info.get("episode_metrics", {})})
        if term or trunc:
            obs, info = env.reset()
    return True


def fuzz_swf(examples: int = 150) -> None:
    folder = Path(tempfile.mkdtemp())
    counts = {"bytes_loaded": 0, "fields_loaded": 0, "refused": 0}
    token = st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["-1", "0", "1", "60", "2.5", "1e19", "1e300", "nan", "inf", "-inf", "x", "1_0",
                         "0x10", "\ufeff1", "\u00a0"]),
    )
    good = st.tuples(st.integers(1, 10**6), st.integers(0, 10**6), st.integers(-1, 10**5), st.integers(-1, 64),
                     st.integers(-1, 10**5)).map(lambda f: [str(f[0]), str(f[1]), "0", str(f[2]), str(f[3]), "-1",
                                                            "-1", str(f[3]), str(f[4])] + ["-1"] * 9)
    perturbed = st.tuples(good, st.none() | st.tuples(st.integers(0, 17), token)).map(
        lambda g: g[0] if g[1] is None else g[0][:g[1][0]] + [g[1][1]] + g[0][g[1][0] + 1:])
    line = st.one_of(perturbed, perturbed, perturbed, st.lists(token, min_size=18, max_size=18),
                     st.lists(token, min_size=0, max_size=20))
    time_unit = st.sampled_from([1e-3, 1.0, 60.0, 1e9])

    @fuzz_settings(examples)
    @given(st.binary(max_size=300), time_unit, st.integers(1, 64), st.integers(0, 2**32))
    def random_bytes(data, unit, processors, seed):
        path = folder / "bytes.swf"
        path.write_bytes(data)
        try:
            parse_swf(path)
        except ValueError:
            pass
        counts["bytes_loaded" if _load_and_run(path, unit, processors, seed) else "refused"] += 1

    @fuzz_settings(examples)
    @given(st.lists(line, min_size=1, max_size=5), st.booleans(), time_unit, st.integers(1, 64),
           st.integers(0, 2**32))
    def random_fields(lines, header, unit, processors, seed):
        path = folder / "fields.swf"
        text = "\n".join(" ".join(fields) for fields in lines) + "\n"
        path.write_text(("; header\n" if header else "") + text, encoding="utf-8")
        counts["fields_loaded" if _load_and_run(path, unit, processors, seed) else "refused"] += 1

    random_bytes()
    random_fields()
    assert counts["fields_loaded"] > examples // 10 and counts["refused"] > examples // 4, counts
    print(json.dumps(counts))
