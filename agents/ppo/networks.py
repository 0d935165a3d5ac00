"""Actor-critic networks: per-entry observation encoders, an MLP trunk, an action head and a value head.

* Flat Box entries are used as they are; Box entries with two or more dimensions go through a small
  CNN when ``encoder`` is ``"cnn"`` or ``"auto"`` (``"mlp"`` flattens them, as DeepRM's image
  agent did); Discrete / MultiDiscrete entries are one-hot encoded, MultiBinary used as floats.
  Dict observations (e.g. DAG node features + closure) concatenate the encoded entries.
* ``encoder="graph"`` (DAG edge generation) replaces encoder, trunk and head by the message-passing
  network of :mod:`sysgym.agents.ppo.graph`.
* The trunk is an MLP (default 2 x 64, tanh). ``shared_trunk=True`` (BRACIS'21, Stable-Baselines'
  old default) feeds both heads from one trunk; otherwise actor and critic have their own encoder
  and trunk (CleanRL's default).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from .config import PPOConfig
from .distributions import layer_init, make_head
from .graph import GraphActorCritic
from .observations import observation_entries

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class ImageEncoder(nn.Module):
    """Conv(3x3) + ReLU layers over an image entry: (H, W), (C, H, W) or channels-last (H, W, C).

    Layers use stride 2 while both spatial sides are at least 8, stride 1 after that. Integer
    images are scaled by 1/255.
    """

    def __init__(self, space: spaces.Box, channels: tuple[int, ...]):
        super().__init__()
        shape = tuple(space.shape)
        self.channels_last = len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4)
        if len(shape) == 2:
            c, h, w = 1, *shape
        elif self.channels_last:
            h, w, c = shape
        elif len(shape) == 3:
            c, h, w = shape
        else:
            raise ValueError(f"CNN encoder takes 2-D or 3-D observations, got shape {shape}")
        self.add_channel = len(shape) == 2
        self.scale = 1.0 / 255.0 if np.issubdtype(space.dtype, np.integer) else 1.0
        layers: list[nn.Module] = []
        for out in channels:
            stride = 2 if min(h, w) >= 8 else 1
            layers += [layer_init(nn.Conv2d(c, out, 3, stride=stride, padding=1)), nn.ReLU()]
            c, h, w = out, (h - 1) // stride + 1, (w - 1) // stride + 1
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.add_channel:
            x = x.unsqueeze(1)
        elif self.channels_last:
            x = x.permute(0, 3, 1, 2)
        if self.scale != 1.0:
            x = x * self.scale
        return self.net(x)


class OneHot(nn.Module):
    """Discrete / MultiDiscrete entry -> concatenated one-hot vectors."""

    def __init__(self, space: spaces.Discrete | spaces.MultiDiscrete):
        super().__init__()
        if isinstance(space, spaces.Discrete):
            self.sizes, self.start = [int(space.n)], [int(space.start)]
        else:
            self.sizes = [int(n) for n in np.asarray(space.nvec).reshape(-1)]
            self.start = [int(s) for s in np.asarray(space.start).reshape(-1)]
        self.out_features = sum(self.sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1).long()
        parts = [nn.functional.one_hot(x[:, k] - s, n).float()
                 for k, (n, s) in enumerate(zip(self.sizes, self.start))]
        return torch.cat(parts, dim=-1)


class Flatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)
        self.out_features = int(math.prod(shape)) if shape else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class ObservationEncoder(nn.Module):
    """Encodes a dict of observation tensors into one feature vector per sample."""

    def __init__(self, space: spaces.Space, config: PPOConfig):
        super().__init__()
        encoders: dict[str, nn.Module] = {}
        for key, sub in observation_entries(space).items():
            shape = tuple(sub.shape or ())
            if isinstance(sub, (spaces.Discrete, spaces.MultiDiscrete)):
                encoders[key] = OneHot(sub)
            elif isinstance(sub, spaces.Box) and len(shape) >= 2 and config.encoder != "mlp":
                encoders[key] = ImageEncoder(sub, config.cnn_channels)
            elif config.encoder == "cnn" and len(shape) >= 2:
                encoders[key] = ImageEncoder(sub, config.cnn_channels)
            else:
                encoders[key] = Flatten(shape)
        self.keys = list(encoders)
        self.encoders = nn.ModuleDict(encoders)
        self.out_features = sum(e.out_features for e in encoders.values())
        self._single = len(self.keys) == 1

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._single:
            key = self.keys[0]
            return self.encoders[key](obs[key])
        return torch.cat([self.encoders[k](obs[k]) for k in self.keys], dim=-1)


def mlp(in_features: int, hidden: tuple[int, ...], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [layer_init(nn.Linear(in_features, size)), _ACTIVATIONS[activation]()]
        in_features = size
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Policy and value networks for one (observation space, action space) pair.

    ``forward(obs)`` returns (action-distribution parameters, value); ``features(obs)`` the actor
    trunk's output, the embedding explainers use.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig):
        super().__init__()
        self.graph = GraphActorCritic(observation_space, action_space, config) if config.encoder == "graph" else None
        if self.graph is not None:          # one message-passing network serves actor and critic
            self.shared, self.encoder, self.head = True, self.graph.encoder, self.graph.head
            return
        self.shared = config.shared_trunk
        hidden = config.hidden_sizes
        self.encoder = ObservationEncoder(observation_space, config)
        self.trunk = mlp(self.encoder.out_features, hidden, config.activation)
        if not self.shared:
            self.critic_encoder = ObservationEncoder(observation_space, config)
            self.critic_trunk = mlp(self.critic_encoder.out_features, hidden, config.activation)
        self.head = make_head(hidden[-1], action_space, config.squash, config.state_dependent_std,
                              config.log_std_init)
        self.value_head = layer_init(nn.Linear(hidden[-1], 1), std=1.0)

    @property
    def feature_size(self) -> int:
        return self.graph.feature_size if self.graph is not None else self.trunk[-2].out_features

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.graph.features(obs) if self.graph is not None else self.trunk(self.encoder(obs))

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.graph is not None:
            return self.graph.value(obs)
        if self.shared:
            return self.value_head(self.features(obs)).squeeze(-1)
        return self.value_head(self.critic_trunk(self.critic_encoder(obs))).squeeze(-1)

    def forward(self, obs: dict[str, torch.Tensor]):
        if self.graph is not None:
            return self.graph(obs)
        actor = self.features(obs)
        critic = actor if self.shared else self.critic_trunk(self.critic_encoder(obs))
        return self.head(actor), self.value_head(critic).squeeze(-1)
