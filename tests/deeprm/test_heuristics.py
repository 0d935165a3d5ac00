"""DeepRM heuristics: legal, work conserving, each picks by its own rule; SJF beats random."""

from __future__ import annotations

import gymnasium as gym
import pytest

import sysgym  # noqa: F401
from sysgym.agents.evaluation import evaluate
from sysgym.agents.heuristics import heuristics_for
from sysgym.agents.heuristics.deeprm import HEURISTICS, RandomScheduler, ShortestJobFirst

ENV = "sysgym/DeepRM-Compact-v0"


def test_family_lookup_finds_all_five():
    assert set(heuristics_for(ENV)) == {"random", "sjf", "packer", "tetris", "fcfs"}
    assert heuristics_for("sysgym/DeepRM-Image-v0") == HEURISTICS


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_choices_are_legal_and_follow_the_rule(name):
    env = gym.make(ENV, scenario=4)
    policy = HEURISTICS[name](env, seed=0)
    _, info = env.reset(seed=0)
    batched = env.unwrapped.batched
    for _ in range(1500):
        jobs = batched.window_jobs()
        fits = jobs["fits"][0]
        action = policy.act(None, info)
        assert isinstance(action, int) and info["action_mask"][action] == 1
        if name == "fcfs":
            assert action == (0 if fits[0] else batched.void_action)
        else:
            assert (action == batched.void_action) == (not fits.any())   # work conserving
        if name == "sjf" and fits.any():
            assert jobs["length"][0, action] == jobs["length"][0][fits].min()
        if name == "packer" and fits.any():
            free = batched.free_resources()[0, :, 0]
            align = jobs["size"][0] @ free
            assert align[action] == align[fits].max()
        _, _, term, trunc, info = env.step(action)
        if term or trunc:
            _, info = env.reset()


def test_vector_actions_equal_single_env_actions():
    n = 4
    vec = gym.make_vec(ENV, num_envs=n, vectorization_mode="vector_entry_point", scenario=3,
                       autoreset_mode="SameStep")
    singles = [gym.make(ENV, scenario=3) for _ in range(n)]
    vec.reset(seed=10)
    for i, env in enumerate(singles):
        env.reset(seed=10 + i)
    vec_policy = ShortestJobFirst(vec)
    single_policies = [ShortestJobFirst(env) for env in singles]
    for _ in range(300):
        actions = vec_policy.act(None, {})
        assert actions.shape == (n,)
        for i, env in enumerate(singles):
            assert actions[i] == single_policies[i].act(None, {})
            _, _, term, trunc, _ = env.step(int(actions[i]))
            if term or trunc:
                env.reset()
        vec.step(actions)


def test_random_with_void_sometimes_waits():
    env = gym.make(ENV)
    policy = RandomScheduler(env, seed=1, include_void=True)
    _, info = env.reset(seed=1)
    waited_with_choice = 0
    for _ in range(500):
        action = policy.act(None, info)
        waited_with_choice += action == 10 and info["action_mask"][:10].any()
        _, _, term, trunc, info = env.step(action)
        if term or trunc:
            _, info = env.reset()
    assert waited_with_choice > 0


def test_heuristic_refuses_a_foreign_env():
    with pytest.raises(TypeError, match="DeepRM"):
        ShortestJobFirst(gym.make("CartPole-v1"))


def test_sjf_has_lower_mean_slowdown_than_random_on_scenario_3():
    env = gym.make(ENV, scenario=3)
    sjf = evaluate(lambda e: ShortestJobFirst(e), env, episodes=100, seed=1000).mean()
    rnd = evaluate(lambda e: RandomScheduler(e, seed=0), env, episodes=100, seed=1000).mean()
    assert sjf["mean_slowdown"] < rnd["mean_slowdown"]
    assert sjf["jobs_left"] == rnd["jobs_left"] == 0
