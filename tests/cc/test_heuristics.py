"""The CC baselines: their rules on hand-made statistics, their actions in every env form."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.evaluation import evaluate
from sysgym.agents.heuristics import heuristics_for
from sysgym.agents.heuristics.cc import AIMD, HEURISTICS, DelayBased, FixedRate, Oracle
from sysgym.envs.cc import CCEnv, parallel_env


def stats(rate, latency, min_rtt, loss):
    return {"sending_rate": np.asarray(rate, float), "latency": np.asarray(latency, float),
            "min_rtt": np.asarray(min_rtt, float), "loss_rate": np.asarray(loss, float)}


def test_registry_finds_the_family():
    assert heuristics_for("sysgym/CC-v0") == HEURISTICS == heuristics_for("sysgym/CC-Discrete-v0")
    assert set(HEURISTICS) == {"fixed", "aimd", "delay", "oracle"}


def test_aimd_rule():
    aimd = AIMD(CCEnv(), increase=5.0, decrease=0.5, loss_threshold=0.1, latency_threshold=1.5)
    s = stats([100, 100, 100, 100], [0.1, 0.16, 0.1, 0.1], [0.1, 0.1, 0.1, 0.0], [0.0, 0.0, 0.2, 0.0])
    # calm -> +5; latency 1.6 x min RTT -> halve; 20% loss -> halve; no RTT sample yet -> +5
    np.testing.assert_allclose(aimd.target_rate(s), [105, 50, 50, 105])


def test_delay_rule_keeps_between_alpha_and_beta_packets_queued():
    vegas = DelayBased(CCEnv(delta_scale=0.1), alpha=2.0, beta=4.0)
    # queued = rate x (latency - min RTT): 100 x 0.01 = 1 -> up; 3 -> hold; 10 -> down
    s = stats([100, 100, 100], [0.11, 0.13, 0.2], [0.1, 0.1, 0.1], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(vegas.target_rate(s), [110, 100, 100 / 1.1])


def test_actions_invert_the_rate_rule():
    env = CCEnv(delta_scale=0.05)
    h = FixedRate(env)
    rate = np.array([100.0, 100.0, 100.0, 100.0])
    actions = h.actions(rate, np.array([102.5, 100 / 1.025, 200.0, 10.0]))
    np.testing.assert_allclose(actions[:, 0], [0.5, -0.5, 1.0, -1.0], atol=1e-6)
    discrete = FixedRate(CCEnv(action="discrete"))
    targets = np.array([74.0, 96.0, 99.5, 100.0, 101.0, 104.0, 200.0])
    np.testing.assert_array_equal(discrete.actions(np.full(7, 100.0), targets), [0, 1, 2, 2, 2, 3, 4])
    # AIMD's +2 packets/s must still speed up with {-25%, -5%, 0, +5%, +25%}
    aimd = AIMD(CCEnv(action="discrete"))
    np.testing.assert_array_equal(aimd.actions(np.full(7, 100.0), targets), [0, 1, 1, 2, 3, 3, 4])


@pytest.mark.parametrize("env_id", ["sysgym/CC-v0", "sysgym/CC-Discrete-v0"])
@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_every_heuristic_drives_every_env_form(env_id, name):
    single = gym.make(env_id, max_steps=20)
    result = evaluate(lambda e: HEURISTICS[name](e), single, episodes=2, seed=0)
    assert len(result.returns) == 2 and all(np.isfinite(result.returns))
    vec = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", max_steps=20)
    policy = HEURISTICS[name](vec)
    obs, info = vec.reset(seed=0)
    for _ in range(5):
        action = policy.act(obs, info)
        assert vec.action_space.contains(np.asarray(action, dtype=vec.action_space.dtype))
        obs, _, _, _, info = vec.step(action)
    multi = parallel_env(n_flows=2, action="discrete" if "Discrete" in env_id else "continuous", max_steps=20)
    policy = HEURISTICS[name](multi)
    obs, infos = multi.reset(seed=0)
    while multi.agents:
        actions = policy.act(obs, infos)
        assert set(actions) == set(multi.agents)
        for agent, a in actions.items():
            assert multi.action_space(agent).contains(np.asarray(a, dtype=multi.action_space(agent).dtype))
        obs, _, _, _, infos = multi.step(actions)


def test_fixed_keeps_its_rate():
    env = CCEnv(max_steps=30)
    _, info = env.reset(seed=3)
    start = info["sending_rate"]
    fixed = FixedRate(env)
    obs = None
    for _ in range(30):
        obs, _, _, _, info = env.step(fixed.act(obs, info))
        assert info["sending_rate"] == pytest.approx(start)


def test_oracle_reaches_the_bandwidth_share():
    for n_flows, env in ((1, CCEnv(bandwidth=250.0, start_rate=0.3, max_steps=100)),
                         (2, parallel_env(n_flows=2, bandwidth=250.0, start_rate=0.3, max_steps=100))):
        oracle = Oracle(env, drain=False)
        obs, info = env.reset(seed=0)
        for _ in range(100):
            obs, _, _, _, info = env.step(oracle.act(obs, info))
        rates = [info["sending_rate"]] if n_flows == 1 else [info[a]["sending_rate"] for a in info]
        np.testing.assert_allclose(rates, 250.0 / n_flows, rtol=1e-9)


def test_draining_oracle_removes_the_standing_queue():
    # start at 1.5 x bandwidth into a deep buffer: sending at the bandwidth afterwards would keep
    # the queue built meanwhile; draining it brings the latency back to the base RTT
    latency = {}
    for drain in (False, True):
        env = CCEnv(bandwidth=200.0, delay=0.02, queue=2000, loss=0.0, start_rate=1.5, max_steps=300)
        oracle = Oracle(env, drain=drain)
        obs, info = env.reset(seed=0)
        for _ in range(300):
            obs, _, _, _, info = env.step(oracle.act(obs, info))
        latency[drain] = info["latency"]
    base = 2 * 0.02 + 1 / 200.0
    assert latency[True] == pytest.approx(base, abs=0.01)
    assert latency[False] > base + 0.1


def test_oracle_beats_the_other_baselines_on_test_links():
    returns = {}
    for name in ("fixed", "aimd", "delay", "oracle"):
        env = gym.make("sysgym/CC-v0", link_set="test", max_steps=200)
        returns[name] = np.mean(evaluate(lambda e, n=name: HEURISTICS[n](e), env, episodes=6, seed=0).returns)
    assert returns["oracle"] > max(returns["fixed"], returns["aimd"], returns["delay"])
    assert min(returns["aimd"], returns["delay"]) > returns["fixed"]


def test_heuristics_use_the_whole_action_range_in_aurora_mode():
    """AIMD halving its rate needs a delta of -1 / delta_scale = -40 in Aurora mode (0.025 per unit);
    a [-1, 1] clip would limit it to 2.5% per monitor interval."""
    env = gym.make("sysgym/CC-v0", aurora_compatible=True)
    policy = AIMD(env)
    action = policy.actions(np.array([100.0]), np.array([50.0]))
    assert action.shape == (1, 1) and action[0, 0] == pytest.approx(-1.0 / 0.025)
    default = AIMD(gym.make("sysgym/CC-v0"))
    assert default.actions(np.array([100.0]), np.array([50.0]))[0, 0] == -1.0
