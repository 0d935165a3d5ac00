"""Collect a policy's episodes and write them as a Minari dataset under a local folder.

Episode ``k`` is reset with seed ``seed + k`` (stored as the episode's seed), so
``dataset.recover_environment().reset(seed=episode.id + seed)`` and the stored actions replay it
exactly (the determinism contract). Collection runs ``batch`` episodes at once on the family's
native vector env (sub-env ``i`` of a batch starting at episode ``k``: seed ``seed + k + i``);
a policy that cannot act on a batch (or an env without a vector env) is played one episode at a
time on the single env. Episodes are written through Minari's own storage API
(:func:`minari.create_dataset_from_buffers`, then ``update_episodes`` per batch), so a stopped run
leaves a valid dataset with the batches that finished. Per step the infos keep ``action_mask``
(where the env has one) and ``reward_components``; like Minari's DataCollector the infos hold
one row per observation (the reset's first).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

INFO_KEYS = ("action_mask", "reward_components")
PROBE_ERRORS = (TypeError, AttributeError, NotImplementedError, ValueError, IndexError, KeyError, RuntimeError)


def _minari():
    try:
        import minari
        from minari.data_collector.episode_buffer import EpisodeBuffer
    except ModuleNotFoundError as error:
        raise ValueError(f"{error.name} is not installed; datasets need it: pip install \"sysgym[datasets]\"") from None
    return minari, EpisodeBuffer


def dataset_id_for(env_id: str, policy_label: str, noise: float = 0.0) -> str:
    """``sysgym/<Env>/<policy>[-noise<eps>]-v0``, Minari's ``namespace/name-vN`` form."""
    env = env_id.split("/", 1)[-1].rsplit("-v", 1)[0]
    label = policy_label.replace("heuristic:", "").replace(" (sampled)", "-sampled")
    if "/" in label:   # a checkpoint or model path: its folder's name
        path = Path(label.split(":", 1)[-1])
        label = path.parent.name if path.suffix else path.name
    name = re.sub(r"[^-_\w]+", "-", label).strip("-_") or "policy"
    if noise > 0:
        name += f"-noise{noise:g}".replace(".", "p")
    return f"sysgym/{env}/{name}-v0"


@contextlib.contextmanager
def _data_path(out: Path) -> Iterator[None]:
    """Point Minari at ``out`` (never the user's home or a hub) for the block."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(out).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Ctrl-C / SIGTERM during a write is held until the write ends (never a half-written episode)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            raise KeyboardInterrupt


def load(out: str | Path, dataset_id: str | None = None):
    """A Minari dataset: the one under ``out`` (or ``dataset_id`` there), or ``out`` itself when it
    is a dataset's own folder (``<out>/sysgym/<Env>/<name>-v0``, holding ``data/``)."""
    minari, _ = _minari()
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such dataset folder")
    if dataset_id is None and (out / "data" / "metadata.json").is_file():
        return minari.MinariDataset(out / "data")
    if dataset_id is None:
        found = sorted(str(p.parent.parent.relative_to(out)) for p in out.rglob("data/metadata.json"))
        if len(found) != 1:
            raise ValueError(f"{out}: expected one Minari dataset, found {len(found)}"
                             + (f" ({', '.join(found[:4])}{', ...' if len(found) > 4 else ''}); "
                                "pass the dataset's own folder" if found else ""))
        dataset_id = found[0]
    with _data_path(out):
        return minari.load_dataset(dataset_id)


class _Noisy:
    """With probability ``eps`` per step and row, a uniformly random valid action instead."""

    def __init__(self, policy: Any, env: Any, eps: float, seed: int):
        from sysgym.agents.policy_specs import UniformRandom

        self.policy, self.eps = policy, eps
        self.random = UniformRandom(env, seed=seed + 7_919)
        self.rng = np.random.default_rng(seed + 104_729)
        self.batched = hasattr(env, "single_action_space")

    def reset(self) -> None:
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        action = self.policy.act(obs, info)
        if self.eps <= 0:
            return action
        other = self.random.act(obs, info)
        if not self.batched:
            return other if self.rng.random() < self.eps else action
        action, other = np.array(action), np.asarray(other)
        pick = self.rng.random(len(action)) < self.eps
        action[pick] = other[pick]
        return action


def _stack(rows: list[Any]) -> Any:
    if isinstance(rows[0], dict):
        return {k: _stack([r[k] for r in rows]) for k in rows[0]}
    return np.stack([np.asarray(r) for r in rows])


def _info_row(info: dict[str, Any], i: int | None, n_components: int, n_actions: int | None) -> dict[str, Any]:
    """The kept infos of one step (sub-env ``i`` of a batch, or a single env when ``i`` is None)."""
    row: dict[str, Any] = {}
    for key, width, dtype in (("reward_components", n_components, np.float64), ("action_mask", n_actions, np.int8)):
        if width is None:
            continue
        value = info.get(key)
        if value is not None and i is not None:
            present = info.get(f"_{key}")
            value = value[i] if present is None or present[i] else None
        row[key] = np.zeros(width, dtype) if value is None else np.asarray(value, dtype).reshape(width)
    return row


class _Episode:
    """One episode's rows as the policy plays it."""

    def __init__(self, seed: int, obs: Any, info: dict[str, Any]):
        self.ready = False   # True: obs / infos / actions ... are already whole-episode arrays
        self.seed, self.obs, self.infos = seed, [obs], [info]
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.terms: list[bool] = []
        self.truncs: list[bool] = []

    def add(self, action: Any, obs: Any, reward: float, term: bool, trunc: bool, info: dict[str, Any]) -> None:
        self.actions.append(np.asarray(action))
        self.obs.append(obs)
        self.rewards.append(float(reward))
        self.terms.append(bool(term))
        self.truncs.append(bool(trunc))
        self.infos.append(info)

    def buffer(self, episode_id: int, EpisodeBuffer: type) -> Any:
        pack = (lambda x: x) if self.ready else _stack
        return EpisodeBuffer(id=episode_id, seed=self.seed, observations=pack(self.obs),
                             actions=pack(self.actions), rewards=np.asarray(self.rewards),
                             terminations=np.asarray(self.terms), truncations=np.asarray(self.truncs),
                             infos=pack(self.infos))


def _widths(env: gym.Env) -> tuple[int, int | None]:
    base = env.unwrapped
    n_components = len(base.reward_components)
    space = env.action_space
    masked = hasattr(base, "action_masks") and isinstance(space, gym.spaces.Discrete)
    return n_components, (int(space.n) if masked else None)


def _copy(tree: Any) -> Any:
    return {k: _copy(v) for k, v in tree.items()} if isinstance(tree, dict) else np.array(tree)


def _infos(info: dict[str, Any], n: int, widths: tuple[int, int | None]) -> dict[str, np.ndarray]:
    """The kept infos of one batched step as (n, width) arrays (zeros where a sub-env has none)."""
    out = {}
    for key, width, dtype in (("reward_components", widths[0], np.float64), ("action_mask", widths[1], np.int8)):
        if width is None:
            continue
        value = info.get(key)
        rows = np.zeros((n, width), dtype)
        if value is not None:
            present = np.asarray(info.get(f"_{key}", np.ones(n, bool)), bool)
            rows[present] = np.asarray(value, dtype).reshape(n, width)[present]
        out[key] = rows
    return out


def _play_batch(vec: Any, policy: Any, seed: int, widths: tuple[int, int | None],
                max_steps: int) -> list[_Episode]:
    """One episode per sub-env, all stepped together; sub-env ``i``: seed ``seed + i``. Steps are
    kept as whole-batch arrays and cut into episodes at the end (no per-sub-env work per step)."""
    n = vec.num_envs
    obs, info = vec.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    observations, infos = [_copy(obs)], [_infos(info, n, widths)]
    actions, rewards, terms, truncs = [], [], [], []
    lengths = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for _ in range(max_steps):
        action = np.array(policy.act(obs, info))
        obs, reward, terminated, truncated, info = vec.step(action)
        actions.append(action)
        observations.append(_copy(obs))
        infos.append(_infos(info, n, widths))
        rewards.append(np.array(reward, dtype=np.float64))
        terms.append(np.array(terminated, dtype=bool))
        truncs.append(np.array(truncated, dtype=bool))
        ended = terms[-1] | truncs[-1]
        lengths[~done] += 1
        done |= ended
        if done.all():
            break
        if ended.any():
            obs, info = vec.reset(options={"reset_mask": ended})
    else:
        raise ValueError(f"an episode ran past {max_steps} steps")
    obs_all, info_all = _stack(observations), _stack(infos)
    act_all, rew_all, term_all, trunc_all = (np.stack(x) for x in (actions, rewards, terms, truncs))
    episodes = []
    for i in range(n):
        L = int(lengths[i])
        ep = _Episode(seed + i, None, {})
        ep.obs, ep.infos = _col(obs_all, i, L + 1), _col(info_all, i, L + 1)
        ep.actions, ep.rewards = act_all[:L, i], rew_all[:L, i]
        ep.terms, ep.truncs = term_all[:L, i], trunc_all[:L, i]
        ep.ready = True
        episodes.append(ep)
    return episodes


def _col(tree: Any, i: int, rows: int) -> Any:
    if isinstance(tree, dict):
        return {k: _col(v, i, rows) for k, v in tree.items()}
    return tree[:rows, i]


def _play_single(env: gym.Env, policy: Any, seed: int, widths: tuple[int, int | None], max_steps: int) -> _Episode:
    obs, info = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    episode = _Episode(seed, obs, _info_row(info, None, *widths))
    for _ in range(max_steps):
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        episode.add(action, obs, reward, terminated, truncated, _info_row(info, None, *widths))
        if terminated or truncated:
            return episode
    raise ValueError(f"an episode ran past {max_steps} steps")


def collect(env_id: str, make_policy: Callable[[Any], Any], episodes: int, out: str | Path, *,
            env_kwargs: dict[str, Any] | None = None, policy_label: str = "policy", noise: float = 0.0,
            seed: int = 0, batch: int = 16, dataset_id: str | None = None, max_steps: int = 1_000_000,
            progress: Callable[[int, int], None] | None = None, description: str = "") -> dict[str, Any]:
    """Play ``episodes`` episodes of ``make_policy`` (``env -> policy``) on ``env_id`` and write them
    as a Minari dataset under ``out``. Returns a summary (dataset id, episodes, steps, mean return,
    mode, episodes/s, interrupted). KeyboardInterrupt stops after the last finished batch."""
    minari, EpisodeBuffer = _minari()
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"--noise {noise}: must lie in [0, 1]")
    env_kwargs = dict(env_kwargs or {})
    dataset_id = dataset_id or dataset_id_for(env_id, policy_label, noise)
    env = gym.make(env_id, **env_kwargs)
    widths = _widths(env)
    vec = None
    if gym.spec(env_id).vector_entry_point is not None and batch > 1:
        vec = gym.make_vec(env_id, num_envs=min(batch, episodes), vectorization_mode="vector_entry_point",
                           autoreset_mode=AutoresetMode.DISABLED, **env_kwargs)
    metadata = {"policy": policy_label, "noise": float(noise), "seed_first": int(seed),
                "seeds": f"episode k is reset with seed {seed} + k", "env_kwargs": repr(env_kwargs)}
    written, returns, steps, mode = 0, [], 0, "batched" if vec is not None else "per-episode"
    start = time.perf_counter()
    interrupted = False
    try:
        with _data_path(Path(out)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # Minari's 'author is None' reminders
            dataset = minari.create_dataset_from_buffers(
                dataset_id, [], env=env, algorithm_name=policy_label, author="sysgym",
                author_email="https://github.com/sysgym", code_permalink="sysgym dataset",
                description=description or f"{policy_label} on {env_id}", data_format="hdf5",
                jpeg_encoding=False)
            storage = dataset.storage
            storage.update_metadata({"sysgym": metadata})
            policy = vec_policy = None
            if vec is not None:
                try:
                    vec_policy = _Noisy(make_policy(vec), vec, noise, seed)
                    probe_obs, probe_info = vec.reset(seed=seed)
                    shape = np.shape(vec_policy.policy.act(probe_obs, probe_info))
                    if shape[:1] != (vec.num_envs,):
                        raise TypeError("not batched")
                except PROBE_ERRORS:
                    vec.close()
                    vec, vec_policy, mode = None, None, "per-episode"
            if vec is None:
                policy = _Noisy(make_policy(env), env, noise, seed)
            while written < episodes:
                if vec is not None:
                    n = min(vec.num_envs, episodes - written)
                    batch_eps = _play_batch(vec, vec_policy, seed + written, widths, max_steps)[:n]
                else:
                    batch_eps = [_play_single(env, policy, seed + written, widths, max_steps)]
                with _deferred_sigint():
                    storage.update_episodes([e.buffer(written + j, EpisodeBuffer) for j, e in enumerate(batch_eps)])
                written += len(batch_eps)
                returns += [float(np.sum(e.rewards)) for e in batch_eps]
                steps += sum(len(e.rewards) for e in batch_eps)
                if progress is not None:
                    progress(written, episodes)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        env.close()
        if vec is not None:
            vec.close()
    seconds = time.perf_counter() - start
    return {"dataset_id": dataset_id, "episodes": written, "steps": steps, "mode": mode,
            "mean_return": float(np.mean(returns)) if returns else float("nan"),
            "episodes_per_s": written / seconds if seconds > 0 else float("nan"), "interrupted": interrupted}
