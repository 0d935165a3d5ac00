"""The fitted explainer: predictor + normaliser + what it explains, saved as plain data.

:class:`CrystalBox` ties a trained :class:`~.predictor.ReturnNetwork` to the scale of its
returns (:class:`~.normalise.Normaliser`), the env's reward components and weights, the action
queries and the input features. ``fit`` collects data (:func:`~.collect.collect`) and trains;
``predict`` / ``query`` return means and standard deviations in reward units;
:func:`~.explain.explain` turns a query into an explanation.

A model file is one ``torch.save`` of plain data — settings and spaces as JSON text, weights as
tensors — read back with ``torch.load(weights_only=True)`` (:mod:`sysgym.agents.serialization`),
so opening someone else's file cannot run code. The policy itself is not stored: a model that
reads the policy's embedding needs the policy again at load time (its name, e.g. a checkpoint
path or ``heuristic:NAME``, is recorded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from sysgym.envs.registry import registered_id

from ..runs import atomic_replace
from ..serialization import (
    check_finite_tensors,
    dumps,
    load_json_text,
    load_torch_file,
    loads,
    space_from_data,
    space_to_data,
)
from .actions import ActionQueries
from .collect import build_policy, collect, owned_env
from .features import embed, flat_size, flatten, resolve_mode
from .normalise import Normaliser
from .predictor import PredictorConfig, ReturnNetwork, check_sizes, train_network
from .samples import Samples

FORMAT = "sysgym-crystalbox/1"


class CrystalBox:
    """A fitted CrystalBox explainer for one policy on one environment."""

    def __init__(self, net: ReturnNetwork, normaliser: Normaliser, queries: ActionQueries,
                 observation_space: spaces.Space, components: tuple[str, ...], weights: np.ndarray,
                 features: str, t_max: int, gamma: float, config: PredictorConfig, policy: Any = None,
                 meta: dict[str, Any] | None = None):
        self.net = net.eval()
        self.normaliser = normaliser
        self.queries = queries
        self.observation_space = observation_space
        self.components = tuple(components)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.features = features
        self.t_max, self.gamma = t_max, gamma
        self.config = config
        self.policy = policy
        self.meta = dict(meta or {})
        if features == "embed" and policy is None:
            raise ValueError("this explainer reads the policy's embedding: pass the policy (policy=...)")

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, policy: Any, env: Any, *, env_kwargs: dict[str, Any] | None = None, states: int = 2000,
            num_envs: int = 64, features: str = "auto", predictor: PredictorConfig | dict | None = None,
            queries: ActionQueries | None = None, progress: bool = False, **collect_kwargs: Any
            ) -> tuple[CrystalBox, Samples]:
        """Collect ``states`` sampled states of ``policy`` on ``env`` (an ID or a native vector env,
        see :func:`~.collect.collect` for the other settings) and train on them.

        Returns the explainer and the samples it was trained on.
        """
        with owned_env(env, num_envs, env_kwargs) as vec:
            pi = build_policy(policy, vec)
            queries = queries or ActionQueries(vec.single_action_space)
            samples = collect(pi, vec, states=states, queries=queries, features=features, progress=progress,
                              **collect_kwargs)
        meta = {"env_id": env if isinstance(env, str) else None, "env_kwargs": env_kwargs or {},
                "policy_name": getattr(pi, "name", type(pi).__name__)}
        model = cls.from_samples(samples, vec.single_observation_space, queries, policy=pi,
                                 features=samples.info["features"], predictor=predictor, progress=progress,
                                 meta=meta)
        return model, samples

    @classmethod
    def from_samples(cls, samples: Samples, observation_space: spaces.Space, queries: ActionQueries, *,
                     policy: Any = None, features: str = "observation", predictor: PredictorConfig | dict | None = None,
                     progress: bool = False, meta: dict[str, Any] | None = None) -> CrystalBox:
        """Train an explainer on collected samples."""
        config = predictor if isinstance(predictor, PredictorConfig) else PredictorConfig(**(predictor or {}))
        normaliser = Normaliser.fit(samples.returns)
        x = samples.inputs(features)
        net, history = train_network(x, samples.state, queries.index(samples.action),
                                     normaliser.transform(samples.returns), queries.discrete, queries.width,
                                     config, progress)
        meta = {**(meta or {}), "trained_states": samples.num_states, "trained_queries": len(samples),
                "epochs": history["epochs"], "finetune_epochs": history["finetune_epochs"],
                "best_val_nll": min(history["val_nll"]) if history["val_nll"] else None}
        return cls(net, normaliser, queries, observation_space, samples.components, samples.weights, features,
                   samples.t_max, samples.gamma, config, policy=policy, meta=meta)

    # ------------------------------------------------------------------ prediction
    def inputs(self, obs: Any, batched: bool) -> np.ndarray:
        """Predictor inputs of observations: (B, F), or (1, F) for one observation."""
        if self.features == "embed":
            return embed(self.policy, obs, batched)
        return flatten(self.observation_space, obs, batched)

    def predict(self, x: np.ndarray, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Means and standard deviations (N, C) in reward units for inputs ``x`` ((N, F), or
        (1, F) shared by all N actions) and ``actions``."""
        a = self.queries.check(actions)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.net.x_in.in_features or len(x) not in (1, len(a)):
            raise ValueError(f"inputs must be (1 or {len(a)}, {self.net.x_in.in_features}), got {x.shape}")
        index = self.queries.index(a)
        with torch.inference_mode():
            mean, std = self.net(torch.from_numpy(x), torch.as_tensor(index))
        mean = np.clip(mean.numpy().astype(np.float64), 0.0, 1.0)
        std = std.numpy().astype(np.float64)
        constant = self.normaliser.constant        # all-zero in training: predicted exactly
        mean[:, constant], std[:, constant] = 0.0, 0.0
        return self.normaliser.inverse(mean), self.normaliser.inverse_std(std)

    def query(self, obs: Any, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Means and standard deviations (A, C) in reward units for one observation, A actions."""
        return self.predict(self.inputs(obs, batched=False), actions)

    def predict_samples(self, samples: Samples) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (R, C) for every query of ``samples`` (collected on a matching env)."""
        x = samples.inputs(self.features)
        means, stds = [], []
        for start in range(0, len(samples), 65536):
            rows = slice(start, start + 65536)
            m, s = self.predict(x[samples.state[rows]], samples.action[rows])
            means.append(m)
            stds.append(s)
        return np.concatenate(means), np.concatenate(stds)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the explainer (plain data, see the module docstring); returns the path."""
        path = Path(path)
        settings = {"components": list(self.components), "weights": self.weights.tolist(), "features": self.features,
                    "t_max": self.t_max, "gamma": self.gamma, "predictor": self.config.to_dict(),
                    "normaliser": self.normaliser.to_data(), "max_actions": self.queries.max_actions,
                    "alternatives": self.queries.alternatives,
                    "perturbations": None if self.queries.discrete else self.queries.perturbations.tolist(),
                    "in_features": self.net.x_in.in_features}
        try:
            meta_text = dumps(self.meta)
        except ValueError:  # e.g. env kwargs holding trace objects: keep what can be stored
            meta_text = dumps({k: v for k, v in self.meta.items() if _storable(v)})
        payload = {"format": FORMAT, "settings": dumps(settings), "meta": meta_text,
                   "spaces": json.dumps([space_to_data(self.observation_space), space_to_data(self.queries.space)]),
                   "model": self.net.state_dict()}
        return atomic_replace(path, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, path: str | Path, policy: Any = None) -> CrystalBox:
        """Read an explainer written by :meth:`save` (``policy``: needed when it reads embeddings)."""
        path = Path(path)
        if path.is_dir():
            path = path / "crystalbox.pt"
        payload = load_torch_file(path, "sysgym CrystalBox model")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"{path}: not a sysgym CrystalBox model (format {FORMAT!r} expected, found {found!r})")
        try:
            settings = loads(payload["settings"])
            meta = loads(payload["meta"])
            if not isinstance(settings, dict) or not isinstance(meta, dict):
                raise ValueError("settings and meta must be JSON objects")
            if meta.get("env_id") is not None:
                registered_id(meta["env_id"], str(path))
            obs_data, act_data = load_json_text(payload["spaces"], f"{path}: spaces")
            observation_space, action_space = space_from_data(obs_data), space_from_data(act_data)
            queries = ActionQueries(action_space, settings["max_actions"], settings["alternatives"],
                                    settings["perturbations"])
            config = PredictorConfig.from_dict(settings["predictor"])
            normaliser = Normaliser.from_data(settings["normaliser"])
            components = tuple(settings["components"])
            weights = np.asarray(settings["weights"], dtype=np.float64)
            if weights.shape != (len(components),) or len(normaliser.lo) != len(components):
                raise ValueError(f"{len(components)} components but {weights.size} weights and "
                                 f"{len(normaliser.lo)} normaliser bounds")
            if not np.all(np.isfinite(weights)):
                raise ValueError("reward weights must be finite")
            features = settings["features"]
            if features not in ("observation", "embed"):
                raise ValueError(f"unknown features {features!r}")
            in_features = check_sizes(settings["in_features"], queries.width, len(components), config, str(path))
            if features == "observation" and in_features != flat_size(observation_space):
                raise ValueError("input size does not match the observation space")
            check_finite_tensors(payload["model"], path, "CrystalBox model")
            net = ReturnNetwork(in_features, queries.width, queries.discrete, len(components), config)
            net.load_state_dict(payload["model"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            message = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
            if message.startswith(str(path)):
                raise ValueError(message) from None
            raise ValueError(f"{path}: damaged sysgym CrystalBox model: {message}") from None
        if features == "embed":
            if policy is None:
                raise ValueError(f"{path} explains from the policy's embedding: pass the policy "
                                 f"({meta.get('policy_name', 'the one it was fitted on')})")
            resolve_mode("embed", policy)
        return cls(net, normaliser, queries, observation_space, components, weights,
                   features, int(settings["t_max"]), float(settings["gamma"]), config, policy=policy, meta=meta)


def _storable(value: Any) -> bool:
    try:
        dumps(value)
        return True
    except ValueError:
        return False
