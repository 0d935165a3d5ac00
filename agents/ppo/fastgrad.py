"""Hand-derived gradients of the PPO loss for MLP actor-critics, computed in numpy (the common case).

For a minibatch of n samples the loss is
``L = mean_i max(-A_i r_i, -A_i clip(r_i, 1-eps, 1+eps)) + c_v * L_V - c_e * mean_i H_i``
with ``r_i = exp(logp_i - logp_old_i)``. Its gradient with respect to ``logp_i`` is
``-A_i r_i / n`` where the unclipped term is the larger one (also inside the clip range) and 0
elsewhere. Then, per head:

* categorical (masked logits z): ``d logp / d z = onehot(a) - p``; the entropy
  ``H = -sum p log p`` has ``d H / d z = -p (log p + H)``; masked logits get no gradient;
* Gaussian (mean mu, state-independent log-std s): ``d logp / d mu = (u - mu) / sigma^2``,
  ``d logp / d s = z^2 - 1`` with ``z = (u - mu) / sigma``, and ``d H / d s = 1``;
* value loss ``0.5 mean (v - R)^2`` (or its clipped form): ``d / d v = (v - R) / n``;

and the error is propagated by hand through the Linear + tanh / ReLU layers. The result equals
autograd's (``tests/agents/test_ppo_gradients.py`` checks it on random minibatches).

Why numpy: a PPO minibatch of a 2x64 network is ~100 tiny array operations, and numpy's cost per
call is a few times lower than torch's dispatch. The weights and gradients are numpy *views* of the
flat torch parameter / gradient vectors (:mod:`sysgym.agents.ppo.optim`), so nothing is copied and
the torch module always holds the current weights. :func:`supports` says when this path applies;
other networks (CNN, one-hot, multi-discrete, state-dependent std) use autograd.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import PPOConfig
from .distributions import LOG_SQRT_2PI, MASKED_LOGIT, CategoricalHead, GaussianHead
from .networks import ActorCritic, Flatten


def supports(model: ActorCritic) -> bool:
    """True when ``model`` is made only of flat inputs, MLP trunks and a supported head."""
    encoders = list(model.encoder.encoders.values())
    if not model.shared:
        encoders += list(model.critic_encoder.encoders.values())
    if not all(isinstance(e, Flatten) for e in encoders):
        return False
    head = model.head
    if isinstance(head, CategoricalHead):
        return True
    return isinstance(head, GaussianHead) and not head.state_dependent_std


def masked_log_softmax(logits: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Log-probabilities of a categorical over ``logits`` (rows); masked-out entries get ~0 mass.

    ``logits`` may be overwritten (it is a fresh array in every caller)."""
    if mask is not None:
        logits = np.where(mask, logits, np.float32(MASKED_LOGIT))
    logits -= logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def _view(param: torch.Tensor, flat: torch.Tensor, vector: np.ndarray) -> np.ndarray:
    """The slice of ``vector`` (laid out as ``flat``) that belongs to ``param``, as a numpy view."""
    offset = (param.data_ptr() - flat.data_ptr()) // flat.element_size()
    return vector[offset:offset + param.numel()].reshape(param.shape)


class _Trunk:
    """The Linear layers of one MLP trunk: numpy views of their weights and of their gradients."""

    def __init__(self, trunk: nn.Sequential, flat: torch.Tensor, params: np.ndarray, grads: np.ndarray):
        linears = [m for m in trunk if isinstance(m, nn.Linear)]
        self.relu = any(isinstance(m, nn.ReLU) for m in trunk)
        self.weights = [(_view(m.weight, flat, params), _view(m.bias, flat, params)) for m in linears]
        self.grads = [(_view(m.weight, flat, grads), _view(m.bias, flat, grads)) for m in linears]

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer, input first."""
        hs = [x]
        for w, b in self.weights:
            z = hs[-1] @ w.T
            z += b
            hs.append(np.maximum(z, 0.0, out=z) if self.relu else np.tanh(z, out=z))
        return hs

    def backward(self, hs: list[np.ndarray], dh: np.ndarray) -> None:
        for k in range(len(self.weights) - 1, -1, -1):
            h = hs[k + 1]
            dz = dh * (h > 0) if self.relu else dh * (1.0 - h * h)
            gw, gb = self.grads[k]
            np.matmul(dz.T, hs[k], out=gw)
            np.sum(dz, axis=0, out=gb)
            if k:
                dh = dz @ self.weights[k][0]


class ManualGradients:
    """Computes the PPO loss gradient of a supported :class:`ActorCritic` into a flat vector.

    ``model``'s parameters must live in ``flat`` (see :func:`sysgym.agents.ppo.optim.flatten_parameters`);
    gradients are written into ``grads`` (same layout). Minibatches are numpy arrays.
    """

    def __init__(self, model: ActorCritic, flat: torch.Tensor, grads: torch.Tensor):
        if not supports(model):
            raise ValueError("ManualGradients needs flat inputs, MLP trunks and a categorical or "
                             "state-independent Gaussian head")
        params_np, grads_np = flat.detach().numpy(), grads.numpy()
        self.model = model
        self.keys = model.encoder.keys
        self.actor = _Trunk(model.trunk, flat, params_np, grads_np)
        self.critic = None if model.shared else _Trunk(model.critic_trunk, flat, params_np, grads_np)
        head = model.head
        self.categorical = isinstance(head, CategoricalHead)
        lin = head.linear if self.categorical else head.mean
        self.head_w, self.head_b = _view(lin.weight, flat, params_np), _view(lin.bias, flat, params_np)
        self.g_head_w, self.g_head_b = _view(lin.weight, flat, grads_np), _view(lin.bias, flat, grads_np)
        if not self.categorical:
            self.log_std = _view(head.log_std, flat, params_np)
            self.g_log_std = _view(head.log_std, flat, grads_np)
            self.tanh = head.squash == "tanh"
            self.half_range = ((head.high - head.low) * 0.5).numpy()
        vh = model.value_head
        self.value_w, self.value_b = _view(vh.weight, flat, params_np), _view(vh.bias, flat, params_np)
        self.g_value_w, self.g_value_b = _view(vh.weight, flat, grads_np), _view(vh.bias, flat, grads_np)

    def input(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The network input: the observation entries flattened and concatenated."""
        parts = [obs[k].reshape(obs[k].shape[0], -1) for k in self.keys]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def gaussian_log_prob(self, mean: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log-probability of raw actions ``u``, standardised residual z) of the Gaussian head."""
        z = (u - mean) * np.exp(-self.log_std)
        logp = (-0.5 * z * z - self.log_std - LOG_SQRT_2PI).sum(axis=-1)
        if self.tanh:
            t = np.tanh(u)
            logp -= np.log(self.half_range * (1.0 - t * t) + 1e-6).sum(axis=-1)
        return logp, z

    def __call__(self, obs: dict[str, np.ndarray], mask: np.ndarray | None, actions: np.ndarray,
                 old_logp: np.ndarray, advantages: np.ndarray, returns: np.ndarray,
                 old_values: np.ndarray, cfg: PPOConfig, stats: bool = True) -> np.ndarray | None:
        """Fill the gradient vector; returns [policy loss, value loss, entropy, approx KL, clip fraction]
        (or None with ``stats=False``, which skips computing them).

        ``mask`` must allow at least one action per row (the trainer's rollout guarantees it).
        """
        n = actions.shape[0]
        x = self.input(obs)
        hs = self.actor.forward(x)
        h = hs[-1]
        hv_all = hs if self.critic is None else self.critic.forward(x)
        hv = hv_all[-1]
        value = (hv @ self.value_w.T)[:, 0] + self.value_b[0]
        out = h @ self.head_w.T
        out += self.head_b

        if self.categorical:
            logp_all = masked_log_softmax(out, mask)
            probs = np.exp(logp_all)
            rows = np.arange(n)
            logp = logp_all[rows, actions]
            entropy = -(probs * logp_all).sum(axis=-1)
        else:
            logp, z = self.gaussian_log_prob(out, actions)
            entropy = np.full(n, (self.log_std + 0.5 + LOG_SQRT_2PI).sum(), dtype=np.float32)

        log_ratio = logp - old_logp
        ratio = np.exp(log_ratio)
        adv = advantages
        if cfg.norm_adv and n > 1:
            adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
        unclipped = -adv * ratio
        clipped_ratio = np.clip(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
        clipped = -adv * clipped_ratio
        # The gradient flows where the unclipped term is the larger one or the ratio is inside the clip
        # range (there both terms are equal and clamp passes its gradient). A tie outside the range
        # needs A = 0, where the gradient is 0 anyway: this equals autograd's half-half split.
        flows = (unclipped > clipped) | (ratio == clipped_ratio)
        d_logp = (unclipped * flows / n).astype(np.float32)

        error = value - returns
        if cfg.clip_vloss:
            clipped_v = old_values + np.clip(value - old_values, -cfg.clip_coef, cfg.clip_coef)
            sq, sq_c = error * error, (clipped_v - returns) ** 2
            v_in = np.abs(value - old_values) <= cfg.clip_coef
            w = np.where(sq > sq_c, 1.0, np.where(sq < sq_c, 0.0, 0.5))
            d_value = (w * error + (1.0 - w) * (clipped_v - returns) * v_in) * (cfg.vf_coef / n)
        else:
            d_value = error * (cfg.vf_coef / n)
        dv = d_value.astype(np.float32)[:, None]

        if self.categorical:
            # masked logits have p = 0 exactly, so they get no gradient without an explicit mask
            d_out = probs * ((logp_all + entropy[:, None]) * np.float32(cfg.ent_coef / n) - d_logp[:, None])
            d_out[rows, actions] += d_logp
        else:
            inv_std = np.exp(-self.log_std)
            d_out = d_logp[:, None] * z * inv_std
            np.sum(d_logp[:, None] * (z * z - 1.0), axis=0, out=self.g_log_std)
            self.g_log_std -= cfg.ent_coef

        np.matmul(d_out.T, h, out=self.g_head_w)
        np.sum(d_out, axis=0, out=self.g_head_b)
        np.matmul(dv.T, hv, out=self.g_value_w)
        np.sum(dv, axis=0, out=self.g_value_b)
        if self.critic is None:
            self.actor.backward(hs, d_out @ self.head_w + dv @ self.value_w)
        else:
            self.actor.backward(hs, d_out @ self.head_w)
            self.critic.backward(hv_all, dv @ self.value_w)

        if not stats:
            return None
        pg_loss = np.maximum(unclipped, clipped).mean()
        v_loss = 0.5 * (np.maximum(error * error, sq_c) if cfg.clip_vloss else error * error).mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_frac = (np.abs(ratio - 1.0) > cfg.clip_coef).mean()
        return np.array([pg_loss, v_loss, entropy.mean(), approx_kl, clip_frac], dtype=np.float64)
