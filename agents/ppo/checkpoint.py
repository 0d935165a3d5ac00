"""Checkpoint files: network weights, config, env ID and kwargs, spaces and normalisation statistics.

A checkpoint is one ``torch.save`` file. Like any pickle-based format it must come from a source
you trust: the spaces are stored pickled so a policy can be rebuilt without making the env.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

import sysgym

from .config import PPOConfig
from .networks import ActorCritic
from .observations import ObservationAdapter
from .policy import PPOPolicy

FORMAT = "sysgym-ppo/1"


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
        "config": config.to_dict(),
        "spaces": pickle.dumps((observation_space, action_space)),
        "model": model.state_dict(),
        "obs_normalization": adapter.state_dict(),
        "global_step": int(global_step),
        "extra": dict(extra or {}),
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
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a sysgym PPO checkpoint (format {FORMAT!r} expected)")
    payload["path"] = str(path)
    return payload


def policy_from_checkpoint(payload: dict[str, Any], deterministic: bool = True,
                           seed: int | None = None) -> PPOPolicy:
    config = PPOConfig.from_dict(payload["config"])
    observation_space, action_space = pickle.loads(payload["spaces"])
    model = ActorCritic(observation_space, action_space, config)
    model.load_state_dict(payload["model"])
    adapter = ObservationAdapter(observation_space, config.normalize_obs, config.clip_obs)
    adapter.load_state_dict(payload["obs_normalization"])
    return PPOPolicy(model, adapter, deterministic=deterministic, seed=seed)


def load_policy(path: str | Path, deterministic: bool = True, seed: int | None = None) -> PPOPolicy:
    """The :class:`PPOPolicy` stored at ``path`` (a checkpoint file or a training output folder)."""
    return policy_from_checkpoint(load_checkpoint(path), deterministic, seed)
