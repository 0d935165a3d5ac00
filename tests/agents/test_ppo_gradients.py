"""The hand-derived PPO gradients (fastgrad) equal autograd's on random minibatches."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from sysgym.agents.ppo import PPOConfig
from sysgym.agents.ppo.fastgrad import ManualGradients, parameter_order, supports
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


def _autograd(cfg, model, batch):
    """(flat gradient in the fast path's layout, stats) from the trainer's torch loss."""
    trainer = PPOTrainer.__new__(PPOTrainer)
    trainer.config, trainer.model, trainer.head = cfg, model, model.head
    loss, stats = trainer.loss(*batch)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, parameter_order(model))]), stats


@pytest.mark.parametrize("obs_space", [OBS, DICT_OBS], ids=["box", "dict"])
@pytest.mark.parametrize("act_space", [DISCRETE, BOX], ids=["masked-categorical", "gaussian"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate"])
@pytest.mark.parametrize("clip_vloss", [False, True], ids=["v", "v-clipped"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("hidden", [(16, 8), (12,)], ids=["2-layers", "1-layer"])
def test_manual_gradient_equals_autograd(obs_space, act_space, shared, clip_vloss, activation, hidden):
    cfg = PPOConfig(shared_trunk=shared, clip_vloss=clip_vloss, activation=activation, encoder="mlp",
                    hidden_sizes=hidden, ent_coef=0.05, vf_coef=0.7, clip_coef=0.2)
    torch.manual_seed(1)
    model = ActorCritic(obs_space, act_space, cfg)
    if not isinstance(act_space, gym.spaces.Discrete):
        with torch.no_grad():
            model.head.log_std.copy_(torch.tensor([-0.3, 0.1, 0.4]))
    flat, grads = flatten_parameters(model, parameter_order(model))
    assert supports(model)
    manual = ManualGradients(model, flat, grads)
    # minibatch sizes change between calls (the work arrays are kept per size); a single row skips
    # the advantage normalisation
    for seed, n in enumerate([24, 7, 24, 1]):
        batch = _batch(obs_space, act_space, model, n, seed)
        expected, stats_auto = _autograd(cfg, model, batch)
        stats_manual = manual(*_numpy(batch), cfg)
        # atol: float32 cancellation in a few small entries (up to ~2e-6 with the 1-layer Gaussian
        # nets, for this path and for the per-network one it replaced alike); a wrong term is far larger
        torch.testing.assert_close(grads, expected, rtol=1e-4, atol=5e-6)
        torch.testing.assert_close(torch.from_numpy(stats_manual).float(), stats_auto, rtol=1e-4, atol=1e-6)
        assert grads.abs().sum() > 0


def test_manual_gradients_need_the_fused_layout():
    """Separate trunks are run side by side: their first layers must be stored back to back."""
    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    model = ActorCritic(OBS, DISCRETE, cfg)
    flat, grads = flatten_parameters(model)  # module order: the actor trunk, then the critic trunk
    with pytest.raises(ValueError, match="parameter_order"):
        ManualGradients(model, flat, grads)
    with pytest.raises(ValueError, match="every parameter"):
        flatten_parameters(model, parameter_order(model)[1:])


def test_manual_gradient_equals_autograd_for_the_bracis_preset():
    """The BRACIS'21 network (separate 2x64 tanh actor and critic) at the paper's compact size."""
    from sysgym.agents.ppo.config import BRACIS_PRESET

    cfg = PPOConfig(**{**BRACIS_PRESET, "encoder": "mlp"})
    obs_space, act_space = gym.spaces.Box(-1.0, 1.0, shape=(118,), dtype=np.float32), gym.spaces.Discrete(11)
    torch.manual_seed(3)
    model = ActorCritic(obs_space, act_space, cfg)
    flat, grads = flatten_parameters(model, parameter_order(model))
    manual = ManualGradients(model, flat, grads)
    assert manual.trunk.blocks == 2  # the critic has its own trunk
    for seed in range(3):
        batch = _batch(obs_space, act_space, model, cfg.batch_size, seed)
        expected, stats_auto = _autograd(cfg, model, batch)
        stats_manual = manual(*_numpy(batch), cfg)
        torch.testing.assert_close(grads, expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(torch.from_numpy(stats_manual).float(), stats_auto, rtol=1e-4, atol=1e-6)


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


@pytest.mark.parametrize("act_space", [DISCRETE, BOX], ids=["masked-categorical", "gaussian"])
def test_numpy_actor_draws_what_one_generator_call_per_step_draws(act_space):
    """NumpyActor draws its noise many steps at a time; a seed must still give the actions of one
    ``default_rng(seed)`` call per step (the stream rollouts had before), across several blocks."""
    from sysgym.agents.ppo.fastact import NumpyActor

    cfg = PPOConfig(shared_trunk=False, encoder="mlp", hidden_sizes=(16, 8))
    torch.manual_seed(0)
    model = ActorCritic(OBS, act_space, cfg)
    flat, grads = flatten_parameters(model, parameter_order(model))
    net = ManualGradients(model, flat, grads)
    actor, reference = NumpyActor(net, seed=7), np.random.default_rng(7)
    actor.NOISE_VALUES = 3 * 4 * 5  # blocks of 3 steps: refills happen inside the loop
    data = np.random.default_rng(1)
    for _ in range(10):
        obs = {"obs": data.standard_normal((4, 7)).astype(np.float32)}
        mask = data.random((4, 5)) < 0.6 if isinstance(act_space, gym.spaces.Discrete) else None
        if mask is not None:
            mask[:, 0] = True
        action, logp, _ = actor.step(obs, mask)
        w = net.work(4)
        net.heads(obs, w)
        if mask is not None:
            net.log_softmax(mask, w)
            expected = np.argmax(reference.gumbel(size=(4, 5)) + w.logp_all.T, axis=1)
            np.testing.assert_array_equal(action, expected)
            assert mask[np.arange(4), action].all()
        else:
            expected = w.out.T + np.exp(net.log_std) * reference.standard_normal((4, 3), dtype=np.float32)
            np.testing.assert_array_equal(action, expected)
