"""One policy resolver (sysgym.agents.policy_specs) for every command: each form parses, bad specs
are one line, SB3 failures on unfitting observations are one line, and a DAG policy padded to N
nodes plays the benchmark's DAG cases with at most N nodes (the others not applicable)."""

import json

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents import policy_specs as ps


@pytest.fixture(scope="module")
def dag_checkpoint(tmp_path_factory):
    """A tiny MLP PPO checkpoint trained on DAG-EGS-v0 with its default padding (30 nodes)."""
    from sysgym.agents.ppo import train

    out = tmp_path_factory.mktemp("dag") / "ppo"
    train("sysgym/DAG-EGS-v0", steps=64, out_dir=out, num_envs=1, n_steps=64, progress=False,
          tensorboard=False, encoder="mlp")
    return out


@pytest.fixture(scope="module")
def sb3_p1(tmp_path_factory):
    """A tiny MaskablePPO model of Appointments-P1-v0 (constructed and saved, never trained)."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO

    path = tmp_path_factory.mktemp("sb3") / "model.zip"
    MaskablePPO("MlpPolicy", gym.make("sysgym/Appointments-P1-v0"), n_steps=16, batch_size=16, seed=0,
                device="cpu").save(path)
    return path


def test_every_form_parses_to_its_kind(tmp_path, dag_checkpoint, sb3_p1):
    (tmp_path / "mine.py").write_text("def make(env):\n    return None\n")
    (tmp_path / "rl").mkdir()
    cases = {"heuristic:sjf": "heuristic", "oracle": "oracle", "reference": "reference",
             str(dag_checkpoint): "checkpoint", f"sb3:{sb3_p1}": "sb3", f"rllib:{tmp_path / 'rl'}": "rllib",
             f"{tmp_path / 'mine.py'}:make": "factory"}
    for text, kind in cases.items():
        assert ps.parse(text).kind == kind, text


@pytest.mark.parametrize("text, words", [
    ("", "empty policy"), ("heuristic:", "needs a name"), ("sb3:nowhere.zip", "no such SB3 model file"),
    ("rllib:nowhere", "no such RLlib checkpoint folder"), ("nowhere", "no such checkpoint"),
    ("no_such_module_xyz:make", "cannot import no_such_module_xyz")])
def test_a_bad_spec_is_one_line(text, words):
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        ps.parse(text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_heuristic_or_oracle_that_the_family_lacks_is_one_line():
    with pytest.raises(ps.Unavailable, match="has no heuristic 'nope'"):
        ps.build(ps.parse("heuristic:nope"), "sysgym/DeepRM-Compact-v0")
    with pytest.raises(ps.Unavailable, match="not an Appointments env"):
        ps.build(ps.parse("oracle"), "sysgym/DeepRM-Compact-v0")


def test_rllib_without_ray_is_one_line(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    (tmp_path / "rl").mkdir()
    with pytest.raises(ValueError, match="needs ray") as error:
        ps.build(ps.parse(f"rllib:{tmp_path / 'rl'}"), "sysgym/CC-v0")
    assert "\n" not in str(error.value)


def test_an_sb3_model_on_an_observation_it_does_not_fit_is_one_line(sb3_p1):
    model = ps.sb3_model(str(sb3_p1))
    actor = ps.sb3_actor(model, True, str(sb3_p1))
    env = gym.make("sysgym/Appointments-P1-v0")
    obs, info = env.reset(seed=0)
    assert env.action_space.contains(actor.act(obs, info))
    with pytest.raises(ValueError, match=r"cannot act on an observation of shape \(3,\)") as error:
        actor.act(np.zeros(3, dtype=np.int8), {})          # SB3 itself raises an AssertionError/ValueError here
    assert "\n" not in str(error.value) and "MultiBinary(17,)" in str(error.value)


def test_a_dag_checkpoint_plays_the_cases_that_fit_its_padding(tmp_path, dag_checkpoint):
    from sysgym.benchmark.commands import main

    assert main(["--policy", str(dag_checkpoint), "--suite", "dag", "--episodes", "2", "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0
    envs = {e["env"]: e for e in json.loads((tmp_path / "out" / "results.json").read_text())["envs"]}
    assert envs["n20"]["mode"] == "batched" and len(envs["n20"]["episode_values"]["cores_needed"]) == 2
    for n in (40, 60):     # the default DAG-EGS-v0 pads to 30 nodes
        assert envs[f"n{n}"]["skipped"].startswith("not applicable: ")
        assert "padded to 30 nodes" in envs[f"n{n}"]["skipped"] and f"up to {n} nodes" in envs[f"n{n}"]["skipped"]
    scorecard = (tmp_path / "out" / "scorecard.md").read_text()
    assert "over 1 envs" in scorecard      # the skipped cases join no aggregate


def test_fit_kwargs_pads_a_smaller_dag_env_and_leaves_others_alone(dag_checkpoint):
    spec = ps.parse(str(dag_checkpoint))
    small = {"num_nodes": (8, 12)}                   # pads to 12 by default
    assert ps.fit_kwargs(spec, "sysgym/DAG-EGS-v0", {}) == {}                       # already 30
    assert ps.fit_kwargs(spec, "sysgym/DAG-EGS-v0", small) == {**small, "max_nodes": 30}
    own = {**small, "max_nodes": 12}
    assert ps.fit_kwargs(spec, "sysgym/DAG-EGS-v0", own) is own                      # the caller's own padding
    assert ps.fit_kwargs(ps.parse("heuristic:greedy"), "sysgym/DAG-EGS-v0", small) is small
    with pytest.raises(ps.Unavailable, match="not applicable"):
        ps.fit_kwargs(spec, "sysgym/DAG-EGS-v0", {"num_nodes": (40, 50)})


# ------------------------------------------------------------------------------ every command
def _cli(capsys, *args):
    from sysgym.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_takes_every_form(capsys, dag_checkpoint, sb3_p1):
    forms = {"heuristic:sjf": ("sysgym/DeepRM-Compact-v0", "| heuristic:sjf "),
             "reference": ("sysgym/Appointments-P1-v0", "| reference (greedy) "),
             f"sb3:{sb3_p1}": ("sysgym/Appointments-P1-v0", f"| sb3:{sb3_p1} (greedy) "),
             "oracle": ("sysgym/Appointments-P1-v0", "| oracle ")}
    for text, (env_id, row) in forms.items():
        code, out, err = _cli(capsys, "evaluate", "--policy", text, "--env", env_id, "--episodes", "2",
                              "--mode", "greedy", "--no-heuristics")
        assert code == 0, err
        assert row in out, out
    # a checkpoint names its env; a smaller DAG workload is padded to its 30 nodes
    code, out, err = _cli(capsys, "evaluate", "--checkpoint", str(dag_checkpoint), "--episodes", "2", "--mode",
                          "greedy", "--no-heuristics", "env.num_nodes=12")
    assert code == 0 and "| ppo (greedy) " in out and "max_nodes=30" in err


@pytest.mark.parametrize("args, words", [
    (["--policy", "heuristic:sjf"], "does not name its env; pass --env"),
    (["--checkpoint", "heuristic:sjf"], "not a PPO checkpoint"),
    (["--policy", "nowhere/run"], "no such checkpoint"),
    (["--policy", "heuristic:nope", "--env", "sysgym/DeepRM-Compact-v0"], "has no heuristic 'nope'"),
    ([], "--policy SPEC or --checkpoint PATH")])
def test_evaluate_input_errors_are_one_line_and_exit_2(capsys, args, words):
    code, _, err = _cli(capsys, "evaluate", *args)
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_evaluate_refuses_an_sb3_model_of_other_spaces_in_one_line(capsys, sb3_p1):
    code, _, err = _cli(capsys, "evaluate", "--policy", f"sb3:{sb3_p1}", "--env", "sysgym/DeepRM-Compact-v0")
    assert code == 2 and "trained on observation space MultiBinary(17,)" in err and err.count("\n") == 1


DISTILL_SMALL = ["--iterations", "1", "--samples", "60", "--num-envs", "2", "--eval-episodes", "1",
                 "--test-episodes", "2", "--fidelity-samples", "30", "--latency-decisions", "5", "--no-progress",
                 "--q-source", "simulate", "--rollouts", "1", "--horizon", "3"]


def test_distill_takes_every_form_as_teacher(capsys, tmp_path, dag_checkpoint, sb3_p1):
    forms = {"heuristic:alternate": "sysgym/Appointments-P1-v0", "reference": "sysgym/Appointments-P1-v0",
             f"sb3:{sb3_p1}": "sysgym/Appointments-P1-v0", str(dag_checkpoint): None}
    for i, (text, env_id) in enumerate(forms.items()):
        env = ["--env", env_id] if env_id else ["env.num_nodes=12"]      # the checkpoint names its env
        code, out, err = _cli(capsys, "distill", "--teacher", text, *env, "--out", str(tmp_path / str(i)),
                              *DISTILL_SMALL)
        assert code == 0, err
        assert "fidelity" in out, out


@pytest.mark.parametrize("args, words", [
    (["--teacher", "heuristic:sjf"], "--env is required"),
    (["--teacher", "sb3:nowhere.zip", "--env", "sysgym/Appointments-P1-v0"], "no such SB3 model file"),
    (["--teacher", "oracle", "--env", "sysgym/DeepRM-Compact-v0"], "not an Appointments env"),
])
def test_distill_input_errors_are_one_line_and_exit_2(capsys, tmp_path, args, words):
    code, _, err = _cli(capsys, "distill", *args, "--out", str(tmp_path / "x"), *DISTILL_SMALL)
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_explain_takes_every_form(capsys, tmp_path, dag_checkpoint, sb3_p1):
    forms = {"heuristic:alternate": ["--env", "sysgym/Appointments-P1-v0"],
             "reference": ["--env", "sysgym/Appointments-P1-v0"],
             f"sb3:{sb3_p1}": ["--env", "sysgym/Appointments-P1-v0"],
             str(dag_checkpoint): ["env.num_nodes=24"]}            # names its env; padded to its 30 nodes
    for i, (text, env) in enumerate(forms.items()):
        code, out, err = _cli(capsys, "explain", "--policy", text, *env, "--episodes", "2", "--states", "1",
                              "--epochs", "1", "--hidden", "64", "--out", str(tmp_path / str(i)))
        assert code == 0, err
        assert (tmp_path / str(i) / "explanations.json").is_file()


@pytest.mark.parametrize("args, words", [
    (["--policy", "heuristic:sjf"], "does not name its env; pass --env"),
    (["--policy", "sb3:nowhere.zip", "--env", "sysgym/Appointments-P1-v0"], "no such SB3 model file"),
    (["--policy", "heuristic:nope", "--env", "sysgym/DeepRM-Compact-v0"], "has no heuristic 'nope'")])
def test_explain_input_errors_are_one_line_and_exit_2(capsys, tmp_path, args, words):
    code, _, err = _cli(capsys, "explain", *args, "--out", str(tmp_path / "x"))
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_benchmark_plays_an_sb3_cc_model_on_a_multi_flow_case_without_a_traceback(tmp_path):
    """The multi-flow cases probe the policy on the PettingZoo env; SB3 asserts on the dict of
    observations, which must fall back to one flow at a time (was: an AssertionError traceback)."""
    from stable_baselines3 import PPO

    from sysgym.benchmark import runner, suites

    PPO("MlpPolicy", gym.make("sysgym/CC-v0"), n_steps=16, batch_size=16, seed=0, device="cpu").save(tmp_path / "m")
    suite = suites.cc()
    case = next(c for c in suite.cases if c.n_flows == 2)
    (record,) = runner.run([(ps.parse(f"sb3:{tmp_path / 'm.zip'}"), suite, case)], episodes=1)
    assert record.skipped is None and record.mode == "per-flow" and len(record.values["return"]) == 1
