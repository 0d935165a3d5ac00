"""Forked rollouts: per-component returns of any action from a state, the factual run untouched.

CrystalBox (Patel, Abdu Jyothi & Narodytska, "CrystalBox: Future-Based Explanations for
Input-Driven Deep RL Systems", AAAI 2024) learns Q_c^pi(s, a), the return of each reward
component c when the policy pi takes ``a`` in ``s`` and then follows itself. Its appendix A.4 asks
that the counterfactual returns not disturb the trajectory the factual ones come from. A sysgym
env forks, so here every queried action is rolled out from a snapshot of the state on the *same*
future input (the same trace position and the same kernel RNG stream), and the snapshot is put
back afterwards: the factual trajectory continues exactly as if no one had looked.

The forks run in the collector's own native vector env (``get_state`` / ``set_state`` on all B
sub-envs at once), so the policy's per-sub-env memory (robustMPC's throughput history, a seeded
sampler's RNG) lines up with the sub-envs without knowing how the policy stores it: each fork
acts with a deep copy of the policy taken right after it chose the factual action, with the env
(and everything the env holds, e.g. its configuration and trace bank) and torch modules shared
rather than copied.

Returns are in reward units: ``info["reward_components"] * env.reward_weights`` (they sum to the
reward), discounted by ``gamma`` per decision over ``t_max`` decisions, and stop at the end of
the episode (a sub-env whose episode ended within the horizon is reset and its later rewards are
ignored).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def fork_policy(policy: Any, env: Any) -> Any:
    """A copy of ``policy`` whose memory evolves on its own, sharing ``env`` and what it holds.

    Deep-copies the policy with these pinned in the memo (shared, not copied; acting must not
    write to them): the env, its attributes and the entries of its dict attributes (e.g. its
    state arrays), and the torch modules found among the policy's attributes (up to three levels
    down, so that a wrapped network is shared too). Spaces are copied: a policy may sample from
    its own space's RNG.
    """
    memo: dict[int, Any] = {}

    def pin(obj: Any) -> None:
        memo[id(obj)] = obj

    for target in {id(env): env, id(env.unwrapped): env.unwrapped}.values():
        pin(target)
        for value in vars(target).values():
            pin(value)
            if isinstance(value, dict):
                for entry in value.values():
                    pin(entry)
    torch = sys.modules.get("torch")
    if torch is not None:
        _pin_shared(policy, (torch.nn.Module,), memo, depth=3)
    return copy.deepcopy(policy, memo)


def _pin_shared(obj: Any, shared: tuple[type, ...], memo: dict[int, Any], depth: int) -> None:
    """Pin instances of ``shared`` reachable from ``obj`` through attributes and containers."""
    if depth == 0 or isinstance(obj, (np.ndarray, str, bytes, int, float)):
        return
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return
    for child in children:
        if isinstance(child, shared):
            memo[id(child)] = child
        else:
            _pin_shared(child, shared, memo, depth - 1)


class Forker:
    """Rolls out forks of a native vector env (``autoreset_mode="Disabled"``) from a snapshot.

    Args:
        env: the vector env; its ``reward_weights`` turn components into reward units.
        t_max: decisions per rollout (the first one is the queried action).
        gamma: discount per decision.
    """

    def __init__(self, env: Any, t_max: int, gamma: float):
        self.env = env
        self.base = env.unwrapped
        self.weights = np.asarray(self.base.reward_weights, dtype=np.float64)
        self.t_max = t_max
        self.gamma = gamma
        self.steps = 0   # env steps taken by forks (for benchmarks)

    def returns(self, snapshot: dict[str, Any], policy: Any, first: np.ndarray,
                replace: Callable[[Any], None] | None = None) -> np.ndarray:
        """(B, C) discounted weighted component returns of taking ``first`` (one action per
        sub-env) from ``snapshot`` and then following a fork of ``policy``.

        ``replace(env)``, if given, is called after restoring the snapshot and before the first
        step (the sampling baselines replace the future input there). The env is left in the
        forked state: call :meth:`restore` when done.
        """
        env = self.env
        self.base.set_state(snapshot)
        if replace is not None:
            replace(self.base)
        actor = fork_policy(policy, env)
        obs, _, terminated, truncated, info = env.step(first)
        self.steps += 1
        total = np.asarray(info["reward_components"], dtype=np.float64) * self.weights
        ended = terminated | truncated
        alive = ~ended
        discount = 1.0
        for _ in range(1, self.t_max):
            if not alive.any():
                break
            if ended.any():  # keep every sub-env steppable; what they do next is ignored
                obs, info = env.reset(options={"reset_mask": ended})
            obs, _, terminated, truncated, info = env.step(actor.act(obs, info))
            self.steps += 1
            discount *= self.gamma
            comps = np.asarray(info["reward_components"], dtype=np.float64) * self.weights
            total += discount * np.where(alive[:, None], comps, 0.0)
            ended = terminated | truncated
            alive &= ~ended
        return total

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put the env back into ``snapshot`` (the factual state)."""
        self.base.set_state(snapshot)
