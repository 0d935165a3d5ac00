"""All network parameters in one flat vector, and Adam + gradient-norm clipping on that vector.

Small PPO networks are dominated by per-tensor overhead, not arithmetic: one Adam step over a
single contiguous vector is one call of torch's fused Adam kernel (the one ``torch.optim.Adam(
fused=True)`` runs) however many layers there are. :class:`FlatAdam` reproduces
``torch.optim.Adam`` (Kingma & Ba 2015, PyTorch's bias-correction form) and
``torch.nn.utils.clip_grad_norm_`` on the flat vector (to float32 rounding).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def flatten_parameters(module: nn.Module, order: list[nn.Parameter] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-home every parameter of ``module`` into one flat vector; returns (params, grads).

    Afterwards each ``p.data`` is a view into ``params`` (laid out in ``order``, a permutation of
    ``module.parameters()``, by default that order), so ``state_dict`` / ``load_state_dict`` keep
    working and write through; ``grads`` is a zero vector of the same layout for the caller to fill.
    """
    params = list(module.parameters())
    if order is not None:
        if sorted(map(id, order)) != sorted(map(id, params)):
            raise ValueError("order must list every parameter of the module once")
        params = list(order)
    flat = torch.cat([p.detach().reshape(-1) for p in params]).contiguous()
    grads = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        offset += n
    return flat, grads


class FlatAdam:
    """Adam on a flat parameter vector with global gradient-norm clipping (``max_grad_norm``).

    The norm and the clipping run in numpy on a view of the gradient vector, the update in one call
    of ``torch._fused_adam_`` (a handful of passes over memory in C++, whatever the number of layers).
    """

    def __init__(self, params: torch.Tensor, lr: float, eps: float = 1e-8, betas: tuple[float, float] = (0.9, 0.999),
                 max_grad_norm: float | None = None):
        self.params = params.detach()
        self.lr = lr
        self.eps = eps
        self.beta1, self.beta2 = betas
        self.max_grad_norm = max_grad_norm
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self._step = torch.zeros((), dtype=torch.float32)  # the fused kernel reads the step count here
        self.steps = 0

    def step(self, grads: torch.Tensor) -> float:
        """Clip ``grads`` in place, apply one Adam step; returns the gradient norm before clipping."""
        g = grads.numpy()
        norm = math.sqrt(float(np.dot(g, g)))
        if self.max_grad_norm is not None:
            coef = self.max_grad_norm / (norm + 1e-6)
            if coef < 1.0:
                g *= np.float32(coef)
        self.steps += 1
        self._step.fill_(self.steps)
        torch._fused_adam_([self.params], [grads], [self.exp_avg], [self.exp_avg_sq], [], [self._step],
                           lr=float(self.lr), beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps,
                           amsgrad=False, maximize=False)
        return norm

    def state_dict(self) -> dict[str, object]:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(), "steps": self.steps,
                "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg.copy_(torch.as_tensor(state["exp_avg"]))
        self.exp_avg_sq.copy_(torch.as_tensor(state["exp_avg_sq"]))
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])
