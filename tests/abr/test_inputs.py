"""Traces and videos load from documented files; bad input is a clear error naming file and line."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.abr import AbrEnv, load_video
from sysgym.envs.abr.config import build_config


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _video_dir(tmp_path, rows):
    for level, row in enumerate(rows):
        _write(tmp_path / "video" / f"video_size_{level}", "\n".join(str(v) for v in row) + "\n")
    return tmp_path / "video"


def test_cooked_and_mahimahi_traces_are_detected(tmp_path):
    cooked = _write(tmp_path / "traces" / "a_cooked", "0.0\t2.0\n1.0\t4.0\n2.0\t1.0\n")
    # Mahimahi: 1500-byte delivery opportunities; 1000 per second = 12 Mbps in 500 ms bins
    _write(tmp_path / "traces" / "b_mahimahi", "\n".join(str(ms) for ms in range(0, 2000)) + "\n")
    cfg = build_config(traces=tmp_path / "traces")
    assert [tr.name for tr in cfg.traces] == ["a_cooked", "b_mahimahi"]
    np.testing.assert_allclose(cfg.traces[1].mbps[:4], 12.0)
    assert build_config(traces=[cooked]).num_traces == 1
    with pytest.raises(ValueError, match="timestamp"):
        build_config(traces=[cooked], trace_format="mahimahi")


@pytest.mark.parametrize("text, message", [
    ("", "empty trace"),
    ("0.0 1.0\n2.0 1.0\n1.0 1.0\n", r":3: field 1 \(time_s\) goes backwards"),
    ("0.0 1.0\n1.0 -2.0\n", r":2: field 2 \(Mbps\) must be >= 0"),
    ("0.0 1.0\n1.0 fast\n", r":2: field 2 \(Mbps\) is not a number"),
    ("0.0 1.0\n1.0 1e308\n", r":2: field 2 \(Mbps\) must be <= 1e\+06"),
    ("0.0 1.0\n1.0 nan\n", r":2: field 2 \(Mbps\) is not finite"),
    ("0.0 1.0\n1e300 1.0\n", r":2: field 1 \(time_s\) must be <= 1e\+07"),
    ("0.0 1.0\n1.0 2.0 3.0\n", r":2: expected 2 field\(s\) \(time_s Mbps\), found 3"),
    ("0.0 1.0\n1.0\n", r":2: expected 2 field\(s\) \(time_s Mbps\), found 1"),
    ("0.0 1.0 7\n1.0 2.0\n", r":1: expected 2 fields \(time_s Mbps: cooked\) or 1 field"),
])
def test_bad_traces_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path / "bad_trace", text)
    with pytest.raises(ValueError, match=message) as err:
        AbrEnv(traces=[path])
    assert str(path) in str(err.value)


def test_a_trace_that_delivers_nothing_under_rate_at_is_refused(tmp_path):
    # the only positive sample is the first one: "start" uses it over [0, 1), "end" never does
    path = _write(tmp_path / "early", "0.0 3.0\n1.0 0.0\n2.0 0.0\n")
    assert AbrEnv(traces=[path], rate_at="start").config.num_traces == 1
    with pytest.raises(ValueError, match="early: no segment delivers any bytes under rate_at='end'"):
        AbrEnv(traces=[path], rate_at="end")
    with pytest.raises(ValueError, match="dead: the trace carries no data"):
        AbrEnv(traces=[_write(tmp_path / "dead", "0.0 0.0\n1.0 0.0\n")])


def test_missing_paths_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        AbrEnv(traces=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="video directory"):
        AbrEnv(video=tmp_path / "novideo")


def test_video_directory_loads_and_bad_files_name_file_and_line(tmp_path):
    rows = [[100 * (level + 1) + c for c in range(5)] for level in range(6)]
    video = _video_dir(tmp_path, rows)
    np.testing.assert_array_equal(load_video(video), rows)
    assert AbrEnv(video=video).config.num_chunks == 5
    _write(video / "video_size_3", "400\n401\nbig\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: field 1 \(chunk_bytes\) is not a number"):
        load_video(video)
    _write(video / "video_size_3", "400\n401\n-5\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: field 1 \(chunk_bytes\) must be >= 1"):
        load_video(video)
    _write(video / "video_size_3", "400\n401\n402.5\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: field 1 \(chunk_bytes\) must be a whole number"):
        load_video(video)
    _write(video / "video_size_3", f"400\n401\n{2**63 - 1}\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: field 1 \(chunk_bytes\) must be <= 1e\+12"):
        load_video(video)
    _write(video / "video_size_3", f"400\n401\n{2**64}\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: field 1 \(chunk_bytes\) must be <= 1e\+12"):
        load_video(video)
    _write(video / "video_size_3", "400\n401\n402 7\n403\n404\n")
    with pytest.raises(ValueError, match=r"video_size_3:3: expected 1 field\(s\) \(chunk_bytes\), found 2"):
        load_video(video)
    _write(video / "video_size_3", "400\n401\n")
    with pytest.raises(ValueError, match="different numbers of chunks"):
        load_video(video)
    (video / "video_size_3").unlink()
    with pytest.raises(FileNotFoundError, match="video_size_3"):
        AbrEnv(video=video)   # the 6-level ladder needs levels 0..5


def test_video_arrays_are_checked():
    with pytest.raises(ValueError, match="shape"):
        AbrEnv(video=np.ones((5, 10)))
    with pytest.raises(ValueError, match="chunk 2 of level 1 has size 0"):
        sizes = np.ones((6, 10))
        sizes[1, 2] = 0
        AbrEnv(video=sizes)
    for bad in (np.full((6, 10), 2.0**63 - 1), np.full((6, 10), np.nan), np.full((6, 10), np.inf)):
        with pytest.raises(ValueError, match=r"must be in \[1, 1e\+12\] bytes"):
            AbrEnv(video=bad)
    with pytest.raises(ValueError, match="numbers"):
        AbrEnv(video=np.full((6, 10), 2**70, dtype=object))
    with pytest.raises(ValueError, match="shape"):
        AbrEnv(video=np.ones((6, 70_000)))


@pytest.mark.parametrize("kwargs", [
    {"trace_order": "shuffled"}, {"rate_at": "middle"}, {"qoe": "quadratic"}, {"history": 4},
    {"initial_level": 6}, {"initial_level": True}, {"buffer_cap_s": 2.0}, {"noise_range": (1.1, 0.9)},
    {"bitrates_kbps": [300, 300]}, {"chunk_s": 0}, {"payload_portion": 1.5}, {"rtt_s": -0.1},
    {"noise": "yes"}, {"num_chunks": 0}, {"traces": 3}, {"pensieve_compatible": "yes"},
    {"video_seed": -1}, {"smoothness_penalty": float("nan")},
])
def test_bad_kwargs_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        AbrEnv(**kwargs)


def test_a_huge_mahimahi_timestamp_is_refused_before_allocating(tmp_path):
    # 1e15 ms in 500 ms bins would be 2e12 bins (14.6 TiB of counts)
    path = _write(tmp_path / "mm", "0\n5\n1000000000000000\n")
    with pytest.raises(ValueError, match=r"mm:3: field 1 \(timestamp_ms\) must be <= 1e\+10"):
        AbrEnv(traces=[path])
    path = _write(tmp_path / "mm", "0\n5\n9000000000\n")       # in range, but 18 million bins
    with pytest.raises(ValueError, match=r"mm:3: field 1 \(timestamp_ms\) = 9000000000 needs 18000001 bins"):
        AbrEnv(traces=[path])
    path = _write(tmp_path / "mm", "0\n1e300\n")
    with pytest.raises(ValueError, match=r"mm:2: field 1 \(timestamp_ms\) must be <= 1e\+10"):
        AbrEnv(traces=[path])
    path = _write(tmp_path / "mm", "0\n10.5\n")
    with pytest.raises(ValueError, match=r"mm:2: field 1 \(timestamp_ms\) must be a whole number"):
        AbrEnv(traces=[path], trace_format="mahimahi")
    path = _write(tmp_path / "mm", "0\n10 20\n")
    with pytest.raises(ValueError, match=r"mm:2: expected 1 field\(s\) \(timestamp_ms\), found 2"):
        AbrEnv(traces=[path], trace_format="mahimahi")


def test_a_trace_folder_refuses_dangling_links_and_subfolders(tmp_path):
    folder = tmp_path / "traces"
    _write(folder / "a", "0 1\n1 1\n")
    _write(folder / ".hidden", "not a trace")           # hidden files are skipped, as documented
    assert AbrEnv(traces=folder).config.num_traces == 1
    (folder / "b").symlink_to(tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="dangling"):
        AbrEnv(traces=folder)
    (folder / "b").unlink()
    (folder / "sub").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        AbrEnv(traces=folder)


def test_text_encoding_and_limits_are_checked(tmp_path, monkeypatch):
    from sysgym.envs import bandwidth

    binary = tmp_path / "bin"
    binary.write_bytes(b"0 1\n\xff\xfe 1\n")
    with pytest.raises(ValueError, match=r"bin:2: not UTF-8"):
        AbrEnv(traces=[binary])
    bom = tmp_path / "bom"
    bom.write_bytes("\ufeff0 1\n1 2\n".encode())
    assert AbrEnv(traces=[bom]).config.traces[0].mbps.tolist() == [1.0, 2.0]
    monkeypatch.setattr(bandwidth, "MAX_TRACE_POINTS", 3)
    with pytest.raises(ValueError, match=r"long:4: more than 3 samples"):
        bandwidth.read_cooked(_write(tmp_path / "long", "0 1\n1 1\n2 1\n3 1\n"))


def test_history_and_chunk_counts_are_capped():
    with pytest.raises(ValueError, match=r"history must be an integer in \[6, 1024\]"):
        AbrEnv(history=10**7)
    with pytest.raises(ValueError, match="num_chunks"):
        AbrEnv(num_chunks=10**6)
