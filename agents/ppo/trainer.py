"""PPO (Schulman et al., "Proximal Policy Optimization Algorithms", 2017) over a native vector env.

One iteration collects ``n_steps`` steps from every sub-env of a ``gymnasium.vector.VectorEnv``
(one batched policy call and one batched ``step`` per time step: no per-env Python loop), computes
GAE(lambda) advantages and runs ``n_epochs`` passes of minibatch updates on the clipped surrogate,
the (optionally clipped) value loss and an entropy bonus, with advantage normalisation per
minibatch, global gradient-norm clipping and optional linear learning-rate annealing.

Episode boundaries: terminated episodes are not bootstrapped; truncated ones are bootstrapped from
the value of their final observation. Both Gymnasium autoreset modes are handled: with
``SameStep`` (what :class:`PPOTrainer` asks sysgym envs for) the final observation comes from
``info["final_obs"]``; with ``NextStep`` the reset step that follows an episode end is stored but
masked out of the loss (see :mod:`sysgym.agents.ppo.buffer`); ``Disabled`` envs are reset here.
Semi-MDP envs (sparse DeepRM variants) are trained on their step rewards as given.

Runs with an output folder save a resumable ``checkpoint.pt`` every ``checkpoint_seconds``; a
first SIGINT / SIGTERM / SIGHUP finishes the iteration in progress, saves it and raises
:class:`TrainingInterrupted`; :meth:`PPOTrainer.resume` continues such a checkpoint with the same
result as an uninterrupted run. A non-finite loss or weight stops training with
:class:`TrainingDiverged` (a ``ValueError`` naming the setting to lower).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from ..runs import StopRequest, atomic_write_text, stop_signals
from ..serialization import check_finite_tensors, load_json_text
from .buffer import RolloutBuffer
from .checkpoint import (
    array_from_data,
    array_to_data,
    check_network_size,
    load_checkpoint,
    save_checkpoint,
)
from .config import PPOConfig
from .fastact import NumpyActor
from .fastgrad import ManualGradients, parameter_order, sparse_columns, supports
from .logger import TrainingLogger
from .networks import ActorCritic
from .observations import ObservationAdapter, RunningMeanStd
from .optim import FlatAdam, flatten_parameters
from .policy import PPOPolicy

TRAINING_FORMAT = "sysgym-ppo-training/1"
MAX_ROLLOUT_BYTES = 2 * 2**30  # the rollout buffer plus the update's shuffled copy


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal at the end of an iteration; ``checkpoint`` resumes it."""

    def __init__(self, signal_name: str, checkpoint: Path, global_step: int):
        super().__init__(signal_name)
        self.checkpoint, self.global_step = checkpoint, global_step


class TrainingDiverged(ValueError):
    """A loss or weight became NaN or infinite (nothing is saved from that point on)."""


def make_vector_env(env_id: str, num_envs: int, **env_kwargs: Any) -> VectorEnv:
    """``make_vec`` through the env's native ``vector_entry_point`` (SameStep autoreset).

    IDs without a vector entry point fall back to Gymnasium's ``SyncVectorEnv``.
    """
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                           autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
    else:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **env_kwargs)
    return env


@dataclass
class TrainResult:
    """What :meth:`PPOTrainer.train` returns: per-iteration log rows, steps, time, checkpoint path.

    ``start_step`` is the step a resumed run started from (0 for a new run); ``sps`` counts the
    steps of this call only.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    global_step: int = 0
    seconds: float = 0.0
    checkpoint: Path | None = None
    start_step: int = 0

    @property
    def sps(self) -> float:
        return (self.global_step - self.start_step) / self.seconds if self.seconds > 0 else 0.0


class PPOTrainer:
    """Trains a PPO agent on a sysgym (or any Gymnasium) environment.

    Args:
        env: an environment ID (made with :func:`make_vector_env`, ``config.num_envs`` sub-envs and
            ``config.training_env_kwargs``) or an existing ``VectorEnv`` in any autoreset mode.
        config: the PPO settings (see :func:`sysgym.agents.ppo.default_config` for presets).
        out_dir: where logs and ``checkpoint.pt`` go; None keeps everything in memory.
    """

    def __init__(self, env: str | VectorEnv, config: PPOConfig, out_dir: str | Path | None = None):
        self.config = config
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if config.torch_threads > cpus:
            raise ValueError(f"torch_threads={config.torch_threads} is more than the {cpus} CPUs this process may use")
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        if isinstance(env, str):
            self.env_id: str | None = env
            self.env = make_vector_env(env, config.num_envs, **config.training_env_kwargs)
        else:
            self.env_id = env.spec.id if getattr(env, "spec", None) is not None else None
            self.env = env
            if env.num_envs != config.num_envs:
                self.config = config = config.replace(num_envs=env.num_envs)
        self.autoreset = AutoresetMode(self.env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space
        self.out_dir = Path(out_dir) if out_dir is not None else None

        where = f"PPO settings for {self.env_id or 'this env'}"
        check_network_size(self.observation_space, self.action_space, config, where)
        _check_rollout_bytes(self.observation_space, self.action_space, config)
        self.model = ActorCritic(self.observation_space, self.action_space, config)
        self.head = self.model.head
        self.params = parameter_order(self.model)  # the flat vectors' layout
        columns = sparse_columns(self.model) if config.manual_gradients else None  # large inputs: one per row
        self.flat_params, self.flat_grads = flatten_parameters(self.model, self.params, columns)
        self.optimizer = FlatAdam(self.flat_params, config.lr, config.adam_eps, max_grad_norm=config.max_grad_norm,
                                  members=self.params)
        self.manual = (ManualGradients(self.model, self.flat_params, self.flat_grads)
                       if config.manual_gradients and supports(self.model) else None)
        self.fast_actor = NumpyActor(self.manual, config.seed) if self.manual is not None else None
        self.adapter = ObservationAdapter(self.observation_space, config.normalize_obs, config.clip_obs)
        self.buffer = RolloutBuffer(config.n_steps, config.num_envs, self.adapter.shapes(),
                                    self.head.action_shape, self.head.action_dtype,
                                    self.head.mask_size if self.head.masked else 0)
        self.return_rms = RunningMeanStd() if config.normalize_reward else None
        self._discounted = np.zeros(config.num_envs, dtype=np.float64)
        self._ep_return = np.zeros(config.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(config.num_envs, dtype=np.int64)
        self._resetting = np.zeros(config.num_envs, dtype=bool)
        self.ent_coef = config.ent_coef   # the entropy coefficient of the next update (see ent_coef_final)
        self.global_step = 0
        self.iteration = 0
        self._obs: Any = None
        self._info: dict[str, Any] = {}
        self.logger: TrainingLogger | None = None
        self._position = (0, config.num_updates)   # (iterations done, iterations planned) of this run
        self._resume_at: int | None = None          # set by load_training_state
        self._logger_state: dict[str, Any] | None = None
        self._last_save = time.monotonic()
        self.last_checkpoint: tuple[Path, int] | None = None  # (path, global step) of the last save

    # ------------------------------------------------------------------ public API
    def train(self, total_steps: int | None = None,
              until: Callable[[PPOTrainer], bool] | None = None) -> TrainResult:
        """Run PPO for ``total_steps`` env steps (default ``config.total_steps``).

        ``until(trainer)``, if given, is called after every iteration (``trainer.policy``,
        ``global_step`` and ``logger.history`` are current); when it returns True training ends
        there, as if the total had been reached (e.g. ``until=lambda t: score(t.policy) >= target``).
        After :meth:`resume` it continues the restored run up to that total. With an output folder
        a first SIGINT / SIGTERM / SIGHUP stops after the iteration in progress, saves
        ``checkpoint.pt`` and raises :class:`TrainingInterrupted`; a second one stops at once.
        """
        cfg = self.config
        total = cfg.total_steps if total_steps is None else int(total_steps)
        if not 1 <= total <= 10**13:
            raise ValueError(f"total_steps must lie in [1, 1e13], got {total}")
        iterations = max(1, -(-total // cfg.rollout_size))
        resumed, first, self._resume_at = self._resume_at is not None, self._resume_at or 0, None
        self._position = (first, iterations)
        self.logger = TrainingLogger(self.out_dir, iterations * cfg.rollout_size, cfg.tensorboard, cfg.progress,
                                     tensorboard_seconds=cfg.tensorboard_seconds,
                                     resume_step=self.global_step if resumed else None)
        if self._logger_state is not None:
            self.logger.load_state_dict(self._logger_state)
            self._logger_state = None
        if self.out_dir is not None:
            settings = {"env_id": self.env_id, "autoreset_mode": self.autoreset.value, **cfg.to_dict()}
            atomic_write_text(self.out_dir / "config.json", json.dumps(settings, indent=1, default=str))
        if self._obs is None:
            # Runs with different seeds get disjoint sub-env seeds (seed s: s*B ... s*B + B-1);
            # Gymnasium's s + i would give seeds 0 and 1 all but one input stream in common.
            self._obs, self._info = self.env.reset(seed=[cfg.seed * cfg.num_envs + i for i in range(cfg.num_envs)])
        result = TrainResult(start_step=self.global_step)
        start = time.perf_counter()
        self._last_save = time.monotonic()
        try:
            # overflow on the way to NaN is reported once, by _check_finite, not as numpy warnings
            with _blas_threads(cfg.torch_threads), self._stop_requests() as stop, \
                    np.errstate(over="ignore", invalid="ignore"):
                for it in range(first, iterations):
                    with stop.deferred(f"sysgym train: stop requested; finishing iteration {it + 1}, then saving "
                                       "checkpoint.pt (signal again to stop now without saving it)"):
                        self._iteration(it, iterations)
                        reached = until is not None and bool(until(self))
                    if stop.requested:
                        path = self.save(self.out_dir / "checkpoint.pt")
                        raise TrainingInterrupted(stop.signal, path, self.global_step)
                    if reached:
                        break
        finally:
            result.seconds = time.perf_counter() - start
            self.logger.close()
        result.history = self.logger.history
        result.global_step = self.global_step
        if self.out_dir is not None:
            result.checkpoint = self.save(self.out_dir / "checkpoint.pt")
        return result

    def _stop_requests(self) -> contextlib.AbstractContextManager[StopRequest]:
        """Stop signals, recorded for the loop (only with an output folder: without one there is
        nowhere to save, and Ctrl-C stops at once as usual)."""
        return stop_signals() if self.out_dir is not None else contextlib.nullcontext(StopRequest())

    def _iteration(self, it: int, iterations: int) -> None:
        cfg = self.config
        if cfg.anneal_lr:
            self.optimizer.lr = cfg.lr * (1.0 - it / iterations)
        if cfg.ent_coef_final is not None:
            self.ent_coef = cfg.ent_coef + (cfg.ent_coef_final - cfg.ent_coef) * it / max(iterations - 1, 1)
        t0 = time.perf_counter()
        self.collect_rollout()
        stats = self.update()
        self.iteration += 1
        self._check_finite(stats)
        self._position = (it + 1, iterations)
        stats["sps"] = cfg.rollout_size / (time.perf_counter() - t0)
        stats["lr"] = self.optimizer.lr
        stats["ent_coef"] = self.ent_coef
        self.logger.iteration(self.global_step, stats, cfg.rollout_size)
        if self.out_dir is None:
            return
        if cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0:
            self.save(self.out_dir / f"checkpoint_{self.global_step}.pt")
        if cfg.checkpoint_seconds and time.monotonic() - self._last_save >= cfg.checkpoint_seconds:
            self.save(self.out_dir / "checkpoint.pt")
            self._last_save = time.monotonic()

    def _check_finite(self, stats: dict[str, float]) -> None:
        """Stop with :class:`TrainingDiverged` when a loss or a weight is NaN or infinite."""
        bad = [k for k in ("policy_loss", "value_loss", "entropy", "approx_kl") if not math.isfinite(stats[k])]
        if not bad and np.isfinite(self.flat_params.numpy()).all():
            return
        what = f"the {bad[0].replace('_', ' ')} became {stats[bad[0]]}" if bad else "the weights became non-finite"
        cfg = self.config
        hint = f"lower lr (now {cfg.lr:g})"
        if not cfg.normalize_reward:
            hint += " or turn on normalize_reward"
        kept = f"; {self.last_checkpoint[0]} (step {self.last_checkpoint[1]}) is kept" if self.last_checkpoint else ""
        raise TrainingDiverged(f"training diverged at update {self.iteration} (step {self.global_step}): "
                               f"{what}; {hint}{kept}")

    def policy(self, deterministic: bool = True, seed: int | None = None) -> PPOPolicy:
        """The current agent as a :class:`PPOPolicy` (shares the network; frozen copy of obs stats)."""
        adapter = ObservationAdapter(self.observation_space, self.config.normalize_obs, self.config.clip_obs)
        adapter.load_state_dict(self.adapter.state_dict())
        return PPOPolicy(self.model, adapter, deterministic, seed)

    def save(self, path: str | Path, training_state: bool = True) -> Path:
        """Write a checkpoint (atomically); with ``training_state`` :meth:`resume` can continue it."""
        extra = {"return_rms": self.return_rms.state_dict() if self.return_rms else None}
        self.model.eval()
        path = save_checkpoint(path, self.model, self.adapter, self.config, self.observation_space,
                               self.action_space, self.env_id, self.global_step, extra,
                               self.training_state() if training_state else None)
        self.last_checkpoint = (path, self.global_step)
        return path

    # ------------------------------------------------------------------ resume
    def training_state(self) -> dict[str, Any]:
        """Everything besides weights and statistics that the next iteration depends on (plain data)."""
        get_state = getattr(self.env, "get_state", None)
        env_state = None
        if callable(get_state) and self._obs is not None:
            snap = get_state()
            env_state = {k: snap[k] for k in ("format", "class", "num_envs", "config")}
            env_state["arrays"] = {k: array_to_data(v) for k, v in snap["arrays"].items()}
        mask = self._info.get("action_mask") if isinstance(self._info, dict) else None
        logger = self.logger.state_dict() if self.logger is not None else self._logger_state
        return {
            "format": TRAINING_FORMAT,
            "iteration": self.iteration,
            "position": list(self._position),
            "optimizer": self.optimizer.state_dict(),
            "torch_generator": self.generator.get_state(),
            "torch_global": torch.get_rng_state(),
            "numpy_actor": json.dumps(self.fast_actor.state_dict()) if self.fast_actor is not None else None,
            "ent_coef": float(self.ent_coef),
            "counters": {k: array_to_data(getattr(self, k))
                         for k in ("_discounted", "_ep_return", "_ep_length", "_resetting")},
            "obs": None if self._obs is None else _obs_to_data(self._obs),
            "action_mask": None if mask is None else array_to_data(np.asarray(mask)),
            "env": env_state,
            "logger": json.dumps(logger) if logger is not None else None,
        }

    @classmethod
    def resume(cls, checkpoint: str | Path | dict[str, Any], env: str | VectorEnv | None = None,
               total_steps: int | None = None, out_dir: str | Path | None = None) -> PPOTrainer:
        """A trainer that continues the run saved in ``checkpoint`` (a file, a run folder or the
        payload :func:`load_checkpoint` read).

        ``env`` defaults to the checkpoint's env ID (callers reading untrusted files check it
        first); ``total_steps`` to the saved run's total (a larger one extends the run, and the
        learning-rate annealing then follows the new total); ``out_dir`` to the checkpoint's folder.
        """
        payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        where = payload["path"]
        if not isinstance(payload.get("training"), dict):
            raise ValueError(f"{where}: holds no training state to resume (it was not written by "
                             "`sysgym train` of this version); start a new run")
        config = PPOConfig.from_dict(payload["config"])
        if total_steps is not None:
            config = config.replace(total_steps=int(total_steps))
        env = payload["env_id"] if env is None else env
        if env is None:
            raise ValueError(f"{where}: the checkpoint names no env ID; pass the env")
        trainer = cls(env, config, Path(where).parent if out_dir is None else out_dir)
        try:
            trainer.load_training_state(payload)
        except BaseException:
            trainer.close()
            raise
        return trainer

    def load_training_state(self, payload: dict[str, Any]) -> None:
        """Restore weights, statistics, optimiser, RNGs, env state and counters from a checkpoint
        payload (:func:`load_checkpoint`); ValueError naming the file on anything that does not fit."""
        where = payload.get("path", "checkpoint")
        state = payload["training"]
        try:
            if state.get("format") != TRAINING_FORMAT:
                raise ValueError(f"training state format {state.get('format')!r} is not {TRAINING_FORMAT!r}")
            self._restore(payload, state, where)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"{where}: cannot resume from this checkpoint: {first}") from None

    def _restore(self, payload: dict[str, Any], state: dict[str, Any], where: str) -> None:
        self.model.load_state_dict(payload["model"])
        self.adapter.load_state_dict(payload["obs_normalization"])
        if self.return_rms is not None:
            self.return_rms.load_state_dict(payload["extra"]["return_rms"])
        self.global_step = payload["global_step"]
        opt = state["optimizer"]
        for key in ("exp_avg", "exp_avg_sq"):
            if not isinstance(opt[key], torch.Tensor) or opt[key].shape != self.flat_params.shape:
                raise ValueError(f"optimizer {key} does not fit the network")
        check_finite_tensors(opt, where, "training state")
        self.optimizer.load_state_dict(opt)
        self.generator.set_state(state["torch_generator"])
        torch.set_rng_state(state["torch_global"])
        if self.fast_actor is not None:
            self.fast_actor.load_state_dict(load_json_text(state["numpy_actor"], "numpy_actor"))
        self.ent_coef = float(state["ent_coef"])
        for key, data in state["counters"].items():
            live = getattr(self, key)
            value = array_from_data(data, key)
            if key not in ("_discounted", "_ep_return", "_ep_length", "_resetting") or value.shape != live.shape:
                raise ValueError(f"counter {key!r} does not fit {self.config.num_envs} sub-envs")
            setattr(self, key, value.astype(live.dtype))
        if state["env"] is None:
            raise ValueError("it holds no env state (the env had no get_state)")
        env_state = dict(state["env"])
        env_state["arrays"] = {k: array_from_data(v, f"env array {k}") for k, v in env_state["arrays"].items()}
        self.env.set_state(env_state)
        obs = _obs_from_data(state["obs"])
        for key, shape in self.adapter.shapes().items():
            got = np.shape(obs[key] if self.adapter.dict_space else obs)
            if got != (self.config.num_envs, *shape):
                raise ValueError(f"saved observation {key!r} has shape {got}, expected {(self.config.num_envs, *shape)}")
        self._obs = obs
        mask = state["action_mask"]
        self._info = {} if mask is None else {"action_mask": array_from_data(mask, "action_mask")}
        if mask is not None and self.head.masked and self._info["action_mask"].shape != (self.config.num_envs, self.head.mask_size):
            raise ValueError(f"saved action mask has shape {self._info['action_mask'].shape}")
        self.iteration = int(state["iteration"])
        done, planned = (int(v) for v in state["position"])
        if not 0 <= done <= planned:
            raise ValueError(f"iteration {done} of {planned} is out of range")
        self._resume_at = done
        self._position = (done, planned)
        logger = state["logger"]
        self._logger_state = None if logger is None else load_json_text(logger, "logger state")

    # ------------------------------------------------------------------ rollout
    def collect_rollout(self) -> None:
        cfg, buf, env = self.config, self.buffer, self.env
        self.model.eval()
        obs, info = self._obs, self._info
        next_step = self.autoreset == AutoresetMode.NEXT_STEP
        act = self._act_numpy if self.fast_actor is not None else self._act_torch
        terminated_steps = np.zeros((cfg.n_steps, cfg.num_envs), dtype=bool)
        done_steps = np.zeros((cfg.n_steps, cfg.num_envs), dtype=bool)
        bonus = np.zeros((cfg.n_steps, cfg.num_envs))  # gamma * V(final obs) of truncated episodes
        all_valid = np.ones(cfg.num_envs, dtype=bool)
        frozen = self.manual.frozen_weights() if self.manual is not None else contextlib.nullcontext()
        with torch.no_grad(), frozen:
            for t in range(cfg.n_steps):
                obs, reward, terminated, truncated, info = env.step(act(obs, info, t))
                buf.rewards[t] = reward
                terminated_steps[t] = terminated
                done = np.logical_or(terminated, truncated, out=done_steps[t])
                ended = bool(done.any())
                if next_step:
                    valid = ~self._resetting
                    self._resetting = done
                    buf.valid[t] = valid
                else:
                    valid = all_valid
                    if ended:
                        truncated = np.asarray(truncated, dtype=bool)
                        if truncated.any():
                            bonus[t] = cfg.gamma * self._final_values(obs, info, truncated)
                        if self.autoreset == AutoresetMode.DISABLED:
                            obs, info = env.reset(options={"reset_mask": done.copy()})
                self._track_episodes(buf.rewards[t], done, valid, info, next_step, ended)
            if self.fast_actor is not None:
                last_value = self.fast_actor.value(self.adapter.to_arrays(obs))
            else:
                last_value = self.model.value(self.adapter.to_tensors(obs)).numpy()
        self._obs, self._info = obs, info
        # NextStep: a truncated step bootstraps from the next stored value, V(final obs);
        # SameStep / Disabled: the bootstrap is in ``bonus`` (see the buffer module)
        buf.bootstrap[:] = ~(terminated_steps if next_step else done_steps)
        buf.cont[:] = ~done_steps
        if not next_step:
            buf.valid[:] = True
        if self.return_rms is not None:
            buf.rewards[:] = self._scale_rewards(buf.rewards, done_steps, buf.valid)
        buf.rewards += bonus
        buf.compute_returns(last_value, cfg.gamma, cfg.gae_lambda)

    def _act_torch(self, obs: Any, info: dict[str, Any], t: int) -> Any:
        """Sample actions with the torch network, store step ``t`` in the buffer, return env actions."""
        buf = self.buffer
        tensors = self.adapter.to_tensors(obs, update=self.config.normalize_obs)
        mask = self._mask(info)
        params, value = self.model(tensors)
        action, logp = self.head.sample(params, None if mask is None else torch.from_numpy(mask), self.generator)
        for key, tensor in tensors.items():
            buf.obs[key][t] = tensor
        buf.actions[t] = action
        buf.logprobs[t] = logp
        if mask is not None:
            buf.masks[t] = torch.from_numpy(mask)
        buf.values[t] = value.numpy()
        return self.head.to_env(action)

    def _act_numpy(self, obs: Any, info: dict[str, Any], t: int) -> Any:
        """As :meth:`_act_torch` with :class:`NumpyActor` (MLP policies: less overhead per step)."""
        buf = self.buffer
        arrays = self.adapter.to_arrays(obs, update=self.config.normalize_obs)
        mask = self._mask(info)
        action, logp, value = self.fast_actor.step(arrays, mask)
        for key, array in arrays.items():
            buf.obs_np[key][t] = array
        buf.actions_np[t] = action
        buf.logprobs_np[t] = logp
        if mask is not None:
            buf.masks_np[t] = mask
        buf.values[t] = value
        return self.head.to_env(action)

    def _mask(self, info: dict[str, Any]) -> np.ndarray | None:
        """``info["action_mask"]`` as bool; a row allowing nothing is treated as unmasked."""
        if not self.head.masked:
            return None
        mask = info.get("action_mask")
        if mask is None:
            return None
        mask = np.asarray(mask, dtype=np.bool_)
        if not mask.any(axis=-1).all():
            mask = mask | ~mask.any(axis=-1, keepdims=True)
        return mask

    def _final_values(self, obs: Any, info: dict[str, Any], rows_mask: np.ndarray) -> np.ndarray:
        """V(final observation) of the sub-envs in ``rows_mask`` (0 elsewhere).

        SameStep envs report final observations in ``info["final_obs"]``; with autoreset
        'Disabled' the observation just returned is the final one.
        """
        rows = np.flatnonzero(rows_mask)
        if self.autoreset == AutoresetMode.SAME_STEP:
            final = self.adapter.stack([info["final_obs"][i] for i in rows])
        else:
            final = self.adapter.index(obs, rows)
        out = np.zeros(self.config.num_envs, dtype=np.float64)
        out[rows] = self.model.value(self.adapter.to_tensors(final)).numpy()
        return out

    def _scale_rewards(self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Divide a rollout's rewards by the running std of the discounted return.

        As Gymnasium's ``NormalizeReward`` / SB3's ``VecNormalize``, except that the statistics are
        updated once per rollout (with every step's discounted return) rather than at every step.
        """
        cfg = self.config
        returns = np.empty_like(rewards, dtype=np.float64)
        running = self._discounted
        for t in range(rewards.shape[0]):
            running = np.where(valid[t], running * cfg.gamma + rewards[t], running)
            returns[t] = running
            running = np.where(done[t], 0.0, running)
        self._discounted = running
        self.return_rms.update(returns[valid])
        scaled = rewards / np.sqrt(self.return_rms.var + 1e-8)
        return np.clip(scaled, -cfg.clip_reward, cfg.clip_reward)

    def _track_episodes(self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray,
                        info: dict[str, Any], next_step: bool, ended: bool) -> None:
        if next_step:
            self._ep_return += np.where(valid, reward, 0.0)
            self._ep_length += valid
            self.global_step += int(valid.sum())
        else:
            self._ep_return += reward
            self._ep_length += 1
            self.global_step += self.config.num_envs
        if not ended:
            return
        for i in np.flatnonzero(done):
            self.logger.episode(self.global_step, float(self._ep_return[i]), int(self._ep_length[i]),
                                _episode_metrics(info, i))
        self._ep_return[done] = 0.0
        self._ep_length[done] = 0

    # ------------------------------------------------------------------ update
    def update(self) -> dict[str, float]:
        """``n_epochs`` passes of minibatch gradient steps over the valid samples of the rollout.

        Returned losses, entropy, approx-KL and clip fraction are means over the last epoch's
        minibatches (over every epoch run when ``target_kl`` is set).
        """
        cfg = self.config
        if self.ent_coef != cfg.ent_coef:  # the entropy schedule's value for this update
            cfg = dataclasses.replace(cfg, ent_coef=self.ent_coef)
        self.model.train()
        data = self.buffer.flat()
        valid = data["valid"]
        fields = [data["obs"], data["masks"], data["actions"], data["logprobs"], data["advantages"],
                  data["returns"], data["values"]]
        if self.manual is not None:  # the numpy path works on numpy views of the same memory
            fields = [_as_numpy(f) for f in fields]
            if self.manual.sparse_rows:  # the observations are encoded once; minibatches are row ids
                self.manual.bind_rows(fields[0])
                self.manual.defer_first_layer = True
                fields[0] = np.arange(len(data["logprobs"]))
        n = len(valid)
        totals = np.zeros(5)
        count = 0
        last_kl = 0.0
        stop = False
        for epoch in range(cfg.n_epochs):
            # statistics come from the last epoch (every epoch when target_kl needs the KL)
            want_stats = cfg.target_kl is not None or epoch == cfg.n_epochs - 1
            order = valid[torch.randperm(n, generator=self.generator)]
            if self.manual is not None:
                order = order.numpy()
            # one gather per field and epoch; minibatches are then contiguous slices (views)
            shuffled = [_rows(f, order) for f in fields]
            for start in range(0, n, cfg.batch_size):
                batch = [_rows(f, slice(start, start + cfg.batch_size)) for f in shuffled]
                if self.manual is not None:
                    stats = self.manual(*batch, cfg, stats=want_stats)
                else:
                    stats = self._autograd_step(*batch, cfg=cfg).numpy()
                if self.manual is not None:  # a sparse first layer's gradient is made inside the Adam step
                    self.optimizer.step(self.flat_grads, self.manual.known_squares(), self.manual.deferred())
                else:
                    self.optimizer.step(self.flat_grads)
                if want_stats:
                    totals += stats
                    count += 1
                    last_kl = float(stats[3])
            if cfg.target_kl is not None and last_kl > cfg.target_kl:  # CleanRL: KL of the epoch's last minibatch
                stop = True
                break
        keep = valid.numpy()
        values_np = data["values"].numpy()[keep]
        returns_np = data["returns"].numpy()[keep]
        var_ret = float(np.var(returns_np))
        explained = float("nan") if var_ret == 0 else float(1.0 - np.var(returns_np - values_np) / var_ret)
        means = (totals / max(count, 1)).tolist()
        return {"policy_loss": means[0], "value_loss": means[1], "entropy": means[2], "approx_kl": means[3],
                "clip_fraction": means[4], "explained_variance": explained, "early_stop": float(stop)}

    def loss(self, obs, mask, actions, old_logp, advantages, returns, old_values,
             cfg: PPOConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The PPO loss of one minibatch (differentiable) and its [pg, value, entropy, KL, clip-frac]
        under ``cfg`` (default: the trainer's config)."""
        cfg = self.config if cfg is None else cfg
        params, new_value = self.model(obs)
        new_logp, entropy = self.head.evaluate(params, mask, actions)
        log_ratio = new_logp - old_logp
        ratio = log_ratio.exp()
        adv = advantages
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
        if cfg.clip_vloss:
            clipped = old_values + (new_value - old_values).clamp(-cfg.clip_coef, cfg.clip_coef)
            v_loss = 0.5 * torch.max((new_value - returns) ** 2, (clipped - returns) ** 2).mean()
        else:
            v_loss = 0.5 * ((new_value - returns) ** 2).mean()
        ent = entropy.mean()
        loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clip_frac = ((ratio - 1.0).abs() > cfg.clip_coef).float().mean()
            stats = torch.stack([pg_loss, v_loss, ent, approx_kl, clip_frac]).detach()
        return loss, stats

    def _autograd_step(self, *batch, cfg: PPOConfig) -> torch.Tensor:
        loss, stats = self.loss(*batch, cfg=cfg)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                   for p, g in zip(self.params, grads)], out=self.flat_grads)
        return stats

    def close(self) -> None:
        self.env.close()


def _check_rollout_bytes(observation_space: gym.Space, action_space: gym.Space, config: PPOConfig) -> None:
    """A ValueError before allocating when a rollout (and the update's copy of it) would be too big."""
    from .observations import observation_entries

    obs = sum(int(np.prod(s.shape or ())) for s in observation_entries(observation_space).values())
    actions = int(np.prod(action_space.shape or ())) or 1
    mask = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else 0
    per_step = 4 * obs + 8 * actions + mask + 4 * 8 + 1
    total = 2 * per_step * config.rollout_size
    if total > MAX_ROLLOUT_BYTES:
        raise ValueError(f"a rollout of n_steps * num_envs = {config.rollout_size:,} steps would take "
                         f"{total / 2**30:.1f} GiB (at most {MAX_ROLLOUT_BYTES / 2**30:.0f}); "
                         "lower n_steps or num_envs")


def _obs_to_data(obs: Any) -> dict[str, Any]:
    if isinstance(obs, dict):
        return {"dict": {k: array_to_data(np.asarray(v)) for k, v in obs.items()}}
    return {"array": array_to_data(np.asarray(obs))}


def _obs_from_data(data: dict[str, Any]) -> Any:
    if "dict" in data:
        return {k: array_from_data(v, f"observation {k}") for k, v in data["dict"].items()}
    return array_from_data(data["array"], "observation")


def _blas_threads(n: int) -> Any:
    """Cap numpy's BLAS threads at ``n`` (like ``torch_threads``) while training: the numpy paths'
    small matrix products only lose from extra threads on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (agents extra)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _as_numpy(field: Any) -> Any:
    if field is None:
        return None
    if isinstance(field, dict):
        return {k: v.numpy() for k, v in field.items()}
    return field.numpy()


def _rows(field: Any, index: Any) -> Any:
    """``field[index]`` for an array / tensor, a dict of them, or None."""
    if field is None:
        return None
    if isinstance(field, dict):
        return {k: v[index] for k, v in field.items()}
    return field[index]


def _episode_metrics(info: dict[str, Any], i: int) -> dict[str, float]:
    """``info["episode_metrics"]`` of sub-env ``i`` (vector layout, or inside ``final_info``)."""
    metrics = info.get("episode_metrics")
    if isinstance(metrics, dict):
        return {k: float(v[i]) for k, v in metrics.items() if not k.startswith("_")}
    final = info.get("final_info")   # SameStep: Gymnasium's vector layout inside final_info
    if isinstance(final, dict) and isinstance(final.get("episode_metrics"), dict) \
            and final["_episode_metrics"][i]:
        return {k: float(v[i]) for k, v in final["episode_metrics"].items() if not k.startswith("_")}
    if isinstance(final, np.ndarray) and isinstance(final[i], dict) \
            and isinstance(final[i].get("episode_metrics"), dict):   # one info dict per sub-env
        return {k: float(v) for k, v in final[i]["episode_metrics"].items() if not k.startswith("_")}
    return {}


def train(env_id: str, steps: int | None = None, out_dir: str | Path | None = None,
          config: PPOConfig | None = None, until: Callable[[PPOTrainer], bool] | None = None,
          **overrides: Any) -> tuple[PPOPolicy, TrainResult]:
    """Train PPO on ``env_id`` with the family preset (plus ``overrides``); returns (policy, result).
    ``until(trainer)`` may end training early (see :meth:`PPOTrainer.train`)."""
    from .config import default_config

    if config is None:
        config = default_config(env_id, **overrides)
    elif overrides:
        config = config.replace(**overrides)
    if steps is not None:
        config = config.replace(total_steps=int(steps))
    trainer = PPOTrainer(env_id, config, out_dir)
    try:
        result = trainer.train(until=until)
    finally:
        trainer.close()
    return trainer.policy(), result
