"""The appointment kernel matches the pure-Python reference (tests/reference/appointments.py).

200 random small days per problem (random counts, durations, slot, buffer, elasticity, noise
up to 100%, alpha, both observations, exact and sampled percentiles), each played with random
actions of which one in five ignores the mask: observations, masks, reward components, episode
metrics (cost, idle, lateness, percentile, best ordering) and the oracle's values (both modes)
at a random state of each day. Then every labelled state of a small day, and the percentile of
given orderings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sysgym.envs.appointments import (
    AppointmentsEnv,
    build_config,
    label_states,
    ordering_percentile,
)
from sysgym.envs.appointments.oracle import oracle_draws
from sysgym.envs.seeding import rng_state
from tests.reference import appointments as ref

DAYS_PER_PROBLEM = 200


def random_kwargs(rng: np.random.Generator, problem: str) -> dict:
    counts = [int(rng.integers(0, 4)), int(rng.integers(0, 4))]
    if sum(counts) == 0:
        counts[int(rng.integers(2))] = 1
    kwargs = {
        "problem": problem, "n_short": counts[0], "n_long": counts[1],
        "short_duration": float(rng.choice([30.0, 20.0, 27.5])),
        "long_duration": float(rng.choice([60.0, 50.0, 71.25])),
        "slot": float(rng.choice([45.0, 40.0, 47.5])),
        "noise": float(rng.choice([0.0, 0.05, 0.3, 1.0])),
        "alpha": float(rng.uniform(0.05, 0.95)),
        "observation": str(rng.choice(["boolean", "numeric"])),
        "percentile": "sample" if rng.random() < 0.25 else "exact",
        "percentile_samples": int(rng.integers(1, 40)),
    }
    if problem != "P1":
        kwargs["buffer"] = float(rng.choice([15.0, 10.0, 0.0]))
    if problem == "P3":
        kwargs["n_breaks"] = int(rng.integers(1, 3))
        kwargs["break_duration"] = float(rng.choice([60.0, 45.0]))
        kwargs["break_elasticity"] = float(rng.choice([15.0, 0.0, 30.0]))
        kwargs["break_model"] = str(rng.choice(["paper", "slot"]))
    return kwargs


def reference_state(episode: ref.Episode) -> ref.State:
    return episode.state.copy()


@pytest.mark.parametrize("problem", ["P1", "P2", "P3"])
def test_random_days_match_the_reference(problem):
    rng = np.random.default_rng({"P1": 1, "P2": 2, "P3": 3}[problem])
    invalid_seen = 0
    for day in range(DAYS_PER_PROBLEM):
        kwargs = random_kwargs(rng, problem)
        cfg = build_config(**kwargs)
        env = AppointmentsEnv(**kwargs)
        seed = int(rng.integers(0, 2**31))
        obs, info = env.reset(seed=seed)
        episode = ref.Episode(cfg, rng_state(seed))
        probe_at = int(rng.integers(0, cfg.num_items))
        while True:
            np.testing.assert_array_equal(obs, episode.obs())
            assert obs.dtype == episode.obs().dtype
            assert info["action_mask"].tolist() == episode.mask()
            if episode.state.k == probe_at and day % 2 == 0:
                draws = oracle_draws(cfg, draws=2, seed=day)
                for mode in ("best", "average"):
                    expected = ref.oracle_values(reference_state(episode), draws, average=mode == "average")
                    got = env.oracle_values(draws=2, oracle=mode, seed=day)
                    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=mode)
            if rng.random() < 0.2:
                action = int(rng.integers(cfg.num_types))
            else:
                action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(action)
            comps, done = episode.step(action)
            assert info["reward_components"].tolist() == comps
            assert info["invalid_action"] == (comps[2] < 0)
            invalid_seen += comps[2] < 0
            assert terminated == done and not truncated
            if done:
                break
        np.testing.assert_array_equal(obs, episode.obs())
        expected = episode.metrics()
        got = info["episode_metrics"]
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        assert got["cost"] == expected["cost"]
        schedule = env.schedule()
        assert schedule["start"].tolist() == episode.state.starts
        assert schedule["finish"].tolist() == episode.state.finishes
    assert invalid_seen > 20


@pytest.mark.parametrize("break_model", ["paper", "slot"])
def test_every_labelled_state_matches_the_reference(break_model):
    kwargs = {"n_short": 2, "n_long": 2, "n_breaks": 2 if break_model == "paper" else 1, "noise": 0.2,
              "alpha": 0.3, "slot": 47.5, "break_model": break_model}
    cfg = build_config(problem="P3", **kwargs)
    spec = ref.Spec.of(cfg)
    draws = oracle_draws(cfg, draws=2, seed=5)
    for mode in ("best", "average"):
        labels = label_states("P3", draws=2, oracle=mode, seed=5, **kwargs)
        prefixes = [tuple(int(t) for t in row if t >= 0) for row in labels.prefix]
        assert len(prefixes) == len(set(prefixes))
        assert set(prefixes) == ref.reachable_prefixes(spec)
        for i, prefix in enumerate(prefixes):
            state = ref.State(spec, [[1.0] * 2, [1.0] * 2])
            assert not state.over()
            for t in prefix:
                state.place(t, factor=1.0)
            assert labels.features[i].astype(int).tolist() == state.features(), prefix
            np.testing.assert_array_equal(labels.numeric[i], np.array(state.numeric(), dtype=np.float32))
            expected = ref.oracle_values(state, draws, average=mode == "average")
            np.testing.assert_allclose(labels.values[i], expected, rtol=1e-12)
            best = min(range(len(expected)), key=lambda a: (expected[a] > min(expected) + 1e-9, a))
            assert labels.best_action[i] == best
            assert labels.mask[i].tolist() == [math.isfinite(v) for v in expected]


@pytest.mark.parametrize("break_model", ["paper", "slot"])
def test_percentile_of_given_orderings_matches_the_reference(break_model):
    rng = np.random.default_rng(11)
    cfg = build_config(problem="P3", n_short=3, n_long=2, n_breaks=2, noise=0.5, break_model=break_model)
    spec = ref.Spec.of(cfg)
    orderings = list(ref.orderings(cfg.counts, spec.optional))
    assert len(orderings) == cfg.orderings == len(set(orderings))
    for _ in range(20):
        factors = 1.0 + cfg.noise * (2.0 * rng.random((2, cfg.factor_columns)) - 1.0)
        seq = orderings[int(rng.integers(len(orderings)))]
        got = ordering_percentile(cfg, seq, factors)
        cost = ref.run(ref.State(spec, factors.tolist()), seq).cost()
        expected = ref.percentile(spec, factors.tolist(), cost)
        assert got["cost"] == cost
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-12), key
