"""The data CrystalBox learns from: sampled states and, per state, the returns of queried actions.

Two tables. Per *state* (S rows): the observation flattened (``obs``), the policy's embedding
(``features``, when it has one), the action mask, the controller's last measured throughputs
(``throughput``, NaN where none; ABR and CC only), the step within the episode, pi's action.
Per *query* (R rows): the state it belongs to, the action, whether it is pi's action
(``factual``), and the per-component discounted returns in reward units (``returns``, (R, C)).
Estimates by other methods (the sampling baselines) at the same queries sit in ``estimates``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass
class Samples:
    components: tuple[str, ...]
    weights: np.ndarray
    t_max: int
    gamma: float
    obs: np.ndarray
    features: np.ndarray | None
    mask: np.ndarray | None
    throughput: np.ndarray | None
    episode_step: np.ndarray
    policy_action: np.ndarray
    state: np.ndarray
    action: np.ndarray
    factual: np.ndarray
    returns: np.ndarray
    estimates: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.state)

    @property
    def num_states(self) -> int:
        return len(self.obs)

    def inputs(self, mode: str) -> np.ndarray:
        """Per-state predictor inputs: ``obs`` or ``features``."""
        if mode == "embed":
            if self.features is None:
                raise ValueError("these samples hold no policy features (the policy had no embed())")
            return self.features
        return self.obs

    def states(self, keep: np.ndarray) -> Samples:
        """The samples of the states flagged in ``keep`` (S,) (their queries renumbered)."""
        keep = np.asarray(keep, dtype=bool)
        new_id = np.cumsum(keep) - 1
        rows = keep[self.state]
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        return replace(self, obs=self.obs[keep], features=pick(self.features), mask=pick(self.mask),
                       throughput=pick(self.throughput), episode_step=self.episode_step[keep],
                       policy_action=self.policy_action[keep], state=new_id[self.state[rows]],
                       action=self.action[rows], factual=self.factual[rows], returns=self.returns[rows],
                       estimates={k: v[rows] for k, v in self.estimates.items()}, info=dict(self.info))

    def split(self, fraction: float, seed: int = 0) -> tuple[Samples, Samples]:
        """(rest, held out): ``fraction`` of the states held out at random, with all their queries."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
        n = self.num_states
        if n < 2:
            raise ValueError(f"cannot split {n} state(s) into two sets")
        held = np.zeros(n, dtype=bool)
        count = min(n - 1, max(1, round(fraction * n)))
        held[np.random.default_rng(seed).permutation(n)[:count]] = True
        return self.states(~held), self.states(held)
