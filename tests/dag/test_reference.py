"""The kernel against the networkx reference (tests/reference/dag.py), state by state."""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.dag import DAGEnv, make_task
from sysgym.envs.seeding import rng_state
from tests.reference import dag as ref
from tests.reference.rng import Rng


def random_dag(rng: np.random.Generator, max_n: int):
    """A random DAG whose node numbers are not a topological order, WCETs with zeros, D in [L, vol]."""
    n = int(rng.integers(2, max_n + 1))
    perm = rng.permutation(n)
    density = rng.uniform(0.0, 0.6)
    edges = [(int(perm[a]), int(perm[b])) for a in range(n) for b in range(a + 1, n) if rng.random() < density]
    wcet = [int(c) for c in rng.integers(0, 7, size=n)]
    if rng.random() < 0.3:
        wcet[int(rng.integers(n))] = 0
    length = ref._longest(n, wcet, edges)
    deadline = max(1, int(rng.integers(length, max(length, sum(wcet)) + 1)))
    return wcet, edges, deadline


def assert_state_matches(env: DAGEnv, obs: dict, info: dict, episode: ref.ReferenceEpisode) -> None:
    a = episode.a
    expected = episode.obs()
    for key in ("nodes", "closure", "action_mask"):
        np.testing.assert_array_equal(obs[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(info["action_mask"], expected["action_mask"])
    assert info["width"] == a.width
    assert info["critical_path"] == a.length
    assert info["width_lower_bound"] == a.lower_bound
    table = env.node_table()
    assert table["est"].tolist() == a.est
    assert table["lft"].tolist() == a.lft
    assert table["lateral"].tolist() == a.lateral
    assert table["critical"].tolist() == a.critical
    assert a.length <= episode.deadline


def test_500_random_dags_match_reference_at_the_start():
    rng = np.random.default_rng(2024)
    raw = [random_dag(rng, 12) for _ in range(500)]
    tasks = [make_task(w, e, d, name=f"r{k}") for k, (w, e, d) in enumerate(raw)]
    env = DAGEnv(workload=tasks, max_nodes=12)
    skipped = {k for k, _, _ in env.skipped_tasks}
    checked_brute = 0
    for k, (wcet, edges, deadline) in enumerate(raw):
        episode = ref.ReferenceEpisode(wcet, edges, deadline, 12)
        if len(wcet) <= 8:       # the matching-based width and critical set against enumeration
            width, members = ref.antichains_brute_force(ref.closure_of(len(wcet), edges))
            assert episode.a.width == width
            assert {v for v in range(len(wcet)) if episode.a.critical[v]} == members
            checked_brute += 1
        if episode.done():
            assert k in skipped
            continue
        assert k not in skipped
        obs, info = env.reset(options={"task": k})
        assert_state_matches(env, obs, info, episode)
    assert len(skipped) < 400 and checked_brute > 100


def test_random_rollouts_match_reference_step_by_step():
    rng = np.random.default_rng(7)
    raw = [random_dag(rng, 12) for _ in range(150)]
    tasks = [make_task(w, e, d) for w, e, d in raw]
    env = DAGEnv(workload=tasks, max_nodes=12)
    actions = np.random.default_rng(0)
    steps = invalid = 0
    for k in env.unwrapped.batched.playable_tasks:
        episode = ref.ReferenceEpisode(*raw[k], 12)
        obs, info = env.reset(options={"task": k})
        while True:
            if actions.random() < 0.2:      # any action of the space: the rejection path too
                action = int(actions.integers(env.action_space.n))
            else:
                action = int(actions.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(action)
            comps, ref_term, ref_trunc = episode.step(action)
            steps += 1
            invalid += info["invalid_action"]
            assert info["invalid_action"] == (comps[2] < 0)
            np.testing.assert_array_equal(info["reward_components"], comps)
            assert (terminated, truncated) == (ref_term, ref_trunc)
            assert_state_matches(env, obs, info, episode)
            if terminated or truncated:
                assert info["episode_metrics"] == pytest.approx(episode.metrics(), abs=0)
                break
    assert steps > 300 and invalid > 30


def test_huge_times_match_reference_exactly():
    """WCETs and deadlines up to 2^53: times, bounds and observations are exact (no int64
    overflow, no float rounding in the lower bound)."""
    rng = np.random.default_rng(11)
    raw = []
    for _ in range(40):
        wcet, edges, deadline = random_dag(rng, 10)
        scale = 2**52 // max(sum(wcet), 1)
        raw.append(([c * scale + int(rng.integers(0, 2)) * (c > 0) for c in wcet], edges, None))
    tasks, kept = [], []
    for wcet, edges, _ in raw:
        length = ref._longest(len(wcet), wcet, edges)
        deadline = int(rng.integers(max(length, 1), 2**53 + 1))
        tasks.append(make_task(wcet, edges, deadline))
        kept.append((wcet, edges, deadline))
    env = DAGEnv(workload=tasks, max_nodes=10)
    actions = np.random.default_rng(3)
    big = 0
    for k in env.unwrapped.batched.playable_tasks:
        episode = ref.ReferenceEpisode(*kept[k], 10)
        obs, info = env.reset(options={"task": k})
        assert_state_matches(env, obs, info, episode)
        big += info["deadline"] > 2**52
        for _ in range(5):
            action = int(actions.choice(np.flatnonzero(info["action_mask"])))
            obs, _, terminated, truncated, info = env.step(action)
            comps, _, _ = episode.step(action)
            np.testing.assert_array_equal(info["reward_components"], comps)
            assert_state_matches(env, obs, info, episode)
            if terminated or truncated:
                break
    assert big > 5


def test_all_zero_wcets_get_a_positive_deadline():
    env = DAGEnv(num_nodes=(2, 3), wcet=(0, 1), utilisation_min=1.0)
    zero = 0
    for seed in range(60):
        _, info = env.reset(seed=seed)
        task = env.unwrapped.task()
        assert task.deadline >= 1
        zero += sum(task.wcet) == 0
    assert zero > 0                           # the case that used to divide by D = 0


GENERATORS = [
    {"workload": "layered", "num_nodes": (3, 12), "parallelism": 4, "edge_probability": 0.3,
     "wcet": (1, 9), "utilisation_min": 1.0},
    {"workload": "layered", "num_nodes": (8, 8), "parallelism": 8, "edge_probability": 0.05,
     "wcet": (0, 5), "utilisation_min": 2.5},
    {"workload": "layered", "num_nodes": (6, 14), "layers": (2, 5), "edge_probability": 0.2,
     "wcet": (1, 7), "utilisation_min": 1.5},
    {"workload": "forkjoin", "num_nodes": (4, 12), "term_probability": 0.3, "fork_probability": 0.6,
     "max_branches": 4, "max_depth": 3, "wcet": (1, 6), "utilisation_min": 1.5},
    {"workload": "forkjoin", "num_nodes": (9, 10), "term_probability": 0.1, "fork_probability": 0.9,
     "max_branches": 6, "max_depth": 5, "wcet": (2, 3), "utilisation_min": 2.0},
    # WCETs 0 or 1 on 2-3 nodes: some tasks have L = 0, whose deadline must still be >= 1
    {"workload": "layered", "num_nodes": (2, 3), "parallelism": 3, "edge_probability": 0.5,
     "wcet": (0, 1), "utilisation_min": 1.0},
    # times near the top of their range: 8 x 2^50 = 2^53
    {"workload": "layered", "num_nodes": (5, 8), "parallelism": 4, "edge_probability": 0.3,
     "wcet": (2**49, 2**50), "utilisation_min": 1.0},
]


@pytest.mark.parametrize("params", GENERATORS, ids=lambda p: f"{p['workload']}-{p['num_nodes']}")
def test_generators_match_reference(params):
    max_nodes = params["num_nodes"][1]
    env = DAGEnv(**params)
    params = {"parallelism": 8, **params}
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        episode = ref.reset_generated(Rng(rng_state(seed)), params, max_nodes)
        task = env.unwrapped.task()
        assert list(task.wcet) == episode.wcet
        assert set(task.edges) == set(episode.edges)
        assert task.deadline == episode.deadline
        assert_state_matches(env, obs, info, episode)
        action = int(np.flatnonzero(info["action_mask"])[-1])     # follow with a few steps
        for _ in range(3):
            obs, _, terminated, truncated, info = env.step(action)
            episode.step(action)
            assert_state_matches(env, obs, info, episode)
            if terminated or truncated:
                assert info["episode_metrics"]["tasks_redrawn"] == episode.redraws
                break
            action = int(np.flatnonzero(info["action_mask"])[0])


@pytest.mark.parametrize("workload", ["layered", "forkjoin"])
def test_larger_generated_episodes_match_reference(workload):
    params = {"workload": workload, "num_nodes": (34, 40)}
    env = DAGEnv(**params)
    full = {"wcet": (1, 10), "utilisation_min": 2.0, "parallelism": 8, "edge_probability": 0.1,
            "term_probability": 0.2, "fork_probability": 0.8, "max_branches": 5, "max_depth": 4, **params}
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=99)
    episode = ref.reset_generated(Rng(rng_state(99)), full, 40)
    assert_state_matches(env, obs, info, episode)
    for _ in range(12):
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, _, terminated, truncated, info = env.step(action)
        episode.step(action)
        assert_state_matches(env, obs, info, episode)
        if terminated or truncated:
            break


def test_multi_word_bitsets_match_reference():
    """n = 70 nodes padded to 130 (three 64-bit words per node set): closure, times and matchings
    that cross word boundaries."""
    rng = np.random.default_rng(5)
    n = 70
    perm = rng.permutation(n)
    edges = [(int(perm[a]), int(perm[b])) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.04]
    wcet = [int(c) for c in rng.integers(1, 9, size=n)]
    length = ref._longest(n, wcet, edges)
    deadline = length + (sum(wcet) - length) // 4
    env = DAGEnv(workload=make_task(wcet, edges, deadline), max_nodes=130)
    episode = ref.ReferenceEpisode(wcet, edges, deadline, 130)
    obs, info = env.reset(seed=0)
    assert episode.a.width > 10
    assert_state_matches(env, obs, info, episode)
    actions = np.random.default_rng(2)
    for _ in range(6):
        action = int(actions.choice(np.flatnonzero(info["action_mask"])))
        obs, _, terminated, _, info = env.step(action)
        episode.step(action)
        assert_state_matches(env, obs, info, episode)
        if terminated:
            break
