"""Reference PPO (Schulman et al. 2017) for every sysgym environment, in torch.

Masked categorical, multi-categorical and Gaussian policies; MLP, CNN and Dict-observation
encoders; GAE, clipped surrogate and value loss, entropy bonus, advantage / observation / reward
normalisation; rollouts from the native vector envs; CSV + TensorBoard logs and checkpoints.
Defaults reproduce Table 2 of de Freitas Cunha & Chaimowicz (BRACIS 2021) on DeepRM.

Python API::

    from sysgym.agents.ppo import train, load_policy
    policy, result = train("sysgym/DeepRM-CompactSparse-v0", steps=200_000, out_dir="runs/ppo")
    action = policy.act(obs, info)          # same interface as the heuristics
    policy = load_policy("runs/ppo/checkpoint.pt")

Command line: ``sysgym train --env ID --steps N`` and ``sysgym evaluate --checkpoint PATH``.
"""

from .checkpoint import load_checkpoint, load_policy, save_checkpoint
from .config import PPOConfig, default_config, parse_overrides
from .networks import ActorCritic
from .policy import PPOPolicy
from .trainer import PPOTrainer, TrainResult, make_vector_env, train

__all__ = [
    "ActorCritic", "PPOConfig", "PPOPolicy", "PPOTrainer", "TrainResult", "default_config",
    "load_checkpoint", "load_policy", "make_vector_env", "parse_overrides", "save_checkpoint", "train",
]
