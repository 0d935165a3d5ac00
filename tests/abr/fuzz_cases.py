"""Hypothesis properties of the ABR readers and snapshots, run in a fresh interpreter by
``test_fuzz.py`` (a crash fails that test instead of killing pytest). A watchdog ends the process
if any one example runs longer than EXAMPLE_TIMEOUT_S, so a hang inside a ``nogil`` kernel loop
fails too. Every example must end in a clear ValueError/FileNotFoundError or in a valid env whose
observations stay finite and inside the declared space. Not collected by pytest itself."""

from __future__ import annotations

import copy
import faulthandler
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysgym.envs.abr import AbrEnv, load_video
from sysgym.envs.bandwidth import read_cooked, read_mahimahi

EXAMPLE_TIMEOUT_S = 10.0
SETTINGS = settings(deadline=None, database=None, derandomize=True, print_blob=True,
                    suppress_health_check=list(HealthCheck))


@contextmanager
def watchdog():
    faulthandler.dump_traceback_later(EXAMPLE_TIMEOUT_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def play(env: AbrEnv, seed: int, steps: int) -> None:
    """Steps with every level in turn; everything returned is finite and in its space."""
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for i in range(steps):
        obs, reward, terminated, truncated, info = env.step(i % env.action_space.n)
        assert env.observation_space.contains(obs), obs
        assert np.isfinite(reward) and np.all(np.isfinite(info["reward_components"]))
        if terminated or truncated:
            assert all(np.isfinite(v) for v in info["episode_metrics"].values())
            obs, _ = env.reset()


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ readers
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1e308", "1e-15", "5e-324", "2.2e-308", "-0", "nan", "inf", "0x10", "1_0", "", "1e300",
                     "٣", "4.5.6", "1000000", "10000000"]),
)
COOKED_LINE = st.lists(NUMBER_TEXT, min_size=1, max_size=3).map(" ".join)
MAHIMAHI_LINE = NUMBER_TEXT


def readers(examples: int = 150) -> None:
    tmp = Path(tempfile.mkdtemp())
    config = settings(SETTINGS, max_examples=examples)

    @config
    @given(st.binary(max_size=300), st.sampled_from(["cooked", "mahimahi", "video"]))
    def random_bytes(data, reader):
        with watchdog():
            path = _write(tmp, "bytes", data)
            try:
                if reader == "cooked":
                    read_cooked(path)
                elif reader == "mahimahi":
                    read_mahimahi(path)
                else:
                    video = tmp / "video"
                    video.mkdir(exist_ok=True)
                    _write(video, "video_size_0", data)
                    load_video(video, num_levels=1)
            except (ValueError, FileNotFoundError):
                pass

    @config
    @given(st.lists(COOKED_LINE, min_size=0, max_size=8), st.integers(0, 3))
    def cooked_fields(lines, seed):
        with watchdog():
            path = _write(tmp, "cooked", "\n".join(lines).encode())
            try:
                env = AbrEnv(traces=[path], trace_format="cooked", num_chunks=6, max_transfer_s=1e6)
            except (ValueError, FileNotFoundError):
                return
            play(env, seed, 14)

    @config
    @given(st.lists(MAHIMAHI_LINE, min_size=0, max_size=8), st.sampled_from([1.0, 500.0, 60000.0]))
    def mahimahi_fields(lines, bin_ms):
        with watchdog():
            path = _write(tmp, "mahimahi", "\n".join(lines).encode())
            try:
                env = AbrEnv(traces=[path], trace_format="mahimahi", mahimahi_bin_ms=bin_ms, num_chunks=6)
            except (ValueError, FileNotFoundError):
                return
            play(env, 0, 14)

    @config
    @given(st.lists(st.lists(NUMBER_TEXT, min_size=1, max_size=2).map(" ".join), min_size=1, max_size=5))
    def video_fields(lines):
        with watchdog():
            video = tmp / "video_fields"
            video.mkdir(exist_ok=True)
            _write(video, "video_size_0", "\n".join(lines).encode())
            _write(video, "video_size_1", "\n".join(lines).encode())
            try:
                env = AbrEnv(video=video, bitrates_kbps=[300, 750], traces="test")
            except (ValueError, FileNotFoundError):
                return
            play(env, 0, 2 * env.unwrapped.config.num_chunks + 1)

    numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                        st.sampled_from([0, 1, 1e-3, 0.01, 0.5, 4, 60, 3600, 86400, 1e6, 1e7, 1e12, 5e-324]))
    numeric = ["chunk_s", "rtt_s", "payload_portion", "buffer_cap_s", "sleep_step_s", "max_transfer_s",
               "rebuffer_penalty", "smoothness_penalty", "history", "num_chunks", "initial_level", "video_seed",
               "mahimahi_bin_ms"]

    @config
    @given(st.dictionaries(st.sampled_from(numeric), numbers, min_size=1, max_size=5),
           st.one_of(st.none(), st.tuples(numbers, numbers)), st.one_of(st.none(), st.lists(numbers, max_size=4)))
    def random_kwargs(kwargs, noise_range, ladder):
        with watchdog():
            kwargs = dict(kwargs, traces="test")
            if noise_range is not None:
                kwargs["noise_range"] = noise_range
            if ladder is not None:
                kwargs["bitrates_kbps"] = ladder
                kwargs["qoe"] = "log"
            try:
                env = AbrEnv(**kwargs)
            except ValueError:
                return
            play(env, 0, min(60, 2 * env.unwrapped.config.num_chunks + 1))

    for prop in (random_bytes, cooked_fields, mahimahi_fields, video_fields, random_kwargs):
        prop()
    print("ok")


# ------------------------------------------------------------------ snapshots
VALUES = st.one_of(
    st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308, 1e30, -1.0, 0.0, 0.5, 1, 2, 6, 7, 48, 49, 95, 96,
                     10**6, 2**62, -(2**63)]),
    st.floats(min_value=0.0, max_value=100.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


def snapshots(examples_per_array: int = 12) -> None:
    """For every state array in turn: random edits of a few of its entries."""
    config = settings(SETTINGS, max_examples=examples_per_array)
    envs = {name: AbrEnv(**kwargs) for name, kwargs in
            {"abr": {}, "pensieve": {"pensieve_compatible": True},
             "zero": {"loop_clock": "zero", "trace_order": "sequential", "max_transfer_s": 5.0}}.items()}
    bases = {}
    for name, env in envs.items():
        env.reset(seed=1)
        for i in range(20):
            env.step(i % 6)
        bases[name] = env.get_state()
    accepted = []

    def random_snapshot(key):
        @config
        @given(st.sampled_from(sorted(envs)), st.lists(st.tuples(st.integers(0, 10**6), VALUES), min_size=1, max_size=3))
        def edit(name, edits):
            with watchdog():
                env, state = envs[name], copy.deepcopy(bases[name])
                flat = state["arrays"][key].reshape(-1)
                for position, value in edits:
                    try:
                        with np.errstate(over="ignore", invalid="ignore"):
                            flat[position % flat.size] = value
                    except (OverflowError, ValueError, TypeError):
                        continue
                try:
                    env.set_state(state)
                except ValueError:
                    env.set_state(bases[name])
                    return
                accepted.append((key, edits))
                for i in range(60):       # past the episode's end and into the next one
                    if env.unwrapped.batched._state["needs_reset"][0]:
                        env.reset()
                    obs, reward, terminated, _, info = env.step(i % 6)
                    assert env.observation_space.contains(obs), (name, key, edits, obs)
                    assert np.isfinite(reward) and np.all(np.isfinite(info["reward_components"])), (name, key, edits)
                    if terminated:
                        assert all(np.isfinite(v) for v in info["episode_metrics"].values()), (name, key, edits)
                env.set_state(bases[name])
        edit()

    for key in sorted(bases["abr"]["arrays"]):
        random_snapshot(key)
    print(f"accepted {len(accepted)} edited snapshots")
    print("ok")


if __name__ == "__main__":
    {"readers": readers, "snapshots": snapshots}[sys.argv[1]](*map(int, sys.argv[2:]))
