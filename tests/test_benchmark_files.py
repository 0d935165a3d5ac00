"""Issue #20 for ``sysgym benchmark`` and ``sysgym bench``: every file the benchmark reads back
(reference rows, saved episodes, checkpoints, SB3 zips) is bounded and checked, and refused with
one line; ``bench`` refuses step counts that give no (or a negative) rate."""

import json
import re
import zipfile

import pytest

from sysgym.agents import serialization
from sysgym.benchmark import baselines
from sysgym.benchmark.commands import main
from sysgym.cli import main as cli_main
from tests.isolation import run_isolated


def _one_line_error(capsys, *args):
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sysgym benchmark: error:"), err
    return err[0]


# ------------------------------------------------------------------------------ sysgym bench
@pytest.mark.parametrize("args, expected", [
    (["--steps", "-5"], "argument --steps: must be between 1 and"),
    (["--steps", "0"], "argument --steps: must be between 1 and"),
    (["--calls", "0"], "argument --calls: must be between 1 and"),
    (["--num-envs", "0"], "argument --num-envs: must be between 1 and"),
    (["--num-envs", str(10**9)], "argument --num-envs: must be between 1 and"),
    (["--steps", str(10**12)], "argument --steps: must be between 1 and"),
    (["--steps", "many"], "argument --steps: expected an integer"),
])
def test_bench_refuses_counts_that_give_no_rate(args, expected, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["bench", "--env", "sysgym/ABR-v0", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and not capsys.readouterr().out


# ------------------------------------------------------------------------------ reference.json
def test_a_damaged_reference_file_is_refused_naming_it(tmp_path):
    good = json.loads(baselines.FILE.read_text())
    entry = good["suites"]["dag"]["cases"]["n20"]
    for bad, expected in (
            ("[" * 50_000 + "]" * 50_000, "JSON nested"),
            (json.dumps({"format": "other"}), "not a sysgym benchmark reference file"),
            (json.dumps({**good, "suites": {"dag": {"cases": {"n20": {**entry, "env_id": "os:sysgym/DAG-EGS-v0"}}}}}),
             "suites.dag.cases.n20: env_id 'os:sysgym/DAG-EGS-v0' is not a registered"),
            (json.dumps({**good, "suites": {"dag": {"cases": {"n20": {**entry, "episodes": "50"}}}}}),
             "needs 'hash' (string), 'episodes' (integer)")):
        path = tmp_path / "reference.json"
        path.write_text(bad)
        with pytest.raises(ValueError, match=re.escape(expected)) as error:
            baselines.load(path)
        assert str(path) in str(error.value)


# ------------------------------------------------------------------------------ episodes.json
@pytest.mark.parametrize("edit, expected", [
    (lambda d: {**d, "units": [{**d["units"][0], "env_id": "this:sysgym/Appointments-P1-v0"}]},
     "env_id 'this:sysgym/Appointments-P1-v0' is not a registered"),
    (lambda d: {**d, "units": [{**d["units"][0], "stop": d["units"][0]["stop"] + 1}]}, "must be 3 finite numbers"),
    (lambda d: {**d, "units": [{**d["units"][0], "start": -1}]}, "0 <= start < stop"),
    (lambda d: {**d, "units": "all"}, "field 'units' must be a list"),
    (lambda d: "[" * 10_000 + "]" * 10_000, "nested"),
])
def test_resume_refuses_a_damaged_episodes_file_with_one_line(tmp_path, capsys, edit, expected):
    out = tmp_path / "out"
    args = ["--policy", "heuristic:alternate", "--suite", "appointments", "--episodes", "2", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    capsys.readouterr()
    saved = json.loads((out / "episodes.json").read_text())
    assert len(saved["units"]) >= 3              # one per case (and the reference rows played here)
    changed = edit(saved)
    (out / "episodes.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    assert expected in _one_line_error(capsys, *args, "--resume")


# ------------------------------------------------------------------------------ policies
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sysgym.agents.ppo import train

    out = tmp_path_factory.mktemp("ppo")
    train("sysgym/Appointments-P1-v0", steps=128, out_dir=out / "run", num_envs=2, n_steps=64, batch_size=64,
          progress=False, tensorboard=False)
    return out / "run" / "checkpoint.pt"


def test_a_checkpoint_with_nan_weights_is_refused(checkpoint, tmp_path, capsys):
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    name = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][name][0] = float("nan")
    torch.save(payload, tmp_path / "nan.pt")
    line = _one_line_error(capsys, "--policy", str(tmp_path / "nan.pt"), "--suite", "appointments", "--episodes", "2")
    assert "nan.pt" in line and "non-finite" in line


def test_a_checkpoint_describing_a_huge_network_is_refused_before_it_is_built(checkpoint, tmp_path):
    """In a fresh interpreter limited to 2 GiB: building the 40000 x 40000 network would need 6.4 GB."""
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    config = json.loads(payload["config"])
    config["hidden_sizes"] = [40000, 40000]
    payload["config"] = json.dumps(config, sort_keys=True)
    torch.save(payload, tmp_path / "huge.pt")
    out = run_isolated("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
        from sysgym.benchmark.commands import main
        code = main(["--policy", sys.argv[1], "--suite", "appointments", "--episodes", "2", "--no-progress"])
        print("exit", code)
    """, str(tmp_path / "huge.pt"), timeout=120)
    assert "exit 2" in out


def test_sb3_zips_are_bounded_before_they_are_read(tmp_path, capsys, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data", b"{" + b" " * (17 * 2**20) + b"}")      # 17 MiB of JSON, 17 kB zipped
    assert bomb.stat().st_size < 2**20
    assert "'data' entry inflates to" in _one_line_error(capsys, "--policy", f"sb3:{bomb}", "--suite", "appointments")
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data", json.dumps({"policy_class": {"__module__": "x"}}))
        archive.writestr("policy.pth", b"\0" * 5000)
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 4000)                # as if it were a bomb
    assert "inflates to" in _one_line_error(capsys, "--policy", f"sb3:{small}", "--suite", "appointments")
    monkeypatch.undo()
    monkeypatch.setattr(serialization, "MAX_FILE_BYTES", 100)
    assert "is too large for a SB3 model zip" in _one_line_error(capsys, "--policy", f"sb3:{small}", "--suite", "appointments")


def test_a_nested_sb3_data_entry_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.zip"
    with zipfile.ZipFile(deep, "w") as archive:
        archive.writestr("data", "[" * 100_000 + "]" * 100_000)
    assert "nested" in _one_line_error(capsys, "--policy", f"sb3:{deep}", "--suite", "appointments")
