"""Throughput measurement shared by ``sysgym bench`` and ``benchmarks/``.

Steps/s are measured through the public API: ``gymnasium.make`` (with Gymnasium's default
wrappers) for the single env, and ``make_vec(..., vectorization_mode="vector_entry_point")`` for
the native batch (B env-steps per call). Actions come from a pre-drawn table or a family policy
so that action selection stays out of the measurement as far as possible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import sysgym  # noqa: F401  (registers the environments)

Policy = Callable[[Any, dict[str, Any]], Any]

# Bounds of ``sysgym bench``'s arguments: a rate needs at least one step, and the largest values
# keep one run within minutes and the native vector env's buffers within a few GB.
MAX_STEPS = 10_000_000      # single-env steps
MAX_CALLS = 1_000_000       # native vector env step calls
MAX_NUM_ENVS = 16_384       # sub-envs of the native vector env


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]``, else argparse's one-line error."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}, got {value:,}")
        return value

    parse.__name__ = "integer"
    return parse


@dataclass
class Throughput:
    env_id: str
    mode: str          # "single" or "vector"
    num_envs: int
    steps: int         # env-steps taken (B per vector call)
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def first_valid_policy(obs: Any, info: dict[str, Any]) -> Any:
    """Masked envs: the first valid action of each sub-env (a cheap, legal action)."""
    mask = info["action_mask"]
    return np.argmax(mask, axis=-1) if mask.ndim > 1 else int(np.argmax(mask))


def random_table_policy(space: gym.Space, size: int = 4096, seed: int = 0) -> Policy:
    """Cycles through ``size`` actions pre-drawn from ``space`` (legal for unmasked spaces)."""
    space.seed(seed)
    table = [space.sample() for _ in range(size)]
    counter = iter(range(1 << 62))

    def policy(obs: Any, info: dict[str, Any]) -> Any:
        return table[next(counter) % size]

    return policy


def masked_random_policy(seed: int = 0) -> Policy:
    """Uniformly random valid action per sub-env from ``info["action_mask"]`` (vectorised)."""
    rng = np.random.default_rng(seed)

    def policy(obs: Any, info: dict[str, Any]) -> Any:
        mask = info["action_mask"]
        scores = rng.random(mask.shape) * mask
        return np.argmax(scores, axis=-1) if mask.ndim > 1 else int(np.argmax(scores))

    return policy


def measure_single(env_id: str, steps: int = 20000, policy: Policy | None = None, seed: int = 0,
                   **kwargs: Any) -> Throughput:
    """Env-steps/s of ``gymnasium.make(env_id, **kwargs)`` driven by ``policy``."""
    env = gym.make(env_id, **kwargs)
    policy = policy or _default_policy(env.action_space, masked="action_mask" in env.reset(seed=seed)[1])
    obs, info = env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(policy(obs, info))
        if terminated or truncated:
            obs, info = env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return Throughput(env_id, "single", 1, steps, elapsed)


def measure_vector(env_id: str, num_envs: int = 256, steps: int = 200, policy: Policy | None = None,
                   seed: int = 0, **kwargs: Any) -> Throughput:
    """Env-steps/s of the native vector env: ``steps`` calls of B sub-env steps each."""
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    obs, info = vec.reset(seed=seed)
    policy = policy or _default_policy(vec.action_space, masked="action_mask" in info)
    start = time.perf_counter()
    for _ in range(steps):
        obs, _, _, _, info = vec.step(policy(obs, info))
    elapsed = time.perf_counter() - start
    vec.close()
    return Throughput(env_id, "vector", num_envs, steps * num_envs, elapsed)


def _default_policy(space: gym.Space, masked: bool) -> Policy:
    return masked_random_policy() if masked else random_table_policy(space)


def format_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def human(rate: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {unit}"
    return f"{rate:.0f}"


def rounded(value: Any) -> Any:
    """``value`` (nested lists, tuples, dicts) with every float rounded to 6 significant digits,
    so that results files stay small and diff cleanly."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value
