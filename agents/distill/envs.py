"""How the distiller makes the environments it needs: one ID and its kwargs, single or native vector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass
class EnvMaker:
    """``gymnasium.make`` / ``make_vec(..., vectorization_mode="vector_entry_point")`` of one ID."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.spec = gym.spec(self.env_id)
        except gym.error.Error as error:
            raise ValueError(f"unknown environment {self.env_id!r}: {error}") from None

    def single(self) -> gym.Env:
        return gym.make(self.env_id, **self.kwargs)

    def vector(self, num_envs: int, autoreset_mode: str = "NextStep", copy: bool = True) -> gym.vector.VectorEnv:
        """The native vector env with ``num_envs`` sub-envs (ValueError if the ID has none)."""
        if self.spec.vector_entry_point is None:
            raise ValueError(f"{self.env_id} has no native vector env (vector_entry_point); the distiller "
                             "needs one")
        return gym.make_vec(self.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode=autoreset_mode, copy=copy, **self.kwargs)
