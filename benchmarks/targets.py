"""Targets for time-to-target benchmarks: each case's heuristic score and how a policy is scored.

A case is an env, its training and scoring kwargs, the family heuristic whose score is the
target, the episode metric compared and whether higher is better. Scoring runs ``EPISODES``
episodes on the seeds ``EVAL_SEED ... EVAL_SEED + EPISODES - 1`` (disjoint from every training
seed used by :mod:`benchmarks.time_to_target`, which are below ``EVAL_SEED``). No torch, no Ray:
every trainer's process (both venvs) imports this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

EVAL_SEED = 1_000_000
EPISODES = 64


@dataclass(frozen=True)
class Case:
    """One time-to-target task."""

    name: str
    env_id: str
    train_kwargs: dict[str, Any]
    eval_kwargs: dict[str, Any]
    heuristic: str
    metric: str
    higher_is_better: bool
    eval_every: int           # env steps between evaluations (the same for every trainer)


# DeepRM is scored by mean_slowdown_all (unfinished jobs count): mean_slowdown counts finished
# jobs only, so a policy that finishes nothing would score 0 and "beat" SJF. ABR trains on the
# shipped training traces and is scored on the held-out test traces.
CASES: dict[str, Case] = {
    "deeprm": Case("deeprm", "sysgym/DeepRM-CompactSparse-v0", {"scenario": 3}, {"scenario": 3},
                   "sjf", "mean_slowdown_all", False, 25_000),
    "abr": Case("abr", "sysgym/ABR-v0", {"traces": "train"}, {"traces": "test"},
                "bb", "return", True, 10_000),
    "cc": Case("cc", "sysgym/CC-Discrete-v0", {}, {}, "aimd", "return", True, 25_000),
}


def reached(value: float, target: float, higher_is_better: bool) -> bool:
    """Whether a score is at or beyond the target (NaN never is)."""
    if not np.isfinite(value):
        return False
    return value >= target if higher_is_better else value <= target


def first_reach(curve: list[dict[str, float]], target: float, higher_is_better: bool) -> dict[str, float] | None:
    """The first evaluation of ``curve`` (dicts with ``score``) at or beyond the target, or None."""
    for point in curve:
        if reached(point["score"], target, higher_is_better):
            return point
    return None


def best_score(curve: list[dict[str, float]], higher_is_better: bool) -> float | None:
    """The best finite score of ``curve`` (None when it has none)."""
    values = [p["score"] for p in curve if np.isfinite(p["score"])]
    if not values:
        return None
    return max(values) if higher_is_better else min(values)


class _BatchActor:
    """``act(obs, infos)`` over a native vector env from ``act_batch(obs, mask_or_None)``."""

    def __init__(self, act_batch: Any):
        self.act_batch = act_batch

    def act(self, obs: Any, infos: dict[str, Any]) -> Any:
        mask = infos.get("action_mask")
        return self.act_batch(obs, None if mask is None else np.asarray(mask, dtype=bool))


def score(case: Case, policy: Any = None, act_batch: Any = None) -> float:
    """Mean ``case.metric`` over the scoring episodes.

    Give either ``act_batch(obs[B], mask[B] or None) -> actions[B]`` (all episodes stepped together
    in the native vector env) or a single-env ``policy`` with ``act(obs, info)``.
    """
    from sysgym.agents.evaluation import evaluate, evaluate_batched

    if act_batch is not None:
        env = gym.make_vec(case.env_id, num_envs=EPISODES, vectorization_mode="vector_entry_point",
                           **case.eval_kwargs)
        try:
            result = evaluate_batched(_BatchActor(act_batch), env, seed=EVAL_SEED)
        finally:
            env.close()
        if len(result.returns) != EPISODES:
            raise RuntimeError(f"{case.env_id}: only {len(result.returns)} of {EPISODES} scoring episodes ended")
    else:
        env = gym.make(case.env_id, **case.eval_kwargs)
        try:
            result = evaluate(policy, env, episodes=EPISODES, seed=EVAL_SEED)
        finally:
            env.close()
    return float(result.mean()[case.metric])


class StopRun(Exception):
    """Raised inside a trainer's loop (a callback, an iteration hook) to end the run there."""


def train_scored(trainer: Any, horizon: int, after_iteration: Any) -> None:
    """Run sysgym's ``PPOTrainer.train(horizon)`` with ``after_iteration()`` called after each of its
    own iterations; the run ends when it returns True (or at ``horizon``), and the trainer is closed."""
    try:
        trainer.train(horizon, until=lambda _: after_iteration())
    except StopRun:
        pass
    finally:
        trainer.close()


def target_score(case: Case) -> float:
    """The family heuristic's score on the scoring episodes (the target every trainer must reach)."""
    from sysgym.agents.heuristics import heuristics_for

    heuristic = heuristics_for(case.env_id)[case.heuristic]
    env = gym.make_vec(case.env_id, num_envs=EPISODES, vectorization_mode="vector_entry_point",
                       **case.eval_kwargs)
    try:
        from sysgym.agents.evaluation import evaluate_batched

        result = evaluate_batched(heuristic, env, seed=EVAL_SEED)
    finally:
        env.close()
    return float(result.mean()[case.metric])
