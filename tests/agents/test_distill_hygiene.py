"""Issue #19 and #20 for distillation: disjoint training / selection / test seeds, bounded sizes,
--out checked before work, files that cannot import code or crash a loader, and an interrupted
``sysgym distill`` that keeps its finished iterations."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.distill import DistillConfig, load_student
from sysgym.agents.distill.commands import add_arguments, run_distill
from sysgym.agents.distill.dagger import remaining_seconds
from sysgym.agents.distill.seeds import SeedCounter, check_disjoint, collection_bound, episode_range
from sysgym.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = "sysgym/DeepRM-Compact-v0"
SMALL = ["--iterations", "2", "--samples", "100", "--num-envs", "4", "--max-depth", "2", "--eval-episodes", "2",
         "--test-episodes", "3", "--fidelity-samples", "40", "--latency-decisions", "10", "--no-progress"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run_distill(parser.parse_args(argv))


def seed_lines(text: str) -> dict[str, tuple[int, int]]:
    return {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^([a-z ()]+): seeds (\d+)-(\d+)$", text, re.M)}


# ----------------------------------------------------------------------------------- seed ranges
def test_seed_ranges_by_hand():
    assert episode_range(1_000_000, 8) == (1_000_000, 1_000_007)
    # 10 states on 4 sub-envs: 3 steps, at most 4 resets at the start and 4 after each step = 16 seeds
    assert collection_bound(5, 10, 4) == (5, 20)
    assert collection_bound(0, 10, 4, calls=2) == (0, 31)
    check_disjoint({"a": (0, 9), "b": (10, 19), "c": (100, 100)})
    with pytest.raises(ValueError, match=r"a \(seeds 0-10\) and b \(seeds 10-19\) overlap"):
        check_disjoint({"b": (10, 19), "a": (0, 10)})
    with pytest.raises(ValueError, match="overlap"):
        check_disjoint({"inside": (5, 6), "outer": (0, 100)})
    counter = SeedCounter(7)
    assert counter.used() == (7, 6) and [next(counter) for _ in range(3)] == [7, 8, 9] and counter.used() == (7, 9)


def test_collection_never_uses_more_seeds_than_its_bound():
    from sysgym.agents.distill import EnvMaker
    from sysgym.agents.distill.rollouts import collect

    counter = SeedCounter(0)
    # scenario 1 episodes are short: many resets per collection
    collect(EnvMaker(ENV), "heuristic:sjf", None, 1.0, 300, counter, num_envs=4, rng=np.random.default_rng(0))
    assert counter.used()[1] <= collection_bound(0, 300, 4)[1]


def test_config_refuses_overlapping_training_and_selection_seeds():
    DistillConfig(iterations=2, samples=100, num_envs=4, seed=0, eval_seed=1_000).check()
    # 2 iterations x 4 x (1 + 25) = 208 training seeds from 900: they reach 1,107 > 1,000
    with pytest.raises(ValueError, match="training episodes .* and selection episodes .* overlap"):
        DistillConfig(iterations=2, samples=100, num_envs=4, seed=900, eval_seed=1_000).check()
    with pytest.raises(ValueError, match="overlap"):
        DistillConfig(seed=1_000_004).check()   # inside the default selection episodes


@pytest.mark.parametrize(("field", "value", "words"), [
    ("rollouts", 10**9, "rollouts must be an int in"), ("samples", 10**9, "samples must be an int in"),
    ("iterations", 10**6, "iterations must be an int in"), ("num_envs", 10**6, "num_envs"),
    ("horizon", 10**9, "horizon"), ("eval_episodes", 10**9, "eval_episodes"), ("batch", 10**9, "batch"),
])
def test_sizes_are_bounded_before_any_work(field, value, words):
    with pytest.raises(ValueError, match=words) as error:
        DistillConfig(**{field: value}).check()
    assert "\n" not in str(error.value)


def test_aggregate_and_fork_bounds():
    with pytest.raises(ValueError, match="iterations x samples"):
        DistillConfig(iterations=100, samples=200_000, eval_seed=10**12).check()
    with pytest.raises(ValueError, match="samples x rollouts"):
        DistillConfig(samples=100_000, rollouts=1000, eval_seed=10**12).check()


def test_whole_run_eta_by_hand():
    # iterations that took 10, 20, 30 s: the line through them predicts 40 and 50 s for the last two
    assert remaining_seconds([10, 20, 30], 5) == pytest.approx(90)
    assert remaining_seconds([12], 4) == pytest.approx(36)
    # a run that got faster is not predicted to speed up further (slope clipped at 0): mean 20 each
    assert remaining_seconds([30, 20, 10], 4) == pytest.approx(20)
    assert remaining_seconds([5, 5], 2) == 0 and remaining_seconds([], 3) == 0


# ---------------------------------------------------------------------------- sysgym distill: seeds
def test_distill_scores_the_student_on_test_episodes_disjoint_from_selection(tmp_path, capsys):
    from sysgym.agents.distill import EnvMaker
    from sysgym.agents.distill.rollouts import evaluate

    out = tmp_path / "run"
    assert run(["--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), "--selection-seed", "500",
                "--test-seed", "700", *SMALL]) == 0
    printed = capsys.readouterr()
    report = (out / "report.md").read_text()
    for text in (printed.out, report):
        ranges = seed_lines(text)
        assert ranges["selection episodes"] == (500, 501)
        assert ranges["test episodes"] == (700, 702)
        assert ranges["training episodes"][0] == 0 and ranges["fidelity states"][0] == 703
        check_disjoint(ranges)
    # the student's test return is its return on seeds 700-702, not on the selection seeds
    student = load_student(out / "tree.json")
    row = next(line for line in report.splitlines() if line.startswith("| mean return"))
    shown = float(row.split("|")[3])
    maker = EnvMaker(ENV)
    assert f"{shown:.4g}" == f"{evaluate(maker, lambda env: student, 3, 700).mean_return():.4g}"
    assert "(3 test episodes)" in row
    # every iterate was kept, and the whole-run ETA was shown after each
    assert sorted(p.name for p in (out / "iterations").iterdir()) == ["tree_0.json", "tree_1.json"]
    assert printed.err.count("whole run: about") == 2


def test_distill_refuses_overlapping_ranges_before_any_work(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="selection episodes .* and test episodes .* overlap"):
        run(["--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), "--test-seed", "1000001", *SMALL])
    with pytest.raises(ValueError, match="test episodes .* overlap"):
        run(["--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), "--seed", "2000001", *SMALL])
    assert not out.exists()


@pytest.mark.parametrize("flag", [["--rollouts", str(10**9)], ["--samples", str(10**9)],
                                  ["--fidelity-samples", str(10**9)], ["--test-episodes", str(10**9)],
                                  ["--latency-decisions", str(10**9)], ["--time-limit", "nan"]])
def test_distill_bounds_size_arguments_in_one_line(tmp_path, capsys, flag):
    out = tmp_path / "never"
    assert main(["distill", "--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), *flag]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and flag[0].lstrip("-").split("-")[0] in err
    assert not out.exists()


# ------------------------------------------------------------------------------ sysgym distill: --out
def test_out_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import sysgym.agents.distill.dagger as dagger

    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with monkeypatch.context() as m:
        m.setattr(dagger, "distill", lambda *a, **k: pytest.fail("distillation started before --out was checked"))
        for out, words in ((full, "not empty; pass --force"), (a_file, "exists and is not a folder")):
            assert main(["distill", "--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), *SMALL]) == 2
            err = capsys.readouterr().err
            assert words in err and len(err.strip().splitlines()) == 1
    assert (full / "notes.txt").read_text() == "keep me" and not (full / "tree.json").exists()
    assert main(["distill", "--teacher", "heuristic:sjf", "--env", ENV, "--out", str(full), "--force", *SMALL]) == 0
    assert (full / "tree.json").is_file() and (full / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------- files read back
def tree_file(tmp_path: Path) -> tuple[Path, dict]:
    out = tmp_path / "t"
    assert run(["--teacher", "heuristic:sjf", "--env", ENV, "--out", str(out), *SMALL]) == 0
    return out / "tree.json", json.loads((out / "tree.json").read_text())


def test_tree_files_cannot_import_code_nest_deeply_or_be_huge(tmp_path):
    path, data = tree_file(tmp_path)
    assert load_student(path).meta["env_id"] == ENV
    evil = dict(data, meta={**data["meta"], "env_id": f"this:{ENV}"})
    (tmp_path / "evil.json").write_text(json.dumps(evil))
    with pytest.raises(ValueError, match="evil.json: meta.env_id.*not a registered sysgym environment"):
        load_student(tmp_path / "evil.json")
    number = dict(data, meta={**data["meta"], "env_id": 7})
    (tmp_path / "number.json").write_text(json.dumps(number))
    with pytest.raises(ValueError, match="env_id must be a string"):
        load_student(tmp_path / "number.json")
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(data)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="deep.json.*nested") as error:
        load_student(deep)
    assert "\n" not in str(error.value)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: no disk used
        f.truncate(300 * 2**20)
    with pytest.raises(ValueError, match="huge.json.*too large"):
        load_student(huge)


def ppo_checkpoint(path: Path, env_id: str, nan: bool = False) -> Path:
    import torch

    from sysgym.agents.ppo import ActorCritic, default_config, save_checkpoint
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make(ENV)
    config = default_config(ENV, hidden_sizes=(8,))
    model = ActorCritic(env.observation_space, env.action_space, config)
    save_checkpoint(path, model, ObservationAdapter(env.observation_space), config, env.observation_space,
                    env.action_space, env_id)
    if nan:  # as a diverged run (lr=1e30) left it: the file itself holds a NaN weight
        payload = torch.load(path, weights_only=True)
        next(iter(payload["model"].values())).view(-1)[0] = float("nan")
        torch.save(payload, path)
    return path


def test_a_teacher_with_nan_weights_is_refused_in_one_line(tmp_path, capsys):
    checkpoint = ppo_checkpoint(tmp_path / "nan.pt", ENV, nan=True)
    assert main(["distill", "--teacher", str(checkpoint), "--out", str(tmp_path / "o"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "nan.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_teacher_naming_a_module_is_refused_before_any_make(tmp_path):
    # in a fresh interpreter: the check is that the module named in the checkpoint never gets imported
    checkpoint = ppo_checkpoint(tmp_path / "evil.pt", f"evilmod_distill:{ENV}")
    (tmp_path / "evilmod_distill.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from sysgym.cli import main\n"
            "code = main(['distill', '--teacher', sys.argv[1], '--out', sys.argv[2] + '/o'])\n"
            "assert code == 2 and 'evilmod_distill' not in sys.modules, code\n")
    done = subprocess.run([sys.executable, "-c", code, str(checkpoint), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not a registered sysgym environment" in done.stderr and not (tmp_path / "imported").exists()


# ------------------------------------------------------------------------------ interrupts
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_distill_keeps_its_finished_iterations(tmp_path, sig):
    out, err_path = tmp_path / "run", tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "sysgym", "distill", "--teacher", "heuristic:sjf", "--env", ENV, "--iterations",
            "500", "--samples", "40", "--num-envs", "4", "--max-depth", "2", "--eval-episodes", "1",
            "--no-progress", "--out", str(out)]
    with open(err_path, "w") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        deadline = time.monotonic() + 120
        while "DAgger 2/500 done" not in err_path.read_text():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, "no progress within 120 s"
            time.sleep(0.1)
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err_path.read_text()
    assert code == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sysgym distill: interrupted; kept ") and "DAgger iterations" in last
    assert "stop requested; finishing this DAgger iteration" in err   # the first signal is deferred ...
    kept = sorted((out / "iterations").glob("tree_*.json"))
    assert len(kept) >= 3                                              # ... so iteration 3 finished
    for path in kept:
        assert load_student(path).meta["env_id"] == ENV
    best = load_student(out / "tree.json")
    assert best.meta["iteration"] < len(kept)
    assert "interrupted after" in (out / "report.md").read_text()
    log = (out / "iterations.csv").read_text().splitlines()
    assert len(log) == len(kept) + 2  # header, one row per kept iteration, best iterate
