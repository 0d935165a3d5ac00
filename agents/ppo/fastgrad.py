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

Why numpy: a PPO minibatch of a 2x64 network is a few dozen small array operations, and numpy's
cost per call is a few times lower than torch's dispatch plus autograd's bookkeeping. The weights
and gradients are numpy *views* of the flat torch parameter / gradient vectors
(:mod:`sysgym.agents.ppo.optim`), so nothing is copied and the torch module always holds the
current weights. Separate actor and critic trunks are run as one trunk twice as wide: with the
parameters flattened in :func:`parameter_order`, the two first layers are one (2H, n_in) matrix
(one matrix product for both networks, forward and backward) and every layer's biases, activations
and derivatives are one array each; only the deeper layers' products stay per network. Work arrays
are allocated once per minibatch size. :func:`supports` says when this path applies; other
networks (CNN, one-hot, multi-discrete, state-dependent std, graph) use autograd.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .config import PPOConfig
from .distributions import LOG_SQRT_2PI, MASKED_LOGIT, CategoricalHead, GaussianHead
from .networks import ActorCritic, Flatten


def supports(model: ActorCritic) -> bool:
    """True when ``model`` is made only of flat inputs, MLP trunks and a supported head."""
    if getattr(model, "graph", None) is not None:
        return False
    encoders = list(model.encoder.encoders.values())
    if not model.shared:
        encoders += list(model.critic_encoder.encoders.values())
    if not all(isinstance(e, Flatten) for e in encoders):
        return False
    head = model.head
    if isinstance(head, CategoricalHead):
        return True
    return isinstance(head, GaussianHead) and not head.state_dependent_std


def _linears(trunk: nn.Sequential) -> list[nn.Linear]:
    return [m for m in trunk if isinstance(m, nn.Linear)]


def parameter_order(model: nn.Module) -> list[nn.Parameter]:
    """``model``'s parameters in the flat layout :class:`ManualGradients` needs.

    Separate actor and critic trunks: layer k of both side by side (actor weight, critic weight,
    actor bias, critic bias), then every other parameter in ``model.parameters()`` order; any
    other model: ``model.parameters()`` order.
    """
    params = list(model.parameters())
    if not isinstance(model, ActorCritic) or not supports(model) or model.shared:
        return params
    first: list[nn.Parameter] = []
    for a, c in zip(_linears(model.trunk), _linears(model.critic_trunk)):
        first += [a.weight, c.weight, a.bias, c.bias]
    taken = {id(p) for p in first}
    return first + [p for p in params if id(p) not in taken]


def _stacked(params: list[torch.Tensor], flat: torch.Tensor, vector: np.ndarray) -> np.ndarray:
    """One numpy view of ``vector`` (laid out as ``flat``) over parameters stored back to back,
    stacked along their first axis."""
    start = (params[0].data_ptr() - flat.data_ptr()) // flat.element_size()
    end = start
    for p in params:
        if (p.data_ptr() - flat.data_ptr()) // flat.element_size() != end or p.shape[1:] != params[0].shape[1:]:
            raise ValueError("ManualGradients needs the parameters flattened in fastgrad.parameter_order(model)")
        end += p.numel()
    return vector[start:end].reshape(sum(p.shape[0] for p in params), *params[0].shape[1:])


def _view(param: torch.Tensor, flat: torch.Tensor, vector: np.ndarray) -> np.ndarray:
    """The slice of ``vector`` (laid out as ``flat``) that belongs to ``param``, as a numpy view."""
    return _stacked([param], flat, vector)


def _blocks(a: np.ndarray, k: int) -> list[np.ndarray]:
    """``a`` split into ``k`` equal column blocks (views)."""
    w = a.shape[1] // k
    return [a[:, j * w:(j + 1) * w] for j in range(k)]


class Trunk:
    """The actor trunk, or actor and critic trunks side by side, as one MLP of width ``blocks * H``.

    Layer 0 is one (blocks H, n_in) product; deeper layers are block-diagonal (one product per
    network). Holds numpy views of the weights and of their gradients.
    """

    def __init__(self, model: ActorCritic, flat: torch.Tensor, params: np.ndarray, grads: np.ndarray):
        trunks = [_linears(model.trunk)] + ([] if model.shared else [_linears(model.critic_trunk)])
        self.blocks = len(trunks)
        self.relu = any(isinstance(m, nn.ReLU) for m in model.trunk)
        layers = list(zip(*trunks))  # per layer: the Linear of each network
        if any(len({m.out_features for m in layer}) > 1 for layer in layers) or len(trunks[0]) != len(trunks[-1]):
            raise ValueError("ManualGradients needs actor and critic trunks of the same sizes")
        self.widths = [sum(m.out_features for m in layer) for layer in layers]
        self.w0 = _stacked([m.weight for m in layers[0]], flat, params)
        self.g_w0 = _stacked([m.weight for m in layers[0]], flat, grads)
        self.w = [[_view(m.weight, flat, params) for m in layer] for layer in layers]
        self.g_w = [[_view(m.weight, flat, grads) for m in layer] for layer in layers]
        self.b = [_stacked([m.bias for m in layer], flat, params) for layer in layers]
        self.g_b = [_stacked([m.bias for m in layer], flat, grads) for layer in layers]

    def forward(self, x: np.ndarray, w: _Work) -> None:
        """Fill ``w.h`` (every layer's activations) for the input rows ``x``."""
        for k, h in enumerate(w.h):
            if k == 0:
                np.matmul(x, self.w0.T, out=h)
            else:
                for weight, hin, hout in zip(self.w[k], w.hb[k - 1], w.hb[k]):
                    np.matmul(hin, weight.T, out=hout)
            h += self.b[k]
            if self.relu:
                np.maximum(h, 0.0, out=h)
            else:
                np.tanh(h, out=h)

    def backward(self, x: np.ndarray, w: _Work) -> None:
        """Weight and bias gradients from ``w.dh[-1]`` (the loss gradient of the last activations);
        ``w.dh`` is overwritten."""
        for k in range(len(w.h) - 1, -1, -1):
            h, dz = w.h[k], w.dh[k]
            if self.relu:
                np.less_equal(h, 0.0, out=w.dead[k])
                np.copyto(dz, 0.0, where=w.dead[k])
            else:  # dz = dh (1 - h^2)
                t = w.t[k]
                np.multiply(h, h, out=t)
                t *= dz
                dz -= t
            np.matmul(w.ones, dz, out=self.g_b[k])
            if k == 0:
                np.matmul(dz.T, x, out=self.g_w0)
                continue
            for weight, g_weight, dzj, hin, dhin in zip(self.w[k], self.g_w[k], w.dhb[k], w.hb[k - 1], w.dhb[k - 1]):
                np.matmul(dzj.T, hin, out=g_weight)
                np.matmul(dzj, weight, out=dhin)


class _Work:
    """Preallocated arrays for one batch size: activations and their gradients (n, width); head
    outputs are kept transposed, (outputs, n), so that the reductions over a row's logits run
    along memory."""

    def __init__(self, n: int, trunk: Trunk, n_out: int, n_in: int | None):
        f32 = np.float32
        self.x = None if n_in is None else np.empty((n, n_in), f32)  # concatenated Dict entries
        self.h = [np.empty((n, width), f32) for width in trunk.widths]
        self.dh = [np.empty_like(h) for h in self.h]
        self.t = [np.empty_like(h) for h in self.h]
        self.dead = [np.empty(h.shape, bool) for h in self.h] if trunk.relu else []
        self.hb = [_blocks(h, trunk.blocks) for h in self.h]
        self.dhb = [_blocks(d, trunk.blocks) for d in self.dh]
        self.actor, self.critic = self.hb[-1][0], self.hb[-1][-1]       # what the two heads read
        self.d_actor, self.d_critic = self.dhb[-1][0], self.dhb[-1][-1]
        self.out = np.empty((n_out, n), f32)      # logits or Gaussian mean, transposed
        self.d_out = np.empty((n_out, n), f32)
        self.logp_all = np.empty((n_out, n), f32)
        self.probs = np.empty((n_out, n), f32)
        self.invalid = np.empty((n_out, n), bool)
        self.rows = np.arange(n)
        self.ones = np.ones(n, f32)               # sums over rows as matrix-vector products
        self.value = np.empty(n, f32)
        self.dv = np.empty((n, 1), f32)


class ManualGradients:
    """Computes the PPO loss gradient of a supported :class:`ActorCritic` into a flat vector.

    ``model``'s parameters must live in ``flat``, laid out in :func:`parameter_order` (see
    :func:`sysgym.agents.ppo.optim.flatten_parameters`); gradients are written into ``grads``
    (same layout). Minibatches are numpy arrays.
    """

    def __init__(self, model: ActorCritic, flat: torch.Tensor, grads: torch.Tensor):
        if not supports(model):
            raise ValueError("ManualGradients needs flat inputs, MLP trunks and a categorical or "
                             "state-independent Gaussian head")
        params_np, grads_np = flat.detach().numpy(), grads.numpy()
        self.model = model
        self.keys = model.encoder.keys
        self.trunk = Trunk(model, flat, params_np, grads_np)
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
        self.n_in = model.encoder.out_features
        self._work: dict[int, _Work] = {}

    def work(self, n: int) -> _Work:
        """The work arrays for batches of ``n`` rows (made on first use)."""
        w = self._work.get(n)
        if w is None:
            w = self._work[n] = _Work(n, self.trunk, self.head_w.shape[0], self.n_in if len(self.keys) > 1 else None)
        return w

    def input(self, obs: dict[str, np.ndarray], w: _Work | None = None) -> np.ndarray:
        """The network input: the observation entries flattened (and concatenated into ``w.x``)."""
        if len(self.keys) == 1:
            x = obs[self.keys[0]]
            return x if x.ndim == 2 else x.reshape(x.shape[0], -1)
        parts = [obs[k].reshape(obs[k].shape[0], -1) for k in self.keys]
        return np.concatenate(parts, axis=1) if w is None else np.concatenate(parts, axis=1, out=w.x)

    def heads(self, obs: dict[str, np.ndarray], w: _Work) -> np.ndarray:
        """Forward pass: fills ``w.h``, ``w.out`` (logits / mean) and ``w.value``; returns the input."""
        x = self.input(obs, w)
        self.trunk.forward(x, w)
        np.matmul(self.head_w, w.actor.T, out=w.out)
        w.out += self.head_b[:, None]
        np.matmul(w.critic, self.value_w[0], out=w.value)
        w.value += self.value_b
        return x

    def log_softmax(self, mask: np.ndarray | None, w: _Work) -> None:
        """``w.logp_all`` and ``w.probs`` (transposed) of the categorical over ``w.out`` (overwritten);
        masked-out entries get the logit ``MASKED_LOGIT`` and so probability 0."""
        z = w.out
        if mask is not None:
            np.logical_not(mask.T, out=w.invalid)
            np.copyto(z, MASKED_LOGIT, where=w.invalid)
        z -= np.maximum.reduce(z, axis=0)
        np.exp(z, out=w.probs)
        total = np.add.reduce(w.probs, axis=0)
        w.probs /= total
        np.subtract(z, np.log(total), out=w.logp_all)

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
        w = self.work(n)
        x = self.heads(obs, w)
        if self.categorical:
            self.log_softmax(mask, w)
            logp = w.logp_all[actions, w.rows]
            neg_entropy = np.add.reduce(np.multiply(w.probs, w.logp_all, out=w.d_out), axis=0)
        else:
            logp, z = self.gaussian_log_prob(w.out.T, actions)
            neg_entropy = np.full(n, -(self.log_std + 0.5 + LOG_SQRT_2PI).sum(), dtype=np.float32)

        log_ratio = logp - old_logp
        ratio = np.exp(log_ratio)
        # normalised advantage = centred * scale (scale > 0: signs are those of ``centred``)
        if cfg.norm_adv and n > 1:
            centred = advantages - np.add.reduce(advantages) / np.float32(n)
            scale = 1.0 / (math.sqrt(float(np.dot(centred, centred)) / (n - 1)) + 1e-8)
        else:
            centred, scale = advantages, 1.0
        # the surrogate terms -A r and -A clip(r) are -scale times these
        unclipped = centred * ratio
        clipped = centred * np.minimum(np.maximum(ratio, 1.0 - cfg.clip_coef), 1.0 + cfg.clip_coef)
        # The gradient flows where the unclipped term is the larger one or the ratio is inside the
        # clip range (there both terms are equal and clamp passes its gradient). A tie outside the
        # range needs A = 0, where the gradient is 0 anyway: this equals autograd's half-half split.
        d_logp = unclipped * (unclipped <= clipped)
        d_logp *= -scale / n

        value = w.value
        error = value - returns
        if cfg.clip_vloss:
            clipped_v = old_values + np.clip(value - old_values, -cfg.clip_coef, cfg.clip_coef)
            sq, sq_c = error * error, (clipped_v - returns) ** 2
            v_in = np.abs(value - old_values) <= cfg.clip_coef
            wt = np.where(sq > sq_c, 1.0, np.where(sq < sq_c, 0.0, 0.5))
            d_value = (wt * error + (1.0 - wt) * (clipped_v - returns) * v_in) * (cfg.vf_coef / n)
            np.copyto(w.dv[:, 0], d_value, casting="same_kind")
        else:
            np.multiply(error, cfg.vf_coef / n, out=w.dv[:, 0])

        d_out = w.d_out
        if self.categorical:
            # d_out = p ((log p + H) c_e / n - d_logp) + onehot(a) d_logp; masked logits have p = 0
            # exactly, so they get no gradient without an explicit mask
            np.subtract(w.logp_all, neg_entropy, out=d_out)
            d_out *= cfg.ent_coef / n
            d_out -= d_logp
            d_out *= w.probs
            d_out[actions, w.rows] += d_logp
        else:
            inv_std = np.exp(-self.log_std)
            np.multiply(d_logp[:, None] * z, inv_std, out=d_out.T)
            np.add.reduce(d_logp[:, None] * (z * z - 1.0), axis=0, out=self.g_log_std)
            self.g_log_std -= cfg.ent_coef

        np.matmul(d_out, w.actor, out=self.g_head_w)
        np.matmul(d_out, w.ones, out=self.g_head_b)
        np.matmul(w.dv.T, w.critic, out=self.g_value_w)
        np.add.reduce(w.dv, axis=0, out=self.g_value_b)
        # the loss gradient of the last activations: actor block from the policy head, critic
        # block (the same block with a shared trunk) from the value head
        np.matmul(d_out.T, self.head_w, out=w.d_actor)
        if self.trunk.blocks == 1:
            w.d_actor += w.dv * self.value_w
        else:
            np.multiply(w.dv, self.value_w, out=w.d_critic)
        self.trunk.backward(x, w)

        if not stats:
            return None
        pg_loss = -np.minimum(unclipped, clipped).mean() * scale
        v_loss = 0.5 * (np.maximum(error * error, sq_c) if cfg.clip_vloss else error * error).mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_frac = (np.abs(ratio - 1.0) > cfg.clip_coef).mean()
        return np.array([pg_loss, v_loss, -neg_entropy.mean(), approx_kl, clip_frac], dtype=np.float64)
