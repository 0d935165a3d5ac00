"""Issue #20 for CrystalBox: model files and ``sysgym explain`` refuse what could import code,
allocate gigabytes or hide NaN, check ``--out`` first, and stop cleanly on Ctrl-C / SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import sysgym  # noqa: F401
from sysgym.agents import serialization
from sysgym.agents.crystalbox import CrystalBox, model, predictor
from sysgym.agents.heuristics import heuristics_for
from sysgym.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = "sysgym/Appointments-P1-v0"
TINY = {"hidden": 64, "tail_hidden": 64, "epochs": 2}
EVIL = "evilmod"   # a module that, if imported, leaves a marker file


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    box, _ = CrystalBox.fit(heuristics_for(ENV)["p1_rule"], ENV, states=12, num_envs=4, warmup=1, every=2,
                            predictor=TINY, seed=0)
    return box.save(tmp_path_factory.mktemp("model") / "crystalbox.pt")


def rewrite(source: Path, target: Path, edit) -> Path:
    """A copy of a model file with its payload changed by ``edit(payload)``."""
    payload = torch.load(source, weights_only=True)
    edit(payload)
    torch.save(payload, target)
    return target


def set_meta(key: str, value):
    def edit(payload):
        meta = serialization.loads(payload["meta"])
        meta[key] = value
        payload["meta"] = serialization.dumps(meta)
    return edit


def evil_module(folder: Path) -> Path:
    """``evilmod.py`` in ``folder``: importing it writes ``imported.txt`` beside it."""
    marker = folder / "imported.txt"
    (folder / f"{EVIL}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    return marker


# ---------------------------------------------------------------------------------- model files

@pytest.mark.parametrize("env_id, message", [(f"{EVIL}:{ENV}", "not a registered sysgym environment"),
                                             ("sysgym/Nope-v0", "not a registered sysgym environment"),
                                             (7, "env_id must be a string")])
def test_a_model_file_naming_an_unregistered_env_is_refused(saved, tmp_path, env_id, message):
    bad = rewrite(saved, tmp_path / "bad.pt", set_meta("env_id", env_id))
    with pytest.raises(ValueError, match=message) as error:
        CrystalBox.load(bad)
    assert str(error.value).startswith(str(bad)) and "\n" not in str(error.value)


def test_a_model_file_with_non_finite_weights_is_refused(saved, tmp_path):
    def poison(payload):
        name = next(k for k, v in payload["model"].items() if v.is_floating_point() and v.numel() > 1)
        payload["model"][name].view(-1)[1] = float("nan")

    bad = rewrite(saved, tmp_path / "nan.pt", poison)
    with pytest.raises(ValueError, match="non-finite"):
        CrystalBox.load(bad)
    CrystalBox.load(saved)   # the untouched file loads


def test_parameter_count_matches_the_network_torch_builds():
    for discrete, width in ((True, 7), (False, 2)):
        for layers in (1, 3):
            config = predictor.PredictorConfig(hidden=128, tail_hidden=64, layers=layers)
            net = predictor.ReturnNetwork(11, width, discrete, 3, config)
            assert predictor.parameter_count(11, width, 3, config) == sum(p.numel() for p in net.parameters())


def test_sizes_read_from_a_file_are_bounded_before_the_network_is_built(saved, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the network was built before its size was checked")

    monkeypatch.setattr(serialization, "MAX_PARAMETERS", 1000)
    monkeypatch.setattr(model, "ReturnNetwork", never)
    with pytest.raises(ValueError, match="parameters"):
        CrystalBox.load(saved)
    monkeypatch.undo()

    def settings(key, value):
        def edit(payload):
            data = serialization.loads(payload["settings"])
            data[key] = value
            payload["settings"] = serialization.dumps(data)
        return edit

    for value in (10**9, -3, "12", 2.5):
        bad = rewrite(saved, tmp_path / "size.pt", settings("in_features", value))
        with pytest.raises(ValueError, match="in_features|parameters"):
            CrystalBox.load(bad)


def test_fitting_refuses_a_predictor_too_large_to_allocate(monkeypatch):
    monkeypatch.setattr(serialization, "MAX_PARAMETERS", 1000)
    with pytest.raises(ValueError, match="parameters"):
        CrystalBox.fit(heuristics_for(ENV)["p1_rule"], ENV, states=4, num_envs=2, warmup=1, every=2,
                       predictor=TINY, seed=0)


def test_a_non_finite_training_loss_stops_with_the_setting_to_lower(monkeypatch):
    monkeypatch.setattr(predictor, "gaussian_nll", lambda mean, std, y, beta=0.0: (mean * float("nan")).sum())
    with pytest.raises(ValueError, match=r"non-finite .* lower lr"):
        CrystalBox.fit(heuristics_for(ENV)["p1_rule"], ENV, states=8, num_envs=2, warmup=1, every=2,
                       predictor=TINY, seed=0)


# ---------------------------------------------------------------------------------- sysgym explain

def explain_args(out: Path, *extra: str) -> list[str]:
    return ["explain", "--policy", "heuristic:p1_rule", "--env", ENV, "--episodes", "1", "--states", "1",
            "--epochs", "1", "--hidden", "64", "--out", str(out), *extra]


def test_a_checkpoint_naming_an_unregistered_env_is_refused_before_any_make(tmp_path, monkeypatch, capsys):
    from sysgym.agents.ppo import ActorCritic, default_config, save_checkpoint
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make(ENV)
    config = default_config(ENV)
    checkpoint = save_checkpoint(tmp_path / "checkpoint.pt", ActorCritic(env.observation_space, env.action_space, config),
                                 ObservationAdapter(env.observation_space), config, env.observation_space,
                                 env.action_space, f"{EVIL}:{ENV}")
    marker = evil_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["explain", "--policy", str(checkpoint), "--episodes", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a registered sysgym environment" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and EVIL not in sys.modules


def test_a_model_fitted_on_another_env_is_refused(saved, tmp_path, capsys):
    code = main(["explain", "--policy", "heuristic:p2_rule", "--env", "sysgym/Appointments-P2-v0", "--model",
                 str(saved), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "fitted on sysgym/Appointments-P1-v0, not sysgym/Appointments-P2-v0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_out_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("fitting started before --out was checked")

    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with monkeypatch.context() as m:
        m.setattr(CrystalBox, "fit", never)
        assert main(explain_args(full)) == 2
        assert "not empty; pass --force" in capsys.readouterr().err
        assert main(explain_args(a_file)) == 2
        assert "exists and is not a folder" in capsys.readouterr().err
    assert (full / "notes.txt").read_text() == "keep me" and not (full / "crystalbox.pt").exists()
    assert main(explain_args(full, "--force")) == 0
    assert (full / "crystalbox.pt").is_file() and (full / "explanations.json").is_file()


def test_fitting_shows_episodes_done_out_of_the_budget_with_an_eta(tmp_path, capsys):
    assert main(explain_args(tmp_path / "o", "--episodes", "3")) == 0
    bars = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "fitting rollouts" in line]
    assert bars and "3/3" in bars[-1] and "episode" in bars[-1]
    assert any("/3 [" in line and "<" in line for line in bars)      # n/total [elapsed<remaining]


def start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sysgym", "explain", "--policy", "heuristic:bb", "--env",
                             "sysgym/ABR-v0", "--hidden", "64", "--out", str(out), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, ready, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"finished before the signal (status {proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no progress before the timeout")
        time.sleep(0.05)


def stopped(proc: subprocess.Popen, sig: int) -> str:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running 60 s after the signal")
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1]


def test_sigterm_while_fitting_exits_130_with_one_line(tmp_path):
    out = tmp_path / "o"
    proc = start(out, "--episodes", "100000", "--states", "1", "env.num_chunks=20")
    wait_for(proc, lambda: out.is_dir())          # --out is prepared: the rollouts have begun
    time.sleep(0.5)
    assert stopped(proc, signal.SIGTERM) == "sysgym explain: interrupted; nothing kept (the explainer was still being fitted)"


def test_ctrl_c_after_fitting_keeps_the_explainer_and_the_states_explained(tmp_path):
    out = tmp_path / "o"
    proc = start(out, "--episodes", "1", "--epochs", "1", "--states", "5000", "env.num_chunks=300")
    wait_for(proc, lambda: any(out.glob("state_*.png")))
    last = stopped(proc, signal.SIGINT)
    assert last.startswith(f"sysgym explain: interrupted; kept the explainer {out / 'crystalbox.pt'} and ")
    box = CrystalBox.load(out / "crystalbox.pt")
    assert box.components == tuple(gym.make("sysgym/ABR-v0").unwrapped.reward_components)
    text = (out / "explanations.txt").read_text()
    assert "rebuffer" in text and np.isfinite(len(text))
