"""The shared evaluation loops accept policy objects, classes and factories alike."""

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.evaluation import evaluate, evaluate_batched
from sysgym.agents.heuristics.deeprm import ShortestJobFirst
from sysgym.envs.bandwidth import BandwidthTrace

ENV = "sysgym/DeepRM-Compact-v0"


def test_class_instance_and_factory_give_the_same_result():
    env = gym.make(ENV)
    by_class = evaluate(ShortestJobFirst, env, episodes=3, seed=5)
    by_instance = evaluate(ShortestJobFirst(env), env, episodes=3, seed=5)
    by_factory = evaluate(lambda e: ShortestJobFirst(e), env, episodes=3, seed=5)
    assert by_class.returns == by_instance.returns == by_factory.returns
    assert len(by_class.metrics) == 3 and "mean_slowdown" in by_class.mean()


def test_batched_evaluation_matches_single_episodes():
    vec = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point")
    batched = evaluate_batched(ShortestJobFirst, vec, seed=7)
    single = [evaluate(ShortestJobFirst, gym.make(ENV), episodes=1, seed=7 + i) for i in range(3)]
    np.testing.assert_allclose(batched.returns, [r.returns[0] for r in single], rtol=1e-12)
    assert [m["mean_slowdown"] for m in batched.metrics] == [r.metrics[0]["mean_slowdown"] for r in single]


def test_trace_with_data_only_on_zero_length_segments_is_refused():
    with pytest.raises(ValueError, match="carries no data"):
        BandwidthTrace("t", np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 5.0, 0.0, 0.0]))
