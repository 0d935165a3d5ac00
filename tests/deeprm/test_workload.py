"""SWF parsing, cleaning rules and trace replay."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.envs.deeprm import SWFWorkload, generate_swf, parse_swf
from sysgym.traces import trace_path
from tests.isolation import run_isolated


def swf_line(number, submit, run, procs, req_procs=None, req_time=-1, alloc=None):
    """One SWF line; any field may be given as text (e.g. "nan")."""
    req_procs = procs if req_procs is None else req_procs
    alloc = procs if alloc is None else alloc
    fields = [number, submit, 0, run, alloc, -1, -1, req_procs, req_time, -1, 1, 1, 1, 1, 1, 1, -1, -1]
    return " ".join(str(f) for f in fields)


def write(tmp_path, lines, name="t.swf"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_line_names_file_line_and_field(tmp_path):
    good = swf_line(1, 0, 60, 2)
    bad = good.replace(" 60 ", " sixty ", 1)
    path = write(tmp_path, ["; header", good, bad])
    with pytest.raises(ValueError, match=r"t\.swf:3: field 4 \(run_time\)"):
        parse_swf(path)


def test_wrong_field_count_and_negative_submit(tmp_path):
    path = write(tmp_path, [swf_line(1, 0, 60, 2), "2 5 0 60"])
    with pytest.raises(ValueError, match=r":2: expected 18 field\(s\) \(job_number .*\), found 4"):
        parse_swf(path)
    path = write(tmp_path, [swf_line(1, 0, 60, 2), swf_line(2, 0, 60, 2) + " 7"])   # an extra column
    with pytest.raises(ValueError, match=r":2: expected 18 field"):
        parse_swf(path)
    path = write(tmp_path, [swf_line(1, -5, 60, 2)])
    with pytest.raises(ValueError, match=r":1: field 2 \(submit_time\) must be >= 0"):
        parse_swf(path)


# Values that used to wrap, overflow or turn into NaN on the way to the kernel's C integers; each
# is now refused naming the file, line and field.
@pytest.mark.parametrize("line, match", [
    (swf_line(2, 1e300, 60, 2), r"t\.swf:3: field 2 \(submit_time\) must be <= 1e\+12"),
    (swf_line(2, 0, 60, 1e19, alloc=2), r"t\.swf:3: field 8 \(requested_processors\) must be <= 1e\+12"),
    (swf_line(2, 0, 60, 2, alloc="1e19", req_procs=-1), r"t\.swf:3: field 5 \(allocated_processors\)"),
    (swf_line(2, 0, 1e13, 2), r"t\.swf:3: field 4 \(run_time\) must be <= 1e\+12"),
    (swf_line(2, 0, 60, 2, req_time="nan"), r"t\.swf:3: field 9 \(requested_time\) is not finite"),
    (swf_line(2, 0, "NaN", 2), r"t\.swf:3: field 4 \(run_time\) is not finite"),
    (swf_line(2, 0, 60, "-inf", alloc=2), r"t\.swf:3: field 8 \(requested_processors\) is not finite"),
    (swf_line(2, 0, 60, 2).replace("1 1 1 1", "1 1 x 1", 1), r"t\.swf:3: field \d+ \(\w+\) is not a number"),
])
def test_out_of_range_fields_are_refused_before_any_cast(tmp_path, line, match):
    path = write(tmp_path, ["; header", swf_line(1, 0, 60, 2), line])
    with pytest.raises(ValueError, match=match):
        SWFWorkload(path).load(num_processors=8)


def test_run_times_beyond_int32_steps_are_refused_or_clipped_and_counted(tmp_path):
    # 60 * 2^31 s is 2^31 steps of 60 s: it used to wrap to a length of 0 (reward -inf) or below.
    lines = [swf_line(1, 0, 60, 2), swf_line(2, 60, 60 * 2**31, 2), swf_line(3, 120, 60 * 2**31 + 60, 2)]
    path = write(tmp_path, lines)
    with pytest.raises(ValueError, match=r"t\.swf:2: field 4 \(run_time\) .* 2147483648 steps .*max_job_length"):
        SWFWorkload(path).load(num_processors=8)
    jobs = SWFWorkload(path, max_job_length=100).load(num_processors=8)
    assert jobs.length.tolist() == [1, 100, 100] and jobs.report["length_clipped"] == 2
    # and the env built from the clipped trace stays inside its observation space
    env = gym.make("sysgym/DeepRM-Compact-v0", workload=SWFWorkload(path, max_job_length=100),
                   num_processors=8, trace_start="first")
    obs, info = env.reset(seed=0)
    for _ in range(20):
        obs, reward, term, trunc, info = env.step(0 if info["action_mask"][0] else 10)
        assert env.observation_space.contains(obs) and np.isfinite(reward)


def test_a_job_of_1e10_seconds_is_an_error_not_gigabytes(tmp_path):
    path = write(tmp_path, [swf_line(1, 0, 60, 2), swf_line(2, 0, 1e10, 2)])
    with pytest.raises(ValueError, match=r"t\.swf:2: field 4 \(run_time\).*steps"):
        gym.make("sysgym/DeepRM-v0", workload=str(path), num_processors=8)


def test_byte_order_mark_and_non_utf8(tmp_path):
    path = tmp_path / "bom.swf"
    path.write_bytes(b"\xef\xbb\xbf" + (swf_line(1, 0, 60, 2) + "\n" + swf_line(2, 60, 120, 3) + "\n").encode())
    rows, lines = parse_swf(path)
    assert rows.shape == (2, 18) and lines.tolist() == [1, 2] and rows[1, 3] == 120
    path.write_bytes(b"; comment\n" + swf_line(1, 0, 60, 2).encode() + b"\n\xff\xfe 1 2\n")
    with pytest.raises(ValueError, match=r"bom\.swf:3: not UTF-8"):
        parse_swf(path)


def test_fractional_processors_are_rounded_up_and_counted(tmp_path):
    jobs = SWFWorkload(write(tmp_path, [swf_line(1, 0, 60, 2.5), swf_line(2, 0, 60, 3)])).load(num_processors=8)
    assert jobs.size[:, 0].tolist() == [3, 3] and jobs.report["size_rounded_up"] == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"time_unit": float("nan")}, "time_unit"), ({"time_unit": float("inf")}, "time_unit"),
    ({"time_unit": 0.0}, "time_unit"), ({"time_unit": 1e-9}, "time_unit"),
    ({"offset": -1}, "offset"), ({"offset": float("nan")}, "offset"), ({"offset": 1.5}, "offset"),
    ({"offset": True}, "offset"), ({"length": 0}, "length"), ({"length": float("nan")}, "length"),
    ({"max_job_length": float("nan")}, "max_job_length"), ({"max_job_length": 2**40}, "max_job_length"),
    ({"max_job_length": 0}, "max_job_length"),
])
def test_swf_workload_fields_have_ranges(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=f"SWFWorkload.{match}"):
        SWFWorkload(write(tmp_path, [swf_line(1, 0, 60, 2)]), **kwargs)
    with pytest.raises(ValueError, match="path"):
        SWFWorkload(42)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        parse_swf(tmp_path / "nope.swf")
    with pytest.raises(ValueError, match="no job lines"):
        parse_swf(write(tmp_path, ["; only a comment", ""]))


def test_workload_paths_must_be_regular_files(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        gym.make("sysgym/DeepRM-v0", workload=str(tmp_path))
    link = tmp_path / "gone.swf"
    link.symlink_to(tmp_path / "missing.swf")
    with pytest.raises(FileNotFoundError, match="dangling symbolic link"):
        gym.make("sysgym/DeepRM-v0", workload=link)


def test_cleaning_rules_are_applied_and_counted(tmp_path):
    lines = [
        swf_line(1, 0, 120, 4),                      # kept as is: 2 steps of 60 s
        swf_line(2, 10, 61, 3, req_procs=-1),       # size from allocated; 61 s -> 2 steps
        swf_line(3, 20, -1, 2),                      # cancelled: dropped (runtime)
        swf_line(4, 30, 60, -1, req_procs=-1),      # no size at all: dropped (size)
        swf_line(5, 40, 600, 50),                    # 50 procs on 8: clipped; 10 steps
        swf_line(6, 5, 60, 1),                       # out of order: sorted before job 2
    ]
    jobs = SWFWorkload(write(tmp_path, lines), time_unit=60.0, max_job_length=8).load(num_processors=8)
    r = jobs.report
    assert r["dropped_nonpositive_runtime"] == 1 and r["dropped_nonpositive_size"] == 1
    assert r["size_from_allocated"] == 1 and r["size_clipped"] == 1 and r["length_clipped"] == 1
    assert r["requested_time_from_runtime"] == 6 and r["reordered"] > 0
    assert r["jobs_used"] == 4 == len(jobs)
    # order after sorting by submit: jobs 1 (t=0), 6 (t=5), 2 (t=10), 5 (t=40)
    assert jobs.submit.tolist() == [0, 0, 0, 0]       # all within the first 60 s step
    assert jobs.length.tolist() == [2, 1, 2, 8]       # ceil(s / 60), job 5 clipped from 10 to 8
    assert jobs.size[:, 0].tolist() == [4, 1, 3, 8]


def test_offset_and_length_select_a_window(tmp_path):
    lines = [swf_line(i + 1, 60 * i, 60, 1) for i in range(10)]
    jobs = SWFWorkload(write(tmp_path, lines), offset=3, length=4).load(num_processors=4)
    assert len(jobs) == 4 and jobs.submit.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no jobs left"):
        SWFWorkload(write(tmp_path, lines), offset=10).load(num_processors=4)


def test_trace_replay_submits_the_trace_jobs_in_order(tmp_path):
    # Three jobs at steps 0, 2, 2 on a 4-processor cluster; FCFS-first-fit replays them exactly.
    lines = [swf_line(1, 0, 180, 4), swf_line(2, 120, 60, 2), swf_line(3, 150, 60, 2)]
    env = gym.make("sysgym/DeepRM-v0", workload=str(write(tmp_path, lines)), num_processors=4,
                   trace_start="first", episode_length=10)
    obs, info = env.reset(seed=0)
    window = env.unwrapped.batched.window_jobs()
    assert window["present"][0].tolist()[:2] == [True, False]
    assert window["length"][0, 0] == 3 and window["size"][0, 0, 0] == 4
    obs, *_ = env.step(0)          # allocate job 1 (runs steps 0..2)
    obs, *_ = env.step(10)         # void: t=1
    obs, *_ = env.step(10)         # void: t=2, jobs 2 and 3 arrive; cluster still full
    window = env.unwrapped.batched.window_jobs()
    assert window["present"][0, :2].all() and not window["fits"][0, :2].any()
    obs, r, term, trunc, info = env.step(10)   # t=3: job 1 done, both fit
    assert info["action_mask"][:2].tolist() == [1, 1]
    env.step(0)
    env.step(0)
    while not (term or trunc):
        obs, r, term, trunc, info = env.step(10)
    m = info["episode_metrics"]
    assert m["jobs_finished"] == 3 and m["jobs_dropped"] == 0
    # slowdowns: job 1: 3/3, jobs 2 and 3: (4 - 2) / 1 each -> mean 5/3; waits 0, 1, 1
    assert m["mean_slowdown"] == pytest.approx(5 / 3)
    assert m["mean_wait"] == pytest.approx(2 / 3)


def test_random_trace_start_depends_on_seed(tmp_path):
    path = generate_swf(tmp_path / "g.swf", num_jobs=300, num_processors=8, seed=1)
    env = gym.make("sysgym/DeepRM-Compact-v0", workload=str(path), num_processors=8, max_job_size=8)
    starts = set()
    for seed in range(8):
        env.reset(seed=seed)
        starts.add(int(env.unwrapped.batched._state["trace_base"][0]))
    assert len(starts) > 4


def test_swf_rejects_multi_resource_and_oversized_jobs(tmp_path):
    path = generate_swf(tmp_path / "g.swf", num_jobs=50, num_processors=8, seed=1)
    with pytest.raises(ValueError, match="num_resources=1"):
        gym.make("sysgym/DeepRM-v0", workload=str(path), num_processors=8, num_resources=2)
    with pytest.raises(ValueError, match="max_job_size"):
        gym.make("sysgym/DeepRM-v0", workload=str(path), num_processors=8, max_job_size=2)
    with pytest.raises(ValueError, match="trace_start"):
        gym.make("sysgym/DeepRM-v0", workload=str(path), num_processors=8, trace_start=10_000)


def test_shipped_synthetic_traces_load_and_run():
    for name, procs in (("synthetic_64.swf", 64), ("synthetic_10.swf", 10)):
        env = gym.make("sysgym/DeepRM-Compact-v0", workload=str(trace_path("deeprm", name)),
                       num_processors=procs)
        report = env.unwrapped.config.trace.report
        dropped = report["dropped_nonpositive_runtime"] + report["dropped_nonpositive_size"]
        assert report["jobs_used"] + dropped == report["lines_read"]   # nothing lost uncounted
        assert report["jobs_used"] > 0.9 * report["lines_read"]
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)


def test_generated_trace_follows_the_bimodal_distribution(tmp_path):
    path = generate_swf(tmp_path / "g.swf", num_jobs=4000, num_processors=20, max_job_length=15,
                        seed=3, time_unit=60.0)
    jobs = SWFWorkload(path, time_unit=60.0).load(num_processors=20)
    lengths = jobs.length
    small = np.mean(lengths <= 3)
    assert 0.75 < small < 0.85                       # 80% small jobs of length 1..3
    assert set(np.unique(lengths)) <= set(range(1, 4)) | set(range(10, 16))
    assert jobs.size.min() >= 10 and jobs.size.max() <= 20


def test_random_swf_files_give_an_error_or_a_valid_env():
    """Hypothesis: random bytes and random numeric fields (run in a fresh process)."""
    counts = json.loads(run_isolated("from tests.deeprm.fuzzing import fuzz_swf; fuzz_swf(150)"))
    assert counts["fields_loaded"] > 0 and counts["refused"] > 0
