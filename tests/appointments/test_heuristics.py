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
        "random", "alternate", "p1_tree", "p1_rule", "p2_rule", "p3_rule", "oracle"}


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_single_and_batched_agree_and_stay_valid(name):
    vec = gym.make_vec("sysgym/Appointments-P3-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       autoreset_mode="Disabled")
    batched = HEURISTICS[name](vec, seed=0)
    obs, infos = vec.reset(seed=20)
    chosen = []
    for _ in range(14):
        actions = batched.act(obs, infos)
        assert np.all(infos["action_mask"][np.arange(3), actions] == 1)
        chosen.append(actions)
        obs, _, terminated, _, infos = vec.step(actions)
        assert not infos["invalid_action"].any()
    assert terminated.all()
    if name == "random":
        return
    for i in range(3):
        env = gym.make("sysgym/Appointments-P3-v0")
        single = HEURISTICS[name](env, seed=0)
        obs, info = env.reset(seed=20 + i)
        for step in range(14):
            action = single.act(obs, info)
            assert isinstance(action, int) and action == chosen[step][i]
            obs, _, _, _, info = env.step(action)


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
