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
    graham_bound,
    graham_cores,
    he2019_bound,
    he2019_cores,
    he2019_paths,
    he2019_priorities,
    list_schedule,
    list_scheduling_cores,
    preemptive_schedule,
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


# ---------------------------------------------------------------- sound analyses: Graham 1969, He et al. 2019
def test_graham_hand_examples():
    chain = make_task([2, 3, 4], [(0, 1), (1, 2)], 9)
    assert graham_cores(chain) == 1                   # vol = L: the bound is L at every m
    independent = make_task([3, 3, 3, 3], [], 6)      # 3 + 9 / m <= 6 from m = 3 (list scheduling: 2)
    assert graham_bound(independent, 2) == 7.5 and graham_cores(independent) == 3
    assert list_scheduling_cores(independent) == 2
    # L = 6, vol = 11: 6 + 5 / m <= 7 from m = 5; with D = L no m suffices
    task = make_task([1, 4, 2, 1, 3], [(0, 1), (0, 2), (1, 3), (2, 3)], 7)
    assert graham_cores(task) == 5 and graham_bound(task, 5) == 7.0
    assert graham_cores(make_task([1, 4, 2, 1, 3], [(0, 1), (0, 2), (1, 3), (2, 3)], 6)) is None


def test_he2019_hand_example():
    """a(1) -> b(4) -> d(1), a -> c(2) -> d, e(3) alone (nodes 0..4 = a..e).

    Longest paths through each node: l = (6, 6, 4, 6, 3), lb = (6, 5, 3, 1, 3). Priorities: a (the
    source with the largest l), then its successor of largest l, b; b's successor d still has an
    unranked ancestor c, so c is ranked first, then d; then e. Interference sets (higher priority,
    parallel): I(c) = {b}, I(e) = {a, b, c, d}, the rest empty. Paths a-b-d (6, {}), a-c-d (4, {b})
    and e (3, {a, b, c, d}): R(m) = max(6, 4 + 4 / m, 3 + 8 / m)."""
    task = make_task([1, 4, 2, 1, 3], [(0, 1), (0, 2), (1, 3), (2, 3)], 7)
    assert he2019_priorities(task) == [0, 1, 2, 3, 4]
    assert he2019_paths(task) == [(3, 8), (4, 4), (6, 0)]
    assert [he2019_bound(task, m) for m in (1, 2, 3, 8)] == [11.0, 7.0, 6.0, 6.0]
    assert he2019_cores(task) == 2 < graham_cores(task) == 5
    assert he2019_cores(make_task(task.wcet, task.edges, 6)) == 3
    # on 2 cores: a, e at 0; b, c from 1 (e preempted); at 3 c ends and e resumes; b and e end
    # at 5, d runs 5-6
    assert preemptive_schedule(task, 2, he2019_priorities(task)) == 6


def test_he2019_needs_preemption():
    """0(1) -> {1(6), 2(5), 3(5)}, 4(3) alone; ranks 0..4 in node order; on 2 cores the bound is
    max(7, 6 + 6/2, 6 + 11/2, 3 + 17/2) = 11.5. Preemptive: 0, 4 at 0; 1, 2 from 1 (4 preempted);
    2 ends at 6, 3 runs 6-11, 1 ends at 7, 4 finishes 7-9: makespan 11. Non-preemptive list
    scheduling lets 4 (lowest priority, started at 0) keep its core until 3, so 3 starts only at 7
    and ends at 12 > 11.5: the bound is for preemptive scheduling only."""
    task = make_task([1, 6, 5, 5, 3], [(0, 1), (0, 2), (0, 3)], 12)
    ranks = he2019_priorities(task)
    assert ranks == [0, 1, 2, 3, 4] and he2019_bound(task, 2) == 11.5
    assert preemptive_schedule(task, 2, ranks) == 11
    assert list_schedule(task, 2, ranks)[0] == 12


def test_list_scheduling_is_not_sound():
    """Critical path first on 2 cores (bottom levels 4, 10, 10, 7, 5, 3): at the WCETs 1 and 2 run
    0-3, then 3 (3-7) and 4 (3-5), 0 (5-9), 5 (7-10) meets D = 10. With node 2 one unit shorter,
    0 takes the core 2 frees at 2 (runs 2-6), so 4 waits until 6 and 5 runs 8-11: a miss."""
    task = make_task([4, 3, 3, 4, 2, 3], [(1, 3), (1, 4), (1, 5), (2, 3), (3, 5), (4, 5)], 10)
    assert list_scheduling_cores(task) == 2 and list_schedule(task, 2)[0] == 10
    assert list_schedule(task, 2, execution=[4, 3, 2, 4, 2, 3])[0] == 11


def _all_paths(task):
    succ = [[] for _ in range(task.num_nodes)]
    has_pred = [False] * task.num_nodes
    for u, v in task.edges:
        succ[u].append(v)
        has_pred[v] = True
    stack = [[v] for v in range(task.num_nodes) if not has_pred[v]]
    while stack:
        path = stack.pop()
        if not succ[path[-1]]:
            yield path
        stack += [path + [w] for w in succ[path[-1]]]


def test_he2019_bound_is_the_maximum_over_all_paths():
    """Against a brute force: every source-to-sink path, its interference set from the closure."""
    for task in generate_tasks(25, seed=31, num_nodes=(6, 12)) + generate_tasks(
            10, seed=32, workload="forkjoin", num_nodes=(6, 14)):
        closure = analyse_task(task)["closure"]
        ranks = he2019_priorities(task)
        assert sorted(ranks) == list(range(task.num_nodes))
        assert all(ranks[u] < ranks[v] for u, v in task.edges)           # a topological order
        parallel = ~(closure | closure.T)
        for m in (1, 2, 3, 5):
            best = 0.0
            for path in _all_paths(task):
                hit = set()
                for v in path:
                    hit |= {u for u in range(task.num_nodes) if u != v and parallel[u, v] and ranks[u] < ranks[v]}
                best = max(best, sum(task.wcet[v] for v in path) + sum(task.wcet[u] for u in hit) / m)
            assert he2019_bound(task, m) == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("workload", ["layered", "forkjoin"])
def test_analyses_are_sound_under_shorter_execution_times(workload):
    """Neither analysis claims fewer cores than simulations need: on random tasks, with random
    execution times in [0, WCET], Graham's bound holds for every work-conserving schedule we run
    (list scheduling critical path first or by He's ranks, preemptive by He's ranks) and He'19's
    bound for its own preemptive priority scheduler; at the core counts they certify, D is met."""
    rng = np.random.default_rng(5)
    for task in generate_tasks(12, seed=41, workload=workload, num_nodes=(8, 20)):
        ranks = he2019_priorities(task)
        graham_m, he_m = graham_cores(task), he2019_cores(task)
        for m in sorted({1, 2, 3, 5, graham_m or 1, he_m or 1}):
            for trial in range(12):
                execution = (rng.integers(0, np.array(task.wcet) + 1) if trial else task.wcet)
                greedy = [list_schedule(task, m, execution=execution)[0],
                          list_schedule(task, m, ranks, execution)[0],
                          preemptive_schedule(task, m, ranks, execution)]
                assert max(greedy) <= graham_bound(task, m) + 1e-9
                assert greedy[2] <= he2019_bound(task, m) + 1e-9
                if m == graham_m:
                    assert max(greedy) <= task.deadline
                if m == he_m:
                    assert greedy[2] <= task.deadline


def test_schedulers_and_bounds_refuse_bad_arguments():
    task = make_task([1, 2, 3], [(0, 1)], 6)
    for call in (lambda: list_schedule(task, 0), lambda: preemptive_schedule(task, True),
                 lambda: graham_bound(task, 0), lambda: he2019_bound(task, -1)):
        with pytest.raises(ValueError, match="processors"):
            call()
    with pytest.raises(ValueError, match="priority"):
        list_schedule(task, 2, priority=[0, 1])
    with pytest.raises(ValueError, match="execution"):
        preemptive_schedule(task, 2, execution=[1, 3, 3])              # 3 > WCET 2
