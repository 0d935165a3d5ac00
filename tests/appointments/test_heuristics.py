"""Appointment baselines: found by ID, valid, single == batched, and doing what their docs say."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.heuristics import heuristics_for
from sysgym.agents.heuristics.appointments import HEURISTICS, Alternate, P2Rule, P3Rule, RandomOrder
from sysgym.envs.appointments import AppointmentsEnv

S, L, B = 0, 1, 2


def test_registry_finds_the_family_heuristics():
    assert set(heuristics_for("sysgym/Appointments-P3-v0")) == set(HEURISTICS) == {
        "random", "alternate", "p1_tree", "p1_rule", "p2_rule", "p3_rule", "oracle", "p1_paper_tree",
        "p1_paper_rule", "p1_paper_rule_any", "p2_paper_rule", "p2_paper_tree", "p3_paper_tree"}
    for problem in ("P1", "P2", "P3"):
        assert any("paper" in name for name in heuristics_for(f"sysgym/Appointments-{problem}-v0"))


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_single_and_batched_agree_and_stay_valid(name):
    vec = gym.make_vec("sysgym/Appointments-P3-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       autoreset_mode="Disabled")
    batched = HEURISTICS[name](vec, seed=0)
    obs, infos = vec.reset(seed=20)
    chosen, done = [], np.zeros(3, dtype=bool)
    while not done.all():                 # 12 tasks and up to 2 breaks: 12 to 14 steps
        actions = batched.act(obs, infos)
        assert np.all(infos["action_mask"][np.arange(3), actions] == 1)
        chosen.append(np.where(done, -1, actions))
        obs, _, terminated, _, infos = vec.step(actions)
        assert not (infos["invalid_action"] & ~done).any()
        done |= terminated
    assert 12 <= len(chosen) <= 14
    if name == "random":
        return
    for i in range(3):
        env = gym.make("sysgym/Appointments-P3-v0")
        single = HEURISTICS[name](env, seed=0)
        obs, info = env.reset(seed=20 + i)
        for step in range(len(chosen)):
            if chosen[step][i] < 0:
                break
            action = single.act(obs, info)
            assert isinstance(action, int) and action == chosen[step][i]
            obs, _, terminated, _, info = env.step(action)
        assert terminated


def test_alternate_alternates():
    env = AppointmentsEnv(n_short=3, n_long=4)
    policy = Alternate(env)
    obs, info = env.reset(seed=0)
    for _ in range(7):
        obs, _, _, _, info = env.step(policy.act(obs, info))
    assert env.schedule()["type"].tolist() == [S, L, S, L, S, L, L]


def test_p2_rule_follows_its_words():
    env = AppointmentsEnv(problem="P2", n_short=8, n_long=4)
    policy = P2Rule(env)
    obs, info = env.reset(seed=0)
    for _ in range(12):
        obs, _, _, _, info = env.step(policy.act(obs, info))
    # A long after two shorts, otherwise a short; item 10 (more than 75% of 12 placed) is long
    # although a short would follow "short, long"; item 11 is short as no long is left.
    assert env.schedule()["type"].tolist() == [S, S, L, S, S, L, S, S, L, S, L, S]


def test_p3_rule_takes_a_break_when_significantly_delayed():
    env = AppointmentsEnv(problem="P3", noise=0.0)
    policy = P3Rule(env)
    env.reset(seed=0)
    for a in (L, L):                       # 30 min late: a short next would still leave the next late
        obs, _, _, _, info = env.step(a)
    assert env.boolean_features()[env.feature_names.index("significantly_delayed")] == 1
    assert policy.act(obs, info) == B


def test_random_order_draws_types_in_proportion_to_what_is_left():
    vec = gym.make_vec("sysgym/Appointments-v0", num_envs=4000, vectorization_mode="vector_entry_point",
                       n_short=2, n_long=6)
    obs, infos = vec.reset(seed=0)
    first = RandomOrder(vec, seed=1).act(obs, infos)
    assert abs(np.mean(first == S) - 0.25) < 0.03
    uniform = RandomOrder(vec, seed=1, by_type=True).act(obs, infos)
    assert abs(np.mean(uniform == S) - 0.5) < 0.03


def schedule_of(name, **kwargs):
    env = AppointmentsEnv(noise=0.0, **kwargs)
    policy = HEURISTICS[name](env)
    obs, info = env.reset(seed=0)
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(policy.act(obs, info))
    return env.schedule()["type"].tolist()


def test_p1_paper_tree_keeps_long_tasks_for_the_second_half():
    # On time: long (60 in a 45 slot: 15 late); delayed in the first half: short (back on time).
    # From item 7 (7 of 12 > half) a delayed day keeps taking longs; the shorts end the day.
    assert schedule_of("p1_paper_tree") == [L, S, L, S, L, S, L, L, L, S, S, S]


def test_p1_paper_rule_as_printed_needs_a_delay_late_in_a_day_still_half_empty():
    # (delayed and less time spent than left) and (delayed and more than 75% scheduled): in a
    # noise-free 6 + 6 day the delay grows to 270 min with longs first, and 75% is reached only
    # once the longs are used up: every long first.
    assert schedule_of("p1_paper_rule") == [L] * 6 + [S] * 6


def test_p2_paper_rule_and_tree():
    # "If the previous two tasks were short, then choose a long job. Otherwise, a short job."
    assert schedule_of("p2_paper_rule", problem="P2", n_short=8, n_long=4) == [S, S, L] * 4
    # The tree also defaults to long once more than 75% are scheduled (item 10 of 12).
    assert schedule_of("p2_paper_tree", problem="P2", n_short=8, n_long=4) == [S, S, L, S, S, L, S, S, L, S, L, S]


def test_p3_paper_tree_takes_a_break_when_significantly_delayed_and_alternates_pairs():
    got = schedule_of("p3_paper_tree", problem="P3")
    # L (15 late), L (no pair yet: 30 late), significantly delayed -> break (ends 15 late);
    # the break is as long as a long task and the job before it was not a break: a pair is
    # complete, so a short follows.
    assert got[:4] == [L, L, B, S]
    assert got.count(B) <= 2 and got.count(S) == 6 and got.count(L) == 6
