"""All network parameters in one flat vector, and Adam + gradient-norm clipping on that vector.

Small PPO networks are dominated by per-tensor overhead, not arithmetic: one Adam step over a
single contiguous vector costs a handful of tensor operations however many layers there are.
:class:`FlatAdam` reproduces ``torch.optim.Adam`` (Kingma & Ba 2015, PyTorch's bias-correction
form) and ``torch.nn.utils.clip_grad_norm_`` on the flat vector (to float32 rounding).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def flatten_parameters(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-home every parameter of ``module`` into one flat vector; returns (params, grads).

    Afterwards each ``p.data`` is a view into ``params`` (in ``module.parameters()`` order), so
    ``state_dict`` / ``load_state_dict`` keep working and write through; ``grads`` is a zero
    vector of the same layout for the caller to fill.
    """
    params = list(module.parameters())
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

    The arithmetic runs in numpy on views of the torch vectors (a handful of array operations per
    step, whatever the number of layers).
    """

    def __init__(self, params: torch.Tensor, lr: float, eps: float = 1e-8, betas: tuple[float, float] = (0.9, 0.999),
                 max_grad_norm: float | None = None):
        self.params = params
        self._p = params.detach().numpy()
        self.lr = lr
        self.eps = eps
        self.beta1, self.beta2 = betas
        self.max_grad_norm = max_grad_norm
        self.exp_avg = np.zeros_like(self._p)
        self.exp_avg_sq = np.zeros_like(self._p)
        self.steps = 0

    def step(self, grads: torch.Tensor) -> float:
        """Clip ``grads`` in place, apply one Adam step; returns the gradient norm before clipping."""
        g = grads.numpy()
        norm = float(np.sqrt(np.dot(g, g)))
        if self.max_grad_norm is not None:
            coef = self.max_grad_norm / (norm + 1e-6)
            if coef < 1.0:
                g *= np.float32(coef)
        self.steps += 1
        self.exp_avg += np.float32(1.0 - self.beta1) * (g - self.exp_avg)
        self.exp_avg_sq *= np.float32(self.beta2)
        self.exp_avg_sq += np.float32(1.0 - self.beta2) * g * g
        bias1 = 1.0 - self.beta1 ** self.steps
        bias2 = 1.0 - self.beta2 ** self.steps
        denom = np.sqrt(self.exp_avg_sq)
        denom /= np.float32(math.sqrt(bias2))
        denom += np.float32(self.eps)
        self._p -= np.float32(self.lr / bias1) * self.exp_avg / denom
        return norm

    def state_dict(self) -> dict[str, object]:
        return {"exp_avg": torch.from_numpy(self.exp_avg.copy()), "exp_avg_sq": torch.from_numpy(self.exp_avg_sq.copy()),
                "steps": self.steps, "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg[:] = np.asarray(state["exp_avg"])
        self.exp_avg_sq[:] = np.asarray(state["exp_avg_sq"])
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])
