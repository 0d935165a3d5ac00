"""Action masking for RLlib's PPO: sysgym's own RLModule on RLlib's default PPO torch module.

sysgym's RLlib envs give Dict observations ``{"observations": ..., "action_mask": ...}`` (see
:mod:`sysgym.integrations.rllib`). :class:`MaskedPPOTorchRLModule` builds RLlib's default PPO
networks (encoder, policy and value heads, from ``model_config``) over the ``"observations"``
part only and sets the logits of masked actions to the lowest float, so they are never sampled
and carry no probability in the loss. It imports ray: import it only where RLlib runs.

It replaces RLlib's example module (``ray.rllib.examples...action_masking_rlm``), which is not
part of RLlib's API, subclasses a deprecated class and warns on every import.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns

OBSERVATIONS, MASK = "observations", "action_mask"


class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO torch module over the ``"observations"`` entry of a Dict observation,
    with the logits of the actions that ``"action_mask"`` marks 0 set to the lowest float."""

    def __init__(self, *, observation_space: gym.Space | None = None, **kwargs: Any):
        if not (isinstance(observation_space, gym.spaces.Dict)
                and set(observation_space.spaces) == {OBSERVATIONS, MASK}):
            raise ValueError("MaskedPPOTorchRLModule needs a Dict observation space with the keys "
                             f"{OBSERVATIONS!r} and {MASK!r}, got {observation_space}")
        self._dict_space = observation_space
        # the networks are built (in setup) for the unmasked observation
        super().__init__(observation_space=observation_space[OBSERVATIONS], **kwargs)

    def setup(self) -> None:
        super().setup()
        # RLlib checks the module's space against the env's: report the Dict the env gives
        self.observation_space = self._dict_space

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = _split(batch)
        return _masked(super()._forward(inner, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = _split(batch)
        return _masked(super()._forward_train(inner, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        _, inner = _split(batch)
        return super().compute_values(inner, embeddings)


def _split(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """(the action mask, a shallow copy of ``batch`` whose OBS is the unmasked observation)."""
    obs = batch[Columns.OBS]
    if not isinstance(obs, dict) or OBSERVATIONS not in obs or MASK not in obs:
        raise ValueError(f"MaskedPPOTorchRLModule expects observations {{{OBSERVATIONS!r}, {MASK!r}}}; "
                         f"got {type(obs).__name__}")
    inner = dict(batch)
    inner[Columns.OBS] = obs[OBSERVATIONS]
    return obs[MASK], inner


def _masked(outputs: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
    logits = outputs[Columns.ACTION_DIST_INPUTS]
    outputs[Columns.ACTION_DIST_INPUTS] = logits.masked_fill(mask <= 0, torch.finfo(logits.dtype).min)
    return outputs
