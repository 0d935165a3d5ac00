"""Congestion-control baselines: fixed rate, AIMD, a delay-based rule (Vegas-like) and an oracle.

Each baseline picks a target sending rate per flow from the last monitor interval's statistics
(``info["sending_rate"]``, ``["latency"]``, ``["min_rtt"]``, ``["loss_rate"]``) and turns it into
the env's action: the continuous delta (inverting Aurora's rate-change rule with the env's
``delta_scale``, clipped to the action space's bound: [-1, 1] by default, so one step moves the
rate by at most that factor; unbounded in practice with ``aurora_compatible=True``, whose action
space is [-1e12, 1e12], so AIMD can halve its rate in one step as the agent could) or the
discrete rate change closest to it in log scale. The same object drives ``CC-v0`` /
``CC-Discrete-v0`` (one flow), their native vector envs (one action per sub-env) and the
PettingZoo env (a dict of actions, one per live agent).

References: Chiu & Jain 1989 (AIMD converges to fairness); Brakmo & Peterson, "TCP Vegas",
IEEE JSAC 1995 (keep between alpha and beta packets queued).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .base import Heuristic

STATS = ("sending_rate", "latency", "min_rtt", "loss_rate")


class RateHeuristic(Heuristic):
    """Base class: subclasses implement :meth:`target_rate` on arrays of per-flow statistics.

    With discrete actions the rate change nearest to the target is taken; a ``directional`` rule
    (one that only says faster / slower, like AIMD's small additive step) takes at least the
    smallest change in the direction it asks for.
    """

    directional = False

    def __init__(self, env: Any, seed: int | None = None):
        super().__init__(env, seed)
        self.base = env.unwrapped
        self.config = self.base.config
        changes = np.asarray(self.config.rate_changes)
        self._log_factors = np.log1p(changes)
        self._discrete = self.config.action == "discrete"

    def target_rate(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        """Target sending rate (packets/s) of each flow, same shape as ``stats["sending_rate"]``."""
        raise NotImplementedError

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        if isinstance(obs, dict):  # PettingZoo: one entry per live agent
            agents = list(obs)
            stats = {k: np.array([info[a][k] for a in agents], dtype=np.float64) for k in STATS}
            actions = self.actions(stats["sending_rate"], self.target_rate(stats))
            return {a: actions[i] for i, a in enumerate(agents)}
        stats = {k: np.asarray(info[k], dtype=np.float64) for k in STATS}
        actions = self.actions(stats["sending_rate"], self.target_rate(stats))
        return actions if stats["sending_rate"].ndim else actions[0]

    def actions(self, rate: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Actions moving ``rate`` towards ``target``: (n,) ints or (n, 1) float32 deltas."""
        rate, target = np.atleast_1d(rate), np.atleast_1d(target)
        ratio = np.maximum(target, 1e-9) / rate
        if self._discrete:
            distance = np.abs(np.log(ratio)[:, None] - self._log_factors[None, :])
            if self.directional:  # at least the smallest step the way the rule asks to go
                wrong_way = np.sign(self._log_factors)[None, :] != np.sign(np.log(ratio))[:, None]
                has_step = ~wrong_way.all(axis=1, keepdims=True)
                distance = np.where(wrong_way & has_step, np.inf, distance)
            return distance.argmin(axis=1)
        scale = self.config.delta_scale
        delta = np.where(ratio >= 1.0, (ratio - 1.0) / scale, (1.0 - 1.0 / ratio) / scale)
        bound = self.config.action_bound
        return np.clip(delta, -bound, bound).astype(np.float32)[:, None]


class FixedRate(RateHeuristic):
    """Keeps the starting rate (drawn at reset from ``start_rate`` x bottleneck bandwidth)."""

    name = "fixed"

    def target_rate(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        return stats["sending_rate"]


class AIMD(RateHeuristic):
    """Additive increase by ``increase`` packets/s per interval; multiplicative decrease by
    ``decrease`` when the loss rate exceeds ``loss_threshold`` or latency / min RTT exceeds
    ``latency_threshold`` (as far as one step's action range allows)."""

    name = "aimd"
    directional = True

    def __init__(self, env: Any, seed: int | None = None, increase: float = 2.0, decrease: float = 0.5,
                 loss_threshold: float = 0.1, latency_threshold: float = 1.5):
        super().__init__(env, seed)
        self.increase, self.decrease = increase, decrease
        self.loss_threshold, self.latency_threshold = loss_threshold, latency_threshold

    def target_rate(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        rate, min_rtt = stats["sending_rate"], stats["min_rtt"]
        inflation = np.where(min_rtt > 0, stats["latency"] / np.where(min_rtt > 0, min_rtt, 1.0), 1.0)
        congested = (stats["loss_rate"] > self.loss_threshold) | (inflation > self.latency_threshold)
        return np.where(congested, rate * self.decrease, rate + self.increase)


class DelayBased(RateHeuristic):
    """Vegas-like: estimate the packets this flow keeps queued, rate x (latency - min RTT); speed
    up below ``alpha``, slow down above ``beta``, hold in between. Ignores loss, so random loss
    does not slow it down."""

    name = "delay"
    directional = True

    def __init__(self, env: Any, seed: int | None = None, alpha: float = 2.0, beta: float = 4.0):
        super().__init__(env, seed)
        self.alpha, self.beta = alpha, beta

    def target_rate(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        rate, min_rtt = stats["sending_rate"], stats["min_rtt"]
        queued = np.where(min_rtt > 0, rate * (stats["latency"] - min_rtt), 0.0)
        step = 1.0 + self.config.delta_scale
        return np.where(queued < self.alpha, rate * step, np.where(queued > self.beta, rate / step, rate))


class Oracle(RateHeuristic):
    """Sends at the current bottleneck bandwidth, shared equally among the flows: an upper
    reference that reads the true link state (``bottleneck_bandwidth()``, ``bottleneck_queue()``),
    which no real sender knows. With ``drain`` (default) it first sends that much less as drains
    the standing queue within one minimum RTT, since sending at exactly the bandwidth keeps any
    queue built earlier forever. It still moves only as fast as the action range allows."""

    name = "oracle"

    def __init__(self, env: Any, seed: int | None = None, drain: bool = True):
        super().__init__(env, seed)
        self.drain = drain

    def target_rate(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        total = np.asarray(self.base.bottleneck_bandwidth(), dtype=np.float64)
        if self.drain:
            queued = np.asarray(self.base.bottleneck_queue(), dtype=np.float64)
            rtt = np.min(stats["min_rtt"]) if total.ndim == 0 else stats["min_rtt"]
            total = np.where(rtt > 0, np.maximum(total - queued / np.where(rtt > 0, rtt, 1.0), 0.0), total)
        share = total / self.config.n_flows
        return np.broadcast_to(share, stats["sending_rate"].shape) if share.ndim == 0 else share


HEURISTICS: dict[str, type[Heuristic]] = {
    "fixed": FixedRate,
    "aimd": AIMD,
    "delay": DelayBased,
    "oracle": Oracle,
}


def make(name: str, env: gym.Env | gym.vector.VectorEnv | Any, **params: Any) -> RateHeuristic:
    """Build baseline ``name`` for ``env`` (a CC env, its vector env or the PettingZoo env)."""
    if name not in HEURISTICS:
        raise ValueError(f"unknown CC heuristic {name!r}; choose from {sorted(HEURISTICS)}")
    return HEURISTICS[name](env, **params)
