"""Shipped reference learned agents: one small checkpoint per env ID, retrained by one script.

::

    from sysgym import reference
    reference.available()                           # env IDs that have an agent
    policy = reference.load("Appointments-P1-v0")   # act(obs, info), like every sysgym policy
    reference.metadata("Appointments-P1-v0")        # training command, budget, benchmark scores

Each agent is two files in this folder, named after the env ID without its namespace:
``<name>.pt`` (the weights; a sysgym PPO checkpoint for ``"loader": "ppo"``: plain data read with
``torch.load(weights_only=True)``) and ``<name>.json`` (metadata: ``env_id``, ``weights``,
``sha256`` of the weights, ``loader``, ``deterministic`` — the action mode its scores were
measured in — ``training`` — command, steps, seconds, settings — ``training_data`` — the input
files it trained on, by sha256, or ``{"inputs": "seeded"}`` — and ``scores`` on the held-out cases
of its benchmark suite, ``not_scored`` naming the cases that share files with its training data). ``benchmarks/train_reference.py`` writes both.

Loaders: ``"ppo"`` (a PPO checkpoint, fixed spaces), ``"ppo-graph"`` (a PPO checkpoint of the
DAG graph policy, :mod:`sysgym.agents.ppo.graph`, rebuilt for the env's task size, so ``load``
needs the env) or ``"sysgym.module:function"``, called as ``function(weights_path, metadata,
env=..., deterministic=..., seed=...)``; only functions inside the ``sysgym`` package are accepted,
so a metadata file cannot make ``load`` import arbitrary code.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent
MAX_METADATA_BYTES = 4 * 2**20     # a metadata file (its largest part: training files' sha256s)


class NoReferenceAgent(ValueError):
    """No reference agent is shipped for this env (yet)."""


def _name(env_id: str) -> str:
    return str(env_id).split("/", 1)[-1]


def available() -> list[str]:
    """The env IDs that have a shipped reference agent."""
    return sorted(metadata(p.stem)["env_id"] for p in FOLDER.glob("*.json"))


def metadata(env_id: str) -> dict[str, Any]:
    """The metadata of ``env_id``'s agent (``"ABR-v0"`` or ``"sysgym/ABR-v0"``)."""
    path = FOLDER / f"{_name(env_id)}.json"
    if not path.is_file():
        raise NoReferenceAgent(f"no reference agent for sysgym/{_name(env_id)} yet "
                               f"(sysgym.reference.available() lists the shipped ones)")
    from sysgym.agents.serialization import check_file_size, load_json_text
    from sysgym.envs.registry import registered_id

    check_file_size(path, "reference metadata file", MAX_METADATA_BYTES)
    meta = load_json_text(path.read_bytes(), str(path))
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: damaged reference metadata (expected a JSON object)")
    for key in ("env_id", "weights", "sha256"):
        if not isinstance(meta.get(key), str):
            raise ValueError(f"{path}: damaged reference metadata (field {key!r} must be a string)")
    registered_id(meta["env_id"], str(path))        # before anything makes it
    data = meta.get("training_data")
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("sha256", []), list)
                                 and all(isinstance(d, str) for d in data.get("sha256", []))):
        raise ValueError(f"{path}: damaged reference metadata (training_data must be an object whose "
                         f"'sha256' is a list of strings)")
    return meta


def weights_path(env_id: str) -> Path:
    """The weights file of ``env_id``'s agent, checked against the sha256 in its metadata."""
    meta = metadata(env_id)
    path = FOLDER / Path(meta["weights"]).name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference weights missing (metadata {_name(env_id)}.json names it)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta["sha256"]:
        raise ValueError(f"{path}: sha256 {digest[:12]}... differs from its metadata ({meta['sha256'][:12]}...); "
                         f"retrain with benchmarks/train_reference.py")
    return path


def load(env_id: str, env: Any = None, deterministic: bool | None = None, seed: int = 0) -> Any:
    """``env_id``'s reference agent as a policy with ``act(obs, info)``.

    ``env`` is the env (single or native vector) it will act on; only agents whose network
    depends on the env's size need it (default: ``gymnasium.make(env_id)``).
    ``deterministic=None`` acts as the agent was scored (its metadata's ``deterministic``); True
    takes the most likely action, False samples from a generator seeded with ``seed``.
    Raises :class:`NoReferenceAgent` (a ``ValueError``) naming the env when none is shipped.
    """
    meta = metadata(env_id)
    path = weights_path(env_id)
    if deterministic is None:
        deterministic = bool(meta.get("deterministic", True))
    loader = meta.get("loader", "ppo")
    if loader == "ppo":
        from sysgym.agents.ppo.checkpoint import load_policy

        return load_policy(path, deterministic=deterministic, seed=seed)
    if loader == "ppo-graph":
        from sysgym.agents.ppo.checkpoint import policy_for_spaces

        return policy_for_spaces(str(path), *spaces_of(env, meta["env_id"]), deterministic=deterministic, seed=seed)
    module, _, function = str(loader).partition(":")
    if not (module.startswith("sysgym.") and function.isidentifier()):
        raise ValueError(f"{_name(env_id)}.json: loader {loader!r} must be 'ppo', 'ppo-graph' or 'sysgym.module:function'")
    return getattr(importlib.import_module(module), function)(path, meta, env=env, deterministic=deterministic, seed=seed)


def spaces_of(env: Any, env_id: str) -> tuple[Any, Any]:
    """Single-env observation and action spaces of ``env`` (made from ``env_id`` if None)."""
    if env is None:
        import gymnasium as gym

        made = gym.make(env_id)
        try:
            return made.observation_space, made.action_space
        finally:
            made.close()
    if hasattr(env, "single_observation_space"):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


__all__ = ["FOLDER", "NoReferenceAgent", "available", "load", "metadata", "spaces_of", "weights_path"]
