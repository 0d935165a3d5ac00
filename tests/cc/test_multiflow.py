"""The PettingZoo multi-flow env: API conformance, spaces, equivalence with CC-v0, metrics."""

from __future__ import annotations

import math
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
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


def test_pettingzoo_max_cycles_and_render_tests_pass_on_the_module_itself(capsys):
    """PettingZoo's own max_cycles_test on the package, as on PettingZoo's environment modules
    (it calls ``mod.parallel_env(max_cycles=...)`` and ``mod.env(max_cycles=...)``; no shim), and
    render_test (``render_mode="human"`` first, then every declared mode)."""
    import sysgym.envs.cc as module

    max_cycles_test(module)
    render_test(lambda render_mode=None: module.env(n_flows=3, render_mode=render_mode, max_steps=20))
    assert "flow 2:" in capsys.readouterr().out  # the human frames went to stdout


def test_module_exposes_pettingzoos_factories_and_a_state_space():
    import sysgym.envs.cc as module

    assert isinstance(module.raw_env(), module.CCAECEnv)
    assert module.aec_env is module.env
    par = module.parallel_env(n_flows=3, max_steps=20)
    par.reset(seed=0)
    assert par.state_space.shape == par.state().shape == (3, par.observation_space("flow_0").shape[0])
    assert par.state_space.contains(par.state())
    with warnings.catch_warnings():
        # state_test's heuristic: a 2-D state with negative entries "might be" an image; it is the
        # flows' stacked observations (rate changes can be negative)
        warnings.filterwarnings("ignore", message="The state contains negative numbers")
        state_test(module.env(n_flows=3, max_steps=20), module.parallel_env(n_flows=3, max_steps=20))
    seed_test(lambda: module.env(n_flows=2, max_steps=30), num_cycles=50)


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


# ---------------------------------------------------------------- refused actions (issue #20, item 8)
NOT_ACTIONS = ["0.5", b"0.5", True, np.True_, np.array([True]), 0.5 + 1j, np.array([0.5 + 1j]), {}, {"x": 1},
               2**70, -2**70, 2**5000, [2**5000], None, object(), [], [0.5, 0.5]]


@pytest.mark.parametrize("bad", NOT_ACTIONS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("action", ["continuous", "discrete"])
def test_what_is_not_a_real_number_is_refused_with_a_value_error(action, bad):
    """Strings, bytes, bools, complex numbers, dicts, huge ints: one-line ValueError naming the
    agent (no parsing of '0.5', no True as 1, no imaginary part dropped), and the env still steps."""
    env = parallel_env(n_flows=2, action=action, max_steps=5)
    env.reset(seed=0)
    good = np.zeros(1) if action == "continuous" else 2
    with pytest.raises(ValueError, match=r"^flow_1: action must be") as err:
        env.step({"flow_0": good, "flow_1": bad})
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    *_, truncs, _ = env.step({"flow_0": good, "flow_1": good})
    assert not any(truncs.values())


def _real_scalar(value, discrete, n=5):
    """The action rule, stated independently of numpy's casts: a real number (not a bool) that
    fits a 64-bit integer or float; for discrete actions an int in [0, n)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return 0 <= int(value) < n if discrete else -2**63 <= int(value) < 2**64
    if isinstance(value, (float, np.floating)):
        return not discrete and math.isfinite(value)
    return False


def _acceptable(value, discrete):
    if isinstance(value, np.ndarray):
        if discrete:
            return value.ndim == 0 and value.dtype.kind in "iu" and 0 <= int(value) < 5
        return value.size == 1 and value.dtype.kind in "iuf" and bool(np.isfinite(value).all())
    if isinstance(value, list):
        return not discrete and len(value) == 1 and _acceptable(value[0], discrete)
    return _real_scalar(value, discrete)


ANY_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(), st.complex_numbers(),
              st.text(max_size=5), st.binary(max_size=5),
              hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex128]),
                         hnp.array_shapes(min_dims=0, max_dims=2, max_side=2))),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=3)


_ENVS = {False: parallel_env(n_flows=2, max_steps=10**6),
         True: parallel_env(n_flows=2, action="discrete", max_steps=10**6)}


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(value=ANY_VALUE, discrete=st.booleans())
def test_any_value_is_an_action_exactly_when_it_is_a_real_number(value, discrete):
    env = _ENVS[discrete]
    if not env.agents:
        env.reset(seed=0)
    good = 2 if discrete else np.zeros(1)
    try:
        env.step({"flow_0": value, "flow_1": good})
    except ValueError as err:
        assert not _acceptable(value, discrete), f"{value!r} refused: {err}"
        assert str(err).startswith("flow_0: action must be")
    else:
        assert _acceptable(value, discrete), f"{value!r} accepted"


def test_aec_refused_action_keeps_the_turn_and_the_next_valid_action_works():
    """A refused action (ValueError) leaves the turn with the same agent; its next valid action
    completes the cycle exactly as the parallel env's step with the valid actions."""
    aec = aec_env(n_flows=2)
    aec.reset(seed=4)
    with pytest.raises(ValueError, match="flow_0: action must be one finite number"):
        aec.step(np.array([np.nan]))
    assert aec.agent_selection == "flow_0"
    aec.step(np.array([0.3]))
    with pytest.raises(ValueError, match="flow_1: action must be one finite number"):
        aec.step("0.5")
    assert aec.agent_selection == "flow_1"
    aec.step(np.array([-0.2]))
    reference = parallel_env(n_flows=2)
    reference.reset(seed=4)
    obs, rewards, *_ = reference.step({"flow_0": np.array([0.3]), "flow_1": np.array([-0.2])})
    assert aec.rewards == rewards
    np.testing.assert_array_equal(aec.observe("flow_1"), obs["flow_1"])


def test_aec_dead_agent_stepped_with_an_action_is_a_value_error():
    """PettingZoo's AEC loop steps a terminated/truncated agent with None; an action for it is a
    clear ValueError (not a bare AssertionError from inside the wrapper), and the env goes on."""
    aec = aec_env(n_flows=2, max_steps=1)
    aec.reset(seed=0)
    aec.step(np.zeros(1))
    aec.step(np.zeros(1))
    assert aec.truncations == {"flow_0": True, "flow_1": True}
    with pytest.raises(ValueError, match="flow_0 is done .* step it with None"):
        aec.step(np.zeros(1))
    aec.step(None)
    aec.step(None)
    assert aec.agents == []
    aec.reset(seed=1)
    aec.step(np.zeros(1))
    assert aec.agent_selection == "flow_1"
