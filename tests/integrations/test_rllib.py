"""sysgym on Ray RLlib's new API stack (``sysgym.integrations.rllib``).

Every training test is small: PPO for 2 iterations of 256 env steps, 2 env runners (separate Ray
worker processes on the session's local Ray instance), 4 sub-envs each through the native vector
env (multi-agent: Gymnasium-style sync vectorisation, the only kind RLlib has for it). Each checks
that steps were sampled, that episode returns and ``info["episode_metrics"]`` reach RLlib's results,
and that the checkpoint restores and acts. The tests of the command line, the example script and
the README snippet exercise their own code; the first two sample in the driver (0 env runners).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed here; its tests run in .venv-rllib "
                                        "(make test creates it)")
pytest.importorskip("torch", reason="torch is not installed here; the RLlib tests run in .venv-rllib")

import sysgym  # noqa: E402
from sysgym.agents.evaluation import evaluate  # noqa: E402
from sysgym.integrations import rllib as srl  # noqa: E402

# RLlib registers its env wrapper with Gymnasium again for every algorithm built in this process
pytestmark = pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-:UserWarning")

RUNNERS = 2
ENVS_PER_RUNNER = 4
BATCH = 256  # env steps per iteration: 2 runners x 4 sub-envs x 32 steps
MODEL = {"fcnet_hiddens": [32], "head_fcnet_hiddens": [32]}
IDS = [e.id for e in sysgym.ENVIRONMENTS]
APPOINTMENTS_P2 = "sysgym/Appointments-P2-v0"
ROOT = Path(__file__).resolve().parents[2]
README = Path(os.environ.get("SYSGYM_README", ROOT / "docs" / "ray.md"))   # the README's section moved there

# Short episodes, so that 2 x 32 steps per sub-env finish several of them.
DEEPRM = ("sysgym/DeepRM-CompactSparse-v0", {"episode_length": 10})
ABR = ("sysgym/ABR-v0", {"num_chunks": 8})
DAG = ("sysgym/DAG-EGS-v0", {"num_nodes": (5, 7), "max_nodes": 7})
CC = ("sysgym/CC-v0", {"max_steps": 16})
MULTI_FLOW = {"n_flows": 2, "max_steps": 16}


@dataclass
class Run:
    results: list[dict[str, Any]]
    runners: list[dict[str, Any]]
    checkpoint: Path

    @property
    def last(self) -> dict[str, Any]:
        return self.results[-1]["env_runners"]


def train_small(env: str, env_config: dict[str, Any], tmp_path: Path, iterations: int = 2,
                **kwargs: Any) -> Run:
    envs_per_runner = kwargs.pop("num_envs_per_env_runner", ENVS_PER_RUNNER)
    config = (srl.ppo_config(env, env_config=env_config, num_env_runners=RUNNERS,
                             num_envs_per_env_runner=envs_per_runner, model_config=MODEL, **kwargs)
              .training(train_batch_size_per_learner=BATCH, minibatch_size=64, num_epochs=1)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        # a lambda travels by value (the remote workers need not import this test module)
        runners = algo.env_runner_group.foreach_env_runner(
            lambda r: {"pid": os.getpid(), "num_envs": r.num_envs,
                       "env": type(getattr(r.env, "unwrapped", r.env)).__name__},
            local_env_runner=False)
        results = [algo.train() for _ in range(iterations)]
        checkpoint = tmp_path / "checkpoint"
        algo.save_to_path(str(checkpoint))
    finally:
        algo.stop()
    return Run(results, runners, checkpoint)


def assert_sampled_by_separate_runners(run: Run, vector_class: str | None, num_envs: int) -> None:
    pids = {r["pid"] for r in run.runners}
    assert len(run.runners) == RUNNERS and len(pids) == RUNNERS and os.getpid() not in pids
    for r in run.runners:
        assert r["num_envs"] == num_envs
        if vector_class is not None:
            assert r["env"] == vector_class, "the env runners did not use the native vector env"
    steps = [res["env_runners"]["num_env_steps_sampled_lifetime"] for res in run.results]
    assert steps[0] >= BATCH and steps[1] >= steps[0] + BATCH
    assert run.last["num_episodes_lifetime"] > 0
    assert np.isfinite(run.last["episode_return_mean"])


def native_vector_class(env_id: str) -> str:
    return gym.spec(env_id).vector_entry_point.rsplit(":", 1)[1]


def assert_metrics_reported(run: Run, env_id: str, env_config: dict[str, Any]) -> dict[str, float]:
    env = gym.make(env_id, **env_config)
    names = set(env.unwrapped.metric_names)
    env.close()
    metrics = run.last[srl.METRICS_KEY]
    assert names <= set(metrics), f"missing episode metrics {sorted(names - set(metrics))}"
    assert all(np.isfinite(float(metrics[n])) for n in names)
    return metrics


class UnmaskedRandom:
    """Uniform over every action, valid or not (the control for the masking tests)."""

    def __init__(self, env: gym.Env):
        self.n = int(env.action_space.n)
        self.rng = np.random.default_rng(0)

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        return int(self.rng.integers(self.n))


def train_command(argv: list[str]) -> int:
    """``sysgym train --engine rllib ARGV`` once the CLI has the flag, else the module's own entry
    point (``python -m sysgym.integrations.rllib ARGV``, the same code)."""
    from sysgym import cli

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            cli.build_parser().parse_args(["train", "--engine", "rllib", "--env", "x", "--steps", "1"])
    except SystemExit:
        return srl.main(argv)
    return cli.main(["train", "--engine", "rllib", *argv])


# ------------------------------------------------------------------ no Ray actors needed
def test_register_all_registers_every_id_and_the_multi_flow_env():
    from ray.tune.registry import ENV_CREATOR, _global_registry

    names = srl.register_all()
    assert set(IDS) | {srl.MULTI_FLOW_CC} == set(names)
    for name in names:
        assert _global_registry.contains(ENV_CREATOR, name), name


@pytest.mark.parametrize("env_id", IDS)
def test_creators_give_observations_rllib_reads(env_id):
    """Every ID: a 1-D Box, or {observations: 1-D Box, action_mask} for Discrete actions; the native
    vector env's batch equals the single envs' observations for the same seeds."""
    single = srl.EnvCreator(env_id)({})
    vec = srl.EnvCreator(env_id)({"num_envs": 3})
    space = single.observation_space
    assert vec.single_observation_space == space
    masked = isinstance(single.action_space, spaces.Discrete)
    flat = space[srl.OBS_KEY] if masked else space
    assert isinstance(flat, spaces.Box) and len(flat.shape) == 1 and flat.dtype == np.float32
    if masked:
        assert space[srl.MASK_KEY].shape == (single.action_space.n,)
    batch, _ = vec.reset(seed=5)
    assert vec.observation_space.contains(batch)
    for i in range(3):
        obs, _ = single.reset(seed=5 + i)
        assert space.contains(obs)
        row = {k: v[i] for k, v in batch.items()} if masked else batch[i]
        if masked:
            for key in (srl.OBS_KEY, srl.MASK_KEY):
                np.testing.assert_array_equal(row[key], obs[key])
        else:
            np.testing.assert_array_equal(row, obs)
    rng = np.random.default_rng(0)
    for _ in range(20):
        if masked:
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in batch[srl.MASK_KEY]])
        else:
            actions = vec.action_space.sample()
        batch, *_ = vec.step(actions)
        assert vec.observation_space.contains(batch)


def test_masking_module_never_samples_a_masked_action():
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from sysgym.integrations.rllib_masking import MaskedPPOTorchRLModule

    n = 11
    adapter = srl.ObservationAdapter(spaces.Box(0.0, 1.0, (7,), np.float32), spaces.Discrete(n))
    module = RLModuleSpec(module_class=MaskedPPOTorchRLModule,
                          observation_space=adapter.observation_space,
                          action_space=spaces.Discrete(n), model_config=MODEL).build()
    rng = np.random.default_rng(0)
    masks = (rng.random((512, n)) < 0.2).astype(np.float32)
    masks[np.arange(512), rng.integers(n, size=512)] = 1.0  # at least one valid action per row
    masks[:64] = 0.0
    masks[:64, 3] = 1.0  # rows with exactly one valid action
    obs = rng.random((512, 7)).astype(np.float32)
    for forward in (module.forward_exploration, module.forward_inference):
        batch = {Columns.OBS: {srl.OBS_KEY: torch.from_numpy(obs), srl.MASK_KEY: torch.from_numpy(masks)}}
        with torch.no_grad():
            logits = forward(batch)[Columns.ACTION_DIST_INPUTS]
        dist = module.get_exploration_action_dist_cls().from_logits(logits)
        for _ in range(20):
            actions = dist.sample().numpy()
            assert np.all(masks[np.arange(512), actions] == 1.0)
    # the training pass masks too (masked actions get no probability in the loss), and the value
    # head reads the unmasked observation: values do not depend on the mask
    batch = {Columns.OBS: {srl.OBS_KEY: torch.from_numpy(obs), srl.MASK_KEY: torch.from_numpy(masks)}}
    with torch.no_grad():
        logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        probs = torch.softmax(logits, dim=-1).numpy()
        values = module.compute_values(batch)
        ones = {Columns.OBS: {srl.OBS_KEY: torch.from_numpy(obs), srl.MASK_KEY: torch.ones(512, n)}}
        assert torch.equal(values, module.compute_values(ones))
    assert np.all(probs[masks == 0.0] == 0.0)
    assert isinstance(batch[Columns.OBS], dict)  # the caller's batch is left as it was
    with pytest.raises(ValueError, match="Dict observation space"):
        RLModuleSpec(module_class=MaskedPPOTorchRLModule, observation_space=spaces.Box(0.0, 1.0, (7,)),
                     action_space=spaces.Discrete(n), model_config=MODEL).build()


def test_no_rllib_examples_module_is_imported(tmp_path):
    """Masking runs on sysgym's module: RLlib's examples package (not API; it warned on every run)
    is never imported by configuring and building a masked PPO."""
    import subprocess
    import sys

    code = ("import sys, sysgym.integrations.rllib as r\n"
            "import gymnasium as gym\n"
            "cfg = r.ppo_config('sysgym/DeepRM-CompactSparse-v0', num_env_runners=0)\n"
            "env = gym.make('sysgym/DeepRM-CompactSparse-v0')\n"
            "spec = cfg.rl_module_spec\n"
            "spec.observation_space = r.ObservationAdapter(env.observation_space, env.action_space, True).observation_space\n"
            "spec.action_space = env.action_space\n"
            "assert type(spec.build()).__name__ == 'MaskedPPOTorchRLModule'\n"
            "bad = [m for m in sys.modules if m.startswith('ray.rllib.examples')]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_train_command_rejects_an_unknown_setting_with_a_suggestion(tmp_path, capsys):
    code = train_command(["--env", "sysgym/CC-v0", "--steps", "10", "--out", str(tmp_path),
                          "train_batch_size_per_lerner=64"])
    assert code == 2
    assert "did you mean 'train_batch_size_per_learner'" in capsys.readouterr().err


# ------------------------------------------------------------------ training on Ray
def test_ppo_deeprm_compact_sparse_masked(ray_session, tmp_path):
    env_id, cfg = DEEPRM
    run = train_small(env_id, cfg, tmp_path)
    assert_sampled_by_separate_runners(run, native_vector_class(env_id), ENVS_PER_RUNNER)
    assert_metrics_reported(run, env_id, cfg)
    for result in run.results:
        assert result["env_runners"][srl.METRICS_KEY]["invalid_actions"] == 0.0

    policy = srl.RLlibPolicy.from_checkpoint(run.checkpoint, env_id, cfg, deterministic=False)
    env = gym.make(env_id, **cfg)
    restored = evaluate(policy, env, episodes=4, seed=100)
    assert all(m["invalid_actions"] == 0 for m in restored.metrics)
    # the control: the metric does count invalid actions of an unmasked policy
    control = evaluate(UnmaskedRandom, env, episodes=4, seed=100)
    assert sum(m["invalid_actions"] for m in control.metrics) > 0


def test_ppo_abr_two_dimensional_box(ray_session, tmp_path):
    env_id, cfg = ABR
    run = train_small(env_id, cfg, tmp_path)
    assert_sampled_by_separate_runners(run, native_vector_class(env_id), ENVS_PER_RUNNER)
    assert_metrics_reported(run, env_id, cfg)
    policy = srl.RLlibPolicy.from_checkpoint(run.checkpoint, env_id, cfg)
    assert policy.module.observation_space[srl.OBS_KEY].shape == (6 * 8,)
    result = evaluate(policy, gym.make(env_id, **cfg), episodes=2)
    assert all(length == cfg["num_chunks"] for length in result.lengths)


def test_ppo_dag_dict_observation_with_mask(ray_session, tmp_path):
    env_id, cfg = DAG
    run = train_small(env_id, cfg, tmp_path)
    assert_sampled_by_separate_runners(run, native_vector_class(env_id), ENVS_PER_RUNNER)
    metrics = assert_metrics_reported(run, env_id, cfg)
    assert metrics["invalid_actions"] == 0.0
    policy = srl.RLlibPolicy.from_checkpoint(run.checkpoint, env_id, cfg, deterministic=False)
    n = cfg["max_nodes"]
    assert policy.module.observation_space[srl.OBS_KEY].shape == (n * 5 + n * n,)
    result = evaluate(policy, gym.make(env_id, **cfg), episodes=3)
    assert all(m["invalid_actions"] == 0 for m in result.metrics)


def test_ppo_cc_continuous(ray_session, tmp_path):
    env_id, cfg = CC
    run = train_small(env_id, cfg, tmp_path)
    assert_sampled_by_separate_runners(run, native_vector_class(env_id), ENVS_PER_RUNNER)
    assert_metrics_reported(run, env_id, cfg)
    policy = srl.RLlibPolicy.from_checkpoint(run.checkpoint, env_id, cfg)
    env = gym.make(env_id, **cfg)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert env.action_space.contains(action)
    result = evaluate(policy, env, episodes=2)
    assert all(length == cfg["max_steps"] for length in result.lengths)


@pytest.mark.skipif(APPOINTMENTS_P2 not in IDS, reason=f"{APPOINTMENTS_P2} is not registered")
def test_ppo_appointments_p2(ray_session, tmp_path):
    cfg: dict[str, Any] = {}
    run = train_small(APPOINTMENTS_P2, cfg, tmp_path)
    assert_sampled_by_separate_runners(run, native_vector_class(APPOINTMENTS_P2), ENVS_PER_RUNNER)
    metrics = assert_metrics_reported(run, APPOINTMENTS_P2, cfg)
    assert metrics["invalid_actions"] == 0.0
    policy = srl.RLlibPolicy.from_checkpoint(run.checkpoint, APPOINTMENTS_P2, cfg, deterministic=False)
    result = evaluate(policy, gym.make(APPOINTMENTS_P2), episodes=3)
    assert all(m["invalid_actions"] == 0 for m in result.metrics)


@pytest.mark.parametrize("policies", ["shared", "per_agent"])
def test_ppo_multi_flow_cc(ray_session, tmp_path, policies):
    from sysgym.envs.cc import parallel_env

    run = train_small(srl.MULTI_FLOW_CC, MULTI_FLOW, tmp_path, policies=policies,
                      num_envs_per_env_runner=2)
    assert_sampled_by_separate_runners(run, None, 2)
    agents = ["flow_0", "flow_1"]
    modules = ["shared"] if policies == "shared" else agents
    assert set(run.last["agent_episode_returns_mean"]) == set(agents)
    assert set(run.last["module_episode_returns_mean"]) == set(modules)
    for agent in agents:
        metrics = run.last[srl.METRICS_KEY][agent]
        assert {"total_throughput", "jain_index", "utilisation", "flow_throughput",
                "flow_latency", "flow_loss_rate"} <= set(metrics)
    env = parallel_env(**MULTI_FLOW)
    restored = {m: srl.RLlibPolicy.from_checkpoint(run.checkpoint, srl.MULTI_FLOW_CC, MULTI_FLOW,
                                                   module_id=m) for m in modules}
    obs, infos = env.reset(seed=0)
    steps = 0
    while env.agents:
        actions = {a: restored["shared" if policies == "shared" else a].act(obs[a], infos[a])
                   for a in env.agents}
        assert all(env.action_space(a).contains(x) for a, x in actions.items())
        obs, rewards, terms, truncs, infos = env.step(actions)
        steps += 1
    assert steps == MULTI_FLOW["max_steps"]
    assert "jain_index" in infos["flow_0"]["episode_metrics"]


def test_train_command_writes_progress_and_a_checkpoint_that_resumes(ray_session, tmp_path, capsys):
    from ray.rllib.algorithms.algorithm import Algorithm

    out = tmp_path / "run"
    # the command's own logic; sampling in the driver (0 env runners) keeps it quick: the tests
    # above cover separate runner processes
    code = train_command(["--env", "sysgym/CC-Discrete-v0", "--steps", "256", "--num-envs", "4",
                          "--num-env-runners", "0", "--out", str(out), "train_batch_size_per_learner=128",
                          "minibatch_size=64", "num_epochs=1", "env.max_steps=16"])
    assert code == 0
    with open(out / "progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert int(rows[-1]["global_step"]) >= 256
    assert float(rows[-1]["sps"]) > 0 and rows[-1]["return_mean"] != ""
    assert "metric/throughput" in rows[-1]
    assert "checkpoint:" in capsys.readouterr().out

    algo = Algorithm.from_checkpoint(str(out / "checkpoint"))
    try:
        resumed = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
    finally:
        algo.stop()
    assert resumed >= int(rows[-1]["global_step"]) + 128


def test_example_script_trains_restores_and_scores_next_to_the_heuristics(ray_session, tmp_path):
    path = ROOT / "examples" / "rllib_train.py"
    spec = importlib.util.spec_from_file_location("rllib_train_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    scores = example.main(["--env", "sysgym/Appointments-P1-v0" if "sysgym/Appointments-P1-v0" in IDS
                           else DEEPRM[0], "--iterations", "1", "--batch", "128", "--num-envs", "4",
                           "--num-env-runners", "0", "--episodes", "2", "--out", str(tmp_path / "example")])
    assert "rllib ppo" in scores and len(scores) > 1
    assert all(np.isfinite(s["return"]) for s in scores.values())


def _readme_snippet() -> str | None:
    """The first python block of the README's "Scaling out with Ray" section."""
    text = README.read_text() if README.is_file() else ""
    if text.startswith("# Scaling out with Ray"):           # docs/ray.md: the whole page
        section = text
    elif "## Scaling out with Ray" in text:                  # a README holding the section
        section = text.split("## Scaling out with Ray", 1)[1].split("\n## ", 1)[0]
    else:
        return None
    match = re.search(r"```python\n(.*?)```", section, re.S)
    return match.group(1) if match else None


@pytest.mark.skipif(_readme_snippet() is None,
                    reason=f"{README.name} has no python block under 'Scaling out with Ray' yet")
def test_readme_snippet_runs_as_printed(ray_session, monkeypatch):
    code = _readme_snippet()
    # the session's Ray instance stands in for the snippet's ray.init()
    monkeypatch.setattr(ray_session, "init", lambda *args, **kwargs: None)
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    exec(compile(code, f"{README.name}: Scaling out with Ray", "exec"), namespace)
