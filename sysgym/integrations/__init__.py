"""Adapters between sysgym and training libraries.

Each submodule imports its library lazily or only when imported itself, so no environment module
ever imports a training library:

* :mod:`sysgym.integrations.sb3`: a Stable-Baselines3 ``VecEnv`` over the native vector env
  (SB3 and sb3-contrib's MaskablePPO at the batched kernels' speed).
* :mod:`sysgym.integrations.tianshou`: a Tianshou ``BaseVectorEnv`` over the native vector env
  (Tianshou's ``Collector`` at the batched kernels' speed).
* :mod:`sysgym.integrations.rllib`: Ray RLlib (new API stack): registered env creators, the
  native vector env as RLlib's fast path, action masking, flattened 2-D/Dict observations, the
  multi-flow congestion-control env as a multi-agent problem (``pip install "sysgym[rllib]"``).
"""

from importlib import import_module
from typing import Any

_LAZY = {"SB3VecEnv": "sb3", "TianshouVectorEnv": "tianshou"}


def __getattr__(name: str) -> Any:
    """``from sysgym.integrations import SB3VecEnv`` imports its library only then."""
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
