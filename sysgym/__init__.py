"""sysgym: Gymnasium environments for learned control of computer systems.

Importing the package registers every environment under the ``sysgym/`` namespace::

    import gymnasium as gym
    import sysgym  # noqa: F401
    env = gym.make("sysgym/DeepRM-Compact-v0")
"""

__version__ = "0.1.0"

from sysgym.envs.registry import ENVIRONMENTS, register_all  # noqa: E402

register_all()

__all__ = ["ENVIRONMENTS", "__version__", "register_all"]
