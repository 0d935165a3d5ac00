"""sysgym.reference: shipped agents load from plain-data files, checked by sha256; a missing agent
is a clear error naming the env."""

import hashlib
import json
import shutil

import gymnasium as gym
import pytest

from sysgym import reference


def test_a_missing_agent_names_the_env():
    with pytest.raises(reference.NoReferenceAgent, match=r"no reference agent for sysgym/Nope-v0 yet"):
        reference.load("Nope-v0")
    assert issubclass(reference.NoReferenceAgent, ValueError)       # the CLI's one-line input error


@pytest.mark.parametrize("env_id", reference.available())
def test_every_shipped_agent_loads_and_acts(env_id):
    meta = reference.metadata(env_id)
    assert meta["training"]["steps"] > 0 and meta["scores"], "metadata needs its budget and scores"
    env = gym.make(env_id)
    policy = reference.load(env_id.split("/", 1)[1], env=env)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert env.action_space.contains(action)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A reference folder holding one small PPO checkpoint trained here."""
    from sysgym.agents.ppo import train

    train("sysgym/Appointments-P1-v0", steps=256, out_dir=tmp_path / "run", num_envs=2, n_steps=128,
          progress=False, tensorboard=False)
    shutil.copyfile(tmp_path / "run" / "checkpoint.pt", tmp_path / "Appointments-P1-v0.pt")
    digest = hashlib.sha256((tmp_path / "Appointments-P1-v0.pt").read_bytes()).hexdigest()
    meta = {"env_id": "sysgym/Appointments-P1-v0", "weights": "Appointments-P1-v0.pt", "sha256": digest,
            "loader": "ppo", "deterministic": True, "training": {"steps": 256}, "scores": {}}
    (tmp_path / "Appointments-P1-v0.json").write_text(json.dumps(meta))
    monkeypatch.setattr(reference, "FOLDER", tmp_path)
    return tmp_path


def test_load_checks_the_weights_and_the_loader(folder):
    assert reference.available() == ["sysgym/Appointments-P1-v0"]
    policy = reference.load("sysgym/Appointments-P1-v0")
    env = gym.make("sysgym/Appointments-P1-v0")
    obs, info = env.reset(seed=1)
    assert policy.act(obs, info) in (0, 1)
    meta = json.loads((folder / "Appointments-P1-v0.json").read_text())
    (folder / "Appointments-P1-v0.json").write_text(json.dumps({**meta, "loader": "os:system"}))
    with pytest.raises(ValueError, match="loader 'os:system' must be"):
        reference.load("Appointments-P1-v0")
    (folder / "Appointments-P1-v0.json").write_text(json.dumps(meta))
    with open(folder / "Appointments-P1-v0.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="sha256"):
        reference.load("Appointments-P1-v0")


def test_the_benchmark_plays_the_reference_agent(folder, tmp_path):
    from sysgym.benchmark import benchmark

    card = benchmark("reference", suite="appointments", episodes=3)
    played = {e.case.name: e.run for e in card.envs}
    assert played["P1"].mode == "batched" and played["P1"].episodes == 3
    assert "no reference agent for sysgym/Appointments-P2-v0" in played["P2"].skipped


def test_train_reference_trains_ships_and_scores_an_agent(tmp_path, monkeypatch):
    from benchmarks import train_reference

    monkeypatch.chdir(tmp_path)          # the PPO run folder goes under runs/
    out = tmp_path / "agents"
    assert train_reference.main(["--only", "Appointments-P1-v0", "--steps", "512", "--episodes", "3",
                                 "--out", str(out)]) == 0
    meta = json.loads((out / "Appointments-P1-v0.json").read_text())
    assert meta["sha256"] == hashlib.sha256((out / "Appointments-P1-v0.pt").read_bytes()).hexdigest()
    assert meta["training"]["steps"] >= 512 and "sysgym train --env sysgym/Appointments-P1-v0" in meta["training"]["equivalent"]
    assert list(meta["scores"]) == ["P1"] and meta["scores"]["P1"]["episodes"] == 3
    monkeypatch.setattr(reference, "FOLDER", out)
    assert reference.load("Appointments-P1-v0") is not None
