"""Running teachers and students in the env: DAgger's data collection, held-out evaluation by
return, fidelity (agreement with the teacher) and decision latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .envs import EnvMaker
from .features import flatten, observation_layout
from .samples import Samples
from .snapshots import StateBank
from .teachers import resolve_teacher

# The episode metric each family is judged by (and whether lower is better).
FAMILY_METRICS: dict[str, tuple[str, bool]] = {
    "deeprm": ("mean_slowdown", True), "appointments": ("percentile_efficacy", False),
    "abr": ("qoe_per_chunk", False), "cc": ("utilisation", False), "dag": ("cores_needed", True),
}


def collect(maker: EnvMaker, teacher: Any, student: Any | None, beta: float, samples: int, seeds: Iterator[int],
            *, num_envs: int = 16, rng: np.random.Generator, record_states: bool = False,
            teacher_values: bool = False, iteration: int = 0,
            progress: Callable[[int], None] | None = None) -> tuple[Samples, StateBank | None]:
    """``samples`` decision states visited by the mixture that takes the teacher's action with
    probability ``beta`` and the student's otherwise, each labelled with the teacher's action (and
    the teacher's own values when ``teacher_values``); optionally their snapshots for forking.
    Every episode starts from the next seed of ``seeds``. ``teacher``: anything
    :func:`~sysgym.agents.distill.teachers.resolve_teacher` accepts."""
    teacher = resolve_teacher(teacher, maker.env_id)
    vec = maker.vector(num_envs, autoreset_mode="Disabled")
    try:
        layout = observation_layout(vec.single_observation_space)  # refuses what a student cannot read
        n_actions = int(vec.single_action_space.n)
        policy = teacher.build(vec)
        obs, infos = vec.reset(seed=[next(seeds) for _ in range(num_envs)])
        parts: dict[str, list] = {"X": [], "mask": [], "teacher": [], "q": []}
        bank = StateBank() if record_states else None
        n = 0
        while n < samples:
            chosen = np.asarray(policy.act(obs, infos), dtype=np.int64).reshape(num_envs)
            X, _ = flatten(obs, layout)
            mask = np.asarray(infos["action_mask"], dtype=bool) if "action_mask" in infos else \
                np.ones((num_envs, n_actions), dtype=bool)
            parts["X"].append(X.astype(np.float32))
            parts["mask"].append(mask)
            parts["teacher"].append(chosen)
            if bank is not None:
                bank.append(vec.get_state())
            if teacher_values:
                parts["q"].append(np.asarray(teacher.values(vec), dtype=np.float64))
            action = chosen
            if student is not None and beta < 1.0:
                own = np.asarray(student.act(obs, infos), dtype=np.int64).reshape(num_envs)
                action = np.where(rng.random(num_envs) < beta, chosen, own)
            obs, _, terminated, truncated, infos = vec.step(action)
            done = terminated | truncated
            if done.any():
                obs, infos = vec.reset(seed=[next(seeds) if d else None for d in done], options={"reset_mask": done})
            n += num_envs
            if progress is not None:
                progress(min(num_envs, samples - n + num_envs))
    finally:
        vec.close()
    cat = lambda key: np.concatenate(parts[key])[:samples]  # noqa: E731
    data = Samples(cat("X"), cat("mask"), cat("teacher"), cat("q") if teacher_values else None,
                   np.full(samples, iteration))
    if bank is not None:
        bank = bank.subset(np.arange(samples))
    return data, bank


@dataclass
class Evaluation:
    """Per-episode returns and ``episode_metrics`` of a policy on seeded episodes."""

    returns: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)

    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def mean(self, metric: str) -> float:
        values = [m[metric] for m in self.metrics if metric in m]
        return float(np.mean(values)) if values else float("nan")


def evaluate(maker: EnvMaker, make_policy: Callable[[Any], Any], episodes: int, seed: int,
             max_batch: int = 64) -> Evaluation:
    """One episode per seed ``seed``, ``seed + 1``, ...: return and episode metrics (episodes cut by
    ``max_episode_steps`` report a return but no metrics)."""
    out = Evaluation()
    for start in range(0, episodes, max_batch):
        b = min(max_batch, episodes - start)
        vec = maker.vector(b, autoreset_mode="NextStep")
        try:
            policy = make_policy(vec)
            if hasattr(policy, "reset"):
                policy.reset()
            obs, infos = vec.reset(seed=seed + start)
            returns = np.zeros(b)
            finished = np.zeros(b, dtype=bool)
            metrics: list[dict[str, float]] = [{} for _ in range(b)]
            while not finished.all():
                obs, rewards, terminated, truncated, infos = vec.step(policy.act(obs, infos))
                returns += np.where(finished, 0.0, rewards)
                ended = (terminated | truncated) & ~finished
                ep = infos.get("episode_metrics", {})
                for i in np.flatnonzero(ended):
                    metrics[i] = {k: float(v[i]) for k, v in ep.items()
                                  if not k.startswith("_") and (f"_{k}" not in ep or ep[f"_{k}"][i])}
                finished |= ended
        finally:
            vec.close()
        out.returns += returns.tolist()
        out.metrics += metrics
    return out


def fidelity(policy: Any, data: Samples, critical: np.ndarray | None = None) -> dict[str, float]:
    """Share of states where ``policy`` (within each state's mask) takes the teacher's action:
    overall and on the states flagged ``critical``."""
    chosen = np.asarray(policy.act_flat(data.X, {"action_mask": data.mask})).reshape(-1)
    same = chosen == data.teacher
    out = {"fidelity": float(same.mean()) if len(same) else float("nan")}
    if critical is not None:
        out["fidelity_critical"] = float(same[critical].mean()) if critical.any() else float("nan")
    return out


def decision_latency(maker: EnvMaker, make_policy: Callable[[Any], Any], decisions: int = 1000,
                     seed: int = 0) -> float:
    """Median wall time of one ``act`` call on a single env, in microseconds (the median keeps
    other processes' bursts on a shared machine out of the number)."""
    env = maker.single()
    times = np.zeros(decisions)
    try:
        policy = make_policy(env)
        obs, info = env.reset(seed=seed)
        for k in range(decisions):
            start = time.perf_counter_ns()
            action = policy.act(obs, info)
            times[k] = time.perf_counter_ns() - start
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                seed += 1
                obs, info = env.reset(seed=seed)
    finally:
        env.close()
    return float(np.median(times)) / 1e3
