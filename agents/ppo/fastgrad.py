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

Large inputs (at least ``SPARSE_MIN_INPUTS``, such as DeepRM's image of up to 14,160 cells) make
the first layer cost nearly everything. For them the first-layer weights are stored one input per
row (:func:`sparse_columns`, ``flatten_parameters(columns=...)``) and an update's minibatches are
row ids into the rollout bound with :meth:`ManualGradients.bind_rows`: :class:`SparseRows` encodes
each observation once per rollout as the differences of its consecutive rows (an image row seldom
differs from the next one) and computes the first layer's product and weight gradient from those
nonzero differences (``sysgym.cython_core.ppo_sparse``); a minibatch whose differences are not
sparse enough uses the dense products. Both give the dense result up to float rounding. During the
trainer's updates (:attr:`ManualGradients.defer_first_layer`) that weight gradient is not even
written: the backward returns its sum of squares (for the norm clip) and the Adam step makes it
again one image row at a time, applying it while the row is in cache (the same numbers as writing
it; ``tests/agents/test_ppo_sparse.py`` checks the weights and moments bit for bit).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from sysgym.cython_core.ppo_forward import bias_tanh, categorical_loss, tanh_backward

from .config import PPOConfig
from .distributions import LOG_SQRT_2PI, MASKED_LOGIT, CategoricalHead, GaussianHead
from .networks import ActorCritic, Flatten

SPARSE_MIN_INPUTS = 1024   # inputs from which the first layer is stored one input per row
SPARSE_MAX_DENSITY = 0.125  # a minibatch's row differences denser than this use the dense product


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


def sparse_columns(model: ActorCritic) -> list[nn.Parameter] | None:
    """The first-layer weights to store one input per row (the columns of one matrix) when the
    fast path's sparse first layer applies (one flat observation entry of at least
    ``SPARSE_MIN_INPUTS`` values); None otherwise."""
    if not supports(model) or len(model.encoder.keys) != 1 or model.encoder.out_features < SPARSE_MIN_INPUTS:
        return None
    trunks = [model.trunk] + ([] if model.shared else [model.critic_trunk])
    columns = [_linears(t)[0].weight for t in trunks]
    return columns if [id(p) for p in parameter_order(model)[:len(columns)]] == list(map(id, columns)) else None


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


def _columns(params: list[torch.Tensor], flat: torch.Tensor, vector: np.ndarray) -> np.ndarray | None:
    """The (inputs, sum of outputs) numpy view of ``vector`` when ``params`` are the columns of one
    row-major matrix in ``flat`` (``flatten_parameters(columns=...)``); None otherwise."""
    n_in, width = params[0].shape[1], sum(p.shape[0] for p in params)
    start = (params[0].data_ptr() - flat.data_ptr()) // flat.element_size()
    offset = 0
    for p in params:
        if n_in < 2 or p.shape[1] != n_in or p.stride() != (1, width) or \
                p.data_ptr() != params[0].data_ptr() + offset * flat.element_size():
            return None
        offset += p.shape[0]
    return vector[start:start + n_in * width].reshape(n_in, width)


class SparseRows:
    """The first layer on a rollout's observations encoded as nonzero row differences.

    An observation x of shape (T, L) (flattened: n_in = T L inputs, one row of the (n_in, width)
    weight matrix W each) equals the suffix sum over rows of D[t] = x[t] - x[t + 1] (x[T] = 0), so
    ``x @ W = D @ C`` with C the prefix sums over rows of W (``C[t] = W[0] + ... + W[t]``, each
    ``W[t]`` being the L rows of W belonging to image row t), and the weight gradient
    ``x^T dz`` is the suffix sum over rows of ``D^T dz``. D is stored sparse (CSR, one row per
    sample); minibatches are sample ids.
    """

    def __init__(self, rows: int, n_in: int, width: int):
        if rows < 1 or n_in % rows:
            raise ValueError(f"cannot split {n_in} inputs into {rows} rows")
        self.rows, self.n_in = rows, n_in
        self.prefix = np.empty((n_in // rows, width), np.float32)   # one image row of C at a time
        self.row = np.empty((n_in // rows, width), np.float32)      # one image row of the gradient
        self.x: np.ndarray | None = None                    # the bound rollout, (N, n_in)
        self.bound: tuple | None = None                     # its encoding (indptr, cols, vals)
        self.table: np.ndarray | None = None                # C while the weights are frozen
        self.frozen = False

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, cols, vals): the nonzero row differences of the observations ``x`` (N, n_in)."""
        from sysgym.cython_core.ppo_sparse import encode_row_differences

        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"observations of shape {x.shape} do not have {self.n_in} inputs")
        x = np.ascontiguousarray(x, dtype=np.float32)
        return encode_row_differences(x.reshape(len(x), self.rows, -1))

    def bind(self, x: np.ndarray) -> None:
        """Encode the observations ``x`` (N, n_in) that later ids refer to (kept, not copied)."""
        self.bound = self.encode(x)
        self.x = np.ascontiguousarray(x, dtype=np.float32)

    def check(self, ids: np.ndarray) -> np.ndarray:
        if self.x is None:
            raise ValueError("row ids need a rollout bound with ManualGradients.bind_rows")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.x)):
            raise ValueError(f"row ids must lie in [0, {len(self.x)})")
        return ids

    def sparse(self, ids: np.ndarray, code: tuple | None = None) -> bool:
        """Whether the differences of rows ``ids`` (of the bound rollout, or of ``code``) are sparse
        enough for the sparse products."""
        indptr = (code or self.bound)[0]
        nnz = int(np.add.reduce(indptr[ids + 1] - indptr[ids]))
        return nnz <= SPARSE_MAX_DENSITY * len(ids) * self.n_in

    def forward(self, ids: np.ndarray, w0t: np.ndarray, out: np.ndarray, code: tuple | None = None) -> None:
        """``out = x[ids] @ w0t`` from the sparse differences (of the bound rollout, or ``code``).
        While the weights are frozen (:meth:`ManualGradients.frozen_weights`), C is computed once."""
        from sysgym.cython_core.ppo_sparse import sparse_rows_lookup, sparse_rows_product

        if not self.frozen:
            sparse_rows_product(w0t, self.rows, *(code or self.bound), ids, out, self.prefix)
            return
        if self.table is None:   # the same sums, in the same order, as sparse_rows_product's
            self.table = np.empty_like(w0t)
            c, w = self.table.reshape(self.rows, -1), w0t.reshape(self.rows, -1)
            np.copyto(c[0], w[0])
            for t in range(1, self.rows):
                np.add(c[t - 1], w[t], out=c[t])
        sparse_rows_lookup(self.table, *(code or self.bound), ids, out)

    def backward(self, ids: np.ndarray, dz: np.ndarray, g_w0t: np.ndarray) -> float:
        """``g_w0t = x[ids]^T dz`` from the sparse differences of the bound rollout; returns the
        sum of the squares of ``g_w0t``."""
        from sysgym.cython_core.ppo_sparse import sparse_rows_gradient

        return sparse_rows_gradient(self.rows, *self.bound, ids, np.ascontiguousarray(dz), g_w0t)

    def squares(self, ids: np.ndarray, dz: np.ndarray) -> float:
        """What :meth:`backward` returns (the same number) without writing the gradient."""
        from sysgym.cython_core.ppo_sparse import sparse_rows_squares

        return sparse_rows_squares(self.rows, *self.bound, ids, dz, self.row)

    def adam(self, ids: np.ndarray, dz: np.ndarray, params: np.ndarray, exp_avg: np.ndarray,
             exp_avg_sq: np.ndarray, *args: float) -> None:
        """Adam on the first-layer weights with the gradient ``x[ids]^T dz`` (the numbers
        :meth:`backward` writes), made one image row at a time and never written out."""
        from sysgym.cython_core.ppo_sparse import sparse_rows_adam

        sparse_rows_adam(self.rows, *self.bound, ids, dz, self.row, params, exp_avg, exp_avg_sq, *args)


class Trunk:
    """The actor trunk, or actor and critic trunks side by side, as one MLP of width ``blocks * H``.

    Layer 0 is one (blocks H, n_in) product; deeper layers are block-diagonal (one product per
    network). Holds numpy views of the weights and of their gradients. With the first-layer weights
    stored one input per row (``w0t``, (n_in, blocks H)), an integer array of row ids as input
    selects rows of the rollout bound to ``sparse``.
    """

    def __init__(self, model: ActorCritic, flat: torch.Tensor, params: np.ndarray, grads: np.ndarray):
        trunks = [_linears(model.trunk)] + ([] if model.shared else [_linears(model.critic_trunk)])
        self.blocks = len(trunks)
        self.relu = any(isinstance(m, nn.ReLU) for m in model.trunk)
        layers = list(zip(*trunks))  # per layer: the Linear of each network
        if any(len({m.out_features for m in layer}) > 1 for layer in layers) or len(trunks[0]) != len(trunks[-1]):
            raise ValueError("ManualGradients needs actor and critic trunks of the same sizes")
        self.widths = [sum(m.out_features for m in layer) for layer in layers]
        first = [m.weight for m in layers[0]]
        self.w0t, self.g_w0t = _columns(first, flat, params), _columns(first, flat, grads)
        if self.w0t is None:
            self.w0, self.g_w0 = _stacked(first, flat, params), _stacked(first, flat, grads)
        else:  # where g_w0t lies in the gradient vector
            start = (first[0].data_ptr() - flat.data_ptr()) // flat.element_size()
            self.span = (start, start + self.g_w0t.size)
        self.sparse: SparseRows | None = None
        self.squares: float | None = None  # sum of squares of g_w0t when the sparse backward ran
        self.defer = False                 # sparse backward: leave g_w0t unwritten (see ManualGradients.deferred)
        self.pending: tuple[np.ndarray, np.ndarray] | None = None   # (ids, dz) of a deferred g_w0t
        self.w = [[_view(m.weight, flat, params) for m in layer] for layer in layers]
        self.g_w = [[_view(m.weight, flat, grads) for m in layer] for layer in layers]
        self.b = [_stacked([m.bias for m in layer], flat, params) for layer in layers]
        self.g_b = [_stacked([m.bias for m in layer], flat, grads) for layer in layers]

    def forward(self, x: np.ndarray, w: _Work) -> np.ndarray:
        """Fill ``w.h`` (every layer's activations) for the input rows ``x`` (or row ids of the
        bound rollout); returns what :meth:`backward` needs: ``x``, the ids, or the ids' rows."""
        code = None  # dense rows encoded here (rollout steps): the sparse product, dense backward
        if x.dtype.kind in "iu":
            ids = self.sparse.check(x) if self.sparse is not None else None
            if ids is None:
                raise ValueError("row ids need the sparse first layer (ManualGradients.bind_rows)")
            x = ids if self.sparse.sparse(ids) else self.sparse.x[ids]
        elif self.sparse is not None:
            code = self.sparse.encode(x)
            if not self.sparse.sparse(w.rows, code):
                code = None
        for k, h in enumerate(w.h):
            if k == 0 and code is not None:
                self.sparse.forward(w.rows, self.w0t, h, code)
            elif k == 0 and x.dtype.kind in "iu":
                self.sparse.forward(x, self.w0t, h)
            elif k == 0:
                np.matmul(x, self.w0.T if self.w0t is None else self.w0t, out=h)
            else:
                for weight, hin, hout in zip(self.w[k], w.hb[k - 1], w.hb[k]):
                    np.matmul(hin, weight.T, out=hout)
            if self.relu:
                h += self.b[k]
                np.maximum(h, 0.0, out=h)
            else:  # ppo_forward's tanh: numpy's float32 tanh costs several times more here
                bias_tanh(h, self.b[k])
        return x

    def backward(self, x: np.ndarray, w: _Work) -> None:
        """Weight and bias gradients from ``w.dh[-1]`` (the loss gradient of the last activations);
        ``w.dh`` is overwritten."""
        for k in range(len(w.h) - 1, -1, -1):
            h, dz = w.h[k], w.dh[k]
            if self.relu:
                np.less_equal(h, 0.0, out=w.dead[k])
                np.copyto(dz, 0.0, where=w.dead[k])
            else:  # dz = dh (1 - h^2), as dz - (h h) dz in one pass
                tanh_backward(h.reshape(-1), dz.reshape(-1))
            np.matmul(w.ones, dz, out=self.g_b[k])
            if k == 0:
                self.squares, self.pending = None, None
                if x.dtype.kind in "iu" and self.defer:
                    self.squares, self.pending = self.sparse.squares(x, dz), (x, dz)
                elif x.dtype.kind in "iu":
                    self.squares = self.sparse.backward(x, dz, self.g_w0t)
                elif self.w0t is None:
                    np.matmul(dz.T, x, out=self.g_w0)
                else:
                    np.matmul(x.T, dz, out=self.g_w0t)
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
        self.rows = np.arange(n, dtype=np.int64)
        self.ones = np.ones(n, f32)               # sums over rows as matrix-vector products
        self.value = np.empty(n, f32)
        self.dv = np.empty((n, 1), f32)
        self.scratch = np.empty(3 * n, f32)        # the C loss head's per-sample terms
        self.stats = np.empty(5)


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
        self.frozen = 0      # inside frozen_weights: that context's number (counted from 1); else 0
        self._contexts = 0
        if self.trunk.w0t is not None and len(self.keys) == 1:
            shape = model.encoder.encoders[self.keys[0]].shape   # differences run along the first axis
            self.trunk.sparse = SparseRows(shape[0] if len(shape) >= 2 else 1, self.n_in, self.trunk.widths[0])

    @contextlib.contextmanager
    def frozen_weights(self) -> Iterator[None]:
        """Promise that the weights do not change inside: the sparse first layer then computes its
        prefix sums once (a rollout's steps) instead of at every call, and
        :class:`~sysgym.agents.ppo.fastact.NumpyActor` may act on a copy of the weights (it copies
        them again when :attr:`frozen` counts a new context)."""
        sparse = self.trunk.sparse
        self.frozen = self._contexts = self._contexts + 1
        if sparse is not None:
            sparse.frozen, sparse.table = True, None
        try:
            yield
        finally:
            self.frozen = 0
            if sparse is not None:
                sparse.frozen, sparse.table = False, None

    def known_squares(self) -> tuple[int, int, float] | None:
        """(start, end, sum of squares) of the gradient vector's first-layer slice when the last
        call's sparse backward computed it (:meth:`FlatAdam.step` then skips that slice); else None."""
        if self.trunk.squares is None:
            return None
        return (*self.trunk.span, self.trunk.squares)

    @property
    def defer_first_layer(self) -> bool:
        """When True, a sparse backward (row ids) does not write the first layer's weight gradient:
        :meth:`known_squares` still gives its sum of squares, and :meth:`deferred` the Adam update
        that makes it again one image row at a time while applying it (the trainer's update passes
        both to :meth:`FlatAdam.step`); the gradient vector's first-layer slice is stale meanwhile."""
        return self.trunk.defer

    @defer_first_layer.setter
    def defer_first_layer(self, value: bool) -> None:
        self.trunk.defer = bool(value)

    def deferred(self) -> Callable[..., None] | None:
        """The Adam update of the first-layer weights whose gradient the last call left unwritten
        (``FlatAdam.step``'s ``deferred``); None when that call wrote the whole gradient."""
        pending = self.trunk.pending
        if pending is None:
            return None
        return lambda *args: self.trunk.sparse.adam(*pending, *args)

    @property
    def sparse_rows(self) -> bool:
        """Whether minibatches may be row ids of a rollout bound with :meth:`bind_rows`."""
        return self.trunk.sparse is not None

    def bind_rows(self, obs: dict[str, np.ndarray]) -> None:
        """Bind a rollout's observations (N rows): later calls may pass row ids into it instead of
        observations (the sparse first layer; see :class:`SparseRows`)."""
        if self.trunk.sparse is None:
            raise ValueError("row ids need the first layer stored one input per row (sparse_columns)")
        x = obs[self.keys[0]]
        self.trunk.sparse.bind(x.reshape(x.shape[0], -1))

    def work(self, n: int) -> _Work:
        """The work arrays for batches of ``n`` rows (made on first use)."""
        w = self._work.get(n)
        if w is None:
            w = self._work[n] = _Work(n, self.trunk, self.head_w.shape[0], self.n_in if len(self.keys) > 1 else None)
        return w

    def input(self, obs: dict[str, np.ndarray] | np.ndarray, w: _Work | None = None) -> np.ndarray:
        """The network input: the observation entries flattened (and concatenated into ``w.x``);
        an array of row ids (see :meth:`bind_rows`) as it is."""
        if isinstance(obs, np.ndarray):
            return obs
        if len(self.keys) == 1:
            x = obs[self.keys[0]]
            return x if x.ndim == 2 else x.reshape(x.shape[0], -1)
        parts = [obs[k].reshape(obs[k].shape[0], -1) for k in self.keys]
        return np.concatenate(parts, axis=1) if w is None else np.concatenate(parts, axis=1, out=w.x)

    def heads(self, obs: dict[str, np.ndarray] | np.ndarray, w: _Work) -> np.ndarray:
        """Forward pass: fills ``w.h``, ``w.out`` (logits / mean) and ``w.value``; returns what the
        first layer's backward needs (the input rows or row ids)."""
        x = self.trunk.forward(self.input(obs, w), w)
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

        ``obs`` may be row ids into the rollout bound with :meth:`bind_rows`. ``mask`` must allow at
        least one action per row (the trainer's rollout guarantees it).
        """
        n = actions.shape[0]
        w = self.work(n)
        x = self.heads(obs, w)
        if self.categorical and not cfg.clip_vloss:   # the loss head in one C pass (the common case)
            out = np.empty(5) if stats else w.stats
            categorical_loss(w.out, w.probs, None if mask is None else np.ascontiguousarray(mask).view(np.uint8),
                             np.ascontiguousarray(actions, np.int64), np.ascontiguousarray(old_logp, np.float32),
                             np.ascontiguousarray(advantages, np.float32), np.ascontiguousarray(returns, np.float32),
                             w.value, MASKED_LOGIT, cfg.clip_coef, cfg.ent_coef / n, cfg.vf_coef / n, cfg.norm_adv,
                             w.scratch, w.d_out, w.dv[:, 0], out)
            self._backward(x, w)
            return out if stats else None
        return self._numpy_loss(x, w, mask, actions, old_logp, advantages, returns, old_values, cfg, stats)

    def _numpy_loss(self, x: np.ndarray, w: _Work, mask: np.ndarray | None, actions: np.ndarray,
                    old_logp: np.ndarray, advantages: np.ndarray, returns: np.ndarray, old_values: np.ndarray,
                    cfg: PPOConfig, stats: bool) -> np.ndarray | None:
        """:meth:`__call__` after the forward pass, in numpy (Gaussian heads, clipped value loss)."""
        n = actions.shape[0]
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

        self._backward(x, w)
        if not stats:
            return None
        pg_loss = -np.minimum(unclipped, clipped).mean() * scale
        v_loss = 0.5 * (np.maximum(error * error, sq_c) if cfg.clip_vloss else error * error).mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_frac = (np.abs(ratio - 1.0) > cfg.clip_coef).mean()
        return np.array([pg_loss, v_loss, -neg_entropy.mean(), approx_kl, clip_frac], dtype=np.float64)

    def _backward(self, x: np.ndarray, w: _Work) -> None:
        """The weight gradients from ``w.d_out`` (the loss gradient of the head outputs) and ``w.dv``
        (of the values)."""
        d_out = w.d_out
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
