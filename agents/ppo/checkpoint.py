"""Checkpoint files: network weights, config, env ID and kwargs, spaces and normalisation statistics.

A checkpoint is one ``torch.save`` file of plain data: tensors for the weights and statistics,
JSON text for the config, env kwargs and spaces (:mod:`sysgym.agents.serialization`). It is read
with ``weights_only=True``, so a checkpoint from an untrusted source cannot run code: a file
holding pickled objects is refused. Reading one is bounded before anything is built from it
(file and inflated size, JSON nesting, space sizes, the network's parameter count computed from
its settings), and weights or statistics holding NaN or infinity are refused.

A checkpoint written during training also holds a ``"training"`` entry (optimiser moments, RNG
states, the env's simulation state, step counters: see :meth:`PPOTrainer.training_state`), from
which ``sysgym train --resume`` continues the run exactly where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

import sysgym

from ..runs import atomic_replace
from ..serialization import (
    check_finite_tensors,
    check_parameter_count,
    dumps,
    load_json_text,
    load_torch_file,
    loads,
    space_from_data,
    space_to_data,
)
from .config import PPOConfig
from .networks import ActorCritic
from .observations import ObservationAdapter
from .policy import PPOPolicy

FORMAT = "sysgym-ppo/2"


def save_checkpoint(path: str | Path, model: ActorCritic, adapter: ObservationAdapter, config: PPOConfig,
                    observation_space: spaces.Space, action_space: spaces.Space, env_id: str | None,
                    global_step: int = 0, extra: dict[str, Any] | None = None,
                    training: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, then rename); returns its path.

    Refuses (ValueError) weights holding NaN or infinity: a diverged network is never saved.
    """
    path = Path(path)
    weights = model.state_dict()
    check_finite_tensors(weights, path, "PPO network to save")
    payload = {
        "format": FORMAT,
        "sysgym_version": sysgym.__version__,
        "env_id": env_id,
        "config": dumps(config.to_dict()),
        "spaces": json.dumps([space_to_data(observation_space), space_to_data(action_space)]),
        "model": weights,
        "obs_normalization": adapter.state_dict(),
        "global_step": int(global_step),
        "extra": dict(extra or {}),  # tensors and plain values (weights_only-loadable)
    }
    if training is not None:
        payload["training"] = training
    return atomic_replace(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (raises on a missing or foreign file).

    ``payload["env_id"]`` is a string or None but not checked against the registry here (a
    checkpoint may come from a user's own env): commands that make it pass it through
    :func:`sysgym.envs.registry.registered_id` first.
    """
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
        PPOConfig.from_dict(payload["config"])
        obs_data, act_data = load_json_text(payload["spaces"], "spaces")
        payload["spaces"] = (space_from_data(obs_data), space_from_data(act_data))
        env_id = payload.get("env_id")
        if env_id is not None and not isinstance(env_id, str):
            raise ValueError(f"env_id must be a string, got {type(env_id).__name__}")
        step = payload.get("global_step", 0)
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"global_step must be an int >= 0, got {step!r}")
        for key in ("model", "obs_normalization"):
            if not isinstance(payload.get(key), dict):
                raise ValueError(f"{key!r} must be a dict of tensors")
        if not isinstance(payload.get("extra", {}), dict):
            raise ValueError("'extra' must be a dict")
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: damaged sysgym PPO checkpoint: {error}") from None
    for key in ("model", "obs_normalization", "extra"):
        check_finite_tensors(payload.get(key), path, "PPO checkpoint")
    check_network_size(*payload["spaces"], PPOConfig.from_dict(payload["config"]), str(path))
    payload["path"] = str(path)
    return payload


def network_parameter_count(observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig) -> int:
    """The number of weights of the :class:`ActorCritic` these settings describe, counted on torch's
    ``meta`` device: nothing is allocated and no random number is drawn.

    The tanh squash checks the action bounds' values, which meta tensors do not have; it adds no
    weights, so the count is taken with the clip squash instead.
    """
    with torch.device("meta"):
        model = ActorCritic(observation_space, action_space, config.replace(squash="clip"))
    return sum(p.numel() for p in model.parameters())


def check_network_size(observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig,
                       where: str) -> None:
    """A ValueError naming ``where`` if the network would exceed ``MAX_PARAMETERS`` (before it is built)."""
    try:
        count = network_parameter_count(observation_space, action_space, config)
    except (RuntimeError, TypeError, ValueError, OverflowError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{where}: these settings describe no valid network: {first}") from None
    check_parameter_count(count, where)


def array_to_data(array: np.ndarray) -> dict[str, Any]:
    """A numpy array as plain data a ``weights_only`` load accepts (dtype, shape, raw bytes)."""
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}


def array_from_data(data: Any, where: str) -> np.ndarray:
    """The array of :func:`array_to_data` (ValueError naming ``where`` on anything malformed)."""
    try:
        dtype = np.dtype(data["dtype"])
        shape = tuple(int(n) for n in data["shape"])
        raw = data["data"]
        if dtype.kind not in "biuf" or not isinstance(raw, bytes) or any(n < 0 for n in shape):
            raise ValueError("not a plain numeric array")
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(raw):
            raise ValueError(f"{len(raw)} bytes do not hold a {shape} {dtype} array")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{where}: malformed array: {error}") from None


def policy_from_checkpoint(payload: dict[str, Any], deterministic: bool = True,
                           seed: int | None = None) -> PPOPolicy:
    """The policy of a checkpoint loaded by :func:`load_checkpoint`."""
    where = payload.get("path", "checkpoint")
    config = PPOConfig.from_dict(payload["config"])
    observation_space, action_space = payload["spaces"]
    check_network_size(observation_space, action_space, config, where)
    model = ActorCritic(observation_space, action_space, config)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"{where}: weights do not fit the network its "
                         f"config describes: {str(error).splitlines()[0]}") from None
    adapter = ObservationAdapter(observation_space, config.normalize_obs, config.clip_obs)
    shapes = {k: r.mean.shape for k, r in adapter.rms.items()}
    try:
        adapter.load_state_dict(payload["obs_normalization"])
        for key, rms in adapter.rms.items():
            if rms.mean.shape != shapes[key] or rms.var.shape != shapes[key]:
                raise ValueError(f"{key!r} statistics have shape {rms.mean.shape}, expected {shapes[key]}")
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"{where}: damaged observation statistics: {error}") from None
    return PPOPolicy(model, adapter, deterministic=deterministic, seed=seed)


def load_policy(path: str | Path, deterministic: bool = True, seed: int | None = None) -> PPOPolicy:
    """The :class:`PPOPolicy` stored at ``path`` (a checkpoint file or a training output folder)."""
    return policy_from_checkpoint(load_checkpoint(path), deterministic, seed)


def policy_for_spaces(checkpoint: str | Any, observation_space: spaces.Space, action_space: spaces.Space,
                      deterministic: bool = True, seed: int | None = None):
    """A graph policy from ``checkpoint`` (a path or a loaded checkpoint) rebuilt for other spaces,
    e.g. trained with ``max_nodes=40``, acting on 60-node tasks (the weights do not depend on N)."""
    payload = load_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    config = PPOConfig.from_dict(payload["config"])
    if config.encoder != "graph":
        raise ValueError(f"{payload.get('path', 'checkpoint')}: not a graph policy (encoder={config.encoder!r})")
    model = ActorCritic(observation_space, action_space, config)
    model.load_state_dict(payload["model"])
    return PPOPolicy(model, ObservationAdapter(observation_space), deterministic=deterministic, seed=seed)
