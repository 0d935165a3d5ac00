"""Action values of any teacher by simulation: fork the state, force an action, follow the teacher.

VIPER (Bastani et al., NeurIPS 2018) reads Q(s, a) off a Q-network; for teachers without one
(heuristics, PPO, MPC) we estimate the teacher's own action values by rollouts:

    Q(s, a) = mean over rollouts of  sum_{t=0}^{H-1} gamma^t r_t  [+ gamma^H V(s_H)]

where r_0 is the reward of taking ``a`` in ``s`` and r_1 .. r_{H-1} those of following the teacher
for ``horizon`` - 1 more decisions (an episode that ends earlier contributes nothing after its
end; ``gamma`` discounts per agent decision, so a semi-MDP step counts once). With a
``bootstrap`` value function (e.g. a PPO critic) the tail is closed by gamma^H V(s_H).

Rollout 0 of every (state, action) continues the state's own random stream (the future the env
would have produced), so all actions of a state face the same future (common random numbers).
Rollouts 1, 2, ... draw a fresh kernel RNG state per fork: that resamples what the env draws from
its RNG (generator workloads, noise), not inputs replayed from traces.

A teacher with memory (RB, robustMPC: their throughput history) is ``reset()`` at every fork, so
in a rollout it starts from what it measures after the forced action: exact for memoryless
teachers (PPO MLPs, DeepRM and CC heuristics, the oracle), an approximation for the others.

All forks run batched: the recorded states' rows are stacked into a snapshot of a native vector env
of ``batch`` sub-envs (:mod:`~sysgym.agents.distill.snapshots`), one fork per sub-env, and each
chunk of forks is stepped together with the teacher acting on the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .envs import EnvMaker
from .snapshots import StateBank
from .teachers import resolve_teacher


def simulate_q(maker: EnvMaker, bank: StateBank, mask: np.ndarray, teacher: Any, *, horizon: int = 10,
               gamma: float = 0.99, rollouts: int = 1, batch: int = 4096, seed: int = 0,
               bootstrap: Callable[[Any], np.ndarray] | None = None) -> np.ndarray:
    """(n, A) simulated action values of the ``n`` states in ``bank``; NaN where ``mask`` is False.

    ``teacher``: anything :func:`~sysgym.agents.distill.teachers.resolve_teacher` accepts.
    """
    teacher = resolve_teacher(teacher, maker.env_id)
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or len(mask) != len(bank):
        raise ValueError(f"mask must be (states, actions) with {len(bank)} states, got {mask.shape}")
    for name, value, lo in (("horizon", horizon, 1), ("rollouts", rollouts, 1), ("batch", batch, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    states, actions = np.nonzero(mask)
    job_state = np.repeat(states, rollouts)
    job_action = np.repeat(actions, rollouts)
    job_rollout = np.tile(np.arange(rollouts), len(states))
    total = np.zeros(mask.shape)
    if len(job_state):
        fresh_rng = np.random.default_rng(seed).integers(1, 2**63, size=(len(job_state), 4), dtype=np.uint64)
        m = min(batch, len(job_state))
        vec = maker.vector(m, autoreset_mode="NextStep", copy=False)
        try:
            policy = teacher.build(vec)
            for start in range(0, len(job_state), m):
                jobs = np.arange(start, min(start + m, len(job_state)))
                padded = np.concatenate([jobs, np.full(m - len(jobs), jobs[0])])
                snap = bank.take(job_state[padded])
                if rollouts > 1 and "rng" in snap["arrays"]:
                    redraw = job_rollout[padded] > 0
                    snap["arrays"]["rng"][redraw] = fresh_rng[padded[redraw]]
                try:
                    vec.set_state(snap)
                except NotImplementedError as error:
                    raise ValueError(f"{maker.env_id} cannot fork states yet ({error}): simulated action "
                                     "values need set_state") from None
                if hasattr(policy, "reset"):
                    policy.reset()
                returns = _rollout(vec, policy, job_action[padded], horizon, gamma, bootstrap)
                np.add.at(total, (job_state[jobs], job_action[jobs]), returns[:len(jobs)])
        finally:
            vec.close()
    return np.where(mask, total / rollouts, np.nan)


def _rollout(vec: Any, policy: Any, first: np.ndarray, horizon: int, gamma: float,
             bootstrap: Callable[[Any], np.ndarray] | None) -> np.ndarray:
    obs, rewards, terminated, truncated, infos = vec.step(first)
    returns = np.asarray(rewards, dtype=np.float64).copy()
    alive = ~(terminated | truncated)
    discount = 1.0
    for _ in range(1, horizon):
        if not alive.any():
            break
        discount *= gamma
        obs, rewards, terminated, truncated, infos = vec.step(policy.act(obs, infos))
        returns += discount * np.where(alive, rewards, 0.0)
        alive &= ~(terminated | truncated)
    else:
        if bootstrap is not None and alive.any():
            returns += discount * gamma * np.where(alive, np.asarray(bootstrap(obs), dtype=np.float64), 0.0)
    return returns
