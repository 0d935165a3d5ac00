"""The oracle, the labels and the percentile metric against the baselines and brute force."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.evaluation import evaluate, evaluate_batched
from sysgym.agents.heuristics.appointments import HEURISTICS, OraclePolicy, RandomOrder
from sysgym.envs.appointments import (
    AppointmentsEnv,
    DayState,
    build_config,
    label_states,
    oracle_values,
)
from tests.reference import appointments as ref


def percentiles(policy_cls, problem, days, seed=5000, **kwargs):
    vec = gym.make_vec(f"sysgym/Appointments-{problem}-v0", num_envs=days,
                       vectorization_mode="vector_entry_point", **kwargs)
    result = evaluate_batched(policy_cls(vec, seed=0), vec, seed=seed)
    vec.close()
    assert len(result.metrics) == days
    return np.array([m["percentile_efficacy"] for m in result.metrics])


def test_noise_free_p1_oracle_ties_the_best_of_all_orderings():
    cfg = build_config(noise=0.0)
    spec = ref.Spec.of(cfg)
    brute = min(ref.run(ref.State(spec, [[1.0] * 6, [1.0] * 6]), seq).cost() for seq in ref.orderings(cfg.counts))
    assert brute == 7.5            # L S L S ... : no idle, every client at most 15 min late
    env = AppointmentsEnv(noise=0.0)
    metrics = evaluate(OraclePolicy(env), env, episodes=1).metrics[0]
    assert metrics["cost"] == brute == metrics["best_cost"]
    assert metrics["percentile_efficacy"] == pytest.approx(100.0 * (923 + 0.5) / 924)
    root = oracle_values(cfg, draws=4)
    assert root.min() == brute
    # Each action's value is the best completion after it, found by brute force.
    for a in range(2):
        state = ref.State(spec, [[1.0] * 6, [1.0] * 6])
        state.place(a)
        rest = (6 - (a == 0), 6 - (a == 1), 0)
        assert root[a] == min(ref.run(state, tail).cost() for tail in ref.orderings(rest))


@pytest.mark.parametrize("problem", ["P1", "P2", "P3"])
def test_oracle_percentile_beats_every_baseline(problem):
    days = 40
    oracle = percentiles(OraclePolicy, problem, days).mean()
    for name, cls in HEURISTICS.items():
        if name != "oracle":
            assert oracle >= percentiles(cls, problem, days).mean(), name
    assert oracle > 95.0


@pytest.mark.parametrize("problem", ["P1", "P2"])
def test_a_random_order_scores_fifty_percent(problem):
    scores = percentiles(RandomOrder, problem, 500)
    assert abs(scores.mean() - 50.0) <= 3.0
    assert scores.min() < 10.0 and scores.max() > 90.0


def test_labels_of_every_p1_state():
    labels = label_states("P1", draws=1, noise=0.0)
    assert len(labels) == 2507                   # prefixes of the 924 orderings, minus complete days
    assert labels.features.shape == (2507, len(labels.feature_names))
    assert np.all(labels.gap[labels.mask] >= 0.0)
    assert np.all(labels.gap[np.arange(len(labels)), labels.best_action] == 0.0)
    # Following the best action from the root replays an optimal day.
    rows = {tuple(int(t) for t in p if t >= 0): i for i, p in enumerate(labels.prefix)}
    prefix = ()
    while len(prefix) < 12:
        prefix += (int(labels.best_action[rows[prefix]]),)
    assert ordering_cost(prefix) == 7.5
    # With one action left the values are the cost of the only completion.
    last = [i for i, p in enumerate(labels.prefix) if (p >= 0).sum() == 11]
    for i in last[:20]:
        seq = tuple(int(t) for t in labels.prefix[i] if t >= 0) + (int(labels.best_action[i]),)
        assert labels.values[i, labels.best_action[i]] == ordering_cost(seq)


def ordering_cost(seq):
    from sysgym.envs.appointments import ordering_percentile
    return ordering_percentile({"noise": 0.0}, seq)["cost"]


def test_p3_labelling_covers_every_reachable_state():
    # 186,691 distinct non-final prefixes of the day's 84,084 schedules (each ordering of the 12
    # tasks with 0, 1 or 2 breaks put before tasks), counted once by enumerating them in Python.
    labels = label_states("P3", draws=1)
    assert len(labels) == 186_691
    assert labels.values.shape == (186_691, 3) and np.isfinite(labels.values[labels.mask]).all()
    assert np.array_equal(labels.mask, np.isfinite(labels.values))


def test_average_oracle_is_the_mean_over_tails():
    cfg = build_config(problem="P2", n_short=3, n_long=2, noise=0.0)
    spec = ref.Spec.of(cfg)
    values = oracle_values(cfg, draws=1, oracle="average")
    for a in range(2):
        state = ref.State(spec, [[1.0] * 3, [1.0] * 3])
        state.place(a)
        rest = (3 - (a == 0), 2 - (a == 1), 0)
        costs = [ref.run(state, tail).cost() for tail in ref.orderings(rest)]
        assert values[a] == pytest.approx(sum(costs) / len(costs), rel=1e-12)


def test_oracle_values_from_an_env_state_and_a_day_state_agree():
    env = AppointmentsEnv(problem="P3")
    env.reset(seed=3)
    for a in (1, 0, 2, 1):
        env.step(a)
    state = env.day_state()
    assert state.step == 4 and state.remaining == (5, 4, 1) and state.prev == 1 and state.prev2 == 2
    np.testing.assert_array_equal(env.oracle_values(draws=8, seed=2), oracle_values(env, draws=8, seed=2))
    np.testing.assert_array_equal(oracle_values(env.config, state, draws=8, seed=2), env.oracle_values(8, seed=2))
    # Common draws: the same seed gives the same values, another seed others.
    assert not np.array_equal(env.oracle_values(draws=8, seed=3), env.oracle_values(draws=8, seed=2))


@pytest.mark.parametrize("bad, word", [
    ({"remaining": (7, 6)}, "remaining"), ({"step": 3}, "step"), ({"end": -1.0}, "end"),
    ({"prev": 2}, "prev"), ({"max_lateness": float("nan")}, "max_lateness"),
])
def test_oracle_refuses_impossible_states(bad, word):
    cfg = build_config()
    fields = {**DayState.start(cfg).__dict__, **bad}
    with pytest.raises(ValueError, match=word):
        oracle_values(cfg, DayState(**fields))


def test_oracle_refuses_bad_arguments_and_huge_days():
    with pytest.raises(ValueError, match="oracle"):
        oracle_values(build_config(), oracle="mean")
    with pytest.raises(ValueError, match="draws"):
        oracle_values(build_config(), draws=0)
    with pytest.raises(ValueError, match="orderings"):
        oracle_values(build_config(n_short=20, n_long=20, percentile="off"))
