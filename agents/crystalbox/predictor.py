"""CrystalBox's learned return predictor: one Gaussian per reward component, trained by NLL.

Architecture (Patel et al., AAAI 2024, section 5 and appendix A.5; sizes from their {64, 128,
256, 512}): the input is the state's features x (observation or policy embedding, standardised with
the training mean and deviation, stored as buffers) and the action a (one-hot for discrete
actions, the raw vector for continuous ones). A shared trunk

    h = ELU(W_x x + W_a a) -> [ELU(Linear(h))] * (layers - 1)

feeds one tail per component c, which sees the action again:

    t_c = ELU(U_c h + V_c a),   mean_c = w_c . t_c + b_c,   std_c = softplus(w'_c . t_c + b'_c) + 1e-4

The one-hot product ``W_a a`` is an embedding lookup, so asking about every action of a state
costs one pass over x plus one row per action. Means and standard deviations are on the [0, 1]
scale of :mod:`.normalise`; at inference the means are clipped to [0, 1] (as the public code
does).

Training: Adam on the summed Gaussian negative log-likelihood of the components, minibatches,
early stopping on a validation split of the *states* (all queries of a state on one side), the
best weights restored. An optional second stage (the paper's A.5) freezes the trunk and
fine-tunes the tails at a lower learning rate.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sysgym.envs.validate import integer, number

MIN_STD = 1e-4
SIZES = (64, 128, 256, 512)


@dataclass
class PredictorConfig:
    """Network and training settings (``hidden``/``tail_hidden`` from the paper's {64, 128, 256, 512})."""

    hidden: int = 128
    tail_hidden: int = 64
    layers: int = 2
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 200
    patience: int = 15
    val_fraction: float = 0.1
    finetune_epochs: int = 0
    finetune_lr: float = 1e-4
    seed: int = 0
    torch_threads: int = 1
    nll_beta: float = 0.5

    def __post_init__(self) -> None:
        for name in ("hidden", "tail_hidden"):
            if getattr(self, name) not in SIZES:
                raise ValueError(f"{name} must be one of {SIZES} (the paper's sizes), got {getattr(self, name)!r}")
        integer("layers", self.layers, 1, 8)
        number("lr", self.lr, 0.0, 1.0, lo_open=True)
        integer("batch_size", self.batch_size, 1, 10**7)
        integer("epochs", self.epochs, 1, 10**6)
        integer("patience", self.patience, 1, 10**6)
        number("val_fraction", self.val_fraction, 0.0, 0.5)
        integer("finetune_epochs", self.finetune_epochs, 0, 10**6)
        number("finetune_lr", self.finetune_lr, 0.0, 1.0, lo_open=True)
        integer("seed", self.seed, 0, 2**63 - 1)
        integer("torch_threads", self.torch_threads, 1, 1024)
        number("nll_beta", self.nll_beta, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictorConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown predictor settings {unknown}")
        return cls(**known)


def parameter_count(in_features: int, action_width: int, components: int, config: PredictorConfig) -> int:
    """Weights of the :class:`ReturnNetwork` these sizes build (computed without building it, so
    that sizes read from a file are bounded before anything is allocated)."""
    h, t = config.hidden, config.tail_hidden
    return (in_features * h + h + action_width * h + (config.layers - 1) * (h * h + h)
            + h * components * t + components * t + action_width * components * t + components * t * 2 + components * 2)


def check_sizes(in_features: Any, action_width: int, components: int, config: PredictorConfig, where: str) -> int:
    """``in_features`` as an int, after refusing sizes whose network would be too large."""
    from ..serialization import check_parameter_count

    if isinstance(in_features, bool) or not isinstance(in_features, (int, np.integer)) or in_features < 1:
        raise ValueError(f"{where}: in_features must be a positive integer, got {in_features!r}")
    if components < 1:
        raise ValueError(f"{where}: the explainer needs at least one reward component")
    check_parameter_count(parameter_count(int(in_features), action_width, components, config), where)
    return int(in_features)


class ReturnNetwork(nn.Module):
    """Shared trunk, one Gaussian tail per component (see the module docstring).

    The C tails are stored side by side (``tail_h``/``tail_a`` map to C blocks of ``tail_hidden``
    units, ``tail_w``/``tail_b`` hold each tail's output layer), which computes exactly C
    independent tails in a few tensor operations instead of a few per tail.
    """

    def __init__(self, in_features: int, action_width: int, discrete: bool, components: int,
                 config: PredictorConfig):
        super().__init__()
        h, t = config.hidden, config.tail_hidden
        self.discrete = discrete
        self.components, self.tail_hidden = components, t
        self.register_buffer("x_mean", torch.zeros(in_features))
        self.register_buffer("x_std", torch.ones(in_features))
        self.x_in = nn.Linear(in_features, h)
        self.a_in = self._action_layer(action_width, h)
        self.trunk = nn.Sequential(*[m for _ in range(config.layers - 1) for m in (nn.Linear(h, h), nn.ELU())])
        self.tail_h = nn.Linear(h, components * t)
        self.tail_a = self._action_layer(action_width, components * t)
        bound = 1.0 / np.sqrt(t)   # nn.Linear's default initialisation, per tail
        self.tail_w = nn.Parameter(torch.empty(components, t, 2).uniform_(-bound, bound))
        self.tail_b = nn.Parameter(torch.empty(components, 2).uniform_(-bound, bound))

    def _action_layer(self, width: int, out: int) -> nn.Module:
        return nn.Embedding(width, out) if self.discrete else nn.Linear(width, out, bias=False)

    def trunk_modules(self) -> list[nn.Module]:
        return [self.x_in, self.a_in, self.trunk]

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and standard deviations (N, C) on the [0, 1] scale. ``x`` is (N, F) or (1, F)
        (then shared by the N actions ``a``: (N,) indices or (N, width) floats)."""
        h = nn.functional.elu(self.x_in((x - self.x_mean) / self.x_std) + self.a_in(a))
        h = self.trunk(h)
        z = nn.functional.elu(self.tail_h(h) + self.tail_a(a)).view(-1, self.components, self.tail_hidden)
        out = torch.einsum("nct,cto->nco", z, self.tail_w) + self.tail_b
        return out[:, :, 0], nn.functional.softplus(out[:, :, 1]) + MIN_STD


def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """Mean over rows of the summed per-component negative log-likelihood (constants dropped).

    ``beta`` > 0 weighs each term by std^(2 beta), held constant in the gradient (beta-NLL,
    Seitzer et al., ICLR 2022): plain NLL (beta = 0) lets a point be "explained" by a large std
    instead of a better mean, and learns the means slowly where they are hard.
    """
    nll = 0.5 * ((y - mean) / std) ** 2 + torch.log(std)
    if beta:
        nll = nll * std.detach() ** (2 * beta)
    return nll.sum(dim=1).mean()


def train_network(x: np.ndarray, state: np.ndarray, action: np.ndarray, y: np.ndarray, discrete: bool,
                  action_width: int, config: PredictorConfig, progress: bool = False
                  ) -> tuple[ReturnNetwork, dict[str, Any]]:
    """Fit a :class:`ReturnNetwork` to scaled returns ``y`` (R, C) of queries ``(state, action)``.

    ``x`` holds the per-state inputs (S, F); ``action`` the action indices (R,) or vectors (R, w).
    Returns the network (best validation weights, eval mode) and a history dict.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if len(y) == 0 or not np.all(np.isfinite(y)) or not np.all(np.isfinite(x)):
        raise ValueError("training data must be non-empty and finite")
    check_sizes(x.shape[1], action_width, y.shape[1], config, "CrystalBox predictor")
    previous = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)   # small networks only lose from more threads
    try:
        return _train(x, state, action, y, discrete, action_width, config, progress)
    finally:
        torch.set_num_threads(previous)


def _train(x: np.ndarray, state: np.ndarray, action: np.ndarray, y: np.ndarray, discrete: bool,
           action_width: int, config: PredictorConfig, progress: bool) -> tuple[ReturnNetwork, dict[str, Any]]:
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        net = ReturnNetwork(x.shape[1], action_width, discrete, y.shape[1], config)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    net.x_mean.copy_(torch.as_tensor(mean))
    net.x_std.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0)))

    rng = np.random.default_rng(config.seed)
    n_states = len(x)
    val_states = np.zeros(n_states, dtype=bool)
    n_val = int(round(config.val_fraction * n_states))
    if n_val >= 1 and n_states - n_val >= 1:
        val_states[rng.permutation(n_states)[:n_val]] = True
    val_rows = val_states[state]
    data = _tensors(x, state, action, y, discrete)
    train_idx, val_idx = np.flatnonzero(~val_rows), np.flatnonzero(val_rows)

    history: dict[str, Any] = {"epochs": 0, "train_nll": [], "val_nll": [], "finetune_epochs": 0}
    params = list(net.parameters())
    _fit(net, params, config.lr, config.epochs, data, train_idx, val_idx, config, rng, history, progress, "train")
    if config.finetune_epochs:
        for module in net.trunk_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        tails = [p for p in net.parameters() if p.requires_grad]
        _fit(net, tails, config.finetune_lr, config.finetune_epochs, data, train_idx, val_idx, config, rng,
             history, progress, "finetune")
        for p in net.parameters():
            p.requires_grad_(True)
    net.eval()
    return net, history


def _tensors(x: np.ndarray, state: np.ndarray, action: np.ndarray, y: np.ndarray,
             discrete: bool) -> dict[str, torch.Tensor]:
    a = torch.as_tensor(np.asarray(action), dtype=torch.long if discrete else torch.float32)
    return {"x": torch.as_tensor(x), "state": torch.as_tensor(np.asarray(state, dtype=np.int64)),
            "a": a, "y": torch.as_tensor(y)}


def _loss(net: ReturnNetwork, data: dict[str, torch.Tensor], idx: np.ndarray, beta: float) -> torch.Tensor:
    rows = torch.as_tensor(idx)
    mean, std = net(data["x"][data["state"][rows]], data["a"][rows])
    return gaussian_nll(mean, std, data["y"][rows], beta)


def _fit(net: ReturnNetwork, params: list[torch.Tensor], lr: float, epochs: int, data: dict[str, torch.Tensor],
         train_idx: np.ndarray, val_idx: np.ndarray, config: PredictorConfig, rng: np.random.Generator,
         history: dict[str, Any], progress: bool, stage: str) -> None:
    """Adam with early stopping on the validation NLL (the best weights are kept)."""
    optimizer = torch.optim.Adam(params, lr=lr)
    best, best_state, stale = np.inf, None, 0
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=epochs, unit="epoch", desc=stage, file=sys.stderr, dynamic_ncols=True)
    for _ in range(epochs):
        net.train()
        order = rng.permutation(train_idx)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            loss = _loss(net, data, batch, config.nll_beta)
            if not torch.isfinite(loss):
                setting = "finetune_lr" if stage == "finetune" else "lr"
                raise ValueError(f"CrystalBox predictor: the training loss became non-finite (NaN or infinity) "
                                 f"in {stage} epoch {history['finetune_epochs' if stage == 'finetune' else 'epochs'] + 1}; "
                                 f"lower {setting} (now {lr:g})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        history["train_nll"].append(total / max(len(order), 1))
        history["finetune_epochs" if stage == "finetune" else "epochs"] += 1
        if bar is not None:
            bar.update(1)
        if len(val_idx) == 0:
            continue
        net.eval()
        with torch.no_grad():
            val = float(_loss(net, data, val_idx, 0.0))
        history["val_nll"].append(val)
        if val < best - 1e-6:
            best, best_state, stale = val, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if bar is not None:
        bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
