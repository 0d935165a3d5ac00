"""Pensieve-compatible mode against examples worked out by hand from Pensieve's formulas.

Constants (Mao et al. SIGCOMM'17, sim/env.py): 4 s chunks, ladder [300, 750, 1200, 1850, 2850,
4300] kbps, payload 0.95, RTT 80 ms, buffer cap 60 s drained in 500 ms sleeps, reward
bitrate_Mbps - 4.3 rebuffer_s - |dbitrate_Mbps|, first chunk compared with level 1, bandwidth of
sample i used over the interval that ends at its timestamp. Every expected number below is
derived in the comments; none comes from running the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.abr import AbrEnv
from sysgym.envs.bandwidth import BandwidthTrace

MB = 1e6


def _video(chunk_sizes: dict[tuple[int, int], int]) -> np.ndarray:
    sizes = np.full((6, 49), 100_000, dtype=np.int64)
    for (level, chunk), size in chunk_sizes.items():
        sizes[level, chunk] = size
    return sizes


def _env(trace: BandwidthTrace, video: np.ndarray) -> AbrEnv:
    return AbrEnv(pensieve_compatible=True, noise=False, trace_order="sequential", traces=[trace], video=video)


# Points 0, 1, 3, 4 s with Mbps [1, 8, 0, 4]; Pensieve's rule gives the segments
#   [0, 1): 8 Mbps = 1e6 B/s -> 950,000 video B/s;  [1, 3): 0;  [3, 4): 4 Mbps -> 475,000 B/s;
# then the trace loops back to 0.
LOOPY = BandwidthTrace("loopy", np.array([0.0, 1.0, 3.0, 4.0]), np.array([1.0, 8.0, 0.0, 4.0]))
#          (level, chunk): bytes
SIZES = {(1, 0): 475_000, (5, 1): 1_425_000, (0, 2): 95_000, (2, 3): 285_000}
PLAN = [1, 5, 0, 2]

# chunk 0, level 1: from t=0, 475,000 B at 950,000 B/s = 0.5 s; delay 0.5 + 0.08 = 0.58, all of it a
#   stall (empty buffer); buffer 0 + 4 = 4; reward 0.75 - 4.3*0.58 - |0.75 - 0.75| = -1.744.
# chunk 1, level 5: 1,425,000 B from t=0.5: 475,000 B by t=1 (0.5 s), nothing in [1, 3) (2 s),
#   475,000 B in [3, 4) (1 s), loop to 0, the last 475,000 B in 0.5 s -> 4.0 s, t=0.5;
#   delay 4.08, stall 4.08 - 4 = 0.08, buffer 0 + 4 = 4; reward 4.3 - 4.3*0.08 - |4.3 - 0.75| = 0.406.
# chunk 2, level 0: 95,000 B from t=0.5 in 0.1 s (t=0.6); delay 0.18, no stall, buffer 4 - 0.18 + 4 =
#   7.82; reward 0.3 - |0.3 - 4.3| = -3.7.
# chunk 3, level 2: 285,000 B from t=0.6 in 0.3 s (t=0.9); delay 0.38, buffer 7.82 - 0.38 + 4 = 11.44;
#   reward 1.2 - |1.2 - 0.3| = 0.3.
DELAYS = [0.58, 4.08, 0.18, 0.38]
STALLS = [0.58, 0.08, 0.0, 0.0]
BUFFERS = [4.0, 4.0, 7.82, 11.44]
QUALITY = [0.75, 4.3, 0.3, 1.2]
REBUFFER = [-4.3 * 0.58, -4.3 * 0.08, 0.0, 0.0]
SMOOTHNESS = [0.0, -3.55, -4.0, -0.9]
REWARDS = [-1.744, 0.406, -3.7, 0.3]
TRACE_TIME = [0.5, 0.5, 0.6, 0.9]


def test_delays_rewards_and_components_match_the_hand_computation():
    env = _env(LOOPY, _video(SIZES))
    env.reset()
    for c, level in enumerate(PLAN):
        _, reward, terminated, truncated, info = env.step(level)
        assert info["delay_s"] == pytest.approx(DELAYS[c], abs=1e-12)
        assert info["rebuffer_s"] == pytest.approx(STALLS[c], abs=1e-12)
        assert info["buffer_s"] == pytest.approx(BUFFERS[c], abs=1e-12)
        assert info["sleep_s"] == 0.0
        np.testing.assert_allclose(info["reward_components"], [QUALITY[c], REBUFFER[c], SMOOTHNESS[c]], atol=1e-12)
        assert reward == pytest.approx(REWARDS[c], abs=1e-12)
        assert env.unwrapped.batched.trace_position(0)[2] == pytest.approx(TRACE_TIME[c], abs=1e-12)
        assert not terminated and not truncated


def test_clean_state_normalisations_by_hand():
    env = AbrEnv(pensieve_compatible=True, observation="clean", noise=False, trace_order="sequential",
                 traces=[LOOPY], video=_video(SIZES))
    obs, _ = env.reset()
    # before the first chunk: only the chunks-left row (48/48) and chunk 0's sizes (MB) are set
    assert obs[5, -1] == 1.0 and np.all(obs[[0, 1, 2, 3]] == 0.0)
    np.testing.assert_allclose(obs[4, :6], [0.1, 0.475, 0.1, 0.1, 0.1, 0.1], rtol=1e-7)
    for level in PLAN:
        obs, *_ = env.step(level)
    f32 = lambda values: np.asarray(values, dtype=np.float32)  # noqa: E731
    np.testing.assert_array_equal(obs[0, 4:], f32([750 / 4300, 1.0, 300 / 4300, 1200 / 4300]))
    np.testing.assert_allclose(obs[1, 4:], [b / 10 for b in BUFFERS], rtol=1e-6)
    throughput = [0.475 / 0.58, 1.425 / 4.08, 0.095 / 0.18, 0.285 / 0.38]  # MB per second of delay
    np.testing.assert_allclose(obs[2, 4:], throughput, rtol=1e-6)
    np.testing.assert_allclose(obs[3, 4:], [d / 10 for d in DELAYS], rtol=1e-6)
    np.testing.assert_allclose(obs[5, 3:], [1.0, 47 / 48, 46 / 48, 45 / 48, 44 / 48], rtol=1e-7)
    assert np.all(obs[:4, :4] == 0.0)                     # the history has only 4 chunks yet
    np.testing.assert_allclose(obs[4, :6], 0.1, rtol=1e-7)  # chunk 4 has the filler size at every level
    assert np.all(obs[4, 6:] == 0.0)


# Pensieve's test harness (test/rl_no_training.py) starts from the zero matrix and, after each chunk,
# rolls the whole 6x8 matrix one column left, then writes column 7 of rows 0-3 and 5 and columns
# 0-5 of row 4, in its own units: delay_ms = 1000 * transfer_s + 80; row 2 = bytes / delay_ms / 1000;
# row 3 = delay_ms / 1000 / 10; row 1 = buffer_s / 10; row 0 = kbps / 4300; row 5 = chunks left / 48.
# Worked by hand for the plan above (no sizes but the four in SIZES differ from 100,000 B):
#   row 4 after chunk 1 shows chunk 2: [0.095, 0.1 x 5], column 6 = old column 7 = 0 (zero start),
#     column 7 = old column 0 = level-0 size of chunk 1 = 0.1;
#   after chunk 2 (shows chunk 3: level 2 = 0.285): column 6 = 0.1 (old column 7), 7 = 0.095;
#   after chunk 3 (shows chunk 4): column 6 = 0.095, column 7 = 0.1 (level 0 of chunk 3).
PENSIEVE_ROW4 = {
    1: [0.1, 0.1, 0.1, 0.1, 0.1, 1.425, 0.0, 0.0],
    2: [0.095, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0, 0.1],
    3: [0.1, 0.1, 0.285, 0.1, 0.1, 0.1, 0.1, 0.095],
    4: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.095, 0.1],
}
PENSIEVE_AFTER_4 = np.array([
    [0, 0, 0, 0, 750 / 4300, 4300 / 4300, 300 / 4300, 1200 / 4300],
    [0, 0, 0, 0, 4.0 / 10, 4.0 / 10, 7.82 / 10, 11.44 / 10],
    [0, 0, 0, 0, 475000 / 580 / 1000, 1425000 / 4080 / 1000, 95000 / 180 / 1000, 285000 / 380 / 1000],
    [0, 0, 0, 0, 580 / 1000 / 10, 4080 / 1000 / 10, 180 / 1000 / 10, 380 / 1000 / 10],
    PENSIEVE_ROW4[4],
    [0, 0, 0, 0, 47 / 48, 46 / 48, 45 / 48, 44 / 48],
])


def test_pensieve_state_equals_pensieves_harness_cell_for_cell():
    env = _env(LOOPY, _video(SIZES))
    obs, _ = env.reset()
    assert np.all(obs == 0.0)                   # Pensieve's s_batch starts from np.zeros((6, 8))
    for c, level in enumerate(PLAN, start=1):
        obs, *_ = env.step(level)
        np.testing.assert_allclose(obs[4], np.float32(PENSIEVE_ROW4[c]), rtol=1e-7, atol=0)
    # every cell, to float32 rounding (Pensieve divides milliseconds, we divide seconds)
    np.testing.assert_allclose(obs, PENSIEVE_AFTER_4.astype(np.float32), rtol=3e-7, atol=0)
    assert np.array_equal(obs == 0.0, PENSIEVE_AFTER_4 == 0.0)


def test_pensieve_state_on_the_last_chunk_shows_chunk_0():
    # distinct sizes: size[j][c] = 90,000 + 1,000 c + j bytes; a flat 8 Mbps link (950,000 B/s)
    sizes = 90_000 + 1_000 * np.arange(49)[None, :] + np.arange(6)[:, None]
    flat = BandwidthTrace("flat", np.array([0.0, 1000.0]), np.array([8.0, 8.0]))
    env = _env(flat, sizes)
    env.reset()
    for c in range(48):
        obs, _, terminated, _, _ = env.step(0)
        assert terminated == (c == 47)
    # chunk 0's sizes (Pensieve's video_chunk_counter wrapped to 0), no chunk left, and the
    # level-0 sizes of chunks 46 and 47 in columns 6 and 7
    np.testing.assert_allclose(obs[4], np.float32([0.090, 0.090001, 0.090002, 0.090003, 0.090004, 0.090005,
                                                   0.136, 0.137]), rtol=1e-7)
    assert obs[5, -1] == 0.0 and obs[5, -2] == np.float32(1 / 48)


def test_pensieve_mode_restarts_the_trace_clock_at_zero():
    # Points 5, 6, 8 s with Mbps [1, 8, 4], rate_at "end": [5, 6) carries 950,000 B/s, [6, 8) 475,000.
    # A 3,800,000 B chunk from t=5: 950,000 B by 6 (1 s), 950,000 B by 8 (2 s), then the loop.
    # Pensieve resumes at time 0 (fixed_env.py: last_mahimahi_time = 0), so segment 0 spans [0, 6):
    # the last 1,900,000 B take 2 s -> transfer 5 s, delay 5.08 s, trace clock at 2 s.
    # Resuming at the first timestamp (loop_clock "first") segment 0 is [5, 6) again: 950,000 B in
    # 1 s, then 950,000 B in [6, 8) (2 s) -> transfer 6 s, delay 6.08 s, clock at 8 s.
    late = BandwidthTrace("late", np.array([5.0, 6.0, 8.0]), np.array([1.0, 8.0, 4.0]))
    sizes = np.full((6, 49), 100_000)
    sizes[[1, 5], 0] = 3_800_000  # Pensieve plays chunk 0 at level 1; the generic env below picks 5
    env = _env(late, sizes)
    env.reset()
    _, _, _, _, info = env.step(5)
    assert info["delay_s"] == pytest.approx(5.08, abs=1e-12)
    assert env.unwrapped.batched.trace_position(0)[1:] == (0, pytest.approx(2.0, abs=1e-12))
    generic = AbrEnv(noise=False, trace_order="sequential", traces=[late], video=sizes, rate_at="end",
                     loop_clock="first")
    generic.reset()
    _, _, _, _, info = generic.step(5)
    assert info["delay_s"] == pytest.approx(6.08, abs=1e-12)
    # the end of the trace, or equivalently the loop start (5 s), depending on the last rounding
    assert generic.unwrapped.batched.trace_position(0)[1:] in [(1, pytest.approx(8.0, abs=1e-9)),
                                                              (0, pytest.approx(5.0, abs=1e-9))]


def test_buffer_cap_sleeps_in_half_seconds_and_the_trace_clock_follows():
    # A constant 8 Mbps link: a 95,000 B chunk takes 95,000 / 950,000 = 0.1 s, delay 0.18 s.
    # The buffer after chunk k is 4 + 3.82 k (4 s added, 0.18 s played during each download) until
    # chunk 15: 4 + 15 * 3.82 = 61.3 > 60 -> sleep ceil(1.3 / 0.5) * 0.5 = 1.5 s, buffer 59.8;
    # chunk 16: 59.8 - 0.18 + 4 = 63.62 -> sleep ceil(7.24) * 0.5 = 4.0, buffer 59.62;
    # chunk 17: 59.62 - 0.18 + 4 = 63.44 -> sleep ceil(6.88) * 0.5 = 3.5, buffer 59.94.
    # The trace clock moves by the transfer (0.1 s) and the sleeps only: after chunk 17 it is at
    # 18 * 0.1 + 1.5 + 4.0 + 3.5 = 10.8 s.
    flat = BandwidthTrace("flat", np.array([0.0, 1000.0]), np.array([8.0, 8.0]))
    env = _env(flat, np.full((6, 49), 95_000))
    env.reset()
    sleeps, buffers, rewards = [], [], []
    for _ in range(18):
        _, reward, _, _, info = env.step(0)
        sleeps.append(info["sleep_s"])
        buffers.append(info["buffer_s"])
        rewards.append(reward)
    assert sleeps[:15] == [0.0] * 15 and sleeps[15:] == [1.5, 4.0, 3.5]
    np.testing.assert_allclose(buffers[:15], [4 + 3.82 * k for k in range(15)], atol=1e-9)
    np.testing.assert_allclose(buffers[15:], [59.8, 59.62, 59.94], atol=1e-9)
    # chunk 0 plays at Pensieve's default level 1: 0.75 - 4.3 * 0.18 - |0.75 - 0.75| = -0.024;
    # chunk 1 drops to level 0: 0.3 - |0.3 - 0.75| = -0.15; then 0.3 each
    np.testing.assert_allclose(rewards, [-0.024, -0.15] + [0.3] * 16, atol=1e-12)
    assert env.unwrapped.batched.trace_position(0)[2] == pytest.approx(10.8, abs=1e-9)


def test_pensieve_plays_48_chunks_and_noise_is_uniform_in_0_9_to_1_1():
    flat = BandwidthTrace("flat", np.array([0.0, 1000.0]), np.array([8.0, 8.0]))
    env = AbrEnv(pensieve_compatible=True, traces=[flat], video=np.full((6, 49), 95_000))
    factors = []
    for seed in range(20):
        env.reset(seed=seed)
        for c in range(48):
            _, _, terminated, _, info = env.step(0)
            factors.append(info["delay_s"] / (0.1 + 0.08))  # transfer 0.1 s + RTT, times the noise
            assert terminated == (c == 47)
        assert info["episode_metrics"]["trace_index"] == 0.0
    factors = np.asarray(factors)
    assert factors.min() >= 0.9 - 1e-12 and factors.max() <= 1.1 + 1e-12
    assert factors.min() < 0.91 and factors.max() > 1.09 and abs(factors.mean() - 1.0) < 0.01


def test_pensieve_mode_refuses_to_change_its_constants():
    with pytest.raises(ValueError, match="pensieve_compatible=True fixes chunk_s"):
        AbrEnv(pensieve_compatible=True, chunk_s=2.0)
    with pytest.raises(ValueError, match="fixes bitrates_kbps, rtt_s"):
        AbrEnv(pensieve_compatible=True, bitrates_kbps=[100, 200], rtt_s=0.0)


def test_pensieve_plays_chunk_0_at_its_default_quality():
    """Pensieve's test harness downloads chunk 0 at DEFAULT_QUALITY (level 1) before the agent acts;
    in Pensieve mode the mask at reset allows only that level and any action plays it."""
    sizes = 90_000 + 1_000 * np.arange(49)[None, :] + np.arange(6)[:, None]
    flat = BandwidthTrace("flat", np.array([0.0, 1000.0]), np.array([8.0, 8.0]))
    env = _env(flat, sizes)
    _, info = env.reset()
    assert info["action_mask"].tolist() == [0, 1, 0, 0, 0, 0]
    _, _, _, _, info = env.step(5)
    assert info["chunk_bytes"] == 90_001 and info["last_level"] == 1
    assert info["action_mask"].tolist() == [1] * 6
    _, _, _, _, info = env.step(5)
    assert info["chunk_bytes"] == 90_000 + 1_000 + 5 and info["last_level"] == 5
    free = AbrEnv(pensieve_compatible=True, first_chunk="agent", noise=False, trace_order="sequential",
                  traces=[flat], video=sizes)
    _, info = free.reset()
    assert info["action_mask"].tolist() == [1] * 6
    assert free.step(5)[4]["chunk_bytes"] == 90_005
    with pytest.raises(ValueError, match="initial_level"):
        AbrEnv(first_chunk="initial")
    with pytest.raises(ValueError, match="first_chunk"):
        AbrEnv(first_chunk="maybe")
