"""Distillation core: simulated Q, critical states, DAgger vs behaviour cloning, masks, model files.

Most tests run on *Ledge*, a tiny deterministic env built here: positions x = 0..8 on a track;
on the track the right action is 1 at x = 2, 5, 8 and 0 elsewhere (+1 and one step forward);
the wrong one drops the agent off the track (reward 0). Off the track, action 1 climbs back
one step further on (reward 0) and action 0 stays off (-1). The teacher never falls, so its
states never show what to do off the track: a student that only clones it does not learn to
climb back, while DAgger visits the student's own off-track states and learns it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

import sysgym  # noqa: F401  (registers the sysgym IDs)
from sysgym.agents.distill import (
    CartStudent,
    DistillConfig,
    EnvMaker,
    Rule,
    RulePolicy,
    Samples,
    StateBank,
    Tree,
    TreePolicy,
    distill,
    load_student,
    select_critical,
    simulate_q,
    training_set,
)
from sysgym.agents.distill.features import flatten, observation_layout
from sysgym.agents.distill.rollouts import collect
from sysgym.agents.distill.tree import build_tree

K, T = 9, 30
LEDGE = "distilltest/Ledge-v0"


def right_action(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) % 3 == 2).astype(np.int64)


class LedgeVectorEnv(gym.vector.VectorEnv):
    feature_names = ("x", "off")

    def __init__(self, num_envs: int = 1, autoreset_mode: str = "NextStep", copy: bool = True,
                 max_episode_steps: int | None = None):
        self.num_envs = num_envs
        self.single_observation_space = spaces.Box(0.0, float(K), (2,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        self.s = {"x": np.zeros(num_envs, np.int64), "off": np.zeros(num_envs, np.int64),
                  "t": np.zeros(num_envs, np.int64), "needs_reset": np.ones(num_envs, np.uint8)}

    def _out(self):
        obs = np.stack([self.s["x"], self.s["off"]], axis=1).astype(np.float32)
        return obs, {"action_mask": np.ones((self.num_envs, 2), np.int8)}

    def reset(self, seed=None, options=None):
        mask = (options or {}).get("reset_mask")
        mask = np.ones(self.num_envs, bool) if mask is None else mask
        for key in ("x", "off", "t", "needs_reset"):
            self.s[key][mask] = 0
        return self._out()

    def step(self, actions):
        a, s = np.asarray(actions), self.s
        resetting = s["needs_reset"].astype(bool)
        if resetting.any() and self.autoreset_mode == AutoresetMode.DISABLED:
            raise RuntimeError("step after the episode ended")
        live = ~resetting
        x, off = s["x"], s["off"]
        on, fallen = live & (off == 0), live & (off == 1)
        good = a == right_action(x)
        reward = np.where(on & good, 1.0, 0.0) - np.where(fallen & (a == 0), 1.0, 0.0)
        climb = fallen & (a == 1)
        x += (on & good) | climb
        off[on & ~good] = 1
        off[climb] = 0
        s["t"] += live
        terminated = live & (x >= K)
        truncated = live & ~terminated & (s["t"] >= T)
        for key in ("x", "off", "t", "needs_reset"):
            s[key][resetting] = 0
        s["needs_reset"][terminated | truncated] = 1
        obs, info = self._out()
        return obs, reward, terminated, truncated, info

    def get_state(self):
        return {"format": "ledge/1", "class": "LedgeVectorEnv", "num_envs": self.num_envs, "config": "K9T30",
                "arrays": {k: v.copy() for k, v in self.s.items()}}

    def set_state(self, state):
        assert state["class"] == "LedgeVectorEnv" and state["num_envs"] == self.num_envs
        for key, value in state["arrays"].items():
            self.s[key][...] = value


class LedgeEnv(gym.Env):
    feature_names = LedgeVectorEnv.feature_names

    def __init__(self, max_episode_steps: int | None = None):
        self.vec = LedgeVectorEnv(1, "Disabled")
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        obs, info = self.vec.reset()
        return obs[0], {"action_mask": info["action_mask"][0]}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.vec.step(np.array([action]))
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), {"action_mask": info["action_mask"][0]}


if LEDGE not in gym.registry:
    gym.register(LEDGE, entry_point=LedgeEnv, vector_entry_point=LedgeVectorEnv)


class LedgeTeacher:
    """Right action on the track; climbs back when off it."""

    name = "ledge-teacher"

    def __init__(self, env=None):
        pass

    def act(self, obs, info=None):
        o = np.atleast_2d(np.asarray(obs))
        a = np.where(o[:, 1] > 0.5, 1, right_action(o[:, 0].astype(np.int64)))
        return a if np.asarray(obs).ndim == 2 else int(a[0])


def play(policy, steps: int = 100) -> float:
    """Undiscounted return of one Ledge episode, stepped by hand."""
    env = LedgeEnv()
    obs, info = env.reset(seed=0)
    total = 0.0
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        total += reward
        if terminated or truncated:
            break
    return total


def ledge_state(x: int) -> StateBank:
    """A bank holding the on-track Ledge state at position x (reached by following the teacher)."""
    vec = LedgeVectorEnv(1)
    obs, info = vec.reset()
    for _ in range(x):
        obs, *_, info = vec.step(LedgeTeacher().act(obs, info))
    bank = StateBank()
    bank.append(vec.get_state())
    return bank


# ---------------------------------------------------------------------------- simulated Q
def test_simulated_q_matches_hand_computation():
    # From x = 1, horizon 3, gamma 0.5. Action 0 (right): +1, then the teacher: +1 (x=2), +1 (x=3)
    # -> 1 + 0.5 + 0.25. Action 1 (wrong): falls (0), the teacher climbs back (0), then +1 at x=2
    # -> 0.25.
    maker = EnvMaker(LEDGE)
    q = simulate_q(maker, ledge_state(1), np.ones((1, 2), bool), LedgeTeacher, horizon=3, gamma=0.5)
    np.testing.assert_allclose(q, [[1.75, 0.25]])
    # At x = 8 the right action ends the episode: nothing after the end counts (the vector env
    # autoresets and would pay +1 per step of the next episode).
    q = simulate_q(maker, ledge_state(8), np.ones((1, 2), bool), LedgeTeacher, horizon=5, gamma=1.0)
    np.testing.assert_allclose(q, [[0.0, 1.0]])


def test_simulated_q_batches_masks_and_bootstraps():
    maker = EnvMaker(LEDGE)
    bank = StateBank()
    for x in (1, 4, 8):
        bank.append(ledge_state(x).take([0]))
    mask = np.array([[True, True], [True, False], [False, True]])
    q = simulate_q(maker, bank, mask, LedgeTeacher, horizon=1, gamma=0.5, batch=2, rollouts=2,
                   bootstrap=lambda obs: np.full(len(obs), 10.0))
    # horizon 1: the forced action's reward + gamma * V(next) while the episode goes on
    expected = np.array([[1 + 5.0, 0 + 5.0], [1 + 5.0, np.nan], [np.nan, 1.0]])
    np.testing.assert_allclose(q, expected)


def test_batched_q_equals_plain_single_env_rollouts_on_deeprm():
    """Forking many states into one vector env gives what a plain loop on a single env gives."""
    import itertools

    from sysgym.agents.heuristics.deeprm import ShortestJobFirst

    maker = EnvMaker("sysgym/DeepRM-Compact-v0")
    data, bank = collect(maker, ShortestJobFirst, None, 1.0, 40, itertools.count(0), num_envs=8,
                         rng=np.random.default_rng(0), record_states=True)
    rows = np.flatnonzero(data.mask.sum(axis=1) >= 2)[:4]     # states with a real choice
    assert len(rows) >= 2
    horizon, gamma = 6, 0.9
    q = simulate_q(maker, bank.subset(rows), data.mask[rows], ShortestJobFirst, horizon=horizon, gamma=gamma, batch=5)
    env = gym.make(maker.env_id)
    sjf = ShortestJobFirst(env)
    for i, row in enumerate(rows):
        for a in np.flatnonzero(data.mask[row]):
            env.unwrapped.set_state(bank.take([row]))
            obs, reward, terminated, truncated, info = env.step(int(a))
            total, discount = reward, 1.0
            for _ in range(horizon - 1):
                if terminated or truncated:
                    break
                discount *= gamma
                obs, reward, terminated, truncated, info = env.step(sjf.act(obs, info))
                total += discount * reward
            assert q[i, a] == pytest.approx(total, rel=1e-12, abs=1e-12)
        assert np.isnan(q[i][~data.mask[row]]).all()


# ---------------------------------------------------------------------------- critical states
def test_critical_filter_keeps_exactly_the_states_above_the_threshold():
    rng = np.random.default_rng(3)
    crit = np.round(rng.random(500), 2)          # many ties
    for threshold in (0.0, 0.31, 0.5, 0.99):
        keep = select_critical(crit, threshold=threshold)
        assert np.array_equal(keep, crit > threshold)
    for fraction in (0.01, 0.3, 0.77, 1.0):
        keep = select_critical(crit, fraction=fraction)
        assert keep.sum() == int(np.ceil(fraction * len(crit)))
        assert crit[keep].min() >= crit[~keep].max(initial=-np.inf)
    with pytest.raises(ValueError, match="fraction"):
        select_critical(crit, fraction=0.0)
    with pytest.raises(ValueError, match="not both"):
        select_critical(crit, fraction=0.5, threshold=0.1)


class Recorder:
    """A student that records what it is trained on."""

    name = "recorder"

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def fit(self, data):
        self.seen.append(data.X.copy())
        return CartStudent(max_depth=1).fit(data)


def test_dagger_trains_on_exactly_the_critical_states():
    recorder = Recorder()
    config = DistillConfig(iterations=1, samples=64, num_envs=4, threshold=1.4, horizon=3, gamma=0.5,
                           eval_episodes=1)
    result = distill(LEDGE, LedgeTeacher, recorder, config=config)
    q = result.data.q
    crit = np.max(q, axis=1) - np.min(q, axis=1)   # both actions are always valid on Ledge
    expected = result.data.X[crit > 1.4]   # drops x = 7, 8 (their rollouts end early)
    assert 0 < len(expected) < len(result.data)
    np.testing.assert_array_equal(recorder.seen[0], expected)
    assert result.iterates[0].kept == len(expected)


# ---------------------------------------------------------------------------- DAgger
def test_dagger_beats_behaviour_cloning_where_it_must():
    settings = {"samples": 200, "num_envs": 4, "eval_episodes": 1, "seed": 0}
    bc = distill(LEDGE, LedgeTeacher, CartStudent(max_depth=1), config=DistillConfig(iterations=1, **settings))
    dagger = distill(LEDGE, LedgeTeacher, CartStudent(max_depth=1), config=DistillConfig(iterations=4, **settings))
    # the teacher never leaves the track: cloning it shows no off-track state at all
    assert not np.any(bc.data.X[:, 1] > 0)
    assert np.any(dagger.data.X[:, 1] > 0)
    bc_return, dagger_return = play(bc.policy), play(dagger.policy)
    assert play(LedgeTeacher()) == K
    assert bc_return < 0 < dagger_return
    # the chosen iterate is the one with the best held-out return, and it is logged
    returns = [it.eval_return for it in dagger.iterates]
    assert dagger.best == int(np.argmax(returns))
    assert any(line.startswith("best iterate") for line in dagger.log)


def test_beta_schedule():
    assert DistillConfig(iterations=4, beta=0.5).betas() == [1.0, 0.5, 0.25, 0.125]
    assert DistillConfig(iterations=3).betas() == [1.0, 0.0, 0.0]
    assert DistillConfig(iterations=3, beta=[1.0, 0.3]).betas() == [1.0, 0.3, 0.3]
    for bad in ({"beta": 1.5}, {"iterations": 0}, {"weighting": "x"}, {"critical": 2.0}, {"gamma": -1}):
        with pytest.raises(ValueError):
            DistillConfig(**bad).check()


# ---------------------------------------------------------------------------- masks
def hand_tree(n_features: int, n_actions: int, rng: np.random.Generator) -> Tree:
    """A random depth-2 tree over ``n_features`` features (no learner involved)."""
    X = rng.random((50, n_features)).astype(np.float32)
    costs = rng.random((50, n_actions))
    f = rng.integers(0, n_features, 3)
    return build_tree([f[0], f[1], -1, -1, f[2], -1, -1], [0.5, 0.3, 0, 0, 0.7, 0, 0], [1, 2, -1, -1, 5, -1, -1],
                      [4, 3, -1, -1, 6, -1, -1], rng.integers(0, n_actions, 7), X, costs, np.ones(50),
                      np.zeros(n_features, bool))


def test_masks_are_never_violated():
    rng = np.random.default_rng(0)
    policy = TreePolicy(hand_tree(4, 5, rng), [f"f{i}" for i in range(4)], [str(a) for a in range(5)], (4,))
    X = rng.random((2000, 4)).astype(np.float32)
    mask = rng.random((2000, 5)) < 0.3
    mask[np.arange(2000), rng.integers(0, 5, 2000)] = True
    actions = policy.act(X, {"action_mask": mask.astype(np.int8)})
    assert mask[np.arange(2000), actions].all()
    preferred = policy.act(X)
    assert policy.fallbacks == int(np.sum(~mask[np.arange(2000), preferred]))
    singles = [policy.act(x, {"action_mask": m}) for x, m in zip(X[:200], mask[:200])]
    assert np.array_equal(singles, actions[:200])

    rule = Rule(terms=(((0, 0.5, True),),), then_action=1, else_action=0, n_actions=2, boolean=np.ones(3, bool))
    rule_policy = RulePolicy(rule, ["a", "b", "c"], ["no", "yes"], (3,))
    B = rng.integers(0, 2, (300, 3)).astype(np.float32)
    m = np.zeros((300, 2), bool)
    m[np.arange(300), rng.integers(0, 2, 300)] = True
    assert m[np.arange(300), rule_policy.act(B, {"action_mask": m})].all()


def test_tree_policy_keeps_deeprm_masks():
    """Driven by a random tree, DeepRM never records an invalid action (the env counts them)."""
    rng = np.random.default_rng(1)
    env = gym.make("sysgym/DeepRM-Compact-v0")
    n = env.observation_space.shape[0]
    policy = TreePolicy(hand_tree(n, 11, rng), [f"f{i}" for i in range(n)], [str(a) for a in range(11)], (n,))
    obs, info = env.reset(seed=5)
    while True:
        action = policy.act(obs, info)
        assert info["action_mask"][action] == 1
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert info["episode_metrics"]["invalid_actions"] == 0
    assert policy.decisions > 0


# ---------------------------------------------------------------------------- model files
def deeprm_samples(n: int = 300) -> tuple[Samples, tuple[str, ...]]:
    import itertools

    from sysgym.agents.heuristics.deeprm import ShortestJobFirst

    maker = EnvMaker("sysgym/DeepRM-Compact-v0")
    data, _ = collect(maker, ShortestJobFirst, None, 1.0, n, itertools.count(0), num_envs=8,
                      rng=np.random.default_rng(0))
    return data, gym.make(maker.env_id).unwrapped.feature_names


def test_export_load_act_round_trip(tmp_path):
    data, names = deeprm_samples()
    tree = CartStudent(max_depth=4).fit(training_set(data))
    policy = TreePolicy(tree, names, [f"slot{i}" for i in range(10)] + ["void"], (len(names),), {"note": "x"})
    paths = policy.save_all(tmp_path)
    loaded = load_student(paths["json"])
    assert isinstance(loaded, TreePolicy) and loaded.meta == {"note": "x"}
    rng = np.random.default_rng(2)
    X = np.concatenate([data.X, rng.random((300, len(names))).astype(np.float32)])
    mask = np.concatenate([data.mask, rng.random((300, 11)) < 0.5])
    for info in (None, {"action_mask": mask}):
        assert np.array_equal(policy.act(X, info), loaded.act(X, info))
    assert [policy.act(x) for x in X[:50]] == [loaded.act(x) for x in X[:50]]
    text = paths["txt"].read_text()
    used = {names[f] for f in tree.feature if f >= 0}
    assert used and all(name in text for name in used) and text.count("if ") == tree.n_nodes - tree.n_leaves
    assert paths["dot"].read_text().startswith("digraph")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rule = Rule(terms=(((1, 0.5, True), (2, 0.25, False)), ((0, 0.5, False),)), then_action=0, else_action=1,
                n_actions=2, boolean=np.array([True, True, False]), form="cnf")
    rule_policy = RulePolicy(rule, ["a", "b", "c"], ["short", "long"], (3,))
    rule_paths = rule_policy.save_all(tmp_path / "rule")
    loaded_rule = load_student(rule_paths["json"])
    B = rng.integers(0, 2, (200, 3)).astype(np.float32)
    B[:, 2] = rng.random(200)
    assert np.array_equal(rule_policy.act(B), loaded_rule.act(B))
    assert isinstance(loaded_rule, RulePolicy) and loaded_rule.model.form == "cnf"


def test_malformed_model_files_name_the_field(tmp_path):
    rng = np.random.default_rng(0)
    good = TreePolicy(hand_tree(3, 2, rng), ["a", "b", "c"], ["0", "1"], (3,)).save(tmp_path / "tree.json")
    data = json.loads(good.read_text())
    cases = {
        "model.feature": lambda d: d["model"].__setitem__("feature", [7] * len(d["model"]["feature"])),
        "model.left/right": lambda d: d["model"].__setitem__("left", [0] * len(d["model"]["left"])),
        "model.order": lambda d: d["model"]["order"].__setitem__(0, [0, 0]),
        "format": lambda d: d.__setitem__("format", "pickle"),
        "observation": lambda d: d.__setitem__("observation", [[None, [4]]]),
    }
    for field, edit in cases.items():
        broken = json.loads(json.dumps(data))
        edit(broken)
        path = tmp_path / f"bad_{field.replace('/', '_')}.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=f"{path.name}.*{field}"):
            load_student(path)
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(ValueError, match="junk.json"):
        load_student(tmp_path / "junk.json")
    with pytest.raises(FileNotFoundError):
        load_student(tmp_path / "missing.json")


def test_dict_observations_flatten_as_gymnasium(tmp_path):
    env = gym.make("sysgym/DAG-EGS-v0")
    obs, info = env.reset(seed=0)
    layout = observation_layout(env.observation_space)
    X, batched = flatten(obs, layout)
    assert not batched
    np.testing.assert_array_equal(X[0], spaces.flatten(env.observation_space, obs).astype(np.float32))
    n_actions = env.action_space.n
    policy = TreePolicy(hand_tree(X.shape[1], n_actions, np.random.default_rng(4)),
                        env.unwrapped.feature_names, [str(a) for a in range(n_actions)], layout)
    loaded = load_student(policy.save(tmp_path / "dag.json"))
    action = policy.act(obs, info)
    assert info["action_mask"][action] == 1 and loaded.act(obs, info) == action
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert loaded.act(batch, {"action_mask": np.stack([info["action_mask"]] * 2)}).tolist() == [action, action]


def test_heavy_imports_stay_out():
    code = ("import sys, sysgym, sysgym.agents.distill, sysgym.agents.distill.commands\n"
            "import sysgym.envs.deeprm, sysgym.envs.appointments, sysgym.envs.abr, sysgym.envs.cc, sysgym.envs.dag\n"
            "heavy = [m for m in ('torch', 'sklearn', 'pystreed', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
