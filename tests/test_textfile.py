"""The shared reader of text inputs: file checks, strict UTF-8, exact numbers with ranges."""

from __future__ import annotations

import os

import pytest

from sysgym.envs.textfile import (
    data_lines,
    existing_file,
    expect_fields,
    folder_files,
    number_field,
)


def test_whole_numbers_are_exact_and_ranged(tmp_path):
    p = tmp_path / "f"
    assert number_field(p, 1, 1, "n", str(2**60 + 1), hi=2**62, integral=True) == 2**60 + 1
    assert number_field(p, 1, 1, "n", "3.0", integral=True) == 3
    with pytest.raises(ValueError, match=r"f:1: field 1 \(n\) must be <="):
        number_field(p, 1, 1, "n", str(2**63), hi=2**62, integral=True)
    with pytest.raises(ValueError, match="whole number"):
        number_field(p, 1, 1, "n", "2.5", integral=True)
    with pytest.raises(ValueError, match="too many digits"):
        number_field(p, 1, 1, "n", "9" * 5000, integral=True)
    with pytest.raises(ValueError, match="not finite"):
        number_field(p, 2, 3, "x", "nan")
    with pytest.raises(ValueError, match=r"f:2: field 3 \(x\) must be >= 0"):
        number_field(p, 2, 3, "x", "-1e-9", lo=0.0)


def test_utf8_bom_comments_and_field_counts(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("\ufeff# comment\n\n1 2\n3 4 5\n".encode())
    lines = list(data_lines(existing_file(p, "trace")))
    assert lines == [(3, ["1", "2"]), (4, ["3", "4", "5"])]
    expect_fields(p, 3, lines[0][1], ("a", "b"))
    with pytest.raises(ValueError, match=r"t.txt:4: expected 2 field\(s\) \(a b\), found 3"):
        expect_fields(p, 4, lines[1][1], ("a", "b"))
    p.write_bytes(b"1 2\n\xff\xfe 3\n")
    with pytest.raises(ValueError, match=r"t.txt:2: not UTF-8 text"):
        list(data_lines(p))


def test_files_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="trace not found"):
        existing_file(tmp_path / "missing", "trace")
    with pytest.raises(ValueError, match="not a regular file"):
        existing_file(tmp_path, "trace")
    (tmp_path / "a").write_text("1 2\n")
    (tmp_path / ".hidden").write_text("x")
    os.symlink(tmp_path / "nowhere", tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="dangling symbolic link"):
        folder_files(tmp_path, "trace")
    (tmp_path / "b").unlink()
    assert [f.name for f in folder_files(tmp_path, "trace")] == ["a"]
