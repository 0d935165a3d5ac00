"""set_state refuses every snapshot the DeepRM kernel could not step safely (issue 9's cases and
random edits); each runs in a fresh process (a crash would fail the test, not the test run)."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import sysgym  # noqa: F401
from tests.isolation import run_isolated

# case -> what the ValueError must name
CASES = {
    "none": "snapshot dict", "truncated": "not a sysgym snapshot", "missing_array": "missing ['used']",
    "swf_into_generator": "another configuration",
    "swf_into_generator_forged": "'trace_ptr'", "generator_into_swf_forged": "'trace_end'",
    "capacity_10_30_into_10_10": "another configuration",
    "capacity_10_30_into_10_10_forged": "resource 1",
    "n_wait_1e6": "'n_wait'[0] = ", "head_-5": "'head'[0] = ", "now_beyond_time_limit": "'now'[0] = ",
    "wait_slot_1e6": "'wait'", "slot_listed_twice": "appears 2 times", "job_len_0": "'job_len'",
    "job_size_11": "'job_size'", "job_submit_future": "'job_submit'", "job_start_set": "'job_start'",
    "used_plus_one": "'used'", "acc_nan": "'acc'", "n_jobs_plus_one": "'n_jobs'", "obs_2": "'obs'",
    "trace_ptr_1e9": "'trace_ptr'", "trace_base_-2^62": "'trace_base'", "stream_start_-1": "'stream_start'",
    "trace_ptr_minus_one": "disagrees with the clock",
    "bracis_now_beyond_T": "'now'[0] = 41",
}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    return json.loads(run_isolated("from tests.deeprm.fuzzing import snapshot_cases; snapshot_cases()"))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_snapshot_is_a_clear_error(outcomes, case):
    assert outcomes[case].startswith("ValueError: ") and CASES[case] in outcomes[case], outcomes[case]


def test_random_snapshots_give_an_error_or_a_valid_env():
    counts = json.loads(run_isolated("from tests.deeprm.fuzzing import fuzz_snapshots; fuzz_snapshots(200)"))
    assert counts["accepted"] > 0 and counts["refused"] > 0


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Image-v0", "sysgym/DeepRM-CompactSparse-v0"])
def test_snapshots_round_trip_within_the_family(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    for _ in range(30):
        env.step(env.action_space.n - 1)
    state = env.get_state()
    env.set_state(state)            # a genuine snapshot passes every check
    clone = gym.make(env_id).unwrapped
    clone.set_state(state)          # also into a fresh env with the same kwargs
