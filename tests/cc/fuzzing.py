"""Crash-prone checks of the CC family, run in a fresh interpreter by the tests (a segfault or a
hang then fails one test instead of killing pytest): edited snapshots, and hypothesis suites that
feed random numeric fields to the kwargs, the trace values and ``set_state``.

Every outcome must be a ``ValueError`` with a message, or an env whose next steps return finite
rewards and observations inside the space.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]




def fuzz_settings(examples: int, seconds: float = 5.0) -> settings:
    return settings(max_examples=examples, deadline=timedelta(seconds=seconds), derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------------- envs and their checks
def make(kind: str, **kwargs):
    """A CC env with traces, two links and (for the PettingZoo env) three flows."""
    from sysgym.envs.cc import CCVectorEnv, parallel_env

    base = {"traces": "synthetic", "n_links": 2, "max_steps": 40, "max_inflight": 64, "queue": (2, 60)}
    base.update(kwargs)
    if kind == "vector":
        return CCVectorEnv(2, **base)
    return parallel_env(n_flows=3, **base)


def actions_for(env, rng: np.random.Generator):
    if hasattr(env, "possible_agents"):
        space = env.action_space(env.possible_agents[0])
        return {a: _sample(space, rng) for a in env.agents}
    return np.stack([_sample(env.single_action_space, rng) for _ in range(env.num_envs)])


def _sample(space, rng: np.random.Generator):
    if hasattr(space, "n"):
        return int(rng.integers(0, space.n))
    return rng.uniform(np.maximum(space.low, -2.0), np.minimum(space.high, 2.0)).astype(np.float32)


def steps_are_sound(env, steps: int, seed: int = 0) -> None:
    """``steps`` random steps return finite rewards, finite info numbers and observations in the space."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        if hasattr(env, "possible_agents"):
            if not env.agents:
                env.reset(seed=seed)
            obs, rewards, _, _, infos = env.step(actions_for(env, rng))
            space = env.observation_space(env.possible_agents[0])
            for agent, o in obs.items():
                assert space.contains(o), (agent, o)
                assert math.isfinite(rewards.get(agent, 0.0)), rewards
            for info in infos.values():
                _finite_info(info)
        else:
            obs, rewards, _, _, infos = env.step(actions_for(env, rng))
            for o in obs:
                assert env.single_observation_space.contains(o), o
            assert np.all(np.isfinite(rewards)), rewards
            _finite_info(infos)


def _finite_info(info: dict) -> None:
    for key, value in info.items():
        if isinstance(value, dict):
            _finite_info(value)
        elif isinstance(value, (float, np.ndarray)) and np.asarray(value).dtype.kind == "f":
            assert np.all(np.isfinite(value)), (key, value)


def warmed(kind: str, steps: int = 6, **kwargs):
    env = make(kind, **kwargs)
    env.reset(seed=3)
    steps_are_sound(env, steps, seed=3)
    return env


# ---------------------------------------------------------------------------- edited snapshots
def _cases(env) -> list[tuple[str, str, object]]:
    """(name, array the error must name, edit of the arrays) of snapshots the kernel must refuse."""
    cfg = env.config
    qc, ring = cfg.queue_capacity, cfg.max_inflight

    def put(key, index, value):
        def edit(a):
            a[key][index] = value
        return edit

    def swap_heap(a):
        a["heap"][0, [0, 1]] = a["heap"][0, [1, 0]]

    def duplicate_flow(a):
        a["heap"][0, 1] = a["heap"][0, 0]

    def send_before_now(a):
        a["ev_time"][0, 0] = a["now"][0] - 1.0

    def send_far_ahead(a):
        a["ev_time"][0, 0] = a["now"][0] + 1.01 / cfg.min_rate

    def delay_without_sum(a):
        a["delay"][0, 1] = cfg.delay[0]
        a["delay"][0, 0] = cfg.delay[1]

    def ack_before_send(a):
        a["ring_s"][0, 0, 0] = a["ring_t"][0, 0, 0] + 1.0

    def queue_over_cap(a):
        a["lq_n"][0, 0] = a["queue"][0, 0] + 1

    cases = [
        ("lq_head negative", "lq_head", put("lq_head", (0, 0), -5)),
        ("lq_head past ring", "lq_head", put("lq_head", (0, 1), qc)),
        ("lq_n over the link's queue", "lq_n", queue_over_cap),
        ("lq_n huge", "lq_n", put("lq_n", (0, 0), 10**6)),
        ("ring_head past ring", "ring_head", put("ring_head", (0, 0), ring)),
        ("ring_n over window", "ring_n", put("ring_n", (0, 0), ring + 1)),
        ("ring_n negative", "ring_n", put("ring_n", (0, 0), -1)),
        ("trace_id huge", "trace_id", put("trace_id", 0, 10**6)),
        ("trace_id negative", "trace_id", put("trace_id", 0, -1)),
        ("trace_pos past the trace", "trace_pos", put("trace_pos", 0, 1e9)),
        ("trace_pos NaN", "trace_pos", put("trace_pos", 0, np.nan)),
        ("heap index out of range", "heap", put("heap", (0, 0), 99)),
        ("send before now", "ev_time", send_before_now),
        ("send past the slowest gap", "ev_time", send_far_ahead),
        ("now infinite", "now", put("now", 0, np.inf)),
        ("now negative", "now", put("now", 0, -1.0)),
        ("now beyond the steps", "now", put("now", 0, 1e9)),
        ("mi_start after now", "mi_start", put("mi_start", 0, 1e6)),
        ("steps beyond max_steps", "steps", put("steps", 0, cfg.max_steps + 1)),
        ("rate zero", "rate", put("rate", (0, 0), 0.0)),
        ("rate above max", "rate", put("rate", (0, 0), cfg.max_rate * 2)),
        ("rate NaN", "rate", put("rate", (0, 0), np.nan)),
        ("link bandwidth zero", "bw", put("bw", (0, 1), 0.0)),
        ("trace link bandwidth set", "bw", put("bw", (0, 0), 100.0)),
        ("delays and their sum disagree", "ret_delay", delay_without_sum),
        ("queue zero", "queue", put("queue", (0, 0), 0)),
        ("queue over capacity", "queue", put("queue", (0, 1), qc + 1)),
        ("loss one", "loss", put("loss", (0, 0), 1.0)),
        ("busy infinite", "busy", put("busy", (0, 0), np.inf)),
        ("departure NaN", "lq", put("lq", (0, 0, 0), np.nan)),
        ("notification NaN", "ring_t", put("ring_t", (0, 0, 0), np.nan)),
        ("ack before send", "ring_s", ack_before_send),
        ("send time -0.5", "ring_s", put("ring_s", (0, 0, 0), -0.5)),
        ("srtt infinite", "srtt", put("srtt", (0, 0), np.inf)),
        ("plot_n negative", "plot_n", put("plot_n", 0, -1)),
        ("flow total negative", "flow_tot", put("flow_tot", (0, 0, 1), -1.0)),
        ("statistic NaN", "flow_stats", put("flow_stats", (0, 0, 2), np.nan)),
        ("observation outside the space", "obs", put("obs", (0, 0), 1e6)),
        ("reward component infinite", "reward_components", put("reward_components", (0, 0), np.inf)),
        ("flag 2", "truncated", put("truncated", 0, 2)),
        ("rng all zero", "rng", put("rng", 0, 0)),
    ]
    if cfg.n_flows > 1:
        cases += [("heap duplicate", "heap", duplicate_flow), ("heap out of order", "heap", swap_heap)]
    return cases


def check_edits(kind: str) -> None:
    """Every edit of ``_cases`` is refused with a ValueError naming the array, the env is left
    unchanged (it continues exactly as an untouched copy), and nothing crashes."""
    import copy

    from tests.contract import assert_same

    env = warmed(kind)
    good = env.get_state()
    twin = copy.deepcopy(good)
    refused = 0
    for name, key, edit in _cases(env):
        state = copy.deepcopy(good)
        if kind == "pettingzoo" and key in ("obs", "reward_components"):
            state["arrays"][key] = state["arrays"][key].copy()
        edit(state["arrays"])
        try:
            env.set_state(state)
        except ValueError as err:
            assert key in str(err), (name, str(err))
            refused += 1
        else:
            raise AssertionError(f"{name}: edited snapshot accepted")
    assert refused == len(_cases(env))
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    other = make(kind)
    other.set_state(twin)
    for _ in range(5):
        assert_same(env.step(actions_for(env, rng_a))[:4], other.step(actions_for(other, rng_b))[:4])
    print("refused", refused)


def check_foreign(kind: str) -> None:
    """A snapshot of the 16-trace env is refused by a 2-trace env with the same array shapes, both
    as it is (fingerprint) and with the fingerprint forged (then the trace index is out of range)."""
    from sysgym.envs.bandwidth import synthetic_trace

    many = warmed(kind)
    state = many.get_state()
    assert int(state["arrays"]["trace_id"].max()) >= 2, "pick a seed whose trace is not among the first two"
    two = make(kind, traces=[synthetic_trace(0), synthetic_trace(1)])
    assert {k: v.shape for k, v in two.get_state()["arrays"].items()} == \
        {k: v.shape for k, v in state["arrays"].items()}
    for forged in (False, True):
        if forged:
            state["config"] = two.get_state()["config"]
        try:
            two.set_state(state)
        except ValueError as err:
            print("refused:", "configuration" in str(err), "trace_id" in str(err))
        else:
            raise AssertionError("a 16-trace snapshot was accepted by a 2-trace env")
    two.reset(seed=0)
    steps_are_sound(two, 3)


def fuzz_snapshots(kind: str, examples: int) -> None:
    """Random values written into random places of a valid snapshot: refused, or sound to step."""
    env = warmed(kind)
    good = env.get_state()
    keys = sorted(good["arrays"])
    values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**40, 2**40),
        st.sampled_from([0, 1, -1, 2, 0.5, 1e-300, 1e15, 1e300, 2**31, 2**62, -2**63]))

    @fuzz_settings(examples)
    @given(edits=st.lists(st.tuples(st.sampled_from(keys), st.integers(0, 2**31), values), min_size=1, max_size=4),
           needs_reset=st.booleans())
    def check(edits, needs_reset):
        state = {**good, "arrays": {k: v.copy() for k, v in good["arrays"].items()}}
        for key, where, value in edits:
            a = state["arrays"][key]
            flat = a.reshape(-1)
            try:
                flat[where % flat.size] = value
            except (OverflowError, ValueError):
                flat[where % flat.size] = 0
        if kind == "vector" and needs_reset:
            state["arrays"]["needs_reset"][:] = 0
        try:
            env.set_state(state)
        except ValueError as err:
            assert str(err)
            return
        steps_are_sound(env, 3)

    check()
    print("fuzzed", examples)


# ---------------------------------------------------------------------------- kwargs and traces
WILD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
    st.sampled_from([0, -1, 1e-300, 1e-15, 1e-6, 0.999999, 1, 60, 100, 1e6, 1e7, 2**20, 2**20 + 1, 1e12, 1e306,
                     10**6, 10**6 + 1]))
# name -> (low, high, whole numbers): values inside (and at the ends of) the documented ranges
RANGES = {
    "bandwidth": (1.0, 1e7, False), "delay": (1e-9, 100.0, False), "queue": (1, 2**20, True),
    "loss": (0.0, 0.999, False), "start_rate": (1e-6, 1000.0, False), "min_rate": (1e-3, 1e7, False),
    "max_rate": (1e-3, 1e7, False), "delta_scale": (1e-9, 10.0, False), "history": (1, 1000, True),
    "first_mi": (1e-9, 1000.0, False), "mi_rtts": (1e-9, 1000.0, False), "mi_limits": (1e-6, 60.0, False),
    "max_steps": (1, 10**6, True), "max_inflight": (1, 2**20, True), "reward_scale": (1e-9, 1e6, False),
    "n_links": (1, 8, True), "split_seed": (0, 2**63 - 1, True), "test_fraction": (1e-9, 0.999, False),
    "trace_bin_ms": (1.0, 3.6e6, False), "rate_changes": (-0.999, 10.0, False),
}
KWARGS = tuple(RANGES)


def _number(name: str):
    lo, hi, whole = RANGES[name]
    valid = st.integers(lo, hi) if whole else st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]))
    return st.one_of(*[valid] * 7, WILD)


def _value(draw, name: str):
    if name in ("bandwidth", "delay", "queue", "loss", "start_rate", "mi_limits"):
        a, b = draw(_number(name)), draw(_number(name))
        ordered = (a, b) if _key(a) <= _key(b) else (b, a)
        return draw(st.sampled_from([ordered, ordered, (a, b), a]))
    if name == "rate_changes":
        return draw(st.lists(_number(name), min_size=0, max_size=17))
    return draw(_number(name))


def _key(x):
    return x if x == x else 0.0


def fuzz_kwargs(examples: int) -> None:
    """Random numeric kwargs: a clear ValueError, or an env whose steps are sound."""
    from sysgym.envs.cc import CCEnv, parallel_env

    @fuzz_settings(examples, seconds=8)
    @given(data=st.data(), names=st.lists(st.sampled_from(KWARGS), min_size=1, max_size=5, unique=True),
           discrete=st.booleans(), multi=st.booleans())
    def check(data, names, discrete, multi):
        kwargs = {name: _value(data.draw, name) for name in names}
        kwargs["action"] = "discrete" if discrete else "continuous"
        kwargs["max_steps"] = kwargs.get("max_steps", 5)
        try:
            env = parallel_env(n_flows=2, **kwargs) if multi else CCEnv(**kwargs)
        except ValueError as err:
            assert str(err)
            return
        if multi:
            env.reset(seed=0)
            steps_are_sound(env, 3)
            return
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(3):
            obs, reward, _, truncated, info = env.step(_sample(env.action_space, rng))
            assert env.observation_space.contains(obs) and math.isfinite(reward), (obs, reward)
            _finite_info(info)
            if truncated:
                env.reset(seed=1)

    check()
    print("fuzzed", examples)


def fuzz_traces(examples: int, folder: str) -> None:
    """Random trace values (as objects and as cooked files): a clear ValueError, or sound steps."""
    from sysgym.envs.bandwidth import BandwidthTrace
    from sysgym.envs.cc import CCEnv

    wild_steps = st.one_of(st.floats(0, 50), st.sampled_from([0.0, 1e-300, 1e-9, 1e6, 1e12, 1e300]),
                           st.floats(-1e3, 0), st.floats(allow_nan=True, allow_infinity=True))
    wild_rates = st.one_of(st.floats(0, 100), st.sampled_from([0.0, 1e-15, 1e-6, 0.012, 1e5, 1e6, 1e300]),
                           st.floats(allow_nan=True, allow_infinity=True))
    clean = st.tuples(st.lists(st.one_of(st.floats(1e-3, 50), st.just(0.0)), min_size=1, max_size=12),
                      st.lists(st.one_of(st.floats(0, 100), st.just(0.0)), min_size=13, max_size=13))
    dirty = st.tuples(st.lists(wild_steps, min_size=0, max_size=12), st.lists(wild_rates, min_size=13, max_size=13))
    samples = st.one_of(clean, dirty).map(lambda x: ([0.0, *np.cumsum(x[0]).tolist()], x[1][:len(x[0]) + 1]))

    @fuzz_settings(examples)
    @given(data=st.data(), trace=samples, as_file=st.booleans(), index=st.integers(0, 10**6))
    def check(data, trace, as_file, index):
        t, mbps = trace
        try:
            if as_file:
                path = Path(folder) / f"trace{index}.txt"
                path.write_text("".join(f"{a!r} {b!r}\n" for a, b in zip(t, mbps)))
                env = CCEnv(traces=path, max_steps=4)
            else:
                env = CCEnv(traces=[BandwidthTrace("fuzz", np.asarray(t), np.asarray(mbps))], max_steps=4)
        except ValueError as err:
            assert str(err)
            return
        env.reset(seed=0)
        for _ in range(4):
            obs, reward, _, _, info = env.step(np.zeros(1, dtype=np.float32))
            assert env.observation_space.contains(obs) and math.isfinite(reward), (obs, reward)
            _finite_info(info)
        tr, pos = env.future_input()
        env.reset(seed=1)
        env.set_future_input(tr, data.draw(st.floats(0, 1)) * pos)
        env.step(np.ones(1, dtype=np.float32))

    check()
    print("fuzzed", examples)


def snapshot_suite(kind: str, examples: int) -> None:
    """The three snapshot checks in one interpreter (one start-up instead of three)."""
    check_edits(kind)
    check_foreign(kind)
    fuzz_snapshots(kind, examples)
