"""The rollout-time policy step of an MLP actor-critic in numpy (forward pass, sampling, value).

During a rollout the policy is called once per time step on a small batch (one row per sub-env);
at that size each torch call costs more in dispatch than in arithmetic, and numpy's per-call cost
is a few times lower. :class:`NumpyActor` runs the forward pass of
:class:`~sysgym.agents.ppo.fastgrad.ManualGradients` (the *live* weights, as numpy views, so every
optimiser step is seen; actor and critic side by side in one trunk; work arrays allocated once)
and draws from the same distributions as the torch heads: masked categorical by the Gumbel-max
trick, Gaussian with clip or tanh squash. Log-probabilities agree with the torch heads'
``evaluate`` to float32 rounding (``tests/agents/test_ppo.py`` checks it).
"""

from __future__ import annotations

import numpy as np

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

    def value(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        net = self.net
        w = net.work(len(next(iter(obs.values()))))
        net.heads(obs, w)
        return w.value.copy()

    def step(self, obs: dict[str, np.ndarray], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw action, its log-probability, value) per row; ``mask`` must be sanitised (bool).

        The value is a work array of the network, overwritten by its next call: copy it."""
        net = self.net
        w = net.work(len(next(iter(obs.values()))))
        net.heads(obs, w)
        noise = self._draw(w.out.shape[::-1])
        if net.categorical:  # Gumbel-max: argmax(log p + g) is distributed as p
            net.log_softmax(mask, w)
            action = np.add(noise.T, w.logp_all, out=noise.T).argmax(axis=0)
            return action, w.logp_all[action, w.rows], w.value
        mean = w.out.T
        u = mean + np.exp(net.log_std) * noise
        return u, net.gaussian_log_prob(mean, u)[0], w.value
