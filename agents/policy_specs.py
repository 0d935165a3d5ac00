"""Policy spec strings: one parser and loader for every command that takes a policy.

``sysgym evaluate --policy``, ``explain --policy``, ``distill --teacher`` and ``benchmark --policy``
all read a spec here. :func:`parse` checks the string (files exist and are readable, user code
imports) and returns a :class:`PolicySpec` (plain data, so it travels to worker processes);
:func:`trained_env` says what the spec knows about the env it was made for; :func:`build` gives the
``factory(env) -> policy`` for one env ID, after checking that the policy's spaces fit it.

======================  ========================================================================
spec                    policy
======================  ========================================================================
``heuristic:NAME``      the env family's baseline NAME (:mod:`sysgym.agents.heuristics`), plus
                        ``random`` (uniform valid actions) for ABR and CC and ``offline_optimal``
                        (grid 1 s) for ABR. Built with ``seed=0``.
``oracle``              the exact appointment-scheduling oracle (Appointments envs only)
``reference``           the shipped reference learned agent of the env (:mod:`sysgym.reference`)
``PATH``                a sysgym PPO checkpoint: a ``checkpoint.pt`` or a training folder
``sb3:PATH.zip``        a Stable-Baselines3 / sb3-contrib model (MaskablePPO, PPO, A2C, DQN, SAC, TD3)
``rllib:DIR``           an RLlib Algorithm checkpoint folder (ray is imported only for this form)
``module:factory``      ``factory(env)`` from an importable module (the working directory is on
``file.py:factory``     the path) or from a ``.py`` file. The only forms that run user code.
======================  ========================================================================

Every bad spec raises a one-line ValueError / FileNotFoundError (the CLI exits 2). A policy whose
spaces do not fit an env raises :class:`Unavailable` (a ValueError). A DAG policy with fixed spaces
(padded to ``max_nodes`` = N) plays any DAG env whose tasks have at most N nodes, made with
``max_nodes=N`` (:func:`fit_kwargs`); larger tasks are Unavailable.

Learned policies act greedily unless ``sample=True``. SB3 zips hold pickled fields that SB3's own
loader unpickles: load only models you trust (sysgym's own model files are plain data).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import math
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sysgym.agents.serialization import describe_space, same_layout

Factory = Callable[[Any], Any]

KINDS = ("heuristic", "oracle", "reference", "checkpoint", "sb3", "rllib", "factory")
HELP = ("a policy is heuristic:NAME, oracle, reference, a PPO checkpoint (file or folder), sb3:PATH.zip, "
        "rllib:DIR, module:factory or file.py:factory")


class Unavailable(ValueError):
    """The policy cannot play this env (no reference agent for it, spaces that differ, no heuristic
    of that name in the family, a DAG task larger than the policy's padding)."""


@dataclass(frozen=True)
class PolicySpec:
    """A parsed policy string."""

    kind: str           # one of KINDS
    target: str = ""    # NAME, path, or "module:attr"
    sample: bool = False

    @property
    def label(self) -> str:
        text = {"heuristic": f"heuristic:{self.target}", "reference": "reference", "oracle": "oracle",
                "sb3": f"sb3:{self.target}", "rllib": f"rllib:{self.target}"}.get(self.kind, self.target)
        return f"{text} (sampled)" if self.sample and self.kind not in ("heuristic", "oracle") else text


# ------------------------------------------------------------------------------ parsing
def parse(text: Any, sample: bool = False) -> PolicySpec:
    """Check a policy string (ValueError / FileNotFoundError with one line on bad input)."""
    if isinstance(text, PolicySpec):
        return text
    text = str(text).strip()
    if not text:
        raise ValueError(f"empty policy; {HELP}")
    if text in ("reference", "oracle"):
        return PolicySpec(text, sample=sample)
    if text.startswith("heuristic:"):
        name = text.split(":", 1)[1].strip()
        if not name:
            raise ValueError(f"heuristic:NAME needs a name (e.g. heuristic:sjf); {HELP}")
        return PolicySpec("heuristic", name, sample)
    if text.startswith("sb3:"):
        path = Path(text[4:])
        if not path.is_file() and Path(f"{path}.zip").is_file():
            path = Path(f"{path}.zip")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such SB3 model file")
        _sb3_algorithm(path)   # a readable SB3 zip of a known algorithm
        return PolicySpec("sb3", str(path.resolve()), sample)
    if text.startswith("rllib:"):
        path = Path(text[6:])
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such RLlib checkpoint folder")
        return PolicySpec("rllib", str(path.resolve()), sample)
    if Path(text).exists():
        payload = ppo_payload(text)  # ValueError if it is not a sysgym PPO checkpoint or holds NaN weights
        return PolicySpec("checkpoint", str(Path(payload["path"]).resolve()), sample)
    if ":" in text:
        module, _, attr = text.rpartition(":")
        if not module or not attr.isidentifier():
            raise ValueError(f"{text!r}: expected module:factory; {HELP}")
        if module.endswith(".py"):
            module = str(Path(module).resolve())
        user_factory(module, attr)
        return PolicySpec("factory", f"{module}:{attr}", sample)
    raise FileNotFoundError(f"{text}: no such checkpoint; {HELP}")


def trained_env(spec: PolicySpec) -> tuple[str | None, dict[str, Any], tuple[gym.Space, gym.Space] | None]:
    """(env ID, env kwargs, (observation, action) spaces) the policy was made for, as far as the
    spec knows (a PPO checkpoint knows all three; other forms None, {}, None)."""
    if spec.kind == "checkpoint":
        payload = ppo_payload(spec.target)
        kwargs = payload["config"].get("env_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ValueError(f"{payload['path']}: PPO checkpoint config.env_kwargs must be a mapping")
        spaces = None if payload["config"].get("encoder") == "graph" else tuple(payload["spaces"])
        return payload.get("env_id"), dict(kwargs), spaces
    if spec.kind == "sb3":
        model = sb3_model(spec.target)
        return None, {}, (model.observation_space, model.action_space)
    return None, {}, None


# ------------------------------------------------------------------------------ fitting an env
def env_spaces(env_id: str, env_kwargs: dict[str, Any]) -> tuple[gym.Space, gym.Space]:
    """Observation and action space of ``gym.make(env_id, **env_kwargs)``."""
    return _env_spaces(env_id, tuple(sorted(env_kwargs.items(), key=lambda kv: kv[0])))


@functools.lru_cache(maxsize=64)
def _env_spaces(env_id: str, items: tuple) -> tuple[gym.Space, gym.Space]:
    env = gym.make(env_id, **dict(items))
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def check_fit(what: str, spaces: tuple[gym.Space, gym.Space], env_id: str, env_kwargs: dict[str, Any],
              where: str = "") -> None:
    """Unavailable unless the spaces have the env's structure: type, shape, dtype, action count
    (Box bounds may differ: ABR's depend on the traces)."""
    here = env_spaces(env_id, env_kwargs)
    for kind, trained, mine in zip(("observation", "action"), spaces, here):
        if not same_layout(trained, mine):
            raise Unavailable(f"{what} was trained on {kind} space {describe_space(trained)}, but {env_id}"
                              f"{f' ({where})' if where else ''} has {describe_space(mine)}")


def _dag_padding(space: gym.Space) -> int | None:
    n = int(getattr(space, "n", 0))
    side = math.isqrt(n)
    return side if side > 1 and side * side == n else None


def fit_kwargs(spec: PolicySpec, env_id: str, env_kwargs: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``env_kwargs`` made to fit the policy: a DAG policy with fixed spaces padded to N nodes plays
    an env whose largest task has n <= N nodes with ``max_nodes=N``; n > N is :class:`Unavailable`
    (not applicable). Other envs and policies: ``env_kwargs`` unchanged."""
    _, _, spaces = trained_env(spec) if spec.kind in ("checkpoint", "sb3") else (None, {}, None)
    if spaces is None or not env_id.split("/")[-1].startswith("DAG-"):
        return env_kwargs
    padded = _dag_padding(spaces[1])
    here = _dag_padding(env_spaces(env_id, env_kwargs)[1])
    if padded is None or here is None or padded == here:
        return env_kwargs
    if here > padded:
        raise Unavailable(f"not applicable: {spec.label} is padded to {padded} nodes, but {env_id}"
                          f"{f' ({where})' if where else ''} has tasks of up to {here} nodes")
    if "max_nodes" in env_kwargs:   # the caller's own padding: build() says which spaces differ
        return env_kwargs
    return {**env_kwargs, "max_nodes": padded}


# ------------------------------------------------------------------------------ building
def build(spec: PolicySpec, env_id: str, env_kwargs: dict[str, Any] | None = None, where: str = "",
          seed: int = 0) -> Factory:
    """``factory(env) -> policy`` for envs made as ``gym.make(env_id, **env_kwargs)`` (single or
    native vector); :class:`Unavailable` when the policy cannot play that env."""
    env_kwargs = dict(env_kwargs or {})
    deterministic = not spec.sample
    if spec.kind == "heuristic":
        table = heuristic_table(env_id)
        if spec.target not in table:
            from sysgym.agents.heuristics import family_of

            raise Unavailable(f"the {family_of(env_id)} family has no heuristic {spec.target!r} "
                              f"(it has {', '.join(sorted(table)) or 'none'})")
        cls = table[spec.target]
        return lambda env: cls(env, seed=seed)
    if spec.kind == "oracle":
        from sysgym.agents.heuristics import family_of

        if family_of(env_id) != "appointments":
            raise Unavailable(f"'oracle' is the appointment-scheduling oracle; {env_id} is not an Appointments env")
        from sysgym.agents.heuristics.appointments import OraclePolicy

        return OraclePolicy
    if spec.kind == "reference":
        return _reference(env_id, env_kwargs, spec.sample, where)
    if spec.kind == "checkpoint":
        from sysgym.agents.ppo.checkpoint import policy_for_spaces, policy_from_checkpoint

        payload = ppo_payload(spec.target)
        if payload["config"].get("encoder") == "graph":   # the DAG graph policy fits any task size
            from sysgym.reference import spaces_of

            return lambda env: policy_for_spaces(payload, *spaces_of(env, env_id), deterministic=deterministic,
                                                 seed=seed)
        check_fit(spec.target, payload["spaces"], env_id, env_kwargs, where)
        return lambda env: policy_from_checkpoint(payload, deterministic=deterministic, seed=seed)
    if spec.kind == "sb3":
        model = sb3_model(spec.target)
        check_fit(spec.target, (model.observation_space, model.action_space), env_id, env_kwargs, where)
        return lambda env: sb3_actor(model, deterministic, spec.target)
    if spec.kind == "rllib":
        return _rllib(spec.target, env_id, env_kwargs, deterministic)
    if spec.kind == "factory":
        return user_factory(*spec.target.rsplit(":", 1))
    raise ValueError(f"unknown policy kind {spec.kind!r}")


def _reference(env_id: str, env_kwargs: dict[str, Any], sample: bool, where: str) -> Factory:
    from sysgym import reference

    try:
        meta = reference.metadata(env_id)
    except reference.NoReferenceAgent as error:
        raise Unavailable(str(error)) from None
    if meta.get("loader", "ppo") == "ppo":
        payload = ppo_payload(str(reference.weights_path(env_id)))
        check_fit(f"the reference agent of {meta['env_id']}", payload["spaces"], env_id, env_kwargs, where)
    deterministic = False if sample else None       # None: the mode the agent was scored in
    return functools.partial(_load_reference, env_id, deterministic)


def _load_reference(env_id: str, deterministic: bool | None, env: Any) -> Any:
    from sysgym import reference

    return reference.load(env_id, env=env, deterministic=deterministic)


def _rllib(path: str, env_id: str, env_kwargs: dict[str, Any], deterministic: bool) -> Factory:
    try:
        from sysgym.integrations.rllib import RLlibPolicy
        policy = RLlibPolicy.from_checkpoint(path, env_id, env_kwargs, deterministic=deterministic)
    except ImportError:
        raise ValueError(f"rllib:{path} needs ray: pip install 'sysgym[rllib]' (ray[rllib])") from None
    except (OSError, KeyError, RuntimeError) as error:
        raise ValueError(f"rllib:{path}: cannot restore the RLModule ({type(error).__name__}: {error})") from None
    return lambda env: policy


# ------------------------------------------------------------------------------ heuristics
class UniformRandom:
    """Uniformly random actions, among the valid ones where the env gives an action mask; acts on a
    single env, a native vector env and the PettingZoo CC env. Seeded (0): a run repeats."""

    name = "random"

    def __init__(self, env: Any, seed: int | None = 0):
        self.rng = np.random.default_rng(seed)
        self.multi = hasattr(env, "possible_agents")          # PettingZoo: a dict per agent
        self.batched = hasattr(env, "single_action_space")    # native vector env
        if self.multi:
            self.space = env.action_space(env.possible_agents[0])
        else:
            self.space = env.single_action_space if self.batched else env.action_space

    def _draw(self, rows: int, mask: Any) -> np.ndarray:
        if isinstance(self.space, gym.spaces.Discrete):
            n = int(self.space.n)
            valid = np.ones((rows, n), dtype=bool) if mask is None else np.asarray(mask).reshape(rows, n) > 0
            u = self.rng.random((rows, n))
            return np.argmax(np.where(valid, u, -1.0), axis=1) + int(self.space.start)
        if isinstance(self.space, gym.spaces.Box):
            return self.rng.uniform(self.space.low, self.space.high, (rows, *self.space.shape)).astype(self.space.dtype)
        raise TypeError(f"uniform random needs a Discrete or Box action space, got {self.space}")

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        if self.multi:
            agents = list(obs)
            masks = [info[a].get("action_mask") for a in agents]
            actions = self._draw(len(agents), None if masks[0] is None else np.stack(masks))
            return {a: _single(actions[i]) for i, a in enumerate(agents)}
        mask = info.get("action_mask")
        if not self.batched:
            return _single(self._draw(1, mask)[0])
        rows = len(mask) if mask is not None else len(next(iter(obs.values())) if isinstance(obs, dict) else obs)
        return self._draw(rows, mask)


def _single(action: np.ndarray) -> Any:
    return int(action) if np.ndim(action) == 0 else action


def heuristic_table(env_id: str) -> dict[str, Factory]:
    """Every ``heuristic:NAME`` of the env's family (the family's plus ``random`` for ABR and CC and
    ``offline_optimal`` for ABR)."""
    from sysgym.agents.heuristics import family_of, heuristics_for

    family = family_of(env_id)
    table: dict[str, Factory] = dict(heuristics_for(env_id))
    if family in ("abr", "cc"):
        table.setdefault("random", UniformRandom)
    if family == "abr":
        from sysgym.agents.heuristics.abr import OfflineOptimal

        table["offline_optimal"] = functools.partial(OfflineOptimal, dt=1.0)
    return table


# ------------------------------------------------------------------------------ PPO checkpoints
@functools.lru_cache(maxsize=8)
def ppo_payload(path: str) -> dict[str, Any]:
    """A PPO checkpoint (file or training folder) read by the PPO loader (which bounds its size, network
    and spaces and checks its env ID), refused when any weight is NaN or infinite."""
    from sysgym.agents.ppo.checkpoint import load_checkpoint
    from sysgym.agents.serialization import check_finite_tensors
    from sysgym.envs.registry import registered_id

    payload = load_checkpoint(path)
    where = str(payload.get("path", path))
    if payload.get("env_id") is not None:      # None: a user's own env (played where the spaces fit)
        registered_id(payload["env_id"], where)
    check_finite_tensors(payload, where, "PPO checkpoint")
    return payload


# ------------------------------------------------------------------------------ user factories
def user_factory(module: str, attr: str) -> Factory:
    """``attr`` of an importable module or of a ``.py`` file, checked to be callable."""
    try:
        mod = _load_file(module) if module.endswith(".py") else _import(module)
    except (ImportError, SyntaxError) as error:
        raise ValueError(f"cannot import {module}: {type(error).__name__}: {error}") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise ValueError(f"{module} has no callable {attr!r} (expected factory(env) -> object with act(obs, info))")
    return factory


def _import(module: str):
    cwd = os.getcwd()
    if cwd not in sys.path:     # console scripts leave the working directory off the path
        sys.path.append(cwd)
    return importlib.import_module(module)


def _load_file(path: str):
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such policy file")
    name = "sysgym_policy_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# ------------------------------------------------------------------------------ SB3
_SB3_ALGORITHMS = (  # (part of the policy class's module, import path); the first match wins
    ("sb3_contrib.common.maskable", "sb3_contrib:MaskablePPO"),
    ("stable_baselines3.dqn", "stable_baselines3:DQN"),
    ("stable_baselines3.sac", "stable_baselines3:SAC"),
    ("stable_baselines3.td3", "stable_baselines3:TD3"),
    ("stable_baselines3.common.policies", "stable_baselines3:PPO"),   # PPO and A2C policies
)


SB3_MAX_DATA_BYTES = 16 * 2**20   # the zip's JSON "data" entry (settings and spaces; kilobytes in practice)


def _sb3_algorithm(path: Path) -> str:
    """Which SB3 class loads ``path``, read from the zip's JSON ``data`` entry (nothing unpickled).
    The file, the zip's inflated size and the ``data`` entry are bounded before anything is read."""
    from sysgym.agents import serialization

    serialization.check_file_size(path, "SB3 model zip", serialization.MAX_FILE_BYTES)
    serialization.check_inflated_size(path, "SB3 model zip")
    try:
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo("data").file_size
            if size > SB3_MAX_DATA_BYTES:
                raise ValueError(f"its 'data' entry inflates to {size:,} bytes (at most {SB3_MAX_DATA_BYTES:,})")
            data = serialization.load_json_text(archive.read("data"), f"{path}: data")
        module = str(data["policy_class"]["__module__"])
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"{path}: not a Stable-Baselines3 model zip ({type(error).__name__}: {error})") from None
    for part, algorithm in _SB3_ALGORITHMS:
        if module.startswith(part):
            return algorithm
    raise ValueError(f"{path}: SB3 policy class from {module} is not supported (MaskablePPO, PPO, A2C, DQN, SAC, TD3)")


@functools.lru_cache(maxsize=4)
def sb3_model(path: str) -> Any:
    module, _, name = _sb3_algorithm(Path(path)).partition(":")
    try:
        algorithm = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        raise ValueError(f"{error.name} is not installed; SB3 models need it: pip install stable-baselines3 sb3-contrib") from None
    from sysgym.agents.serialization import check_finite_tensors

    model = algorithm.load(path, device="cpu")
    check_finite_tensors(dict(model.policy.state_dict()), path, "SB3 model")
    return model


class _SB3Actor:
    """An SB3 model acting through :class:`~sysgym.agents.ppo.sb3.SB3Policy`; whatever SB3 raises
    on an observation its spaces do not fit (its checks are ``assert``s) becomes one ValueError."""

    def __init__(self, model: Any, deterministic: bool, where: str):
        from sysgym.agents.ppo.sb3 import SB3Policy

        self.inner = SB3Policy(model, deterministic)
        self.where = where

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        try:
            return self.inner.act(obs, info)
        except Exception as error:  # noqa: BLE001  (SB3 asserts; any library failure is a mismatch here)
            shape = {k: np.shape(v) for k, v in obs.items()} if isinstance(obs, dict) else np.shape(obs)
            space = describe_space(self.inner.model.observation_space)
            message = " ".join(str(error).split()) or type(error).__name__
            raise ValueError(f"sb3:{self.where} (observation space {space}) cannot act on an observation of "
                             f"shape {shape}: {message}") from None


def sb3_actor(model: Any, deterministic: bool, where: str = "model") -> Any:
    if not deterministic:
        import torch

        torch.manual_seed(0)
    return _SB3Actor(model, deterministic, where)
