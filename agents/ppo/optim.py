"""All network parameters in one flat vector, and Adam + gradient-norm clipping on that vector.

Small PPO networks are dominated by per-tensor overhead, not arithmetic: one Adam step over a
single contiguous vector is one pass of a small C kernel however many layers there are.
:class:`FlatAdam` reproduces ``torch.optim.Adam`` (Kingma & Ba 2015, PyTorch's bias-correction
form) and ``torch.nn.utils.clip_grad_norm_`` on the flat vector (to float32 rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def flatten_parameters(module: nn.Module, order: list[nn.Parameter] | None = None,
                       columns: list[nn.Parameter] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-home every parameter of ``module`` into one flat vector; returns (params, grads).

    Afterwards each ``p.data`` is a view into ``params`` (laid out in ``order``, a permutation of
    ``module.parameters()``, by default that order), so ``state_dict`` / ``load_state_dict`` keep
    working and write through; ``grads`` is a zero vector of the same layout for the caller to fill.
    ``columns``, the first entries of ``order`` (matrices with one input size, such as the first
    layers of an actor and a critic), are stored as the columns of one row-major (inputs, sum of
    outputs) matrix: each becomes a transposed view, one row per input (the layout
    :mod:`sysgym.agents.ppo.fastgrad`'s sparse first layer reads).
    """
    params = list(module.parameters())
    if order is not None:
        if sorted(map(id, order)) != sorted(map(id, params)):
            raise ValueError("order must list every parameter of the module once")
        params = list(order)
    columns = list(columns or [])
    if [id(p) for p in params[:len(columns)]] != [id(p) for p in columns] or \
            any(p.dim() != 2 or p.shape[1] != columns[0].shape[1] for p in columns):
        raise ValueError("columns must be the first entries of order, matrices with the same number of inputs")
    flat = torch.cat([p.detach().reshape(-1) for p in params]).contiguous()
    grads = torch.zeros_like(flat)
    offset = 0
    if columns:
        n_in, width = columns[0].shape[1], sum(p.shape[0] for p in columns)
        block = flat[:n_in * width].view(n_in, width)
        block.copy_(torch.cat([p.detach().t() for p in columns], dim=1))
        for p in columns:
            p.data = block[:, offset:offset + p.shape[0]].t()
            offset += p.shape[0]
        offset = n_in * width
    for p in params[len(columns):]:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        offset += n
    return flat, grads


def canonical(vector: torch.Tensor, flat: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """The entries of ``vector`` (laid out as ``flat``, which holds ``params``) parameter by
    parameter, each row-major: the layout :func:`flatten_parameters` gives without ``columns``."""
    return torch.cat([_entries(vector, flat, p).reshape(-1) for p in params])


def from_canonical(values: torch.Tensor, vector: torch.Tensor, flat: torch.Tensor, params: list[nn.Parameter]) -> None:
    """Write ``values`` (laid out as :func:`canonical` returns) into ``vector`` (laid out as ``flat``)."""
    if values.shape != vector.shape:
        raise ValueError(f"{tuple(values.shape)} values do not fit a vector of {tuple(vector.shape)}")
    offset = 0
    for p in params:
        n = p.numel()
        _entries(vector, flat, p).copy_(values[offset:offset + n].view(p.shape))
        offset += n


def _entries(vector: torch.Tensor, flat: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The view of ``vector`` holding what ``flat`` holds for ``p`` (same shape and strides)."""
    start = (p.data_ptr() - flat.data_ptr()) // flat.element_size()
    last = start + sum((n - 1) * s for n, s in zip(p.shape, p.stride()))
    if start < 0 or last >= flat.numel():
        raise ValueError("a parameter does not live in the flat vector (see flatten_parameters)")
    return vector.as_strided(p.shape, p.stride(), vector.storage_offset() + start)


class FlatAdam:
    """Adam on a flat parameter vector with global gradient-norm clipping (``max_grad_norm``).

    The norm runs in numpy on a view of the gradient vector; the clipping factor and the update
    are one pass of ``sysgym.cython_core.ppo_sparse.adam_step`` in float32: PyTorch's update
    ``lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` written as ``s * m / (sqrt(v) + eps sqrt(bc2))``
    with ``s = lr sqrt(bc2) / bc1`` (one division per entry instead of two; equal up to float
    rounding). An entry whose gradient and moments are 0 is left exactly as it is.
    """

    def __init__(self, params: torch.Tensor, lr: float, eps: float = 1e-8, betas: tuple[float, float] = (0.9, 0.999),
                 max_grad_norm: float | None = None, members: list[nn.Parameter] | None = None):
        self.params = params.detach()
        self.members = members  # the parameters in ``params``: the state is saved in their canonical layout
        self.lr = lr
        self.eps = eps
        self.beta1, self.beta2 = betas
        self.max_grad_norm = max_grad_norm
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self.steps = 0
        # numpy views of the three vectors (written in place only) and of the last gradient vector
        self._state = [t.numpy() for t in (self.params, self.exp_avg, self.exp_avg_sq)]
        self._grads: tuple[torch.Tensor, np.ndarray] | None = None

    def step(self, grads: torch.Tensor, known: tuple[int, int, float] | None = None,
             deferred: Callable[..., None] | None = None) -> float:
        """One Adam step with ``grads`` clipped to norm ``max_grad_norm`` (``grads`` is not
        written); returns the gradient norm before clipping.

        ``known`` = (start, end, s): ``s`` is the sum of the squares of the gradient's slice
        ``[start, end)`` (computed where it was made), which the norm then does not read again.
        ``deferred``, with ``known``: that slice of ``grads`` was not written at all, and
        ``deferred(params, exp_avg, exp_avg_sq, coef, beta1, beta2, step_size, eps_hat)`` runs
        :func:`~sysgym.cython_core.ppo_sparse.adam_step`'s update on the slices of the parameters
        and moments with that gradient times ``coef`` (see ``fastgrad.ManualGradients.deferred``).
        """
        from sysgym.cython_core.ppo_sparse import adam_step

        if deferred is not None and known is None:
            raise ValueError("a deferred slice needs known = (start, end, sum of squares)")
        if self._grads is None or self._grads[0] is not grads:
            self._grads = (grads, grads.numpy())
        g = self._grads[1]
        if known is None:
            squares = float(np.dot(g, g))
        else:
            start, end, squares = known
            squares += float(np.dot(g[:start], g[:start])) + float(np.dot(g[end:], g[end:]))
        norm = math.sqrt(squares)
        coef = 1.0
        if self.max_grad_norm is not None:
            coef = min(1.0, self.max_grad_norm / (norm + 1e-6))
        self.steps += 1
        root = math.sqrt(1.0 - self.beta2 ** self.steps)
        args = (coef, self.beta1, self.beta2, self.lr * root / (1.0 - self.beta1 ** self.steps), self.eps * root)
        p, m, v = self._state
        if deferred is None:
            adam_step(p, g, m, v, *args)
        else:
            for lo, hi in ((0, start), (end, len(g))):
                if hi > lo:
                    adam_step(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], *args)
            deferred(p[start:end], m[start:end], v[start:end], *args)
        return norm

    def state_dict(self) -> dict[str, object]:
        """Moments in the canonical layout (:func:`canonical` of ``members``), so a state saved with
        one flat layout loads into another."""
        if self.members is None:
            moments = [self.exp_avg.clone(), self.exp_avg_sq.clone()]
        else:
            moments = [canonical(m, self.params, self.members) for m in (self.exp_avg, self.exp_avg_sq)]
        return {"exp_avg": moments[0], "exp_avg_sq": moments[1], "steps": self.steps, "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        for key in ("exp_avg", "exp_avg_sq"):
            values = torch.as_tensor(state[key])
            if self.members is None:
                getattr(self, key).copy_(values)
            else:
                from_canonical(values, getattr(self, key), self.params, self.members)
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])
