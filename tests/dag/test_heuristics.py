"""DAG baselines: random and greedy edge choice, and critical-path-first global list scheduling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401
from sysgym.agents.evaluation import evaluate_batched
from sysgym.agents.heuristics import heuristics_for
from sysgym.agents.heuristics.dag import (
    GreedyWidth,
    RandomEdge,
    bottom_levels,
    list_schedule,
    list_scheduling_cores,
)
from sysgym.envs.dag import DAGEnv, analyse_task, generate_tasks, make_task

ENV_ID = "sysgym/DAG-EGS-v0"


def test_registry_finds_the_family_heuristics():
    assert set(heuristics_for(ENV_ID)) == {"random", "greedy"}


def test_random_edge_is_valid_and_seeded():
    env = gym.make(ENV_ID)
    runs = []
    for _ in range(2):
        policy = RandomEdge(env, seed=3)
        obs, info = env.reset(seed=1)
        actions = []
        for _ in range(200):
            action = policy.act(obs, info)
            assert info["action_mask"][action] == 1
            actions.append(action)
            obs, _, terminated, _, info = env.step(action)
            assert not info["invalid_action"]
            if terminated:
                obs, info = env.reset()
        runs.append(actions)
    assert runs[0] == runs[1]


def test_greedy_is_the_best_edge_found_by_trying_each():
    env = DAGEnv(num_nodes=(12, 16))
    policy = GreedyWidth(env)
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        for _ in range(3):
            snapshot = env.get_state()
            outcomes = []
            for a in np.flatnonzero(info["action_mask"]):
                env.set_state(snapshot)
                _, _, _, _, after = env.step(int(a))
                outcomes.append((after["width"], after["critical_path"], int(a)))
            env.set_state(snapshot)
            best = min(outcomes)[2]        # fewest cores, then most slack, then smallest index
            assert policy.act(obs, info) == best
            obs, _, terminated, _, info = env.step(best)
            if terminated:
                break


def test_heuristics_act_on_a_vector_env_like_on_single_envs():
    vec = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", num_nodes=(10, 14))
    single = [DAGEnv(num_nodes=(10, 14)) for _ in range(3)]
    _, infos = vec.reset(seed=50)
    singles = [env.reset(seed=50 + i) for i, env in enumerate(single)]
    batch_policy = GreedyWidth(vec)
    for _ in range(5):
        actions = batch_policy.act(None, infos)
        for i, env in enumerate(single):
            assert GreedyWidth(env).act(*singles[i]) == actions[i]
        _, _, terminated, _, infos = vec.step(actions)
        if terminated.any():
            break
        singles = [(o, inf) for o, _, _, _, inf in (env.step(int(a)) for env, a in zip(single, actions))]


def test_greedy_and_random_report_cores_needed():
    vec = gym.make_vec(ENV_ID, num_envs=6, vectorization_mode="vector_entry_point", num_nodes=(12, 12))
    for cls in (RandomEdge, GreedyWidth):
        result = evaluate_batched(cls(vec, seed=0), vec, seed=7)
        assert len(result.metrics) == 6
        for m in result.metrics:
            assert m["width_lower_bound"] <= m["cores_needed"] <= m["initial_width"]
            assert m["invalid_actions"] == 0 and m["slack"] >= 0


# ---------------------------------------------------------------- list scheduling
def test_list_scheduling_hand_examples():
    chain = make_task([2, 3, 4], [(0, 1), (1, 2)], 9)
    assert list_schedule(chain, 1)[0] == 9 and list_scheduling_cores(chain) == 1
    assert bottom_levels(chain) == [9, 7, 4]

    independent = make_task([3, 3, 3, 3], [], 6)
    assert list_schedule(independent, 1)[0] == 12
    assert list_schedule(independent, 2)[0] == 6 and list_scheduling_cores(independent) == 2

    # zero-WCET source and sink around three parallel nodes: on 2 cores 1 and 2 run in [0, 2],
    # 3 in [2, 4], the sink at 4
    forkjoin = make_task([0, 2, 2, 2, 0], [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)], 4)
    makespan, start, core = list_schedule(forkjoin, 2)
    assert makespan == 4 and start.tolist() == [0, 0, 0, 2, 4] and core.tolist() == [0, 0, 1, 0, 0]
    assert list_scheduling_cores(forkjoin) == 2

    # critical path first: node 3 (bottom level 6) starts at 0, so 2 cores finish at L = 6
    cp_first = make_task([1, 1, 1, 5, 1], [(3, 4)], 7)
    makespan, start, _ = list_schedule(cp_first, 2)
    assert start[3] == 0 and makespan == 6


@pytest.mark.parametrize("workload", ["layered", "forkjoin"])
def test_list_schedules_are_feasible_and_the_core_count_minimal(workload):
    for task in generate_tasks(15, seed=3, workload=workload, num_nodes=(8, 20)):
        best = list_scheduling_cores(task)
        for m in range(1, best + 2):
            makespan, start, core = list_schedule(task, m)
            finish = start + np.array(task.wcet)
            for u, v in task.edges:                              # precedence
                assert finish[u] <= start[v]
            for c in range(m):                                   # one node at a time per core
                mine = np.flatnonzero(core == c)
                order = mine[np.argsort(start[mine], kind="stable")]
                assert np.all(finish[order[:-1]] <= start[order[1:]])
            assert makespan == finish.max()
            if m < best:
                assert makespan > task.deadline
            elif m == best:
                assert makespan <= task.deadline


def test_a_list_schedule_turned_into_edges_is_an_egs_solution():
    """Chaining the nodes each core runs gives a DAG of width <= cores and L <= makespan (the
    schedule stays feasible for it): the env's W and L must agree, so EGS's optimum is never worse
    than list scheduling; the greedy's gap in the benchmark is myopia, not the model."""
    for task in generate_tasks(12, seed=8, num_nodes=(12, 24)):
        cores = list_scheduling_cores(task)
        makespan, start, core = list_schedule(task, cores)
        extra = []
        for c in range(cores):
            mine = np.flatnonzero(core == c)
            order = mine[np.argsort(start[mine], kind="stable")]
            extra += [(int(u), int(v)) for u, v in zip(order[:-1], order[1:])]
        chained = analyse_task(make_task(task.wcet, list(task.edges) + extra, task.deadline))
        assert chained["width"] <= cores and chained["critical_path"] <= makespan <= task.deadline
