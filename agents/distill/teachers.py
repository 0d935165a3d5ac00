"""Teachers: any policy the distiller imitates, built for whichever env it has to act in.

A :class:`Teacher` builds its policy for an env (heuristics read the env they are built on, so each
env gets its own instance) and may bring its own action values instead of simulated ones:

* ``"heuristic:NAME"`` — a baseline of the env's family (``sysgym.agents.heuristics``);
* ``"oracle"`` — the exact appointment oracle (Taub & Pianykh 2022): its values are minus the
  expected C_alpha of each next type (``oracle_values``), exact without any rollout;
* a PPO checkpoint file or training folder — the greedy policy; its critic, rescaled to reward
  units when training normalised rewards, can close simulated rollouts (``q_source="teacher"``);
* from Python, ``Teacher(name, build)`` with any ``build(env) -> policy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sysgym.agents.heuristics.base import family_of, heuristics_for


@dataclass
class Teacher:
    """``build(env) -> policy`` (``act(obs, info)``); optional ``values(vector_env) -> (B, A)``
    action values (higher is better, NaN for invalid actions) and ``state_value(obs) -> (B,)``
    (a critic in reward units). A checkpoint teacher also carries its env ID, kwargs and spaces."""

    name: str
    build: Callable[[Any], Any]
    values: Callable[[Any], np.ndarray] | None = None
    state_value: Callable[[Any], np.ndarray] | None = None
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    spaces: tuple[Any, Any] | None = None


def resolve_teacher(spec: Any, env_id: str | None = None, draws: int = 32) -> Teacher:
    """A :class:`Teacher` from ``"heuristic:NAME"``, ``"oracle"``, a checkpoint path, a Teacher
    or a policy factory ``env -> policy``."""
    if isinstance(spec, Teacher):
        return spec
    if callable(spec) and not isinstance(spec, str):
        return Teacher(getattr(spec, "name", getattr(spec, "__name__", "teacher")), spec)
    if not isinstance(spec, (str, Path)):
        raise ValueError(f"teacher must be 'heuristic:NAME', 'oracle' or a checkpoint path, got {spec!r}")
    text = str(spec)
    if text.startswith("heuristic:"):
        return _heuristic(text.split(":", 1)[1], env_id)
    if text == "oracle":
        return _oracle(env_id, draws)
    if Path(text).exists():
        return _ppo(Path(text))
    raise ValueError(f"teacher {text!r}: not a checkpoint file or folder, 'heuristic:NAME' or 'oracle'")


def _heuristic(name: str, env_id: str | None) -> Teacher:
    if env_id is None:
        raise ValueError("a heuristic teacher needs the environment ID (--env)")
    table = heuristics_for(env_id)
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise ValueError(f"unknown heuristic {name!r} for {env_id}; this family has: {known}")
    cls = table[name]
    return Teacher(f"heuristic:{name}", lambda env: cls(env))


def _oracle(env_id: str | None, draws: int) -> Teacher:
    if env_id is None or family_of(env_id) != "appointments":
        raise ValueError(f"the 'oracle' teacher is the appointment-scheduling oracle; {env_id} is not an "
                         "Appointments env (use heuristic:NAME or a checkpoint)")
    from sysgym.agents.heuristics.appointments import OraclePolicy

    def values(vec: Any) -> np.ndarray:
        cost = np.asarray(vec.unwrapped.oracle_values(draws=draws), dtype=np.float64)
        return np.where(np.isfinite(cost), -cost, np.nan)

    return Teacher("oracle", lambda env: OraclePolicy(env, draws=draws), values=values)


def _ppo(path: Path) -> Teacher:
    from sysgym.agents.ppo.checkpoint import load_checkpoint, policy_from_checkpoint
    from sysgym.agents.serialization import check_finite_tensors
    from sysgym.envs.registry import registered_id

    payload = load_checkpoint(path)
    where = payload.get("path", str(path))
    # a NaN weight makes the teacher take action 0 everywhere: refuse the file, not distil it
    check_finite_tensors({k: payload.get(k) for k in ("model", "obs_normalization", "extra")}, where,
                         "PPO checkpoint")
    env_id = payload.get("env_id")
    if env_id is not None:  # read from the file: it must not make gymnasium import a module
        registered_id(env_id, where)
    policy = policy_from_checkpoint(payload, deterministic=True)
    rms = (payload.get("extra") or {}).get("return_rms")
    # with reward normalisation the critic predicts returns divided by this scale
    scale = float(np.sqrt(float(rms["var"]) + 1e-8)) if rms else 1.0
    if not np.isfinite(scale):
        raise ValueError(f"{where}: PPO checkpoint holds a non-finite return scale (extra.return_rms)")
    kwargs = payload["config"].get("env_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: PPO checkpoint config.env_kwargs must be a mapping")
    return Teacher(f"ppo:{path}", lambda env: policy, state_value=lambda obs: np.asarray(policy.value(obs)) * scale,
                   env_id=env_id, env_kwargs=dict(kwargs), spaces=payload["spaces"])


def check_spaces(teacher_spaces: tuple[Any, Any] | None, env: Any, where: str) -> None:
    """ValueError when a checkpoint's spaces differ from ``env``'s."""
    if teacher_spaces is None:
        return
    for what, trained, here in zip(("observation", "action"), teacher_spaces, (env.observation_space, env.action_space)):
        if trained != here:
            raise ValueError(f"{where} was trained on another {what} space ({trained}) than this env's ({here})")
