"""The predictor's input: the observation flattened, or the policy's own features.

CrystalBox feeds its predictor the controller's embedding of the state (the features its decision
is computed from) when the controller has one: ``policy.embed(obs)`` of an
:class:`~sysgym.agents.policy.EmbeddingPolicy` such as PPO. Policies without one (heuristics) are
explained from the observation flattened in the order of ``env.unwrapped.feature_names``: Box
entries row-major, MultiBinary as 0/1, Discrete one-hot, Dict entries in the space's key order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

MODES = ("auto", "observation", "embed")


def flat_size(space: spaces.Space) -> int:
    if isinstance(space, spaces.Dict):
        return sum(flat_size(s) for s in space.spaces.values())
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)):
        return int(np.prod(space.shape))
    raise ValueError(f"cannot flatten observations of {space}")


def flatten(space: spaces.Space, obs: Any, batched: bool) -> np.ndarray:
    """Observations as float32 rows: (B, D) for a batch, (1, D) for one observation."""
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, dict) or set(obs) != set(space.spaces):
            raise ValueError(f"expected a dict observation with keys {list(space.spaces)}")
        return np.concatenate([flatten(sub, obs[key], batched) for key, sub in space.spaces.items()], axis=1)
    a = np.asarray(obs)
    if isinstance(space, spaces.Discrete):
        a = np.atleast_1d(a).astype(np.int64) - int(space.start)
        if a.ndim != 1 or a.min() < 0 or a.max() >= space.n:
            raise ValueError(f"observation {obs!r} is not in {space}")
        return np.eye(int(space.n), dtype=np.float32)[a]
    shape = tuple(space.shape)
    if not batched:
        a = a[None]
    if a.shape[1:] != shape:
        raise ValueError(f"observation of shape {a.shape[1:]} does not match {space}")
    out = a.reshape(len(a), -1).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError("observation holds NaN or infinite values")
    return out


def resolve_mode(mode: str, policy: Any) -> str:
    """``"auto"`` -> ``"embed"`` when ``policy`` has ``embed``, else ``"observation"``."""
    if mode not in MODES:
        raise ValueError(f"features must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        return "embed" if callable(getattr(policy, "embed", None)) else "observation"
    if mode == "embed" and not callable(getattr(policy, "embed", None)):
        raise ValueError(f"features='embed' needs a policy with embed(obs) (e.g. PPO); "
                         f"{type(policy).__name__} has none: use features='observation'")
    return mode


def embed(policy: Any, obs: Any, batched: bool) -> np.ndarray:
    """``policy.embed(obs)`` as float32 rows."""
    out = np.asarray(policy.embed(obs), dtype=np.float32)
    out = out.reshape(len(out), -1) if batched else out.reshape(1, -1)
    if not np.all(np.isfinite(out)):
        raise ValueError("policy.embed returned NaN or infinite features")
    return out
