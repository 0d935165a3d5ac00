"""``sysgym distill`` end to end on small budgets (through the module the CLI calls)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.distill import load_student
from sysgym.agents.distill.commands import add_arguments, parse_env_overrides, run_distill

SMALL = ["--iterations", "2", "--samples", "200", "--num-envs", "4", "--eval-episodes", "2",
         "--fidelity-samples", "100", "--latency-decisions", "20", "--no-progress"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run_distill(parser.parse_args(argv))


def test_distill_heuristic_on_deeprm_writes_every_file(tmp_path, capsys):
    out = tmp_path / "sjf"
    assert run(["--teacher", "heuristic:sjf", "--env", "sysgym/DeepRM-Compact-v0", "--student", "cart",
                "--max-depth", "2", "--critical", "0.5", "--horizon", "4", "--out", str(out), *SMALL,
                "env.scenario=3"]) == 0
    for name in ("tree.txt", "tree.dot", "tree.png", "tree.json", "iterations.csv", "report.md"):
        assert (out / name).is_file(), name
    policy = load_student(out / "tree.json")
    assert policy.meta["env_kwargs"] == {"scenario": 3} and policy.meta["teacher"] == "heuristic:sjf"
    printed = capsys.readouterr().out
    for row in ("mean return", "mean mean_slowdown", "fidelity", "critical states", "size", "decision latency"):
        assert row in printed
    assert (out / "report.md").read_text().count("\n|") >= 7


def test_distill_oracle_into_rules_on_appointments(tmp_path, capsys):
    pytest.importorskip("sysgym.envs.appointments")
    out = tmp_path / "p1"
    assert run(["--teacher", "oracle", "--env", "sysgym/Appointments-P1-v0", "--student", "rules",
                "--literals", "2", "--weighting", "viper", "--out", str(out), *SMALL]) == 0
    policy = load_student(out / "rule.json")
    assert policy.model.n_literals <= 2
    assert "percentile_efficacy" in capsys.readouterr().out


def test_distill_input_errors_are_value_errors(tmp_path):
    base = ["--env", "sysgym/DeepRM-Compact-v0", "--out", str(tmp_path / "x"), *SMALL]
    with pytest.raises(ValueError, match="has no heuristic 'nope'"):
        run(["--teacher", "heuristic:nope", *base])
    with pytest.raises(ValueError, match="two actions"):
        run(["--teacher", "heuristic:sjf", "--student", "rules", *base])
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        run(["--teacher", str(tmp_path / "missing_run"), *base])
    with pytest.raises(ValueError, match="appointment"):
        run(["--teacher", "oracle", *base])
    with pytest.raises(ValueError, match="env.key=value"):
        run(["--teacher", "heuristic:sjf", *base, "scenario=3"])
    with pytest.raises(ValueError, match="fraction"):
        run(["--teacher", "heuristic:sjf", "--critical", "1.5", *base])


def test_env_overrides_parse_literals():
    assert parse_env_overrides(["env.scenario=5", "env.workload=traces/a.swf", "env.noise=0.1", "env.flag=true"]) \
        == {"scenario": 5, "workload": "traces/a.swf", "noise": 0.1, "flag": True}
    assert np.isclose(parse_env_overrides(["env.alpha=0.75"])["alpha"], 0.75)
