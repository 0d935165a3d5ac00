"""CC snapshots (vector and PettingZoo env): every reachable state round-trips and forks exactly;
snapshots of another configuration, edited pointers and values, and random snapshots are refused
with a ValueError or step soundly. Anything that could crash the kernel runs in a subprocess."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sysgym.envs.cc import CCEnv, CCVectorEnv, parallel_env
from tests.cc.test_reference import long_traces, random_actions, random_kwargs
from tests.contract import assert_same
from tests.isolation import run_isolated

CONFIGS = {
    "default": {},
    "traces+set": {"traces": "synthetic", "link_set": "test", "link_set_size": 5, "n_links": 2},
    "discrete-lossy": {"action": "discrete", "loss": (0.0, 0.3), "queue": (1, 20), "max_inflight": 16,
                       "features": ("send_rate", "latency_ratio", "loss_rate"), "history": 3},
}


@pytest.mark.parametrize("kwargs", CONFIGS.values(), ids=CONFIGS)
def test_vector_states_round_trip_and_fork_identically(kwargs):
    """Never-reset, half-reset, running and ended sub-envs pass the checks; a fork continues
    exactly like the original."""
    fresh = CCVectorEnv(3, max_steps=12, **kwargs)
    fresh.set_state(fresh.get_state())
    half = CCVectorEnv(3, autoreset_mode=AutoresetMode.DISABLED, max_steps=12, **kwargs)
    half.reset(seed=0, options={"reset_mask": np.array([True, False, True])})
    half.set_state(pickle.loads(pickle.dumps(half.get_state())))
    fresh.reset(seed=4)
    fresh.action_space.seed(0)
    fresh.single_action_space.seed(0)
    ended = 0
    for step in range(30):
        actions = np.stack([fresh.single_action_space.sample() for _ in range(3)])
        _, _, _, truncated, _ = fresh.step(actions)
        ended += int(truncated.sum())
        fresh.set_state(pickle.loads(pickle.dumps(fresh.get_state())))
        if step == 7:
            fork = fresh.get_state()
            plan = [np.stack([fresh.single_action_space.sample() for _ in range(3)]) for _ in range(10)]
            first = [fresh.step(a) for a in plan]
            fresh.set_state(fork)
            for a, expected in zip(plan, first):
                assert_same(fresh.step(a), expected)
    assert ended >= 3  # ended sub-envs (NextStep autoreset pending) were snapshot too


@pytest.mark.parametrize("block", range(2))
def test_every_state_of_random_episodes_passes_the_checks(block):
    """The checks accept everything the kernel reaches: random configurations (flows, links,
    traces, windows, link sets, both action kinds), a snapshot restored after every step."""
    for seed in range(block, 48, 2):
        kwargs = random_kwargs(seed)
        if seed % 3 == 0:
            kwargs["traces"] = long_traces(np.random.default_rng(seed))
        env = parallel_env(**kwargs)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        while env.agents:
            env.step(random_actions(env, rng))
            env.set_state(env.get_state())


def test_single_env_snapshot_continues_identically():
    env = CCEnv(traces="synthetic", loss=(0.0, 0.1))
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.ones(1, dtype=np.float32))
    state = pickle.loads(pickle.dumps(env.get_state()))
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 1)).astype(np.float32)
    first = [env.step(a) for a in actions]
    env.set_state(state)
    for a, expected in zip(actions, first):
        assert_same(env.step(a), expected)


def test_pettingzoo_states_round_trip_and_fork_identically():
    env = parallel_env(n_flows=3, traces="synthetic", n_links=2, max_steps=15)
    env.set_state(env.get_state())  # never reset
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    plan = [{a: rng.uniform(-1, 1, 1) for a in env.possible_agents} for _ in range(15)]
    for a in plan[:5]:
        env.step(a)
    fork = pickle.loads(pickle.dumps(env.get_state()))
    first = [env.step(a) for a in plan[5:]]
    assert env.agents == []
    ended = env.get_state()
    env.set_state(fork)
    assert env.agents == env.possible_agents
    for a, expected in zip(plan[5:], first):
        assert_same(env.step(a), expected)
    env.set_state(ended)
    assert env.agents == []
    with pytest.raises(RuntimeError):
        env.step({})


@pytest.mark.parametrize("make", [lambda: CCVectorEnv(2), lambda: parallel_env(n_flows=2)], ids=["vector", "pettingzoo"])
def test_non_snapshots_are_clear_errors(make):
    env = make()
    env.reset(seed=0)
    good = env.get_state()
    cases = [None, {}, [], {"format": good["format"]}, {**good, "format": "other/1"},
             {**good, "class": "DAGVectorEnv"}, {**good, "arrays": None},
             {**good, "arrays": {k: v for k, v in good["arrays"].items() if k != "rate"}},
             {**good, "arrays": {**good["arrays"], "rate": good["arrays"]["rate"].astype(np.float32)}},
             {**good, "arrays": {**good["arrays"], "rate": good["arrays"]["rate"].tolist()}},
             {**good, "arrays": {**good["arrays"], "extra": np.zeros(2)}}]
    for state in cases:
        with pytest.raises(ValueError) as err:
            env.set_state(state)
        assert str(err.value)


def test_pettingzoo_snapshot_agents_must_be_all_or_none():
    env = parallel_env(n_flows=2)
    env.reset(seed=0)
    state = env.get_state()
    for agents in (["flow_0"], ["flow_1", "flow_0"], "flow_0", None, ["flow_0", "flow_1", "flow_2"]):
        with pytest.raises(ValueError, match="agents"):
            env.set_state({**state, "agents": agents})


@pytest.fixture(scope="module", params=["vector", "pettingzoo"])
def isolated(request) -> list[str]:
    """The output of :func:`tests.cc.fuzzing.snapshot_suite` for one env kind, run in a subprocess
    (so a kernel crash fails these tests rather than pytest)."""
    code = f"from tests.cc.fuzzing import snapshot_suite; snapshot_suite({request.param!r}, 120)"
    return run_isolated(code, timeout=240).splitlines()


def test_edited_pointers_and_values_are_refused(isolated):
    """Out-of-ring heads and counts, trace indices, heap entries, clock and send times, rates,
    link parameters, NaN/inf times... each named in the error; the env is left unchanged."""
    assert isolated[0].startswith("refused ") and int(isolated[0].split()[1]) >= 40


def test_snapshot_of_16_traces_is_refused_by_a_2_trace_env(isolated):
    """Same array shapes: refused by the configuration fingerprint, and with a forged fingerprint
    by the trace index check (the trace of the snapshot does not exist in the 2-trace env)."""
    assert isolated[1:3] == ["refused: True False", "refused: False True"]


def test_random_snapshots_are_refused_or_step_soundly(isolated):
    assert isolated[3:] == ["fuzzed 120"]
