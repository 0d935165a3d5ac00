"""The rollout-time policy step of an MLP actor-critic in numpy (forward pass, sampling, value).

During a rollout the policy is called once per time step on a small batch (one row per sub-env);
at that size each torch call costs more in dispatch than in arithmetic, and numpy's per-call cost
is a few times lower. :class:`NumpyActor` runs the forward pass of
:class:`~sysgym.agents.ppo.fastgrad.ManualGradients` (the *live* weights, as numpy views, so every
optimiser step is seen; actor and critic side by side in one trunk; work arrays allocated once)
and draws from the same distributions as the torch heads: masked categorical by the Gumbel-max
trick, Gaussian with clip or tanh squash. Log-probabilities agree with the torch heads'
``evaluate`` to float32 rounding (``tests/agents/test_ppo.py`` checks it).

Inside :meth:`ManualGradients.frozen_weights` (a rollout), a masked categorical policy on dense
inputs acts through :class:`~sysgym.cython_core.ppo_forward.FrozenPolicy` instead: the whole step
(layers, log-softmax, Gumbel-max, value) in one C call on a copy of the weights taken once per
rollout, with the same noise; it agrees with the numpy path to float32 rounding
(``tests/agents/test_ppo_forward.py``). :meth:`NumpyActor._compiled` makes that choice.
"""

from __future__ import annotations

import numpy as np

from sysgym.cython_core.ppo_forward import FrozenPolicy

from .distributions import MASKED_LOGIT
from .fastgrad import ManualGradients


class NumpyActor:
    """Acts for a batch of observations with the network behind ``grads`` (see module docstring).

    Noise is drawn for many steps in one generator call, (steps, rows, outputs) at a time: the
    generator fills arrays in order, so a seed gives exactly the draws of one call per step.
    """

    NOISE_VALUES = 1 << 20  # per generator call (8 MB of float64)

    def __init__(self, grads: ManualGradients, seed: int):
        self.net = grads
        self.rng = np.random.default_rng(seed)
        self._noise = np.empty((0, 0, 0))
        self._next = 0
        self._chunk_start: dict | None = None  # the generator's state before the current chunk was drawn
        self._policy: tuple | None = None      # (frozen context, rows, FrozenPolicy or None, its outputs)

    def _draw(self, shape: tuple[int, int]) -> np.ndarray:
        """The next (rows, outputs) array of Gumbel (categorical) or standard normal (Gaussian) noise."""
        if self._next == len(self._noise) or self._noise.shape[1:] != shape:
            self._chunk_start = self.rng.bit_generator.state
            self._fill(shape)
        self._next += 1
        return self._noise[self._next - 1]

    def _fill(self, shape: tuple[int, int]) -> None:
        size = (max(1, min(256, self.NOISE_VALUES // (shape[0] * shape[1]))), *shape)
        self._noise = (self.rng.gumbel(size=size) if self.net.categorical
                       else self.rng.standard_normal(size, dtype=np.float32))
        self._next = 0

    def state_dict(self) -> dict:
        """Where the noise stream stands (plain data): restoring it continues the same draws."""
        if self._chunk_start is None:
            return {"rng": self.rng.bit_generator.state, "chunk": None}
        return {"rng": self._chunk_start, "chunk": [list(self._noise.shape[1:]), self._next]}

    def load_state_dict(self, state: dict) -> None:
        """Continue the noise stream of :meth:`state_dict` (the current chunk is drawn again)."""
        self.rng.bit_generator.state = state["rng"]
        self._noise, self._next, self._chunk_start = np.empty((0, 0, 0)), 0, None
        if state["chunk"] is not None:
            (rows, outputs), used = (int(v) for v in state["chunk"][0]), int(state["chunk"][1])
            if not (rows >= 1 and outputs >= 1 and rows * outputs <= 1 << 24):
                raise ValueError(f"noise chunk shape ({rows}, {outputs}) out of range")
            self._chunk_start = self.rng.bit_generator.state
            self._fill((rows, outputs))
            if not 0 <= used <= len(self._noise):
                raise ValueError(f"noise position {used} outside the chunk of {len(self._noise)}")
            self._next = used

    def _compiled(self, rows: int) -> tuple | None:
        """(FrozenPolicy, action, logp, value arrays) for batches of ``rows`` inside the current
        ``frozen_weights`` context, made on its first call there; None where the numpy path acts:
        outside that context, Gaussian heads, a first layer stored one input per row (sparse)."""
        net = self.net
        if not net.frozen or not net.categorical or net.trunk.w0t is not None:
            return None
        if self._policy is None or self._policy[:2] != (net.frozen, rows):
            self._policy = (net.frozen, rows, *_frozen_policy(net, rows))
        return self._policy[2:]

    def value(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        net = self.net
        rows = len(next(iter(obs.values())))
        compiled = self._compiled(rows)
        if compiled is not None:
            out = np.empty(rows, np.float32)
            compiled[0].value(_dense_rows(net, obs), out)
            return out
        w = net.work(rows)
        net.heads(obs, w)
        return w.value.copy()

    def step(self, obs: dict[str, np.ndarray], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw action, its log-probability, value) per row; ``mask`` must be sanitised (bool).

        The value is a work array of the network, overwritten by its next call: copy it."""
        net = self.net
        rows = len(next(iter(obs.values())))
        compiled = self._compiled(rows)
        if compiled is not None:
            policy, action, logp, value = compiled
            noise = self._draw((rows, len(net.head_b)))
            policy.step(_dense_rows(net, obs), None if mask is None else np.ascontiguousarray(mask).view(np.uint8), noise,
                        action, logp, value)
            return action.copy(), logp.copy(), value
        w = net.work(rows)
        net.heads(obs, w)
        noise = self._draw(w.out.shape[::-1])
        if net.categorical:  # Gumbel-max: argmax(log p + g) is distributed as p
            net.log_softmax(mask, w)
            action = np.add(noise.T, w.logp_all, out=noise.T).argmax(axis=0)
            return action, w.logp_all[action, w.rows], w.value
        mean = w.out.T
        u = mean + np.exp(net.log_std) * noise
        return u, net.gaussian_log_prob(mean, u)[0], w.value


def _dense_rows(net: ManualGradients, obs: dict[str, np.ndarray]) -> np.ndarray:
    """The network input as one contiguous float32 (rows, inputs) array."""
    return np.ascontiguousarray(net.input(obs, net.work(len(next(iter(obs.values()))))), dtype=np.float32)


def _frozen_policy(net: ManualGradients, rows: int) -> tuple:
    """A :class:`FrozenPolicy` with copies of ``net``'s current weights, and its output arrays."""
    trunk = net.trunk
    ops = [(trunk.w0.T, trunk.b[0], -1, 0, 0, 0)]
    for k in range(1, len(trunk.widths)):
        for j, weight in enumerate(trunk.w[k]):
            n_out, n_in = weight.shape
            ops.append((weight.T, trunk.b[k][j * n_out:(j + 1) * n_out], k - 1, j * n_in, k, j * n_out))
    last = trunk.widths[-1] // trunk.blocks
    policy = FrozenPolicy(ops, list(trunk.widths), (net.head_w.T, net.head_b), (net.value_w.T, net.value_b),
                          (trunk.blocks - 1) * last, rows, net.n_in, 2 if trunk.relu else 1, MASKED_LOGIT)
    return policy, np.empty(rows, np.int64), np.empty(rows, np.float32), np.empty(rows, np.float32)
