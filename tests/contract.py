"""Helpers shared by the generic contract tests (tests/test_contract.py) and family tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def sample_action(space: spaces.Space, info: dict[str, Any], rng: np.random.Generator) -> Any:
    """A random action; for discrete spaces one of the valid ones according to the action mask."""
    if isinstance(space, spaces.Discrete):
        mask = info.get("action_mask")
        valid = np.flatnonzero(mask) if mask is not None else np.arange(space.n)
        return int(rng.choice(valid))
    if isinstance(space, spaces.Box):
        return rng.uniform(space.low, space.high).astype(space.dtype)
    raise NotImplementedError(space)


def sample_actions(vec: gym.vector.VectorEnv, infos: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """One random valid action per sub-env of a vector env."""
    space = vec.single_action_space
    rows = []
    for i in range(vec.num_envs):
        info = {"action_mask": infos["action_mask"][i]} if "action_mask" in infos else {}
        rows.append(sample_action(space, info, rng))
    return np.asarray(rows)


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Exact equality of nested observation / info structures (arrays compared bitwise)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.flat, b.flat)):
                assert_same(x, y, f"{path}[{i}]")
        else:
            assert np.array_equal(a, b, equal_nan=True), f"{path}: {a} != {b}"
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"


def rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    """Reset with ``seed`` and take ``steps`` random valid actions, resetting when episodes end."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    trace = [("reset", obs, info)]
    for _ in range(steps):
        action = sample_action(env.action_space, info, rng)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(("reset", obs, info))
    return trace
