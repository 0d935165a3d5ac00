"""``sysgym train`` writes learning_curve.png from its episodes.csv."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.agents.ppo.curves import plot_learning_curve, read_episode_returns, rolling_mean
from sysgym.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_rolling_mean_worked_by_hand():
    assert rolling_mean(np.array([1.0, 2.0, 3.0, 4.0]), window=2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert rolling_mean(np.array([4.0, 0.0, 2.0]), window=10).tolist() == [4.0, 2.0, 2.0]


def test_curve_from_a_hand_made_episodes_file(tmp_path):
    (tmp_path / "episodes.csv").write_text("global_step,return,length\n10,-5,3\n20,-4,3\n30,-1.5,3\n")
    steps, returns = read_episode_returns(tmp_path / "episodes.csv")
    assert steps.tolist() == [10.0, 20.0, 30.0] and returns.tolist() == [-5.0, -4.0, -1.5]
    path = plot_learning_curve(tmp_path, title="t")
    assert path == tmp_path / "learning_curve.png"
    assert path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.csv", "learning_curve.png"]  # no temp file left


def test_no_finished_episode_draws_nothing(tmp_path):
    (tmp_path / "episodes.csv").write_text("global_step,return,length\n")
    assert plot_learning_curve(tmp_path) is None
    assert plot_learning_curve(tmp_path / "missing") is None


def test_a_bad_row_names_its_line(tmp_path):
    (tmp_path / "episodes.csv").write_text("global_step,return\n10,-5\n20,nan\n")
    with pytest.raises(ValueError, match=r"episodes\.csv:3: .* finite"):
        read_episode_returns(tmp_path / "episodes.csv")


def test_train_command_writes_the_learning_curve(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--env", "sysgym/Appointments-P1-v0", "--steps", "2000", "--out", str(out),
                 "progress=false", "tensorboard=false"])
    assert code == 0
    assert (out / "learning_curve.png").read_bytes()[:8] == PNG
    assert f"learning curve: {out / 'learning_curve.png'}" in capsys.readouterr().out
