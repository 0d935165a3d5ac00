"""Ray RLlib (new API stack) for every sysgym environment, on one machine or a Ray cluster.

Install: ``pip install "sysgym[rllib]"`` (``ray[rllib]==2.60.0`` and ``torch==2.13.0``; RLlib pins
``gymnasium==1.2.2``, sysgym's floor). Ray is imported only inside the functions below, so importing
this module is free and no environment module imports Ray.

::

    import ray
    from sysgym.integrations.rllib import ppo_config

    ray.init()                                   # or ray.init(address="auto") on a cluster node
    config = ppo_config("sysgym/DeepRM-CompactSparse-v0", env_config={"scenario": 3},
                        num_env_runners=4, num_envs_per_env_runner=64)
    algo = config.build_algo()
    for _ in range(10):
        result = algo.train()
    result["env_runners"]["sysgym"]["mean_slowdown"]   # episode metrics reach RLlib's results
    algo.save_to_path("/tmp/deeprm")

What it does for RLlib:

* :func:`register_all` registers an env creator (``ray.tune.registry.register_env``) for every
  registered ID under the ID itself (``config.environment("sysgym/ABR-v0")``) and the PettingZoo
  multi-flow congestion-control env under :data:`MULTI_FLOW_CC`. Creators registered this way are
  visible in every Ray worker; a ``gym.register`` done only in the driver is not
  (``NamespaceNotFound: Namespace sysgym not found``). The creators import sysgym themselves.
* The native batched vector env is RLlib's fast path: with
  ``gym_env_vectorize_mode="vector_entry_point"`` (what :func:`configure` sets) RLlib's
  ``SingleAgentEnvRunner`` asks the creator for ``num_envs_per_env_runner`` sub-envs and gets one
  kernel-backed ``VectorEnv`` (NextStep autoreset, as RLlib expects) instead of that many Python envs.
* Observations become what RLlib's default networks read (:class:`ObservationAdapter`): a 1-D
  Box stays as it is; 2-D Boxes (ABR (6, 8), DeepRM image), MultiBinary (appointments) and Dict
  observations (DAG nodes and closure) are flattened into one float32 vector, which RLlib's
  default MLP encoder reads (it has no default encoder for 2-D Boxes or Dicts). Discrete envs get
  ``{"observations": <that vector>, "action_mask": float32 mask}`` from ``info["action_mask"]``,
  read by sysgym's :class:`~sysgym.integrations.rllib_masking.MaskedPPOTorchRLModule` (RLlib's
  default PPO module with masked logits set to the lowest float): masked actions are never sampled. ``env_config={"action_masking": False}`` turns that off.
* :func:`log_episode_metrics` (an ``on_episode_end`` callback that :func:`configure` installs)
  logs every ``info["episode_metrics"]`` entry, so they appear in ``result["env_runners"]["sysgym"]``
  (multi-agent: ``result["env_runners"]["sysgym"][agent][metric]``).
* :class:`RLlibPolicy` restores an RLModule from an RLlib checkpoint and acts with the
  ``act(obs, info)`` interface of sysgym's heuristics (so :func:`sysgym.agents.evaluation.evaluate`
  scores it next to them).
* :func:`ppo_defaults` maps sysgym's own PPO preset for an env's family onto RLlib's PPOConfig
  (network, train batch, minibatch, epochs, lr, ...); :func:`run_train` starts from it.
* :func:`count_restarted_env_runner` (an ``on_environment_created`` callback) counts, inside each
  env runner Ray restarted, the runner and the episodes its lost process was running, dropped:
  ``result["env_runners"]["sysgym_faults"]``; :func:`count_recreated_env_runners` counts those
  RLlib noticed: ``result["sysgym_faults"]``.
* :func:`run_train` is ``sysgym train --engine rllib`` (also ``examples/rllib_train.py``); Ctrl-C
  lets the iteration under way finish, saves its checkpoint (:func:`save_checkpoint`, atomic) and
  exits 130; a second Ctrl-C stops at once and keeps the last checkpoint saved.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sysgym.overrides import split_overrides

#: Name of the PettingZoo multi-flow congestion-control env (``sysgym.envs.cc.parallel_env``) in
#: RLlib's registry; ``env_config`` holds its kwargs (``n_flows`` 2 by default).
MULTI_FLOW_CC = "sysgym/CC-MultiFlow-v0"
#: Keys of the Dict observation RLlib's action-masking module reads.
OBS_KEY = "observations"
MASK_KEY = "action_mask"
#: ``env_config`` keys that the creators consume themselves (never passed to the env).
ACTION_MASKING = "action_masking"
VECTORIZE_MODES = ("vector_entry_point", "sync", "async")
#: Where :func:`log_episode_metrics` logs: ``result["env_runners"][METRICS_KEY][name]``.
METRICS_KEY = "sysgym"
#: Where the fault counters log: ``result["env_runners"][FAULTS_KEY]`` (:func:`count_restarted_env_runner`)
#: and ``result[FAULTS_KEY]`` (:func:`count_recreated_env_runners`).
FAULTS_KEY = "sysgym_faults"

INSTALL_HINT = 'Ray RLlib is not installed: pip install "sysgym[rllib]"'


def _require_ray() -> None:
    try:
        import ray  # noqa: F401
        import ray.rllib  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc


def env_ids() -> list[str]:
    """Every registered sysgym Gymnasium ID (single-agent)."""
    import sysgym

    return [entry.id for entry in sysgym.ENVIRONMENTS]


# ---------------------------------------------------------------------------------- observations
class ObservationAdapter:
    """Turns a sysgym observation (and its info) into what RLlib's default modules read.

    * 1-D Box (float32): unchanged (no copy);
    * any other space (2-D Box, MultiBinary, Dict without its ``action_mask`` entry, ...): one
      flat float32 vector, Dict entries in the space's key order, each flattened row-major (C
      order; Discrete / MultiDiscrete parts one-hot, as ``gymnasium.spaces.flatten`` does);
    * with ``masked`` (default: Discrete action spaces), the Dict
      ``{"observations": <vector>, "action_mask": float32 (n,)}``; the mask is ``info["action_mask"]``
      (or the observation's own ``action_mask`` entry).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space,
                 masked: bool | None = None):
        discrete = isinstance(action_space, spaces.Discrete)
        self.masked = discrete if masked is None else bool(masked)
        if self.masked and not discrete:
            raise ValueError(f"action masking needs a Discrete action space, got {action_space}")
        self.source_space = observation_space
        self.action_space = action_space
        if isinstance(observation_space, spaces.Dict):
            self._keys = [k for k in observation_space.spaces if k != MASK_KEY]
            parts = [observation_space[k] for k in self._keys]
        else:
            self._keys = None
            parts = [observation_space]
        self._parts = parts
        self._identity = (self._keys is None and isinstance(observation_space, spaces.Box)
                          and len(observation_space.shape) == 1
                          and observation_space.dtype == np.float32)
        if self._identity:
            flat = observation_space
        else:
            lows, highs = [], []
            for part in parts:
                box = spaces.flatten_space(part)
                lows.append(np.asarray(box.low, dtype=np.float32).ravel())
                highs.append(np.asarray(box.high, dtype=np.float32).ravel())
            flat = spaces.Box(np.concatenate(lows), np.concatenate(highs), dtype=np.float32)
        self.flat_space = flat
        if self.masked:
            n = int(action_space.n)
            self.observation_space: spaces.Space = spaces.Dict({
                OBS_KEY: flat, MASK_KEY: spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)})
        else:
            self.observation_space = flat

    # one observation
    def _flatten(self, obs: Any) -> np.ndarray:
        if self._identity:
            return obs
        values = [obs] if self._keys is None else [obs[k] for k in self._keys]
        rows = []
        for part, value in zip(self._parts, values):
            if _direct(part):
                rows.append(np.asarray(value, dtype=np.float32).ravel())
            else:
                rows.append(np.asarray(spaces.flatten(part, value), dtype=np.float32))
        return np.concatenate(rows) if len(rows) > 1 else rows[0].copy()

    def _mask(self, obs: Any, info: dict[str, Any] | None) -> np.ndarray:
        if info is not None and MASK_KEY in info:
            return np.asarray(info[MASK_KEY], dtype=np.float32)
        if isinstance(obs, dict) and MASK_KEY in obs:
            return np.asarray(obs[MASK_KEY], dtype=np.float32)
        return np.ones(int(self.action_space.n), dtype=np.float32)

    def single(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        """The RLlib observation of one env."""
        flat = self._flatten(obs)
        if not self.masked:
            return flat
        return {OBS_KEY: flat, MASK_KEY: self._mask(obs, info)}

    # a batch (leading dimension B)
    def _flatten_batch(self, obs: Any, num_envs: int) -> np.ndarray:
        if self._identity:
            return obs
        values = [obs] if self._keys is None else [obs[k] for k in self._keys]
        rows = []
        for part, value in zip(self._parts, values):
            if _direct(part):
                rows.append(np.asarray(value, dtype=np.float32).reshape(num_envs, -1))
            else:
                rows.append(np.stack([np.asarray(spaces.flatten(part, value[i]), dtype=np.float32)
                                      for i in range(num_envs)]))
        return np.concatenate(rows, axis=1) if len(rows) > 1 else np.ascontiguousarray(rows[0])

    def batch(self, obs: Any, infos: dict[str, Any], num_envs: int) -> Any:
        """The RLlib observations of a vector env's batch (infos in Gymnasium's dict form)."""
        flat = self._flatten_batch(obs, num_envs)
        if not self.masked:
            return flat
        if MASK_KEY in infos:
            mask = np.asarray(infos[MASK_KEY], dtype=np.float32)
        elif isinstance(obs, dict) and MASK_KEY in obs:
            mask = np.asarray(obs[MASK_KEY], dtype=np.float32)
        else:
            mask = np.ones((num_envs, int(self.action_space.n)), dtype=np.float32)
        return {OBS_KEY: flat, MASK_KEY: mask}


def _direct(space: spaces.Space) -> bool:
    """Spaces whose flattened form is the array itself, row-major (Box, MultiBinary)."""
    return isinstance(space, (spaces.Box, spaces.MultiBinary))


class RLlibObservationWrapper(gym.Wrapper):
    """A single sysgym env with the observations of :class:`ObservationAdapter` (sync mode)."""

    def __init__(self, env: gym.Env, action_masking: bool | None = None):
        super().__init__(env)
        self.adapter = ObservationAdapter(env.observation_space, env.action_space, action_masking)
        self.observation_space = self.adapter.observation_space

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return self.adapter.single(obs, info), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.adapter.single(obs, info), reward, terminated, truncated, info


class RLlibObservationVectorWrapper(gym.vector.VectorWrapper):
    """A native sysgym vector env with the observations of :class:`ObservationAdapter`."""

    def __init__(self, env: gym.vector.VectorEnv, action_masking: bool | None = None):
        super().__init__(env)
        self.adapter = ObservationAdapter(env.single_observation_space, env.single_action_space,
                                          action_masking)
        self.single_observation_space = self.adapter.observation_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space,
                                                              env.num_envs)

    def reset(self, **kwargs: Any):
        obs, infos = self.env.reset(**kwargs)
        return self.adapter.batch(obs, infos, self.num_envs), infos

    def step(self, actions: Any):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        return self.adapter.batch(obs, infos, self.num_envs), rewards, terminated, truncated, infos


# ---------------------------------------------------------------------------------- env creators
def _kwargs(config: Any) -> dict[str, Any]:
    return dict(config or {})  # an EnvContext is a dict with extra attributes: keep the dict


class EnvCreator:
    """RLlib env creator for one sysgym ID (picklable; imports sysgym in the worker).

    Called with RLlib's ``EnvContext`` (the user's ``env_config``: env kwargs, plus
    ``"action_masking"``). RLlib's ``SingleAgentEnvRunner`` adds ``"num_envs"`` when it builds the
    vector env through the ``vector_entry_point`` mode: the creator then returns the native
    batched env (one kernel call per step for all sub-envs); without it, one single env.
    """

    def __init__(self, env_id: str):
        self.env_id = env_id

    def __call__(self, config: Any = None) -> gym.Env | gym.vector.VectorEnv:
        import sysgym  # noqa: F401  (registers the sysgym/ namespace in this process)

        kwargs = _kwargs(config)
        masking = kwargs.pop(ACTION_MASKING, None)
        num_envs = kwargs.pop("num_envs", None)
        if num_envs is None:
            return RLlibObservationWrapper(gym.make(self.env_id, **kwargs), masking)
        vec = gym.make_vec(self.env_id, num_envs=int(num_envs),
                           vectorization_mode="vector_entry_point", **kwargs)
        return RLlibObservationVectorWrapper(vec, masking)

    def __repr__(self) -> str:
        return f"EnvCreator({self.env_id!r})"


class MultiFlowCCCreator:
    """RLlib env creator for the PettingZoo multi-flow CC env (``ParallelPettingZooEnv``).

    ``env_config`` holds the kwargs of :func:`sysgym.envs.cc.parallel_env` (``n_flows``, 2 by
    default, and every CC kwarg). Agents are ``flow_0`` ... ``flow_{n-1}``; observations are 1-D
    Boxes, so RLlib's default modules read them as they are.
    """

    def __call__(self, config: Any = None) -> Any:
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

        from sysgym.envs.cc import parallel_env

        kwargs = _kwargs(config)
        kwargs.pop(ACTION_MASKING, None)
        kwargs.pop("num_envs", None)
        return ParallelPettingZooEnv(parallel_env(**kwargs))

    def __repr__(self) -> str:
        return "MultiFlowCCCreator()"


def register_all() -> list[str]:
    """Register an RLlib env creator for every sysgym ID and for :data:`MULTI_FLOW_CC`.

    The names are the Gymnasium IDs (``config.environment("sysgym/DAG-EGS-v0")``). Safe to call
    more than once, before or after ``ray.init()``. Returns the registered names.
    """
    _require_ray()
    from ray.tune.registry import register_env

    names = env_ids()
    for env_id in names:
        register_env(env_id, EnvCreator(env_id))
    register_env(MULTI_FLOW_CC, MultiFlowCCCreator())
    return [*names, MULTI_FLOW_CC]


def make_env(env: str, env_config: dict[str, Any] | None = None) -> Any:
    """The env RLlib builds for ``env`` (one single env), here in this process: to look at its
    spaces or act with a restored module."""
    if env == MULTI_FLOW_CC:
        return MultiFlowCCCreator()(env_config)
    return EnvCreator(env)(env_config)


# ---------------------------------------------------------------------------------- metrics
def log_episode_metrics(*, episode: Any, metrics_logger: Any = None, env_runner: Any = None,
                        **kwargs: Any) -> None:
    """``on_episode_end`` callback: log ``info["episode_metrics"]`` of the episode's last step.

    Single agent: ``result["env_runners"]["sysgym"][metric]``; multi-agent:
    ``result["env_runners"]["sysgym"][agent][metric]``; each a mean over the last
    ``metrics_num_episodes_for_smoothing`` episodes, like RLlib's ``episode_return_mean``.
    """
    if metrics_logger is None:
        return
    window = 100
    config = getattr(env_runner, "config", None)
    if config is not None:
        window = getattr(config, "metrics_num_episodes_for_smoothing", window) or window
    agent_episodes = getattr(episode, "agent_episodes", None)
    if agent_episodes is None:
        _log_metrics(metrics_logger, (METRICS_KEY,), _last_info(episode), window)
    else:
        for agent, agent_episode in agent_episodes.items():
            _log_metrics(metrics_logger, (METRICS_KEY, str(agent)), _last_info(agent_episode), window)


def _last_info(episode: Any) -> dict[str, Any]:
    try:
        info = episode.get_infos(-1)
    except (IndexError, KeyError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _log_metrics(logger: Any, prefix: tuple[str, ...], info: dict[str, Any], window: int) -> None:
    metrics = info.get("episode_metrics")
    if not isinstance(metrics, dict):
        return
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        logger.log_value((*prefix, str(name)), number, reduce="mean", window=window)


def count_restarted_env_runner(*, env_runner: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
    """``on_environment_created`` callback: count a restarted env runner and what its lost
    process took with it, from inside the restarted runner.

    Ray restarts a lost env-runner actor (``config.fault_tolerance(restart_failed_env_runners=True)``,
    RLlib's default); its constructor builds the env anew through the registered creator with the
    same ``env_config`` and starts fresh episodes. The episodes that were running in the lost
    process (one per sub-env) are dropped, never continued or merged. When the runner is such a
    restarted actor (Ray's ``was_current_actor_reconstructed``), this logs
    ``result["env_runners"]["sysgym_faults"]``: ``env_runners_restarted`` (1) and
    ``episodes_in_flight_dropped`` (its sub-envs), running totals that arrive with the restarted
    runner's first sample. Counted here because RLlib's own ``on_env_runners_recreated`` fires
    only when one of its calls failed first: a runner Ray restarted between two iterations (e.g.
    after its node died) answers the next call without an error and is never reported there.
    """
    if metrics_logger is None or not _restarted_actor():
        return
    num_envs = int(getattr(env_runner, "num_envs", 0) or getattr(env_runner.config, "num_envs_per_env_runner", 1) or 1)
    metrics_logger.log_value((FAULTS_KEY, "env_runners_restarted"), 1, reduce="lifetime_sum")
    metrics_logger.log_value((FAULTS_KEY, "episodes_in_flight_dropped"), num_envs, reduce="lifetime_sum")


def _restarted_actor() -> bool:
    """Whether this process is a Ray actor that Ray restarted (False in the driver)."""
    import ray

    if not ray.is_initialized():  # get_runtime_context() would start a local Ray instance
        return False
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:
        return False
    try:
        return bool(context.was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - the GCS query failed: count nothing rather than crash the runner
        return False


def count_recreated_env_runners(*, algorithm: Any, env_runner_group: Any = None,
                                env_runner_indices: Any = (), is_evaluation: bool = False,
                                **kwargs: Any) -> None:
    """``on_env_runners_recreated`` callback: count the env runners RLlib noticed were lost and
    brought back (it re-syncs their state): ``result["sysgym_faults"]["env_runners_recreated"]``,
    a running total. A lower bound of :func:`count_restarted_env_runner`'s count, which also sees
    restarts RLlib never noticed.
    """
    if is_evaluation or not env_runner_indices:
        return
    algorithm.metrics.log_value((FAULTS_KEY, "env_runners_recreated"), len(env_runner_indices),
                                reduce="lifetime_sum")


#: ``learner_config_dict`` key of the learners' torch threads (:func:`set_learner_threads`).
LEARNER_THREADS = "sysgym_torch_threads"


def set_learner_threads(*, algorithm: Any, **kwargs: Any) -> None:
    """``on_algorithm_init`` callback: ``torch.set_num_threads`` in every learner (with
    ``num_learners=0``, RLlib's default, that is the algorithm's own process) to
    ``learner_config_dict["sysgym_torch_threads"]``, when set.

    With torch's default (one thread per core), each 64-sample minibatch update of DeepRM's
    2x64 network took 321 ms instead of 31 ms with one thread on the shared, loaded 2-core
    machine, where the learner's threads compete with the env runners
    (``python -m benchmarks.bench_rllib --profile``, benchmarks/results/rllib/profile.md).
    """
    threads = (getattr(algorithm.config, "learner_config_dict", None) or {}).get(LEARNER_THREADS)
    group = getattr(algorithm, "learner_group", None)
    if not threads or group is None:
        return
    group.foreach_learner(_torch_threads, threads=int(threads))


def _torch_threads(learner: Any, threads: int = 1) -> int:
    import torch

    torch.set_num_threads(threads)
    return torch.get_num_threads()


# ---------------------------------------------------------------------------------- configs
def configure(config: Any, env: str, *, env_config: dict[str, Any] | None = None,
              num_env_runners: int | None = None, num_envs_per_env_runner: int | None = None,
              vectorize: str = "vector_entry_point", action_masking: bool | None = None,
              model_config: dict[str, Any] | None = None, policies: str = "shared",
              register: bool = True, learner_torch_threads: int | None = 1,
              normalize_reward: bool | None = None) -> Any:
    """Set up an RLlib ``AlgorithmConfig`` (new API stack) for a sysgym env; returns it.

    Args:
        config: e.g. ``PPOConfig()`` (any algorithm; masking needs PPO, see below).
        env: a sysgym ID or :data:`MULTI_FLOW_CC`.
        env_config: env kwargs (``{"scenario": 3}``; for :data:`MULTI_FLOW_CC` ``{"n_flows": 3}``).
        num_env_runners: env-runner processes (Ray actors; on a cluster they spread over nodes).
        num_envs_per_env_runner: sub-envs each runner steps at once.
        vectorize: ``"vector_entry_point"`` (default: the native batched kernel, the fast path),
            ``"sync"`` (Gymnasium's ``SyncVectorEnv`` of single envs) or ``"async"``.
            Multi-agent envs are always ``"sync"`` (RLlib vectorises them only that way).
        action_masking: Dict observations with the action mask and sysgym's
            ``MaskedPPOTorchRLModule``; default: for Discrete actions when ``config`` is PPO
            (the module is PPO's). Without masking, invalid actions are the env's business (DeepRM
            counts them and waits, DAG rejects them), as with any unmasked agent.
        model_config: RLlib ``model_config`` (e.g. ``{"fcnet_hiddens": [64, 64]}``).
        policies: multi-agent only: ``"shared"`` (one module for every flow) or ``"per_agent"``.
        register: call :func:`register_all` first (needed once per driver).
        learner_torch_threads: torch threads of each learner (:func:`set_learner_threads`); 1 as
            our PPO's ``torch_threads``; None leaves torch's default (all cores).
        normalize_reward: PPO only: the learner divides rewards by the running std of the
            discounted return, as sysgym's PPO (:mod:`sysgym.integrations.rllib_rewards`); default:
            what sysgym's PPO preset for ``env`` does (on for DeepRM, ABR, DAG, CC).
    """
    _require_ray()
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    if register:
        register_all()
    if vectorize not in VECTORIZE_MODES:
        raise ValueError(f"vectorize must be one of {VECTORIZE_MODES}, got {vectorize!r}")
    env_config = dict(env_config or {})
    multi_agent = env == MULTI_FLOW_CC
    if not multi_agent and env not in env_ids():
        raise ValueError(f"unknown sysgym environment {env!r}; known: {', '.join(env_ids())}, "
                         f"{MULTI_FLOW_CC}")
    runners: dict[str, Any] = {"gym_env_vectorize_mode": "sync" if multi_agent else vectorize}
    if num_env_runners is not None:
        runners["num_env_runners"] = int(num_env_runners)
    if num_envs_per_env_runner is not None:
        runners["num_envs_per_env_runner"] = int(num_envs_per_env_runner)
    config = config.env_runners(**runners).callbacks(on_episode_end=log_episode_metrics,
                                                     on_environment_created=count_restarted_env_runner,
                                                     on_env_runners_recreated=count_recreated_env_runners,
                                                     on_algorithm_init=set_learner_threads)
    if learner_torch_threads is not None:
        if int(learner_torch_threads) < 1:
            raise ValueError(f"learner_torch_threads must be >= 1 or None, got {learner_torch_threads}")
        config = config.learners(learner_config_dict={**(config.learner_config_dict or {}),
                                                      LEARNER_THREADS: int(learner_torch_threads)})
    if normalize_reward is None:
        normalize_reward = isinstance(config, PPOConfig) and _preset(env, env_config).normalize_reward
    if normalize_reward:
        if not isinstance(config, PPOConfig):
            raise ValueError("normalize_reward uses sysgym's PPO learner; pass normalize_reward=False "
                             "for other algorithms")
        from .rllib_rewards import NORMALIZE_REWARD, RewardNormalizingPPOTorchLearner

        config = config.training(learner_class=RewardNormalizingPPOTorchLearner).learners(
            learner_config_dict={**(config.learner_config_dict or {}), NORMALIZE_REWARD: True})

    if multi_agent:
        config = config.environment(env, env_config=env_config)
        return _configure_multi_agent(config, env_config, policies, model_config)

    probe = gym.make(env, **{k: v for k, v in env_config.items() if k != ACTION_MASKING})
    discrete = isinstance(probe.action_space, spaces.Discrete)
    probe.close()
    masking = env_config.get(ACTION_MASKING, action_masking)
    if masking is None:
        masking = discrete and isinstance(config, PPOConfig)
    masking = bool(masking)
    if masking and not discrete:
        raise ValueError(f"{env} has no Discrete action space to mask")
    if masking and not isinstance(config, PPOConfig):
        raise ValueError("action masking uses sysgym's MaskedPPOTorchRLModule, which is PPO's; "
                         "pass action_masking=False for other algorithms")
    env_config[ACTION_MASKING] = masking
    config = config.environment(env, env_config=env_config)
    if masking:
        from .rllib_masking import MaskedPPOTorchRLModule

        spec = RLModuleSpec(module_class=MaskedPPOTorchRLModule,
                            model_config=dict(model_config or {}))
        config = config.rl_module(rl_module_spec=spec)
    elif model_config is not None:
        config = config.rl_module(model_config=dict(model_config))
    return config


def _configure_multi_agent(config: Any, env_config: dict[str, Any], policies: str,
                           model_config: dict[str, Any] | None) -> Any:
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from sysgym.envs.cc import parallel_env

    probe = parallel_env(**{k: v for k, v in env_config.items() if k != ACTION_MASKING})
    agents = list(probe.possible_agents)
    probe.close()
    if policies == "shared":
        module_ids = ["shared"]
        mapping = _map_to_shared
    elif policies == "per_agent":
        module_ids = agents
        mapping = _map_to_self
    else:
        raise ValueError(f"policies must be 'shared' or 'per_agent', got {policies!r}")
    spec = MultiRLModuleSpec(rl_module_specs={m: RLModuleSpec() for m in module_ids})
    config = config.multi_agent(policies=set(module_ids), policy_mapping_fn=mapping)
    if model_config is not None:
        return config.rl_module(rl_module_spec=spec, model_config=dict(model_config))
    return config.rl_module(rl_module_spec=spec)


def _map_to_shared(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    return "shared"


def _map_to_self(agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
    return str(agent_id)


def ppo_config(env: str, **kwargs: Any) -> Any:
    """``configure(PPOConfig(), env, **kwargs)``: PPO on the new API stack for a sysgym env."""
    _require_ray()
    from ray.rllib.algorithms.ppo import PPOConfig

    return configure(PPOConfig(), env, **kwargs)


# ---------------------------------------------------------------------------------- acting
def module_path(checkpoint: str | Path, module_id: str | None = None) -> Path:
    """Where an Algorithm checkpoint keeps the RLModule ``module_id`` (default: single-agent)."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    return (Path(checkpoint) / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE
            / (module_id or DEFAULT_MODULE_ID))


class RLlibPolicy:
    """An RLModule from an RLlib checkpoint, acting with sysgym's ``act(obs, info)`` interface.

    ``obs`` and ``info`` are the raw sysgym ones (from ``gym.make(env_id)``); the policy applies
    the same :class:`ObservationAdapter` as training did. Deterministic by default (the
    distribution's mode: argmax over the unmasked logits, the Gaussian mean); ``deterministic=False``
    samples. Continuous actions are unsquashed into the action space as RLlib's env runners do.
    """

    def __init__(self, module: Any, observation_space: spaces.Space, action_space: spaces.Space,
                 deterministic: bool = True):
        import torch

        self.module = module
        self.deterministic = deterministic
        module_space = getattr(module, "observation_space", None)
        masked = isinstance(module_space, spaces.Dict) and MASK_KEY in module_space.spaces
        self.adapter = ObservationAdapter(observation_space, action_space, masked)
        self.action_space = action_space
        self._torch = torch
        module.eval()

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, env: str, env_config: dict[str, Any] | None = None,
                        module_id: str | None = None, deterministic: bool = True) -> RLlibPolicy:
        """Restore module ``module_id`` of an Algorithm checkpoint (``algo.save_to_path``) for env
        ``env`` (a sysgym ID, or :data:`MULTI_FLOW_CC` with ``module_id`` the agent's module)."""
        _require_ray()
        from ray.rllib.core.rl_module.rl_module import RLModule

        path = module_path(checkpoint, module_id)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no RLModule in checkpoint {checkpoint}")
        module = RLModule.from_checkpoint(str(path))
        kwargs = {k: v for k, v in (env_config or {}).items() if k != ACTION_MASKING}
        if env == MULTI_FLOW_CC:
            from sysgym.envs.cc import parallel_env

            probe = parallel_env(**kwargs)
            agent = probe.possible_agents[0]
            obs_space, act_space = probe.observation_space(agent), probe.action_space(agent)
        else:
            import sysgym  # noqa: F401

            probe = gym.make(env, **kwargs)
            obs_space, act_space = probe.observation_space, probe.action_space
        probe.close()
        return cls(module, obs_space, act_space, deterministic)

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        from ray.rllib.core.columns import Columns

        torch = self._torch
        x = self.adapter.single(obs, info)
        if isinstance(x, dict):
            batch_obs: Any = {k: torch.as_tensor(np.asarray(v))[None] for k, v in x.items()}
        else:
            batch_obs = torch.as_tensor(np.asarray(x))[None]
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: batch_obs})
            if Columns.ACTIONS in out:
                action = out[Columns.ACTIONS][0]
            else:
                dist = self.module.get_inference_action_dist_cls().from_logits(
                    out[Columns.ACTION_DIST_INPUTS])
                if self.deterministic:
                    dist = dist.to_deterministic()
                action = dist.sample()[0]
        action = action.numpy()
        if isinstance(self.action_space, spaces.Discrete):
            return int(action)
        from ray.rllib.utils.spaces.space_utils import unsquash_action

        return np.asarray(unsquash_action(action, self.action_space), dtype=self.action_space.dtype)


# ---------------------------------------------------------------------------------- defaults
#: RLlib ``model_config`` keys that ``sysgym train --engine rllib key=value`` may set.
MODEL_KEYS = ("fcnet_hiddens", "fcnet_activation", "head_fcnet_hiddens", "vf_share_layers")


def ppo_defaults(env: str, env_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """RLlib PPO settings equal to sysgym's own PPO preset for ``env``'s family.

    The preset is :func:`sysgym.agents.ppo.config.default_config` (BRACIS'21 Table 2 for DeepRM;
    the reference runs' settings for ABR, DAG and CC-Discrete; CleanRL's ``ppo.py`` for other
    discrete envs, ``ppo_continuous_action.py`` for continuous ones; :data:`MULTI_FLOW_CC` takes
    CC-v0's). Mapped onto RLlib's PPOConfig: the rollout
    (``n_steps * num_envs``) is ``train_batch_size_per_learner``; ``batch_size`` is
    ``minibatch_size``; ``n_epochs`` ``num_epochs``; ``gae_lambda`` ``lambda_``; ``clip_coef``
    ``clip_param``; ``ent_coef`` ``entropy_coeff``; ``max_grad_norm`` ``grad_clip`` (global
    norm); no KL penalty (``use_kl_loss=False``, as our PPO). The value loss: ours is
    ``vf_coef * 0.5 * (V - target)^2``, RLlib's ``vf_loss_coeff * min((V - target)^2,
    vf_clip_param)``, so ``vf_loss_coeff = vf_coef / 2`` and ``vf_clip_param = inf``. (RLlib's
    default ``vf_clip_param=10`` zeroes the critic's gradient wherever the squared error passes 10:
    with DeepRM's returns near -100 or CC's near 5e5 the critic then hardly learns.) The network
    (``hidden_sizes``, ``activation``, ``shared_trunk``) goes to ``model_config`` with linear heads. Reward normalisation is carried over by :func:`configure` (a learner
    connector, :mod:`sysgym.integrations.rllib_rewards`), not by these settings. Not carried over
    (RLlib's PPO has no such switch): learning-rate annealing, observation normalisation (which
    the ABR and CC-Discrete presets also use), and the encoder (DAG's graph network becomes an MLP
    of the same widths). Returns ``{setting: value, ..., "model_config": {...}}``.
    """
    preset = _preset(env, env_config)
    return {
        "train_batch_size_per_learner": int(preset.n_steps * preset.num_envs),
        "minibatch_size": int(preset.batch_size),
        "num_epochs": int(preset.n_epochs),
        "lr": float(preset.lr),
        "gamma": float(preset.gamma),
        "lambda_": float(preset.gae_lambda),
        "clip_param": float(preset.clip_coef),
        "entropy_coeff": float(preset.ent_coef),
        # ours is vf_coef * 0.5 * (V - target)^2, RLlib's vf_loss_coeff * min((V - target)^2, vf_clip_param)
        "vf_loss_coeff": 0.5 * float(preset.vf_coef),
        "vf_clip_param": math.inf,
        "grad_clip": float(preset.max_grad_norm),
        "grad_clip_by": "global_norm",
        "use_kl_loss": False,
        "model_config": {"fcnet_hiddens": list(preset.hidden_sizes),
                         "fcnet_activation": preset.activation,
                         "head_fcnet_hiddens": [],
                         "vf_share_layers": bool(preset.shared_trunk)},
    }


def _preset(env: str, env_config: dict[str, Any] | None) -> Any:
    """sysgym PPO's preset (``default_config``) for ``env``; :data:`MULTI_FLOW_CC` takes CC-v0's."""
    from sysgym.agents.ppo.config import default_config

    if env == MULTI_FLOW_CC:
        return default_config("sysgym/CC-v0", env_kwargs={})
    return default_config(env, env_kwargs={k: v for k, v in (env_config or {}).items() if k != ACTION_MASKING})


# ---------------------------------------------------------------------------------- sysgym train
def add_train_arguments(parser: argparse.ArgumentParser, *, standalone: bool = False) -> None:
    """The RLlib options of ``sysgym train`` (``standalone``: also --env/--steps/--seed/--out)."""
    if standalone:
        parser.add_argument("--env", default=None,
                            help=f"environment ID, e.g. sysgym/DeepRM-Compact-v0, or {MULTI_FLOW_CC} "
                                 "(required unless --resume)")
        parser.add_argument("--steps", type=int, default=None,
                            help="environment steps to train for, in all (required unless --resume)")
        parser.add_argument("--num-envs", type=int, default=None,
                            help="sub-envs per env runner (default: 8)")
        parser.add_argument("--seed", type=int, default=None, help="seed (default 0)")
        parser.add_argument("--out", default=None, help="output folder (default: runs/<env>_rllib_s<seed>); "
                                                         "must be new or empty unless --force")
        parser.add_argument("--force", action="store_true", help="train into a non-empty --out")
        parser.add_argument("--resume", default=None, metavar="DIR",
                            help="continue the run saved in DIR (its checkpoint, written every "
                                 "--checkpoint-every iterations and on Ctrl-C / SIGTERM) with its own settings")
        parser.add_argument("overrides", nargs="*", metavar="key=value",
                            help="AlgorithmConfig settings (lr=3e-4 train_batch_size_per_learner=2000) "
                                 "or env kwargs as env.KEY=value")
    parser.add_argument("--num-env-runners", type=int, default=2,
                        help="RLlib env-runner processes (--engine rllib; default: 2)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (--engine rllib): 'auto', HOST:PORT or ray://HOST:10001; "
                             "default: $RAY_ADDRESS, else a local Ray instance")
    parser.add_argument("--vectorize", choices=VECTORIZE_MODES, default="vector_entry_point",
                        help="how env runners batch their sub-envs (--engine rllib)")
    parser.add_argument("--policies", choices=("shared", "per_agent"), default="shared",
                        help=f"{MULTI_FLOW_CC} only: one module for all flows or one per flow")
    parser.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                        help="--engine rllib: save <out>/checkpoint every N iterations (0: only at the end "
                             "and on Ctrl-C); --resume DIR continues from it")


def parse_overrides(items: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``["lr=3e-4", "env.scenario=9"]`` -> (AlgorithmConfig settings, env kwargs); comma lists
    become lists, as RLlib's configs hold them."""
    settings, env_kwargs = split_overrides(items)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}, env_kwargs


def _result_value(result: dict[str, Any], *keys: str, default: Any = None) -> Any:
    node: Any = result
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def progress_row(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One ``progress.csv`` row from an ``algo.train()`` result (global step, SPS, returns, metrics)."""
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_LEN_MEAN,
        EPISODE_RETURN_MEAN,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        NUM_EPISODES_LIFETIME,
    )

    runners = result.get(ENV_RUNNER_RESULTS, {})
    steps = _result_value(runners, NUM_ENV_STEPS_SAMPLED_LIFETIME,
                          default=result.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0))
    row: dict[str, Any] = {
        "iteration": result.get("training_iteration"),
        "global_step": int(steps or 0),
        "seconds": round(seconds, 3),
        "episodes": int(runners.get(NUM_EPISODES_LIFETIME, 0) or 0),
    }
    if EPISODE_RETURN_MEAN in runners:
        row["return_mean"] = float(runners[EPISODE_RETURN_MEAN])
    if EPISODE_LEN_MEAN in runners:
        row["length_mean"] = float(runners[EPISODE_LEN_MEAN])
    for name, value in sorted(_flat_metrics(runners.get(METRICS_KEY, {})).items()):
        row[f"metric/{name}"] = value
    return row


def _flat_metrics(node: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(_flat_metrics(value, f"{prefix}{key}/" if isinstance(value, dict) else f"{prefix}{key}"))
    else:
        try:
            out[prefix.rstrip("/")] = float(node)
        except (TypeError, ValueError):
            pass
    return out


def run_train(args: argparse.Namespace) -> int:
    """``sysgym train --engine rllib``: PPO on RLlib until ``args.steps`` env steps are sampled.

    Settings start from :func:`ppo_defaults` (our PPO's preset for the env's family); ``key=value``
    overrides any of them. ``--out`` is checked before any work (non-empty needs ``--force``).
    Writes ``<out>/run.json`` (the command's settings), ``<out>/progress.csv`` (one row per
    iteration) and the RLlib checkpoint ``<out>/checkpoint`` every ``--checkpoint-every``
    iterations and at the end (restore with ``Algorithm.from_checkpoint`` or :class:`RLlibPolicy`).
    Ctrl-C / SIGTERM saves that checkpoint and returns 130 with one line. ``--resume DIR``
    continues such a run from its checkpoint (weights, optimizer, iteration and step counters)
    with its own settings, until ``--steps`` (default: the run's own) env steps in all.
    """
    try:
        _require_ray()
    except ImportError as exc:  # a one-line input error for the command line
        raise ValueError(str(exc)) from None
    from sysgym.agents.runs import (
        INTERRUPTED_EXIT,
        interrupted_message,
        prepare_out_dir,
        stop_signals,
    )
    from sysgym.bench import format_table

    if getattr(args, "checkpoint_every", 10) < 0:
        raise ValueError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    resume = getattr(args, "resume", None)
    if resume is None and (args.env is None or args.steps is None):
        raise ValueError("--env and --steps are required (or --resume DIR to continue a saved run)")
    if resume is not None:
        out, rows = _prepare_resume(args)
    else:
        args.seed = 0 if args.seed is None else args.seed
        out = prepare_out_dir(args.out if args.out else Path("runs") / f"{args.env.split('/')[-1]}_rllib_s{args.seed}",
                              force=bool(getattr(args, "force", False)))
        rows = []
    config = train_config(args)
    checkpoint = out / "checkpoint"
    if resume is None:
        _write_run_settings(out, args)
    try:  # Ray first: ray.init installs its own SIGTERM handler (a stack dump and abort), which
        started_here = _init_ray(args)  # the handlers of stop_signals below then replace
    except KeyboardInterrupt:
        print(interrupted_message("train", "stopped before training started; nothing saved"), file=sys.stderr)
        return INTERRUPTED_EXIT
    try:
        with stop_signals() as stop:
            try:
                algo = _build(config, checkpoint if resume is not None else None)
            except KeyboardInterrupt:
                print(interrupted_message("train", "stopped before training started; nothing saved"),
                      file=sys.stderr)
                return INTERRUPTED_EXIT
            try:
                if resume is not None:
                    _check_resumed(algo, config, checkpoint)
                    rows = _rows_of_checkpoint(rows, algo.iteration, out)
                done = len(rows)
                _train_loop(algo, args.steps, out, rows, stop, every=getattr(args, "checkpoint_every", 10))
            except StoppedMidIteration as exc:
                print(interrupted_message("train", exc.kept(checkpoint)), file=sys.stderr)
                return INTERRUPTED_EXIT
            except KeyboardInterrupt:
                kept = _save_on_interrupt(algo, checkpoint, rows[done:], algo.iteration)
                print(interrupted_message("train", kept), file=sys.stderr)
                return INTERRUPTED_EXIT
            else:
                save_checkpoint(algo, checkpoint)
            finally:
                with _ignoring_sigint():
                    algo.stop()
    finally:
        if started_here:
            import ray

            with _ignoring_sigint():
                ray.shutdown()
    if not rows:
        print(f"nothing to train: {args.steps} env steps reached already\ncheckpoint: {checkpoint}")
        return 0
    last = rows[-1]
    summary = [["env steps", last["global_step"]], ["seconds", f"{float(last['seconds']):.1f}"],
               ["steps/s", f"{float(last['sps']):.0f}"], ["episodes", last["episodes"]]]
    if last.get("return_mean") not in (None, ""):
        summary.append(["recent return", f"{float(last['return_mean']):.4g}"])
    summary += [[k.split("/", 1)[1], f"{float(v):.4g}"] for k, v in last.items()
                if k.startswith("metric/") and v not in (None, "")]
    print(format_table(summary, ["", "final"]))
    print(f"checkpoint: {checkpoint}\nlogs: {out}/progress.csv")
    return 0


#: What ``<out>/run.json`` keeps of a ``sysgym train --engine rllib`` command (``--resume`` reads it).
RUN_SETTINGS = ("env", "steps", "seed", "num_envs", "num_env_runners", "vectorize", "policies", "overrides")
RUN_FILE = "run.json"
#: The config fields a resumed run must share with the checkpoint it continues.
RESUME_FIELDS = ("env", "env_config", "train_batch_size_per_learner", "minibatch_size", "num_epochs", "lr",
                 "gamma", "lambda_", "clip_param", "entropy_coeff", "vf_loss_coeff", "vf_clip_param", "grad_clip")


def _write_run_settings(out: Path, args: argparse.Namespace) -> None:
    import json

    from sysgym.agents.runs import atomic_write_text

    settings = {key: getattr(args, key, None) for key in RUN_SETTINGS}
    settings["overrides"] = list(settings["overrides"] or [])
    atomic_write_text(out / RUN_FILE, json.dumps(settings, indent=1) + "\n")


def _prepare_resume(args: argparse.Namespace) -> tuple[Path, list[dict[str, Any]]]:
    """``--resume DIR``: the run's settings into ``args`` (what the command line repeats must
    agree), its output folder and its ``progress.csv`` rows."""
    import json

    out = Path(args.resume)
    settings_file = out / RUN_FILE
    if not (out / "checkpoint").is_dir():
        raise FileNotFoundError(f"--resume {out}: no checkpoint folder there (a sysgym train --engine rllib --out)")
    try:
        saved = json.loads(settings_file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"--resume {out}: no {RUN_FILE} (not a sysgym train --engine rllib run)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"--resume {settings_file}: unreadable ({exc})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("env"), str):
        raise ValueError(f"--resume {settings_file}: field 'env' missing")
    if getattr(args, "out", None) and Path(args.out).resolve() != out.resolve():
        raise ValueError(f"--resume {out} continues in its own folder; drop --out {args.out}")
    for key, flag in (("env", "--env"), ("seed", "--seed")):
        given = getattr(args, key, None)
        if given is not None and given != saved.get(key):
            raise ValueError(f"--resume {out}: the run has {flag} {saved.get(key)}, not {given}")
    given = list(getattr(args, "overrides", None) or [])
    if given and given != saved.get("overrides", []):
        raise ValueError(f"--resume {out} continues with the run's own settings "
                         f"{' '.join(saved.get('overrides', [])) or '(none)'}; got {' '.join(given)}")
    steps = args.steps
    for key in RUN_SETTINGS:
        setattr(args, key, saved.get(key))
    if steps is not None:
        args.steps = steps
    if not isinstance(args.steps, int):
        raise ValueError(f"--resume {settings_file}: field 'steps' is not an integer")
    return out, _read_progress(out / "progress.csv")


def _read_progress(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``progress.csv`` (numbers parsed; empty cells kept as "")."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    for line, row in enumerate(rows, start=2):
        for key, value in row.items():
            try:
                row[key] = int(value) if key in ("iteration", "global_step", "episodes") else (
                    float(value) if value not in ("", None) else "")
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}: field {key!r} is not a number: {value!r}") from None
    return rows


def _check_resumed(algo: Any, config: Any, checkpoint: Path) -> None:
    """Refuse a checkpoint whose config differs from the run's own (one line, the first field)."""
    saved = algo.config
    for field in RESUME_FIELDS:
        want, have = getattr(config, field, None), getattr(saved, field, None)
        if field == "env_config":
            want, have = dict(want or {}), dict(have or {})
        if want != have:
            raise ValueError(f"--resume: {checkpoint} was trained with {field}={have!r}, "
                             f"this run has {field}={want!r}")


def train_config(args: argparse.Namespace) -> Any:
    """The PPOConfig of ``sysgym train --engine rllib``: :func:`ppo_defaults` for the env's family,
    then the ``key=value`` overrides (AlgorithmConfig fields, :data:`MODEL_KEYS`, ``env.KEY``)."""
    settings, env_kwargs = parse_overrides(getattr(args, "overrides", None) or [])
    num_envs = args.num_envs if getattr(args, "num_envs", None) is not None else 8
    defaults = ppo_defaults(args.env, env_kwargs)
    model_config = {**defaults.pop("model_config"),
                    **{k: _model_value(k, settings.pop(k)) for k in MODEL_KEYS if k in settings}}
    normalize = settings.pop("normalize_reward", None)
    if normalize is not None and not isinstance(normalize, bool):
        raise ValueError(f"normalize_reward takes true or false, got {normalize!r}")
    config = ppo_config(args.env, env_config=env_kwargs, num_env_runners=args.num_env_runners,
                        num_envs_per_env_runner=num_envs, vectorize=getattr(args, "vectorize", "vector_entry_point"),
                        policies=getattr(args, "policies", "shared"), model_config=model_config,
                        normalize_reward=normalize)
    config = config.debugging(seed=args.seed)
    known = _config_settings(config) if settings else set()
    for key in settings:
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known) + list(MODEL_KEYS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"unknown RLlib setting {key!r}{hint} (env kwargs take the env. prefix)")
    return config.update_from_dict({**defaults, **settings})


def _model_value(key: str, value: Any) -> Any:
    """A ``key=value`` model setting as RLlib reads it: layer sizes are a list (``fcnet_hiddens=64``
    is one layer), a bad one is refused here rather than in every env runner."""
    if key not in ("fcnet_hiddens", "head_fcnet_hiddens"):
        return value
    sizes = list(value) if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        raise ValueError(f"{key} takes positive layer sizes (e.g. {key}=64,64), got {value!r}")
    return sizes


def _init_ray(args: argparse.Namespace) -> bool:
    """Join ``--address`` / ``$RAY_ADDRESS`` (else start a local Ray) unless Ray is up already;
    whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    address = getattr(args, "address", None) or os.environ.get("RAY_ADDRESS")
    ray.init(address=address, log_to_driver=False, include_dashboard=False)
    return True


def _build(config: Any, checkpoint: Path | None = None) -> Any:
    """The Algorithm of ``config``, or restored from ``checkpoint`` (``Algorithm.from_checkpoint``)."""
    if checkpoint is not None:
        from ray.rllib.algorithms.algorithm import Algorithm

        return Algorithm.from_checkpoint(str(checkpoint))
    return config.build_algo()


class StoppedMidIteration(KeyboardInterrupt):
    """A second stop signal ended an RLlib iteration half-way: the Algorithm's state (weights,
    step counters) is half-updated, so it is not saved; the last checkpoint on disk stays."""

    def __init__(self, iteration: int, saved: int | None) -> None:
        super().__init__(iteration)
        self.iteration, self.saved = iteration, saved

    def kept(self, checkpoint: Path) -> str:
        """The interrupted message's account of what was kept."""
        if self.saved is None:
            return f"stopped during iteration {self.iteration}; no checkpoint was saved in this run"
        return (f"stopped during iteration {self.iteration}, not saved (half-updated); the checkpoint of "
                f"iteration {self.saved} in {checkpoint} is kept (--resume {checkpoint.parent} continues it)")


def _rows_of_checkpoint(rows: list[dict[str, Any]], iteration: int, out: Path) -> list[dict[str, Any]]:
    """A resumed run's ``progress.csv`` rows up to the checkpoint's ``iteration``: rows after it
    (a run stopped hard after its last save) are said and dropped, as they are trained again."""
    kept = [row for row in rows if int(row["iteration"]) <= iteration]
    if len(kept) < len(rows):
        print(f"sysgym train: {out / 'progress.csv'} has {len(rows) - len(kept)} row(s) after the checkpoint's "
              f"iteration {iteration}; they are dropped and trained again", file=sys.stderr)
    return kept


def _train_loop(algo: Any, steps: int, out: Path, rows: list[dict[str, Any]], stop: Any, every: int = 0) -> None:
    """``algo.train()`` until ``steps`` env steps; a ``progress.csv`` row per iteration (after the
    ``rows`` already there: a resumed run's) and the checkpoint every ``every`` iterations.

    ``stop`` is the :class:`sysgym.agents.runs.StopRequest` of the command's ``stop_signals``: a
    stop signal during an iteration lets it finish and be logged, then raises
    ``KeyboardInterrupt`` at that boundary (where a save is consistent); a second signal raises
    :class:`StoppedMidIteration` at once."""
    start = time.perf_counter() - (float(rows[-1]["seconds"]) if rows else 0.0)
    done = len(rows)
    saved = algo.iteration or None  # the iteration of the checkpoint on disk (a resumed run's)
    with open(out / "progress.csv", "w", newline="") as handle:
        writer: csv.DictWriter | None = _rewrite(handle, rows) if rows else None
        while not rows or int(rows[-1]["global_step"]) < steps:
            current = algo.iteration + 1
            notice = (f"sysgym train: stop requested; finishing iteration {current}, then saving "
                      "the checkpoint (signal again to stop now without saving it)")
            try:
                with stop.deferred(notice):
                    result = algo.train()
                    row = progress_row(result, time.perf_counter() - start)
                    row["sps"] = round(row["global_step"] / max(row["seconds"], 1e-9), 1)
                    rows.append(row)
                    if writer is None or set(row) - set(writer.fieldnames):
                        writer = _rewrite(handle, rows)
                    else:
                        writer.writerow(row)
                    handle.flush()
            except KeyboardInterrupt:
                raise StoppedMidIteration(current, saved) from None
            ret = f"{row['return_mean']:.4g}" if "return_mean" in row else "-"
            print(f"iter {row['iteration']}: {row['global_step']} steps, {row['sps']:.0f} steps/s, "
                  f"return {ret}", file=sys.stderr)
            stop.check()
            if every and (len(rows) - done) % every == 0 and int(rows[-1]["global_step"]) < steps:
                with _ignoring_sigint():
                    save_checkpoint(algo, out / "checkpoint")
                saved = int(row["iteration"])


def _save_on_interrupt(algo: Any, checkpoint: Path, rows: list[dict[str, Any]], iteration: int) -> str:
    """Save the Algorithm as it stands (``rows``: this session's iterations); the message."""
    done = (f"after iteration {iteration} ({rows[-1]['global_step']} env steps)" if rows
            else "before this session's first iteration ended")
    try:
        with _ignoring_sigint():
            save_checkpoint(algo, checkpoint)
    except Exception as exc:  # noqa: BLE001 - report in the one line, never a traceback
        return f"stopped {done}; the checkpoint could not be saved ({type(exc).__name__}: {exc})"
    return (f"stopped {done}; RLlib checkpoint saved to {checkpoint} "
            f"(--resume {checkpoint.parent} continues it, RLlibPolicy.from_checkpoint acts with it)")


def save_checkpoint(algo: Any, checkpoint: str | Path) -> Path:
    """``algo.save_to_path`` into a temporary folder beside ``checkpoint``, then renamed onto it:
    an interrupted save never leaves a half-written checkpoint in its place."""
    import shutil
    import tempfile

    checkpoint = Path(checkpoint).resolve()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=checkpoint.parent, prefix=f".{checkpoint.name}.", suffix=".tmp"))
    old = None
    try:
        algo.save_to_path(str(tmp))
        if checkpoint.exists():
            old = checkpoint.with_name(f"{tmp.name}.old")
            os.replace(checkpoint, old)
        os.replace(tmp, checkpoint)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not checkpoint.exists():
            os.replace(old, checkpoint)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return checkpoint


class _ignoring_sigint:
    """Inside the block a second Ctrl-C is ignored (while a checkpoint is written or Ray stops)."""

    def __enter__(self) -> None:
        import signal
        import threading

        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _config_settings(config: Any) -> set[str]:
    """The public, non-callable attributes of an AlgorithmConfig (what ``key=value`` may set)."""
    names = set()
    for name in dir(config):
        if name.startswith("_"):
            continue
        try:
            value = getattr(config, name)
        except Exception:  # noqa: BLE001 - some properties refuse before the config is built
            continue
        if not callable(value):
            names.add(name)
    return names


def _rewrite(handle: Any, rows: list[dict[str, Any]]) -> csv.DictWriter:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    handle.seek(0)
    handle.truncate()
    writer = csv.DictWriter(handle, fields, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return writer


def main(argv: list[str] | None = None) -> int:
    """``python -m sysgym.integrations.rllib --env ID --steps N ...`` (same as ``sysgym train
    --engine rllib``)."""
    parser = argparse.ArgumentParser(prog="python -m sysgym.integrations.rllib",
                                     description="Train PPO with Ray RLlib on a sysgym environment.")
    add_train_arguments(parser, standalone=True)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except (ValueError, ImportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before run_train took over the signal
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
