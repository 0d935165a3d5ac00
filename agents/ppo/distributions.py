"""Action heads: masked categorical, multi-categorical and Gaussian, written as plain tensor maths.

Each head maps trunk features to distribution parameters and offers ``sample``, ``evaluate``
(log-probability and entropy of stored actions) and ``mode`` (the deterministic action). Actions
are kept in the buffer in the head's *raw* form (the pre-squash Gaussian sample, the category
index) and turned into what the environment takes by ``to_env``.

Masking (discrete heads): invalid logits are replaced by a large negative number rather than
``-inf`` so that entropies stay finite; a masked action then has probability exactly 0 in float32
and is never sampled (Huang & Ontanon, "A Closer Look at Invalid Action Masking in Policy Gradient
Algorithms", FLAIRS 2022). Masks are passed in sanitised (:func:`sanitize_mask`): a row that allows
nothing is treated as unmasked.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

MASKED_LOGIT = -1e8
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def layer_init(layer: nn.Linear | nn.Conv2d, std: float = math.sqrt(2.0)) -> nn.Module:
    """Orthogonal weights with gain ``std`` and zero bias (CleanRL / OpenAI baselines)."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


def sanitize_mask(mask: torch.Tensor) -> torch.Tensor:
    """Rows that allow no action at all become all-valid (so a distribution always exists)."""
    if bool(mask.any(dim=-1).all()):
        return mask
    return mask | ~mask.any(dim=-1, keepdim=True)


def _mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` must already be sanitised (:func:`sanitize_mask`)."""
    if mask is None:
        return logits
    return logits.masked_fill(mask.logical_not(), MASKED_LOGIT)


def _sample_rows(logp_all: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One category per row; categories of probability 0 (masked) are never drawn."""
    flat = logp_all.reshape(-1, logp_all.shape[-1]).exp()
    return torch.multinomial(flat, 1, generator=generator).reshape(logp_all.shape[:-1])


class CategoricalHead(nn.Module):
    """``Discrete(n)`` actions, optionally masked by ``info["action_mask"]``."""

    masked = True

    def __init__(self, in_features: int, space: spaces.Discrete):
        super().__init__()
        self.n = int(space.n)
        self.start = int(space.start)
        self.linear = layer_init(nn.Linear(in_features, self.n), std=0.01)
        self.action_shape: tuple[int, ...] = ()
        self.action_dtype = torch.int64
        self.mask_size = self.n

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def sample(self, logits: torch.Tensor, mask: torch.Tensor | None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logp_all = torch.log_softmax(_mask_logits(logits, mask), dim=-1)
        action = _sample_rows(logp_all, generator)
        return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)

    def evaluate(self, logits: torch.Tensor, mask: torch.Tensor | None,
                 action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp_all = torch.log_softmax(_mask_logits(logits, mask), dim=-1)
        logp = logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp, entropy

    def mode(self, logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return torch.argmax(_mask_logits(logits, mask), dim=-1)

    def probabilities(self, logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return torch.softmax(_mask_logits(logits, mask), dim=-1)

    def to_env(self, action: torch.Tensor | np.ndarray) -> np.ndarray:
        out = _numpy(action)
        return out + self.start if self.start else out


class MultiCategoricalHead(nn.Module):
    """``MultiDiscrete(nvec)`` (1-D) actions: independent categoricals, mask concatenated per dim."""

    masked = True

    def __init__(self, in_features: int, space: spaces.MultiDiscrete):
        super().__init__()
        if space.nvec.ndim != 1:
            raise ValueError(f"only 1-D MultiDiscrete action spaces are supported, got {space}")
        self.nvec = [int(n) for n in space.nvec]
        self.start = np.asarray(space.start)
        self.linear = layer_init(nn.Linear(in_features, sum(self.nvec)), std=0.01)
        self.action_shape = (len(self.nvec),)
        self.action_dtype = torch.int64
        self.mask_size = sum(self.nvec)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def _split(self, logits: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        parts = torch.split(logits, self.nvec, dim=-1)
        if mask is None:
            return list(parts)
        return [_mask_logits(p, sanitize_mask(m)) for p, m in zip(parts, torch.split(mask, self.nvec, dim=-1))]

    def sample(self, logits, mask, generator=None):
        actions, logps = [], []
        for part in self._split(logits, mask):
            lp = torch.log_softmax(part, -1)
            a = _sample_rows(lp, generator)
            actions.append(a)
            logps.append(lp.gather(-1, a.unsqueeze(-1)).squeeze(-1))
        return torch.stack(actions, -1), torch.stack(logps, -1).sum(-1)

    def evaluate(self, logits, mask, action):
        logp = torch.zeros(logits.shape[:-1])
        entropy = torch.zeros(logits.shape[:-1])
        for k, part in enumerate(self._split(logits, mask)):
            lp = torch.log_softmax(part, -1)
            logp = logp + lp.gather(-1, action[..., k:k + 1]).squeeze(-1)
            entropy = entropy - (lp.exp() * lp).sum(-1)
        return logp, entropy

    def mode(self, logits, mask):
        return torch.stack([torch.argmax(p, -1) for p in self._split(logits, mask)], -1)

    def to_env(self, action: torch.Tensor | np.ndarray) -> np.ndarray:
        return _numpy(action) + self.start


class GaussianHead(nn.Module):
    """``Box`` actions: diagonal Gaussian over a raw action ``u``.

    ``squash="clip"`` (CleanRL, SB3): the env receives ``clip(u, low, high)`` and the log-probability
    is that of ``u``. ``squash="tanh"``: the env receives ``low + (tanh(u) + 1) (high - low) / 2``
    and the log-probability includes the change of variables (Haarnoja et al. 2018, SAC appendix C);
    its entropy term is the entropy of ``u``, an upper bound used as the bonus. The log standard
    deviation is a free parameter (state-independent, the default) or a second linear head.
    """

    masked = False

    def __init__(self, in_features: int, space: spaces.Box, squash: str = "clip",
                 state_dependent_std: bool = False, log_std_init: float = 0.0):
        super().__init__()
        self.env_shape = tuple(space.shape)
        self.dim = int(np.prod(space.shape))
        self.action_shape = (self.dim,)
        self.low = torch.tensor(np.broadcast_to(space.low, space.shape).reshape(-1), dtype=torch.float32)
        self.high = torch.tensor(np.broadcast_to(space.high, space.shape).reshape(-1), dtype=torch.float32)
        if squash == "tanh" and not (torch.isfinite(self.low).all() and torch.isfinite(self.high).all()):
            raise ValueError(f"squash='tanh' needs a bounded action space, got {space}")
        self.squash = squash
        self.env_dtype = space.dtype
        self.action_dtype = torch.float32
        self.mask_size = 0
        self.mean = layer_init(nn.Linear(in_features, self.dim), std=0.01)
        self.state_dependent_std = state_dependent_std
        if state_dependent_std:
            self.log_std_head = layer_init(nn.Linear(in_features, self.dim), std=0.01)
            nn.init.constant_(self.log_std_head.bias, log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((self.dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(features)
        if self.state_dependent_std:
            log_std = self.log_std_head(features).clamp(-20.0, 2.0)
        else:
            log_std = self.log_std.expand_as(mean)
        return mean, log_std

    def _log_prob(self, mean, log_std, u):
        z = (u - mean) * torch.exp(-log_std)
        logp = (-0.5 * z * z - log_std - LOG_SQRT_2PI).sum(-1)
        if self.squash == "tanh":
            t = torch.tanh(u)
            scale = (self.high - self.low) * 0.5
            logp = logp - torch.log(scale * (1.0 - t * t) + 1e-6).sum(-1)
        return logp

    def sample(self, params, mask=None, generator=None):
        mean, log_std = params
        u = mean + torch.exp(log_std) * torch.randn(mean.shape, generator=generator)
        return u, self._log_prob(mean, log_std, u)

    def evaluate(self, params, mask, action):
        mean, log_std = params
        entropy = (log_std + 0.5 + LOG_SQRT_2PI).sum(-1)
        return self._log_prob(mean, log_std, action), entropy

    def mode(self, params, mask=None):
        return params[0]

    def to_env(self, action: torch.Tensor | np.ndarray) -> np.ndarray:
        action = torch.as_tensor(action)
        if self.squash == "tanh":
            a = self.low + (torch.tanh(action) + 1.0) * 0.5 * (self.high - self.low)
        else:
            a = torch.maximum(torch.minimum(action, self.high), self.low)
        return a.numpy().reshape(tuple(a.shape[:-1]) + self.env_shape).astype(self.env_dtype, copy=False)


def _numpy(action: torch.Tensor | np.ndarray) -> np.ndarray:
    return action.numpy() if isinstance(action, torch.Tensor) else action


def make_head(in_features: int, space: spaces.Space, squash: str = "clip",
              state_dependent_std: bool = False, log_std_init: float = 0.0) -> nn.Module:
    """The action head for ``space`` (Discrete, MultiDiscrete or Box)."""
    if isinstance(space, spaces.Discrete):
        return CategoricalHead(in_features, space)
    if isinstance(space, spaces.MultiDiscrete):
        return MultiCategoricalHead(in_features, space)
    if isinstance(space, spaces.Box):
        return GaussianHead(in_features, space, squash, state_dependent_std, log_std_init)
    raise ValueError(f"PPO supports Discrete, MultiDiscrete and Box action spaces, got {space}")
