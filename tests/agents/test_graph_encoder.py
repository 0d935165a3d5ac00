"""The graph policy for DAG-EGS: equivariant, blind to padding, trainable, never picks a masked edge."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import sysgym  # noqa: F401
from sysgym.agents.ppo import PPOConfig, PPOTrainer, save_checkpoint
from sysgym.agents.ppo.checkpoint import policy_for_spaces
from sysgym.agents.ppo.fastgrad import supports
from sysgym.agents.ppo.networks import ActorCritic
from sysgym.agents.ppo.observations import ObservationAdapter
from sysgym.envs.dag import generate_tasks, load_tasks
from sysgym.traces import trace_path

ENV_ID = "sysgym/DAG-EGS-v0"
CONFIG = dict(encoder="graph", hidden_sizes=(16, 16), progress=False, tensorboard=False)


def _observations(num_envs=4, steps=3, seed=0, **kwargs):
    """A batch of real observations (a few random edges into each episode) and the env."""
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, _, _, _, info = env.step(np.argmax(rng.random(info["action_mask"].shape) * info["action_mask"], 1))
    return env, obs, info


def _model(env, seed=0):
    torch.manual_seed(seed)
    return ActorCritic(env.single_observation_space, env.single_action_space, PPOConfig(**CONFIG))


def _tensors(env, obs):
    return ObservationAdapter(env.single_observation_space).to_tensors(obs)


def test_node_embeddings_and_edge_scores_are_permutation_equivariant():
    env, obs, _ = _observations(num_envs=3, num_nodes=(9, 12), max_nodes=12)
    model = _model(env)
    x = _tensors(env, obs)
    n = x["nodes"].shape[1]
    perm = torch.from_numpy(np.random.default_rng(1).permutation(n))    # padding rows move too
    y = {"nodes": x["nodes"][:, perm],
         "closure": x["closure"][:, perm][:, :, perm],
         "action_mask": x["action_mask"].reshape(-1, n, n)[:, perm][:, :, perm].reshape(-1, n * n)}
    with torch.no_grad():
        h_x, h_y = model.graph.node_embeddings(x), model.graph.node_embeddings(y)
        (s_x, v_x), (s_y, v_y) = model(x), model(y)
    assert h_x.abs().sum() > 0
    torch.testing.assert_close(h_y, h_x[:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_y.reshape(-1, n, n), s_x.reshape(-1, n, n)[:, perm][:, :, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v_y, v_x, atol=1e-5, rtol=1e-5)
    # a permutation that breaks the node order of one graph changes its embeddings: the test can fail
    assert not torch.allclose(h_y, h_x, atol=1e-3)


def test_padding_nodes_change_nothing_for_real_nodes():
    task = generate_tasks(1, seed=4, num_nodes=(10, 10))[0]
    n = task.num_nodes
    small, obs_s, info_s = _observations(num_envs=1, steps=0, workload=[task], max_nodes=n)
    large, obs_l, info_l = _observations(num_envs=1, steps=0, workload=[task], max_nodes=n + 7)
    model = _model(small)
    rng = np.random.default_rng(2)
    for _ in range(4):
        xs, xl = _tensors(small, obs_s), _tensors(large, obs_l)
        with torch.no_grad():
            h_s, h_l = model.graph.node_embeddings(xs), model.graph.node_embeddings(xl)
            (score_s, v_s), (score_l, v_l) = model(xs), model(xl)
        torch.testing.assert_close(h_l[:, :n], h_s, atol=1e-5, rtol=1e-5)
        assert torch.all(h_l[:, n:] == 0)
        torch.testing.assert_close(score_l.reshape(1, n + 7, n + 7)[:, :n, :n], score_s.reshape(1, n, n),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v_l, v_s, atol=1e-5, rtol=1e-5)
        mask_s = torch.from_numpy(info_s["action_mask"]).bool()
        mask_l = torch.from_numpy(info_l["action_mask"]).bool()
        p_s = model.head.probabilities(score_s, mask_s).reshape(n, n)
        p_l = model.head.probabilities(score_l, mask_l).reshape(n + 7, n + 7)
        torch.testing.assert_close(p_l[:n, :n], p_s, atol=1e-6, rtol=1e-5)
        assert p_l[n:].sum() == 0 and p_l[:, n:].sum() == 0
        valid = np.flatnonzero(info_s["action_mask"][0])
        if len(valid) == 0 or info_s["action_mask"][0].sum() == 1 and valid[0] == 0:
            break
        a = int(rng.choice(valid))
        i, j = divmod(a, n)
        obs_s, _, done, _, info_s = small.step(np.array([a]))
        obs_l, _, _, _, info_l = large.step(np.array([i * (n + 7) + j]))
        if done[0]:
            break


def test_gradients_reach_every_parameter():
    env, obs, info = _observations(num_envs=4, num_nodes=(8, 12), max_nodes=12)
    model = _model(env)
    x = _tensors(env, obs)
    mask = torch.from_numpy(info["action_mask"]).bool()
    scores, value = model(x)
    actions, _ = model.head.sample(scores, mask, torch.Generator().manual_seed(0))
    logp, entropy = model.head.evaluate(scores, mask, actions)
    (-(logp.sum()) - entropy.sum() + (value ** 2).sum()).backward()
    for name, p in model.graph.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_masked_edges_are_never_sampled():
    env, obs, info = _observations(num_envs=4, num_nodes=(8, 12), max_nodes=12)
    model = _model(env)
    with torch.no_grad():
        scores, _ = model(_tensors(env, obs))
    mask = torch.from_numpy(info["action_mask"]).bool()
    assert (~mask).any(axis=1).all() and mask.any(axis=1).all()
    # scores large enough that masked edges would dominate if the mask were ignored
    boosted = scores + 50.0 * (~mask).float()
    actions, _ = model.head.sample(boosted.repeat(500, 1), mask.repeat(500, 1), torch.Generator().manual_seed(0))
    assert mask.repeat(500, 1).gather(1, actions.unsqueeze(1)).all()
    assert mask.gather(1, model.head.mode(boosted, mask).unsqueeze(1)).all()


def test_ppo_trains_the_graph_policy_and_checkpoints_transfer_to_larger_tasks(tmp_path):
    cfg = PPOConfig(**CONFIG, num_envs=4, n_steps=32, total_steps=256, batch_size=64, seed=1,
                    env_kwargs={"num_nodes": (8, 12), "max_nodes": 12})
    trainer = PPOTrainer(ENV_ID, cfg, tmp_path)
    assert trainer.manual is None and not supports(trainer.model)        # autograd path
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    trainer.close()
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.parameters()))
    buf = trainer.buffer
    assert buf.masks.gather(-1, buf.actions.unsqueeze(-1)).all()       # rollouts took valid edges only
    # the same weights act on 12-node tasks padded to 20 nodes as on the training spaces
    task = generate_tasks(1, seed=9, num_nodes=(12, 12))[0]
    small, obs_s, info_s = _observations(num_envs=1, steps=0, workload=[task], max_nodes=12)
    large, obs_l, info_l = _observations(num_envs=1, steps=0, workload=[task], max_nodes=20)
    here = policy_for_spaces(tmp_path / "checkpoint.pt", small.single_observation_space, small.single_action_space)
    there = policy_for_spaces(tmp_path / "checkpoint.pt", large.single_observation_space, large.single_action_space)
    a_s, a_l = int(here.act(obs_s, info_s)[0]), int(there.act(obs_l, info_l)[0])
    assert divmod(a_s, 12) == divmod(a_l, 20) and info_s["action_mask"][0, a_s] == 1


def test_graph_encoder_refuses_what_it_cannot_read(tmp_path):
    deeprm = gym.make("sysgym/DeepRM-Compact-v0")
    with pytest.raises(ValueError, match="encoder='graph'"):
        ActorCritic(deeprm.observation_space, deeprm.action_space, PPOConfig(**CONFIG))
    env, _, _ = _observations(num_envs=1, steps=0, num_nodes=(8, 8), max_nodes=8)
    spaces = (env.single_observation_space, env.single_action_space)
    with pytest.raises(ValueError, match="normalize_obs"):
        ActorCritic(*spaces, PPOConfig(**CONFIG, normalize_obs=True))
    with pytest.raises(ValueError, match="hidden_sizes"):
        ActorCritic(*spaces, PPOConfig(**{**CONFIG, "hidden_sizes": (16, 32)}))
    with pytest.raises(ValueError, match="encoder"):
        PPOConfig(encoder="gnn")
    mlp = PPOConfig(progress=False, tensorboard=False)
    model = ActorCritic(*spaces, mlp)
    path = save_checkpoint(tmp_path / "mlp.pt", model, ObservationAdapter(spaces[0]), mlp, *spaces, ENV_ID)
    with pytest.raises(ValueError, match="not a graph policy"):
        policy_for_spaces(path, *spaces)


def test_the_egs_benchmark_evaluates_a_checkpoint(tmp_path):
    """benchmarks/paper_egs.py --checkpoint on two tasks per shipped set: every method reports a
    core count per task, never below ceil(vol / D), and EGS never above the initial width."""
    import json
    import math

    from benchmarks import paper_egs

    cfg = PPOConfig(**CONFIG, num_envs=2, n_steps=16, total_steps=32, batch_size=32,
                    env_kwargs={"num_nodes": (8, 12), "max_nodes": 12})
    trainer = PPOTrainer(ENV_ID, cfg, tmp_path / "run")
    trainer.train()
    trainer.close()
    paper_egs.main(["--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--tasks", "2",
                    "--out", str(tmp_path / "out")])
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert (tmp_path / "out" / "schedulability.png").stat().st_size > 0
    for n, methods in results.items():
        tasks = load_tasks(trace_path("dag", f"layered_n{n}.dot"))[:2]
        bounds = [math.ceil(t.volume / t.deadline) for t in tasks]
        for method in ("EGS-PPO", "greedy EGS", "He et al. 2019", "Graham 1969"):
            assert len(methods[method]) == 2
            assert all(c is None or c >= b for c, b in zip(methods[method], bounds)), method
        assert all(ppo <= w for ppo, w in zip(methods["EGS-PPO"], methods["initial width W(G)"]))
