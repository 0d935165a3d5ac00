"""CC-v0 / CC-Discrete-v0 behaviour: the action rules, reward options, observation, monitor
intervals, link draws and link sets, traces and input errors."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.cc import FEATURES, CCEnv, build_config
from sysgym.envs.cc.config import queue_from_uniform

HOLD = np.zeros(1, dtype=np.float32)


def fixed_link(**kw):
    base = dict(bandwidth=300.0, delay=0.02, queue=100, loss=0.0, start_rate=0.5, max_steps=50)
    base.update(kw)
    return base


@pytest.mark.parametrize("action, factor", [(1.0, 1.05), (0.5, 1.025), (-1.0, 1 / 1.05), (-0.375, 1 / 1.01875),
                                            (3.0, 1.05), (-7.0, 1 / 1.05)])
def test_continuous_action_follows_aurora_rule(action, factor):
    env = CCEnv(**fixed_link())
    _, info = env.reset(seed=0)
    rate = info["sending_rate"]
    assert rate == 150.0  # 0.5 x 300 packets/s
    _, _, _, _, info = env.step(np.array([action], dtype=np.float32))
    # rate x (1 + 0.05 a) for a >= 0, rate / (1 - 0.05 a) below; actions clip to [-1, 1]
    assert info["sending_rate"] == pytest.approx(rate * factor, rel=1e-12)


@pytest.mark.parametrize("index, change", list(enumerate((-0.25, -0.05, 0.0, 0.05, 0.25))))
def test_discrete_actions_change_the_rate_by_the_listed_fraction(index, change):
    env = gym.make("sysgym/CC-Discrete-v0", **fixed_link())
    _, info = env.reset(seed=0)
    assert env.action_space.n == 5
    assert info["action_mask"].tolist() == [1, 1, 1, 1, 1]
    _, _, _, _, info = env.step(index)
    assert info["sending_rate"] == pytest.approx(150.0 * (1 + change), rel=1e-12)


def test_rate_is_clamped_to_its_limits():
    env = CCEnv(**fixed_link(min_rate=100.0, max_rate=170.0, max_steps=100))
    env.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = env.step(np.ones(1, dtype=np.float32))
    assert info["sending_rate"] == 170.0
    for _ in range(40):
        _, _, _, _, info = env.step(-np.ones(1, dtype=np.float32))
    assert info["sending_rate"] == 100.0


def test_reward_is_aurora_formula_in_its_units():
    env = CCEnv(**fixed_link(loss=0.05))
    env.reset(seed=2)
    assert env.reward_components == ("throughput", "latency", "loss")
    np.testing.assert_array_equal(env.reward_weights, [10.0, -1000.0, -2000.0])
    losses, throughputs = [], []
    for _ in range(40):
        _, reward, _, _, info = env.step(HOLD)
        thr, lat, loss = info["reward_components"]
        assert (thr, lat, loss) == (info["throughput"], info["latency"], info["loss_rate"])
        assert reward == pytest.approx(10 * thr - 1000 * lat - 2000 * loss, rel=1e-12)
        assert lat >= 0.04
        losses.append(loss)
        throughputs.append(thr)
    assert 0.0 < np.mean(losses) < 0.15
    assert 150.0 * 0.8 < np.mean(throughputs) < 150.0  # sent 150 packets/s, ~5% randomly lost


def test_normalised_throughput_and_reward_scale():
    env = CCEnv(**fixed_link(throughput="normalised", reward_scale=0.001, start_rate=2.0))
    env.reset(seed=0)
    np.testing.assert_allclose(env.reward_weights, [0.5, -1.0, -2.0])
    for _ in range(30):
        _, reward, _, _, info = env.step(HOLD)
    share = info["reward_components"][0]
    # overloaded 2x: the link is busy all the time, so acked / capacity is close to 1
    assert share == pytest.approx(1.0, abs=0.05)
    assert share == pytest.approx(info["throughput"] / 300.0, rel=1e-9)
    assert reward == info["reward_components"] @ env.reward_weights


def test_first_monitor_interval_and_later_ones():
    env = CCEnv(**fixed_link(delay=0.04, first_mi=3.0, mi_rtts=0.5, start_rate=0.5))
    _, info = env.reset(seed=0)
    assert info["mi_duration"] == pytest.approx(3.0 * 2 * 0.04)  # 3 x base RTT
    _, _, _, _, info = env.step(HOLD)
    rtt = 2 * 0.04 + 1 / 300.0  # no queue at half the bandwidth
    assert info["mi_duration"] == pytest.approx(0.5 * rtt, rel=1e-9)
    env = CCEnv(**fixed_link(delay=0.04, mi_limits=(0.1, 0.2)))
    _, info = env.reset(seed=0)
    assert info["mi_duration"] == pytest.approx(0.2)
    _, _, _, _, info = env.step(HOLD)
    assert info["mi_duration"] == pytest.approx(0.1)


def test_observation_layout_history_and_bounds():
    feats = ("latency_gradient", "latency_ratio", "send_ratio", "send_rate", "recv_rate", "loss_rate")
    env = CCEnv(history=4, features=feats, loss=(0.0, 0.05), start_rate=(0.3, 3.0))
    assert env.observation_space.shape == (24,)
    low, high = env.observation_space.low.reshape(4, 6), env.observation_space.high.reshape(4, 6)
    np.testing.assert_array_equal(low[0], [FEATURES[f][0] for f in feats])
    np.testing.assert_array_equal(high[0], [FEATURES[f][1] for f in feats])
    obs, info = env.reset(seed=1)
    rows = obs.reshape(4, 6)
    np.testing.assert_array_equal(rows[:3], [[0, 1, 1, 0, 0, 0]] * 3)  # neutral before any MI
    assert rows[3, 3] == pytest.approx(info["send_rate"] / 1000.0, rel=1e-6)
    assert rows[3, 4] == pytest.approx(info["throughput"] / 1000.0, rel=1e-6)
    rng = np.random.default_rng(0)
    previous = obs
    for _ in range(100):
        obs, _, _, _, info = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs[:18], previous[6:])  # the history shifts by one MI
        assert obs[-1] == np.float32(info["loss_rate"])
        previous = obs


def test_queue_sizes_are_log_uniform_in_range():
    u = np.random.default_rng(0).random(20000)
    q = queue_from_uniform(u, (2, 3000))
    assert q.min() >= 2 and q.max() <= 3000
    # log-uniform: half the mass below the geometric mean of 2 and 3001
    assert np.mean(q < math.sqrt(2 * 3001)) == pytest.approx(0.5, abs=0.02)
    env = CCEnv(max_steps=1)
    drawn = []
    for seed in range(300):
        env.reset(seed=seed)
        drawn.append(int(env.batched._state["queue"][0, 0]))
        bw, d, loss = (env.batched._state[k][0, 0] for k in ("bw", "delay", "loss"))
        assert 100 <= bw <= 500 and 0.05 <= d <= 0.5 and 0 <= loss <= 0.05
    assert np.mean(np.array(drawn) < math.sqrt(2 * 3001)) == pytest.approx(0.5, abs=0.1)


def test_link_sets_are_seeded_and_disjoint():
    train = build_config(link_set="train", link_set_size=50, n_links=2).links
    test = build_config(link_set="test", link_set_size=50, n_links=2).links
    again = build_config(link_set="test", link_set_size=50, n_links=2).links
    other = build_config(link_set="test", link_set_size=50, n_links=2, split_seed=1).links
    np.testing.assert_array_equal(test.bandwidth, again.bandwidth)
    assert not np.array_equal(test.bandwidth, other.bandwidth)
    rows = lambda t: {tuple(r) for r in np.c_[t.bandwidth, t.delay, t.queue, t.loss]}  # noqa: E731
    assert not rows(train) & rows(test)
    assert len(build_config(link_set="train").links) == 1000 and len(build_config(link_set="test").links) == 100
    env = CCEnv(link_set="test", link_set_size=50, n_links=2)
    for seed in range(20):
        env.reset(seed=seed)
        link = tuple(env.batched._state["bw"][0])
        assert link in {tuple(r) for r in test.bandwidth}


def test_reset_option_link_index_picks_a_set_entry():
    vec = gym.make_vec("sysgym/CC-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       link_set="test", n_links=2)
    table = vec.unwrapped.config.links
    vec.reset(seed=0, options={"link_index": np.array([4, 0, 99])})
    np.testing.assert_array_equal(vec.unwrapped._state["bw"], table.bandwidth[[4, 0, 99]])
    np.testing.assert_array_equal(vec.unwrapped._state["queue"], table.queue[[4, 0, 99]])
    env = CCEnv(link_set="test")
    env.reset(seed=0, options={"link_index": 7})
    np.testing.assert_array_equal(env.batched._state["delay"][0], env.config.links.delay[7])
    for bad, words in ((100, r"\[0, 99\]"), (1.5, "an int"), ([1, 2], "an int")):
        with pytest.raises(ValueError, match=words):
            env.reset(seed=0, options={"link_index": bad})
    with pytest.raises(ValueError, match="needs link_set"):
        CCEnv().reset(seed=0, options={"link_index": 0})
    with pytest.raises(ValueError, match="reset_mask and link_index"):
        CCEnv().reset(seed=0, options={"link": 0})


def test_trace_splits_partition_the_traces(tmp_path):
    for i in range(5):
        (tmp_path / f"trace{i}.log").write_text(f"0 {1 + i}\n1 {1 + i}\n2 {2 + i}\n")
    train = build_config(traces=tmp_path, link_set="train").trace_table.choices
    test = build_config(traces=tmp_path, link_set="test").trace_table.choices
    assert sorted(train.tolist() + test.tolist()) == list(range(5)) and len(test) == 1
    env = CCEnv(traces=tmp_path, link_set="test", link_set_size=10)
    for seed in range(10):
        env.reset(seed=seed)
        assert int(env.batched._state["trace_id"][0]) in test.tolist()


def test_mahimahi_trace_is_read_through_the_shared_reader(tmp_path):
    path = tmp_path / "link.mahi"
    path.write_text("\n".join(str(ms) for ms in range(0, 4000, 4)) + "\n")  # 250 packets/s
    env = CCEnv(traces=path, trace_bin_ms=1000.0, delay=0.01, queue=20, start_rate=2.0, max_steps=100)
    env.reset(seed=0)
    assert env.bottleneck_bandwidth() == pytest.approx(250.0)
    for _ in range(100):
        _, _, _, _, info = env.step(HOLD)
    assert info["episode_metrics"]["throughput"] == pytest.approx(250.0, rel=0.05)


@pytest.mark.parametrize("kwargs, words", [
    ({"bandwidth": (500, 100)}, "bandwidth: low 500.0 > high 100.0"),
    ({"bandwidth": (0, 100)}, "bandwidth[0] must be a number in [1.0, 1e+07], got 0"),
    ({"delay": -0.1}, "delay"),
    ({"queue": (0, 10)}, "queue"),
    ({"queue": (2.5, 10)}, "queue[0] must be an integer"),
    ({"loss": (0.0, 1.0)}, "loss"),
    ({"loss": "high"}, "loss must be a (low, high) pair"),
    ({"start_rate": (1.0, float("nan"))}, "start_rate[1] must be finite"),
    ({"min_rate": 500.0, "max_rate": 100.0}, "min_rate 500.0 > max_rate 100.0"),
    ({"features": ("latency_ratio", "rtt")}, "unknown feature 'rtt'"),
    ({"features": ()}, "features must be a non-empty list"),
    ({"history": 0}, "history"),
    ({"n_links": 9}, "n_links"),
    ({"rate_changes": (-1.0, 0.0)}, "rate_changes[0] must be a number in (-1.0, 10.0]"),
    ({"action": "both"}, "action must be one of"),
    ({"link_set": "validation"}, "link_set must be one of"),
    ({"link_set_size": 10}, "link_set_size needs link_set"),
    ({"n_flows": 2}, "parallel_env"),
    ({"mi_limits": (0.5, 0.1)}, "mi_limits"),
])
def test_bad_kwargs_are_clear_errors(kwargs, words):
    with pytest.raises(ValueError) as err:
        CCEnv(**kwargs)
    assert words in str(err.value)


def test_unknown_kwarg_is_a_type_error():
    with pytest.raises(TypeError):
        gym.make("sysgym/CC-v0", bandwith=(1, 2))


def test_bad_traces_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        CCEnv(traces=tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1.0\n1 fast\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: field .*Mbps"):
        CCEnv(traces=bad)
    dead = tmp_path / "dead.txt"
    dead.write_text("0 0\n5 3\n5 0\n")  # bandwidth only on a zero-length segment
    with pytest.raises(ValueError, match="dead.txt.*carries no data"):
        CCEnv(traces=dead)
    one = tmp_path / "one.txt"
    one.write_text("0 1\n1 2\n")
    with pytest.raises(ValueError, match="at least 2 traces"):
        CCEnv(traces=one, link_set="train")


def test_render_text_and_picture():
    env = CCEnv(render_mode="ansi", **fixed_link(n_links=2))
    env.reset(seed=0)
    env.step(HOLD)
    text = env.render()
    assert "link 0:" in text and "link 1:" in text and "flow 0:" in text
    env = CCEnv(render_mode="rgb_array", **fixed_link())
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.ones(1, dtype=np.float32))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (192 + 3 * 16, 272, 3)  # plot + 3 caption lines
    assert (np.abs(frame.astype(int) - [31, 119, 180]).sum(axis=2) == 0).any()  # the flow's colour


def test_aurora_compatible_action_scale_and_first_interval():
    """PCC-RL's network_sim.py: rate x (1 + 0.025 a) (a / (1 - 0.025 a) below 0) with a unbounded
    (action space [-1e12, 1e12]), and a first monitor interval of 3 x the one-way delay."""
    env = CCEnv(aurora_compatible=True, **fixed_link(delay=(0.01, 0.03), n_links=2, max_rate=5000.0))
    assert env.action_space.low[0] == np.float32(-1e12) and env.action_space.high[0] == np.float32(1e12)
    _, info = env.reset(seed=0)
    one_way = env.batched._state["delay"][0].sum()
    assert info["mi_duration"] == pytest.approx(3.0 * one_way, rel=1e-12)
    rate = info["sending_rate"]
    for a in (3.0, -8.0, 0.4):  # beyond [-1, 1], where the default mode would clip
        _, _, _, _, info = env.step(np.array([a], dtype=np.float32))
        factor = 1 + 0.025 * a if a >= 0 else 1 / (1 - 0.025 * a)
        assert info["sending_rate"] == pytest.approx(rate * factor, rel=1e-6)
        rate = info["sending_rate"]
    _, _, _, _, info = env.step(np.array([1e12], dtype=np.float32))
    assert info["sending_rate"] == 5000.0  # still clipped to max_rate
    default = CCEnv(**fixed_link())
    _, info = default.reset(seed=0)
    _, _, _, _, info2 = default.step(np.array([3.0], dtype=np.float32))
    assert info2["sending_rate"] == pytest.approx(info["sending_rate"] * 1.05)  # clipped to 1 here
    for kwargs, words in (({"delta_scale": 0.05}, "fixes delta_scale"), ({"first_mi": 2.0}, "fixes first_mi"),
                          ({"action": "discrete"}, "needs action='continuous'")):
        with pytest.raises(ValueError, match=words):
            CCEnv(aurora_compatible=True, **kwargs)


@pytest.mark.parametrize("features", [("latency_gradient", "latency_ratio", "send_ratio"),
                                      ("loss_rate", "send_rate", "recv_rate", "latency_ratio")])
def test_feature_names_follow_the_flattened_observation(features):
    env = gym.make("sysgym/CC-v0", history=3, features=features, **fixed_link(loss=0.05))
    names = env.unwrapped.feature_names
    assert len(names) == gym.spaces.flatdim(env.observation_space) == 3 * len(features)
    assert names[:len(features)] == tuple(f"{f}[t-3]" for f in features)
    assert names[-len(features):] == tuple(f"{f}[t-1]" for f in features)
    expected = {"loss_rate": lambda i: i["loss_rate"], "send_rate": lambda i: i["send_rate"] / 1000.0,
                "recv_rate": lambda i: i["throughput"] / 1000.0,
                "latency_ratio": lambda i: min(i["latency"] / i["min_rtt"], 10.0)}
    _, info = env.reset(seed=0)
    previous = None
    for _ in range(6):
        obs, _, _, _, info = env.step(np.zeros(1, dtype=np.float32))
        value = dict(zip(names, obs))
        for f in features:
            if f in expected:  # the newest row holds this interval's statistics
                assert value[f"{f}[t-1]"] == pytest.approx(expected[f](info), rel=1e-6)
            if previous is not None:  # and the row before it the previous interval's
                assert value[f"{f}[t-2]"] == previous[f"{f}[t-1]"]
        previous = value
    vec = gym.make_vec("sysgym/CC-v0", num_envs=2, vectorization_mode="vector_entry_point", history=3,
                       features=features)
    assert vec.unwrapped.feature_names == names
