"""The Pensieve and Aurora reproduction scripts (benchmarks/paper_pensieve.py, paper_aurora.py):
their statistics and verdict rules by hand, and a tiny end-to-end run of each (``--quick``)."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from benchmarks import paper_aurora, paper_pensieve

LADDER_KBPS = (300, 750, 1200, 1850, 2850, 4300)


def test_paired_interval_and_pensieve_verdicts():
    mean, lo, hi = paper_pensieve.paired_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert mean == 2.0 and 1.0 <= lo <= 2.0 <= hi <= 3.0
    mean, lo, hi = paper_pensieve.paired_ci([5.0] * 4, [4.0] * 4)  # no spread: a point interval
    assert mean == lo == hi == 1.0
    assert paper_pensieve.verdict(0.20, 0.01, 0.30) == "reproduced"
    assert paper_pensieve.verdict(0.12, 0.01, 0.30) == "reproduced"
    assert paper_pensieve.verdict(0.05, 0.01, 0.10).startswith("partly")
    assert paper_pensieve.verdict(0.30, -0.01, 0.60) == "not reproduced (no significant difference)"
    assert paper_pensieve.verdict(-0.30, -0.50, -0.10) == "not reproduced (RL significantly worse)"


def test_aurora_thresholds_and_training_ranges():
    assert paper_aurora.outside("bandwidth", 1000.0) and not paper_aurora.outside("bandwidth", 100.0)
    assert paper_aurora.outside("loss", 0.08) and not paper_aurora.outside("loss", 0.0)
    assert paper_aurora.outside("queue", 1) and not paper_aurora.outside("queue", 3000)
    assert paper_aurora.good({"utilisation": 0.9, "inflation": 1.5})
    assert not paper_aurora.good({"utilisation": 0.89, "inflation": 1.0})
    assert not paper_aurora.good({"utilisation": 1.0, "inflation": 1.51})
    assert paper_aurora.ppo_mean({"PPO s0": {"reward": 1.0}, "PPO s1": {"reward": 3.0}, "aimd": {"reward": 9.0}}) \
        == {"reward": 2.0}
    # every sweep includes values inside and outside the training range
    for param, values in paper_aurora.SWEEPS.items():
        flags = {paper_aurora.outside(param, v) for v in values}
        assert flags == {True, False}, param


class _TopLevel:
    """A stand-in policy that always asks for the top level."""

    def act(self, obs, info):
        return np.full(len(np.atleast_1d(info["chunk_index"])), 5)


@pytest.mark.parametrize("env_id, first", [("sysgym/ABR-Pensieve-v0", 1), ("sysgym/ABR-v0", 0)])
def test_first_chunk_is_the_initial_level_for_every_online_policy(env_id, first):
    from sysgym.agents.ppo import make_vector_env

    env = paper_pensieve.FirstChunkMask(make_vector_env(env_id, 3)) if first else make_vector_env(env_id, 3)
    policy = paper_pensieve.FirstChunkFixed(_TopLevel(), env.unwrapped)
    obs, info = env.reset(seed=0)
    if first:  # training in Pensieve mode: only the initial level is allowed on chunk 0
        assert (info["action_mask"] == np.eye(6, dtype=info["action_mask"].dtype)[first]).all()
    assert (policy.act(obs, info) == first).all()
    obs, _, _, _, info = env.step(policy.act(obs, info))
    assert (info["action_mask"] == 1).all() and (policy.act(obs, info) == 5).all()
    env.close()


def _fake_abr_data(root):
    """Three short cooked traces per folder and a 49-chunk video for Pensieve's ladder."""
    rng = np.random.default_rng(0)
    for folder in ("fcc_train", "norway_train"):
        d = root / "traces" / folder
        d.mkdir(parents=True)
        for k in range(3):
            mbps = rng.uniform(0.5, 4.0, 120)
            (d / f"trace_{k}").write_text("".join(f"{t:.1f}\t{b:.3f}\n" for t, b in enumerate(mbps)))
    video = root / "video_envivio"
    video.mkdir()
    for level, kbps in enumerate(LADDER_KBPS):
        (video / f"video_size_{level}").write_text("".join(f"{int(kbps * 500 * (1 + 0.1 * (c % 3)))}\n"
                                                           for c in range(49)))
    return root


def test_pensieve_quick_run_writes_results_figures_and_checkpoints(tmp_path, capsys):
    data = _fake_abr_data(tmp_path / "data")
    out = tmp_path / "pensieve"
    argv = ["--quick", "--seeds", "1", "--data", str(data), "--out", str(out), "--run-dir", str(tmp_path / "runs")]
    assert paper_pensieve.main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"results.json", "results.md", "qoe_cdf.png", "learning_curves.png",
                                               "policy.pt", "policy_fcc.pt"}
    results = json.loads((out / "results.json").read_text())
    assert set(results["setups"]) == {"synthetic", "fcc"}
    synthetic = results["setups"]["synthetic"]["tests"]
    assert set(synthetic) == {"synthetic test", "Norway (untrained traces and video)"}
    per = synthetic["synthetic test"]["per_trace"]
    assert set(per) == {"PPO s0 (greedy)", "PPO s0 (sampled)", "bb", "rb", "robust_mpc", "offline optimal"}
    assert all(len(v) == 6 for v in per.values())                      # --quick: the first 6 test traces
    assert len(results["setups"]["fcc"]["tests"]["Norway"]["per_trace"]["robust_mpc"]) == 3
    text = (out / "results.md").read_text()
    assert "## Claim" in text and text.count("+12% to +25%") == 6   # 3 tests x greedy, sampled
    run = results["setups"]["synthetic"]["runs"][0]
    assert run["steps"] >= 4096 and run["curve"]

    # the shipped checkpoint is an ABR-v0 policy; --evaluate-only keeps the training record
    from sysgym.agents.ppo import load_policy

    policy = load_policy(out / "policy.pt")
    env = gym.make("sysgym/ABR-v0", traces="test")
    obs, info = env.reset(seed=0)
    assert env.action_space.contains(policy.act(obs, info))
    assert paper_pensieve.main(argv + ["--evaluate-only", "--setups", "synthetic"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["setups"]["synthetic"]["runs"][0]["steps"] == run["steps"]
    assert again["setups"]["fcc"] == results["setups"]["fcc"]          # not rerun: kept as it was
    capsys.readouterr()


def test_aurora_quick_run_writes_results_figures_and_checkpoints(tmp_path, capsys):
    out = tmp_path / "aurora"
    argv = ["--quick", "--seeds", "1", "--data", str(tmp_path / "none"), "--out", str(out),
            "--run-dir", str(tmp_path / "runs")]
    assert paper_aurora.main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"results.json", "results.md", "policy.pt", "policy_aurora.pt", "robustness_default.png",
                     "robustness_aurora.png", "trace_default.png", "trace_aurora.png"}
    results = json.loads((out / "results.json").read_text())
    assert set(results["runs"]) == {"default", "aurora"}
    for name, run in results["runs"].items():
        ev = run["evaluation"]
        assert set(ev["sets"]) == {"test links", "synthetic traces"}
        assert set(ev["sets"]["test links"]) == {"PPO s0", "fixed", "aimd", "delay", "oracle"}
        assert all(len(r["reward"]) == 4 for r in ev["sets"]["test links"].values())
        assert set(ev["sweeps"]) == set(paper_aurora.SWEEPS)
        for label, res in ev["sets"].items():
            for pol, r in res.items():
                assert all(0.0 <= u <= 1.0 + 1e-9 for u in r["utilisation"]), (name, label, pol)
                assert all(math.isfinite(x) for x in r["reward"])
        assert len(paper_aurora.claims(ev)) == 2 + len(paper_aurora.SWEEPS)
    # the Aurora-compatible agent's action space is Aurora's unbounded one
    from sysgym.agents.ppo import load_checkpoint

    payload = load_checkpoint(out / "policy_aurora.pt")
    assert payload["config"]["env_kwargs"]["aurora_compatible"] is True
    assert payload["spaces"][1].high[0] > 1e11
    capsys.readouterr()


@pytest.mark.parametrize("module", [paper_pensieve, paper_aurora])
def test_scripts_cite_their_papers(module):
    doc = module.__doc__
    assert ("Pensieve" in doc and "SIGCOMM 2017" in doc and "SIGCOMM 2015" in doc) or \
           ("Jay" in doc and "ICML 2019" in doc)
