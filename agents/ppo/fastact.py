"""The rollout-time policy step of an MLP actor-critic in numpy (forward pass, sampling, value).

During a rollout the policy is called once per time step on a small batch (one row per sub-env);
at that size each torch call costs more in dispatch than in arithmetic, and numpy's per-call cost
is a few times lower. :class:`NumpyActor` reads the *live* weights (the numpy views held by
:class:`~sysgym.agents.ppo.fastgrad.ManualGradients`, so every optimiser step is seen) and draws
from the same distributions as the torch heads: masked categorical by the Gumbel-max trick,
Gaussian with clip or tanh squash. Log-probabilities agree with the torch heads' ``evaluate`` to
float32 rounding (``tests/agents/test_ppo.py`` checks it).
"""

from __future__ import annotations

import numpy as np

from .fastgrad import ManualGradients, masked_log_softmax


class NumpyActor:
    """Acts for a batch of observations with the network behind ``grads`` (see module docstring)."""

    def __init__(self, grads: ManualGradients, seed: int):
        self.net = grads
        self.rng = np.random.default_rng(seed)

    def value(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        net = self.net
        h = (net.actor if net.critic is None else net.critic).forward(net.input(obs))[-1]
        return (h @ net.value_w.T)[:, 0] + net.value_b[0]

    def step(self, obs: dict[str, np.ndarray], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw action, its log-probability, value) per row; ``mask`` must be sanitised (bool)."""
        net = self.net
        x = net.input(obs)
        h = net.actor.forward(x)[-1]
        hv = h if net.critic is None else net.critic.forward(x)[-1]
        value = (hv @ net.value_w.T)[:, 0] + net.value_b[0]
        out = h @ net.head_w.T
        out += net.head_b
        if net.categorical:
            logp_all = masked_log_softmax(out, mask)
            action = np.argmax(logp_all + self.rng.gumbel(size=logp_all.shape), axis=-1)
            return action, logp_all[np.arange(len(action)), action], value
        u = out + np.exp(net.log_std) * self.rng.standard_normal(out.shape, dtype=np.float32)
        return u, net.gaussian_log_prob(out, u)[0], value
