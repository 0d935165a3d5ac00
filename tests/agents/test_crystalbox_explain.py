"""CrystalBox explanations end to end on every family, the return scale, model files, the CLI."""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import pytest
import torch

import sysgym  # noqa: F401
from sysgym.agents.crystalbox import CrystalBox, Explanation, Normaliser, explain
from sysgym.agents.crystalbox.commands import run_explain
from sysgym.agents.crystalbox.evaluation import alert_scores, squared_errors
from sysgym.agents.heuristics import heuristics_for


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small torch networks on a busy 2-core machine: one thread (the PPO trainer's default)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

TINY = {"hidden": 64, "tail_hidden": 64, "epochs": 3}

FAMILIES = [
    ("sysgym/DeepRM-Compact-v0", "sjf", {}),
    ("sysgym/DAG-EGS-v0", "greedy", {}),
    ("sysgym/ABR-v0", "bb", {}),
    ("sysgym/CC-v0", "aimd", {}),
    ("sysgym/Appointments-P1-v0", "p1_rule", {}),
]


@pytest.mark.parametrize("env_id, heuristic, kwargs", FAMILIES, ids=[f[0].split("/")[1] for f in FAMILIES])
def test_explain_plot_and_text_on_every_family(env_id, heuristic, kwargs, tmp_path):
    box, samples = CrystalBox.fit(heuristics_for(env_id)[heuristic], env_id, env_kwargs=kwargs, states=24,
                                  num_envs=8, warmup=1, every=2, predictor=TINY, seed=0)
    components = gym.make(env_id).unwrapped.reward_components
    assert box.components == tuple(components) and samples.num_states == 24

    env = gym.make(env_id, **kwargs)
    obs, info = env.reset(seed=3)
    obs, _, _, _, info = env.step(env.action_space.sample(mask=info.get("action_mask")) if "action_mask" in info
                                  else env.action_space.sample())
    e = explain(box, (obs, info))
    assert e.mean.shape == e.std.shape == (len(e.labels), len(components))
    assert np.all(np.isfinite(e.mean))
    constant = box.normaliser.constant        # zero-weight components (DAG's slack): exactly 0
    assert np.all(e.std[:, ~constant] > 0)
    assert np.all(e.mean[:, constant] == 0) and np.all(e.std[:, constant] == 0)
    np.testing.assert_allclose(e.total, e.mean.sum(axis=1))
    if "action_mask" in info:      # every valid action, nothing else
        np.testing.assert_array_equal(e.actions, np.flatnonzero(info["action_mask"]))
    text = e.table()
    for name in components:
        assert name in text
    png = e.plot(tmp_path / "why.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from_snapshot = explain(box, env.unwrapped.get_state())        # a snapshot explains the same state
    np.testing.assert_allclose(from_snapshot.mean, e.mean)
    box.save(tmp_path / "crystalbox.pt")
    again = explain(CrystalBox.load(tmp_path), (obs, info))
    np.testing.assert_array_equal(again.mean, e.mean)
    np.testing.assert_array_equal(again.std, e.std)


def test_policy_embedding_features_and_their_model_file(tmp_path):
    from sysgym.agents.ppo import ActorCritic, PPOPolicy, default_config
    from sysgym.agents.ppo.observations import ObservationAdapter

    env = gym.make("sysgym/ABR-v0")
    policy = PPOPolicy(ActorCritic(env.observation_space, env.action_space, default_config("sysgym/ABR-v0")),
                       ObservationAdapter(env.observation_space))
    box, samples = CrystalBox.fit(policy, "sysgym/ABR-v0", states=16, num_envs=8, predictor=TINY)
    assert box.features == "embed" and samples.features.shape[1] == policy.embed(env.reset(seed=0)[0]).shape[0]
    obs, info = env.reset(seed=0)
    e = explain(box, (obs, info), chosen=policy.act(obs, info))
    assert e.chosen is not None and "(pi)" in e.table()
    box.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="embedding"):
        CrystalBox.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(explain(CrystalBox.load(tmp_path / "m.pt", policy=policy), (obs, info)).mean, e.mean)


def test_normaliser_round_trips_and_keeps_zero_inside():
    rng = np.random.default_rng(0)
    returns = np.column_stack([rng.uniform(1, 20, 50), -rng.uniform(0, 8, 50), np.zeros(50), rng.normal(0, 3, 50)])
    n = Normaliser.fit(returns)
    np.testing.assert_array_equal(n.lo, [0.0, returns[:, 1].min(), 0.0, returns[:, 3].min()])
    np.testing.assert_array_equal(n.hi, [returns[:, 0].max(), 0.0, 0.0, returns[:, 3].max()])
    np.testing.assert_array_equal(n.constant, [False, False, True, False])
    z = n.transform(returns)
    assert z.min() >= 0.0 and z.max() <= 1.0 and z[:, 0].max() == 1.0 and z[:, 1].min() == 0.0
    np.testing.assert_allclose(n.inverse(z), returns, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(n.inverse_std(np.full(4, 0.1)), 0.1 * np.array([n.hi[0], -n.lo[1], 1.0, n.hi[3] - n.lo[3]]))
    np.testing.assert_allclose(n.signed(returns)[:, :2], np.column_stack([z[:, 0], z[:, 1] - 1.0]))
    again = Normaliser.from_data(n.to_data())
    np.testing.assert_array_equal(again.transform(returns), z)
    with pytest.raises(ValueError):
        Normaliser.fit(np.array([[np.nan]]))
    with pytest.raises(ValueError):
        Normaliser.from_data({"lo": [1.0]})


def test_contrast_names_the_component_that_decides():
    e = Explanation(("quality", "rebuffer", "smoothness"), np.array([0, 3]), ["0", "3"],
                    mean=np.array([[2.0, 0.0, -0.5], [6.0, -9.0, -1.0]]), std=np.ones((2, 3)), chosen=0)
    c = e.contrast(0, 3)          # 0 over 3: +4 from avoiding the stall beats -4 of quality
    np.testing.assert_allclose(c.difference, [-4.0, 9.0, 0.5])
    assert c.total == pytest.approx(5.5) and c.dominant == "rebuffer"
    back = e.contrast(3, 0)       # 3 is worse, mostly through rebuffering
    assert back.total == pytest.approx(-5.5) and back.dominant == "rebuffer"
    assert "mostly rebuffer" in e.table()
    with pytest.raises(ValueError, match="not among"):
        e.contrast(1, 0)


def test_fidelity_and_alert_scores_by_hand():
    n = Normaliser(np.array([0.0, -10.0]), np.array([10.0, 0.0]))
    truth = np.array([[5.0, -1.0], [2.0, -5.0], [9.0, 0.0]])
    guess = np.array([[4.0, -1.0], [2.0, -1.0], [20.0, 0.0]])       # 20 is clipped to the top: 10
    np.testing.assert_allclose(squared_errors(truth, guess, n), [[0.01, 0.0], [0.0, 0.16], [0.01, 0.0]])
    scores = alert_scores(truth, guess, n, ("a", "b"), {"a": 0.55, "b": -0.25})
    assert scores["a"] == {"positives": 2, "negatives": 1, "recall": 1.0, "fpr": 0.0}
    assert scores["b"]["positives"] == 1 and scores["b"]["recall"] == 0.0 and scores["b"]["fpr"] == 0.0


def test_model_files_are_plain_data(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError):
        CrystalBox.load(bad)
    planted = tmp_path / "planted.pt"
    torch.save({"format": "sysgym-crystalbox/1", "settings": argparse.Namespace()}, planted)
    with pytest.raises(ValueError, match="refused"):
        CrystalBox.load(planted)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match="not a sysgym CrystalBox model"):
        CrystalBox.load(other)
    with pytest.raises(FileNotFoundError):
        CrystalBox.load(tmp_path / "missing.pt")


def test_sysgym_explain_command_writes_tables_and_charts(tmp_path, capsys):
    args = argparse.Namespace(policy="heuristic:bb", env="sysgym/ABR-v0", episodes=2, states=2, model=None,
                              out=str(tmp_path / "out"), seed=0, hidden=64, epochs=2, overrides=["env.num_chunks=20"])
    assert run_explain(args) == 0
    out = tmp_path / "out"
    assert (out / "crystalbox.pt").is_file() and (out / "explanations.json").is_file()
    assert len(list(out.glob("state_*.png"))) == 2
    text = (out / "explanations.txt").read_text()
    assert "rebuffer" in text and "why" in text and "(pi)" in text
    args.model, args.out = str(out / "crystalbox.pt"), str(tmp_path / "again")
    assert run_explain(args) == 0
    for bad, message in (({"policy": "heuristic:nope"}, "has no heuristic"), ({"policy": "no/such/dir"}, "checkpoint"),
                         ({"overrides": ["lr=3"]}, "env.<kwarg>"), ({"episodes": 0}, "--episodes")):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            run_explain(argparse.Namespace(**{**vars(args), "model": None, **bad}))
