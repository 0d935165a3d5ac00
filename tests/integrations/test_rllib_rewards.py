"""RLlib reward normalisation (sysgym/integrations/rllib_rewards.py): the same scaling as sysgym's
PPO (rewards over the running std of the discounted return, clipped), carried across chunks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed here; its tests run in .venv-rllib")
torch = pytest.importorskip("torch", reason="torch is not installed here; the RLlib tests run in .venv-rllib")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.env.single_agent_episode import SingleAgentEpisode  # noqa: E402

from sysgym.integrations import rllib as srl  # noqa: E402
from sysgym.integrations.rllib_rewards import NormalizeRewards  # noqa: E402

GAMMA = 0.5


def _chunk(episode_id: str, index: int, rewards: list[float], terminated: bool) -> SingleAgentEpisode:
    """A chunk as GAE's pipeline hands it on: id suffixed with its index, one bootstrap step (reward 0) appended."""
    steps = len(rewards) + 1
    return SingleAgentEpisode(id_=f"{episode_id}_{index}", observations=[np.zeros(1)] * (steps + 1),
                              actions=[0] * steps, rewards=[*rewards, 0.0], terminated=terminated,
                              len_lookback_buffer=0)


def _call(piece: NormalizeRewards, chunks: list[SingleAgentEpisode]) -> np.ndarray:
    rewards = torch.tensor(np.concatenate([e.get_rewards() for e in chunks]), dtype=torch.float32)
    batch = {"default_policy": {Columns.REWARDS: rewards}}
    out = piece(rl_module=None, batch=batch, episodes=chunks)
    return out["default_policy"][Columns.REWARDS].numpy()


def _std(values: list[float]) -> float:
    """sysgym PPO's RunningMeanStd after one update from its prior (mean 0, var 1, count 1e-4)."""
    x = np.asarray(values)
    n, prior = len(x), 1e-4
    delta = x.mean()
    var = (1.0 * prior + x.var() * n + delta * delta * prior * n / (prior + n)) / (prior + n)
    return float(np.sqrt(var + 1e-8))


def test_rewards_are_divided_by_the_running_std_of_the_discounted_return_and_clipped():
    piece = NormalizeRewards(gamma=GAMMA, clip=1.5)
    # episode a ends (terminated) after rewards 2, 4, 8; episode b is cut after 1, 1
    got = _call(piece, [_chunk("a", 0, [2.0, 4.0, 8.0], True), _chunk("b", 1, [1.0, 1.0], False)])
    returns = [2.0, 2.0 * GAMMA + 4.0, (2.0 * GAMMA + 4.0) * GAMMA + 8.0, 1.0, 1.0 * GAMMA + 1.0]
    std = _std(returns)
    expected = [min(2.0 / std, 1.5), min(4.0 / std, 1.5), min(8.0 / std, 1.5), 0.0,
                1.0 / std, 1.0 / std, 0.0]            # bootstrap slots keep their 0
    assert got == pytest.approx(expected, rel=1e-6)
    assert piece.running == {"b": pytest.approx(1.5)}  # only the cut episode carries on


def test_a_cut_episode_carries_its_discounted_return_into_its_next_chunk_and_state_round_trips():
    piece = NormalizeRewards(gamma=GAMMA)
    _call(piece, [_chunk("b", 0, [1.0, 1.0], False)])
    restored = NormalizeRewards(gamma=GAMMA)
    restored.set_state(piece.get_state())
    for p in (piece, restored):
        _call(p, [_chunk("b", 0, [4.0], True)])        # next chunk: G = 1.5 * 0.5 + 4 = 4.75
    rms = piece.rms["default_policy"]
    all_returns = np.array([1.0, 1.5, 4.75])           # one running statistic over both batches
    assert float(rms.mean) == pytest.approx(all_returns.mean(), rel=1e-3)
    assert float(rms.var) == pytest.approx(all_returns.var(), rel=1e-3)
    assert piece.get_state() == restored.get_state() and piece.running == {}


def test_the_preset_decides_and_other_algorithms_are_refused():
    from ray.rllib.algorithms.dqn import DQNConfig

    on = srl.ppo_config("sysgym/DeepRM-CompactSparse-v0")       # DeepRM's preset normalises rewards
    assert on.learner_class.__name__ == "RewardNormalizingPPOTorchLearner"
    assert on.learner_config_dict["sysgym_normalize_reward"] is True
    off = srl.ppo_config("sysgym/DeepRM-CompactSparse-v0", normalize_reward=False)
    assert "sysgym_normalize_reward" not in off.learner_config_dict
    assert srl.configure(DQNConfig(), "sysgym/CC-Discrete-v0", action_masking=False).learner_config_dict.get(
        "sysgym_normalize_reward") is None
    with pytest.raises(ValueError, match="normalize_reward uses sysgym's PPO learner"):
        srl.configure(DQNConfig(), "sysgym/CC-Discrete-v0", action_masking=False, normalize_reward=True)


def test_the_train_command_takes_normalize_reward_as_a_setting():
    from tests.integrations.test_rllib_train_command import _args

    config = srl.train_config(_args("--env", "sysgym/DeepRM-CompactSparse-v0", "--steps", "1"))
    assert config.learner_config_dict.get("sysgym_normalize_reward") is True
    config = srl.train_config(_args("--env", "sysgym/DeepRM-CompactSparse-v0", "--steps", "1", "normalize_reward=false"))
    assert config.learner_config_dict.get("sysgym_normalize_reward") is None
    with pytest.raises(ValueError, match="normalize_reward takes true or false"):
        srl.train_config(_args("--env", "sysgym/DeepRM-CompactSparse-v0", "--steps", "1", "normalize_reward=3"))
