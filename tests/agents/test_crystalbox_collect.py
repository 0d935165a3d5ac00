"""CrystalBox data collection on real envs: targets against independent replays, the factual
trajectory untouched by the counterfactual forks, and the queried action sets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.crystalbox import ActionQueries, collect
from sysgym.agents.heuristics.abr import RobustMPC
from sysgym.agents.heuristics.cc import AIMD
from sysgym.agents.heuristics.dag import GreedyWidth
from sysgym.agents.heuristics.deeprm import RandomScheduler


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small torch networks on a busy 2-core machine: one thread (the PPO trainer's default)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_vec(env_id: str, n: int, **kwargs):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode="Disabled",
                        **kwargs)


def replayed_returns(env_id: str, seed: int, prefix: int, action: int, t_max: int, gamma: float) -> np.ndarray:
    """Play robustMPC from reset(seed) for ``prefix`` steps in a fresh single env, take ``action``,
    then robustMPC again; the discounted sum of reward_components * reward_weights."""
    env = gym.make(env_id)
    pi = RobustMPC(env)
    obs, info = env.reset(seed=seed)
    for _ in range(prefix):
        obs, _, terminated, truncated, info = env.step(pi.act(obs, info))
        assert not (terminated or truncated)
    pi.act(obs, info)   # robustMPC records the last measurement when it acts
    weights = env.unwrapped.reward_weights
    total, discount = np.zeros(len(weights)), 1.0
    for k in range(t_max):
        obs, _, terminated, truncated, info = env.step(action)
        total += discount * info["reward_components"] * weights
        discount *= gamma
        if terminated or truncated:
            break
        if k + 1 < t_max:
            action = pi.act(obs, info)
    return total


def test_abr_targets_equal_independent_replays():
    """Factual and counterfactual targets of a stateful policy (robustMPC's throughput memory)
    equal replays from the start of the episode in a fresh env — no snapshot involved."""
    samples = collect(RobustMPC, "sysgym/ABR-v0", num_envs=1, states=6, warmup=3, every=4, t_max=3,
                      gamma=0.9, seed=5)
    assert samples.components == ("quality", "rebuffer", "smoothness")
    assert samples.num_states == 6 and len(samples) == 36    # every level of every state
    for r in range(len(samples)):
        step = int(samples.episode_step[samples.state[r]])
        expected = replayed_returns("sysgym/ABR-v0", 5, step, int(samples.action[r]), 3, 0.9)
        np.testing.assert_allclose(samples.returns[r], expected, rtol=1e-12, atol=1e-12)


class Recorder:
    """Logs the observations it acts on (forks act on deep copies, with their own logs)."""

    def __init__(self, inner):
        self.inner, self.log = inner, []

    def act(self, obs, info):
        self.log.append(np.array(obs, copy=True))
        return self.inner.act(obs, info)


def reference_run(env_id: str, make_policy, steps: int, seed: int, **kwargs):
    vec = make_vec(env_id, 4, **kwargs)
    pi = make_policy(vec)
    obs, info = vec.reset(seed=seed)
    log = []
    for _ in range(steps):
        log.append(np.array(obs, copy=True))
        obs, _, terminated, truncated, info = vec.step(pi.act(obs, info))
        ended = terminated | truncated
        if ended.any():
            obs, info = vec.reset(options={"reset_mask": ended})
    return log, vec.get_state()


def sampling_ppo(env):
    """An untrained PPO policy that samples its actions (seeded weights and sampler)."""
    from sysgym.agents.ppo import ActorCritic, PPOPolicy, default_config
    from sysgym.agents.ppo.observations import ObservationAdapter

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    space, actions = env.single_observation_space, env.single_action_space
    return PPOPolicy(ActorCritic(space, actions, default_config("sysgym/ABR-v0")), ObservationAdapter(space),
                     deterministic=False, seed=1)


@pytest.mark.parametrize("env_id, make_policy, kwargs", [
    ("sysgym/ABR-v0", RobustMPC, {}),
    ("sysgym/ABR-v0", sampling_ppo, {}),
    ("sysgym/DeepRM-Compact-v0", lambda env: RandomScheduler(env, seed=3), {}),
    ("sysgym/CC-v0", AIMD, {"traces": "synthetic", "link_set": "train"}),
])
def test_counterfactual_forks_leave_the_factual_trajectory_bit_identical(env_id, make_policy, kwargs):
    vec = make_vec(env_id, 4, **kwargs)
    recorder = Recorder(make_policy(vec))
    samples = collect(recorder, vec, states=40, warmup=2, every=1, t_max=4, seed=7)
    assert (~samples.factual).sum() >= 5      # counterfactuals were really forked
    steps = len(recorder.log)
    expected, final = reference_run(env_id, make_policy, steps, 7, **kwargs)
    for k, (got, want) in enumerate(zip(recorder.log, expected)):
        assert np.array_equal(got, want), f"step {k} differs"
    # the env itself ends where the plain run ends (one more step was taken after the last act)
    state = vec.get_state()
    vec2 = make_vec(env_id, 4, **kwargs)
    vec2.set_state(final)
    for key, value in state["arrays"].items():
        assert np.array_equal(value, final["arrays"][key]), key


def test_large_action_spaces_query_a_few_valid_alternatives():
    samples = collect(GreedyWidth, "sysgym/DAG-EGS-v0", num_envs=4, states=12, warmup=1, every=2,
                      queries=ActionQueries(gym.spaces.Discrete(900), max_actions=16, alternatives=3), seed=0)
    for s in range(samples.num_states):
        asked = samples.action[samples.state == s]
        mask = samples.mask[s]
        assert 2 <= len(asked) <= 4 and len(set(asked.tolist())) == len(asked)
        assert mask[asked].all()                                    # only valid actions
        assert samples.factual[samples.state == s].sum() == 1


def test_continuous_actions_use_the_documented_perturbation_set():
    samples = collect(AIMD, "sysgym/CC-v0", num_envs=4, states=8, warmup=2, every=2, seed=0)
    assert samples.action.shape == (len(samples), 1)
    for s in range(samples.num_states):
        asked = samples.action[(samples.state == s) & ~samples.factual, 0]
        np.testing.assert_allclose(np.sort(asked), [-1.0, -0.5, 0.0, 0.5, 1.0])


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="perturbations"):
        ActionQueries(gym.spaces.Box(-1.0, 1.0, (1,)), perturbations=[[2.0]])
    with pytest.raises(ValueError, match="Discrete or bounded Box"):
        ActionQueries(gym.spaces.Box(-np.inf, np.inf, (1,)))
    with pytest.raises(ValueError, match="every"):
        collect(RobustMPC, "sysgym/ABR-v0", num_envs=1, states=2, every=0)
    with pytest.raises(ValueError, match="embed"):
        collect(RobustMPC, "sysgym/ABR-v0", num_envs=1, states=2, features="embed")
