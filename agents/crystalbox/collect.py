"""Training data for CrystalBox: roll out a policy, sample states, fork every queried action.

The protocol of CrystalBox (Patel, Abdu Jyothi & Narodytska, AAAI 2024, section 5 and A.4), on
a native vector env of B sub-envs stepped together:

1. pi acts on every sub-env (``policy.act(obs, info)`` on the batch). Sub-envs are reset by us
   (``autoreset_mode="Disabled"``), so ``reset_options`` can steer each new episode (e.g. which
   held-out traces to play).
2. Every ``every`` steps, each sub-env that has played at least ``warmup`` steps of its episode is
   *sampled*: so samples are spaced ``every`` steps apart within an episode and none comes from
   its first ``warmup`` steps. With B > 1 the sub-envs start their first episodes at staggered
   steps (sub-env i restarts at a random step in [0, every)), so that sub-envs with episodes of one
   fixed length (ABR) are not all sampled at the same chunk.
3. At a sampling step the state is forked once per queried action (:mod:`.actions`: pi's action,
   then the alternatives), on the *same* future input, and the per-component discounted returns
   over ``t_max`` decisions are recorded in reward units (:mod:`.forking`). Then the snapshot is
   restored and pi's action is stepped: the factual trajectory is bit-identical to a run without
   any collection, and every sampled state has a return for every queried action.
4. ``estimators`` (the sampling baselines) estimate the same queries from the same snapshot.

Defaults follow the public CrystalBox code: t_max = 5 and gamma = 0.95 (its ``N_STEP`` and
``GAMMA``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from sysgym.envs.validate import integer, number

from .actions import ActionQueries
from .features import embed, flatten, resolve_mode
from .forking import Forker
from .samplers import throughput_reader
from .samples import Samples


def make_env(env: Any, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> Any:
    """A native vector env with ``autoreset_mode="Disabled"`` from an ID (or ``env`` itself)."""
    if isinstance(env, str):
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode="Disabled", **(env_kwargs or {}))
    if env_kwargs:
        raise ValueError("env_kwargs are only used with an environment ID")
    mode = getattr(env, "autoreset_mode", None) or env.metadata.get("autoreset_mode")
    if mode != AutoresetMode.DISABLED:
        raise ValueError(f"CrystalBox resets sub-envs itself: make the vector env with "
                         f"autoreset_mode='Disabled' (got {mode})")
    return env


@contextlib.contextmanager
def owned_env(env: Any, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
    """:func:`make_env`, closing the env afterwards when it was made here (from an ID)."""
    vec = make_env(env, num_envs, env_kwargs)
    try:
        yield vec
    finally:
        if isinstance(env, str):
            vec.close()


def build_policy(policy: Any, env: Any) -> Any:
    """A policy object from an instance (with ``act``) or a factory ``env -> policy`` (a class)."""
    if isinstance(policy, type) or not hasattr(policy, "act"):
        if not callable(policy):
            raise ValueError(f"policy must have act(obs, info) or be a factory env -> policy, got {policy!r}")
        policy = policy(env)
    if not callable(getattr(policy, "act", None)):
        raise ValueError(f"{type(policy).__name__} has no act(obs, info)")
    return policy


def collect(policy: Any, env: Any, *, env_kwargs: dict[str, Any] | None = None, states: int | None = 1000,
            episodes: int | None = None,
            num_envs: int = 64, warmup: int = 5, every: int = 5, t_max: int = 5, gamma: float = 0.95,
            queries: ActionQueries | None = None, estimators: dict[str, Any] | None = None,
            features: str = "auto", history: int = 8, seed: int = 0,
            reset_options: Callable[[np.random.Generator, int], dict[str, Any]] | None = None,
            max_steps: int | None = None, progress: bool = False) -> Samples:
    """Sample ``states`` states of ``policy`` on ``env`` with the returns of every queried action.

    Args:
        policy: an ``act(obs, info)`` policy for the batch, or a factory ``vector_env -> policy``
            (e.g. a heuristic class).
        env: an environment ID (made with ``env_kwargs`` and ``num_envs`` sub-envs) or a native
            vector env made with ``autoreset_mode="Disabled"``.
        states: how many states to sample (None: no limit; then ``episodes`` must be given).
        episodes: stop once this many episodes have ended (None: no limit).
        warmup, every: skip the first ``warmup`` steps of each episode, then sample every ``every``.
        t_max, gamma: the return horizon (decisions) and discount.
        queries: which actions to ask about (default: :class:`ActionQueries` of the action space).
        estimators: name -> sampler (:mod:`.samplers`) estimating the same queries.
        features: also store ``policy.embed(obs)`` ("auto": when the policy has it).
        history: measured throughputs kept per state (ABR and CC).
        seed: seeds the env (sub-env i: seed + i), the staggered starts and the action draws.
        reset_options: ``(rng, num_envs) -> options`` for every reset (e.g. ``{"trace": ...}``, one
            trace per sub-env; only the sub-envs being reset use theirs).
        max_steps: give up (ValueError) after this many steps (default: generous for ``states``).
        progress: a progress bar on stderr.
    """
    if states is None and episodes is None:
        raise ValueError("give states or episodes (or both): collection needs a budget")
    states = 10**12 if states is None else integer("states", states, 1, 10**12)
    episodes = 10**12 if episodes is None else integer("episodes", episodes, 1, 10**12)
    warmup = integer("warmup", warmup, 0, 10**9)
    every = integer("every", every, 1, 10**9)
    t_max = integer("t_max", t_max, 1, 10**6)
    gamma = number("gamma", gamma, 0.0, 1.0)
    history = integer("history", history, 1, 10**6)
    with owned_env(env, integer("num_envs", num_envs, 1, 2**20), env_kwargs) as vec:
        return _collect(policy, vec, states, episodes, warmup, every, t_max, gamma, queries, estimators,
                        features, history, seed, reset_options, max_steps, progress)


def _collect(policy: Any, vec: Any, states: int, episodes: int, warmup: int, every: int, t_max: int, gamma: float,
             queries: ActionQueries | None, estimators: dict[str, Any] | None, features: str, history: int, seed: int,
             reset_options: Callable[[np.random.Generator, int], dict[str, Any]] | None, max_steps: int | None,
             progress: bool) -> Samples:
    """The body of :func:`collect` on an env it does not own (arguments checked there)."""
    base = vec.unwrapped
    b = vec.num_envs
    if max_steps is None:
        max_steps = 1000 + 20 * (warmup + every) * (math.ceil(min(states, 10**9) / b) + 1)
    queries = queries or ActionQueries(vec.single_action_space)
    estimators = dict(estimators or {})
    pi = build_policy(policy, vec)
    mode = resolve_mode(features, pi)
    rng = np.random.default_rng(seed)
    forker = Forker(vec, t_max, gamma)
    read_throughput = throughput_reader(vec)
    options = (lambda: {}) if reset_options is None else (lambda: dict(reset_options(rng, b)))

    parts: dict[str, list[Any]] = {k: [] for k in ("obs", "features", "mask", "throughput", "episode_step",
                                                    "policy_action", "state", "action", "factual", "returns")}
    estimates: dict[str, list[np.ndarray]] = {name: [] for name in estimators}
    by_episodes = states >= 10**12     # a budget of episodes: the bar counts them (and shows an ETA)
    bar = _progress(episodes if by_episodes else states, progress, "episode" if by_episodes else "state")
    start_time = time.perf_counter()

    obs, info = vec.reset(seed=seed, options=options())
    if hasattr(pi, "reset"):
        pi.reset()
    episode_step = np.zeros(b, dtype=np.int64)
    measured = np.full((b, history), np.nan)
    stagger = rng.integers(0, every, b) if b > 1 else np.zeros(1, dtype=np.int64)
    taken, step, finished = 0, 0, 0
    try:
        while taken < states and finished < episodes:
            if step >= max_steps:
                raise ValueError(f"sampled only {taken} states in {max_steps} steps: do episodes last more "
                                 f"than warmup={warmup} steps? (lower warmup, or raise max_steps)")
            late = (stagger == step) & (step > 0)
            if late.any():     # staggered first episodes: restart these sub-envs now
                obs, info = vec.reset(options={"reset_mask": late, **options()})
                episode_step[late] = 0
                measured[late] = np.nan
            action = pi.act(obs, info)
            if step % every == 0:
                rows = episode_step >= warmup
                if rows.sum() > states - taken:
                    rows[rng.permutation(np.flatnonzero(rows))[states - taken:]] = False
                if rows.any():
                    ids = np.arange(taken, taken + int(rows.sum()))
                    _sample(vec, pi, forker, queries, estimators, rng, obs, info, np.asarray(action), rows, ids,
                            mode, episode_step, measured, parts, estimates)
                    taken += len(ids)
                    if not by_episodes:
                        bar.update(len(ids))
            obs, _, terminated, truncated, info = vec.step(action)
            step += 1
            episode_step += 1
            if read_throughput is not None:
                measured = np.roll(measured, -1, axis=1)
                measured[:, -1] = read_throughput(info)
            ended = terminated | truncated
            finished += int(ended.sum())
            if by_episodes and ended.any():
                bar.update(min(int(ended.sum()), episodes - bar.n))
            if ended.any():
                obs, info = vec.reset(options={"reset_mask": ended, **options()})
                episode_step[ended] = 0
                measured[ended] = np.nan
    finally:
        bar.close()
    if taken == 0:
        raise ValueError(f"no state sampled in {finished} episode(s): do episodes last more than warmup={warmup} "
                         "steps? (lower warmup, or give more episodes)")

    join = lambda key: np.concatenate(parts[key]) if parts[key] and parts[key][0] is not None else None  # noqa: E731
    return Samples(
        components=tuple(base.reward_components), weights=np.asarray(base.reward_weights, dtype=np.float64).copy(),
        t_max=t_max, gamma=gamma, obs=join("obs"), features=join("features"), mask=join("mask"),
        throughput=join("throughput") if read_throughput is not None else None,
        episode_step=join("episode_step"), policy_action=join("policy_action"), state=join("state"),
        action=join("action"), factual=join("factual"), returns=join("returns"),
        estimates={k: np.concatenate(v) for k, v in estimates.items()},
        info={"env_steps": step * b, "episodes": finished, "fork_steps": forker.steps * b,
              "seconds": time.perf_counter() - start_time, "features": mode})


def _sample(vec: Any, pi: Any, forker: Forker, queries: ActionQueries, estimators: dict[str, Any],
            rng: np.random.Generator, obs: Any, info: dict[str, Any], action: np.ndarray, rows: np.ndarray,
            ids: np.ndarray, mode: str, episode_step: np.ndarray, measured: np.ndarray,
            parts: dict[str, list[Any]], estimates: dict[str, list[np.ndarray]]) -> None:
    """Fork the sampled sub-envs ``rows`` for every query; append what is recorded to ``parts``."""
    mask = info.get("action_mask") if queries.discrete else None
    rounds = queries.rounds(action, mask, rng)
    snapshot = vec.unwrapped.get_state()
    returns = np.stack([forker.returns(snapshot, pi, first) for first, _ in rounds])      # (R, B, C)
    found = {name: est.estimate(forker, snapshot, pi, [first for first, _ in rounds], rows, measured)
             for name, est in estimators.items()}
    forker.restore(snapshot)

    where = np.flatnonzero(rows)
    parts["obs"].append(flatten(vec.single_observation_space, obs, batched=True)[where])
    parts["features"].append(embed(pi, obs, batched=True)[where] if mode == "embed" else None)
    parts["mask"].append(None if mask is None else np.asarray(mask, dtype=bool)[where])
    parts["throughput"].append(measured[where].copy())
    parts["episode_step"].append(episode_step[where].copy())
    parts["policy_action"].append(action[where].copy())
    state_of = np.full(len(rows), -1, dtype=np.int64)
    state_of[where] = ids
    for r, (first, asked) in enumerate(rounds):
        keep = asked & rows
        parts["state"].append(state_of[keep])
        parts["action"].append(first[keep])
        parts["factual"].append(np.full(int(keep.sum()), r == 0))
        parts["returns"].append(returns[r][keep])
        for name in estimators:
            estimates[name].append(found[name][r][keep])


class _NoBar:
    n = 0

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, show: bool, unit: str = "state") -> Any:
    """A tqdm bar on stderr (count, rate and ETA) for the collection budget, or nothing."""
    if not show:
        return _NoBar()
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc="fitting rollouts", file=sys.stderr, dynamic_ncols=True)
