"""Which policy plays a benchmark case: the case-specific part of ``--policy``.

Parsing and loading every policy form (``heuristic:NAME``, ``oracle``, ``reference``, PPO
checkpoints, ``sb3:``, ``rllib:``, ``module:factory``) lives in :mod:`sysgym.agents.policy_specs`,
shared by every command; this module adds what only the benchmark needs: the suite's variants (an
agent made for ``DeepRM-CompactSparseReduced-v0`` plays the DeepRM cases on that ID), the
reference agent looked up per case, and a DAG policy with fixed spaces played on the cases that fit
its padding (the others skipped as not applicable).

A policy object needs ``act(obs, info)``; ``reset()`` is called when an episode starts if it has
one. The runner first offers it a native vector env (one action per sub-env) and falls back to
one episode at a time when it cannot act on batches.

Learned policies act greedily (the most likely action) unless ``sample=True``: then PPO policies
draw from a generator seeded 0 per work unit, and SB3 models from torch's global generator,
seeded 0 per work unit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from sysgym.agents.policy_specs import (
    HELP,
    PolicySpec,
    Unavailable,
    UniformRandom,
    build,
    env_spaces,
    fit_kwargs,
    heuristic_table,
    parse,
    ppo_payload,
)

from .suites import Case

Factory = Callable[[Any], Any]

__all__ = ["HELP", "PolicySpec", "UniformRandom", "Unavailable", "parse", "factory_for", "fit_case",
           "heuristic_table", "case_spaces", "family_of_case"]

_ppo_payload = ppo_payload     # the name other benchmark modules import


def factory_for(spec: PolicySpec | Factory, case: Case, variants: tuple[str, ...] = (),
                prefer: str | None = None) -> tuple[Factory, str]:
    """(``factory(env) -> policy``, the env ID to play ``case`` on) or :class:`Unavailable`.

    The env ID is the case's or one of the suite's ``variants`` (IDs with the same dynamics and
    metrics): ``prefer`` when it is one of them, else the ID a checkpoint or reference agent was
    trained on when it is one of them, else the case's. ``case`` is the one :func:`fit_case` gave.
    """
    env_id = prefer if prefer in variants else case.env_id
    if not isinstance(spec, PolicySpec):
        return spec, env_id
    where = case.name
    if spec.kind == "reference":
        first_error = None
        for candidate in (env_id, *(v for v in (case.env_id, *variants) if v != env_id)):
            try:
                return build(spec, candidate, case.kwargs(), where), candidate
            except Unavailable as error:
                first_error = first_error or error
        raise Unavailable(str(first_error))
    if spec.kind == "checkpoint":
        trained = ppo_payload(spec.target)["env_id"]
        if trained in variants and env_id == case.env_id:
            env_id = trained
    return build(spec, env_id, case.kwargs(), where), env_id


def fit_case(spec: PolicySpec | Factory, case: Case) -> Case:
    """``case`` with the env kwargs the policy needs (a DAG policy padded to N nodes plays with
    ``max_nodes=N``), or :class:`Unavailable` ("not applicable") when its tasks are larger."""
    if not isinstance(spec, PolicySpec):
        return case
    kwargs = case.kwargs()
    fitted = fit_kwargs(spec, case.env_id, kwargs, case.name)
    if fitted is kwargs:
        return case
    extra = tuple((k, v) for k, v in fitted.items() if k not in kwargs)
    return dataclasses.replace(case, env_kwargs=case.env_kwargs + extra)


def case_spaces(env_id: str, case: Case) -> tuple[gym.Space, gym.Space]:
    """Observation and action space of one (single-flow) env of ``case`` on ``env_id``."""
    return env_spaces(env_id, case.kwargs())


def family_of_case(case: Case) -> str:
    from sysgym.agents.heuristics import family_of

    return family_of(case.env_id)
