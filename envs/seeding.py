"""Seeding: turn the seeds given to ``reset`` into per-sub-environment kernel RNG states.

Every kernel draws from xoshiro256** (cython_core/rng.pxd) with one 4-word state per sub-env.
A sub-env reset with integer seed ``s`` gets the state ``SeedSequence(s).generate_state(4)``.
Vector envs follow Gymnasium's SyncVectorEnv convention: ``reset(seed=s)`` seeds sub-env ``i``
with ``s + i``, so ``make_vec(id, n, vectorization_mode="vector_entry_point")`` and
``make_vec(id, n, vectorization_mode="sync")`` see the same episodes for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rng_state(seed: int | None) -> np.ndarray:
    """The 4-word xoshiro256** state for ``seed`` (fresh OS entropy when ``None``)."""
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    state = np.random.SeedSequence(None if seed is None else int(seed)).generate_state(4, np.uint64)
    if not state.any():  # the all-zero state is the one fixed point of xoshiro
        state[0] = 1
    return state


def per_env_seeds(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    """Expand a vector ``reset`` seed into one seed per sub-environment."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"got {len(seeds)} seeds for {num_envs} sub-environments")
    return seeds
