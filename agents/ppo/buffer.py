"""Rollout storage (preallocated, time-major ``(n_steps, num_envs, ...)``) and GAE(lambda).

Two per-step flags make one GAE routine serve both Gymnasium autoreset modes:

* ``bootstrap[t] = 0`` when no value follows step t (a *terminated* episode; in SameStep mode also a
  truncated one, whose bootstrap ``gamma * V(final_obs)`` the trainer adds to the reward);
* ``cont[t] = 0`` when the next stored step belongs to another episode (any episode end).

In NextStep mode the step after an episode end is the env's reset step: its input observation is
the final observation (so ``values[t+1]`` *is* the truncation bootstrap) and it is stored with
``valid = 0`` so the loss ignores it.
"""

from __future__ import annotations

import numpy as np
import torch


def gae(rewards: np.ndarray, values: np.ndarray, bootstrap: np.ndarray, cont: np.ndarray,
        last_value: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al., ICLR 2016) over time-major arrays.

    ``delta_t = r_t + gamma * bootstrap_t * V_{t+1} - V_t`` and
    ``A_t = delta_t + gamma * lam * cont_t * A_{t+1}``, with ``V_T = last_value``.
    Returns (advantages, returns = advantages + values).
    """
    n = rewards.shape[0]
    next_values = np.concatenate([values[1:], last_value[None]], axis=0)
    adv = rewards + gamma * bootstrap * next_values - values   # delta, then the advantages in place
    decay = (gamma * lam) * cont
    for t in range(n - 2, -1, -1):
        adv[t] += decay[t] * adv[t + 1]
    return adv, adv + values


class RolloutBuffer:
    """One PPO iteration's transitions for ``num_envs`` sub-envs over ``n_steps`` steps."""

    def __init__(self, n_steps: int, num_envs: int, obs_shapes: dict[str, tuple[int, ...]],
                 action_shape: tuple[int, ...], action_dtype: torch.dtype, mask_size: int):
        t, b = n_steps, num_envs
        self.n_steps, self.num_envs = n_steps, num_envs
        self.obs = {k: torch.zeros((t, b, *shape), dtype=torch.float32) for k, shape in obs_shapes.items()}
        self.actions = torch.zeros((t, b, *action_shape), dtype=action_dtype)
        self.logprobs = torch.zeros((t, b), dtype=torch.float32)
        self.masks = torch.ones((t, b, mask_size), dtype=torch.bool) if mask_size else None
        # numpy views of the same memory, for rollouts that act in numpy
        self.obs_np = {k: v.numpy() for k, v in self.obs.items()}
        self.actions_np = self.actions.numpy()
        self.logprobs_np = self.logprobs.numpy()
        self.masks_np = None if self.masks is None else self.masks.numpy()
        self.values = np.zeros((t, b), dtype=np.float32)
        self.rewards = np.zeros((t, b), dtype=np.float32)
        self.bootstrap = np.ones((t, b), dtype=np.float32)
        self.cont = np.ones((t, b), dtype=np.float32)
        self.valid = np.ones((t, b), dtype=bool)
        self.advantages = np.zeros((t, b), dtype=np.float32)
        self.returns = np.zeros((t, b), dtype=np.float32)

    def compute_returns(self, last_value: np.ndarray, gamma: float, lam: float) -> None:
        self.advantages, self.returns = gae(self.rewards, self.values, self.bootstrap, self.cont,
                                            last_value.astype(np.float32), gamma, lam)

    def flat(self) -> dict[str, object]:
        """Views with the time and env dimensions merged, plus the indices of valid samples."""
        n = self.n_steps * self.num_envs
        flat = {
            "obs": {k: v.reshape(n, *v.shape[2:]) for k, v in self.obs.items()},
            "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "logprobs": self.logprobs.reshape(n),
            "masks": None if self.masks is None else self.masks.reshape(n, -1),
            "values": torch.from_numpy(self.values.reshape(n)),
            "advantages": torch.from_numpy(self.advantages.reshape(n)),
            "returns": torch.from_numpy(self.returns.reshape(n)),
            "valid": torch.from_numpy(np.flatnonzero(self.valid.reshape(n))),
        }
        return flat
