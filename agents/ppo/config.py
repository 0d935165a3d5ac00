"""PPO settings: one dataclass, per-family presets and ``key=value`` overrides from the command line.

Defaults follow CleanRL's PPO (Huang et al., "The 37 Implementation Details of Proximal Policy
Optimization", ICLR blog track 2022): discrete actions use ``ppo.py``'s values, continuous actions
``ppo_continuous_action.py``'s (observation and reward normalisation on). DeepRM environments use
Table 2 of de Freitas Cunha & Chaimowicz, "On the impact of MDP design for Reinforcement Learning
agents in Resource Management", BRACIS 2021: lr 1e-4, n_steps 50, minibatch 64, entropy 0.01,
lambda 0.95, clip 0.2, 10 epochs, gamma 0.99, value coefficient 0.5, one shared 2x64 trunk,
constant learning rate; plus reward normalisation (see ``DEEPRM_PRESET``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.agents.heuristics.base import family_of
from sysgym.envs.validate import suggestion
from sysgym.overrides import split_overrides

ENCODERS = ("auto", "mlp", "cnn", "graph")
# Bounds on settings that size allocations (checked before anything is built): a setting read
# from the command line or a checkpoint must not ask for gigabytes.
MAX_NUM_ENVS = 16_384
MAX_ROLLOUT = 2**24               # n_steps * num_envs transitions held in one rollout
MAX_LAYER_WIDTH = 2**20           # one hidden layer or CNN channel count
MAX_LAYERS = 64
MAX_TORCH_THREADS = 256           # the trainer also refuses more threads than the machine has CPUs
MAX_TOTAL_STEPS = 10**13
ACTIVATIONS = ("tanh", "relu")
SQUASHES = ("clip", "tanh")


@dataclass
class PPOConfig:
    """Every PPO setting; all of them can be set from ``sysgym train ... key=value``.

    Batch sizes: a rollout holds ``n_steps * num_envs`` transitions, split into minibatches of
    ``batch_size`` for each of ``n_epochs`` passes (Stable-Baselines3's convention).
    """

    # rollout
    num_envs: int = 8
    n_steps: int = 128
    total_steps: int = 100_000
    seed: int = 0
    # optimisation
    lr: float = 2.5e-4
    anneal_lr: bool = True
    n_epochs: int = 4
    batch_size: int = 256
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_vloss: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    ent_coef_final: float | None = None   # if set, ent_coef falls linearly to this over the run
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None
    adam_eps: float = 1e-5
    manual_gradients: bool = True
    # normalisation
    normalize_obs: bool = False
    normalize_reward: bool = False
    clip_obs: float = 10.0
    clip_reward: float = 10.0
    # networks
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_trunk: bool = False
    encoder: str = "auto"
    cnn_channels: tuple[int, ...] = (16, 32)
    # continuous actions
    squash: str = "clip"
    state_dependent_std: bool = False
    log_std_init: float = 0.0
    # machinery
    torch_threads: int = 1
    checkpoint_every: int = 0              # also keep checkpoint_<step>.pt every this many iterations
    checkpoint_seconds: float = 60.0       # refresh the resumable <out>/checkpoint.pt this often (0: at the end only)
    tensorboard: bool = True
    tensorboard_seconds: float = 2.0       # write TensorBoard scalars at most this often (0: every iteration)
    progress: bool = True
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # kwargs only the training envs get, over env_kwargs; evaluation and the checkpoint's users
    # (sysgym evaluate, benchmark, distill, explain) make the env from env_kwargs alone
    train_env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hidden_sizes", "cnn_channels"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) > MAX_LAYERS:
                raise ValueError(f"PPOConfig.{name} must be a tuple of at most {MAX_LAYERS} ints, got {value!r}")
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
                raise ValueError(f"PPOConfig.{name} must hold ints, got {value!r}")
            setattr(self, name, tuple(int(v) for v in value))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field (wrong type, out of range, too large)."""
        for f in fields(self):
            if _wrong_type(getattr(self, f.name), str(f.type)):
                raise ValueError(f"PPOConfig.{f.name} must be {f.type}, got {getattr(self, f.name)!r}")
        positive = ("num_envs", "n_steps", "total_steps", "n_epochs", "batch_size", "torch_threads")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name, most in (("num_envs", MAX_NUM_ENVS), ("n_steps", MAX_ROLLOUT), ("total_steps", MAX_TOTAL_STEPS),
                           ("torch_threads", MAX_TORCH_THREADS), ("batch_size", MAX_ROLLOUT),
                           ("n_epochs", 10_000)):
            if getattr(self, name) > most:
                raise ValueError(f"PPOConfig.{name}={getattr(self, name)!r} is too large (at most {most:,})")
        if self.rollout_size > MAX_ROLLOUT:
            raise ValueError(f"n_steps * num_envs = {self.rollout_size:,} transitions per rollout is too many "
                             f"(at most {MAX_ROLLOUT:,}); lower n_steps or num_envs")
        for name in ("hidden_sizes", "cnn_channels"):
            if any(v > MAX_LAYER_WIDTH for v in getattr(self, name)):
                raise ValueError(f"PPOConfig.{name}={getattr(self, name)!r}: a layer wider than "
                                 f"{MAX_LAYER_WIDTH:,} is too large")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"PPOConfig.{f.name} must be finite, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PPOConfig.{name} must lie in [0, 1], got {getattr(self, name)!r}")
        for name in ("lr", "clip_coef", "max_grad_norm", "adam_eps", "clip_obs", "clip_reward"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("vf_coef", "ent_coef", "checkpoint_every", "checkpoint_seconds", "tensorboard_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.ent_coef_final is not None and not self.ent_coef_final >= 0:
            raise ValueError(f"PPOConfig.ent_coef_final must be >= 0 or None, got {self.ent_coef_final!r}")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ValueError(f"PPOConfig.target_kl must be > 0 or None, got {self.target_kl!r}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"PPOConfig.hidden_sizes must be positive ints, got {self.hidden_sizes!r}")
        for name, choices in (("encoder", ENCODERS), ("activation", ACTIVATIONS), ("squash", SQUASHES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"PPOConfig.{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("env_kwargs", "train_env_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"PPOConfig.{name} must be a dict, got {getattr(self, name)!r}")

    @property
    def training_env_kwargs(self) -> dict[str, Any]:
        """What the training envs are made with: ``env_kwargs`` updated by ``train_env_kwargs``."""
        return {**self.env_kwargs, **self.train_env_kwargs}

    @property
    def rollout_size(self) -> int:
        return self.n_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        """PPO iterations needed to take at least ``total_steps`` env steps."""
        return max(1, -(-self.total_steps // self.rollout_size))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOConfig:
        if not isinstance(values, dict):
            raise ValueError(f"PPO settings must be a dict, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known, key=str)
        if unknown:
            raise ValueError(f"unknown PPOConfig fields {unknown}; known: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> PPOConfig:
        return dataclasses.replace(self, **changes)


# The types a scalar field accepts (a checkpoint's settings are data from a file); bool is no number.
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool, np.bool_), "str": (str,),
    "float | None": (numbers.Real, type(None)),
}


def _wrong_type(value: Any, type_text: str) -> bool:
    allowed = _SCALAR_TYPES.get(type_text)
    if allowed is None:
        return False
    if isinstance(value, (bool, np.bool_)):
        return type_text != "bool"
    return not isinstance(value, allowed)


# BRACIS'21 Table 2 (the paper's PPO on every DeepRM variant).
DEEPRM_PRESET: dict[str, Any] = {
    "lr": 1e-4, "n_steps": 50, "batch_size": 64, "ent_coef": 0.01, "gae_lambda": 0.95,
    "clip_coef": 0.2, "n_epochs": 10, "gamma": 0.99, "vf_coef": 0.5, "shared_trunk": True,
    "hidden_sizes": (64, 64), "anneal_lr": False,
    # Not in Table 2: raw DeepRM returns (about -300 per episode) otherwise swamp the value loss
    # and, through gradient clipping, stall the policy for the first few 100k steps.
    "normalize_reward": True,
}
# The network the BRACIS'21 experiments actually trained: its parameter counts (image 301,068 /
# 1,089,548 / 1,821,708, compact 24,332) are those of *separate* 2x64 tanh actor and critic MLPs,
# Stable-Baselines' (v2) default MlpPolicy, net_arch [dict(pi=[64, 64], vf=[64, 64])], not the
# shared trunk the paper's text describes. With n inputs and A actions that is
# 2 (64 n + 64 + 64 * 64 + 64) + 65 A + 65 parameters; tests/agents/test_ppo.py counts them.
BRACIS_PRESET: dict[str, Any] = {**DEEPRM_PRESET, "shared_trunk": False}
# CleanRL ppo_continuous_action.py.
CONTINUOUS_PRESET: dict[str, Any] = {
    "lr": 3e-4, "n_steps": 2048, "batch_size": 64, "n_epochs": 10, "ent_coef": 0.0,
    "normalize_obs": True, "normalize_reward": True, "num_envs": 1,
}
# The message-passing network and settings of the DAG reference run (benchmarks/paper_egs.py):
# with "auto", the 30x30 closure matrix would go through a CNN and the node table be flattened.
DAG_PRESET: dict[str, Any] = {
    "encoder": "graph", "hidden_sizes": (32, 32, 32), "num_envs": 16, "n_steps": 64, "batch_size": 256,
    "n_epochs": 4, "lr": 1e-3, "gamma": 1.0, "gae_lambda": 0.95, "ent_coef": 0.005, "normalize_reward": True,
}
# ABR (the settings of benchmarks/paper_pensieve.py, which trained the shipped ABR agents): an MLP
# on the flattened 6x8 state, observations and returns normalised (the state mixes bitrates, buffer
# seconds and chunk sizes in MB; stalled early episodes cost about -4.3 a second and swamp the value
# loss) and 64 sub-envs per call. benchmarks/results/defaults/ compares it with CleanRL's defaults.
ABR_PRESET: dict[str, Any] = {"encoder": "mlp", "num_envs": 64, "n_steps": 64, "batch_size": 512,
                              "normalize_obs": True, "normalize_reward": True}
# CC-Discrete: returns of about 1e5 per episode and unscaled rate/latency features; without
# normalisation CleanRL's defaults collapse onto one action (benchmarks/results/defaults/).
# 16 sub-envs as the reference CC-v0 run (benchmarks/paper_aurora.py).
CC_PRESET: dict[str, Any] = {"normalize_obs": True, "normalize_reward": True, "num_envs": 16}
# Family presets apply to discrete-action envs; continuous ones (CC-v0) get CONTINUOUS_PRESET.
FAMILY_PRESETS: dict[str, dict[str, Any]] = {"deeprm": DEEPRM_PRESET, "dag": DAG_PRESET, "abr": ABR_PRESET,
                                             "cc": CC_PRESET}
# Appointments: a finished day is ranked among all of its orderings for the percentile_efficacy
# episode metric, which no reward uses. From this many orderings per day (P3: 84,084; P1 and P2:
# 924) the rank costs several times the rest of the day (~2 ms; benchmarks/results/throughput/
# p3_percentile.txt), so default_config trains with percentile="off" unless env_kwargs choose the
# percentile; evaluation keeps the env's default (exact).
TRAIN_WITHOUT_RANK_FROM = 10_000
# A Box entry with two or more dimensions counts as an image (a CNN's input under encoder="auto")
# when both spatial sides have at least this many pixels: DeepRM's 20x114 image does; ABR's 6x8
# table of recent chunks (rows are different quantities) and DAG's 30x5 node table do not.
IMAGE_MIN_SIDE = 16


def default_config(env_id: str | None = None, **overrides: Any) -> PPOConfig:
    """The preset for ``env_id``'s family (BRACIS'21 for DeepRM; the reference runs' settings for
    ABR, DAG and CC-Discrete; CleanRL otherwise) plus overrides.

    Continuous-action envs (CC-v0) get CleanRL's continuous-control values.
    Appointments days with at least ``TRAIN_WITHOUT_RANK_FROM`` orderings (P3) train without the
    percentile rank (``train_env_kwargs={"percentile": "off"}``) unless ``env_kwargs`` set
    ``percentile``.
    Where neither the preset nor ``overrides`` choose the encoder and the observation has 2-D
    entries but no image (:func:`is_image`), the encoder is ``"mlp"``: ``"auto"`` would put
    a table such as ABR's 6x8 state through a CNN, which trains far slower and worse.
    """
    values: dict[str, Any] = {}
    if env_id is not None:
        env = gym.make(env_id, **(overrides.get("env_kwargs") or {}))
        try:
            continuous = isinstance(env.action_space, gym.spaces.Box)
            values.update(CONTINUOUS_PRESET if continuous else FAMILY_PRESETS.get(family_of(env_id), {}))
            if "encoder" not in values and "encoder" not in overrides and _tables_only(env.observation_space):
                values["encoder"] = "mlp"
            if _ranks_many_orderings(env_id, env, overrides.get("env_kwargs") or {}):
                values["train_env_kwargs"] = {"percentile": "off"}
        finally:
            env.close()
    values.update(overrides)
    return PPOConfig.from_dict(values)


def _ranks_many_orderings(env_id: str, env: gym.Env, env_kwargs: dict[str, Any]) -> bool:
    """An Appointments env whose days rank at least ``TRAIN_WITHOUT_RANK_FROM`` orderings, with
    the percentile left at the env's default."""
    if family_of(env_id) != "appointments" or "percentile" in env_kwargs:
        return False
    config = env.unwrapped.config
    return config.percentile != "off" and config.orderings >= TRAIN_WITHOUT_RANK_FROM


def is_image(space: gym.Space) -> bool:
    """A Box with 2 or 3 dimensions whose two spatial sides are at least ``IMAGE_MIN_SIDE``
    (channels first or last, as the CNN encoder reads them)."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) not in (2, 3):
        return False
    shape = space.shape
    if len(shape) == 3:
        shape = shape[:2] if shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4) else shape[1:]
    return min(shape) >= IMAGE_MIN_SIDE


def _tables_only(space: gym.Space) -> bool:
    """Whether ``space`` has Box entries of two or more dimensions, none of them an image."""
    entries = list(space.spaces.values()) if isinstance(space, gym.spaces.Dict) else [space]
    tables = [s for s in entries if isinstance(s, gym.spaces.Box) and len(s.shape) >= 2]
    return bool(tables) and not any(is_image(s) for s in tables)


def parse_overrides(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``["lr=3e-4", "hidden_sizes=128,128", "env.scenario=9"]`` -> (config fields, env kwargs).

    Values parse as :mod:`sysgym.overrides` describes and are checked against the field's type;
    keys starting with ``env.`` go to ``gymnasium.make`` / ``make_vec``. Unknown config keys raise
    ``ValueError`` listing the known ones.
    """
    hints = typing.get_type_hints(PPOConfig)
    settings, env_kwargs = split_overrides(items)
    config: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in hints:
            raise ValueError(f"unknown PPO setting {key!r}{suggestion(key, hints)}; "
                             f"known: {', '.join(sorted(hints))}")
        config[key] = _coerce(key, value, hints[key])
    return config, env_kwargs


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(value: Any) -> bool | None:
    """True/False from a bool, 1/0 or true/false, yes/no, on/off; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    return None


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check a parsed CLI value against the field's type, converting int -> float and x -> (x,)."""
    args = typing.get_args(hint)
    allowed = args if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for typ in allowed:
        origin = typing.get_origin(typ) or typ
        if origin is bool:
            flag = _boolean(value)
            if flag is not None:
                return flag
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if origin is tuple:
            items = value if isinstance(value, (tuple, list)) else (value,)
            if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                return tuple(items)
        if origin is dict and isinstance(value, dict):
            return value
    raise ValueError(f"{key}={value!r} is not a valid {hint}")
