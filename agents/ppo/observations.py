"""From environment observations to tensors: Box or Dict spaces, single or batched, optionally normalised.

Every observation becomes a ``dict[str, torch.Tensor]`` of float32 batches (a plain Box space
uses the key ``"obs"``), so networks, the rollout buffer and checkpoints handle Box and Dict
spaces alike. Discrete / MultiDiscrete / MultiBinary entries of a Dict space are carried as
floats and one-hot encoded by the network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

SINGLE_KEY = "obs"


class RunningMeanStd:
    """Streaming mean and variance (parallel algorithm of Chan, Golub & LeVeque 1979)."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        n = batch.shape[0]
        if n == 0:
            return
        b_mean, b_var = batch.mean(axis=0), batch.var(axis=0)
        delta = b_mean - self.mean
        total = self.count + n
        self.mean = np.asarray(self.mean + delta * n / total)
        m2 = self.var * self.count + b_var * n + delta * delta * self.count * n / total
        self.var = np.asarray(m2 / total)
        self.count = total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.tensor(np.asarray(self.mean)), "var": torch.tensor(np.asarray(self.var)),
                "count": torch.tensor(self.count, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.mean = state["mean"].numpy().copy()
        self.var = state["var"].numpy().copy()
        self.count = float(state["count"])


def observation_entries(space: spaces.Space) -> dict[str, spaces.Space]:
    """The (key -> sub-space) entries an observation space is split into."""
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(sub, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
                raise ValueError(f"Dict observation entry {key!r} has unsupported space {sub}")
        return dict(space.spaces)
    if isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        return {SINGLE_KEY: space}
    raise ValueError(f"PPO supports Box, Discrete, MultiDiscrete, MultiBinary and Dict observations, got {space}")


def _normalisable(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating)


class ObservationAdapter:
    """Converts env observations into float32 tensor dicts, normalising Box entries if asked.

    Args:
        space: the single-env observation space.
        normalize: keep running mean/std of floating Box entries and standardise them
            (clipped to ``[-clip, clip]``); image (integer) and discrete entries are left as they are.
    """

    def __init__(self, space: spaces.Space, normalize: bool = False, clip: float = 10.0):
        self.space = space
        self.entries = observation_entries(space)
        self.dict_space = isinstance(space, spaces.Dict)
        self.normalize = normalize
        self.clip = clip
        self.rms = {k: RunningMeanStd(tuple(s.shape)) for k, s in self.entries.items()
                    if normalize and _normalisable(s)}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-key shape of one observation as stored (Discrete entries are scalars)."""
        return {k: tuple(s.shape) if s.shape is not None else () for k, s in self.entries.items()}

    def is_batched(self, obs: Any) -> bool:
        key, sub = next(iter(self.entries.items()))
        value = obs[key] if self.dict_space else obs
        return np.ndim(value) == len(sub.shape or ()) + 1

    def to_arrays(self, obs: Any, update: bool = False) -> dict[str, np.ndarray]:
        """A batch of observations (leading dimension B) as float32 arrays, normalised."""
        out: dict[str, np.ndarray] = {}
        for key in self.entries:
            value = np.asarray(obs[key] if self.dict_space else obs)
            rms = self.rms.get(key)
            if rms is not None:
                if update:
                    rms.update(value)
                value = np.clip((value - rms.mean) / np.sqrt(rms.var + 1e-8), -self.clip, self.clip)
            out[key] = np.asarray(value, dtype=np.float32)
        return out

    def to_tensors(self, obs: Any, update: bool = False) -> dict[str, torch.Tensor]:
        """A batch of observations (leading dimension B) as float32 tensors, normalised."""
        return {k: torch.from_numpy(v) for k, v in self.to_arrays(obs, update).items()}

    def single_to_tensors(self, obs: Any) -> dict[str, torch.Tensor]:
        """One unbatched observation as a batch of one."""
        if self.dict_space:
            return self.to_tensors({k: np.asarray(v)[None] for k, v in obs.items()})
        return self.to_tensors(np.asarray(obs)[None])

    def index(self, obs: Any, rows: np.ndarray) -> Any:
        """The observations of sub-envs ``rows`` from a batched observation."""
        if self.dict_space:
            return {k: np.asarray(v)[rows] for k, v in obs.items()}
        return np.asarray(obs)[rows]

    def stack(self, items: list[Any]) -> Any:
        """Stack single observations (e.g. ``info["final_obs"]`` entries) into a batch."""
        if self.dict_space:
            return {k: np.stack([np.asarray(it[k]) for it in items]) for k in self.entries}
        return np.stack([np.asarray(it) for it in items])

    def state_dict(self) -> dict[str, Any]:
        return {k: r.state_dict() for k, r in self.rms.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.rms):
            raise ValueError(f"normalisation statistics for {sorted(state)} do not match "
                             f"this adapter's {sorted(self.rms)}")
        for key, value in state.items():
            self.rms[key].load_state_dict(value)
