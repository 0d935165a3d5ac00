"""The trained PPO agent as a :class:`sysgym.agents.policy.Policy`: ``act(obs, info)`` and ``embed(obs)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .distributions import sanitize_mask
from .networks import ActorCritic
from .observations import ObservationAdapter


class PPOPolicy:
    """Acts with a trained :class:`ActorCritic` on single or batched observations.

    Args:
        model: the actor-critic network.
        adapter: observation conversion and the frozen normalisation statistics of training.
        deterministic: take the most likely action (masked argmax / Gaussian mean) instead of sampling.
        seed: seed of the sampling generator (stochastic mode).

    ``act`` reads ``info["action_mask"]`` when the action space is discrete; a batched
    observation (leading sub-env dimension, as a native vector env returns) yields one action per
    sub-env.
    """

    def __init__(self, model: ActorCritic, adapter: ObservationAdapter, deterministic: bool = True,
                 seed: int | None = None):
        self.model = model.eval()
        self.adapter = adapter
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    @property
    def head(self):
        return self.model.head

    def _prepare(self, obs: Any, info: dict[str, Any] | None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, bool]:
        batched = self.adapter.is_batched(obs)
        tensors = self.adapter.to_tensors(obs) if batched else self.adapter.single_to_tensors(obs)
        mask = None
        if self.head.masked and info is not None and info.get("action_mask") is not None:
            mask = torch.as_tensor(np.asarray(info["action_mask"]), dtype=torch.bool)
            if not batched:
                mask = mask.unsqueeze(0)
            mask = sanitize_mask(mask)
        return tensors, mask, batched

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        """The action (or one per sub-env) for ``obs``; respects ``info["action_mask"]``."""
        tensors, mask, batched = self._prepare(obs, info)
        with torch.no_grad():
            params = self.head(self.model.features(tensors))
            if self.deterministic:
                action = self.head.mode(params, mask)
            else:
                action, _ = self.head.sample(params, mask, self.generator)
        out = self.head.to_env(action)
        if batched:
            return out
        out = out[0]
        return int(out) if np.ndim(out) == 0 and np.issubdtype(np.asarray(out).dtype, np.integer) else out

    __call__ = act

    def embed(self, obs: Any) -> np.ndarray:
        """The actor trunk's features for ``obs``: (feature_size,) or (B, feature_size)."""
        tensors, _, batched = self._prepare(obs, None)
        with torch.no_grad():
            feats = self.model.features(tensors).numpy()
        return feats if batched else feats[0]

    def value(self, obs: Any) -> np.ndarray | float:
        """The critic's estimate (in the training reward's units, normalised if that was on)."""
        tensors, _, batched = self._prepare(obs, None)
        with torch.no_grad():
            v = self.model.value(tensors).numpy()
        return v if batched else float(v[0])

    def action_probabilities(self, obs: Any, info: dict[str, Any] | None = None) -> np.ndarray:
        """Masked action probabilities (Discrete action spaces only)."""
        if not hasattr(self.head, "probabilities"):
            raise AttributeError("action_probabilities needs a Discrete action space")
        tensors, mask, batched = self._prepare(obs, info)
        with torch.no_grad():
            probs = self.head.probabilities(self.head(self.model.features(tensors)), mask).numpy()
        return probs if batched else probs[0]

    def reset(self) -> None:
        """Stateless: nothing to clear between episodes."""
