"""The sysgym command line: list, bench, and one-line input errors with exit status 2."""

import dataclasses
import re
import subprocess
import sys

import pytest

import sysgym
from sysgym.agents.ppo.config import PPOConfig, parse_overrides
from sysgym.cli import main


def test_list_shows_every_id_with_its_spaces(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in sysgym.ENVIRONMENTS:
        assert entry.id in out and entry.description in out
    assert "Discrete(11)" in out and "Box(123,)" in out


def test_bench_prints_a_table_for_one_env(capsys):
    assert main(["bench", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "200", "--calls", "2",
                 "--num-envs", "8"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "DeepRM-Compact-v0" in line)
    assert len([c for c in row.split("|") if c.strip()]) == 3


def test_console_entry_point_and_module_run():
    result = subprocess.run([sys.executable, "-m", "sysgym", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and sysgym.__version__ in result.stdout


def _run(*args, **kwargs):
    # bounded: a regression that builds a huge network must fail, not hang the suite
    kwargs.setdefault("timeout", 300)
    return subprocess.run([sys.executable, "-m", "sysgym", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize("args, expected", [
    (["train", "--env", "DeepRM-Compact-v0", "--steps", "10"], "did you mean 'sysgym/DeepRM-Compact-v0'"),
    (["train", "--env", "sysgym/DeepRM-Compct-v0", "--steps", "10"], "did you mean 'sysgym/DeepRM-Compact-v0'"),
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "env.scenaro=3"], "did you mean 'scenario'"),
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "lrr=3"], "unknown PPO setting 'lrr'; did you mean 'lr'?"),
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "n_epochs=maybe"], "n_epochs='maybe'"),
    (["evaluate", "--checkpoint", "no/such/run"], "no such checkpoint"),
    # sizes that would allocate gigabytes (or abort inside libgomp) are refused before anything is built
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "hidden_sizes=40000,40000"],
     "lower hidden_sizes"),
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "n_steps=1000000000"],
     "n_steps=1000000000 is too large"),
    (["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "10", "torch_threads=100000"],
     "torch_threads=100000 is too large"),
    (["bench", "--env", "sysgym/Nope-v0"], "unknown environment"),
])
def test_input_errors_are_one_line_and_exit_2(args, expected):
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_boolean_settings_accept_the_usual_spellings():
    for text, value in (("1", True), ("0", False), ("yes", True), ("no", False), ("true", True),
                        ("False", False)):
        settings, _ = parse_overrides([f"normalize_reward={text}"])
        assert settings["normalize_reward"] is value
    with pytest.raises(ValueError):
        parse_overrides(["normalize_reward=2"])


def test_train_help_lists_every_setting_with_its_default():
    result = _run("train", "--help")
    assert result.returncode == 0
    for f in dataclasses.fields(PPOConfig):
        if f.name not in ("env_kwargs", "train_env_kwargs"):
            assert re.search(rf"^\s+{f.name}\s+\S", result.stdout, re.M), f.name


def test_list_into_a_closed_pipe_does_not_raise():
    proc = subprocess.Popen([sys.executable, "-m", "sysgym", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"BrokenPipeError" not in err, err


def test_missing_torch_is_an_install_hint():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from sysgym.cli import main\n"
            "sys.exit(main(['train', '--env', 'sysgym/DeepRM-Compact-v0', '--steps', '10']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert 'pip install "sysgym[agents]"' in result.stderr


def test_a_checkpoint_on_an_env_with_other_spaces_is_refused(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "100", "--num-envs", "2",
                 "--out", str(out), "n_steps=50", "progress=false", "tensorboard=false"]) == 0
    result = _run("evaluate", "--checkpoint", str(out), "--env", "sysgym/DeepRM-Compact-v0",
                  "--episodes", "1", "env.window=5")
    assert result.returncode == 2
    assert "trained on observation space" in result.stderr


def test_explain_writes_tables_figures_and_a_reloadable_explainer(tmp_path):
    out = tmp_path / "explain"
    assert main(["explain", "--policy", "heuristic:bb", "--env", "sysgym/ABR-v0", "--episodes", "2",
                 "--states", "1", "--epochs", "2", "--out", str(out), "env.num_chunks=20"]) == 0
    assert (out / "crystalbox.pt").exists() and (out / "explanations.txt").read_text().strip()
    assert list(out.glob("state_*.png"))
    assert main(["explain", "--policy", "heuristic:bb", "--env", "sysgym/ABR-v0", "--model",
                 str(out / "crystalbox.pt"), "--states", "1", "--out", str(tmp_path / "again"),
                 "env.num_chunks=20"]) == 0


# ---------------------------------------------------------------- train: arguments, --out, divergence (issue #20)
def _train(*options, settings=()):
    """``sysgym train`` on a tiny DeepRM run (key=value settings go last, as argparse wants)."""
    return main(["train", "--env", "sysgym/DeepRM-Compact-v0", "--num-envs", "2", *options,
                 "n_steps=50", "progress=false", "tensorboard=false", *settings])


def _one_line(capsys, code, expected):
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err


@pytest.mark.parametrize("steps", ["0", "-5"])
def test_train_refuses_a_step_count_below_one(tmp_path, capsys, steps):
    _one_line(capsys, _train("--steps", steps, "--out", str(tmp_path / "r")), "--steps must lie in")
    assert not (tmp_path / "r").exists()


def test_train_refuses_more_torch_threads_than_cpus(tmp_path, capsys):
    import os

    too_many = len(os.sched_getaffinity(0)) + 1
    _one_line(capsys, _train("--steps", "100", "--out", str(tmp_path / "r"), settings=[f"torch_threads={too_many}"]),
              f"torch_threads={too_many} is more than")


def test_train_checks_out_before_any_work(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line(capsys, _train("--steps", "100", "--out", str(afile)), "exists and is not a folder")
    _one_line(capsys, _train("--steps", "100", "--out", str(afile / "sub")), "cannot write there")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    _one_line(capsys, _train("--steps", "100", "--out", str(full)), "pass --force")
    assert sorted(p.name for p in full.iterdir()) == ["notes.txt"]  # nothing written before the refusal
    assert _train("--steps", "100", "--out", str(full), "--force") == 0
    assert (full / "checkpoint.pt").exists()


def test_a_diverging_run_stops_with_the_setting_to_lower_and_saves_no_nan(tmp_path, capsys):
    import torch

    out = tmp_path / "r"
    code = _train("--steps", "2000", "--out", str(out), settings=["lr=1e30", "checkpoint_seconds=1e-9"])
    _one_line(capsys, code, "lower lr (now 1e+30)")
    if (out / "checkpoint.pt").exists():  # an earlier periodic save may stay; it must hold finite weights
        payload = torch.load(out / "checkpoint.pt", weights_only=True)
        assert all(torch.isfinite(t).all() for t in payload["model"].values())
