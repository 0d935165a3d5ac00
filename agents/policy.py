"""The one interface every sysgym policy keeps: ``act(obs, info) -> action``.

Heuristics (:class:`sysgym.agents.heuristics.Heuristic`), the PPO policy
(:class:`sysgym.agents.ppo.PPOPolicy`), distilled trees and CrystalBox's explained agents all
satisfy :class:`Policy`, so evaluation, distillation and explanation code takes any of them.
``obs`` and ``info`` are what the environment returned last; for a native vector env they are
batched and the policy returns one action per sub-env.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Policy(Protocol):
    """Anything with ``act(obs, info)``; ``reset()`` (optional) is called when an episode starts."""

    def act(self, obs: Any, info: dict[str, Any]) -> Any: ...


@runtime_checkable
class EmbeddingPolicy(Policy, Protocol):
    """A learned policy that also exposes the features its decision is computed from."""

    def embed(self, obs: Any) -> Any: ...
