"""The parts of ``benchmarks/peers.py`` that work without any peer: arguments, skipping, the table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import peers as bp

NO_ENV: dict[str, str] = {}


def test_flags_give_absolute_paths_and_leave_the_rest_unset(tmp_path):
    args = bp.parse_args(["--pensieve", str(tmp_path), "--reps", "3", "--seconds", "0.5"], NO_ENV)
    assert args.paths["pensieve"] == tmp_path.resolve()
    assert {name for name, path in args.paths.items() if path is None} == \
        {"deeprm", "sched-rl-gym", "pcc-rl", "egs"}
    assert (args.reps, args.seconds, args.batch, args.cpu, args.clock) == (3, 0.5, 256, 0, "cpu")


def test_environment_variables_and_peers_dir_fill_in_and_flags_win(tmp_path):
    for name in ("deeprm", "PCC-RL"):
        (tmp_path / "clones" / name).mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    environ = {"SYSGYM_PEERS_DIR": str(tmp_path / "clones"), "SYSGYM_PEER_EGS": str(tmp_path / "mine"),
               "SYSGYM_PEER_PCC_RL": str(tmp_path / "mine")}
    args = bp.parse_args(["--deeprm", str(tmp_path / "mine")], environ)
    assert args.paths["deeprm"] == (tmp_path / "mine").resolve()           # the flag beats the folder
    assert args.paths["pcc-rl"] == (tmp_path / "mine").resolve()           # the variable beats the folder
    assert args.paths["egs"] == (tmp_path / "mine").resolve()
    assert args.paths["pensieve"] is None                                  # not in the folder: not given
    args = bp.parse_args(["--peers-dir", str(tmp_path / "clones")], NO_ENV)
    assert args.paths["pcc-rl"] == (tmp_path / "clones" / "PCC-RL").resolve()


@pytest.mark.parametrize("argv", [["--reps", "0"], ["--seconds", "0"], ["--batch", "0"], ["--only", "nope"]])
def test_bad_arguments_exit_like_argparse(argv, capsys):
    with pytest.raises(SystemExit) as info:
        bp.parse_args(argv, NO_ENV)
    assert info.value.code == 2


def test_no_peer_skips_every_row_without_measuring(tmp_path):
    missing = tmp_path / "not-there"
    args = bp.parse_args(["--egs", str(missing)], NO_ENV)
    lines: list[str] = []
    results = bp.run(args, out=lines.append)
    assert results.rates == {} and lines == []
    assert results.skipped["egs"] == f"{missing.resolve()} is not a folder"
    assert results.skipped["deeprm"] == "no path given (--deeprm or SYSGYM_PEER_DEEPRM)"
    table = bp.report(results, bp.selected(args), args.batch)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "skipped:" in line]
    assert len(rows) == len(bp.COMPARISONS) and "\n|-" in table
    assert "skipped: no path given (--pcc-rl or SYSGYM_PEER_PCC_RL)" in table


def test_main_in_quick_mode_prints_the_skip_table(monkeypatch, capsys):
    for peer in bp.PEERS:
        monkeypatch.delenv(peer.env_var, raising=False)
    monkeypatch.delenv(bp.PEERS_DIR_VAR, raising=False)
    bp.main(quick=True)
    out = capsys.readouterr().out
    assert "\n|-" in out and out.count("skipped: no path given") == len(bp.COMPARISONS)


def test_ratios_are_medians_of_per_repetition_ratios():
    assert bp.median_ratio([10, 30, 100], [1, 2, 4]) == (15.0, 10.0, 25.0)
    assert all(math.isnan(x) for x in bp.median_ratio([], []))
    assert bp.format_ratio(137.6, 121.2, 150.4) == "138× (121–150)"
    assert bp.format_ratio(0.41, 0.41, 0.41) == "0.4×"
    assert bp.format_ratio(1356.0, 1200.0, 1400.0) == "1,356× (1,200–1,400)"
    assert bp.format_ratio(math.nan, math.nan, math.nan) == "n/a"


def test_report_rows_for_measured_and_failed_peers():
    pcc = next(c for c in bp.COMPARISONS if c.peer == "pcc-rl")
    egs = next(c for c in bp.COMPARISONS if c.peer == "egs")
    results = bp.Results()
    for peer, single, vector in ((250.0, 4_000.0, 80_000.0), (300.0, 3_000.0, 90_000.0)):
        results.add(pcc.peer_key, int(peer), 1.0)
        results.add(f"{pcc.sysgym_key}/single", int(single), 1.0)
        results.add(f"{pcc.sysgym_key}/B256", int(vector), 1.0)
    results.failed[egs.peer_key] = "ImportError: no scipy"
    table = bp.report(results, [pcc, egs], 256)
    pcc_row = next(line for line in table.splitlines() if pcc.label in line)
    cells = [cell.strip() for cell in pcc_row.strip("|").split("|")]
    assert cells == ["1", pcc.label, pcc.sysgym_label, "275", "3.50 k", "13× (10–16)", "85.00 k",
                     "310× (300–320)"]
    assert "not run: ImportError: no scipy" in table
    assert "1: 550 / 7,000 / 170,000" in table           # env-steps timed: peer / single / B=256
    assert bp.WORKLOADS["cc"] in table and bp.WORKLOADS["dag"] in table


def test_py2_int_floors_and_stays_py2(tmp_path):
    n = bp._Py2Int(7)
    n += 1
    n -= 3
    assert isinstance(n, bp._Py2Int) and n == 5 and n / 2 == 2 and [0, 1, 2][: n / 2] == [0, 1]


def test_git_commit_reads_loose_and_packed_refs(tmp_path):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/master\n")
    (git / "packed-refs").write_text("# pack-refs\n" + "a" * 40 + " refs/heads/master\n")
    assert bp._git_commit(tmp_path) == "a" * 40
    (git / "refs" / "heads" / "master").write_text("b" * 40 + "\n")
    assert bp._git_commit(tmp_path) == "b" * 40
    assert bp._git_commit(Path(tmp_path / "elsewhere")) is None
