"""C_alpha, rewards, features and percentiles on tiny days worked out by hand (noise 0)."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.appointments import AppointmentsEnv, ordering_percentile

S, L, B = 0, 1, 2


def play(order, **kwargs):
    env = AppointmentsEnv(noise=0.0, **kwargs)
    env.reset(seed=0)
    rewards, comps = [], []
    for a in order:
        _, reward, terminated, _, info = env.step(a)
        rewards.append(reward)
        comps.append(info["reward_components"])
    assert terminated
    return info["episode_metrics"], rewards, np.array(comps), env


def test_p1_long_short_short_long():
    # L: 0-60. S booked 45, starts 60 (client 15 late), ends 90. S booked 90 starts 90, ends 120.
    # L booked 135, server idle 120-135, ends 195. Idle 15 over 4 slots, max lateness 15.
    metrics, rewards, comps, env = play([L, S, S, L], n_short=2, n_long=2)
    assert metrics["total_idle"] == 15.0 and metrics["mean_idle"] == 3.75
    assert metrics["max_lateness"] == 15.0 and metrics["makespan"] == 195.0
    assert metrics["cost"] == 0.5 * 3.75 + 0.5 * 15.0 == 9.375
    assert comps[:, 1].tolist() == [0.0, -7.5, 0.0, 0.0]        # lateness pays when the max grows
    assert comps[:, 0].tolist() == [0.0, 0.0, 0.0, -0.5 * 15.0 / 4]
    assert sum(rewards) == -9.375
    assert env.schedule()["start"].tolist() == [0.0, 60.0, 90.0, 135.0]


def test_p1_percentile_among_the_six_orderings():
    # SSLL 11.25, SLSL 9.375, SLLS 16.875, LSSL 9.375, LSLS 7.5, LLSS 15 (worked out by hand).
    costs = {"SSLL": 11.25, "SLSL": 9.375, "SLLS": 16.875, "LSSL": 9.375, "LSLS": 7.5, "LLSS": 15.0}
    kwargs = {"n_short": 2, "n_long": 2, "noise": 0.0}
    for name, cost in costs.items():
        order = [S if c == "S" else L for c in name]
        worse = sum(c > cost for c in costs.values())
        ties = sum(c == cost for c in costs.values())
        got = ordering_percentile(kwargs, order)
        assert got["cost"] == cost
        assert got["percentile_efficacy"] == pytest.approx(100.0 * (worse + 0.5 * ties) / 6)
        assert got["best_cost"] == 7.5 and got["orderings"] == 6
    metrics, _, _, _ = play([L, S, S, L], **{k: v for k, v in kwargs.items() if k != "noise"})
    assert metrics["percentile_efficacy"] == pytest.approx(100.0 * (3 + 1) / 6)


def test_alpha_weights_idle_against_lateness():
    metrics, _, _, _ = play([L, S, S, L], n_short=2, n_long=2, alpha=0.25)
    assert metrics["cost"] == pytest.approx(0.25 * 3.75 + 0.75 * 15.0)


def test_p2_buffer_on_a_type_change():
    # S: 0-30; buffer 30-45; L booked 45 starts 45: no idle, no lateness.
    metrics, _, _, _ = play([S, L], problem="P2", n_short=1, n_long=1)
    assert metrics["cost"] == 0.0 and metrics["makespan"] == 105.0
    # L: 0-60; buffer to 75; S booked 45 waits 30.
    metrics, _, _, _ = play([L, S], problem="P2", n_short=1, n_long=1)
    assert metrics["max_lateness"] == 30.0 and metrics["cost"] == 15.0 and metrics["total_idle"] == 0.0
    # Same type: no buffer. S 0-30, S booked 45: idle 15.
    metrics, _, _, _ = play([S, S], problem="P2", n_short=2, n_long=0)
    assert metrics["total_idle"] == 15.0


def test_p3_break_elasticity_absorbs_overrun():
    # L 0-60; break booked 45 starts 60 (15 late) and shrinks to 45 min: 60-105; L booked 90
    # (no buffer across a break) waits 15. The break's own wait is not a client's lateness.
    metrics, _, _, env = play([L, B, L], problem="P3", n_short=0, n_long=2, n_breaks=1)
    assert env.schedule()["finish"].tolist() == [60.0, 105.0, 165.0]
    assert metrics["max_lateness"] == 15.0 and metrics["cost"] == 7.5
    # Without elasticity the break lasts 60 and the last client waits 30.
    metrics, _, _, _ = play([L, B, L], problem="P3", n_short=0, n_long=2, n_breaks=1, break_elasticity=0.0)
    assert metrics["max_lateness"] == 30.0
    # Break first: 0-60, L booked 45 waits 15, ends 120; L booked 90 waits 30.
    metrics, _, _, _ = play([B, L, L], problem="P3", n_short=0, n_long=2, n_breaks=1)
    assert metrics["max_lateness"] == 30.0 and metrics["total_idle"] == 0.0


def test_features_by_hand():
    env = AppointmentsEnv(noise=0.0, n_short=3, n_long=3)
    names = env.feature_names
    obs, _ = env.reset(seed=0)
    on = {n for n, v in zip(names, obs) if v}
    assert on == {"spent_lt_left", "short_left", "long_left"}
    obs, *_ = env.step(L)                # end 60, next booked 45: delayed 15
    on = {n for n, v in zip(names, obs) if v}
    # A short next ends at 90 = the following booking: not significantly delayed.
    assert on == {"delayed", "spent_lt_left", "prev_long", "short_left", "long_left", "more_short_left"}
    obs, *_ = env.step(L)                # end 120, booked 90: 30 late; a short would end 150 > 135
    on = {n for n, v in zip(names, obs) if v}
    assert {"delayed", "significantly_delayed", "progress_gt_25", "prev_long", "prev2_long",
            "prev_equal"} <= on and "spent_lt_left" in on            # 120 < (6 - 2) * 45
    obs, *_ = env.step(S)                # end 150, booked 135
    on = {n for n, v in zip(names, obs) if v}
    assert {"progress_gt_25", "prev_short", "prev2_long", "prev_shorter", "delayed"} <= on
    assert "progress_gt_50" not in on and "spent_lt_left" not in on   # 3 of 6 is not more than half; 150 >= 135
