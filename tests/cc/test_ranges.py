"""The documented valid range of every CC kwarg and trace value, the caps on what one sub-env may
cost, the kernel's loop bounds, and observations inside the space on extreme but valid settings.
What could hang or crash runs in a subprocess with a timeout."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.bandwidth import BandwidthTrace
from sysgym.envs.cc import CCEnv, CCVectorEnv, parallel_env
from sysgym.envs.cc.config import MBPS_TO_PKTS, TRACE_SAMPLES_MAX
from tests.isolation import run_isolated


@pytest.mark.parametrize("kwargs, words", [
    ({"reward_scale": 1e306}, "reward_scale must be a number in (0.0, 1e+06]"),
    ({"reward_scale": 0.0}, "reward_scale"),
    ({"bandwidth": (0.5, 100)}, "bandwidth[0] must be a number in [1.0, 1e+07]"),
    ({"bandwidth": 2e7}, "bandwidth[0]"),
    ({"delay": (0.01, 101.0)}, "delay[1] must be a number in (0.0, 100.0]"),
    ({"delay": 0.0}, "delay[0]"),
    ({"queue": (1, 2**20 + 1)}, "queue[1] must be an integer in [1, 1048576]"),
    ({"queue": (0, 10)}, "queue[0]"),
    ({"loss": 1.0}, "loss must lie in [0, 1)"),
    ({"loss": (-0.1, 0.0)}, "loss[0]"),
    ({"start_rate": (0.0, 1.0)}, "start_rate[0]"),
    ({"start_rate": 1001.0}, "start_rate[0]"),
    ({"min_rate": 0.0}, "min_rate must be a number in [0.001, 1e+07]"),
    ({"max_rate": 1e8}, "max_rate"),
    ({"min_rate": float("nan")}, "min_rate must be finite"),
    ({"delta_scale": 0.0}, "delta_scale"),
    ({"delta_scale": 11.0}, "delta_scale"),
    ({"rate_changes": (0.1, 11.0)}, "rate_changes[1]"),
    ({"rate_changes": ()}, "rate_changes must be a list of 1..16"),
    ({"history": 1001}, "history must be an integer in [1, 1000]"),
    ({"history": True}, "history must be an integer"),
    ({"history": 2.5}, "history must be an integer"),
    ({"first_mi": 0.0}, "first_mi"),
    ({"mi_rtts": float("inf")}, "mi_rtts must be finite"),
    ({"mi_limits": (0.0, 1.0)}, "mi_limits[0] must be a number in [1e-06, 60.0]"),
    ({"mi_limits": (1.0, 61.0)}, "mi_limits[1]"),
    ({"max_steps": 10**6 + 1}, "max_steps"),
    ({"max_steps": 2**70}, "max_steps"),
    ({"max_inflight": 2**20 + 1}, "max_inflight"),
    ({"n_links": 0}, "n_links"),
    ({"split_seed": -1}, "split_seed"),
    ({"test_fraction": 1.0}, "test_fraction"),
    ({"trace_bin_ms": 0.5}, "trace_bin_ms"),
    ({"trace_format": "csv"}, "trace_format must be one of"),
    ({"link_set": "test", "link_set_size": 10**5 + 1}, "link_set_size"),
    ({"aurora_compatible": 1}, "aurora_compatible must be True or False"),
    # the caps on one sub-env: sends per monitor interval and state
    ({"max_rate": 1e7, "mi_limits": (0.01, 10.0)}, "sends per monitor interval exceeds the limit"),
    ({"max_inflight": 2**20, "queue": (2, 2**20), "n_links": 8}, "MiB of state per sub-env"),
])
def test_out_of_range_kwargs_are_refused(kwargs, words):
    with pytest.raises(ValueError) as err:
        CCEnv(**kwargs)
    assert words in str(err.value)


def test_pettingzoo_kwargs_are_checked_too():
    with pytest.raises(ValueError, match="n_flows must be an integer in \\[1, 64\\]"):
        parallel_env(n_flows=65)
    with pytest.raises(ValueError, match="MiB of state"):
        parallel_env(n_flows=64, max_inflight=2**17)
    with pytest.raises(ValueError, match="max_cycles"):
        parallel_env(max_cycles=0)
    with pytest.raises(TypeError, match="did you mean 'bandwidth'"):
        parallel_env(bandwith=100)


EXTREMES = {
    "slow link, deep queue": dict(bandwidth=1.0, delay=100.0, queue=2**20, min_rate=1e-3, max_rate=1e6,
                                  mi_limits=(1e-6, 10.0), max_inflight=2**16),
    "fast link, tiny MIs": dict(bandwidth=1e7, delay=1e-9, queue=(1, 4), min_rate=1e7, max_rate=1e7,
                                mi_limits=(1e-6, 1e-6), max_steps=10**6),
    "almost every packet lost": dict(loss=(0.999, 0.999), n_links=8, start_rate=1000.0),
    "long history, every feature": dict(history=1000, features=("latency_gradient", "latency_ratio", "send_ratio",
                                                                 "send_rate", "recv_rate", "loss_rate"),
                                        reward_scale=1e6, throughput="normalised", first_mi=1000.0, mi_rtts=1000.0),
    "aurora, unbounded actions": dict(aurora_compatible=True, min_rate=1e-3, max_rate=1e6, mi_limits=(1e-6, 10.0)),
    "discrete, extreme changes": dict(action="discrete", rate_changes=(-0.999, 10.0), delta_scale=10.0),
    "traces with outages": dict(traces="outages", queue=(1, 2**10), max_rate=1e5, mi_limits=(1e-3, 60.0)),
}


def outage_traces() -> list[BandwidthTrace]:
    one_packet = 1.0 / MBPS_TO_PKTS  # Mbps that deliver one packet in one second
    return [BandwidthTrace("one packet a loop", np.array([0.0, 1.0, 100.0]), np.array([one_packet, 0.0, 0.0])),
            BandwidthTrace("outage", np.array([0.0, 5.0, 5.0, 60.0, 61.0]), np.array([0.0, 1e5, 0.0, 3.0, 3.0])),
            BandwidthTrace("fast", np.array([0.0, 1e-6]), np.array([1e5, 1e5]))]


@pytest.mark.parametrize("kwargs", EXTREMES.values(), ids=EXTREMES)
def test_observations_stay_in_the_space_on_extreme_valid_settings(kwargs):
    if kwargs.get("traces") == "outages":
        kwargs = {**kwargs, "traces": outage_traces()}
    vec = CCVectorEnv(4, max_episode_steps=60, **{"max_steps": 60, **kwargs})
    space, rng = vec.single_observation_space, np.random.default_rng(0)
    obs, infos = vec.reset(seed=0)
    bound = vec.config.action_bound
    for _ in range(80):
        if vec.config.action == "discrete":
            actions = rng.integers(0, vec.single_action_space.n, 4)
        else:  # the ends of the action range as often as the inside
            actions = rng.choice([-bound, bound, 0.0, rng.uniform(-1, 1)], (4, 1)).astype(np.float32)
        obs, rewards, _, _, infos = vec.step(actions)
        assert all(space.contains(o) for o in obs), obs
        assert np.all(np.isfinite(rewards)) and np.all(np.isfinite(infos["reward_components"]))
        for key in ("sending_rate", "throughput", "latency", "loss_rate", "min_rtt", "mi_duration", "time"):
            assert np.all(np.isfinite(infos[key])), key
        if "episode_metrics" in infos:
            assert all(np.all(np.isfinite(v)) for v in infos["episode_metrics"].values())


def test_trace_values_outside_the_ranges_are_refused(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("0 1e-15\n100 1e-15\n")
    with pytest.raises(ValueError, match=r"tiny.txt: the trace delivers 8.33e-12 packets .* needs at least 1"):
        CCEnv(traces=tiny)
    with pytest.raises(ValueError, match=r"fast.txt: sample 2 \(time_s 1\): field Mbps = 200000 exceeds CC's "
                                         r"limit of 100000 Mbps"):
        CCEnv(traces=[BandwidthTrace("t", np.array([0.0, 1.0, 2.0]), np.array([1.0, 2e5, 1.0]), "fast.txt")])
    with pytest.raises(ValueError, match="long.txt: field time_s spans 2e\\+06 s"):
        CCEnv(traces=[BandwidthTrace("t", np.array([0.0, 2e6]), np.array([1.0, 1.0]), "long.txt")])
    n = TRACE_SAMPLES_MAX // 2 + 1
    big = BandwidthTrace("big", np.arange(n) * 0.1, np.ones(n))
    with pytest.raises(ValueError, match="more than 4194304 samples"):
        CCEnv(traces=[big, big])


def test_tiny_bandwidth_trace_cannot_hang_reset(tmp_path):
    """1e-15 Mbps hung inside reset (the trace walk looped for ~1e13 turns); now it is refused at
    load time, and a trace just above the limit (one packet a loop) steps at once."""
    (tmp_path / "tiny.txt").write_text("0 1e-15\n100 1e-15\n")
    (tmp_path / "slow.txt").write_text(f"0 {1.0001 / MBPS_TO_PKTS / 100}\n100 0\n")
    out = run_isolated(f"""
        import numpy as np
        from sysgym.envs.cc import CCEnv
        try:
            CCEnv(traces={str(tmp_path / 'tiny.txt')!r})
        except ValueError as err:
            print("refused", "packets" in str(err))
        env = CCEnv(traces={str(tmp_path / 'slow.txt')!r}, queue=(2, 2**20), max_rate=1e5, mi_limits=(1e-3, 60.0))
        env.reset(seed=0)
        for _ in range(50):
            _, reward, _, _, info = env.step(np.ones(1, dtype=np.float32))
        print("stepped", np.isfinite(reward), info["throughput"] <= 1.0)
    """, timeout=60)
    assert out.split() == ["refused", "True", "stepped", "True", "True"]


def test_a_nan_action_written_past_the_checks_cannot_hang_the_kernel():
    """The env refuses NaN actions before the kernel sees them; written straight into the kernel's
    action buffer, a NaN rate made every send time NaN and the send loop's `t >= end` never held."""
    out = run_isolated("""
        import numpy as np
        from sysgym.envs.cc import CCVectorEnv
        vec = CCVectorEnv(2)
        vec.reset(seed=0)
        vec._state["actions"][:] = np.nan
        vec._kernel.step(np.ones(2, dtype=np.uint8))
        print("returned")
    """, timeout=60)
    assert out.split() == ["returned"]


def test_adversarial_trace_steps_in_bounded_time():
    """10^5 outage segments per loop and one packet at its end: the walk over segments that made
    a packet's service cost the whole trace is gone (binary search), so steps stay fast."""
    out = run_isolated("""
        import time
        import numpy as np
        from sysgym.envs.bandwidth import BandwidthTrace
        from sysgym.envs.cc import CCVectorEnv
        from sysgym.envs.cc.config import MBPS_TO_PKTS
        n = 100_000
        times = np.arange(n + 1) * 1e-3
        mbps = np.zeros(n + 1)
        mbps[-2] = 1.0 / MBPS_TO_PKTS / 1e-3  # exactly one packet, in the last millisecond of the loop
        vec = CCVectorEnv(4, traces=[BandwidthTrace("adversarial", times, mbps)], queue=(2**19, 2**20),
                          max_rate=1e5, start_rate=1000.0, mi_limits=(1e-3, 60.0), max_inflight=2**20)
        start = time.process_time()
        vec.reset(seed=0)
        for _ in range(20):
            vec.step(np.ones((4, 1)))
        print(time.process_time() - start)
    """, timeout=60)
    assert float(out) < 10.0


def test_worst_case_sends_per_interval_and_late_clock_are_bounded():
    """At the sends cap (10^7 per interval) a step takes about a second; and a valid state whose
    clock is at the largest value the ranges allow ((max_steps + 1) x 60 s) still advances (the
    send gap stays far above the clock's rounding)."""
    out = run_isolated("""
        import time
        import numpy as np
        from sysgym.envs.cc import CCVectorEnv
        vec = CCVectorEnv(1, bandwidth=1e7, delay=1e-3, queue=(1, 1024), min_rate=1e7, max_rate=1e7,
                          mi_limits=(1.0, 1.0), max_inflight=2**20)
        vec.reset(seed=0)
        start = time.process_time()
        _, _, _, _, info = vec.step(np.zeros((1, 1)))
        print(time.process_time() - start, info["send_rate"][0])
        late = CCVectorEnv(1, max_steps=10**6, mi_limits=(60.0, 60.0), max_rate=1e5 / 60, min_rate=1e5 / 60)
        late.reset(seed=0)
        state = late.get_state()
        a = state["arrays"]
        shift = (10**6 - 1) * 60.0 - a["now"][0]
        a["steps"][0] = 10**6 - 1
        for key in ("now", "mi_start", "ev_time"):
            a[key][0] += shift
        a["ev_time"][0] = np.clip(a["ev_time"][0], a["now"][0], a["now"][0] + 1.0 / a["rate"][0])
        late.set_state(state)
        start = time.process_time()
        _, reward, _, truncated, info = late.step(np.zeros((1, 1)))
        print(time.process_time() - start, info["send_rate"][0], truncated[0], np.isfinite(reward[0]))
    """, timeout=120)
    first, second = (line.split() for line in out.splitlines())
    assert float(first[0]) < 20.0 and float(first[1]) == pytest.approx(1e7, rel=1e-6)
    assert float(second[0]) < 20.0 and float(second[1]) == pytest.approx(1e5 / 60, rel=1e-3)
    assert second[2:] == ["True", "True"]


@pytest.mark.parametrize("suite", ["fuzz_kwargs(150)", "fuzz_traces(120, folder)"])
def test_random_numeric_kwargs_and_trace_values(suite, tmp_path):
    """Hypothesis: random numbers (NaN, inf, huge, negative, in range) for every numeric kwarg and
    for trace samples (objects and cooked files): a clear ValueError or a sound env."""
    out = run_isolated(f"from tests.cc.fuzzing import fuzz_kwargs, fuzz_traces\nfolder = {str(tmp_path)!r}\n"
                       f"{suite}", timeout=180)
    assert out.split()[0] == "fuzzed"
