"""Play a policy on suite cases and collect every episode's return, length and metrics.

Work is cut into *units*: episodes ``[k * CHUNK, (k + 1) * CHUNK)`` of one case. A unit builds its
policy afresh (``factory(env)``) and plays its episodes, so a unit's result depends on nothing but
the policy, the case and the episode range: ``jobs=N`` runs units in N spawned processes and gives
exactly what ``jobs=1`` gives.

How a unit plays:

* *batched* (envs with a native vector env): one ``make_vec`` env with a sub-env per episode
  (sub-env ``i`` reset with seed ``case.seed + start + i`` and its reset option), autoreset off.
  The policy is built on the vector env and its first action is checked to be one action per
  sub-env; a policy that raises (TypeError, AttributeError, ...) or returns anything else is
  rebuilt on a single env and plays *per episode* instead, as ``compare_with_heuristics`` does.
  Sub-envs whose episode ended are restarted (same reset option) and keep stepping until every
  first episode is over; only first episodes are recorded.
* *per episode*: ``gymnasium.make``; ``reset(seed=case.seed + i, options=...)`` and the policy's
  ``reset()`` before each episode.
* multi-flow CC cases (PettingZoo): *joint* when the policy acts on the PettingZoo env (a dict of
  actions, as the CC baselines do), otherwise *per flow*: one instance of the policy per flow,
  each built on a single-flow ``CC-v0`` env and acting on its flow's observation and info.

Stochastic policies that share one random generator across a batch (the ``random`` baselines)
see their draws in unit order, so their per-episode numbers depend on ``CHUNK`` (fixed by the
suite) and on ``--episodes`` for the last, partial unit; never on ``jobs``.

Learned policies run with one torch / BLAS thread in every mode, so batched floating-point
arithmetic is the same in the main process and in workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from .policies import PolicySpec, Unavailable, factory_for, fit_case
from .runlog import Key, RunLog
from .suites import CHUNK, Case, Suite

# A policy that cannot act on a batch shows it with one of these (or a wrong action shape).
PROBE_ERRORS = (TypeError, AttributeError, NotImplementedError, ValueError, IndexError, KeyError, RuntimeError)


@dataclass
class CaseRun:
    """One policy's episodes on one case (``skipped``: why it did not play)."""

    suite: str
    case: str
    policy: str
    env_id: str = ""
    episodes: int = 0
    mode: str = ""
    values: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: str | None = None


Item = tuple[Any, Suite, Case]   # (policy spec or factory, suite, case)


def run(items: list[Item], episodes: int | None = None, jobs: int = 1, progress: bool = False,
        desc: str = "benchmark", variant: str | None = None, log: RunLog | None = None) -> list[CaseRun]:
    """Play every (policy, suite, case) item; ``episodes`` caps each case's episode count;
    ``variant`` plays the cases of suites that list it as a variant on that env ID. ``log`` keeps
    every finished unit (and supplies the units it already holds, for ``--resume``)."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if episodes is not None and episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    log = RunLog() if log is None else log
    runs: list[CaseRun] = []
    units: list[tuple[int, Any, Case, str, int, int]] = []
    keys: list[Key] = []
    identities: dict[int, str] = {}      # identity() hashes every input file: once per suite
    for policy, suite, case in items:
        label = policy.label if isinstance(policy, PolicySpec) else getattr(policy, "__name__", repr(policy))
        n = case.episodes if episodes is None else min(episodes, case.episodes)
        record = CaseRun(suite.name, case.name, label, episodes=n)
        try:
            case = fit_case(policy, case)     # e.g. a DAG policy's padding; larger tasks: not applicable
            _, record.env_id = factory_for(policy, case, suite.variants, variant)
        except Unavailable as error:
            record.skipped = str(error)
        runs.append(record)
        if record.skipped is None:
            for start in range(0, n, CHUNK):
                stop = min(start + CHUNK, n)
                units.append((len(runs) - 1, policy, case, record.env_id, start, stop))
                identity = identities.setdefault(id(suite), suite.identity())
                keys.append((label, identity, case.name, record.env_id, start, stop))
    results: dict[int, tuple[str, dict[str, list[float]]]] = {}
    todo = []
    for u, key in enumerate(keys):
        saved = log.get(key)
        if saved is None:
            todo.append(u)
        else:
            results[u] = saved
    with _one_thread():
        for u, result in _execute([units[u] for u in todo], todo, jobs, progress, desc):
            results[u] = result
            log.put(keys[u], result)
    parts: list[list[tuple[str, dict[str, list[float]]]]] = [[] for _ in runs]
    for u, unit in enumerate(units):
        parts[unit[0]].append(results[u])
    for record, pieces in zip(runs, parts):
        if pieces:
            record.mode = "+".join(sorted({mode for mode, _ in pieces}))
            names = list(pieces[0][1])
            record.values = {k: np.asarray([v for _, p in pieces for v in p.get(k, [np.nan] * len(p["return"]))])
                             for k in names}
    return runs


def _execute(units: list[tuple], ids: list[int], jobs: int, progress: bool, desc: str) -> Iterator[tuple]:
    """(id, unit result) for every unit, in unit order in this process, or as they finish in
    ``jobs`` spawned workers. Workers ignore SIGINT (the terminal sends it to the whole group);
    on any exception here, Ctrl-C or SIGTERM included, they are terminated and joined at once."""
    bar = _progress_bar(len(units), progress, desc)
    try:
        if jobs == 1 or len(units) <= 1:
            for u, unit in zip(ids, units):
                result = play_unit(*unit[1:])
                bar.update(1)
                yield u, result
            return
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(processes=min(jobs, len(units)), initializer=_init_worker)
        try:
            for u, result in pool.imap_unordered(_play_numbered, zip(ids, (unit[1:] for unit in units))):
                bar.update(1)
                yield u, result
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    finally:
        bar.close()


def _play_numbered(task: tuple[int, tuple]) -> tuple[int, tuple[str, dict[str, list[float]]]]:
    return task[0], play_unit(*task[1])


def play_unit(policy: Any, case: Case, env_id: str, start: int, stop: int) -> tuple[str, dict[str, list[float]]]:
    """Play episodes [start, stop) of ``case`` on ``env_id``; returns (mode, values per key)."""
    if isinstance(policy, PolicySpec) and policy.kind in ("reference", "checkpoint", "sb3", "rllib"):
        import torch  # noqa: F401  (pinned to one thread before the policy is built)
    _pin_torch()
    factory, _ = factory_for(policy, case, (env_id,), prefer=env_id)
    factory = _pinned(factory)
    if case.n_flows:
        mode, episodes = _play_flows(factory, case, env_id, start, stop)
    else:
        batched = _play_batched(factory, case, env_id, start, stop) \
            if gym.spec(env_id).vector_entry_point is not None else None
        mode, episodes = ("batched", batched) if batched is not None else \
            ("per-episode", _play_single(factory, case, env_id, start, stop))
    flows = max(case.n_flows, 1)
    values: dict[str, list[float]] = {"return": [], "length": []}
    names = list(dict.fromkeys(k for _, _, metrics in episodes for k in metrics))
    for total, steps, metrics in episodes:
        values["return"].append(total)
        values["length"].append(float(steps))
        for k in names:
            values.setdefault(k, []).append(float(metrics.get(k, np.nan)))
    if env_id.startswith("sysgym/CC"):
        values["reward_per_mi"] = [t / (s * flows) for t, s in zip(values["return"], values["length"])]
    return mode, values


Episode = tuple[float, int, dict[str, float]]


def _play_batched(factory: Callable, case: Case, env_id: str, start: int, stop: int) -> list[Episode] | None:
    n = stop - start
    vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.DISABLED, **case.kwargs())
    try:
        options = {k: np.asarray(v) for k, v in case.reset_options(start, stop).items()}
        try:
            policy = factory(vec)
            obs, info = vec.reset(seed=case.seed + start, options=dict(options))
            if hasattr(policy, "reset"):
                policy.reset()
            action = policy.act(obs, info)
            shape = np.shape(action)
            if shape != (n, *vec.single_action_space.shape) or np.asarray(action).dtype == object:
                return None
        except PROBE_ERRORS:
            return None
        returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        metrics: list[dict[str, float]] = [{} for _ in range(n)]
        done = np.zeros(n, dtype=bool)
        while True:
            obs, reward, terminated, truncated, info = vec.step(action)
            live = ~done
            returns[live] += np.asarray(reward)[live]
            lengths[live] += 1
            ended = np.asarray(terminated) | np.asarray(truncated)
            first = ended & live
            if first.any():
                found = info.get("episode_metrics", {})
                for i in np.flatnonzero(first):
                    metrics[i] = {k: float(v[i]) for k, v in found.items()
                                  if not k.startswith("_") and found.get(f"_{k}", ended)[i]}
                done |= first
                if done.all():
                    break
            if ended.any():
                obs, info = vec.reset(options={**options, "reset_mask": ended})
            action = policy.act(obs, info)
        return [(float(returns[i]), int(lengths[i]), metrics[i]) for i in range(n)]
    finally:
        vec.close()


def _play_single(factory: Callable, case: Case, env_id: str, start: int, stop: int) -> list[Episode]:
    env = gym.make(env_id, **case.kwargs())
    try:
        policy = factory(env)
        options = case.reset_options(start, stop)
        episodes = []
        for i in range(start, stop):
            obs, info = env.reset(seed=case.seed + i, options={k: v[i - start] for k, v in options.items()} or None)
            if hasattr(policy, "reset"):
                policy.reset()
            total, steps = 0.0, 0
            while True:
                obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
                total += float(reward)
                steps += 1
                if terminated or truncated:
                    break
            episodes.append((total, steps, dict(info.get("episode_metrics", {}))))
        return episodes
    finally:
        env.close()


def _play_flows(factory: Callable, case: Case, env_id: str, start: int, stop: int) -> tuple[str, list[Episode]]:
    from sysgym.envs.cc import parallel_env

    env = parallel_env(n_flows=case.n_flows, **case.kwargs())
    proxy = None
    try:
        options = case.reset_options(start, stop)

        def reset(i: int) -> tuple[Any, Any]:
            return env.reset(seed=case.seed + i, options={k: v[i - start] for k, v in options.items()} or None)

        if _acts_jointly(factory, env, reset, start):
            mode, joint = "joint", factory(env)
        else:
            mode, proxy = "per-flow", gym.make(env_id, **case.kwargs())
            flows = {agent: factory(proxy) for agent in env.possible_agents}
        episodes = []
        for i in range(start, stop):
            obs, infos = reset(i)
            for policy in ([joint] if mode == "joint" else flows.values()):
                if hasattr(policy, "reset"):
                    policy.reset()
            total, steps = 0.0, 0
            while env.agents:
                if mode == "joint":
                    actions = joint.act(obs, infos)
                else:
                    actions = {a: flows[a].act(obs[a], infos[a]) for a in env.agents}
                obs, rewards, _, _, infos = env.step(actions)
                total += float(sum(rewards.values()))
                steps += 1
            episodes.append((total, steps, _flow_metrics(infos)))
        return mode, episodes
    finally:
        env.close()
        if proxy is not None:
            proxy.close()


def _acts_jointly(factory: Callable, env: Any, reset: Callable, start: int) -> bool:
    """Whether the policy built on the PettingZoo env returns one action per agent (a probe on
    episode ``start``; the run then rebuilds the policy and replays that episode)."""
    try:
        policy = factory(env)
        obs, infos = reset(start)
        if hasattr(policy, "reset"):
            policy.reset()
        action = policy.act(obs, infos)
        return isinstance(action, dict) and set(action) == set(env.agents)
    except PROBE_ERRORS:
        return False


def _flow_metrics(infos: dict[str, Any]) -> dict[str, float]:
    """Shared metrics of the episode plus ``throughput``: the mean per-flow throughput."""
    per_agent = [i.get("episode_metrics", {}) for i in infos.values()]
    if not per_agent or not per_agent[0]:
        return {}
    metrics = {k: float(v) for k, v in per_agent[0].items() if not k.startswith("flow_")}
    metrics["throughput"] = float(np.mean([m["flow_throughput"] for m in per_agent]))
    return metrics


# ------------------------------------------------------------------------------ plumbing
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One BLAS and one torch thread while this process plays units; torch's setting is restored
    after. (Besides equal arithmetic everywhere: on a loaded machine, idle OpenMP threads spinning
    beside tiny batched matrix products slow them down many times.)"""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    with limits:
        try:
            yield
        finally:
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.set_num_threads(before if before is not None else _TORCH_DEFAULT.get("threads", 1))


_TORCH_DEFAULT: dict[str, int] = {}


def _pin_torch() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        _TORCH_DEFAULT.setdefault("threads", torch.get_num_threads())
        torch.set_num_threads(1)


def _pinned(factory: Callable) -> Callable:
    """``factory`` that pins torch to one thread when building the policy imported it."""
    def build(env: Any) -> Any:
        policy = factory(env)
        _pin_torch()
        if not callable(getattr(policy, "act", None)):
            raise ValueError(f"the policy factory returned {type(policy).__name__}, which has no act(obs, info)")
        return policy
    return build


def _init_worker() -> None:
    """Worker processes: one thread for OpenMP / BLAS libraries loaded from now on (torch)."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C and terminates workers
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
    return _NoBar()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
