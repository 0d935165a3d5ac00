"""ABR baselines: their rules by hand, robustMPC's Cython search against an itertools reference,
batch = single, the offline optimum against brute force, and the expected ordering."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401
from sysgym.agents.heuristics import heuristics_for
from sysgym.agents.heuristics.abr import (
    HEURISTICS,
    BufferBased,
    OfflineOptimal,
    RateBased,
    RobustMPC,
    evaluate_on_traces,
    offline_optimal_plan,
)
from sysgym.cython_core.abr_mpc import mpc_search
from sysgym.envs.abr import AbrEnv, AbrVectorEnv
from sysgym.envs.bandwidth import BandwidthTrace
from tests.reference.abr import robust_mpc_choice

from .conftest import random_trace


def _info(**values):
    base = {"chunk_index": 3, "buffer_s": 0.0, "chunk_bytes": 1.0, "delay_s": 1.0, "last_level": 0}
    return {**base, **values}


def test_registered_family_heuristics():
    assert set(heuristics_for("sysgym/ABR-v0")) >= {"bb", "rb", "robust_mpc"}
    assert heuristics_for("sysgym/ABR-Pensieve-v0") == HEURISTICS
    with pytest.raises(TypeError):
        BufferBased(gym.make("CartPole-v1"))


@pytest.mark.parametrize("buffer_s, level", [(0.0, 0), (4.99, 0), (5.0, 0), (7.0, 1), (10.0, 2), (12.9, 3),
                                             (14.99, 4), (15.0, 5), (59.0, 5)])
def test_buffer_based_maps_reservoir_and_cushion_linearly(buffer_s, level):
    # Pensieve's bb.py: floor(5 * (b - 5) / 10) between the 5 s reservoir and 5 + 10 s
    bb = BufferBased(AbrEnv())
    assert bb.act(None, _info(buffer_s=buffer_s)) == level


def test_every_rule_plays_the_initial_level_first():
    for cls in HEURISTICS.values():
        assert cls(AbrEnv(pensieve_compatible=True)).act(None, _info(chunk_index=0, buffer_s=30.0)) == 1
        assert cls(AbrEnv()).act(None, _info(chunk_index=0, buffer_s=30.0)) == 0


def test_rate_based_uses_the_harmonic_mean_of_the_last_five_throughputs():
    rb = RateBased(AbrEnv())
    rb.act(None, _info(chunk_index=0))
    # throughputs in Mbps: bytes * 8 / delay / 1e6; 1 s delays and sizes giving 2, 2, 2 Mbps
    for _ in range(3):
        level = rb.act(None, _info(chunk_bytes=250_000, delay_s=1.0))
    assert level == 3          # 1850 kbps <= 2 Mbps < 2850 kbps
    # then 0.5 Mbps twice: harmonic mean of [2, 2, 2, .5, .5] = 5 / (3/2 + 4) = 0.909 Mbps -> 750 kbps
    rb.act(None, _info(chunk_bytes=62_500, delay_s=1.0))
    assert rb.act(None, _info(chunk_bytes=62_500, delay_s=1.0)) == 1
    # five more at 0.2 Mbps push the two-Mbps samples out of the window: below every rate -> 0
    for _ in range(5):
        level = rb.act(None, _info(chunk_bytes=25_000, delay_s=1.0))
    assert level == 0


def test_robust_mpc_prediction_by_hand():
    mpc = RobustMPC(AbrEnv())
    mpc.act(None, _info(chunk_index=0))
    # measured 1e6 B/s: no earlier estimate (error 0) -> estimate 1e6, prediction 1e6
    mpc.act(None, _info(chunk_index=1, chunk_bytes=1e6, delay_s=1.0))
    assert mpc.predicted_bandwidth[0] == pytest.approx(1e6)
    # measured 5e5: error |1e6 - 5e5| / 5e5 = 1; harmonic mean of (1e6, 5e5) = 2 / 3e-6 = 666,667;
    # prediction 666,667 / (1 + 1)
    mpc.act(None, _info(chunk_index=2, chunk_bytes=1e6, delay_s=2.0))
    assert mpc.predicted_bandwidth[0] == pytest.approx(2 / 3e-6 / 2)
    # measured 666,667 exactly as estimated: error 0, but the max error of the window is still 1
    mpc.act(None, _info(chunk_index=3, chunk_bytes=2e6, delay_s=3.0))
    assert mpc.predicted_bandwidth[0] == pytest.approx(3 / (1e-6 + 2e-6 + 1.5e-6) / 2)


def test_mpc_search_equals_the_itertools_reference():
    rng = np.random.default_rng(0)
    for case in range(300):
        levels = int(rng.integers(1, 5))
        chunks = int(rng.integers(1, 9))
        sizes = np.ascontiguousarray(rng.integers(10_000, 3_000_000, (levels, chunks)).astype(float))
        quality = np.sort(rng.uniform(0, 5, levels))
        if case % 7 == 0:
            quality[:] = 1.0        # all ties: the last plan in lexicographic order must win
        model = {"horizon": int(rng.integers(1, 6)), "num_chunks": chunks, "chunk_s": float(rng.choice([2.0, 4.0])),
                 "buffer_cap_s": float(rng.uniform(4, 20)), "sleep_step_s": 0.5,
                 "rebuffer_penalty": float(rng.uniform(0, 8)), "smoothness_penalty": float(rng.uniform(0, 2)),
                 "first_level": 0}
        c = int(rng.integers(0, chunks))
        args = (float(rng.uniform(0, 20)), int(rng.integers(-1, levels)), c, float(rng.uniform(5e4, 2e6)))
        expected = robust_mpc_choice(sizes, quality, *args, horizon=model["horizon"], num_chunks=chunks,
                                     chunk_s=model["chunk_s"], buffer_cap_s=model["buffer_cap_s"],
                                     sleep_step_s=0.5, rebuffer_penalty=model["rebuffer_penalty"],
                                     smoothness_penalty=model["smoothness_penalty"])
        assert mpc_search(model, sizes, quality.copy(), *args) == expected, case


def test_robust_mpc_avoids_a_stall_it_can_see():
    # 4 s chunks, 1 s of buffer, 1 MB/s predicted (8 Mbps, above the top bitrate). Level 4 (1.425 MB)
    # would stall 0.425 s (-1.83) for +1 of quality; level 3 (0.925 MB) downloads in 0.925 s without
    # a stall and leaves 4.075 s of buffer, after which every later chunk fits at the top level. The
    # smoothness cost of climbing from level 1 to 5 is the same on every monotone path, so level 3.
    env = AbrEnv(video=np.tile(np.array([150_000, 375_000, 600_000, 925_000, 1_425_000, 2_150_000])[:, None], 49))
    mpc = RobustMPC(env)
    mpc.act(None, _info(chunk_index=0))
    level = mpc.act(None, _info(chunk_index=1, chunk_bytes=1e6, delay_s=1.0, buffer_s=1.0, last_level=1))
    assert level == 3


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_batched_heuristic_equals_single_env_heuristics(name):
    cls = HEURISTICS[name]
    n = 4
    vec = gym.make_vec("sysgym/ABR-v0", num_envs=n, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP)   # a finished sub-env restarts at once
    singles = [gym.make("sysgym/ABR-v0") for _ in range(n)]
    batch_policy = cls(vec)
    single_policies = [cls(env) for env in singles]
    obs, infos = vec.reset(seed=5)
    single_state = [env.reset(seed=5 + i) for i, env in enumerate(singles)]
    for _ in range(120):                       # crosses episode ends
        actions = batch_policy.act(obs, infos)
        expected = [p.act(o, i) for p, (o, i) in zip(single_policies, single_state)]
        assert actions.tolist() == expected
        obs, _, term, trunc, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, _, t, tr, info = env.step(expected[i])
            single_state[i] = env.reset() if (t or tr) else (o, info)
            if t or tr:
                assert term[i]


def _brute_force(cfg_kwargs: dict, trace: BandwidthTrace) -> float:
    env = AbrEnv(traces=[trace], trace_order="sequential", noise=False, **cfg_kwargs)
    best = -np.inf
    for plan in itertools.product(range(env.config.num_levels), repeat=env.config.num_chunks):
        env.reset(options={"trace_index": 0})
        best = max(best, sum(env.step(a)[1] for a in plan))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_offline_optimum_matches_brute_force_and_replays_exactly(seed):
    rng = np.random.default_rng(seed)
    kwargs = {"bitrates_kbps": [300, 1200, 4300], "num_chunks": 5, "chunk_s": 2.0, "buffer_cap_s": 5.0,
              "video": rng.integers(50_000, 1_500_000, (3, 5)), "initial_level": int(rng.integers(0, 3))}
    trace = random_trace(rng, "tiny", "start")
    env = AbrEnv(traces=[trace], trace_order="sequential", noise=False, **kwargs)
    env.reset()
    plan, planned = offline_optimal_plan(env, dt=0.01)
    env.reset(options={"trace_index": 0})
    paid = sum(env.step(int(a))[1] for a in plan)
    assert paid == pytest.approx(planned, abs=1e-9)
    assert planned == pytest.approx(_brute_force(kwargs, trace), abs=1e-6)


def test_offline_optimum_needs_a_noise_free_env_at_its_start():
    with pytest.raises(ValueError, match="noise=False"):
        OfflineOptimal(AbrEnv(noise=True))
    env = AbrEnv(noise=False)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(ValueError, match="start of an episode"):
        offline_optimal_plan(env)


def test_expected_ordering_on_the_shipped_test_traces():
    qoe = {name: np.mean([m["qoe_per_chunk"] for m in evaluate_on_traces(cls)]) for name, cls in HEURISTICS.items()}
    assert qoe["robust_mpc"] > qoe["rb"] and qoe["robust_mpc"] > qoe["bb"]
    few = [f"trace_{k:03d}.txt" for k in range(6)]
    from sysgym.traces import trace_path

    files = [trace_path("abr", "test", name) for name in few]
    optimum = evaluate_on_traces(lambda vec: OfflineOptimal(vec, dt=1.0), traces=files)
    for name, cls in HEURISTICS.items():
        for opt, other in zip(optimum, evaluate_on_traces(cls, traces=files)):
            assert opt["qoe_per_chunk"] > other["qoe_per_chunk"], name


def test_evaluate_on_traces_plays_each_trace_once_from_its_start():
    results = evaluate_on_traces(BufferBased, traces="test")
    assert [int(m["trace_index"]) for m in results] == list(range(64))
    vec = AbrVectorEnv(1, traces="test", trace_order="sequential")
    assert vec.config.noise is False
