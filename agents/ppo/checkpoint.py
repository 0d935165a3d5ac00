"""Checkpoint files: network weights, config, env ID and kwargs, spaces and normalisation statistics.

A checkpoint is one ``torch.save`` file of plain data: tensors for the weights and statistics,
JSON text for the config, env kwargs and spaces (:mod:`sysgym.agents.serialization`). It is read
with ``weights_only=True``, so a checkpoint from an untrusted source cannot run code: a file
holding pickled objects is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

import sysgym

from ..serialization import dumps, load_torch_file, loads, space_from_data, space_to_data
from .config import PPOConfig
from .networks import ActorCritic
from .observations import ObservationAdapter
from .policy import PPOPolicy

FORMAT = "sysgym-ppo/2"


def save_checkpoint(path: str | Path, model: ActorCritic, adapter: ObservationAdapter, config: PPOConfig,
                    observation_space: spaces.Space, action_space: spaces.Space, env_id: str | None,
                    global_step: int = 0, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint; returns its path (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "sysgym_version": sysgym.__version__,
        "env_id": env_id,
        "config": dumps(config.to_dict()),
        "spaces": json.dumps([space_to_data(observation_space), space_to_data(action_space)]),
        "model": model.state_dict(),
        "obs_normalization": adapter.state_dict(),
        "global_step": int(global_step),
        "extra": dict(extra or {}),  # tensors and plain values (weights_only-loadable)
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (raises on a missing or foreign file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    payload = load_torch_file(path, "sysgym PPO checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a sysgym PPO checkpoint (format {FORMAT!r} expected, found {found!r})")
    try:
        payload["config"] = loads(payload["config"])
        obs_data, act_data = json.loads(payload["spaces"])
        payload["spaces"] = (space_from_data(obs_data), space_from_data(act_data))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: damaged sysgym PPO checkpoint: {error}") from None
    payload["path"] = str(path)
    return payload


def policy_from_checkpoint(payload: dict[str, Any], deterministic: bool = True,
                           seed: int | None = None) -> PPOPolicy:
    """The policy of a checkpoint loaded by :func:`load_checkpoint`."""
    config = PPOConfig.from_dict(payload["config"])
    observation_space, action_space = payload["spaces"]
    model = ActorCritic(observation_space, action_space, config)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(f"{payload.get('path', 'checkpoint')}: weights do not fit the network its "
                         f"config describes: {str(error).splitlines()[0]}") from None
    adapter = ObservationAdapter(observation_space, config.normalize_obs, config.clip_obs)
    adapter.load_state_dict(payload["obs_normalization"])
    return PPOPolicy(model, adapter, deterministic=deterministic, seed=seed)


def load_policy(path: str | Path, deterministic: bool = True, seed: int | None = None) -> PPOPolicy:
    """The :class:`PPOPolicy` stored at ``path`` (a checkpoint file or a training output folder)."""
    return policy_from_checkpoint(load_checkpoint(path), deterministic, seed)
