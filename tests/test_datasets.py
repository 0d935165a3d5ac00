"""Offline datasets (issue #25): ``sysgym dataset`` writes a Minari dataset that reloads, whose
recovered env replays every stored episode exactly from its stored seed and actions (the
determinism contract), on every family; Ctrl-C keeps the finished episodes; bad arguments are one
line (exit 2); ``sysgym distill --dataset`` clones it into a tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minari")
pytest.importorskip("jax")

from sysgym.agents.datasets import load  # noqa: E402
from sysgym.cli import main  # noqa: E402

# (env ID, policy, env kwargs, noise): every family, Box / Discrete / continuous actions, Dict obs (DAG)
CASES = [
    ("sysgym/DeepRM-Compact-v0", "heuristic:sjf", ["env.scenario=3"], 0.3),
    ("sysgym/ABR-v0", "heuristic:bb", [], 0.0),
    ("sysgym/CC-v0", "heuristic:aimd", ["env.max_steps=60"], 0.2),
    ("sysgym/DAG-EGS-v0", "heuristic:greedy", [], 0.2),
    ("sysgym/Appointments-P1-v0", "oracle", [], 0.0),
]


def _build(out: Path, env_id: str, policy: str, overrides: list[str], noise: float, episodes: int = 3) -> int:
    return main(["dataset", "--env", env_id, "--policy", policy, "--episodes", str(episodes), "--out", str(out),
                 "--noise", str(noise), "--seed", "5", "--batch", "2", "--no-progress", *overrides])


def _at(tree, t):
    return {k: _at(v, t) for k, v in tree.items()} if isinstance(tree, dict) else np.asarray(tree[t])


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    return np.asarray(a).shape == np.asarray(b).shape and np.array_equal(np.asarray(a), np.asarray(b))


def _replay(dataset) -> int:
    """Replay every episode on the recovered env; return the number of steps compared."""
    env = dataset.recover_environment()
    masked = "action_mask" in next(iter(dataset.storage.get_episodes([0])))["infos"]
    compared = 0
    for episode in dataset.iterate_episodes():
        seed = next(iter(dataset.storage.get_episode_metadata([episode.id])))["seed"]
        obs, info = env.reset(seed=seed)
        assert _same(_at(episode.observations, 0), obs), f"episode {episode.id}: reset observation differs"
        if masked:
            assert np.array_equal(episode.infos["action_mask"][0], info["action_mask"])
        for t in range(len(episode)):
            action = _at(episode.actions, t)
            if masked:   # the stored action was valid under the stored mask of its state
                assert episode.infos["action_mask"][t][int(action)] == 1
            obs, reward, terminated, truncated, info = env.step(action if action.ndim else int(action))
            assert _same(_at(episode.observations, t + 1), obs), f"episode {episode.id} step {t}: observation"
            assert episode.rewards[t] == reward, f"episode {episode.id} step {t}: reward"
            assert bool(episode.terminations[t]) == terminated and bool(episode.truncations[t]) == truncated
            assert np.array_equal(episode.infos["reward_components"][t + 1], info["reward_components"])
            compared += 1
        assert terminated or truncated, f"episode {episode.id} stored unfinished"
    return compared


@pytest.mark.parametrize("env_id,policy,overrides,noise", CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_round_trip_replays_exactly(tmp_path, env_id, policy, overrides, noise):
    assert _build(tmp_path, env_id, policy, overrides, noise) == 0
    dataset = load(tmp_path)
    assert dataset.total_episodes == 3
    seeds = [m["seed"] for m in dataset.storage.get_episode_metadata(range(3))]
    assert seeds == [5, 6, 7]
    assert _replay(dataset) == dataset.total_steps > 0
    meta = dataset.storage.metadata["sysgym"]
    assert meta["policy"] == policy and meta["noise"] == noise and meta["seed_first"] == 5
    spec = dataset.recover_environment().spec
    assert spec.id == env_id
    for item in overrides:   # the env kwargs travel in the stored env spec
        key, value = item[4:].split("=")
        assert spec.kwargs[key] == int(value)


def test_minari_load_dataset_reads_out_folder(tmp_path, monkeypatch):
    import minari

    assert _build(tmp_path, "sysgym/Appointments-P1-v0", "heuristic:alternate", [], 0.0, episodes=2) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset("sysgym/Appointments-P1/alternate-v0")
    assert dataset.total_episodes == 2
    assert not (Path.home() / ".minari" / "datasets" / "sysgym" / "Appointments-P1").exists()


def test_noise_changes_actions_and_keeps_them_valid(tmp_path):
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    assert _build(clean, "sysgym/DeepRM-Compact-v0", "heuristic:sjf", [], 0.0, episodes=2) == 0
    assert _build(noisy, "sysgym/DeepRM-Compact-v0", "heuristic:sjf", [], 1.0, episodes=2) == 0
    a = load(clean)
    b = load(noisy)
    first_a, first_b = next(a.iterate_episodes()), next(b.iterate_episodes())
    n = min(len(first_a), len(first_b))
    assert not np.array_equal(first_a.actions[:n], first_b.actions[:n])
    for episode in b.iterate_episodes():   # uniformly random, but only among valid actions
        masks = episode.infos["action_mask"][:-1]
        assert np.all(masks[np.arange(len(episode)), episode.actions] == 1)


@pytest.mark.parametrize("args,needle", [
    (["--episodes", "0"], "--episodes"),
    (["--noise", "1.5"], "--noise"),
    (["--noise", "nan"], "--noise"),
    (["--name", "not an id"], "--name"),
    (["--policy", "heuristic:nope"], "nope"),
    (["env.nonsense"], "env.key=value"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, needle):
    # argparse keeps an option's last value: the bad one appended overrides the good one
    argv = ["dataset", "--env", "sysgym/DeepRM-Compact-v0", "--policy", "heuristic:sjf", "--episodes", "2",
            "--out", str(tmp_path / "out"), "--no-progress", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sysgym dataset: error:") and needle in err[0]
    assert not (tmp_path / "out" / "sysgym").exists()   # refused before any work


def test_out_is_checked_before_work(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert _build(tmp_path, "sysgym/Appointments-P1-v0", "oracle", [], 0.0) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["dataset", "--env", "sysgym/Appointments-P1-v0", "--policy", "oracle", "--episodes", "1",
                 "--out", str(tmp_path), "--force", "--no-progress"]) == 0
    assert load(tmp_path).total_episodes == 1 and (tmp_path / "keep.txt").read_text() == "x"


def test_ctrl_c_leaves_a_valid_dataset(tmp_path):
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "sysgym", "dataset", "--env", "sysgym/DeepRM-Compact-v0",
                             "--policy", "heuristic:sjf", "--episodes", "100000", "--batch", "1",
                             "--out", str(out), "--no-progress"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    meta = out / "sysgym" / "DeepRM-Compact" / "sjf-v0" / "data" / "metadata.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:   # wait for at least two finished episodes on disk
            try:
                if json.loads(meta.read_text()).get("total_episodes", 0) >= 2:
                    break
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    dataset = load(out)
    assert 2 <= dataset.total_episodes < 100000
    assert _replay(dataset) == dataset.total_steps


def test_distill_from_dataset(tmp_path, capsys):
    pytest.importorskip("sklearn")
    data = tmp_path / "data"
    assert main(["dataset", "--env", "sysgym/DeepRM-Compact-v0", "--policy", "heuristic:sjf", "--episodes", "4",
                 "--out", str(data), "--no-progress"]) == 0
    out = tmp_path / "tree"
    assert main(["distill", "--dataset", str(data), "--out", str(out), "--test-episodes", "2",
                 "--selection-episodes", "2", "--latency-decisions", "10", "--fidelity-samples", "50",
                 "--no-progress"]) == 0
    report = (out / "report.md").read_text()
    assert "dataset" in report and "sjf" in report
    test_row = next(line for line in report.splitlines() if "test episodes)" in line).split("|")
    float(test_row[2]), float(test_row[3])   # the rebuilt sjf and the student both scored
    assert (out / "tree.txt").read_text().strip()


def test_envs_do_not_import_minari():
    code = ("import sys, gymnasium as gym, sysgym; gym.make('sysgym/DeepRM-Compact-v0'); "
            "import sysgym.cli; print('minari' in sys.modules, 'jax' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.stdout.split() == ["False", "False"]


def test_distill_dataset_refusals_are_one_line(tmp_path, capsys):
    data = tmp_path / "cc"
    assert _build(data, "sysgym/CC-v0", "heuristic:aimd", ["env.max_steps=20"], 0.0, episodes=2) == 0
    capsys.readouterr()
    for argv, needle in ((["--dataset", str(data)], "discrete"),
                         (["--dataset", str(data), "--teacher", "heuristic:aimd"], "drop --teacher"),
                         (["--dataset", str(tmp_path / "missing")], "no such dataset folder"),
                         ([], "--teacher is required")):
        assert main(["distill", "--out", str(tmp_path / "tree"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
