"""Physical sanity of the link model, with expected values derived by hand from the link parameters."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.agents.heuristics.cc import AIMD, FixedRate
from sysgym.envs.cc import CCEnv, parallel_env

HOLD = np.zeros(1, dtype=np.float32)  # continuous action 0: keep the rate


def jain(x: np.ndarray) -> float:
    return float(x.sum() ** 2 / (len(x) * (x ** 2).sum()))


def test_rate_below_bandwidth_never_queues_or_loses():
    # 160 packets/s into a 200 packets/s link: packets arrive 6.25 ms apart and need 5 ms each,
    # so every packet finds the link idle and its RTT is 2 x 50 ms + 5 ms.
    env = CCEnv(bandwidth=200.0, delay=0.05, queue=5, loss=0.0, start_rate=0.8, max_steps=60,
                features=("latency_gradient", "latency_ratio", "send_ratio", "loss_rate"))
    obs, info = env.reset(seed=3)
    assert info["sending_rate"] == pytest.approx(160.0)
    for _ in range(60):
        obs, _, _, truncated, info = env.step(HOLD)
        assert info["latency"] == pytest.approx(0.105, abs=1e-12)
        assert info["min_rtt"] == pytest.approx(0.105, abs=1e-12)
        assert info["loss_rate"] == 0.0
        gradient, ratio, _, loss = obs[-4:]
        assert abs(gradient) < 1e-6 and ratio == pytest.approx(1.0) and loss == 0.0
    assert truncated
    metrics = info["episode_metrics"]
    assert metrics["loss_rate"] == 0.0
    assert metrics["queueing_delay"] == pytest.approx(0.0, abs=1e-12)
    # 160 packets/s acknowledged from the first RTT on (+- the packet straddling the end)
    duration = metrics["duration"]
    assert metrics["throughput"] * duration == pytest.approx(160.0 * (duration - 0.105), abs=1.0)
    link = env.batched._state["link_acc"][0, 0]
    assert link[1] == 0 and link[2] == 0  # no random loss, no queue drop


def test_twice_the_bandwidth_fills_the_queue_and_loses_half():
    # 200 packets/s into 100 packets/s with a 20-packet buffer: the buffer fills within 0.2 s,
    # after which one packet in two is dropped; RTT = 2 x 20 ms + 20 packets x 10 ms.
    env = CCEnv(bandwidth=100.0, delay=0.02, queue=20, loss=0.0, start_rate=2.0, max_steps=150)
    _, info = env.reset(seed=1)
    assert info["sending_rate"] == pytest.approx(200.0)
    losses, latencies = [], []
    for _ in range(150):
        _, _, _, _, info = env.step(HOLD)
        losses.append(info["loss_rate"])
        latencies.append(info["latency"])
    assert env.batched._kernel.queue_length(0, 0) >= 19
    assert np.mean(losses[50:]) == pytest.approx(0.5, abs=0.01)
    assert np.mean(latencies[50:]) == pytest.approx(0.04 + 0.2, abs=0.01)
    metrics = info["episode_metrics"]
    assert metrics["loss_rate"] == pytest.approx(0.5, abs=0.02)
    assert metrics["throughput"] == pytest.approx(100.0, rel=0.02)
    assert metrics["utilisation"] == pytest.approx(1.0, abs=0.02)


def test_random_loss_rate_matches_the_link_loss():
    env = CCEnv(bandwidth=300.0, delay=0.01, queue=50, loss=0.1, start_rate=0.5, max_steps=300)
    env.reset(seed=4)
    for _ in range(300):
        _, _, _, _, info = env.step(HOLD)
    # about 300 x 0.05 s x 150 packets/s = 2250 sends: the rate is 0.1 +- 3 standard errors
    assert info["episode_metrics"]["loss_rate"] == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("seed", range(6))
def test_throughput_never_exceeds_bandwidth(seed):
    rng = np.random.default_rng(seed)
    n_flows = int(rng.integers(1, 4))
    env = parallel_env(n_flows=n_flows, n_links=int(rng.integers(1, 3)), bandwidth=(50, 300),
                       delay=(0.005, 0.1), queue=(2, 200), max_steps=80, max_rate=2000.0,
                       start_rate=(1.0, 4.0), delta_scale=0.5)
    env.reset(seed=seed)
    bw = env._state["bw"][0]
    while env.agents:
        actions = {a: rng.uniform(-0.2, 1.0, size=1) for a in env.agents}  # mostly speeding up
        _, _, _, _, infos = env.step(actions)
        acked = sum(infos[a]["throughput"] for a in infos) * infos["flow_0"]["mi_duration"]
        # ACKs leave the narrowest link at most once per 1/bandwidth, then keep their spacing
        assert acked <= bw.min() * infos["flow_0"]["mi_duration"] + 1.0 + 1e-9
    metrics = infos["flow_0"]["episode_metrics"]
    assert metrics["total_throughput"] <= bw.min() + 1e-9
    assert metrics["utilisation"] <= 1.0 + 1e-12


def test_trace_link_never_exceeds_its_capacity():
    env = CCEnv(traces="synthetic", max_rate=2000.0, start_rate=3.0, max_steps=200, delta_scale=0.3)
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(200):
            _, _, _, _, info = env.step(np.ones(1, dtype=np.float32))
        assert 0.0 < info["episode_metrics"]["utilisation"] <= 1.0


def test_trace_bandwidth_drives_the_link():
    # a two-level trace: 1.2 Mbps (100 packets/s) for 10 s, then 3.6 Mbps (300 packets/s)
    from sysgym.envs.bandwidth import BandwidthTrace

    trace = BandwidthTrace("steps", np.array([0.0, 10.0, 20.0]), np.array([1.2, 3.6, 3.6]))
    env = CCEnv(traces=[trace], delay=0.01, queue=30, loss=0.0, start_rate=3.5, max_rate=1000.0,
                max_steps=300, mi_limits=(0.05, 0.05))
    _, info = env.reset(seed=0)
    _, position = env.future_input()
    offset = position - info["time"]  # trace time = episode time + offset (mod the 20 s loop)
    t, per_level = 0.05, {100.0: [], 300.0: []}
    for _ in range(300):
        _, _, _, _, info = env.step(HOLD)
        level = 100.0 if ((t + offset) % 20.0) < 10.0 else 300.0
        per_level[level].append(info["throughput"])
        expected = 100.0 if ((info["time"] + offset) % 20.0) < 10.0 else 300.0
        assert env.bottleneck_bandwidth() == pytest.approx(expected)
        t = info["time"] + 0.05
    # well above both levels, the sender sees the bottleneck's rate (bar the switching instants)
    assert np.median(per_level[100.0]) == pytest.approx(100.0, rel=0.05)
    assert np.median(per_level[300.0]) == pytest.approx(300.0, rel=0.05)


def test_two_aimd_flows_converge_to_a_fair_share():
    env = parallel_env(n_flows=2, bandwidth=200.0, delay=0.03, queue=60, loss=0.0, start_rate=0.5,
                       max_steps=400)
    obs, infos = env.reset(seed=0)
    throughput = []
    for _ in range(40):  # drive the flows apart: flow 0 up 5% per interval, flow 1 down
        obs, _, _, _, infos = env.step({"flow_0": np.ones(1), "flow_1": -np.ones(1)})
        throughput.append([infos[a]["throughput"] for a in env.possible_agents])
    assert jain(np.mean(throughput[-10:], axis=0)) < 0.75
    aimd = AIMD(env)
    while env.agents:
        obs, _, _, _, infos = env.step(aimd.act(obs, infos))
        throughput.append([infos[a]["throughput"] for a in env.possible_agents])
    late = np.mean(throughput[200:], axis=0)
    assert jain(late) >= 0.9
    assert late.sum() == pytest.approx(200.0, rel=0.15)  # and together they still fill the link
    assert infos["flow_0"]["episode_metrics"]["jain_index"] > 0.85


def test_fixed_rates_stay_unfair():
    """The contrast that makes the AIMD test meaningful: without control the split persists."""
    env = parallel_env(n_flows=2, bandwidth=200.0, delay=0.03, queue=60, loss=0.0, start_rate=0.5,
                       max_steps=200)
    obs, infos = env.reset(seed=0)
    for _ in range(40):
        obs, _, _, _, infos = env.step({"flow_0": np.ones(1), "flow_1": -np.ones(1)})
    fixed = FixedRate(env)
    throughput = []
    while env.agents:
        obs, _, _, _, infos = env.step(fixed.act(obs, infos))
        throughput.append([infos[a]["throughput"] for a in env.possible_agents])
    assert jain(np.mean(throughput[100:], axis=0)) < 0.75
