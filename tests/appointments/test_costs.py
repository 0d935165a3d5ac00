"""C_alpha, rewards, features and percentiles on tiny days worked out by hand (noise 0)."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.appointments import AppointmentsEnv, ordering_percentile, percentile_of_mean

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


def test_p3_break_is_booked_for_its_own_hour_and_absorbs_overrun():
    # Paper model (section 2: "up to two 60-minute breaks", 15 min of "break elasticity").
    # L 0-60; the break, booked 45-105, starts at 60 (15 late) and shrinks to 45 min: 60-105;
    # the second L is booked at 45 + 60 = 105 and starts on time: cost 0.
    metrics, _, _, env = play([L, B, L], problem="P3", n_short=0, n_long=2, n_breaks=1)
    assert env.schedule()["finish"].tolist() == [60.0, 105.0, 165.0]
    assert env.schedule()["booked"].tolist() == [0.0, 45.0, 105.0]
    assert metrics["max_lateness"] == 0.0 and metrics["cost"] == 0.0
    # Without elasticity the break lasts 60 (60-120) and the last client waits 15.
    metrics, _, _, _ = play([L, B, L], problem="P3", n_short=0, n_long=2, n_breaks=1, break_elasticity=0.0)
    assert metrics["max_lateness"] == 15.0 and metrics["cost"] == 7.5
    # The break may stay unused: the day ends with its last task (2 steps), L then L waits 15.
    metrics, rewards, _, _ = play([L, L], problem="P3", n_short=0, n_long=2, n_breaks=1)
    assert len(rewards) == 2 and metrics["max_lateness"] == 15.0 and metrics["cost"] == 7.5
    # Schedules of the day: LL, BLL, LBL (no break after the last task); LBL is the only cost 0.
    got = ordering_percentile({"problem": "P3", "n_short": 0, "n_long": 2, "n_breaks": 1, "noise": 0.0}, [L, B, L])
    assert got["orderings"] == 3 and got["percentile_efficacy"] == pytest.approx(100.0 * 2.5 / 3)


def test_p3_mean_idle_is_per_task():
    # S 0-30; the break booked 45-105: 15 idle before it; S booked 105. n = 2 tasks.
    metrics, _, _, _ = play([S, B, S], problem="P3", n_short=2, n_long=0, n_breaks=1)
    assert metrics["total_idle"] == 15.0 and metrics["mean_idle"] == 7.5 and metrics["cost"] == 3.75


def test_slot_break_model_keeps_the_v0_reading():
    # break_model="slot": every break placed, booked for one slot; mean idle over every item.
    # L 0-60; break booked 45 starts 60 (15 late), shrinks to 45: 60-105; L booked 90 waits 15.
    metrics, _, _, env = play([L, B, L], problem="P3", n_short=0, n_long=2, n_breaks=1, break_model="slot")
    assert env.schedule()["finish"].tolist() == [60.0, 105.0, 165.0]
    assert metrics["max_lateness"] == 15.0 and metrics["cost"] == 7.5
    metrics, _, _, _ = play([B, L, L], problem="P3", n_short=0, n_long=2, n_breaks=1, break_model="slot")
    assert metrics["max_lateness"] == 30.0 and metrics["total_idle"] == 0.0
    metrics, _, _, _ = play([S, B, S], problem="P3", n_short=2, n_long=0, n_breaks=1, break_model="slot")
    assert metrics["total_idle"] == 15.0 and metrics["mean_idle"] == 5.0     # S 0-30, B 45-105, S 105


def test_paper_percentile_ranks_the_mean_cost_in_the_pooled_orderings():
    # Two noise-free 2+2 days (costs of the six orderings in the test above); a strategy costing
    # 7.5 on one and 15 on the other: mean 11.25, beaten by 16.875 and 15 and tied with 11.25 on
    # each day: (2 * 2 + 0.5 * 2) / 12. Per-day mid-ranks would give ((5.5 + 1.5) / 6) / 2.
    kwargs = {"n_short": 2, "n_long": 2, "noise": 0.0}
    got = percentile_of_mean(kwargs, np.ones((2, 2, 2)), np.array([7.5, 15.0]))
    assert got["mean_cost"] == 11.25 and got["orderings"] == 12
    assert got["percentile_efficacy"] == pytest.approx(100.0 * 5.0 / 12)
    with pytest.raises(ValueError, match="factors"):
        percentile_of_mean(kwargs, np.ones((2, 2, 3)), np.array([7.5, 15.0]))


def test_features_by_hand():
    env = AppointmentsEnv(noise=0.0, n_short=3, n_long=3)
    names = env.feature_names
    obs, _ = env.reset(seed=0)
    on = {n for n, v in zip(names, obs) if v}
    assert on == {"less_time_spent_than_left", "short_left", "long_left"}
    obs, *_ = env.step(L)                # end 60, next booked 45: delayed 15
    on = {n for n, v in zip(names, obs) if v}
    # A short next ends at 90 = the following booking: not significantly delayed.
    assert on == {"currently_delayed", "less_time_spent_than_left", "prev_is_long", "short_left", "long_left",
                  "more_short_left"}
    obs, *_ = env.step(L)                # end 120, booked 90: 30 late; a short would end 150 > 135
    on = {n for n, v in zip(names, obs) if v}
    assert {"currently_delayed", "significantly_delayed", "more_than_25pct_scheduled", "prev_is_long",
            "second_prev_is_long", "prev_equal_to_second_prev"} <= on
    assert "less_time_spent_than_left" in on            # 120 < (6 - 2) * 45
    obs, *_ = env.step(S)                # end 150, booked 135
    on = {n for n, v in zip(names, obs) if v}
    assert {"more_than_25pct_scheduled", "prev_is_short", "second_prev_is_long", "prev_shorter_than_second_prev",
            "currently_delayed"} <= on
    # 3 of 6 is not more than half; 150 >= 3 * 45
    assert "more_than_50pct_scheduled" not in on and "less_time_spent_than_left" not in on


def test_p3_features_count_tasks_and_let_a_break_end_a_delay():
    env = AppointmentsEnv(problem="P3", noise=0.0, n_short=2, n_long=2, n_breaks=2)
    names = env.feature_names
    env.reset(seed=0)
    for a in (L, L):                     # end 120, booked 90: 30 late
        obs, *_ = env.step(a)
    on = {n for n, v in zip(names, obs) if v}
    # A short (buffer 15: 135-165 vs 135) and a long leave the next late, and so does a break
    # (booked 90-150, starts 120 and shrinks to 45: ends 165 > 150): significantly delayed.
    assert {"currently_delayed", "significantly_delayed", "more_than_25pct_scheduled", "break_available"} <= on
    obs, *_ = env.step(B)                # 120-165; next booked 150
    on = {n for n, v in zip(names, obs) if v}
    # Progress counts tasks: 2 of 4 is not more than half (3 of 5 items would be).
    assert "more_than_50pct_scheduled" not in on and {"prev_is_break", "second_prev_is_long"} <= on
    assert "significantly_delayed" not in on            # a short next: 165-195 vs 195
