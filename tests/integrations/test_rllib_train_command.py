"""``sysgym train --engine rllib``: our PPO's defaults per family, ``--out`` checked first, Ctrl-C
leaves a checkpoint that restores (issues #21 and #23)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed here; its tests run in .venv-rllib")
pytest.importorskip("torch", reason="torch is not installed here; the RLlib tests run in .venv-rllib")

from sysgym.integrations import rllib as srl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    srl.add_train_arguments(parser, standalone=True)
    return parser.parse_args(list(argv))


def _model(config):
    spec_config = getattr(config.rl_module_spec, "model_config", None)
    return spec_config if spec_config else config.model_config


# Expected values: CleanRL ppo.py (discrete: 8 envs x 128 steps, minibatch 256, 4 epochs, lr 2.5e-4,
# separate 2x64 tanh actor and critic), ppo_continuous_action.py (1 env x 2048 steps, minibatch
# 64, 10 epochs, lr 3e-4, no entropy bonus) and BRACIS'21 Table 2 for DeepRM (n_steps 50 x 8
# envs, minibatch 64, 10 epochs, lr 1e-4, one shared 2x64 trunk); RLlib's own defaults differ in
# every one of them (train batch 4000, minibatch 128, 30 epochs, lr 5e-5, [256, 256], KL loss on).
@pytest.mark.parametrize("env, batch, minibatch, epochs, lr, entropy, shared", [
    ("sysgym/ABR-v0", 4096, 512, 4, 2.5e-4, 0.01, False),       # ABR preset: 64 envs x 64 steps, minibatch 512
    ("sysgym/Appointments-P1-v0", 1024, 256, 4, 2.5e-4, 0.01, False),
    ("sysgym/DeepRM-CompactSparse-v0", 400, 64, 10, 1e-4, 0.01, True),
    ("sysgym/CC-v0", 2048, 64, 10, 3e-4, 0.0, False),
    (srl.MULTI_FLOW_CC, 2048, 64, 10, 3e-4, 0.0, False),
])
def test_train_defaults_are_our_ppo_presets(env, batch, minibatch, epochs, lr, entropy, shared):
    config = srl.train_config(_args("--env", env, "--steps", "1"))
    assert (config.train_batch_size_per_learner, config.minibatch_size, config.num_epochs) == (batch, minibatch, epochs)
    assert config.lr == pytest.approx(lr) and config.entropy_coeff == pytest.approx(entropy)
    assert config.gamma == pytest.approx(0.99) and config.lambda_ == pytest.approx(0.95)
    assert config.clip_param == pytest.approx(0.2)
    # our loss is vf_coef (0.5) * 0.5 * err^2, unclamped; RLlib's is vf_loss_coeff * min(err^2, vf_clip_param)
    assert config.vf_loss_coeff == pytest.approx(0.25) and config.vf_clip_param == math.inf
    assert config.grad_clip == pytest.approx(0.5) and config.use_kl_loss is False
    model = _model(config)
    assert list(model["fcnet_hiddens"]) == [64, 64] and model["fcnet_activation"] == "tanh"
    assert model["vf_share_layers"] is shared and list(model["head_fcnet_hiddens"]) == []


def test_overrides_win_over_the_defaults():
    config = srl.train_config(_args("--env", "sysgym/ABR-v0", "--steps", "1", "lr=0.001", "num_epochs=2",
                                    "fcnet_hiddens=32,16", "vf_share_layers=true"))
    assert config.lr == pytest.approx(0.001) and config.num_epochs == 2
    assert config.minibatch_size == 512  # not overridden: the ABR preset's
    model = _model(config)
    assert list(model["fcnet_hiddens"]) == [32, 16] and model["vf_share_layers"] is True


def test_one_layer_size_is_a_one_layer_network_and_a_bad_size_is_refused():
    config = srl.train_config(_args("--env", "sysgym/ABR-v0", "--steps", "1", "fcnet_hiddens=16"))
    assert list(_model(config)["fcnet_hiddens"]) == [16]  # an int crashed every env runner
    with pytest.raises(ValueError, match="fcnet_hiddens takes positive layer sizes"):
        srl.train_config(_args("--env", "sysgym/ABR-v0", "--steps", "1", "fcnet_hiddens=64,0"))


def test_learners_get_one_torch_thread_unless_asked_otherwise():
    class Group:
        def foreach_learner(self, func, **kwargs):
            self.kwargs = kwargs

    class Algo:
        def __init__(self, config):
            self.config, self.learner_group = config, Group()

    config = srl.ppo_config("sysgym/CC-v0")
    assert config.learner_config_dict[srl.LEARNER_THREADS] == 1
    algo = Algo(config)
    srl.set_learner_threads(algorithm=algo)
    assert algo.learner_group.kwargs == {"threads": 1}
    untouched = Algo(srl.ppo_config("sysgym/CC-v0", learner_torch_threads=None))
    srl.set_learner_threads(algorithm=untouched)
    assert not hasattr(untouched.learner_group, "kwargs")
    with pytest.raises(ValueError, match="learner_torch_threads must be >= 1"):
        srl.ppo_config("sysgym/CC-v0", learner_torch_threads=0)


def test_a_restarted_env_runner_counts_itself_and_its_sub_envs(monkeypatch):
    class Logger:
        def __init__(self):
            self.logged = {}

        def log_value(self, key, value, reduce=None):
            self.logged[key] = (value, reduce)

    class Runner:
        num_envs = 3

    import ray

    logger = Logger()
    ray_was_up = ray.is_initialized()
    srl.count_restarted_env_runner(env_runner=Runner(), metrics_logger=logger)
    assert logger.logged == {}  # this process is no restarted actor
    assert ray.is_initialized() == ray_was_up  # asking did not start Ray
    monkeypatch.setattr(srl, "_restarted_actor", lambda: True)
    srl.count_restarted_env_runner(env_runner=Runner(), metrics_logger=logger)
    assert logger.logged == {(srl.FAULTS_KEY, "env_runners_restarted"): (1, "lifetime_sum"),
                             (srl.FAULTS_KEY, "episodes_in_flight_dropped"): (3, "lifetime_sum")}


def test_a_non_empty_out_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code = srl.main(["--env", "sysgym/CC-v0", "--steps", "10", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--force" in err and str(tmp_path) in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


TINY = ["--num-env-runners", "0", "--num-envs", "2", "train_batch_size_per_learner=64", "minibatch_size=32",
        "num_epochs=1", "env.max_steps=16"]


def _train_then_signal(out: Path, rows: int, sig: int, *extra: str) -> tuple[int, str]:
    """``sysgym train --engine rllib`` on CC-Discrete (TINY sizes, endless), sent ``sig`` once
    ``out/progress.csv`` has ``rows`` rows (300 s at most); its exit code and stderr. The process
    group is killed if anything fails on the way."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "sysgym", "train", "--engine", "rllib", "--env", "sysgym/CC-Discrete-v0",
               "--steps", "100000000", "--out", str(out), *extra, *TINY]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and len(_rows(out / "progress.csv")) < rows:
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert len(_rows(out / "progress.csv")) >= rows, "no iteration finished in time"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def test_ctrl_c_leaves_a_checkpoint_that_restores(tmp_path):
    out = tmp_path / "run"
    code, err = _train_then_signal(out, 2, signal.SIGINT)
    assert code == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("sysgym train: interrupted") and str(out / "checkpoint") in last, err[-3000:]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    policy = srl.RLlibPolicy.from_checkpoint(out / "checkpoint", "sysgym/CC-Discrete-v0", {"max_steps": 16})
    probe = gym.make("sysgym/CC-Discrete-v0", max_steps=16)
    obs, info = probe.reset(seed=0)
    assert probe.action_space.contains(policy.act(obs, info))


def _weights(checkpoint: Path) -> dict:
    module = srl.RLlibPolicy.from_checkpoint(checkpoint, "sysgym/CC-Discrete-v0", {"max_steps": 16}).module
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(bool((a[k] == b[k]).all()) for k in a)


@pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-:UserWarning")
def test_sigterm_then_resume_continues_the_iterations_steps_and_weights(tmp_path, capsys):
    """SIGTERM mid-run saves the checkpoint; ``--resume`` restores it (a resume with nothing left
    to train re-saves the very same weights: nothing was reinitialised), refuses another env or
    other settings in one line, and trains on with the iteration and env-step counters going on
    from where the run stopped, keeping the earlier progress rows."""
    import ray

    out = tmp_path / "run"
    code, err = _train_then_signal(out, 3, signal.SIGTERM, "--checkpoint-every", "1")
    assert code == 130, err[-3000:]
    before = _rows(out / "progress.csv")
    done, steps = len(before), int(before[-1]["global_step"])
    assert [int(r["iteration"]) for r in before] == list(range(1, done + 1)) and steps == 64 * done
    saved = _weights(out / "checkpoint")

    # refused in one line, before Ray starts: another env, other settings, a folder without a run
    for extra, message in ((["--env", "sysgym/ABR-v0"], "the run has --env sysgym/CC-Discrete-v0, not sysgym/ABR-v0"),
                           (["lr=0.5"], "continues with the run's own settings")):
        assert srl.main(["--resume", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
    assert srl.main(["--resume", str(tmp_path)]) == 2
    assert "no checkpoint folder there" in capsys.readouterr().err

    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    try:
        # nothing left to train: the restored weights are saved again, unchanged
        assert srl.main(["--resume", str(out), "--steps", str(steps)]) == 0
        assert _same(_weights(out / "checkpoint"), saved)
        # a checkpoint whose config is not the run's (its run.json edited): refused in one line
        other = tmp_path / "other"
        shutil.copytree(out, other)
        settings = json.loads((other / "run.json").read_text())
        settings["overrides"] = [o.replace("num_epochs=1", "num_epochs=2") for o in settings["overrides"]]
        (other / "run.json").write_text(json.dumps(settings))
        capsys.readouterr()
        assert srl.main(["--resume", str(other)]) == 2
        assert "was trained with num_epochs=1, this run has num_epochs=2" in capsys.readouterr().err
        # a row logged after the checkpoint (as a hard stop after the last save leaves) is dropped
        with open(out / "progress.csv", "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=list(before[0])).writerow(
                {**before[-1], "iteration": done + 1, "global_step": steps + 64})
        capsys.readouterr()
        # two more iterations, counters going on
        assert srl.main(["--resume", str(out), "--steps", str(steps + 128)]) == 0
        assert "1 row(s) after the checkpoint's iteration" in capsys.readouterr().err
    finally:
        ray.shutdown()
    after = _rows(out / "progress.csv")
    assert after[:done] == before
    assert [int(r["iteration"]) for r in after[done:]] == [done + 1, done + 2]
    assert [int(r["global_step"]) for r in after[done:]] == [steps + 64, steps + 128]
    assert not _same(_weights(out / "checkpoint"), saved)  # it trained on


class _SignallingAlgo:
    """What ``_train_loop`` uses of an Algorithm (``iteration``, ``train()``); iteration ``k``
    sends this process ``signals[k]`` half-way through, so a stop lands mid-iteration for sure."""

    def __init__(self, signals: dict[int, list[int]]) -> None:
        self.iteration, self.signals = 0, signals

    def train(self) -> dict:
        for sig in self.signals.get(self.iteration + 1, []):
            os.kill(os.getpid(), sig)
            for _ in range(10_000):  # the handler runs between bytecodes
                pass
        self.iteration += 1  # the iteration's update, done only if nothing stopped it
        return {"training_iteration": self.iteration,
                "env_runners": {"num_env_steps_sampled_lifetime": 64 * self.iteration}}


def test_a_stop_mid_iteration_lets_it_finish_then_stops_at_the_boundary(tmp_path, capsys):
    from sysgym.agents.runs import stop_signals

    algo, rows = _SignallingAlgo({2: [signal.SIGTERM]}), []
    with stop_signals() as stop, pytest.raises(KeyboardInterrupt) as raised:
        srl._train_loop(algo, 10_000, tmp_path, rows, stop)
    assert not isinstance(raised.value, srl.StoppedMidIteration)
    assert algo.iteration == 2 and [r["global_step"] for r in rows] == [64, 128]
    assert [int(r["iteration"]) for r in _rows(tmp_path / "progress.csv")] == [1, 2]  # logged before the stop
    assert "finishing iteration 2, then saving" in capsys.readouterr().err


def test_a_second_stop_signal_ends_the_iteration_at_once_and_keeps_only_the_last_save(tmp_path):
    from sysgym.agents.runs import stop_signals

    algo, rows = _SignallingAlgo({3: [signal.SIGINT, signal.SIGINT]}), []
    with stop_signals() as stop, pytest.raises(srl.StoppedMidIteration) as raised:
        srl._train_loop(algo, 10_000, tmp_path, rows, stop)
    assert algo.iteration == 2 and len(rows) == 2  # iteration 3 never completed nor logged
    assert raised.value.iteration == 3 and raised.value.saved is None
    assert "no checkpoint was saved" in raised.value.kept(tmp_path / "checkpoint")
    resumed = srl.StoppedMidIteration(7, 5).kept(tmp_path / "checkpoint")
    assert "iteration 7, not saved" in resumed and "checkpoint of iteration 5" in resumed


def test_a_resume_drops_the_rows_after_its_checkpoint_and_says_so(tmp_path, capsys):
    rows = [{"iteration": k, "global_step": 64 * k} for k in (1, 2, 3, 4)]
    assert srl._rows_of_checkpoint(rows, 4, tmp_path) == rows and capsys.readouterr().err == ""
    assert srl._rows_of_checkpoint(rows, 2, tmp_path) == rows[:2]
    assert "has 2 row(s) after the checkpoint's iteration 2" in capsys.readouterr().err


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path) as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
