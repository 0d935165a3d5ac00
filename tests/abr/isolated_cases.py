"""Cases that crashed or hung the interpreter before they were refused: each function runs in a
fresh interpreter (``conftest.run_isolated``) so that a regression fails a test instead of
killing pytest. Not collected by pytest itself."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from sysgym.envs.abr import AbrEnv, AbrVectorEnv
from sysgym.envs.bandwidth import BandwidthTrace

LONG = BandwidthTrace("long", np.arange(0.0, 400.0, 1.0), np.full(400, 2.0))
SHORT = BandwidthTrace("short", np.array([0.0, 1.0, 2.0]), np.array([2.0, 2.0, 2.0]))


def _refused(env, state, match: str) -> None:
    before = env.get_state()
    try:
        env.set_state(state)
    except ValueError as err:
        assert match in str(err), f"expected {match!r} in {err}"
    else:
        raise AssertionError(f"set_state accepted a bad snapshot (expected {match!r})")
    after = env.get_state()
    for key, value in before["arrays"].items():        # a refused snapshot leaves the env unchanged
        assert np.array_equal(value, after["arrays"][key], equal_nan=True), key


def _played(env, chunks: int, seed: int = 0) -> dict:
    env.reset(seed=seed)
    for c in range(chunks):
        env.step(c % env.action_space.n)
    return env.get_state()


def snapshot_cases() -> None:
    """Foreign and edited snapshots raise ValueError; the env steps on unharmed afterwards."""
    test_env = AbrEnv(traces="test")
    train_state = _played(AbrEnv(traces="train"), 5)
    _refused(test_env, train_state, "another configuration")

    short_env = AbrEnv(traces=[SHORT], trace_order="sequential")
    long_state = _played(AbrEnv(traces=[LONG], trace_order="sequential"), 40)
    _refused(short_env, long_state, "another configuration")
    # the same arrays with this env's fingerprint forged in: the segment index is out of range
    forged = copy.deepcopy(long_state)
    forged["config"] = short_env.get_state()["config"]
    _refused(short_env, forged, "'seg'")

    good = _played(test_env, 7)
    edits = {
        "trace": (10**6, "'trace'"), "chunk": (-1, "'chunk'"), "seg": (10**9, "'seg'"), "counter": (-3, "'counter'"),
        "last_level": (6, "'last_level'"), "t": (np.nan, "'t'"), "buffer": (np.inf, "'buffer'"),
        "delay": (-1.0, "'delay'"), "nbytes": (1e300, "'nbytes'"),
    }
    for key, (value, match) in edits.items():
        state = copy.deepcopy(good)
        state["arrays"][key][0] = value
        _refused(test_env, state, match)
    state = copy.deepcopy(good)
    state["arrays"]["t"][0] += 1000.0                           # outside its segment
    _refused(test_env, state, "'t'")
    state = copy.deepcopy(good)
    state["arrays"]["acc"][0, 0] = 1e308                       # a sum no 7 chunks can reach
    _refused(test_env, state, "'acc'")
    state = copy.deepcopy(good)
    state["arrays"]["hist"][0, 3, 0] = 17.0                    # a played chunk at level 17
    _refused(test_env, state, "'hist'")
    state = copy.deepcopy(good)
    state["arrays"]["hist"][0, 30, 1] = np.nan                 # even an unplayed row must be finite
    _refused(test_env, state, "'hist'")
    state = copy.deepcopy(good)
    state["arrays"]["last_level"][0] = (state["arrays"]["last_level"][0] + 1) % 6
    _refused(test_env, state, "last_level")
    state = copy.deepcopy(good)
    state["arrays"]["chunk"][0] = test_env.config.num_chunks   # all played but not waiting for reset
    _refused(test_env, state, "waiting for a reset")
    state = copy.deepcopy(good)
    state["arrays"]["obs"][0, 3, 7] = np.float32(1e30)         # outside the observation space
    _refused(test_env, state, "'obs'")
    for bad in (None, {}, {"format": "sysgym-state/1"}, [1, 2], "state"):
        try:
            test_env.set_state(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"set_state accepted {bad!r}")

    # a valid snapshot still forks, and the env plays to the end of the episode afterwards
    test_env.set_state(good)
    while True:
        obs, reward, terminated, truncated, _ = test_env.step(3)
        assert test_env.observation_space.contains(obs) and np.isfinite(reward)
        if terminated:
            break
    # a fresh env's snapshot (before any reset) is valid too
    fresh = AbrVectorEnv(3, traces=[BandwidthTrace("late", np.array([5.0, 6.0, 9.0]), np.array([1.0, 2.0, 3.0]))])
    fresh.set_state(fresh.get_state())
    print("ok")


def slow_and_huge_inputs() -> None:
    """Inputs that hung the transfer walk (inside nogil, so Ctrl-C could not stop it) are either
    refused at load time or end within max_transfer_s of trace time, quickly."""
    with tempfile.TemporaryDirectory() as tmp:
        huge = Path(tmp) / "huge_rate"
        huge.write_text("0 1e308\n1 1e308\n")
        for bad, match in ((dict(traces=[huge]), "huge_rate:1: field 2 (Mbps) must be <= 1e+06"),
                           (dict(payload_portion=1e-12), "payload_portion"),
                           (dict(video=np.full((6, 49), 2.0**63 - 1)), "1e+12")):
            try:
                AbrEnv(**bad)
            except ValueError as err:
                assert match in str(err), err
            else:
                raise AssertionError(f"accepted {bad}")
    try:
        BandwidthTrace("x", np.array([0.0, 1.0]), np.array([1e308, 1e308]))
    except ValueError as err:
        assert "mbps[0]" in str(err), err
    else:
        raise AssertionError("accepted a 1e308 Mbps trace")
    cases = {
        "1e-15 Mbps": dict(traces=[BandwidthTrace("slow", np.array([0.0, 1.0, 2.0]), np.array([1e-15, 1e-15, 0.0]))]),
        "1e12-byte chunks on a 0.3 s trace": dict(traces=[BandwidthTrace(
            "tiny", np.array([0.0, 0.1, 0.3]), np.array([0.5, 0.0, 0.5]))], video=np.full((6, 49), 1e12)),
        "zero bandwidth but one microsecond": dict(traces=[BandwidthTrace(
            "blip", np.array([0.0, 1e-6, 1e7]), np.array([1e6, 0.0, 0.0]))], video=np.full((6, 49), 1e12)),
        "minimum payload": dict(payload_portion=0.01, traces=[SHORT]),
        "denormal rates": dict(traces=[BandwidthTrace("d", np.array([0.0, 1.0]), np.array([5e-324, 5e-324]))]),
    }
    for name, kwargs in cases.items():
        env = AbrEnv(noise=True, max_transfer_s=1e6, **kwargs)
        start = time.perf_counter()
        env.reset(seed=0)
        capped = 0
        while True:
            obs, reward, terminated, _, info = env.step(5)
            assert env.observation_space.contains(obs), (name, obs)
            assert np.isfinite(reward) and np.all(np.isfinite(info["reward_components"])), name
            assert info["delay_s"] <= (1e6 + 0.08) * 1.1 * (1 + 1e-9), name
            if terminated:
                capped = info["episode_metrics"]["capped_downloads"]
                break
        elapsed = time.perf_counter() - start
        assert elapsed < 5.0, (name, elapsed)
        print(name, "capped", capped, f"{elapsed * 1e3:.1f} ms")
    print("ok")
