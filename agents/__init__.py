"""Baseline agents: heuristics, PPO, decision-tree distillation, CrystalBox explanations.

Agents use environments only through their public API (``gymnasium.make`` / ``make_vec``, the
``info`` dict and the read-only helpers of ``env.unwrapped``).
"""
