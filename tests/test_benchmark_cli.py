"""``sysgym benchmark``: shipped numbers reproduced, any policy (module, .py file, SB3 zip, PPO
checkpoint) runs through it, --jobs does not change results, bad input is one line and exit 2."""

import json
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from sysgym.agents.evaluation import evaluate
from sysgym.benchmark import baselines
from sysgym.benchmark.commands import main
from sysgym.benchmark.suites import EVAL_SEED


def _bench(tmp_path, *args, name="out"):
    out = tmp_path / name
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "results.json").read_text()), out


def _envs(results):
    return {f"{e['suite']}/{e['env']}": e for e in results["envs"]}


def test_sjf_reproduces_the_shipped_reference_numbers_exactly(tmp_path, capsys):
    results, out = _bench(tmp_path, "--policy", "heuristic:sjf", "--suite", "deeprm", "--episodes", "3")
    shipped = baselines.load()["suites"]["deeprm"]
    assert results["reference_rows_played_here"] == []          # the shipped rows matched every case hash
    for e in results["envs"]:
        rows = shipped["cases"][e["env"]]["rows"]
        assert e["episode_values"]["mean_slowdown_all"] == rows["sjf"]["values"][:3]
        assert e["mode"] == "batched" and e["score"] is not None
    assert {p.name for p in out.iterdir()} == {"scorecard.md", "results.csv", "results.json", "scores.png",
                                               "profile.png", "episodes.json"}
    printed = capsys.readouterr()
    assert "deeprm v1 sha256:" in printed.err and "| scenario-10 | 3 |" in printed.out


POLICY_MODULE = '''
import numpy as np

class FirstValid:
    """The first valid action; only for single envs (refuses a vector env)."""
    def __init__(self, env):
        if hasattr(env, "num_envs"):
            raise TypeError("single envs only")
    def act(self, obs, info):
        return int(np.argmax(info["action_mask"]))

class FirstValidBatched:
    def __init__(self, env):
        pass
    def act(self, obs, info):
        return np.argmax(info["action_mask"], axis=-1)

def make(env):
    return FirstValid(env)

def make_batched(env):
    return FirstValidBatched(env)
'''


def _first_valid_efficacy(problem, episodes):
    from sysgym.benchmark.suites import APPOINTMENT_IDS

    env = gym.make(APPOINTMENT_IDS[problem])   # the IDs the suite plays (P3: -v1)
    result = evaluate(lambda e: type("P", (), {"act": lambda self, o, i: int(np.argmax(i["action_mask"]))})(),
                      env, episodes, seed=EVAL_SEED)
    return [m["percentile_efficacy"] for m in result.metrics]


def test_a_users_policy_module_runs_per_episode_or_batched(tmp_path, monkeypatch):
    (tmp_path / "my_agent.py").write_text(textwrap.dedent(POLICY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    expected = {p: _first_valid_efficacy(p, 4) for p in ("P1", "P2", "P3")}
    single, _ = _bench(tmp_path, "--policy", "my_agent:make", "--suite", "appointments", "--episodes", "4")
    batched, _ = _bench(tmp_path, "--policy", "my_agent:make_batched", "--suite", "appointments",
                        "--episodes", "4", name="b")
    by_file, _ = _bench(tmp_path, "--policy", f"{tmp_path / 'my_agent.py'}:make", "--suite", "appointments",
                        "--episodes", "4", name="c")
    for results, mode in ((single, "per-episode"), (batched, "batched"), (by_file, "per-episode")):
        for e in results["envs"]:
            assert e["mode"] == mode
            assert e["episode_values"]["percentile_efficacy"] == expected[e["env"]]


def test_an_sb3_maskable_ppo_zip_runs_through_it(tmp_path):
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO

    env = gym.make("sysgym/Appointments-P1-v0")
    model = MaskablePPO("MlpPolicy", env, n_steps=50, batch_size=50, n_epochs=1, seed=0, device="cpu")
    model.learn(100)
    model.save(tmp_path / "model.zip")
    results, _ = _bench(tmp_path, "--policy", f"sb3:{tmp_path / 'model.zip'}", "--suite", "appointments",
                        "--episodes", "3")
    envs = _envs(results)
    assert "trained on observation space MultiBinary(17,)" in envs["appointments/P3"]["skipped"]  # P3: breaks
    loaded = MaskablePPO.load(tmp_path / "model.zip", device="cpu")
    for problem in ("P1", "P2"):
        e = envs[f"appointments/{problem}"]
        assert e["mode"] == "batched"
        env = gym.make(f"sysgym/Appointments-{problem}-v0")
        for i, value in enumerate(e["episode_values"]["percentile_efficacy"]):
            obs, info = env.reset(seed=EVAL_SEED + i)
            done = False
            while not done:
                action, _ = loaded.predict(obs, deterministic=True, action_masks=info["action_mask"].astype(bool))
                obs, _, terminated, truncated, info = env.step(int(action))
                done = terminated or truncated
            assert info["episode_metrics"]["percentile_efficacy"] == value


def test_results_do_not_depend_on_jobs(tmp_path):
    from sysgym.agents.ppo import train

    train("sysgym/Appointments-P1-v0", steps=256, out_dir=tmp_path / "ppo", num_envs=2, n_steps=128,
          progress=False, tensorboard=False)
    args = ["--policy", str(tmp_path / "ppo"), "--sample", "--suite", "appointments", "--episodes", "60"]
    one, _ = _bench(tmp_path, *args, "--jobs", "1", name="one")
    two, _ = _bench(tmp_path, *args, "--jobs", "2", name="two")
    assert [e["mode"] for e in one["envs"]] == ["batched", "batched", ""]     # P3: other spaces, skipped
    assert one["envs"] == two["envs"] and one["overall"] == two["overall"]


def test_baselines_are_played_for_cases_without_shipped_numbers(tmp_path):
    data = tmp_path / "abr"
    (data / "traces" / "mini").mkdir(parents=True)
    (data / "video_envivio").mkdir()
    for k, rate in enumerate((1.2, 3.0)):
        lines = [f"{t:.1f} {rate + 0.5 * np.sin(t / 7):.3f}" for t in np.arange(0, 400, 1.0)]
        (data / "traces" / "mini" / f"trace_{k}").write_text("\n".join(lines) + "\n")
    for level, kbps in enumerate((300, 750, 1200, 1850, 2850, 4300)):
        sizes = [int(kbps * 1000 / 8 * 4 * (1 + 0.1 * np.cos(c))) for c in range(48)]
        (data / "video_envivio" / f"video_size_{level}").write_text("\n".join(map(str, sizes)) + "\n")
    results, out = _bench(tmp_path, "--policy", "heuristic:bb", "--suite", "abr", "--abr-data", str(data),
                          "--episodes", "2")
    assert results["reference_rows_played_here"] == ["abr/mini"]
    mini = _envs(results)["abr/mini"]
    assert mini["played_on"] == "sysgym/ABR-Pensieve-v0" and mini["references"]["bb"]["mean"] == mini["mean"]
    assert mini["score"] is not None and "| mini | 2 |" in (out / "scorecard.md").read_text()


@pytest.mark.parametrize("args, expected", [
    (["--policy", "heuristic:"], "needs a name"),
    (["--policy", "no/such/run"], "no such checkpoint"),
    (["--policy", "no_such_module_xyz:make"], "cannot import no_such_module_xyz"),
    (["--policy", "sb3:missing.zip"], "no such SB3 model file"),
    (["--policy", "heuristic:nope", "--suite", "dag"], "has no heuristic 'nope'"),
    (["--policy", "heuristic:sjf", "--suite", "deeprm", "--episodes", "0"], "--episodes must be >= 1"),
    (["--policy", "heuristic:sjf", "--suite", "deeprm", "--jobs", "0"], "--jobs must be >= 1"),
    (["--policy", "heuristic:sjf", "--suite", "deeprm", "--variant", "sysgym/ABR-v0"], "not a variant"),
])
def test_input_errors_are_one_line_and_exit_2(args, expected, capsys):
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_a_file_without_the_factory_and_a_foreign_zip_are_input_errors(tmp_path, capsys):
    (tmp_path / "agent.py").write_text("x = 1\n")
    (tmp_path / "model.zip").write_bytes(b"not a zip")
    for policy, expected in ((f"{tmp_path / 'agent.py'}:make", "has no callable 'make'"),
                             (f"sb3:{tmp_path / 'model.zip'}", "not a Stable-Baselines3 model zip")):
        assert main(["--policy", policy, "--suite", "appointments", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err


def test_a_factory_without_act_and_an_out_file_are_input_errors(tmp_path, capsys):
    (tmp_path / "noact.py").write_text("def make(env):\n    return object()\n")
    assert main(["--policy", f"{tmp_path / 'noact.py'}:make", "--suite", "appointments", "--episodes", "2",
                 "--no-progress"]) == 2
    assert "has no act(obs, info)" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["--policy", "heuristic:random", "--suite", "appointments", "--episodes", "2",
                 "--out", str(tmp_path / "file"), "--no-progress"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_suite_without_reference_agents_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from sysgym import reference

    monkeypatch.setattr(reference, "FOLDER", tmp_path)  # as if no agent were shipped
    assert main(["--policy", "reference", "--suite", "abr", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no reference agent for sysgym/ABR-v0" in err and len(err.strip().splitlines()) == 1, err
