"""`sysgym train` keeps its work: periodic checkpoints, SIGINT / SIGTERM save and exit 130 with one
line, and ``--resume`` gives exactly the run an uninterrupted training would have given (issue #20)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import sysgym  # noqa: F401
from sysgym.agents.ppo import PPOTrainer, default_config, load_checkpoint, load_policy
from sysgym.agents.ppo.logger import TrainingLogger
from sysgym.agents.ppo.trainer import TrainingInterrupted
from sysgym.cli import main

QUIET = dict(progress=False, tensorboard=False)
# (env, settings): the numpy fast path with masks and reward normalisation; a Gaussian head with
# observation normalisation; the torch (autograd) path with a CNN encoder
CASES = [
    ("sysgym/DeepRM-Compact-v0", dict(num_envs=2, n_steps=50)),
    ("sysgym/CC-v0", dict(num_envs=2, n_steps=32, batch_size=32)),
    ("sysgym/DeepRM-Image-v0", dict(num_envs=2, n_steps=8, batch_size=8, n_epochs=2)),
]


def _config(env_id, settings, iterations=6, **more):
    steps = settings["num_envs"] * settings["n_steps"] * iterations
    return default_config(env_id, **settings, total_steps=steps, seed=4, **QUIET, **more)


def _same_weights(a: PPOTrainer, b: PPOTrainer) -> bool:
    return torch.equal(a.flat_params, b.flat_params) and torch.equal(a.optimizer.exp_avg_sq, b.optimizer.exp_avg_sq)


def _uninterrupted(env_id, cfg, out):
    trainer = PPOTrainer(env_id, cfg, out)
    trainer.train()
    trainer.close()
    return trainer


@pytest.mark.parametrize("env_id, settings", CASES)
def test_a_run_stopped_and_resumed_ends_with_the_uninterrupted_runs_weights(tmp_path, env_id, settings):
    cfg = _config(env_id, settings)
    reference = _uninterrupted(env_id, cfg, tmp_path / "reference")

    stopped = PPOTrainer(env_id, cfg, tmp_path / "run")
    step = stopped._iteration

    def stop_after_two(it, n):  # a real SIGINT in the second iteration: it finishes, then stops
        step(it, n)
        if it == 1:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs between bytecodes
                pass

    stopped._iteration = stop_after_two
    with pytest.raises(TrainingInterrupted) as info:
        stopped.train()
    stopped.close()
    assert info.value.global_step == 2 * cfg.rollout_size and not _same_weights(stopped, reference)

    resumed = PPOTrainer.resume(tmp_path / "run")
    assert resumed.global_step == 2 * cfg.rollout_size
    resumed.train()
    resumed.close()
    assert resumed.global_step == reference.global_step
    assert _same_weights(resumed, reference)
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())
    assert _log_rows(tmp_path / "run" / "progress.csv") == _log_rows(tmp_path / "reference" / "progress.csv")
    if (tmp_path / "reference" / "episodes.csv").exists():
        assert (tmp_path / "run" / "episodes.csv").read_text() == (tmp_path / "reference" / "episodes.csv").read_text()


def _log_rows(path):
    """progress.csv without its steps/s column (timing differs from run to run; nothing else may)."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "sps"} for row in csv.DictReader(f)]


def test_a_crash_resumes_from_the_periodic_checkpoint_and_drops_the_logs_after_it(tmp_path):
    env_id, settings = CASES[0]
    cfg = _config(env_id, settings, checkpoint_seconds=1e-9)  # a periodic save after every iteration
    reference = _uninterrupted(env_id, cfg, tmp_path / "reference")
    crashed = PPOTrainer(env_id, cfg, tmp_path / "run")
    step = crashed._iteration

    def crash_in_the_fifth(it, n):
        if it == 4:  # the fifth iteration is logged but not checkpointed, then the process dies
            crashed.config.checkpoint_seconds = 0.0
            step(it, n)
            raise RuntimeError("power cut")
        step(it, n)

    crashed._iteration = crash_in_the_fifth
    with pytest.raises(RuntimeError, match="power cut"):
        crashed.train()
    crashed.close()
    assert load_checkpoint(tmp_path / "run")["global_step"] == 4 * cfg.rollout_size
    assert len((tmp_path / "run" / "progress.csv").read_text().splitlines()) == 1 + 5

    resumed = PPOTrainer.resume(tmp_path / "run")
    resumed.train()
    resumed.close()
    assert _same_weights(resumed, reference)
    steps = [line.split(",")[0] for line in (tmp_path / "run" / "progress.csv").read_text().splitlines()[1:]]
    assert steps == [str(cfg.rollout_size * k) for k in range(1, 7)]  # the fifth row is not doubled
    assert (tmp_path / "run" / "episodes.csv").read_text() == (tmp_path / "reference" / "episodes.csv").read_text()


# A `sysgym train` process whose iterations pause 0.2 s (no result changes), so a test can signal it mid-run.
SLOW_TRAIN = """
import sys, time
from sysgym.agents.ppo.trainer import PPOTrainer
step = PPOTrainer._iteration
def slow(self, it, n):
    step(self, it, n)
    time.sleep(0.2)
PPOTrainer._iteration = slow
from sysgym.cli import main
sys.exit(main(sys.argv[1:]))
"""
CLI_RUN = ["--env", "sysgym/DeepRM-Compact-v0", "--steps", "2000", "--num-envs", "2", "n_steps=50",
           "progress=false", "tensorboard=false"]


def _signal_mid_run(out, signum):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_TRAIN, "train", "--out", str(out), *CLI_RUN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    progress = out / "progress.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) >= 2:  # an iteration is done
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running 120 s after the signal")
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_exits_130_with_one_line_and_the_run_resumes_to_the_same_weights(tmp_path, capsys, signum):
    out = tmp_path / "run"
    code, err = _signal_mid_run(out, signum)
    assert code == 130, err
    assert _notice_then_one_line(err) and "Traceback" not in err, err
    assert "interrupted" in err and f"sysgym train --resume {out}" in err
    saved = load_checkpoint(out)
    assert 0 < saved["global_step"] < 2000
    load_policy(out)  # the checkpoint plays
    assert main(["train", "--resume", str(out)]) == 0
    capsys.readouterr()
    finished = load_checkpoint(out)
    cfg = default_config("sysgym/DeepRM-Compact-v0", total_steps=2000, num_envs=2, n_steps=50, seed=0, **QUIET)
    reference = _uninterrupted("sysgym/DeepRM-Compact-v0", cfg, tmp_path / "reference")
    assert finished["global_step"] == reference.global_step
    for key, tensor in reference.model.state_dict().items():
        assert torch.equal(finished["model"][key], tensor), key


def test_a_second_signal_stops_at_once_with_one_line(tmp_path):
    out = tmp_path / "run"
    # iterations pause 10 s: the first SIGINT asks to stop after the iteration, the second cannot wait
    proc = subprocess.Popen([sys.executable, "-c", SLOW_TRAIN.replace("0.2", "10"), "train", "--out", str(out),
                             *CLI_RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (out / "progress.csv").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=8)  # before the 10 s pause would have ended
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("a second SIGINT did not stop training at once")
    assert proc.returncode == 130, err
    assert _notice_then_one_line(err) and "stopped at once" in err, err


def _notice_then_one_line(err: str) -> bool:
    """stderr of a stopped run: the first signal's notice (why it goes on), then the one final line."""
    lines = err.strip().splitlines()
    return len(lines) == 2 and lines[0].startswith("sysgym train: stop requested; finishing iteration ")


def test_resume_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "not a training output folder" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--env", "sysgym/DeepRM-Compact-v0", "--steps", "200", "--num-envs", "2",
                 "n_steps=50", "progress=false", "tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "lr=1e-3"]) == 2
    assert "with its own settings" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--env", "sysgym/DeepRM-Image-v0"]) == 2
    assert "the run trains sysgym/DeepRM-Compact-v0" in capsys.readouterr().err
    assert main(["train", "--resume", str(out)]) == 0  # finished: nothing to do
    assert "nothing to do" in capsys.readouterr().err
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    del payload["training"]
    torch.save(payload, out / "checkpoint.pt")
    assert main(["train", "--resume", str(out), "--steps", "4000"]) == 2
    assert "holds no training state" in capsys.readouterr().err


class _Recorder:
    """Stands in for TensorBoard's SummaryWriter: records (tag, step) of every scalar."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, step))

    def close(self):
        pass


@pytest.mark.parametrize("seconds, expected_steps", [(0.0, list(range(1, 11))), (3600.0, [1, 10])])
def test_tensorboard_writes_at_most_once_per_interval_and_always_the_last_iteration(tmp_path, seconds, expected_steps):
    logger = TrainingLogger(tmp_path, 10, tensorboard=False, progress=False, tensorboard_seconds=seconds)
    recorder = logger._tb = _Recorder()
    for step in range(1, 11):
        logger.episode(step, -1.0, 5, {"slowdown": 2.0})  # episodes no longer write a scalar each
        logger.iteration(step, {"policy_loss": 0.1, "sps": 1.0}, 1)
    logger.close()
    assert sorted({s for _, s in recorder.scalars}) == expected_steps
    tags = {t for t, _ in recorder.scalars}
    assert {"losses/policy_loss", "charts/sps", "charts/episodic_return", "episode_metrics/slowdown"} <= tags
    assert len(recorder.scalars) == len(expected_steps) * len(tags)


def test_until_ends_training_after_the_iteration_where_it_first_returns_true(tmp_path):
    env_id, settings = CASES[0]
    cfg = _config(env_id, settings)
    seen = []

    def until(trainer):  # sees the trainer as it stands after each iteration
        seen.append((trainer.global_step, len(trainer.logger.history)))
        return trainer.global_step >= 3 * cfg.rollout_size

    trainer = PPOTrainer(env_id, cfg, tmp_path / "run")
    result = trainer.train(until=until)
    trainer.close()
    assert seen == [(k * cfg.rollout_size, k) for k in (1, 2, 3)]
    assert result.global_step == 3 * cfg.rollout_size < cfg.total_steps
    assert load_checkpoint(tmp_path / "run")["global_step"] == 3 * cfg.rollout_size  # saved where it ended
