"""Baseline heuristics per family, all with the ``act(obs, info)`` interface."""

from .base import Heuristic, family_of, heuristics_for

__all__ = ["Heuristic", "family_of", "heuristics_for"]
