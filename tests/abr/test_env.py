"""ABR env behaviour beyond the kernel equations: QoE variants, quirk kwargs, trace order, metrics,
observation bounds, renders, shipped data."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import sysgym  # noqa: F401
from sysgym.envs.abr import (
    PENSIEVE_BITRATES_KBPS,
    AbrEnv,
    AbrVectorEnv,
    load_video,
    render,
    synthetic_video,
)
from sysgym.envs.bandwidth import BandwidthTrace, load_traces
from sysgym.traces import trace_path

from .conftest import random_kwargs

FLAT = BandwidthTrace("flat", np.array([0.0, 1000.0]), np.array([8.0, 8.0]))   # 950,000 video B/s


def _play(env: gym.Env, levels, seed=None, options=None):
    env.reset(seed=seed, options=options)
    out = []
    for level in levels:
        out.append(env.step(level))
    return out


@pytest.mark.parametrize("qoe, quality, mu", [
    ("linear", [0.3, 0.75, 1.2, 1.85, 2.85, 4.3], 4.3),
    ("log", [math.log(r / 300) for r in PENSIEVE_BITRATES_KBPS], 2.66),
    ("hd", [1, 2, 3, 12, 15, 20], 8.0),
])
def test_qoe_variants_use_pensieve_values(qoe, quality, mu):
    # 95,000 B chunks on the flat link: delay 0.1 + 0.08 = 0.18 s; the first is a 0.18 s stall.
    env = AbrEnv(qoe=qoe, traces=[FLAT], video=np.full((6, 10), 95_000), noise=False, initial_level=1)
    steps = _play(env, [5, 2])
    np.testing.assert_allclose(steps[0][4]["reward_components"],
                               [quality[5], -mu * 0.18, -abs(quality[5] - quality[1])], rtol=1e-12)
    np.testing.assert_allclose(steps[1][4]["reward_components"], [quality[2], 0.0, -abs(quality[2] - quality[5])],
                               rtol=1e-12)
    assert env.unwrapped.reward_weights.tolist() == [1.0, 1.0, 1.0]


def test_custom_qoe_needs_a_rebuffer_penalty_and_one_value_per_level():
    with pytest.raises(ValueError, match="rebuffer_penalty"):
        AbrEnv(qoe=[0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="one quality value per level"):
        AbrEnv(qoe=[0, 1], rebuffer_penalty=1.0)
    with pytest.raises(ValueError, match="6 HD values"):
        AbrEnv(qoe="hd", bitrates_kbps=[100, 200, 400])


def test_startup_and_first_switch_quirks_are_kwargs():
    video = np.full((6, 10), 95_000)
    quirky = _play(AbrEnv(traces=[FLAT], video=video, noise=False, initial_level=1, startup_rebuffer=True), [4])
    plain = _play(AbrEnv(traces=[FLAT], video=video, noise=False, initial_level=None, startup_rebuffer=False),
                  [4] * 10)
    np.testing.assert_allclose(quirky[0][4]["reward_components"], [2.85, -4.3 * 0.18, -(2.85 - 0.75)])
    np.testing.assert_allclose(plain[0][4]["reward_components"], [2.85, 0.0, 0.0])
    assert plain[0][4]["rebuffer_s"] == 0.0
    metrics = plain[-1][4]["episode_metrics"]
    assert metrics["startup_delay_s"] == pytest.approx(0.18) and metrics["rebuffer_time_s"] == 0.0


def test_generic_default_plays_every_chunk_pensieve_plays_48_of_49():
    assert AbrEnv().config.num_chunks == 49
    assert AbrEnv(pensieve_compatible=True).config.num_chunks == 48
    assert AbrEnv(num_chunks=10).config.num_chunks == 10
    with pytest.raises(ValueError, match="only 49 chunks"):
        AbrEnv(num_chunks=50, video=synthetic_video(PENSIEVE_BITRATES_KBPS))


def test_rate_at_decides_which_sample_covers_a_segment():
    # points 0, 1, 2 with Mbps 8, 4, 0: "start" -> [0,1) at 8 Mbps; "end" -> [0,1) at 4 Mbps
    trace = BandwidthTrace("two", np.array([0.0, 1.0, 2.0]), np.array([8.0, 4.0, 0.0]))
    video = np.full((1, 3), 95_000)
    start = _play(AbrEnv(traces=[trace], video=video, bitrates_kbps=[300], noise=False,
                         trace_order="sequential", rate_at="start"), [0])
    end = _play(AbrEnv(traces=[trace], video=video, bitrates_kbps=[300], noise=False,
                       trace_order="sequential", rate_at="end"), [0])
    assert start[0][4]["delay_s"] == pytest.approx(0.1 + 0.08)
    assert end[0][4]["delay_s"] == pytest.approx(0.2 + 0.08)


def test_sequential_order_walks_traces_from_their_start_and_wraps():
    traces = [BandwidthTrace(f"t{k}", np.array([0.0, 5.0, 10.0]), np.array([1.0 + k, 2.0, 3.0])) for k in range(3)]
    env = AbrEnv(traces=traces, trace_order="sequential", num_chunks=2).unwrapped
    assert env.config.noise is False
    seen = []
    for _ in range(7):
        _, info = env.reset()
        seen.append(info["trace_index"])
        assert env.batched.trace_position(0) == (info["trace_index"], 0, 0.0)
    assert seen == [0, 1, 2, 0, 1, 2, 0]
    _, info = env.reset(options={"trace": 2})
    assert info["trace_index"] == 2
    _, info = env.reset()
    assert info["trace_index"] == 0
    _, info = env.reset(options={"trace_index": 1})      # the earlier name still works
    assert info["trace_index"] == 1


def test_a_seeded_reset_restarts_the_sequential_walk():
    traces = [BandwidthTrace(f"t{k}", np.array([0.0, 5.0, 10.0]), np.array([1.0 + k, 2.0, 3.0])) for k in range(3)]
    env = AbrEnv(traces=traces, trace_order="sequential", num_chunks=2)
    assert [env.reset(seed=123)[1]["trace_index"] for _ in range(4)] == [0, 0, 0, 0]
    env.reset()
    assert env.reset()[1]["trace_index"] == 2 and env.reset(seed=5)[1]["trace_index"] == 0
    assert env.reset()[1]["trace_index"] == 1
    vec = AbrVectorEnv(3, traces=traces, trace_order="sequential", num_chunks=2)
    vec.reset()
    vec.reset()
    _, infos = vec.reset(seed=[None, 4, None])        # only the seeded sub-env restarts
    assert infos["trace_index"].tolist() == [2, 0, 2]
    # the native vector env equals Gymnasium's sync vector env under seeded resets (contract 2)
    sync = gym.vector.SyncVectorEnv([lambda: AbrEnv(traces=traces, trace_order="sequential", num_chunks=2)] * 3)
    vec = AbrVectorEnv(3, traces=traces, trace_order="sequential", num_chunks=2)
    for seed in (None, 9, None, None, 1):
        assert vec.reset(seed=seed)[1]["trace_index"].tolist() == sync.reset(seed=seed)[1]["trace_index"].tolist()


def test_random_order_draws_trace_and_offset_from_the_seed():
    env = AbrEnv(traces="test")
    starts = set()
    for seed in range(40):
        env.reset(seed=seed)
        starts.add(env.unwrapped.batched.trace_position(0))
    assert len({k for k, _, _ in starts}) > 15 and len(starts) == 40
    env.reset(seed=7)
    a = env.unwrapped.batched.trace_position(0)
    env.reset(seed=7)
    assert env.unwrapped.batched.trace_position(0) == a


def test_reset_options_are_checked():
    vec = AbrVectorEnv(2, traces="test")
    vec.reset(options={"trace": np.array([3, 4])})
    assert vec._state["trace"].tolist() == [3, 4]
    vec.reset(options={"trace_index": 5})
    assert vec._state["trace"].tolist() == [5, 5]
    for bad in ({"trace": 99}, {"trace": -1}, {"trace_index": np.array([1, 2, 3])}, {"trace": 1.5}, {"speed": 2},
                {"trace": 1, "trace_index": 1}):
        with pytest.raises(ValueError):
            vec.reset(options=bad)


def test_episode_metrics_agree_with_the_steps():
    env = AbrEnv(traces="test")
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    rewards, comps, stalls, levels, delays_and_sleeps = [], [], [], [], []
    while True:
        level = int(rng.integers(0, 6)) if rng.random() < 0.3 else (levels[-1] if levels else 2)
        _, reward, terminated, _, info = env.step(level)
        rewards.append(reward)
        comps.append(info["reward_components"])
        stalls.append(info["rebuffer_s"])
        levels.append(level)
        delays_and_sleeps.append(info["delay_s"] + info["sleep_s"])
        if terminated:
            break
    m = info["episode_metrics"]
    n = len(levels)
    assert n == 49
    assert m["qoe_per_chunk"] == pytest.approx(sum(rewards) / n, rel=1e-12)
    np.testing.assert_allclose([m["quality_per_chunk"], m["rebuffer_per_chunk"], m["smoothness_per_chunk"]],
                               np.sum(comps, axis=0) / n, rtol=1e-12)
    assert m["rebuffer_time_s"] == pytest.approx(sum(stalls), rel=1e-12)
    assert m["switches"] == sum(a != b for a, b in zip(levels, levels[1:]))
    assert m["mean_bitrate_kbps"] == pytest.approx(np.mean([PENSIEVE_BITRATES_KBPS[v] for v in levels]))
    assert m["session_time_s"] == pytest.approx(sum(delays_and_sleeps), rel=1e-12)
    assert m["smoothness_per_chunk"] <= 0 and m["rebuffer_per_chunk"] <= 0


@pytest.mark.parametrize("config_seed", range(12))
def test_observations_stay_inside_the_observation_space(config_seed):
    kwargs = random_kwargs(config_seed)
    kwargs["noise_range"] = (0.5, 1.5)
    kwargs["noise"] = True
    vec = AbrVectorEnv(8, **kwargs)
    space = vec.single_observation_space
    assert np.all(np.isfinite(space.high))
    obs, _ = vec.reset(seed=config_seed)
    rng = np.random.default_rng(config_seed)
    for _ in range(4 * vec.config.num_chunks):
        obs, *_ = vec.step(rng.integers(0, vec.config.num_levels, 8))
        for o in obs:
            assert space.contains(o), (o, space.high)


def test_renders_show_the_episode():
    env = AbrEnv(render_mode="rgb_array", traces="test", noise=False)
    env.reset(seed=0)
    blank = env.render()
    for level in [0, 5, 5, 1]:
        env.step(level)
    frame = env.render()
    assert frame.shape == blank.shape and frame.dtype == np.uint8
    is_bitrate = np.all(frame == render.BITRATE, axis=2)
    assert not np.all(blank == render.BITRATE, axis=2).any()
    bar_heights = [int(is_bitrate[:, render.MARGIN + c * render.COLUMN].sum()) for c in range(6)]
    # bars scale with kbps / 4300 over a 72-pixel panel: 300 -> 5, 4300 -> 72, 750 -> 13
    assert bar_heights == [round(72 * 300 / 4300), 72, 72, round(72 * 750 / 4300), 0, 0]
    assert np.all(frame == render.BUFFER, axis=2).any()
    text = AbrEnv(render_mode="ansi", traces="test")
    text.reset(seed=0)
    text.step(3)
    out = text.render()
    assert "chunk 1/49" in out and "level 3 (1850 kbps)" in out


def test_native_vector_env_is_the_registered_fast_path():
    vec = gym.make_vec("sysgym/ABR-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP)
    obs, info = vec.reset(seed=0)
    assert obs.shape == (3, 6, 8) and info["action_mask"].all()
    assert isinstance(vec.unwrapped, AbrVectorEnv)


def test_shipped_data_is_what_the_generator_writes(tmp_path):
    from sysgym.traces.abr.generate import TRACE_SETS, write_all

    write_all(tmp_path)
    shipped = trace_path("abr")
    for name, (count, _) in TRACE_SETS.items():
        files = sorted((shipped / name).glob("*.txt"))
        assert len(files) == count
        for f in files:
            assert f.read_bytes() == (tmp_path / name / f.name).read_bytes(), f
    for level in range(6):
        assert (shipped / "video" / f"video_size_{level}").read_bytes() == \
               (tmp_path / "video" / f"video_size_{level}").read_bytes()


def test_shipped_video_is_the_default_video():
    sizes = load_video(trace_path("abr", "video"))
    assert sizes.shape == (6, 49)
    np.testing.assert_array_equal(AbrEnv().config.sizes, sizes)
    mean_kbps = sizes.mean(axis=1) * 8 / 4.0 / 1000
    np.testing.assert_allclose(mean_kbps, PENSIEVE_BITRATES_KBPS, rtol=0.05)
    assert np.all(np.diff(sizes, axis=0) > 0)


def test_shipped_trace_sets_load_with_the_shared_reader():
    train, test = load_traces(trace_path("abr", "train")), load_traces(trace_path("abr", "test"))
    assert len(train) == 96 and len(test) == 64
    means = [tr.mean_mbps for tr in train + test]
    assert 0.5 < np.mean(means) < 3.0
    assert [tr.name for tr in train] == [f"trace_{k:03d}.txt" for k in range(96)]
