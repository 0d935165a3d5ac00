"""``--policy`` strings: which policy plays a benchmark case, built as ``factory(env) -> policy``.

====================  ===========================================================================
spec                  policy
====================  ===========================================================================
``heuristic:NAME``    the family's baseline NAME (``sysgym.agents.heuristics.<family>.HEURISTICS``)
                      plus the benchmark's own: ``random`` (uniform actions) for ABR and CC and
                      ``offline_optimal`` (grid 1 s) for ABR. Built with ``seed=0``.
``reference``         the shipped reference learned agent of each env (:mod:`sysgym.reference`)
``sb3:PATH.zip``      a Stable-Baselines3 / sb3-contrib model (MaskablePPO, PPO, A2C, DQN, SAC, TD3)
``PATH``              a sysgym PPO checkpoint: a ``checkpoint.pt`` or a training folder (``runs/X``)
``module:factory``    ``factory(env)`` from an importable module (the working directory is on
                      the path) or a ``.py`` file (``agents/mine.py:make``)
====================  ===========================================================================

A policy object needs ``act(obs, info)``; ``reset()`` is called when an episode starts if it has
one. The runner first offers it a native vector env (one action per sub-env) and falls back to
one episode at a time when it cannot act on batches.

Learned policies act greedily (the most likely action) unless ``sample=True``: then PPO policies
draw from a generator seeded 0 per work unit, and SB3 models from torch's global generator,
seeded 0 per work unit.

SB3 zips hold some pickled fields that SB3's own loader unpickles: load only models you trust
(sysgym's own model files are plain data, see :mod:`sysgym.agents.serialization`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
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

from .suites import Case

Factory = Callable[[Any], Any]


class Unavailable(ValueError):
    """The policy cannot play this case (no reference agent for the env, spaces that differ, no
    heuristic of that name in the family): the case is skipped and the reason reported."""


# ------------------------------------------------------------------------------ uniform random
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


# ------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class PolicySpec:
    """A parsed ``--policy`` string; plain data, so it travels to worker processes."""

    kind: str           # heuristic | reference | sb3 | checkpoint | factory
    target: str = ""    # NAME, path, or "module:attr"
    sample: bool = False

    @property
    def label(self) -> str:
        text = {"heuristic": f"heuristic:{self.target}", "reference": "reference",
                "sb3": f"sb3:{self.target}"}.get(self.kind, self.target)
        return f"{text} (sampled)" if self.sample and self.kind != "heuristic" else text


HELP = "--policy takes heuristic:NAME, reference, sb3:PATH.zip, a PPO checkpoint (file or folder) or module:factory"


def parse(text: str, sample: bool = False) -> PolicySpec:
    """Check a ``--policy`` string (ValueError / FileNotFoundError with one line on bad input)."""
    text = str(text).strip()
    if not text:
        raise ValueError(f"empty policy; {HELP}")
    if text == "reference":
        return PolicySpec("reference", sample=sample)
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
    if Path(text).exists():
        payload = _ppo_payload(text)  # ValueError if it is not a sysgym PPO checkpoint or holds NaN weights
        return PolicySpec("checkpoint", str(Path(payload["path"]).resolve()), sample)
    if ":" in text:
        module, _, attr = text.rpartition(":")
        if not module or not attr.isidentifier():
            raise ValueError(f"{text!r}: expected module:factory; {HELP}")
        if module.endswith(".py"):
            module = str(Path(module).resolve())
        _user_factory(module, attr)
        return PolicySpec("factory", f"{module}:{attr}", sample)
    raise FileNotFoundError(f"{text}: no such checkpoint; {HELP}")


# ------------------------------------------------------------------------------ factories
def factory_for(spec: PolicySpec | Factory, case: Case, variants: tuple[str, ...] = (),
                prefer: str | None = None) -> tuple[Factory, str]:
    """(``factory(env) -> policy``, the env ID to play ``case`` on) or :class:`Unavailable`.

    The env ID is the case's or one of the suite's ``variants`` (IDs with the same dynamics and
    metrics): ``prefer`` when it is one of them, else the ID a checkpoint or reference agent was
    trained on when it is one of them (an agent made for ``DeepRM-CompactSparseReduced-v0`` plays
    the DeepRM cases on that ID), else the case's.
    """
    env_id = prefer if prefer in variants else case.env_id
    if not isinstance(spec, PolicySpec):
        return spec, env_id
    if spec.kind == "heuristic":
        return _heuristic(spec.target, case), env_id
    if spec.kind == "reference":
        return _reference(case, (env_id, *(v for v in (case.env_id, *variants) if v != env_id)), spec.sample)
    if spec.kind == "sb3":
        model = _sb3_model(spec.target)
        _check_fit(spec.target, model.observation_space, model.action_space, case, env_id)
        deterministic = not spec.sample
        return (lambda env: _sb3_actor(model, deterministic)), env_id
    if spec.kind == "checkpoint":
        return _checkpoint(spec, case, variants, env_id)
    if spec.kind == "factory":
        return _user_factory(*spec.target.rsplit(":", 1)), env_id
    raise ValueError(f"unknown policy kind {spec.kind!r}")


def family_of_case(case: Case) -> str:
    from sysgym.agents.heuristics import family_of

    return family_of(case.env_id)


def heuristic_table(case: Case) -> dict[str, Factory]:
    """Every ``heuristic:NAME`` the case's family offers (the family's plus the benchmark's)."""
    from sysgym.agents.heuristics import heuristics_for

    family = family_of_case(case)
    table: dict[str, Factory] = dict(heuristics_for(case.env_id))
    if family in ("abr", "cc"):
        table.setdefault("random", UniformRandom)
    if family == "abr":
        from sysgym.agents.heuristics.abr import OfflineOptimal

        table["offline_optimal"] = functools.partial(OfflineOptimal, dt=1.0)
    return table


def _heuristic(name: str, case: Case) -> Factory:
    table = heuristic_table(case)
    if name not in table:
        raise Unavailable(f"the {family_of_case(case)} family has no heuristic {name!r} "
                          f"(it has {', '.join(sorted(table))})")
    cls = table[name]
    return lambda env: cls(env, seed=0)


def _reference(case: Case, env_ids: tuple[str, ...], sample: bool) -> tuple[Factory, str]:
    from sysgym import reference

    first_error = None
    for env_id in env_ids:
        try:
            meta = reference.metadata(env_id)
        except reference.NoReferenceAgent as error:
            first_error = first_error or error
            continue
        if meta.get("loader", "ppo") == "ppo":
            obs_space, act_space = _ppo_payload(str(reference.weights_path(env_id)))["spaces"]
            _check_fit(f"the reference agent of {meta['env_id']}", obs_space, act_space, case, env_id)
        deterministic = False if sample else None       # None: the mode the agent was scored in
        return functools.partial(_load_reference, env_id, deterministic), env_id
    raise Unavailable(str(first_error))


def _load_reference(env_id: str, deterministic: bool | None, env: Any) -> Any:
    from sysgym import reference

    return reference.load(env_id, env=env, deterministic=deterministic)


def _checkpoint(spec: PolicySpec, case: Case, variants: tuple[str, ...], env_id: str) -> tuple[Factory, str]:
    from sysgym.agents.ppo.checkpoint import policy_from_checkpoint

    payload = _ppo_payload(spec.target)
    if payload["env_id"] in variants and env_id == case.env_id:
        env_id = payload["env_id"]
    deterministic = not spec.sample
    if payload["config"].get("encoder") == "graph":   # the DAG graph policy fits any task size
        from sysgym.agents.ppo.checkpoint import policy_for_spaces
        from sysgym.reference import spaces_of

        return (lambda env: policy_for_spaces(payload, *spaces_of(env, env_id), deterministic=deterministic,
                                              seed=0)), env_id
    obs_space, act_space = payload["spaces"]
    _check_fit(spec.target, obs_space, act_space, case, env_id)
    return (lambda env: policy_from_checkpoint(payload, deterministic=deterministic, seed=0)), env_id


@functools.lru_cache(maxsize=8)
def _ppo_payload(path: str) -> dict[str, Any]:
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


@functools.lru_cache(maxsize=64)
def env_spaces(env_id: str, case: Case) -> tuple[gym.Space, gym.Space]:
    """Observation and action space of one (single-flow) env of ``case`` on ``env_id``."""
    env = gym.make(env_id, **case.kwargs())
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def _check_fit(what: str, obs_space: gym.Space, act_space: gym.Space, case: Case, env_id: str) -> None:
    """Unavailable unless the spaces have the env's structure: type, shape, dtype, action count
    (Box bounds may differ: ABR's depend on the traces)."""
    here_obs, here_act = env_spaces(env_id, case)
    for kind, trained, here in (("observation", obs_space, here_obs), ("action", act_space, here_act)):
        if not same_layout(trained, here):
            raise Unavailable(f"{what} was trained on {kind} space {describe_space(trained)}, but {env_id} "
                              f"({case.name}) has {describe_space(here)}")


# ------------------------------------------------------------------------------ user factories
def _user_factory(module: str, attr: str) -> Factory:
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
def _sb3_model(path: str) -> Any:
    module, _, name = _sb3_algorithm(Path(path)).partition(":")
    try:
        algorithm = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        raise ValueError(f"{error.name} is not installed; SB3 models need it: pip install stable-baselines3 sb3-contrib") from None
    from sysgym.agents.serialization import check_finite_tensors

    model = algorithm.load(path, device="cpu")
    check_finite_tensors(dict(model.policy.state_dict()), path, "SB3 model")
    return model


def _sb3_actor(model: Any, deterministic: bool) -> Any:
    from sysgym.agents.ppo.sb3 import SB3Policy

    if not deterministic:
        import torch

        torch.manual_seed(0)
    return SB3Policy(model, deterministic)
