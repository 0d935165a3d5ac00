"""The hand-derived PPO gradients (fastgrad) equal autograd's on random minibatches."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from sysgym.agents.ppo import PPOConfig
from sysgym.agents.ppo.fastgrad import ManualGradients, supports
from sysgym.agents.ppo.networks import ActorCritic
from sysgym.agents.ppo.optim import FlatAdam, flatten_parameters
from sysgym.agents.ppo.trainer import PPOTrainer

OBS = gym.spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
DICT_OBS = gym.spaces.Dict({"a": gym.spaces.Box(0.0, 1.0, shape=(2, 3), dtype=np.float32),
                            "b": gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)})
DISCRETE = gym.spaces.Discrete(5)
BOX = gym.spaces.Box(-2.0, 2.0, shape=(3,), dtype=np.float32)


def _batch(obs_space, act_space, model, n, seed):
    g = torch.Generator().manual_seed(seed)
    if isinstance(obs_space, gym.spaces.Dict):
        obs = {k: torch.randn((n, *s.shape), generator=g) for k, s in obs_space.spaces.items()}
    else:
        obs = {"obs": torch.randn((n, *obs_space.shape), generator=g)}
    mask = None
    if isinstance(act_space, gym.spaces.Discrete):
        mask = torch.rand((n, act_space.n), generator=g) < 0.6
        mask[:, -1] = True
        with torch.no_grad():
            actions, old_logp = model.head.sample(model(obs)[0], mask, g)
    else:
        actions = torch.randn((n, act_space.shape[0]), generator=g) * 2
        old_logp = torch.randn(n, generator=g) - 2
    with torch.no_grad():
        # old log-probs near the current ones so that some ratios fall inside the clip range
        cur = model.head.evaluate(model(obs)[0], mask, actions)[0]
    old_logp = cur + 0.3 * torch.randn(n, generator=g)
    adv = torch.randn(n, generator=g)
    returns = torch.randn(n, generator=g)
    old_values = torch.randn(n, generator=g) * 0.3
    return obs, mask, actions, old_logp, adv, returns, old_values


def _numpy(batch):
    return [None if x is None else ({k: v.numpy() for k, v in x.items()} if isinstance(x, dict) else x.numpy())
            for x in batch]


@pytest.mark.parametrize("obs_space", [OBS, DICT_OBS], ids=["box", "dict"])
@pytest.mark.parametrize("act_space", [DISCRETE, BOX], ids=["masked-categorical", "gaussian"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
@pytest.mark.parametrize("clip_vloss", [False, True], ids=["v", "v-clipped"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_manual_gradient_equals_autograd(obs_space, act_space, shared, clip_vloss, activation):
    cfg = PPOConfig(shared_trunk=shared, clip_vloss=clip_vloss, activation=activation, encoder="mlp",
                    hidden_sizes=(16, 8), ent_coef=0.05, vf_coef=0.7, clip_coef=0.2)
    torch.manual_seed(1)
    model = ActorCritic(obs_space, act_space, cfg)
    if not isinstance(act_space, gym.spaces.Discrete):
        with torch.no_grad():
            model.head.log_std.copy_(torch.tensor([-0.3, 0.1, 0.4]))
    flat, grads = flatten_parameters(model)
    assert supports(model)
    manual = ManualGradients(model, flat, grads)
    for seed in range(3):
        batch = _batch(obs_space, act_space, model, 24, seed)
        trainer = PPOTrainer.__new__(PPOTrainer)
        trainer.config, trainer.model, trainer.head = cfg, model, model.head
        loss, stats_auto = trainer.loss(*batch)
        auto = torch.autograd.grad(loss, list(model.parameters()))
        expected = torch.cat([g.reshape(-1) for g in auto])
        stats_manual = manual(*_numpy(batch), cfg)
        torch.testing.assert_close(grads, expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(torch.from_numpy(stats_manual).float(), stats_auto, rtol=1e-4, atol=1e-6)
        assert grads.abs().sum() > 0


def test_flat_adam_matches_torch_adam_with_clipping():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    b = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    b.load_state_dict(a.state_dict())
    flat, grads = flatten_parameters(b)
    reference = torch.optim.Adam(a.parameters(), lr=0.01, eps=1e-5)
    ours = FlatAdam(flat, lr=0.01, eps=1e-5, max_grad_norm=0.5)
    for step in range(5):
        x = torch.randn(8, 4) * (step + 1)
        loss_a = (a(x) ** 2).sum()
        reference.zero_grad()
        loss_a.backward()
        torch.nn.utils.clip_grad_norm_(a.parameters(), 0.5)
        reference.step()
        loss_b = (b(x) ** 2).sum()
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_b, list(b.parameters()))], out=grads)
        ours.step(grads)
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
