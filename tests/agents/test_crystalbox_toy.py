"""CrystalBox on a toy env whose returns are known in closed form.

``ToyChain`` implements only the public native-vector-env API CrystalBox relies on (``reset``
with ``reset_mask``, ``step``, ``get_state``/``set_state``, ``reward_components``/``reward_weights``,
``info["reward_components"]`` and ``info["action_mask"]``), so these tests also show that the
collector needs nothing else. The expected returns come from :func:`reference_returns`, a direct
transcription of the toy's rules, never from the collector.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from sysgym.agents.crystalbox import CrystalBox, collect
from sysgym.agents.crystalbox.actions import ActionQueries

K, LENGTH = 5, 9
WEIGHTS = np.array([1.0, 0.5, 2.0])


class ToyChain(VectorEnv):
    """Position x on a ring of K cells; action a in {0, 1, 2} moves a cells (2 is masked in the
    last cell). Components of a step landing on x': gain = a, cost = -x', bonus = [x' == 0];
    weights (1, 0.5, 2). Observation: one-hot x and t / LENGTH; episodes end after LENGTH steps.
    Resets draw x from a seeded generator (part of the snapshot)."""

    reward_components = ("gain", "cost", "bonus")
    reward_weights = WEIGHTS
    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode.DISABLED
        self.single_observation_space = spaces.Box(0.0, 1.0, (K + 1,), dtype=np.float32)
        self.single_action_space = spaces.Discrete(3)
        self.x = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.comps = np.zeros((num_envs, 3))
        self.rng = np.random.default_rng(0)

    def _out(self):
        obs = np.zeros((self.num_envs, K + 1), dtype=np.float32)
        obs[np.arange(self.num_envs), self.x] = 1.0
        obs[:, K] = self.t / LENGTH
        mask = np.ones((self.num_envs, 3), dtype=np.int8)
        mask[self.x == K - 1, 2] = 0
        return obs, {"reward_components": self.comps.copy(), "action_mask": mask}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mask = (options or {}).get("reset_mask", np.ones(self.num_envs, dtype=bool))
        self.x[mask] = self.rng.integers(0, K, int(mask.sum()))
        self.t[mask] = 0
        self.comps[mask] = 0.0
        return self._out()

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64)
        assert np.all((a >= 0) & (a <= 2)) and not np.any((a == 2) & (self.x == K - 1)), "masked action stepped"
        self.x = (self.x + a) % K
        self.t = self.t + 1
        self.comps = np.column_stack([a, -self.x, self.x == 0]).astype(np.float64)
        obs, info = self._out()
        return obs, self.comps @ WEIGHTS, self.t >= LENGTH, np.zeros(self.num_envs, dtype=bool), info

    def get_state(self):
        return {"x": self.x.copy(), "t": self.t.copy(), "comps": self.comps.copy(),
                "rng": self.rng.bit_generator.state}

    def set_state(self, state):
        self.x, self.t, self.comps = state["x"].copy(), state["t"].copy(), state["comps"].copy()
        self.rng.bit_generator.state = state["rng"]


def toy_policy(x: np.ndarray) -> np.ndarray:
    return np.where(x < 2, 1, 0)


class ToyPolicy:
    def act(self, obs, info):
        return toy_policy(np.argmax(np.asarray(obs)[:, :K], axis=1))


def reference_returns(x: int, t: int, a: int, t_max: int, gamma: float) -> np.ndarray:
    """Weighted discounted component returns of taking ``a`` at (x, t), then the toy policy."""
    total, discount = np.zeros(3), 1.0
    for _ in range(t_max):
        if t >= LENGTH:
            break
        x = (x + a) % K
        t += 1
        total += discount * WEIGHTS * np.array([a, -x, float(x == 0)])
        discount *= gamma
        a = int(toy_policy(np.array([x]))[0])
    return total


def toy_samples(states: int, t_max: int = 3, gamma: float = 0.9, warmup: int = 1, every: int = 2, seed: int = 0):
    env = ToyChain(8)
    return collect(ToyPolicy(), env, states=states, warmup=warmup, every=every, t_max=t_max, gamma=gamma,
                   seed=seed), env


def test_targets_equal_hand_computed_discounted_component_sums():
    samples, _ = toy_samples(states=60, t_max=4, gamma=0.8)
    assert samples.num_states == 60 and samples.components == ("gain", "cost", "bonus")
    x = np.argmax(samples.obs[:, :K], axis=1)
    t = samples.episode_step
    assert np.all(t >= 1)
    np.testing.assert_array_equal(np.round(samples.obs[:, K] * LENGTH), t)
    for r in range(len(samples)):
        s = samples.state[r]
        expected = reference_returns(int(x[s]), int(t[s]), int(samples.action[r]), 4, 0.8)
        np.testing.assert_allclose(samples.returns[r], expected, rtol=0, atol=1e-12)
    # every valid action of every state is asked about, pi's action flagged factual, masks respected
    for s in range(samples.num_states):
        asked = np.sort(samples.action[samples.state == s])
        valid = [0, 1] if x[s] == K - 1 else [0, 1, 2]
        np.testing.assert_array_equal(asked, valid)
        factual = samples.action[(samples.state == s) & samples.factual]
        np.testing.assert_array_equal(factual, toy_policy(x[s:s + 1]))


def test_sampling_schedule_skips_warmup_and_spaces_samples():
    samples, _ = toy_samples(states=80, warmup=3, every=3)
    assert samples.episode_step.min() >= 3
    # every=3 within an episode: sampled steps of one sub-env are 3 apart, so (t - warmup) % 3 is
    # the same for all states of a sub-env; the staggered starts give several phases overall
    assert len(np.unique(samples.episode_step)) >= 3


def test_discount_one_and_horizon_one():
    samples, _ = toy_samples(states=20, t_max=1, gamma=1.0)
    x = np.argmax(samples.obs[:, :K], axis=1)[samples.state]
    a = samples.action
    landing = (x + a) % K
    np.testing.assert_allclose(samples.returns, WEIGHTS * np.column_stack([a, -landing, landing == 0]))


def test_predictor_recovers_known_returns():
    """The returns are deterministic functions of (position, step, action). Tolerance: on states
    of other episodes, every predicted mean within 5 % of its component's span of the true return,
    10 times closer on average, and predicted deviations small (median < 5 % of the span)."""
    train, _ = toy_samples(states=600, seed=0)
    test, _ = toy_samples(states=100, seed=1)
    box = CrystalBox.from_samples(train, ToyChain(1).single_observation_space, ActionQueries(spaces.Discrete(3)),
                                  predictor={"hidden": 64, "tail_hidden": 64, "epochs": 200, "patience": 20,
                                             "lr": 5e-3, "batch_size": 128})
    mean, std = box.predict_samples(test)
    span = box.normaliser.span
    error = np.abs(mean - test.returns) / span
    assert error.max() < 0.05, error.max(axis=0)
    assert error.mean() < 0.01, error.mean(axis=0)
    assert np.median(std / span) < 0.05


def test_collection_needs_a_disabled_autoreset_env():
    env = ToyChain(2)
    env.autoreset_mode = AutoresetMode.NEXT_STEP
    with pytest.raises(ValueError, match="Disabled"):
        collect(ToyPolicy(), env, states=5)
    with pytest.raises(ValueError, match="warmup"):
        collect(ToyPolicy(), ToyChain(2), states=5, warmup=LENGTH + 1, max_steps=200)
    with pytest.raises(ValueError, match="gamma"):
        collect(ToyPolicy(), ToyChain(2), states=5, gamma=1.5)
    with pytest.raises(ValueError, match="states or episodes"):
        collect(ToyPolicy(), ToyChain(2), states=None)
