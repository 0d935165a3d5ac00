"""The PPO fast path's C kernels (cython_core/ppo_forward.pyx) against independent references:
float64 tanh, numpy's own operations, and the numpy rollout step of NumpyActor."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from sysgym.agents.ppo import PPOConfig
from sysgym.agents.ppo.fastact import NumpyActor
from sysgym.agents.ppo.fastgrad import ManualGradients, parameter_order
from sysgym.agents.ppo.networks import ActorCritic
from sysgym.agents.ppo.optim import flatten_parameters
from sysgym.cython_core.ppo_forward import FrozenPolicy, bias_tanh, tanh, tanh_backward

OBS = gym.spaces.Box(-1.0, 1.0, shape=(37,), dtype=np.float32)
DICT_OBS = gym.spaces.Dict({"a": gym.spaces.Box(0.0, 1.0, shape=(2, 3), dtype=np.float32),
                            "b": gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)})


def test_tanh_is_within_four_ulps_of_float64_tanh():
    """Every kind of float: tiny and denormal (tanh x = x), moderate, past the clamp (+-1), +-inf;
    lengths not a multiple of the SIMD width; NaN stays NaN."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 0x7F800000, size=200_003, dtype=np.uint32)   # every positive finite float
    x = np.concatenate([bits.view(np.float32), np.linspace(-9, 9, 10_001, dtype=np.float32),
                        np.array([0.0, 1e-45, 3.9e-4, 4e-4, 7.9, 7.91, 20.0, np.inf], np.float32)])
    x = np.concatenate([x, -x])
    y = x.copy()
    tanh(y)
    exact = np.tanh(x.astype(np.float64))
    assert np.all(np.abs(y - exact) <= 4e-7 * np.abs(exact)), np.max(np.abs(y - exact) / np.abs(exact))
    assert y[x == np.inf].tolist() == [1.0] and y[x == -np.inf].tolist() == [-1.0]
    nan = np.array([0.5, np.nan, 0.5, 0.5, np.nan], np.float32)
    tanh(nan)
    assert np.isnan(nan).tolist() == [False, True, False, False, True]


def test_bias_tanh_is_numpys_add_then_tanh():
    rng = np.random.default_rng(2)
    h, bias = rng.standard_normal((7, 13)).astype(np.float32) * 3, rng.standard_normal(13).astype(np.float32)
    expected = h + bias
    tanh(expected.reshape(-1))
    bias_tanh(h, bias)
    np.testing.assert_array_equal(h, expected)
    with pytest.raises(ValueError, match="bias of 12"):
        bias_tanh(h, bias[:12])


def test_tanh_backward_runs_numpys_three_operations():
    rng = np.random.default_rng(1)
    h = np.tanh(rng.standard_normal(1001)).astype(np.float32)
    dz = rng.standard_normal(1001).astype(np.float32)
    expected = dz.copy()
    t = h * h
    t *= expected
    expected -= t
    tanh_backward(h, dz)
    np.testing.assert_array_equal(dz, expected)
    with pytest.raises(ValueError):
        tanh_backward(h, dz[:-1])


def _net(obs_space, hidden, activation, shared, n_actions=9, seed=0):
    cfg = PPOConfig(shared_trunk=shared, encoder="mlp", hidden_sizes=hidden, activation=activation)
    torch.manual_seed(seed)
    model = ActorCritic(obs_space, gym.spaces.Discrete(n_actions), cfg)
    with torch.no_grad():   # larger weights than the init: saturated tanh units and peaked policies too
        for p in model.parameters():
            p.mul_(3.0)
        model.head.linear.weight.mul_(100.0)
    flat, grads = flatten_parameters(model, parameter_order(model))
    return ManualGradients(model, flat, grads), flat


def _obs(obs_space, rows, rng):
    if isinstance(obs_space, gym.spaces.Dict):
        return {k: rng.standard_normal((rows, *s.shape)).astype(np.float32) for k, s in obs_space.spaces.items()}
    return {"obs": 2 * rng.standard_normal((rows, *obs_space.shape)).astype(np.float32)}


def _numpy_step(net, obs, mask, noise):
    """The numpy path's step written out: forward, log-softmax, argmax of log p + noise."""
    w = net.work(len(noise))
    net.heads(obs, w)
    # the size of the heads' terms (a rounding error is relative to them, not to their sum)
    scales = (float((np.abs(w.actor) @ np.abs(net.head_w).T).max()),
              float((np.abs(w.critic) @ np.abs(net.value_w).T).max()))
    net.log_softmax(mask, w)
    action = np.argmax(noise + w.logp_all.T, axis=1)
    return action, w.logp_all.T[np.arange(len(noise)), action], w.value.copy(), scales


def _close(ours, reference, scale=0.0):
    """Equal up to float32 rounding of sums of a few hundred terms: 3e-6 of the larger of 1, the
    batch's largest magnitude and ``scale`` (the size of the terms summed)."""
    scale = max(1.0, float(np.abs(reference).max()), scale)
    assert np.max(np.abs(ours - reference)) <= 3e-6 * scale, np.max(np.abs(ours - reference))


@pytest.mark.parametrize("obs_space", [OBS, DICT_OBS], ids=["box", "dict"])
@pytest.mark.parametrize("hidden,activation,shared", [((64, 40), "tanh", False), ((64, 40), "relu", False),
                                                       ((20, 33, 17), "tanh", True), ((16,), "relu", True)])
@pytest.mark.parametrize("rows", [1, 5, 8])
def test_compiled_step_acts_as_the_numpy_path(obs_space, hidden, activation, shared, rows):
    """Inside frozen_weights NumpyActor acts through FrozenPolicy: with the same noise it picks the
    numpy path's actions, with its log-probabilities and values up to float32 rounding; the noise
    stream is the one the numpy path draws."""
    net, _ = _net(obs_space, hidden, activation, shared)
    actor, noise_rng, data = NumpyActor(net, seed=3), np.random.default_rng(3), np.random.default_rng(4)
    with net.frozen_weights():
        assert actor._compiled(rows) is not None
        for step in range(30):
            obs = _obs(obs_space, rows, data)
            mask = None if step % 5 == 0 else data.random((rows, 9)) < 0.4
            if mask is not None:
                mask[np.arange(rows), data.integers(0, 9, rows)] = True
            action, logp, value = actor.step(obs, mask)
            ref_action, ref_logp, ref_value, scales = _numpy_step(net, obs, mask, noise_rng.gumbel(size=(rows, 9)))
            np.testing.assert_array_equal(action, ref_action)
            if mask is not None:
                assert mask[np.arange(rows), action].all()
            _close(logp, ref_logp, scales[0])
            _close(value, ref_value, scales[1])
            _close(actor.value(obs), ref_value, scales[1])


def test_sampling_is_the_argmax_of_noise_plus_log_probability():
    """Noise that cancels log p up to offsets of 1e-4 (far above float rounding): the action is
    the allowed entry of the largest offset, whatever the policy."""
    net, _ = _net(OBS, (64, 40), "tanh", False)
    rng = np.random.default_rng(6)
    obs = _obs(OBS, 8, rng)
    mask = rng.random((8, 9)) < 0.5
    mask[:, 2] = True
    _numpy_step(net, obs, mask, np.zeros((8, 9)))
    logp_all = net.work(8).logp_all.T.astype(np.float64)
    offsets = 1e-4 * np.stack([rng.permutation(9) for _ in range(8)])
    noise = np.where(mask, offsets - logp_all, -np.inf)
    with net.frozen_weights():
        policy, action, logp, value = NumpyActor(net, seed=0)._compiled(8)
        policy.step(np.ascontiguousarray(obs["obs"]), mask.view(np.uint8), noise, action, logp, value)
    np.testing.assert_array_equal(action, np.argmax(np.where(mask, offsets, -1.0), axis=1))


def test_compiled_step_copies_the_weights_once_per_frozen_context():
    """Weights changed between two rollouts (an update) are seen by the next one; outside
    frozen_weights the numpy path acts."""
    net, flat = _net(OBS, (64, 40), "tanh", False)
    actor, data = NumpyActor(net, seed=0), np.random.default_rng(5)
    obs = _obs(OBS, 8, data)
    with net.frozen_weights():
        before = actor.value(obs)
    with torch.no_grad():
        flat.mul_(0.5)
    assert actor._compiled(8) is None
    outside = actor.value(obs)
    with net.frozen_weights():
        after = actor.value(obs)
    _close(after, outside)
    assert np.max(np.abs(after - before)) > 1e-2


def test_frozen_policy_rejects_mismatched_shapes():
    w = np.zeros((4, 6), np.float32)
    ops = [(w, np.zeros(6, np.float32), -1, 0, 0, 0)]
    head, value = (np.zeros((6, 3), np.float32), np.zeros(3, np.float32)), (np.zeros((6, 1), np.float32),
                                                                           np.zeros(1, np.float32))
    policy = FrozenPolicy(ops, [6], head, value, 0, 2, 4, 1, -1e8)
    with pytest.raises(ValueError, match="2 rows of 4 inputs"):
        policy.value(np.zeros((3, 4), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="noise"):
        policy.step(np.zeros((2, 4), np.float32), None, np.zeros((2, 4)), np.zeros(2, np.int64),
                    np.zeros(2, np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        FrozenPolicy([(w, np.zeros(6, np.float32), -1, 0, 0, 0)], [6], head, value, 0, 2, 5 - 2, 1, -1e8)
    with pytest.raises(ValueError, match="head or value"):
        FrozenPolicy(ops, [6], head, (np.zeros((5, 1), np.float32), np.zeros(1, np.float32)), 0, 2, 4, 1, -1e8)
