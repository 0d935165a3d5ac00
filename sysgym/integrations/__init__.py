"""Adapters between sysgym and training libraries.

Each submodule imports its library lazily or only when imported itself, so no environment module
ever imports a training library:

* :mod:`sysgym.integrations.sb3`: a Stable-Baselines3 ``VecEnv`` over the native vector env
  (SB3 and sb3-contrib's MaskablePPO at the batched kernels' speed).
* :mod:`sysgym.integrations.rllib`: Ray RLlib (new API stack): registered env creators, the
  native vector env as RLlib's fast path, action masking, flattened 2-D/Dict observations, the
  multi-flow congestion-control env as a multi-agent problem (``pip install "sysgym[rllib]"``).
"""
