"""The PettingZoo multi-flow env: API conformance, spaces, equivalence with CC-v0, metrics."""

from __future__ import annotations

import pickle
import types
import warnings

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
)

import sysgym  # noqa: F401
from sysgym.envs.cc import aec_env, parallel_env


@pytest.mark.parametrize("action", ["continuous", "discrete"])
def test_parallel_api_and_seed_tests_pass(action):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(parallel_env(n_flows=3, action=action, max_steps=60), num_cycles=200)
    parallel_seed_test(lambda: parallel_env(n_flows=3, action=action, max_steps=60))


def test_aec_form_passes_the_api_test():
    api_test(aec_env(n_flows=2, max_steps=30), num_cycles=100)


def test_pettingzoo_max_cycles_and_render_tests_pass(capsys):
    """PettingZoo's own max_cycles_test (it passes ``max_cycles`` to ``parallel_env`` and to the
    AEC ``env``) and render_test (``render_mode="human"`` first, then every declared mode)."""
    max_cycles_test(types.SimpleNamespace(parallel_env=parallel_env, env=aec_env))
    render_test(lambda render_mode=None: aec_env(n_flows=3, render_mode=render_mode, max_steps=20))
    assert "flow 2:" in capsys.readouterr().out  # the human frames went to stdout


def test_max_cycles_truncates_every_agent_without_episode_metrics():
    env = parallel_env(n_flows=2, max_cycles=3, max_steps=10)
    for _ in range(2):  # the count restarts at reset
        env.reset(seed=0)
        for cycle in range(3):
            _, _, terms, truncs, infos = env.step({a: np.zeros(1) for a in env.agents})
            assert all(truncs.values()) == (cycle == 2) and not any(terms.values())
        assert env.agents == [] and "episode_metrics" not in infos["flow_0"]
    env = parallel_env(n_flows=2, max_cycles=3, max_steps=3)  # both at once: the episode's own end
    env.reset(seed=0)
    for _ in range(3):
        *_, infos = env.step({a: np.zeros(1) for a in env.agents})
    assert "episode_metrics" in infos["flow_0"]


def test_human_render_prints_the_text_frame(capsys):
    env = parallel_env(n_flows=2, render_mode="human")
    env.reset(seed=0)
    env.step({a: np.zeros(1) for a in env.agents})
    assert env.render() is None
    out = capsys.readouterr().out
    assert "flow 0:" in out and "flow 1:" in out and "link 0:" in out
    with pytest.raises(ValueError, match="render_mode"):
        parallel_env(render_mode="video")


def test_feature_names_match_each_agents_observation():
    env = parallel_env(n_flows=2, history=2, features=("loss_rate", "send_ratio"))
    assert env.feature_names == ("loss_rate[t-2]", "send_ratio[t-2]", "loss_rate[t-1]", "send_ratio[t-1]")
    assert len(env.feature_names) == env.observation_space("flow_1").shape[0]


@pytest.mark.parametrize("env_id, action", [("sysgym/CC-v0", "continuous"), ("sysgym/CC-Discrete-v0", "discrete")])
def test_agents_have_the_single_flow_spaces(env_id, action):
    single = gym.make(env_id)
    env = parallel_env(n_flows=4, action=action)
    assert env.possible_agents == ["flow_0", "flow_1", "flow_2", "flow_3"]
    for agent in env.possible_agents:
        assert env.observation_space(agent) == single.observation_space
        assert env.action_space(agent) == single.action_space
    assert env.observation_space("flow_0") is not env.observation_space("flow_1")  # seeded apart


def test_one_flow_replays_cc_v0_exactly():
    single = gym.make("sysgym/CC-v0", loss=(0.0, 0.05))
    multi = parallel_env(n_flows=1, loss=(0.0, 0.05))
    obs_s, info_s = single.reset(seed=12)
    obs_m, info_m = multi.reset(seed=12)
    np.testing.assert_array_equal(obs_s, obs_m["flow_0"])
    rng = np.random.default_rng(0)
    for _ in range(400):
        a = rng.uniform(-1, 1, 1).astype(np.float32)
        obs_s, r_s, _, trunc_s, info_s = single.step(a)
        obs_m, r_m, _, trunc_m, info_m = multi.step({"flow_0": a})
        np.testing.assert_array_equal(obs_s, obs_m["flow_0"])
        assert r_s == r_m["flow_0"] and trunc_s == trunc_m["flow_0"]
    assert trunc_s and not multi.agents
    metrics = info_m["flow_0"]["episode_metrics"]
    assert metrics["flow_throughput"] == info_s["episode_metrics"]["throughput"]
    assert metrics["jain_index"] == 1.0


def test_episode_metrics_per_flow_and_shared():
    env = parallel_env(n_flows=2, bandwidth=200.0, delay=0.02, queue=50, loss=0.0, max_steps=100)
    env.reset(seed=3)
    while env.agents:
        _, _, _, _, infos = env.step({a: np.zeros(1) for a in env.agents})
    m0, m1 = (infos[a]["episode_metrics"] for a in ("flow_0", "flow_1"))
    shared = ("total_throughput", "latency", "loss_rate", "utilisation", "queueing_delay", "jain_index",
              "duration", "window_limited")
    for name in shared:
        assert m0[name] == m1[name]
    x = np.array([m0["flow_throughput"], m1["flow_throughput"]])
    assert m0["total_throughput"] == pytest.approx(x.sum())
    assert m0["jain_index"] == pytest.approx(x.sum() ** 2 / (2 * (x ** 2).sum()))
    assert m0["utilisation"] == pytest.approx(x.sum() / 200.0)
    assert 0 <= m0["queueing_delay"] <= m0["latency"]


def test_flows_compete_for_one_bottleneck():
    env = parallel_env(n_flows=4, bandwidth=200.0, delay=0.02, queue=40, loss=0.0, start_rate=1.0,
                       max_steps=100)
    env.reset(seed=0)
    while env.agents:
        _, _, _, _, infos = env.step({a: np.zeros(1) for a in env.agents})
    # four flows at 200 packets/s each into one 200 packets/s link: 3 in 4 packets dropped
    metrics = infos["flow_0"]["episode_metrics"]
    assert metrics["loss_rate"] == pytest.approx(0.75, abs=0.03)
    assert metrics["total_throughput"] == pytest.approx(200.0, rel=0.03)


def test_errors_and_episode_end():
    env = parallel_env(n_flows=2, max_steps=2)
    with pytest.raises(RuntimeError):
        env.step({"flow_0": np.zeros(1), "flow_1": np.zeros(1)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="flow_1"):
        env.step({"flow_0": np.zeros(1)})
    with pytest.raises(ValueError, match="one finite number"):
        env.step({"flow_0": np.zeros(1), "flow_1": np.array([np.nan])})
    with pytest.raises(ValueError, match=r"unknown or finished agents \['flow_9'\]"):
        env.step({"flow_0": np.zeros(1), "flow_1": np.zeros(1), "flow_9": np.zeros(1)})
    with pytest.raises(ValueError, match="must be a dict"):
        env.step([np.zeros(1), np.zeros(1)])
    discrete = parallel_env(n_flows=2, action="discrete")
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match="int in \\[0, 4\\]"):
        discrete.step({"flow_0": 5, "flow_1": 0})
    env.step({"flow_0": np.zeros(1), "flow_1": np.zeros(1)})
    *_, truncs, _ = env.step({"flow_0": np.zeros(1), "flow_1": np.zeros(1)})
    assert all(truncs.values()) and env.agents == []
    with pytest.raises(RuntimeError):
        env.step({})


def test_state_snapshot_and_pickle_continue_identically():
    env = parallel_env(n_flows=3, loss=(0.0, 0.05))
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    actions = [{a: rng.uniform(-1, 1, 1) for a in env.possible_agents} for _ in range(30)]
    for a in actions[:10]:
        env.step(a)
    snapshot = pickle.loads(pickle.dumps(env.get_state()))
    clone = pickle.loads(pickle.dumps(env))
    first = [env.step(a)[1] for a in actions[10:]]
    env.set_state(snapshot)
    assert [env.step(a)[1] for a in actions[10:]] == first
    assert [clone.step(a)[1] for a in actions[10:]] == first


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render(mode):
    env = parallel_env(n_flows=3, render_mode=mode)
    env.reset(seed=0)
    for _ in range(5):
        env.step({a: np.ones(1) for a in env.agents})
    frame = env.render()
    if mode == "ansi":
        assert frame.count("flow ") == 3
    else:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.std() > 0
