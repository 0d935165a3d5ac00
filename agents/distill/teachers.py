"""Teachers: any policy the distiller imitates, built for whichever env it has to act in.

A :class:`Teacher` builds its policy for an env (heuristics read the env they are built on, so each
env gets its own instance) and may bring its own action values instead of simulated ones. Every
policy spec of :mod:`sysgym.agents.policy_specs` is a teacher (``heuristic:NAME``, ``reference``,
``sb3:PATH.zip``, ``rllib:DIR``, ``module:factory``: their action values are simulated), and two
bring their own values:

* ``"oracle"`` — the exact appointment oracle (Taub & Pianykh 2022): its values are minus the
  expected C_alpha of each next type (``oracle_values``), exact without any rollout;
* a PPO checkpoint file or training folder — the greedy policy; its critic, rescaled to reward
  units when training normalised rewards, can close simulated rollouts (``q_source="teacher"``);
* from Python, ``Teacher(name, build)`` with any ``build(env) -> policy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sysgym.agents.heuristics.base import family_of
from sysgym.agents.policy_specs import PolicySpec, build, parse, ppo_payload, trained_env


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


def resolve_teacher(spec: Any, env_id: str | None = None, draws: int = 32,
                    env_kwargs: dict[str, Any] | None = None) -> Teacher:
    """A :class:`Teacher` from a policy spec (string or :class:`PolicySpec`), a Teacher or a policy
    factory ``env -> policy``; ``env_kwargs`` are the kwargs of the env it will act in."""
    if isinstance(spec, Teacher):
        return spec
    if callable(spec) and not isinstance(spec, str):
        return Teacher(getattr(spec, "name", getattr(spec, "__name__", "teacher")), spec)
    if not isinstance(spec, (str, PolicySpec)) and not hasattr(spec, "__fspath__"):
        raise ValueError(f"teacher must be a policy spec (heuristic:NAME, oracle, a checkpoint path, sb3:PATH.zip, "
                         f"...), got {spec!r}")
    parsed = parse(spec)
    if parsed.kind == "oracle":
        return _oracle(env_id, draws)
    if parsed.kind == "checkpoint":
        return _ppo(parsed.target, str(spec.target if isinstance(spec, PolicySpec) else spec))
    if env_id is None:
        raise ValueError(f"a {parsed.label} teacher needs the environment ID (--env)")
    factory = build(parsed, env_id, env_kwargs or {})
    return Teacher(parsed.label, factory, spaces=trained_env(parsed)[2])


def _oracle(env_id: str | None, draws: int) -> Teacher:
    if env_id is None or family_of(env_id) != "appointments":
        raise ValueError(f"the 'oracle' teacher is the appointment-scheduling oracle; {env_id} is not an "
                         "Appointments env (use heuristic:NAME or a checkpoint)")
    from sysgym.agents.heuristics.appointments import OraclePolicy

    def values(vec: Any) -> np.ndarray:
        cost = np.asarray(vec.unwrapped.oracle_values(draws=draws), dtype=np.float64)
        return np.where(np.isfinite(cost), -cost, np.nan)

    return Teacher("oracle", lambda env: OraclePolicy(env, draws=draws), values=values)


def _ppo(path: str, given: str) -> Teacher:
    from sysgym.agents.ppo.checkpoint import policy_from_checkpoint

    payload = ppo_payload(path)   # bounded, registered env ID, no NaN weight (a NaN teacher takes action 0)
    where = payload.get("path", path)
    policy = policy_from_checkpoint(payload, deterministic=True)
    rms = (payload.get("extra") or {}).get("return_rms")
    # with reward normalisation the critic predicts returns divided by this scale
    scale = float(np.sqrt(float(rms["var"]) + 1e-8)) if rms else 1.0
    if not np.isfinite(scale):
        raise ValueError(f"{where}: PPO checkpoint holds a non-finite return scale (extra.return_rms)")
    env_id, kwargs, _ = trained_env(PolicySpec("checkpoint", path))
    return Teacher(f"ppo:{given}", lambda env: policy, state_value=lambda obs: np.asarray(policy.value(obs)) * scale,
                   env_id=env_id, env_kwargs=kwargs, spaces=payload["spaces"])


def check_spaces(teacher_spaces: tuple[Any, Any] | None, env: Any, where: str) -> None:
    """ValueError when a checkpoint's spaces differ from ``env``'s."""
    if teacher_spaces is None:
        return
    for what, trained, here in zip(("observation", "action"), teacher_spaces, (env.observation_space, env.action_space)):
        if trained != here:
            raise ValueError(f"{where} was trained on another {what} space ({trained}) than this env's ({here})")
