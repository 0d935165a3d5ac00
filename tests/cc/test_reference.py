"""The kernel against the pure-Python reference event simulation (tests/reference/cc.py).

Each seed draws a random configuration (flows, path length, ranges, traces, link sets, windows,
action type, features), then runs the kernel and the reference on the same RNG state with the
same random actions and demands identical sender-visible events, observations, reward
components, MI statistics and episode metrics, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.bandwidth import BandwidthTrace
from sysgym.envs.cc import FEATURES, METRIC_NAMES, CCVectorEnv, parallel_env
from sysgym.envs.seeding import rng_state
from tests.reference.cc import LOG_SEND, LOG_SKIP, CCReference

SEEDS = range(240)


def random_traces(rng: np.random.Generator) -> list[BandwidthTrace]:
    traces = []
    for i in range(int(rng.integers(2, 4))):
        n = int(rng.integers(2, 7))
        steps = rng.choice([0.0, 0.05, 0.3, 1.0], n - 1)  # zero-length segments included
        steps[0] = rng.uniform(0.1, 1.0)
        times = np.cumsum(np.concatenate([[rng.uniform(0, 1)], steps]))
        mbps = rng.choice([0.0, 0.3, 1.0, 2.5], n)  # outages included
        mbps[0] = rng.uniform(0.5, 2.0)  # the trace must carry data
        traces.append(BandwidthTrace(f"t{i}", times, mbps))
    return traces


def random_kwargs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lo_bw = float(rng.uniform(20, 150))
    features = list(rng.permutation(list(FEATURES))[: int(rng.integers(1, len(FEATURES) + 1))])
    kw = {
        "n_flows": int(rng.integers(1, 4)),
        "n_links": int(rng.integers(1, 4)),
        "bandwidth": (lo_bw, lo_bw * float(rng.uniform(1, 3))),
        "delay": (0.002, float(rng.uniform(0.003, 0.08))),
        "queue": (1, int(rng.integers(1, 60))),
        "loss": (0.0, float(rng.choice([0.0, 0.05, 0.3]))),
        "start_rate": (0.2, float(rng.uniform(0.3, 3.0))),
        "min_rate": 5.0, "max_rate": 400.0,
        "delta_scale": float(rng.choice([0.05, 0.5, 2.0])),
        "action": str(rng.choice(["continuous", "discrete"])),
        "features": features,
        "history": int(rng.integers(1, 5)),
        "first_mi": float(rng.uniform(0.5, 4)),
        "mi_rtts": float(rng.uniform(0.3, 1.5)),
        "mi_limits": (0.005, float(rng.choice([0.05, 0.5, 10.0]))),
        "max_steps": int(rng.integers(3, 25)),
        "max_inflight": int(rng.choice([3, 20, 1000])),
        "throughput": str(rng.choice(["absolute", "normalised"])),
    }
    if rng.random() < 0.35:
        kw["traces"] = random_traces(rng)
    if rng.random() < 0.3:
        kw["link_set"] = str(rng.choice(["train", "test"]))
        kw["link_set_size"] = int(rng.integers(1, 6))
        kw["split_seed"] = int(rng.integers(0, 5))
    return kw


def random_actions(env, rng: np.random.Generator) -> dict:
    if env.config.action == "discrete":
        return {a: int(rng.integers(0, len(env.config.rate_changes))) for a in env.agents}
    return {a: rng.uniform(-1.3, 1.3, size=1) for a in env.agents}  # out-of-range values get clipped


def run_pair(seed: int) -> int:
    kw = random_kwargs(seed)
    env = parallel_env(**kw)
    log = np.zeros((200_000, 4))
    env._kernel.record_events(log)
    ref = CCReference(env.config)
    index = None
    if env.config.links is not None and seed % 2:
        index = seed % len(env.config.links)
    obs, infos = env.reset(seed=seed, options={"link_index": index})
    step = ref.reset(rng_state(seed), link_index=index)
    compare(env, obs, infos, step, f"seed {seed} reset")
    rng = np.random.default_rng(seed + 1000)
    steps = 0
    while env.agents:
        actions = random_actions(env, rng)
        obs, _, _, trunc, infos = env.step(actions)
        step = ref.step([actions[a] for a in env.possible_agents])
        steps += 1
        compare(env, obs, infos, step, f"seed {seed} step {steps}")
        assert all(v == step.truncated for v in trunc.values())
        if step.truncated:
            assert not env.agents
            for i, agent in enumerate(env.possible_agents):
                metrics = infos[agent]["episode_metrics"]
                expected = dict(step.metrics)
                expected["total_throughput"] = expected.pop("throughput")
                for name, value in expected.items():
                    assert metrics[name] == value, (seed, name, metrics[name], value)
                np.testing.assert_array_equal(
                    [metrics["flow_throughput"], metrics["flow_latency"], metrics["flow_loss_rate"]],
                    step.flow_metrics[i])
    n = env._kernel.logged()
    assert n <= len(log)
    kernel_log = log[:n]
    ref_log = np.asarray(ref.log, dtype=np.float64).reshape(-1, 4)
    assert kernel_log.shape == ref_log.shape, (seed, kernel_log.shape, ref_log.shape)
    # The kernel resolves a flow's notifications in batches from its ring, the reference one
    # event at a time: the sends (all flows), each flow's notifications, and the whole sequence
    # once put in the spec's event order must be identical.
    k_send, r_send = (np.isin(x[:, 1], (LOG_SEND, LOG_SKIP)) for x in (kernel_log, ref_log))
    np.testing.assert_array_equal(kernel_log[k_send], ref_log[r_send], err_msg=f"seed {seed}: sends differ")
    for f in range(env.config.n_flows):
        np.testing.assert_array_equal(kernel_log[~k_send & (kernel_log[:, 2] == f)],
                                      ref_log[~r_send & (ref_log[:, 2] == f)],
                                      err_msg=f"seed {seed}: notifications of flow {f} differ")
    np.testing.assert_array_equal(in_event_order(kernel_log), ref_log,
                                  err_msg=f"seed {seed}: event sequences differ")
    return n


def in_event_order(log: np.ndarray) -> np.ndarray:
    """Stable sort by (time, notifications before sends, flow): the spec's event order."""
    send_like = np.isin(log[:, 1], (LOG_SEND, LOG_SKIP))
    order = sorted(range(len(log)), key=lambda i: (log[i, 0], bool(send_like[i]), log[i, 2]))
    return log[order]


def compare(env, obs, infos, step, where: str) -> None:
    for i, agent in enumerate(env.possible_agents):
        np.testing.assert_array_equal(obs[agent], step.obs[i], err_msg=f"{where}: obs of {agent}")
        np.testing.assert_array_equal(infos[agent]["reward_components"], step.reward_components[i],
                                      err_msg=f"{where}: reward components of {agent}")
        stats = [infos[agent][k] for k in ("sending_rate", "throughput", "latency", "loss_rate",
                                           "min_rtt", "send_rate")]
        np.testing.assert_array_equal(stats, step.stats[i], err_msg=f"{where}: MI statistics of {agent}")


@pytest.mark.parametrize("block", range(8))
def test_kernel_matches_reference_on_random_seeds(block):
    events = 0
    for seed in SEEDS[block::8]:
        events += run_pair(seed)
    assert events > 1000  # the comparison covered real traffic, not empty episodes


def test_random_configs_exercise_every_mechanism():
    """Across the seeds the reference sees random loss, queue drops, window limits, traces and
    link sets, so the equality above covers them all."""
    seen = {"random_loss": 0, "queue_drop": 0, "skip": 0, "trace": 0, "set": 0, "multi": 0}
    for seed in SEEDS[:60]:
        kw = random_kwargs(seed)
        env = parallel_env(**kw)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        while env.agents:
            env.step(random_actions(env, rng))
        acc = env._state["link_acc"][0]
        seen["random_loss"] += acc[:, 1].sum() > 0
        seen["queue_drop"] += acc[:, 2].sum() > 0
        seen["skip"] += env._state["metrics"][0, METRIC_NAMES.index("window_limited")] > 0
        seen["trace"] += "traces" in kw
        seen["set"] += "link_set" in kw
        seen["multi"] += kw["n_flows"] > 1 and kw["n_links"] > 1
    assert all(v >= 3 for v in seen.values()), seen


def test_vector_env_sub_envs_match_reference():
    """The Gymnasium vector env (B sub-envs in one call) runs each sub-env like the reference."""
    kw = {"bandwidth": (50, 120), "delay": (0.005, 0.03), "queue": (2, 40), "max_steps": 12,
          "loss": (0.0, 0.1)}
    vec = CCVectorEnv(3, autoreset_mode="Disabled", **kw)
    obs, _ = vec.reset(seed=5)
    refs = [CCReference(vec.config) for _ in range(3)]
    steps = [r.reset(rng_state(5 + i)) for i, r in enumerate(refs)]
    rng = np.random.default_rng(0)
    for _ in range(12):
        for i in range(3):
            np.testing.assert_array_equal(obs[i], steps[i].obs[0])
        actions = rng.uniform(-1, 1, (3, 1))
        obs, rewards, _, trunc, infos = vec.step(actions)
        steps = [r.step(actions[i]) for i, r in enumerate(refs)]
        for i in range(3):
            np.testing.assert_array_equal(infos["reward_components"][i], steps[i].reward_components[0])
            # the batched reward is one matrix-vector product: equal up to its rounding only
            np.testing.assert_allclose(rewards[i], steps[i].reward_components[0] @ vec.reward_weights,
                                       rtol=1e-12)
    assert trunc.all()
    for i in range(3):
        for name, value in steps[i].metrics.items():
            assert infos["episode_metrics"][name][i] == value


def long_traces(rng: np.random.Generator) -> list[BandwidthTrace]:
    """Traces of hundreds of samples with repeated timestamps and outages, so that the kernel's
    segment searches (hint, next segment, binary search) all run."""
    traces = []
    for i in range(3):
        n = int(rng.integers(50, 400))
        steps = rng.choice([0.0, 0.001, 0.02, 0.3], n - 1, p=[0.15, 0.35, 0.35, 0.15])
        steps[0] = 0.05
        mbps = rng.choice([0.0, 0.05, 0.6, 3.0], n, p=[0.3, 0.2, 0.3, 0.2])
        mbps[0] = 1.0
        traces.append(BandwidthTrace(f"long{i}", np.concatenate([[0.0], np.cumsum(steps)]), mbps))
    return traces


@pytest.mark.parametrize("seed", range(6))
def test_long_traces_and_replaced_future_input_match_reference(seed):
    """Long traces, and set_future_input in mid-episode (another trace and position, then the
    current one given back), give the reference's events, observations and rewards exactly."""
    rng = np.random.default_rng(seed)
    env = parallel_env(n_flows=int(rng.integers(1, 4)), n_links=int(rng.integers(1, 3)), traces=long_traces(rng),
                       bandwidth=(50, 200), delay=(0.002, 0.03), queue=(1, 40), max_rate=400.0, min_rate=5.0,
                       start_rate=(0.5, 3.0), mi_limits=(0.005, 0.5), max_steps=40, loss=(0.0, 0.05))
    log = np.zeros((200_000, 4))
    env._kernel.record_events(log)
    ref = CCReference(env.config)
    obs, infos = env.reset(seed=seed)
    compare(env, obs, infos, ref.reset(rng_state(seed)), f"seed {seed} reset")
    actions_rng = np.random.default_rng(seed + 7)
    for step in range(40):
        if step in (10, 25):
            trace = int(rng.integers(0, 3))
            position = float(rng.uniform(0, env.config.trace_table.duration[trace]))
            env.set_future_input(trace, position)
            ref.set_future_input(trace, position)
        if step == 30:  # giving back the current input changes nothing
            env.set_future_input(*env.future_input())
        actions = random_actions(env, actions_rng)
        obs, _, _, _, infos = env.step(actions)
        compare(env, obs, infos, ref.step([actions[a] for a in env.possible_agents]), f"seed {seed} step {step}")
        assert env.future_input() == (ref.trace_index, ref.trace_pos)
    n = env._kernel.logged()
    np.testing.assert_array_equal(in_event_order(log[:n]), np.asarray(ref.log).reshape(-1, 4))
