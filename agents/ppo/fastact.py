"""The rollout-time policy step of an MLP actor-critic in numpy (forward pass, sampling, value).

During a rollout the policy is called once per time step on a small batch (one row per sub-env);
at that size each torch call costs more in dispatch than in arithmetic, and numpy's per-call cost
is a few times lower. :class:`NumpyActor` reads the *live* weights (numpy views of the flat
parameter vector, so every optimiser step is seen) and draws from the same distributions as the
torch heads: masked categorical by the Gumbel-max trick, Gaussian with clip or tanh squash.
Log-probabilities agree with :meth:`CategoricalHead.evaluate` / :meth:`GaussianHead.evaluate` to
float32 rounding (``tests/agents/test_ppo.py`` checks it).
"""

from __future__ import annotations

import math

import numpy as np

from .distributions import MASKED_LOGIT
from .fastgrad import ManualGradients

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _numpy(t):
    return t.detach().numpy()  # shares memory with the parameter


class NumpyActor:
    """Acts for a batch of observations with the network behind ``grads`` (see module docstring)."""

    def __init__(self, grads: ManualGradients, seed: int):
        self.keys = grads.keys
        self.relu = grads.actor.relu
        self.actor = [(_numpy(w), _numpy(b)) for w, b in grads.actor.weights]
        self.critic = None if grads.critic is None else [(_numpy(w), _numpy(b)) for w, b in grads.critic.weights]
        self.head_w, self.head_b = _numpy(grads.head_w), _numpy(grads.head_b)
        self.value_w, self.value_b = _numpy(grads.value_w), _numpy(grads.value_b)
        self.categorical = grads.categorical
        head = grads.model.head
        if not self.categorical:
            self.log_std = _numpy(grads.log_std)
            self.tanh = head.squash == "tanh"
            self.half_range = ((head.high - head.low) * 0.5).numpy()
        self.rng = np.random.default_rng(seed)

    def _trunk(self, layers, x: np.ndarray) -> np.ndarray:
        for w, b in layers:
            x = x @ w.T
            x += b
            if self.relu:
                np.maximum(x, 0.0, out=x)
            else:
                np.tanh(x, out=x)
        return x

    def _input(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        parts = [obs[k].reshape(obs[k].shape[0], -1) for k in self.keys]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def value(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        x = self._input(obs)
        h = self._trunk(self.critic if self.critic is not None else self.actor, x)
        return (h @ self.value_w.T + self.value_b)[:, 0]

    def step(self, obs: dict[str, np.ndarray], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw action, its log-probability, value) per row; ``mask`` must be sanitised (bool)."""
        x = self._input(obs)
        h = self._trunk(self.actor, x)
        hv = h if self.critic is None else self._trunk(self.critic, x)
        value = (hv @ self.value_w.T + self.value_b)[:, 0]
        out = h @ self.head_w.T
        out += self.head_b
        if self.categorical:
            if mask is not None:
                out = np.where(mask, out, np.float32(MASKED_LOGIT))
            out -= out.max(axis=-1, keepdims=True)
            logp_all = out - np.log(np.exp(out).sum(axis=-1, keepdims=True))
            action = np.argmax(logp_all + self.rng.gumbel(size=logp_all.shape), axis=-1)
            logp = np.take_along_axis(logp_all, action[:, None], axis=-1)[:, 0]
            return action, logp, value
        std = np.exp(self.log_std)
        u = out + std * self.rng.standard_normal(out.shape, dtype=np.float32)
        z = (u - out) / std
        logp = (-0.5 * z * z - self.log_std - _LOG_SQRT_2PI).sum(axis=-1)
        if self.tanh:
            t = np.tanh(u)
            logp -= np.log(self.half_range * (1.0 - t * t) + 1e-6).sum(axis=-1)
        return u, logp, value
