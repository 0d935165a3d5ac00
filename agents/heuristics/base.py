"""The interface every policy in sysgym shares: ``act(obs, info) -> action``.

Heuristics, the PPO policy, distilled trees and CrystalBox all take the observation and info
dict an environment returned and give back an action. A heuristic may also read the env's
public read-only helpers (``env.unwrapped.window_jobs()`` etc.); it is built with the env.
Heuristics that handle batches take a native vector env and return one action per sub-env.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym


class Heuristic:
    """Base class: subclasses set ``name`` and implement :meth:`act`."""

    name: str = "heuristic"

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, seed: int | None = None):
        self.env = env
        self.seed = seed

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        """Called at the start of every episode (stateful heuristics clear their memory)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def native_env(env: gym.Env | gym.vector.VectorEnv, expected: type, who: str) -> tuple[Any, bool]:
    """The native batched env behind ``env`` and whether ``env`` is a single env.

    ``env`` is a ``gymnasium.make`` env (its unwrapped single env exposes ``.batched``) or a
    ``make_vec(..., vectorization_mode="vector_entry_point")`` env; ``expected`` is the family's
    vector class. Anything else (e.g. a SyncVectorEnv) raises a TypeError naming ``who``.
    """
    base = env.unwrapped
    batched = getattr(base, "batched", base)
    if not isinstance(batched, expected):
        raise TypeError(f"{who} needs a sysgym {expected.__name__} (gymnasium.make, or make_vec with "
                        f"vectorization_mode='vector_entry_point'), got {type(base).__name__}")
    return batched, batched is not base


def family_of(env_id: str) -> str:
    """'sysgym/DeepRM-Compact-v0' -> 'deeprm' (the heuristics module of that family)."""
    name = env_id.split("/", 1)[-1]
    return name.split("-", 1)[0].lower()


def heuristics_for(env_id: str) -> dict[str, type[Heuristic]]:
    """The baseline heuristics of ``env_id``'s family, by name (empty if it has none)."""
    try:
        module = importlib.import_module(f"sysgym.agents.heuristics.{family_of(env_id)}")
    except ModuleNotFoundError:
        return {}
    return dict(module.HEURISTICS)
