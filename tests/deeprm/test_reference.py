"""The DeepRM kernel matches the pure-Python reference model (tests/reference/deeprm.py) step for step.

Every variant family runs 200 seeds of small clusters (short episodes, small windows, horizons and
backlogs, so jobs queue, overflow the backlog and get dropped, and short time limits truncate some
episodes) under random actions that mix valid picks, the void action, empty slots and jobs that
do not fit. The single env, the native vector env (sub-env i seeded with seed + i, autoreset), the
registered IDs' defaults and BRACIS scenarios 1..10 are all compared with the model. The last
section checks the model itself against scenarios worked out by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401  (registers the IDs)
from sysgym.envs.deeprm import SCENARIOS, build_config, generate_swf
from sysgym.envs.deeprm.config import CHOICES
from sysgym.envs.registry import entry
from sysgym.envs.seeding import rng_state
from tests.reference.deeprm import METRICS, ReferenceDeepRM
from tests.reference.rng import Rng

SEEDS_PER_FAMILY = 200
MAX_STEPS_PER_SEED = 300

# Each family pins the options it is about; every other option is drawn per seed.
FAMILIES = {
    "compact-dense": {"observation": "compact", "transitions": "dense"},
    "image-dense": {"observation": "image", "transitions": "dense"},
    "sparse": {"transitions": "sparse", "smdp_gamma": 1.0},
    "sparse-discounted": {"transitions": "sparse", "smdp_gamma": "draw"},
    "reward-window": {"reward_jobs": "window"},
    "reward-bounded": {"reward_scale": "bounded"},
    "reserve": {"allocation": "reserve"},
    "two-resources": {"num_resources": 2},
    "three-resources-custom-capacity": {"num_resources": 3, "resource_capacity": "draw"},
    "no-backlog": {"backlog": 0},
    "swf-random-start": {"workload": "swf", "trace_start": "random"},
    "swf-first-or-index": {"workload": "swf", "trace_start": "draw"},
    "bracis-dense": {"protocol": "bracis", "transitions": "dense"},
    "bracis-sparse": {"protocol": "bracis", "transitions": "sparse", "smdp_gamma": "draw"},
    "bracis-swf": {"protocol": "bracis", "workload": "swf", "trace_start": "random"},
}


@pytest.fixture(scope="module")
def swf_traces(tmp_path_factory) -> list[Path]:
    """Two small synthetic traces: one light, one dense enough for several arrivals per step."""
    folder = tmp_path_factory.mktemp("swf")
    return [generate_swf(folder / "light.swf", num_jobs=80, num_processors=6, seed=11,
                         mean_interarrival=150.0, max_job_length=8),
            generate_swf(folder / "dense.swf", num_jobs=120, num_processors=6, seed=12,
                         mean_interarrival=40.0, max_job_length=8)]


def draw_kwargs(family: dict, rng: np.random.Generator, swf_traces: list[Path]) -> dict:
    """A small random configuration in ``family``."""
    kw = {name: str(rng.choice(values)) for name, values in CHOICES.items()}  # every MDP option
    num_resources = int(rng.integers(1, 4))
    processors = int(rng.integers(2, 8))
    kw.update(
        num_processors=processors, window=int(rng.integers(1, 5)), horizon=int(rng.integers(2, 9)),
        backlog=int(rng.integers(0, 6)), episode_length=int(rng.integers(15, 31)),
        new_job_rate=float(rng.choice([0.3, 0.6, 0.9])), small_job_chance=float(rng.choice([0.5, 0.8])),
    )
    kw.update({k: v for k, v in family.items() if v != "draw"})
    num_resources = kw.pop("num_resources", num_resources)
    if family.get("workload") == "swf":
        kw["workload"] = str(swf_traces[int(rng.integers(0, len(swf_traces)))])
        kw["num_processors"] = 6
        for name in ("new_job_rate", "small_job_chance"):
            del kw[name]
        if family["trace_start"] == "draw":
            kw["trace_start"] = "first" if rng.random() < 0.5 else int(rng.integers(0, 60))
    else:
        kw["num_resources"] = num_resources
        if family.get("resource_capacity") == "draw" or (num_resources > 1 and rng.random() < 0.5):
            kw["resource_capacity"] = (processors, *(int(c) for c in rng.integers(2, 8, num_resources - 1)))
        smallest = min(kw.get("resource_capacity", (processors,)))
        kw["max_job_size"] = int(rng.integers(1, smallest + 1))
        kw["max_job_length"] = int(rng.integers(1, 11))
    if kw["transitions"] == "sparse":
        kw["smdp_gamma"] = family.get("smdp_gamma", 1.0)
        if kw["smdp_gamma"] == "draw":
            kw["smdp_gamma"] = float(rng.uniform(0.5, 0.99))
    if rng.random() < 0.3:  # short limits truncate some episodes mid-way (under "bracis" too)
        kw["time_limit"] = kw["episode_length"] + int(rng.integers(-5, 15))
    return kw


def pick_action(rng: np.random.Generator, mask: np.ndarray) -> int:
    """Mostly valid picks, some void, some uniform over all actions (empty slots, misfits)."""
    void = len(mask) - 1
    u = rng.random()
    if u < 0.5 and mask[:void].any():
        return int(rng.choice(np.flatnonzero(mask[:void])))
    if u < 0.7:
        return void
    return int(rng.integers(0, void + 1))


def assert_components(got: np.ndarray, want: list[float], gamma: float, where: str) -> None:
    # The spec fixes the terms and their summation order (allocation order, then queue order), so
    # raw and bounded components are bit-exact. With smdp_gamma < 1 the discount gamma^k may be
    # formed by pow or by a running product, which differ in the last bits: 1e-12 relative there.
    if gamma == 1.0:
        assert got.tolist() == want, f"{where}: components {got.tolist()} != reference {want}"
    else:
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12), f"{where}: components {got} != {want}"


def assert_metrics(got: dict, want: dict, where: str) -> None:
    assert set(got) == set(METRICS) == set(want), f"{where}: metric names {sorted(got)}"
    for name in METRICS:
        # counts and times are integers; the means are sums in finish order divided by a count
        assert math.isclose(got[name], want[name], rel_tol=1e-12, abs_tol=1e-12), \
            f"{where}: {name} {got[name]} != reference {want[name]}"


def assert_reset_matches(obs, info, ref_out, ref: ReferenceDeepRM, where: str) -> None:
    ref_obs, ref_mask = ref_out
    assert obs.dtype == np.float32 and np.array_equal(obs, ref_obs), \
        f"{where}: reset obs differs at {np.argwhere(obs != ref_obs)[:5].tolist()}"
    assert np.array_equal(info["action_mask"], ref_mask), f"{where}: mask {info['action_mask']} != {ref_mask}"
    assert (info["time"], info["elapsed"]) == (ref.now, 0), \
        f"{where}: time, elapsed {info['time']}, {info['elapsed']} != {ref.now}, 0"
    assert info["reward_components"].tolist() == [0.0, 0.0, 0.0]


def assert_step_matches(got: tuple, want, ref: ReferenceDeepRM, weights: np.ndarray, where: str) -> None:
    obs, reward, terminated, truncated, info = got
    assert obs.dtype == np.float32 and np.array_equal(obs, want.obs), \
        f"{where}: obs differs at {np.argwhere(obs != want.obs)[:5].tolist()}: " \
        f"{obs[obs != want.obs][:5]} != {want.obs[obs != want.obs][:5]}"
    comps = info["reward_components"]
    assert_components(comps, want.reward_components, ref.cfg.smdp_gamma, where)
    assert reward == float(comps @ weights), f"{where}: reward {reward} != components @ weights"
    assert (terminated, truncated) == (want.terminated, want.truncated), \
        f"{where}: terminated/truncated {(terminated, truncated)} != {(want.terminated, want.truncated)}"
    assert np.array_equal(info["action_mask"], want.action_mask), \
        f"{where}: mask {info['action_mask']} != {want.action_mask}"
    assert info["elapsed"] == want.elapsed, f"{where}: elapsed {info['elapsed']} != {want.elapsed}"
    assert info["time"] == ref.now, f"{where}: time {info['time']} != {ref.now}"
    if terminated or truncated:
        assert_metrics(info["episode_metrics"], want.metrics, where)
    else:
        assert "episode_metrics" not in info


def expected_weights(kwargs: dict) -> list[float]:
    return [0.0, 1.0, 0.0] if kwargs.get("reward_jobs") == "window" else [1.0, 1.0, 1.0]


def compare_single(env_id: str, kwargs: dict, seed: int, max_steps: int = MAX_STEPS_PER_SEED,
                   episodes: int = 2) -> dict[str, int]:
    """Run the env and the model side by side; later episodes reset without a seed (the RNG
    stream continues). Returns counts of what happened, so callers can check coverage."""
    env = gym.make(env_id, **kwargs)
    weights = env.unwrapped.reward_weights
    assert weights.tolist() == expected_weights({**entry(env_id).kwargs, **kwargs})
    ref = ReferenceDeepRM(build_config(**{**entry(env_id).kwargs, **kwargs}), rng_state(seed))
    actions = np.random.default_rng(10_000 + seed)
    seen = dict.fromkeys(("steps", "terminated", "truncated", "dropped", "invalid", "reserved_ahead"), 0)
    where = f"{env_id} {kwargs} seed={seed}"
    obs, info = env.reset(seed=seed)
    assert_reset_matches(obs, info, ref.reset(), ref, f"{where} reset 0")
    episode = 0
    for step in range(max_steps):
        action = pick_action(actions, info["action_mask"])
        obs, reward, terminated, truncated, info = env.step(action)
        want = ref.step(action)
        assert_step_matches((obs, reward, terminated, truncated, info), want, ref, weights,
                            f"{where} episode {episode} step {step} action {action}")
        seen["steps"] += 1
        seen["reserved_ahead"] += any(job.start > ref.now for job in ref.allocated)
        if terminated or truncated:
            seen["terminated"] += terminated
            seen["truncated"] += truncated
            seen["dropped"] += want.metrics["jobs_dropped"] > 0
            seen["invalid"] += want.metrics["invalid_actions"] > 0
            episode += 1
            if episode == episodes:
                break
            obs, info = env.reset()
            assert_reset_matches(obs, info, ref.reset(), ref, f"{where} reset {episode}")
    env.close()
    return seen


# ---------------------------------------------------------------------------------------------
# Step-for-step equivalence


@pytest.mark.parametrize("family", list(FAMILIES))
def test_kernel_matches_reference(family, swf_traces):
    draws = np.random.default_rng(sorted(FAMILIES).index(family))
    totals = dict.fromkeys(("steps", "terminated", "truncated", "dropped", "invalid", "reserved_ahead"), 0)
    for seed in range(SEEDS_PER_FAMILY):
        kwargs = draw_kwargs(FAMILIES[family], draws, swf_traces)
        for key, value in compare_single("sysgym/DeepRM-v0", kwargs, seed, episodes=1 + seed % 2).items():
            totals[key] += value
    # the seeds reached the situations the comparison is about (counts are episodes)
    assert totals["terminated"] > 100 and totals["invalid"] > 100, totals
    assert totals["truncated"] > 10 and totals["dropped"] > 30, totals
    if family == "reserve":
        assert totals["reserved_ahead"] > 100, totals


@pytest.mark.parametrize("kwargs", [
    {"observation": "compact", "transitions": "sparse", "allocation": "reserve", "num_resources": 2,
     "num_processors": 5, "resource_capacity": (5, 4), "max_job_size": 3, "max_job_length": 6,
     "window": 3, "horizon": 5, "backlog": 2, "episode_length": 20, "new_job_rate": 0.7,
     "reward_scale": "bounded", "smdp_gamma": 0.9},
    {"observation": "image", "transitions": "dense", "num_processors": 4, "max_job_size": 3,
     "max_job_length": 5, "window": 2, "horizon": 4, "backlog": 3, "episode_length": 15,
     "new_job_rate": 0.6, "reward_jobs": "window", "time_limit": 25},
    {"workload": "swf", "transitions": "sparse", "num_processors": 6, "window": 2, "horizon": 4,
     "backlog": 2, "episode_length": 20},
])
def test_native_vector_env_matches_one_reference_per_sub_env(kwargs, swf_traces):
    if kwargs.get("workload") == "swf":
        kwargs = {**kwargs, "workload": str(swf_traces[1])}
    num_envs, steps = 3, 120
    cfg = build_config(**kwargs)
    weights = np.array(expected_weights(kwargs))
    for seed in (0, 100, 2024):
        vec = gym.make_vec("sysgym/DeepRM-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                           **kwargs)
        assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        refs = [ReferenceDeepRM(cfg, rng_state(seed + i)) for i in range(num_envs)]
        obs, infos = vec.reset(seed=seed)
        for i, ref in enumerate(refs):
            info = {k: infos[k][i] for k in ("action_mask", "time", "elapsed", "reward_components")}
            assert_reset_matches(obs[i], info, ref.reset(), ref, f"seed {seed} sub-env {i} reset")
        actions_rng = np.random.default_rng(seed)
        ended = np.zeros(num_envs, dtype=bool)
        episodes_ended = 0
        for step in range(steps):
            actions = np.array([pick_action(actions_rng, infos["action_mask"][i]) for i in range(num_envs)])
            obs, rewards, terminated, truncated, infos = vec.step(actions)
            for i, ref in enumerate(refs):
                where = f"{kwargs} seed {seed}+{i} step {step}"
                sub_info = {k: infos[k][i] for k in ("action_mask", "time", "elapsed", "reward_components")}
                if ended[i]:  # NextStep autoreset: this step reset the sub-env, continuing its stream
                    assert rewards[i] == 0.0 and not terminated[i] and not truncated[i]
                    assert_reset_matches(obs[i], sub_info, ref.reset(), ref, f"{where} autoreset")
                    continue
                if terminated[i] or truncated[i]:
                    sub_info["episode_metrics"] = {m: infos["episode_metrics"][m][i] for m in METRICS}
                    episodes_ended += 1
                want = ref.step(int(actions[i]))
                assert_step_matches((obs[i], rewards[i], terminated[i], truncated[i], sub_info), want, ref,
                                    weights, where)
            ended = terminated | truncated
        assert episodes_ended >= num_envs, "the vector test should cross episode boundaries"
        vec.close()


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Image-v0", "sysgym/DeepRM-Compact-v0",
                                    "sysgym/DeepRM-CompactSparse-v0",
                                    "sysgym/DeepRM-CompactSparseReduced-v0"])
def test_registered_defaults_match_reference_over_full_episodes(env_id):
    for seed in (1, 2, 3):
        seen = compare_single(env_id, {}, seed, max_steps=10_000, episodes=1)
        assert seen["terminated"] == 1, seen


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Image-v0", "sysgym/DeepRM-CompactSparseReduced-v0"])
def test_registered_ids_under_the_bracis_protocol_match_reference(env_id):
    for seed in (1, 2):
        seen = compare_single(env_id, {"protocol": "bracis", "scenario": 1 + 4 * seed}, seed, max_steps=10_000,
                              episodes=2)
        assert seen["terminated"] == 2, seen


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_bracis_scenarios_match_reference(scenario):
    for seed in range(4):
        kwargs = {"scenario": scenario, "episode_length": 15, "horizon": 10, "backlog": 8,
                  "transitions": ("dense", "sparse")[seed % 2], "protocol": ("drain", "bracis")[seed // 2],
                  "observation": "image" if seed == 2 and scenario <= 2 else "compact"}
        compare_single("sysgym/DeepRM-v0", kwargs, seed, max_steps=400, episodes=1)


def test_episode_without_any_job_matches_reference():
    # sparse: the reset skips to T-1 with nothing to schedule; the first step then ends the episode
    for transitions in ("dense", "sparse"):
        for protocol in ("drain", "bracis"):
            kwargs = {"transitions": transitions, "new_job_rate": 0.0, "episode_length": 12, "protocol": protocol}
            seen = compare_single("sysgym/DeepRM-v0", kwargs, seed=5, max_steps=100, episodes=2)
            assert seen["terminated"] == 2
    # a time limit before any job: the sparse reset stops one step before it, the first step truncates
    for protocol in ("drain", "bracis"):
        kwargs = {"transitions": "sparse", "new_job_rate": 0.0, "episode_length": 12, "time_limit": 7,
                  "protocol": protocol}
        seen = compare_single("sysgym/DeepRM-v0", kwargs, seed=5, max_steps=100, episodes=2)
        assert seen["truncated"] == 2
        env = gym.make("sysgym/DeepRM-v0", **kwargs)
        _, info = env.reset(seed=0)
        assert info["time"] == 6 and env.step(0)[3] and env.unwrapped._vec._state["now"][0] == 7


@pytest.mark.parametrize("workload", ["swf", "deeprm"])
def test_replaced_future_input_matches_reference(workload, swf_traces):
    """set_future_input at random times, with random streams (SWF) or seeds (generator)."""
    draws = np.random.default_rng(500 + (workload == "swf"))
    family = {"workload": "swf", "trace_start": "draw"} if workload == "swf" else {}
    replaced = 0
    for seed in range(40):
        kwargs = draw_kwargs(family, draws, swf_traces)
        env = gym.make("sysgym/DeepRM-v0", **kwargs)
        cfg = build_config(**kwargs)
        ref = ReferenceDeepRM(cfg, rng_state(seed))
        weights = env.unwrapped.reward_weights
        where = f"{kwargs} seed={seed}"
        obs, info = env.reset(seed=seed)
        assert_reset_matches(obs, info, ref.reset(), ref, f"{where} reset")
        actions = np.random.default_rng(seed)
        for step in range(150):
            if actions.random() < 0.15:
                if cfg.trace is None:
                    trace, offset = int(actions.integers(0, 2**40)), 0
                else:
                    trace = int(actions.integers(0, len(cfg.trace)))
                    offset = int(actions.integers(0, cfg.episode_length + 1))
                env.unwrapped.set_future_input(trace, offset)
                ref.set_future_input(trace, offset)
                replaced += 1
            action = pick_action(actions, info["action_mask"])
            out = env.step(action)
            assert_step_matches(out, ref.step(action), ref, weights, f"{where} step {step} action {action}")
            info = out[4]
            if out[2] or out[3]:
                break
    assert replaced > 150


# ---------------------------------------------------------------------------------------------
# The reference model against hand-worked scenarios


def write_swf(path: Path, jobs: list[tuple[int, int, int]]) -> str:
    """An SWF file of (submit s, run time s, processors) jobs; with time_unit 60 s a step is a minute."""
    lines = ["; hand-written trace"]
    for number, (submit, run, procs) in enumerate(jobs, start=1):
        lines.append(" ".join(str(f) for f in [number, submit, 0, run, procs, -1, -1, procs, run, -1, 1,
                                               1, 1, 1, 1, 1, -1, -1]))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def three_jobs(tmp_path) -> dict:
    """A 2-processor cluster and 3 jobs: A (0 min, 2 min, 1 proc), B (0, 1, 2), C (1, 3, 1)."""
    trace = write_swf(tmp_path / "three.swf", [(0, 120, 1), (0, 60, 2), (60, 180, 1)])
    return {"workload": trace, "num_processors": 2, "window": 2, "backlog": 1, "horizon": 4,
            "episode_length": 5, "trace_start": "first"}


def run_model(kwargs: dict, actions: list[int]) -> tuple[ReferenceDeepRM, list]:
    ref = ReferenceDeepRM(build_config(**kwargs), rng_state(0))
    ref.reset()
    return ref, [ref.step(a) for a in actions]


# The hand-worked dense episode on ``three_jobs``: allocate A at 0 (ends 2); B (2 procs) no longer
# fits, so picking it is invalid and acts as void. [0,1): A runs, B waits -> (-1/2, -1); C arrives
# at 1. [1,2): A runs; B, C wait -> (-1/2, -4/3). At 2 A ends; allocate B at 2 (ends 3). [2,3): B
# runs, C waits -> (-1, -1/3). Allocate C at 3 (ends 6), then three steps of (-1/3, 0).
# Slowdowns: A (2-0)/2 = 1, B (3-0)/1 = 3, C (6-1)/3 = 5/3; waits 0, 2, 2.
HAND_ACTIONS = [0, 0, 2, 0, 2, 0, 2, 2, 2]
HAND_COMPONENTS = [[0, 0, 0], [-1 / 2, -1, 0], [-1 / 2, -4 / 3, 0], [0, 0, 0], [-1, -1 / 3, 0], [0, 0, 0],
                   [-1 / 3, 0, 0], [-1 / 3, 0, 0], [-1 / 3, 0, 0]]
HAND_ELAPSED = [0, 1, 1, 0, 1, 0, 1, 1, 1]
HAND_METRICS = {"mean_slowdown": (1 + 3 + 5 / 3) / 3, "mean_bounded_slowdown": 1.0, "mean_wait": 4 / 3,
                "utilisation": (1 + 1 + 2 + 1 + 1 + 1) / (2 * 6), "makespan": 6, "jobs_finished": 3,
                "jobs_left": 0, "jobs_dropped": 0, "invalid_actions": 1, "episode_time": 6,
                "mean_slowdown_all": (1 + 3 + 5 / 3) / 3}


def test_model_hand_worked_dense_episode(three_jobs):
    cfg = build_config(**three_jobs)
    assert (cfg.max_job_length, cfg.max_job_size) == (3, 2)
    ref = ReferenceDeepRM(cfg, rng_state(0))
    obs, mask = ref.reset()
    # t=0: A and B wait, both fit an empty cluster
    assert mask.tolist() == [1, 1, 1] and [j.length for j in ref.queue] == [2, 1]
    # B's compact features (slot 1): queue 1 of W+backlog=3, queued work 2*1=2 -> y=2/(2*3),
    # f=y/(1+y)=1/4, free 2/2, nothing allocated
    slot1 = obs[2 * 4 + 8: 2 * 4 + 16]
    assert slot1.tolist() == pytest.approx([1, 0, 1 / 3, 1, 1 / 3, 0.25, 1, 0], abs=1e-7)
    assert obs[-3:].tolist() == pytest.approx([0, 0, 4 / 5])  # empty backlog, arrival now, (T-1-0)/T

    _, steps = run_model(three_jobs, HAND_ACTIONS)
    np.testing.assert_allclose([t.reward_components for t in steps], HAND_COMPONENTS, rtol=0, atol=1e-15)
    assert [t.elapsed for t in steps] == HAND_ELAPSED
    assert [t.terminated for t in steps] == [False] * 8 + [True]
    total_return = sum(sum(t.reward_components) for t in steps)
    assert total_return == pytest.approx(-(1 + 3 + 5 / 3), abs=1e-12)  # minus the total slowdown
    assert steps[-1].metrics == pytest.approx(HAND_METRICS)


def test_kernel_gives_the_hand_worked_episode(three_jobs):
    env = gym.make("sysgym/DeepRM-v0", **three_jobs)
    env.reset(seed=0)
    for action, components, elapsed in zip(HAND_ACTIONS, HAND_COMPONENTS, HAND_ELAPSED):
        _, reward, terminated, _, info = env.step(action)
        assert info["reward_components"].tolist() == pytest.approx(components, abs=1e-15)
        assert reward == pytest.approx(sum(components), abs=1e-15) and info["elapsed"] == elapsed
    assert terminated and info["episode_metrics"] == pytest.approx(HAND_METRICS)


def test_model_termination_takes_precedence_over_the_time_limit(three_jobs):
    # C finishes at 6 = time_limit: the episode terminated, it was not cut short
    _, steps = run_model({**three_jobs, "time_limit": 6}, [0, 0, 2, 0, 2, 0, 2, 2, 2])
    assert (steps[-1].terminated, steps[-1].truncated) == (True, False)
    _, steps = run_model({**three_jobs, "time_limit": 5}, [0, 0, 2, 0, 2, 0, 2, 2])
    assert (steps[-1].terminated, steps[-1].truncated) == (False, True)
    assert steps[-1].metrics["jobs_left"] == 1 and steps[-1].metrics["jobs_finished"] == 2
    # C (submitted at 1, length 3) is still running at 5: it counts with (5 - 1) / 3 so far
    assert steps[-1].metrics["mean_slowdown"] == pytest.approx((1 + 3) / 2)
    assert steps[-1].metrics["mean_slowdown_all"] == pytest.approx((1 + 3 + 4 / 3) / 3)


# The same trace and actions under protocol="bracis" (T = 5): the episode ends when the clock
# reaches 5, after the void of [4, 5), with C (submitted at 1, length 3, started at 3) still running.
# A: submitted 0, visible and allocated at 0, ends at 2: slowdown 1 (sched-rl-gym would stamp its
# submission one step earlier: (2 - (-1)) / 2). B (2 processors) is allocated at 2, the step A ends
# (sched-rl-gym would still hold A's processor then): slowdown 3, wait 2. Metrics count A and B.
HAND_BRACIS_METRICS = {"mean_slowdown": (1 + 3) / 2, "mean_bounded_slowdown": 1.0, "mean_wait": (0 + 2) / 2,
                       "utilisation": (1 + 1 + 2 + 1 + 1) / (2 * 5), "makespan": 3, "jobs_finished": 2,
                       "jobs_left": 1, "jobs_dropped": 0, "invalid_actions": 1, "episode_time": 5,
                       "mean_slowdown_all": (1 + 3 + (5 - 1) / 3) / 3}


def test_model_hand_worked_bracis_episode(three_jobs):
    _, steps = run_model({**three_jobs, "protocol": "bracis"}, HAND_ACTIONS[:8])
    np.testing.assert_allclose([t.reward_components for t in steps], HAND_COMPONENTS[:8], rtol=0, atol=1e-15)
    assert [(t.terminated, t.truncated) for t in steps] == [(False, False)] * 7 + [(True, False)]
    assert steps[-1].metrics == pytest.approx(HAND_BRACIS_METRICS)
    # minus the return: A's and B's slowdowns, plus C's 4 steps in the system by T over its length 3
    assert sum(sum(t.reward_components) for t in steps) == pytest.approx(-(1 + 3 + 4 / 3), abs=1e-12)
    # a time limit beyond T does not act; one before T truncates instead
    _, steps = run_model({**three_jobs, "protocol": "bracis", "time_limit": 9}, HAND_ACTIONS[:8])
    assert (steps[-1].terminated, steps[-1].truncated) == (True, False)
    _, steps = run_model({**three_jobs, "protocol": "bracis", "time_limit": 4}, HAND_ACTIONS[:7])
    assert (steps[-1].terminated, steps[-1].truncated) == (False, True)


def test_kernel_gives_the_hand_worked_bracis_episode(three_jobs):
    env = gym.make("sysgym/DeepRM-v0", **three_jobs, protocol="bracis")
    env.reset(seed=0)
    for k, (action, components) in enumerate(zip(HAND_ACTIONS[:8], HAND_COMPONENTS[:8])):
        _, reward, terminated, truncated, info = env.step(action)
        assert info["reward_components"].tolist() == pytest.approx(components, abs=1e-15)
        assert (terminated, truncated) == (k == 7, False)
    assert info["episode_metrics"] == pytest.approx(HAND_BRACIS_METRICS)


def test_model_hand_worked_bracis_sparse(three_jobs):
    # T = 4. Allocate A at 0; [0,1) passes by itself (B cannot fit; C arrives and fits). Allocate C
    # at 1 (ends 4); B waits through [1,2), [2,3), [3,4), and the clock reaching T = 4 ends the
    # episode inside that skip, before B could start. A and C finished (slowdowns 2/2 and 3/3); B,
    # waiting since 0, counts only in mean_slowdown_all, with 4/1.
    ended = {}
    for protocol in ("drain", "bracis"):
        kwargs = {**three_jobs, "transitions": "sparse", "protocol": protocol, "episode_length": 4}
        _, steps = run_model(kwargs, [0, 1])
        assert [t.elapsed for t in steps] == [1, 3]
        assert steps[1].reward_components == pytest.approx([-(1 / 2 + 1 / 3) - 1 / 3 - 1 / 3, -3, 0], abs=1e-15)
        ended[protocol] = (steps[1].terminated, steps[1].truncated)
    assert ended == {"drain": (False, False), "bracis": (True, False)}
    metrics = steps[1].metrics
    assert (metrics["mean_slowdown"], metrics["jobs_finished"], metrics["jobs_left"]) == (1.0, 2, 1)
    assert metrics["mean_slowdown_all"] == pytest.approx((1 + 1 + 4) / 3)
    assert metrics["episode_time"] == 4


@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_model_hand_worked_sparse_discounting(three_jobs, gamma):
    kwargs = {**three_jobs, "transitions": "sparse", "smdp_gamma": gamma}
    # allocate A at 0; B cannot fit, so [0,1) passes by itself (C arrives and fits).
    # allocate C at 1 (ends 4); B waits through [1,2), [2,3), [3,4) while A then C run.
    # allocate B at 4; nothing waits, [4,5) passes and the episode ends.
    _, steps = run_model(kwargs, [0, 1, 0])
    g = gamma
    assert [t.elapsed for t in steps] == [1, 3, 1]
    assert steps[0].reward_components == pytest.approx([-1 / 2, -1, 0], abs=1e-15)
    assert steps[1].reward_components == pytest.approx(
        [-(1 / 2 + 1 / 3) - g / 3 - g * g / 3, -(1 + g + g * g), 0], abs=1e-15)
    assert steps[2].reward_components == pytest.approx([-1, 0, 0], abs=1e-15)
    assert steps[2].terminated
    # slowdowns A 2/2, C (4-1)/3, B (5-0)/1: undiscounted, the return is minus their sum
    if gamma == 1.0:
        assert sum(sum(t.reward_components) for t in steps) == pytest.approx(-7, abs=1e-12)


def test_model_hand_worked_reservation(tmp_path):
    # A holds both processors over [0, 2); B (1 proc, 1 step) cannot start now but is reserved at 2.
    trace = write_swf(tmp_path / "reserve.swf", [(0, 120, 2), (0, 60, 1)])
    kwargs = {"workload": trace, "num_processors": 2, "window": 2, "backlog": 0, "horizon": 3,
              "episode_length": 2, "trace_start": "first"}
    _, steps = run_model(kwargs, [0])
    assert steps[0].action_mask.tolist() == [0, 0, 1]  # allocation "now": B has to wait
    ref = ReferenceDeepRM(build_config(**kwargs, allocation="reserve"), rng_state(0))
    ref.reset()
    assert ref.step(0).action_mask.tolist() == [1, 0, 1]  # B fits at offset 2 of the horizon
    ref.step(0)
    assert [(j.start, j.end) for j in ref.allocated] == [(0, 2), (2, 3)]
    steps = [ref.step(2) for _ in range(3)]
    # both jobs are in the system over [0, 1) and [1, 2); B alone over [2, 3)
    assert [t.reward_components for t in steps] == [[-1.5, 0, 0], [-1.5, 0, 0], [-1, 0, 0]]
    assert steps[-1].terminated
    assert steps[-1].metrics["mean_wait"] == 1.0  # waits 0 and 2
    assert steps[-1].metrics["mean_slowdown"] == (1 + 3) / 2  # A (2-0)/2, B (3-0)/1


def test_model_backlog_overflow_drops_and_image_layout(tmp_path):
    # three jobs at t=0 into W=1 + backlog 1: the third is dropped and counted
    trace = write_swf(tmp_path / "burst.swf", [(0, 60, 1), (0, 120, 2), (0, 60, 1)])
    kwargs = {"workload": trace, "num_processors": 2, "window": 1, "backlog": 1, "horizon": 2,
              "episode_length": 3, "trace_start": "first", "observation": "image"}
    ref = ReferenceDeepRM(build_config(**kwargs), rng_state(0))
    image, _ = ref.reset()
    assert ref.dropped == 1 and [j.length for j in ref.queue] == [1, 2]
    # columns: cluster (cap 2) | window slot (s = 2) | backlog (ceil(1/2) = 1) | time since arrival
    assert image.tolist() == [[0, 0, 1, 0, 1, 0],
                              [0, 0, 0, 0, 0, 0]]
    steps = [ref.step(0)]  # job 1 runs over [0, 1); job 2 moves into the window
    assert steps[0].obs.tolist() == [[1, 0, 1, 1, 0, 0],
                                     [0, 0, 1, 1, 0, 0]]
    steps += [ref.step(1), ref.step(0), ref.step(1), ref.step(1)]  # void; job 2 runs over [1, 3)
    assert steps[-1].obs[:, -1].tolist() == [np.float32(0.3)] * 2  # 3 steps since the last arrival / 10
    assert [t.reward_components for t in steps] == [[0, 0, 0], [-1, -0.5, 0], [0, 0, 0], [-0.5, 0, 0],
                                                    [-0.5, 0, 0]]
    assert steps[-1].terminated
    metrics = steps[-1].metrics
    assert (metrics["jobs_dropped"], metrics["jobs_finished"], metrics["jobs_left"]) == (1, 2, 0)
    assert metrics["mean_slowdown"] == (1 + 1.5) / 2  # the dropped job is in no sum


def test_model_generator_draws_in_the_specified_order():
    # rate 1: each time step draws u (arrival), v (small?), the length, the dominant resource, sizes
    kwargs = {"num_resources": 2, "new_job_rate": 1.0, "small_job_chance": 0.5, "max_job_length": 15,
              "max_job_size": 10, "episode_length": 5}
    stream = Rng(rng_state(7))
    expected = []
    for _ in range(3):
        stream.uniform()  # the arrival draw; always < 1
        small = stream.uniform() < 0.5
        # d = 15: small U[1, 3], large U[10, 15]; s = 10: dominant U[5, 10], other U[1, 2]
        length = 1 + int(stream.uniform() * 3) if small else 10 + int(stream.uniform() * 6)
        dominant = int(stream.uniform() * 2)
        sizes = [5 + int(stream.uniform() * 6) if r == dominant else 1 + int(stream.uniform() * 2)
                 for r in range(2)]
        expected.append((length, sizes))
    ref = ReferenceDeepRM(build_config(**kwargs), rng_state(7))
    ref.reset()
    ref.step(10)  # void: the clock moves to 1
    ref.step(10)
    assert [(j.length, j.size, j.submit) for j in ref.queue] == [(*e, t) for t, e in enumerate(expected)]
