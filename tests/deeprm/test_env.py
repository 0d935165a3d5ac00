"""DeepRM environment: configuration, observation layout and the properties the papers rely on."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.deeprm import SCENARIOS, build_config
from tests.contract import sample_action

ALL_IDS = ["sysgym/DeepRM-Image-v0", "sysgym/DeepRM-Compact-v0", "sysgym/DeepRM-CompactSparse-v0",
           "sysgym/DeepRM-CompactSparseReduced-v0"]


def swf(tmp_path, jobs):
    """Write an SWF trace of (submit_s, run_s, procs) jobs; time_unit 1 s keeps steps = seconds."""
    lines = [" ".join(str(f) for f in [i + 1, t, 0, run, p, -1, -1, p, run, -1, 1, 1, 1, 1, 1, 1, -1, -1])
             for i, (t, run, p) in enumerate(jobs)]
    path = tmp_path / "jobs.swf"
    path.write_text("\n".join(lines) + "\n")
    from sysgym.envs.deeprm import SWFWorkload
    return SWFWorkload(path, time_unit=1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario": 11}, "scenario"),
    ({"scenario": 3, "num_processors": 12}, "scenario=3 sets num_processors"),
    ({"observation": "pixels"}, "observation"),
    ({"transitions": "event"}, "transitions"),
    ({"reward_jobs": "some"}, "reward_jobs"),
    ({"allocation": "later"}, "allocation"),
    ({"protocol": "paper"}, "protocol"), ({"protocol": None}, "protocol"),
    ({"max_job_size": 12}, "exceeds"),
    ({"window": 0}, "window"),
    ({"new_job_rate": 1.5}, "new_job_rate"),
    ({"smdp_gamma": 0.0}, "smdp_gamma"),
    ({"num_resources": 2, "resource_capacity": (10,)}, "resource_capacity"),
    ({"workload": 42}, "workload"),
    # every numeric kwarg has a range checked before any cast to a C type
    ({"backlog": 2**31 - 10}, "backlog"),           # overflowed a C int: every job dropped
    ({"max_job_length": 10**9}, "max_job_length"),  # allocated 3.9 GB
    ({"max_job_length": float("nan")}, "max_job_length"),
    ({"num_processors": 2**17}, "num_processors"),
    ({"num_resources": 9}, "num_resources"),
    ({"num_resources": 2, "resource_capacity": 7}, "resource_capacity"),
    ({"num_resources": 2, "resource_capacity": (10, 2**40)}, r"resource_capacity\[1\]"),
    ({"window": 2**31}, "window"), ({"horizon": 0}, "horizon"), ({"horizon": 10**6}, "horizon"),
    ({"episode_length": 10**8}, "episode_length"), ({"time_limit": 10**9}, "time_limit"),
    ({"time_limit": 1.5}, "time_limit"), ({"window": True}, "window"),
    ({"new_job_rate": float("nan")}, "new_job_rate"), ({"small_job_chance": -0.1}, "small_job_chance"),
    ({"smdp_gamma": float("inf")}, "smdp_gamma"), ({"scenario": True}, "scenario"),
    ({"trace_start": "first"}, "trace_start"),      # the generator has no trace to start in
])
def test_bad_kwargs_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("sysgym/DeepRM-v0", **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_resources": 8, "max_job_length": 2**21}, r"64 MiB cap: usage profile \(num_resources=8 x \(horizon=20 "
                                                    r"\+ max_job_length=2097152\) slots\): 64\.0 MiB"),
    ({"num_processors": 2**16, "max_job_size": 10, "allocation": "reserve", "horizon": 4096}, r"job records"),
    ({"observation": "image", "num_processors": 2**16, "max_job_size": 2**16, "window": 1024},
     r"image observation"),
])
def test_state_per_sub_env_is_capped(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_config(**kwargs)


def test_state_arrays_match_the_documented_memory_estimate():
    for kwargs in ({}, {"observation": "image", "num_resources": 3, "allocation": "reserve", "backlog": 7}):
        vec = gym.make_vec("sysgym/DeepRM-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
        cfg = vec.unwrapped.config
        per_env = sum(a.nbytes for a in vec.unwrapped._state.values()) / 2
        estimate = sum(cfg.state_bytes().values())
        assert estimate <= per_env <= estimate + 512   # the rest: scalars, masks, rng, metrics


def test_missing_swf_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.swf"):
        gym.make("sysgym/DeepRM-v0", workload=str(tmp_path / "nope.swf"))


def test_scenarios_match_bracis_table_3():
    assert SCENARIOS[3] == (38, 15, 32) and SCENARIOS[9] == (64, 48, 32) and len(SCENARIOS) == 10
    for k, (procs, length, size) in SCENARIOS.items():
        cfg = build_config(scenario=k)
        assert (cfg.num_processors, cfg.max_job_length, cfg.max_job_size) == (procs, length, size)


def test_compact_observation_size_does_not_depend_on_cluster_size():
    shapes = {gym.make("sysgym/DeepRM-Compact-v0", scenario=k).observation_space.shape for k in SCENARIOS}
    assert shapes == {(2 * 20 + 10 * 8 + 3,)}
    image_widths = {gym.make("sysgym/DeepRM-Image-v0", scenario=k).observation_space.shape[1] for k in (1, 3)}
    assert len(image_widths) == 2     # the image, by contrast, grows with the cluster


def test_image_layout_by_hand(tmp_path):
    # One 2-processor, 3-step job on a 5-processor cluster, max job size 4, window 2, H 6, backlog 5.
    wl = swf(tmp_path, [(0, 3, 2)])
    env = gym.make("sysgym/DeepRM-Image-v0", workload=wl, num_processors=5, max_job_size=4, window=2,
                   horizon=6, backlog=5, trace_start="first")
    obs, _ = env.reset(seed=0)
    width = 5 + 2 * 4 + 1 + 1       # cluster | slot 0 | slot 1 | backlog (ceil(5/6) = 1) | clock
    assert obs.shape == (6, width)
    expected = np.zeros((6, width), dtype=np.float32)
    expected[:3, 5:7] = 1.0          # slot 0: rows 0..2 (length), 2 columns (size)
    np.testing.assert_array_equal(obs, expected)
    obs, *_ = env.step(0)            # allocate: it occupies the cluster block, now-relative
    expected = np.zeros((6, width), dtype=np.float32)
    expected[:3, 0:2] = 1.0
    np.testing.assert_array_equal(obs, expected)
    obs, *_ = env.step(2)            # void: one step later 2 rows remain; clock column 1/10
    assert obs[:, 0:2].sum() == 4 and obs[:2, 0:2].all()
    np.testing.assert_allclose(obs[:, -1], 0.1)


def test_compact_features_by_hand(tmp_path):
    # Job A (3 steps, 2 procs) at t=0; job B (1 step, 1 proc) at t=1; 4 processors, d=3, T=10.
    wl = swf(tmp_path, [(0, 3, 2), (1, 1, 1)])
    env = gym.make("sysgym/DeepRM-Compact-v0", workload=wl, num_processors=4, max_job_size=4, window=2,
                   horizon=3, backlog=2, episode_length=10, trace_start="first")
    env.reset(seed=0)
    env.step(0)                       # A runs t=0..2
    obs, *_ = env.step(2)             # t=1: B arrives with A holding 2 of 4 processors
    cluster = obs[:6].reshape(3, 2)   # (used, free) / 4 for t = 1, 2, 3
    np.testing.assert_allclose(cluster, [[0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
    slot0 = obs[6:14]
    y = 4 / (4 * 3)                   # remaining work of A at B's submission: 2 steps x 2 procs
    np.testing.assert_allclose(slot0, [1, 0, 1 / 3, 1 / 4, 0, 0, 2 / 4, y / (1 + y)], rtol=1e-6)
    np.testing.assert_array_equal(obs[14:22], 0)      # empty slot 1
    np.testing.assert_allclose(obs[22:], [0, 0, 8 / 10], rtol=1e-6)


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Compact-v0", "sysgym/DeepRM-CompactSparse-v0"])
def test_undiscounted_return_is_minus_total_slowdown(env_id):
    env = gym.make(env_id, scenario=3)
    rng = np.random.default_rng(0)
    checked = 0
    for seed in range(20):
        _, info = env.reset(seed=seed)
        total, term, trunc = 0.0, False, False
        while not (term or trunc):
            _, r, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
            total += r
        m = info["episode_metrics"]
        if term and m["jobs_dropped"] == 0:
            assert total == pytest.approx(-m["mean_slowdown"] * m["jobs_finished"], rel=1e-9)
            checked += 1
    assert checked >= 15


def test_bounded_rewards_lie_in_minus_one_zero():
    env = gym.make("sysgym/DeepRM-v0", scenario=2, reward_scale="bounded", allocation="reserve",
                   new_job_rate=0.9, backlog=20)
    rng = np.random.default_rng(1)
    _, info = env.reset(seed=1)
    worst = 0.0
    for _ in range(3000):
        _, r, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        assert -1.0 <= r <= 0.0
        worst = min(worst, r)
        if term or trunc:
            _, info = env.reset()
    assert worst < -0.01


def test_reduced_reward_counts_only_window_jobs():
    env = gym.make("sysgym/DeepRM-CompactSparseReduced-v0")
    assert env.unwrapped.reward_weights.tolist() == [0.0, 1.0, 0.0]
    rng = np.random.default_rng(2)
    _, info = env.reset(seed=2)
    for _ in range(500):
        _, r, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        assert r == info["reward_components"][1]
        if term or trunc:
            _, info = env.reset()


def test_sparse_agent_is_only_asked_when_a_job_fits():
    env = gym.make("sysgym/DeepRM-CompactSparse-v0", scenario=5)
    rng = np.random.default_rng(3)
    _, info = env.reset(seed=3)
    skipped = 0
    for _ in range(2000):
        assert info["action_mask"][:-1].any()
        _, _, term, trunc, info = env.step(sample_action(env.action_space, info, rng))
        skipped += info["elapsed"] > 1
        if term or trunc:
            _, info = env.reset()
    assert skipped > 0


def test_smdp_gamma_discounts_skipped_steps():
    kwargs = dict(scenario=2, transitions="sparse", new_job_rate=0.6)
    plain, disc = gym.make("sysgym/DeepRM-v0", **kwargs), gym.make("sysgym/DeepRM-v0", smdp_gamma=0.5, **kwargs)
    _, info = plain.reset(seed=4)
    disc.reset(seed=4)
    rng = np.random.default_rng(4)
    compared = 0
    for _ in range(300):
        a = sample_action(plain.action_space, info, rng)
        _, r1, term, trunc, info = plain.step(a)
        _, r2, *_ = disc.step(a)
        if info["elapsed"] >= 2 and r1 < 0:
            assert r1 < r2 < 0     # later steps weigh 0.5^k < 1
            compared += 1
        if term or trunc:
            break
    assert compared > 0


def test_full_backlog_counts_drops_and_conserves_jobs():
    env = gym.make("sysgym/DeepRM-v0", window=2, backlog=3, new_job_rate=1.0, episode_length=60)
    _, info = env.reset(seed=0)
    term = trunc = False
    while not (term or trunc):
        _, _, term, trunc, info = env.step(2)   # window=2, so 2 is void: nothing ever runs
        if trunc or term:
            break
    m = info["episode_metrics"]
    arrived = int(env.unwrapped.batched._state["n_jobs"][0])
    assert arrived == 60 and m["jobs_dropped"] == 60 - 5
    assert m["jobs_finished"] + m["jobs_left"] + m["jobs_dropped"] == arrived
    # Nothing finished, so mean_slowdown says 0; the stranded jobs show in mean_slowdown_all:
    # the 5 queued jobs arrived at t <= 4 and waited until the time limit, lengths <= 15.
    assert m["mean_slowdown"] == 0 and m["episode_time"] == 600
    assert m["mean_slowdown_all"] >= (600 - 4) / 15


def test_reserve_allocation_places_jobs_in_the_future(tmp_path):
    # 2 processors. A: 3 steps x 2 procs, B: 1 step x 2 procs, both at t=0.
    wl = swf(tmp_path, [(0, 3, 2), (0, 1, 2)])
    now = gym.make("sysgym/DeepRM-v0", workload=wl, num_processors=2, trace_start="first", allocation="now")
    res = gym.make("sysgym/DeepRM-v0", workload=wl, num_processors=2, trace_start="first", allocation="reserve")
    for env in (now, res):
        env.reset(seed=0)
        _, _, _, _, info = env.step(0)          # A starts at 0
        assert info["action_mask"][0] == (env is res)   # B fits only as a reservation (at t=3)
    _, r, _, _, info = res.step(0)              # reserve B: no time passes, reward 0
    assert r == 0.0 and info["time"] == 0
    term = False
    while not term:
        _, _, term, _, info = res.step(10)
    m = info["episode_metrics"]
    # A: slowdown 3/3 = 1, B: waits 3, slowdown (4 - 0)/1 = 4 -> mean 2.5; mean wait 1.5
    assert m["mean_slowdown"] == pytest.approx(2.5) and m["mean_wait"] == pytest.approx(1.5)
    assert m["makespan"] == 4 and m["utilisation"] == pytest.approx((3 * 2 + 2) / (2 * 4))


def test_invalid_allocation_acts_as_void_and_is_counted():
    env = gym.make("sysgym/DeepRM-v0")
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(9)       # slot 9 is empty at the start
    assert info["time"] == 1 and info["elapsed"] == 1
    while True:
        _, _, term, trunc, info = env.step(9)
        if term or trunc:
            break
    assert info["episode_metrics"]["invalid_actions"] > 0


def test_two_resources_use_dominant_resource_sizes():
    env = gym.make("sysgym/DeepRM-Image-v0", num_resources=2)
    assert env.observation_space.shape == (20, 2 * (10 + 10 * 10) + 3 + 1)
    env.reset(seed=0)
    sizes = []
    for _ in range(400):
        jobs = env.unwrapped.batched.window_jobs()
        sizes += [tuple(s) for s, p in zip(jobs["size"][0], jobs["present"][0]) if p]
        _, _, term, trunc, _ = env.step(10)
        if term or trunc:
            env.reset()
    sizes = np.array(sizes)
    dominant, other = sizes.max(axis=1), sizes.min(axis=1)
    assert dominant.min() >= 5 and dominant.max() <= 10 and other.max() <= 2


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_registered_variants_have_the_paper_settings(env_id):
    cfg = gym.make(env_id).unwrapped.config
    assert (cfg.window, cfg.horizon, cfg.episode_length, cfg.new_job_rate, cfg.num_resources) == (10, 20, 100, 0.3, 1)


# ---------------------------------------------------------------------------------------------
# Every observation lies in the declared space, also at the edges of the kwarg ranges

EXTREME_KWARGS = [
    # the smallest cluster and queue: one unit per resource, one slot, no backlog, 1-step episodes
    {"num_resources": 8, "num_processors": 1, "resource_capacity": (1,) * 8, "max_job_size": 1,
     "max_job_length": 1, "window": 1, "horizon": 1, "backlog": 0, "episode_length": 1, "time_limit": 1,
     "new_job_rate": 1.0},
    # long jobs reserved far ahead, a discount that underflows, bounded rewards
    {"allocation": "reserve", "transitions": "sparse", "smdp_gamma": 1e-300, "num_processors": 3,
     "max_job_size": 3, "max_job_length": 200, "horizon": 64, "backlog": 0, "new_job_rate": 1.0,
     "small_job_chance": 0.0, "reward_scale": "bounded", "episode_length": 50},
    # an image with unequal capacities and a backlog wider than the horizon
    {"observation": "image", "num_resources": 3, "num_processors": 1, "resource_capacity": (1, 7, 2),
     "max_job_size": 1,
     "window": 7, "horizon": 2, "backlog": 41, "new_job_rate": 1.0, "episode_length": 80, "time_limit": 120},
    # many resources, a huge cluster (compact: the observation does not grow with it)
    {"num_resources": 4, "num_processors": 2**16, "max_job_size": 2**16, "max_job_length": 2**16,
     "window": 3, "horizon": 5, "backlog": 3, "new_job_rate": 1.0, "episode_length": 40, "time_limit": 100},
    {"reward_jobs": "window", "reward_scale": "bounded", "transitions": "sparse", "new_job_rate": 0.0},
]


@pytest.mark.parametrize("kwargs", EXTREME_KWARGS)
def test_observations_stay_in_space_at_extreme_kwargs(kwargs):
    vec = gym.make_vec("sysgym/DeepRM-v0", num_envs=4, vectorization_mode="vector_entry_point", **kwargs)
    space = vec.unwrapped.single_observation_space
    rng = np.random.default_rng(0)
    obs, infos = vec.reset(seed=0)
    ended = 0
    for _ in range(300):
        assert obs.dtype == np.float32 and np.all(np.isfinite(obs))
        assert np.all(obs >= space.low) and np.all(obs <= space.high)
        masks = infos["action_mask"]
        actions = np.array([rng.choice(np.flatnonzero(m)) if rng.random() < 0.7 else rng.integers(len(m))
                            for m in masks])
        obs, rewards, term, trunc, infos = vec.step(actions)
        assert np.all(np.isfinite(rewards)) and np.all(np.isfinite(infos["reward_components"]))
        if "episode_metrics" in infos:
            ended += int(infos["_episode_metrics"].sum())
            assert all(np.all(np.isfinite(v)) for v in infos["episode_metrics"].values())
    assert ended > 0


# ---------------------------------------------------------------------------------------------
# Feature names: aligned with the flattened observation, checked against the state they describe

@pytest.mark.parametrize("env_id, kwargs", [(i, {}) for i in ALL_IDS] + [
    ("sysgym/DeepRM-v0", {"observation": "image", "num_resources": 2, "resource_capacity": (10, 4),
                          "max_job_size": 3, "backlog": 7, "horizon": 4}),
    ("sysgym/DeepRM-v0", {"num_resources": 3, "window": 2, "horizon": 3}),
])
def test_feature_names_match_the_flat_observation(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    names = env.unwrapped.feature_names
    assert isinstance(names, tuple) and all(isinstance(n, str) for n in names)
    assert len(names) == gym.spaces.flatdim(env.observation_space) == len(set(names))
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
    assert vec.unwrapped.feature_names == names


def busy_state(env_id, **kwargs):
    """A vector env part-way into an episode: jobs allocated, waiting in the window and the backlog."""
    vec = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **kwargs)
    _, infos = vec.reset(seed=3)
    rng, s, window = np.random.default_rng(3), vec.unwrapped._state, vec.unwrapped.config.window
    for step in range(500):
        mask = infos["action_mask"][0]
        fits = np.flatnonzero(mask[:-1])
        action = int(rng.choice(fits)) if len(fits) and rng.random() < 0.3 else len(mask) - 1
        obs, *_, infos = vec.step(np.array([action]))
        if step > 20 and s["n_run"][0] > 0 and s["n_wait"][0] > window:
            return vec.unwrapped, obs[0]
    raise AssertionError("no busy state reached")


def test_compact_feature_names_name_the_values_they_label():
    kwargs = {"num_resources": 2, "resource_capacity": (10, 6), "max_job_size": 5, "new_job_rate": 0.9,
              "window": 4, "backlog": 30, "horizon": 5}
    env, obs = busy_state("sysgym/DeepRM-v0", **kwargs)
    cfg, s = env.config, env._state
    named = dict(zip(env.feature_names, obs.tolist()))
    jobs, free = env.window_jobs(), env.free_resources()[0]
    assert jobs["present"][0].all() and 0 < s["n_wait"][0] - cfg.window < cfg.backlog   # a full window
    for r, cap in enumerate(cfg.capacity):
        for t in range(cfg.horizon):
            assert named[f"used[r{r},t+{t}]"] == pytest.approx((cap - free[r, t]) / cap)
            assert named[f"free[r{r},t+{t}]"] == pytest.approx(free[r, t] / cap)
    assert (free < np.array(cfg.capacity)[:, None]).any()   # something is allocated
    for i in range(cfg.window):
        assert named[f"slot{i}.present"] == 1.0
        assert named[f"slot{i}.length"] == pytest.approx(jobs["length"][0, i] / cfg.max_job_length)
        assert named[f"slot{i}.waited"] == pytest.approx(min(jobs["age"][0, i] / cfg.episode_length, 1))
        for r, cap in enumerate(cfg.capacity):
            assert named[f"slot{i}.size[r{r}]"] == pytest.approx(jobs["size"][0, i, r] / cap)
        assert 0 <= named[f"slot{i}.queue_at_submit"] < 1
    assert named["backlog"] == pytest.approx((s["n_wait"][0] - cfg.window) / cfg.backlog)
    assert named["since_last_job"] == pytest.approx(min((s["now"][0] - s["last_arrival"][0]) / 10, 1))
    assert named["time_left"] == pytest.approx(max(cfg.episode_length - 1 - s["now"][0], 0) / cfg.episode_length)


def test_image_feature_names_name_each_cell():
    kwargs = {"observation": "image", "num_resources": 2, "resource_capacity": (10, 6), "max_job_size": 5,
              "new_job_rate": 0.9, "window": 3, "backlog": 9, "horizon": 4}
    env, obs = busy_state("sysgym/DeepRM-v0", **kwargs)
    cfg, s = env.config, env._state
    named = dict(zip(env.feature_names, obs.reshape(-1).tolist()))
    jobs, free = env.window_jobs(), env.free_resources()[0]
    n_back = int(s["n_wait"][0]) - cfg.window
    assert jobs["present"][0].all() and n_back > 0
    since = min((s["now"][0] - s["last_arrival"][0]) / 10, 1)
    for t in range(cfg.horizon):
        for r, cap in enumerate(cfg.capacity):
            for c in range(cap):
                assert named[f"cluster[r{r}][t{t},c{c}]"] == (c < cap - free[r, t])
            for i in range(cfg.window):
                for c in range(cfg.max_job_size):
                    inside = t < jobs["length"][0, i] and c < jobs["size"][0, i, r]
                    assert named[f"slot{i}[r{r}][t{t},c{c}]"] == inside
        for c in range(cfg.backlog_columns):
            assert named[f"backlog[t{t},c{c}]"] == (t * cfg.backlog_columns + c < n_back)
        assert named[f"since_last_job[t{t}]"] == pytest.approx(since)


@pytest.mark.parametrize("transitions", ["dense", "sparse"])
def test_bracis_protocol_ends_every_episode_at_T_with_jobs_left(transitions):
    """protocol="bracis": every episode lasts exactly T steps (time_limit 10 T never acts) and
    ends terminated, under any policy; busy clusters leave jobs unfinished, which mean_slowdown
    (finished jobs) ignores and mean_slowdown_all counts. "drain" runs its jobs to the end."""
    T = 40
    ended = {}
    for protocol in ("bracis", "drain"):
        vec = gym.make_vec("sysgym/DeepRM-v0", num_envs=8, vectorization_mode="vector_entry_point",
                           protocol=protocol, transitions=transitions, episode_length=T, new_job_rate=0.7)
        rng = np.random.default_rng(0)
        _, info = vec.reset(seed=0)
        metrics = []
        for _ in range(20_000):
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in info["action_mask"]])
            _, _, terminated, truncated, info = vec.step(actions)
            assert not truncated.any()
            for i in np.flatnonzero(terminated):
                metrics.append({k: v[i] for k, v in info["episode_metrics"].items()})
            if len(metrics) >= 40:
                break
        ended[protocol] = metrics
    bracis, drain = ended["bracis"], ended["drain"]
    assert {m["episode_time"] for m in bracis} == {T}
    assert sum(m["jobs_left"] > 0 for m in bracis) > 30
    for m in bracis:  # each unfinished job adds (T - submit) / length >= 1 / 15 (max_job_length 15)
        finished, left = m["jobs_finished"], m["jobs_left"]
        unfinished = m["mean_slowdown_all"] * (finished + left) - m["mean_slowdown"] * finished
        assert unfinished >= left / 15 - 1e-9
    assert all(m["jobs_left"] == 0 and m["episode_time"] >= T for m in drain)
    assert max(m["episode_time"] for m in drain) > T
