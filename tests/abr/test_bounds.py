"""No input crashes, hangs or leaves the declared space: snapshots are checked, every kwarg has a
documented range, every transfer ends within max_transfer_s, observations stay in their Box."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from sysgym.envs.abr import AbrEnv, AbrVectorEnv
from sysgym.envs.bandwidth import BandwidthTrace

from .conftest import run_isolated


def test_foreign_and_edited_snapshots_are_refused_in_isolation():
    # train -> test, a long trace into a short one (the fingerprint), then the same arrays with the
    # fingerprint forged (the segment check), trace = 10**6, chunk = -1, NaN times, ... (see the cases)
    assert run_isolated("from tests.abr.isolated_cases import snapshot_cases; snapshot_cases()").endswith("ok\n")


def test_slow_traces_and_huge_chunks_end_quickly_in_isolation():
    out = run_isolated("from tests.abr.isolated_cases import slow_and_huge_inputs; slow_and_huge_inputs()")
    assert out.endswith("ok\n") and "1e-15 Mbps capped 49.0" in out


def test_a_download_is_cut_at_max_transfer_s_by_hand():
    # 1 Mbps = 125,000 B/s, 118,750 video B/s. A 1,000,000 B chunk would take 8.42 s; the cap is 2 s:
    # delivered 237,500 B, delay 2 + 0.08 = 2.08 s, all of it a stall (empty buffer), buffer 4 s,
    # trace clock at 2 s, throughput 237,500 B / 2.08 s. The next chunk (100,000 B) is not cut.
    trace = BandwidthTrace("flat1", np.array([0.0, 100.0]), np.array([1.0, 1.0]))
    video = np.full((2, 3), 100_000)
    video[1, 0] = 1_000_000
    env = AbrEnv(traces=[trace], video=video, bitrates_kbps=[300, 750], noise=False, trace_order="sequential",
                 max_transfer_s=2.0)
    env.reset()
    obs, reward, _, _, info = env.step(1)
    assert info["delay_s"] == pytest.approx(2.08, abs=1e-12)
    assert info["rebuffer_s"] == pytest.approx(2.08, abs=1e-12) and info["buffer_s"] == 4.0
    assert info["chunk_bytes"] == 1_000_000
    assert info["throughput_mbps"] == pytest.approx(237_500 * 8 / 2.08 / 1e6, rel=1e-12)
    assert obs[2, -1] == np.float32(237_500 / 2.08 / 1e6)
    assert env.unwrapped.batched.trace_position(0) == (0, 0, pytest.approx(2.0, abs=1e-12))
    _, _, _, _, info = env.step(0)
    assert info["delay_s"] == pytest.approx(100_000 / 118_750 + 0.08, rel=1e-12)
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["episode_metrics"]["capped_downloads"] == 1.0


@pytest.mark.parametrize("kwargs", [
    {"rtt_s": 1e308}, {"rtt_s": 61}, {"rebuffer_penalty": 1e308}, {"smoothness_penalty": 1e7},
    {"noise_range": (0.9, float("inf"))}, {"noise_range": (0.0, 1.0)}, {"noise_range": (0.9, 1e3)},
    {"history": 10**7}, {"history": 1025}, {"sleep_step_s": 1e-300}, {"sleep_step_s": 1e5},
    {"chunk_s": 1e300}, {"chunk_s": 1e-9}, {"sleep_step_s": 5.0, "buffer_cap_s": 4.0}, {"buffer_cap_s": 1e300}, {"payload_portion": 1e-12},
    {"payload_portion": 0.0}, {"max_transfer_s": 0.0}, {"max_transfer_s": 1e7}, {"max_transfer_s": float("nan")},
    {"bitrates_kbps": [1e300]}, {"bitrates_kbps": list(range(1, 34))}, {"bitrates_kbps": "300"},
    {"bitrates_kbps": [300, float("nan")]}, {"qoe": [1e300] * 6, "rebuffer_penalty": 1.0},
    {"qoe": "log", "bitrates_kbps": [1e-300, 1e7]}, {"num_chunks": 10**9}, {"num_chunks": 1.5},
    {"video_seed": -1}, {"video_seed": 2**64}, {"mahimahi_bin_ms": 0}, {"mahimahi_bin_ms": 1e9},
    {"observation": "image"}, {"observation": ""}, {"loop_clock": "last"}, {"trace_format": "csv"},
    {"initial_level": 2**70}, {"noise": 1},
])
def test_every_numeric_kwarg_has_a_documented_range(kwargs):
    with pytest.raises(ValueError):
        AbrEnv(**kwargs)


def test_the_range_limits_themselves_are_accepted():
    env = AbrEnv(rtt_s=60.0, payload_portion=0.01, sleep_step_s=0.001, chunk_s=0.001, buffer_cap_s=86_400.0,
                 max_transfer_s=1e6, noise_range=(0.01, 100.0), rebuffer_penalty=1e6, smoothness_penalty=1e6,
                 history=1024, num_chunks=3)
    env.reset(seed=0)
    for _ in range(3):
        obs, reward, *_ = env.step(5)
        assert env.observation_space.contains(obs) and np.isfinite(reward)


def _adversarial_kwargs(seed: int) -> dict:
    """Valid but hostile settings: slow, tiny or outage-ridden traces, huge chunks, extreme noise."""
    rng = np.random.default_rng(seed)
    traces = []
    for k in range(3):
        n = int(rng.integers(2, 12))
        scale = 10.0 ** rng.uniform(-7, 3)                       # 1e-7 s to 1000 s between samples
        times = np.concatenate([[0.0], np.cumsum(rng.uniform(0, 1, n - 1) * scale)])
        if times[-1] <= 0:
            times[-1] = scale
        mbps = 10.0 ** rng.uniform(-15, 6, n) * (rng.random(n) < 0.7)
        mbps[0] = mbps[1] = max(mbps[0], 1e-15)
        traces.append(BandwidthTrace(f"adv{k}", times, mbps))
    levels = int(rng.integers(1, 7))
    return {
        "traces": traces, "bitrates_kbps": sorted(rng.choice(np.arange(1, 10**6), levels, replace=False).tolist()),
        "video": np.round(10.0 ** rng.uniform(0, 12, (levels, 6))), "num_chunks": 6, "history": levels + 2,
        "noise": True, "noise_range": (0.01, float(rng.choice([0.01, 1.0, 100.0]))),
        "max_transfer_s": float(10.0 ** rng.uniform(-3, 6)), "rtt_s": float(rng.choice([0.0, 60.0])),
        "payload_portion": float(rng.choice([0.01, 1.0])), "chunk_s": float(rng.choice([0.001, 4.0, 3600.0])),
        "buffer_cap_s": 86_400.0 if rng.random() < 0.5 else None, "sleep_step_s": float(rng.choice([0.001, 3600.0])),
        "rebuffer_penalty": 1e6, "smoothness_penalty": 1e6, "rate_at": str(rng.choice(["start", "end"])),
        "loop_clock": str(rng.choice(["first", "zero"])), "observation": str(rng.choice(["clean", "pensieve"])),
        "trace_order": str(rng.choice(["random", "sequential"])),
    }


@pytest.mark.parametrize("seed", range(24))
def test_observations_stay_in_the_space_under_hostile_valid_inputs(seed):
    kwargs = _adversarial_kwargs(seed)
    if kwargs["buffer_cap_s"] is None:
        kwargs["buffer_cap_s"] = kwargs["chunk_s"]
    kwargs["sleep_step_s"] = min(kwargs["sleep_step_s"], kwargs["buffer_cap_s"])
    try:
        vec = AbrVectorEnv(8, **kwargs)
    except ValueError as err:        # only a trace that delivers nothing may be refused here
        assert "delivers any bytes" in str(err)
        return
    space = vec.single_observation_space
    assert np.all(np.isfinite(space.high))
    flat = spaces.flatten_space(space)
    rng = np.random.default_rng(seed)
    vec.reset(seed=seed)
    for _ in range(3 * vec.config.num_chunks):
        obs, rewards, _, _, infos = vec.step(rng.integers(0, vec.config.num_levels, 8))
        for o in obs:
            assert space.contains(o), (o, space.high)
            assert flat.contains(spaces.flatten(space, o))
        assert np.all(np.isfinite(rewards)) and np.all(np.isfinite(infos["reward_components"]))
        for key in ("delay_s", "buffer_s", "rebuffer_s", "sleep_s", "throughput_mbps"):
            assert np.all(np.isfinite(infos[key])) and np.all(infos[key] >= 0), key
