"""CrystalBox's sampling baselines: exact when every future trace is the same, clusters from the
state's own measurements."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.crystalbox import DistributionAwareSampler, FutureInputs, NaiveSampler, collect
from sysgym.agents.heuristics.abr import RobustMPC
from sysgym.agents.heuristics.cc import AIMD
from sysgym.envs.bandwidth import BandwidthTrace


def constant(name: str, mbps: float, seconds: float = 200.0) -> BandwidthTrace:
    return BandwidthTrace(name, np.array([0.0, seconds]), np.array([mbps, mbps]))


def vec_env(env_id: str, n: int, **kwargs):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode="Disabled",
                        **kwargs)


@pytest.mark.parametrize("env_id, policy, kwargs", [
    ("sysgym/ABR-v0", RobustMPC, {"traces": [constant(f"c{k}", 1.5) for k in range(4)]}),
    ("sysgym/CC-Discrete-v0", AIMD, {"traces": [constant(f"c{k}", 3.0, 60.0) for k in range(5)], "link_set": "train"}),
])
def test_both_samplers_are_exact_when_every_trace_is_identical(env_id, policy, kwargs):
    """Identical constant traces: whatever trace and offset a sampler draws, the future is the one
    the episode really has, so every estimate equals the forked ground truth (factual and not)."""
    vec = vec_env(env_id, 3, **kwargs)
    inputs = FutureInputs.from_env(vec)
    assert len(inputs) >= 2
    estimators = {"naive": NaiveSampler(inputs, rollouts=3, seed=1),
                  "aware": DistributionAwareSampler(inputs, k=2, rollouts=3, seed=1)}
    samples = collect(policy, vec, states=9, warmup=3, every=3, t_max=4, estimators=estimators, seed=2)
    assert (~samples.factual).any()
    assert np.abs(samples.returns).max() > 0
    for name, estimate in samples.estimates.items():
        np.testing.assert_allclose(estimate, samples.returns, rtol=1e-9, atol=1e-9, err_msg=name)


def test_samplers_really_replace_the_future():
    """With different traces the estimates differ from the truth (the replacement is not a no-op)."""
    traces = [constant("slow", 0.4), constant("fast", 6.0), constant("mid", 2.0)]
    vec = vec_env("sysgym/ABR-v0", 3, traces=traces)
    inputs = FutureInputs.from_env(vec, traces=[0])   # always the slow trace
    samples = collect(RobustMPC, vec, states=6, warmup=3, every=3, t_max=4, seed=0,
                      estimators={"naive": NaiveSampler(inputs, rollouts=1)},
                      reset_options=lambda rng, n: {"trace": np.full(n, 1)})   # episodes play the fast one
    rebuffer = samples.components.index("rebuffer")
    est = samples.estimates["naive"]
    # on the slow future the same actions stall more than on the fast one the episodes play
    assert np.all(est[:, rebuffer] <= samples.returns[:, rebuffer] + 1e-9)
    assert np.any(est[:, rebuffer] < samples.returns[:, rebuffer] - 1e-6)


def test_distribution_aware_maps_measurements_to_the_nearest_cluster():
    traces = [constant("low1", 0.8), constant("low2", 1.0), constant("low3", 1.2),
              constant("high1", 7.5), constant("high2", 8.0), constant("high3", 8.5)]
    vec = vec_env("sysgym/ABR-v0", 1, traces=traces)
    for method in ("kmeans", "gmm"):
        sampler = DistributionAwareSampler(FutureInputs.from_env(vec), k=2, method=method, seed=0)
        history = np.array([[np.nan, 7.9, 8.2, 8.1],      # a fast link
                            [1.1, 0.9, 1.0, np.nan],      # a slow one
                            [np.nan, np.nan, np.nan, 5.0]])   # one measurement: no cluster
        low, high, unknown = sampler.candidates(history, 3)
        assert sorted(sampler.inputs.traces[low].tolist()) == [3, 4, 5]
        assert sorted(sampler.inputs.traces[high].tolist()) == [0, 1, 2]
        assert len(unknown) == 6
        np.testing.assert_array_equal(sampler.cluster_of(history)[2], -1)


def test_future_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="traces="):
        FutureInputs.from_env(vec_env("sysgym/CC-v0", 1))
    with pytest.raises(ValueError, match="ABR or CC"):
        FutureInputs.from_env(vec_env("sysgym/DeepRM-Compact-v0", 1))
    with pytest.raises(ValueError, match="trace indices"):
        FutureInputs.from_env(vec_env("sysgym/ABR-v0", 1), traces=[10_000])
    inputs = FutureInputs.from_env(vec_env("sysgym/ABR-v0", 1))
    with pytest.raises(ValueError, match="method"):
        DistributionAwareSampler(inputs, method="dbscan")
    with pytest.raises(ValueError, match="rollouts"):
        NaiveSampler(inputs, rollouts=0)


def test_naive_sampler_replays_other_swf_job_streams_in_deeprm():
    from sysgym.agents.heuristics.deeprm import ShortestJobFirst
    from sysgym.traces import trace_path

    vec = vec_env("sysgym/DeepRM-Compact-v0", 4, workload=str(trace_path("deeprm", "synthetic_10.swf")))
    inputs = FutureInputs.from_env(vec)
    assert inputs.family == "deeprm" and inputs.whole_offsets
    samples = collect(ShortestJobFirst, vec, states=12, warmup=10, every=5, seed=0,
                      estimators={"naive": NaiveSampler(inputs, rollouts=2, seed=0)})
    estimate = samples.estimates["naive"]
    assert estimate.shape == samples.returns.shape and np.all(np.isfinite(estimate))
    assert not np.allclose(estimate, samples.returns)      # other job streams, other slowdowns
    with pytest.raises(ValueError, match="naive sampler"):
        DistributionAwareSampler(inputs)
