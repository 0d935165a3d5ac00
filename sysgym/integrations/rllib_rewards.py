"""Reward normalisation for RLlib's PPO, as sysgym's PPO does it (``normalize_reward``).

RLlib's PPO has no reward normalisation, and the presets of DeepRM, ABR, DAG and CC-Discrete
rely on it: raw DeepRM returns (about -300 per episode) or CC's (about 5e5) swamp the value loss
and, through global gradient clipping, stall the policy. :class:`NormalizeRewards` is a learner
connector piece placed just before RLlib's GAE: it divides each module's rewards by the running
standard deviation of the discounted return and clips them to ``[-clip, clip]``, the statistics
updated once per train batch with every step's discounted return (the discounted return of an
episode cut at the end of a batch carries on into its next chunk). This is what
``sysgym.agents.ppo.trainer.PPOTrainer._scale_rewards`` does per rollout. Only the learner sees
the scaled rewards: the env runners' episode returns and metrics stay raw.

:class:`RewardNormalizingPPOTorchLearner` is RLlib's PPO torch learner with that piece in its
pipeline when ``learner_config_dict["sysgym_normalize_reward"]`` is true, and its statistics in
the learner's state (so in checkpoints). It imports ray: import it only where RLlib runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.utils.numpy import convert_to_numpy

from sysgym.agents.ppo.observations import RunningMeanStd

#: ``learner_config_dict`` key that turns reward normalisation on (:func:`configure` sets it).
NORMALIZE_REWARD = "sysgym_normalize_reward"
STATE_KEY = "sysgym_return_rms"
REWARD_CLIP = 10.0  # sysgym PPO's clip_reward


class NormalizeRewards(ConnectorV2):
    """Learner connector piece: rewards / sqrt(running var of the discounted return + 1e-8), clipped."""

    def __init__(self, input_observation_space: Any = None, input_action_space: Any = None, *,
                 gamma: float, clip: float = REWARD_CLIP, **kwargs: Any):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.gamma, self.clip = float(gamma), float(clip)
        self.rms: dict[str, RunningMeanStd] = {}
        self.running: dict[str, float] = {}   # episode id -> discounted return where its last chunk ended

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any) -> Any:
        chunks = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        carried: dict[str, float] = {}
        for module_id, module_batch in batch.items():
            if not isinstance(module_batch, dict) or Columns.REWARDS not in module_batch:
                continue
            mine = [e for e in chunks if e.module_id in (None, module_id)]
            rewards = convert_to_numpy(module_batch[Columns.REWARDS]).astype(np.float64)
            lengths = [len(e) for e in mine]   # each with the bootstrap step GAE appended
            if sum(lengths) != rewards.shape[0]:
                raise ValueError(f"reward normalisation: module {module_id!r} has {rewards.shape[0]} rewards for "
                                 f"episode chunks of {sum(lengths)} steps (recurrent modules are not supported)")
            returns, real = np.zeros_like(rewards), np.zeros(rewards.shape[0], dtype=bool)
            start = 0
            for episode, length in zip(mine, lengths):
                base = episode.id_.rsplit("_", 1)[0]   # RLlib suffixes each chunk's id with its index
                running = self.running.get(base, 0.0)
                for t in range(start, start + length - 1):   # the last step is GAE's bootstrap slot
                    running = running * self.gamma + rewards[t]
                    returns[t] = running
                real[start:start + length - 1] = True
                if not episode.is_terminated:
                    carried[base] = running
                start += length
            rms = self.rms.setdefault(module_id, RunningMeanStd())
            rms.update(returns[real])
            scaled = np.clip(rewards / np.sqrt(rms.var + 1e-8), -self.clip, self.clip)
            scaled[~real] = rewards[~real]
            old = module_batch[Columns.REWARDS]
            module_batch[Columns.REWARDS] = (torch.as_tensor(scaled, dtype=old.dtype, device=old.device)
                                             if isinstance(old, torch.Tensor) else scaled.astype(old.dtype))
        self.running = carried   # episodes not continued in this batch ended (or their runner did)
        return batch

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"rms": {m: (float(r.mean), float(r.var), float(r.count)) for m, r in self.rms.items()},
                "running": dict(self.running)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rms = {}
        for module_id, (mean, var, count) in state.get("rms", {}).items():
            rms = self.rms[module_id] = RunningMeanStd()
            rms.mean, rms.var, rms.count = np.asarray(mean), np.asarray(var), float(count)
        self.running = dict(state.get("running", {}))


class RewardNormalizingPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPO torch learner with :class:`NormalizeRewards` before GAE (when the config asks),
    its statistics kept in the learner's state under ``"sysgym_return_rms"``."""

    def build(self) -> None:
        super().build()
        self._reward_normalizer: NormalizeRewards | None = None
        if (self.config.learner_config_dict or {}).get(NORMALIZE_REWARD) and self._learner_connector is not None:
            self._reward_normalizer = NormalizeRewards(gamma=self.config.gamma)
            self._learner_connector.insert_before(GeneralAdvantageEstimation, self._reward_normalizer)

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        normalizer = getattr(self, "_reward_normalizer", None)
        if normalizer is not None and components is None:
            state[STATE_KEY] = normalizer.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        normalizer = getattr(self, "_reward_normalizer", None)
        if normalizer is not None and STATE_KEY in state:
            normalizer.set_state(state[STATE_KEY])
