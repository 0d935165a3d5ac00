"""A graph policy for DAG edge generation: message passing over the closure, one score per edge.

Selected with ``PPOConfig(encoder="graph")``; it needs the observation of ``sysgym/DAG-EGS-v0``
(``observation="dict"``): ``nodes`` (N, F) with the ``present`` flag last, ``closure`` (N, N) 0/1
with [u, v] = 1 iff a path u ~> v, ``action_mask`` (N*N,), and ``Discrete(N*N)`` actions,
action a = edge a // N -> a % N. Sun et al. ("Edge Generation Scheduling for DAG Tasks Using Deep
Reinforcement Learning", IEEE TC 2024) likewise map node features, closure and masks to one score
per edge with a graph network; the layers below are our own design.

Why dense torch ops and not torch-geometric: the env already pads every task to N nodes and gives
the closure as a dense (N, N) matrix; it is dense (20-33% of the node pairs of the shipped tasks
are ordered before any edge is added, more with every edge), N is at most 256, and messages
along three relations (ancestors, descendants, incomparable nodes) are three batched (B, N, N)
matrix products. Sparse edge lists and scatter kernels would buy nothing here and would add a
dependency (with optional compiled extensions built per torch version) next to the pinned torch.

The network (H = ``hidden_sizes[0]``, one layer per entry of ``hidden_sizes``):

* node inputs: the env's features, the slack LST - EST, a critical flag (lateral width at its
  maximum, i.e. the node lies in a maximum antichain), the shares of ancestors, descendants and
  incomparable nodes, and the graph's width estimate W / n;
* each layer: ``h <- h + relu(W [h, mean over ancestors, mean over descendants, mean over
  incomparable nodes, mean over all nodes])``, over real nodes only (padding rows stay 0);
* pair scores: ``z_ij = relu(P h_i + Q h_j + R f_ij + b)`` (K = ``PAIR_HIDDEN`` units, an MLP over
  [h_i, h_j, f_ij] whose first layer is computed separably) with pair features f_ij = the slack
  LST_j - EFT_i the edge leaves, and the number of incomparable pairs (all, and critical only)
  the edge i -> j would order, from ``(ancestors-or-self of i) x (descendants-or-self of j)``;
  the score of edge i -> j is ``w . z_ij``, computed for the edges the observation's
  ``action_mask`` allows (the others are masked out anyway); these scores are the actor's
  features and :class:`PairHead` the masked categorical over them;
* value: an MLP over the mean and max of the node embeddings and W / n.

Every operation is per node, per pair or a sum over nodes, so embeddings are permutation
equivariant and padding nodes change nothing for real nodes; no weight depends on N, so a policy
trained with ``max_nodes=40`` acts on tasks of any size (:func:`sysgym.agents.ppo.checkpoint.policy_for_spaces`).
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn

from .config import PPOConfig
from .distributions import CategoricalHead, layer_init

PAIR_HIDDEN = 32            # K: hidden units of the pair MLP
NODE_INPUTS = 6             # derived node features added to the env's (see GraphEncoder.forward)
PAIR_FEATURES = 3           # f_ij (see _pair_features)
_TOL = 0.5                  # lateral widths are integers / n: equal within half a unit


def graph_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> tuple[int, int]:
    """(N, node feature count) of a DAG-EGS Dict observation; ValueError naming what does not fit."""
    ok = isinstance(observation_space, spaces.Dict) and {"nodes", "closure", "action_mask"} <= set(
        observation_space.spaces)
    if not ok:
        raise ValueError("encoder='graph' needs a Dict observation with 'nodes', 'closure' and "
                         f"'action_mask' (sysgym/DAG-EGS-v0, observation='dict'), got {observation_space}")
    nodes = observation_space["nodes"].shape
    n = int(nodes[0])
    if len(nodes) != 2 or observation_space["closure"].shape != (n, n) \
            or observation_space["action_mask"].shape != (n * n,):
        raise ValueError(f"encoder='graph': nodes (N, F), closure (N, N) and action_mask (N*N,) expected, "
                         f"got {nodes}, {observation_space['closure'].shape}, "
                         f"{observation_space['action_mask'].shape}")
    if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != n * n:
        raise ValueError(f"encoder='graph' needs Discrete({n * n}) edge actions, got {action_space}")
    return n, int(nodes[1])


def _mean_over(relation: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Row i: the mean of h_j over the j with relation[i, j] = 1 (0 where there are none)."""
    count = relation.sum(-1, keepdim=True).clamp(min=1.0)
    return torch.bmm(relation, h) / count


class GraphEncoder(nn.Module):
    """Observation dict -> node embeddings (B, N, H) and the pair features (B, N, N, PAIR_FEATURES)."""

    def __init__(self, node_features: int, hidden: tuple[int, ...]):
        super().__init__()
        width = hidden[0]
        if any(h != width for h in hidden):
            raise ValueError(f"encoder='graph' uses one width for every layer, got hidden_sizes={hidden}")
        self.width = width
        # a per-key input layer, as ObservationEncoder keeps one encoder per key
        self.encoders = nn.ModuleDict({"nodes": layer_init(nn.Linear(node_features + NODE_INPUTS, width))})
        self.layers = nn.ModuleList(layer_init(nn.Linear(5 * width, width)) for _ in hidden)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, closure = obs["nodes"], obs["closure"]
        present = x[..., -1]
        both = present.unsqueeze(-1) * present.unsqueeze(-2)
        ancestors = closure.transpose(1, 2)                       # [i, a] = 1 iff a ~> i
        eye = torch.eye(closure.shape[-1], dtype=closure.dtype)
        incomparable = (1.0 - closure - ancestors - eye).clamp(min=0.0) * both
        everyone = both
        n = present.sum(-1, keepdim=True).clamp(min=1.0)          # (B, 1)
        lateral = x[..., 3]
        top = (lateral * present).amax(-1, keepdim=True)          # (W - 1) / n
        critical = ((lateral - top).abs() * n < _TOL).float() * present
        derived = torch.stack([
            x[..., 2] - (x[..., 1] - x[..., 0]),                  # slack LST - EST (share of D)
            critical,
            ancestors.sum(-1) / n, closure.sum(-1) / n, incomparable.sum(-1) / n,
            (top + 1.0 / n).expand_as(lateral),                   # W / n
        ], -1) * present.unsqueeze(-1)
        h = torch.relu(self.encoders["nodes"](torch.cat([x, derived], -1))) * present.unsqueeze(-1)
        for layer in self.layers:
            message = torch.cat([h, _mean_over(ancestors, h), _mean_over(closure, h),
                                 _mean_over(incomparable, h), _mean_over(everyone, h)], -1)
            h = (h + torch.relu(layer(message))) * present.unsqueeze(-1)
        return h, _pair_features(x, closure, incomparable, critical, n), derived[..., -1:]


def _pair_features(x: torch.Tensor, closure: torch.Tensor, incomparable: torch.Tensor,
                   critical: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """f_ij: slack LST_j - EFT_i, and the incomparable pairs (a, d) with a <= i, j <= d (the pairs
    edge i -> j would order), all and critical only, per node count n."""
    eye = torch.eye(closure.shape[-1], dtype=closure.dtype)
    up = closure.transpose(1, 2) + eye            # [i, a] = 1 iff a <= i
    down = closure + eye                          # [j, d] = 1 iff j <= d
    ordered = torch.bmm(torch.bmm(up, incomparable), down.transpose(1, 2))
    crit = critical.unsqueeze(-1) * critical.unsqueeze(-2)
    ordered_critical = torch.bmm(torch.bmm(up, incomparable * crit), down.transpose(1, 2))
    slack = x[..., 2].unsqueeze(-2) - x[..., 1].unsqueeze(-1)     # [i, j] = LST_j - EFT_i
    scale = n.unsqueeze(-1)
    return torch.stack([slack, ordered / scale, ordered_critical / scale], -1)


class PairHead(CategoricalHead):
    """Masked categorical over the N*N edges; its input is already one score per edge."""

    def __init__(self, action_space: spaces.Discrete):
        nn.Module.__init__(self)
        self.n, self.start = int(action_space.n), int(action_space.start)
        self.action_shape: tuple[int, ...] = ()
        self.action_dtype = torch.int64
        self.mask_size = self.n

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores


class GraphActorCritic(nn.Module):
    """Node embeddings shared by the edge scores (actor) and a pooled value (critic)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig):
        super().__init__()
        self.num_nodes, node_features = graph_spaces(observation_space, action_space)
        if config.normalize_obs:
            raise ValueError("encoder='graph' reads the closure as 0/1: set normalize_obs=False")
        self.encoder = GraphEncoder(node_features, config.hidden_sizes)
        width = self.encoder.width
        self.pair_i = layer_init(nn.Linear(width, PAIR_HIDDEN))
        self.pair_j = layer_init(nn.Linear(width, PAIR_HIDDEN))
        self.pair_f = layer_init(nn.Linear(PAIR_FEATURES, PAIR_HIDDEN))
        self.pair_out = layer_init(nn.Linear(PAIR_HIDDEN, 1), std=0.1)
        self.head = PairHead(action_space)
        self.value_net = nn.Sequential(layer_init(nn.Linear(2 * width + 1, width)), nn.Tanh(),
                                       layer_init(nn.Linear(width, 1), std=1.0))

    @property
    def feature_size(self) -> int:
        return self.num_nodes * self.num_nodes

    def _scores(self, h: torch.Tensor, f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N*N) edge scores, computed for the valid edges of ``mask`` only (0 elsewhere: the
        head masks those out, and skipping them makes the pair MLP ~10x cheaper)."""
        b, n = h.shape[0], h.shape[1]
        rows, edges = torch.nonzero(mask > 0, as_tuple=True)
        i, j = edges // n, edges % n
        z = torch.relu(self.pair_i(h[rows, i]) + self.pair_j(h[rows, j]) + self.pair_f(f[rows, i, j]))
        scores = torch.zeros(b, n * n, dtype=h.dtype)
        return scores.index_put((rows, edges), self.pair_out(z).squeeze(-1))

    def _value(self, h: torch.Tensor, width: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        count = present.sum(-1, keepdim=True).clamp(min=1.0)
        mean = h.sum(1) / count
        top = h.masked_fill(present.unsqueeze(-1) == 0, float("-inf")).amax(1)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        return self.value_net(torch.cat([mean, top, width.amax(1)], -1)).squeeze(-1)

    def node_embeddings(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, N, H): zero rows for padding nodes."""
        return self.encoder(obs)[0]

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The actor's output before masking: one score per edge, (B, N*N)."""
        h, f, _ = self.encoder(obs)
        return self._scores(h, f, obs["action_mask"])

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        h, _, width = self.encoder(obs)
        return self._value(h, width, obs["nodes"][..., -1])

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, f, width = self.encoder(obs)
        return self._scores(h, f, obs["action_mask"]), self._value(h, width, obs["nodes"][..., -1])
