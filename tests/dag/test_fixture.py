"""A 7-node DAG worked out by hand: D = 8, width 3, and one edge (2 -> 3) brings it to width 2, L = 8.

    node   0  1  2  3  4  5  6          0 -> 1 -> 4 -> 6
    C      1  3  2  2  2  2  1          0 -> 2 -> 5 -> 6
                                        0 -> 3 -> 5

Paths: 0-1-4-6 = 7, 0-2-5-6 = 6, 0-3-5-6 = 6, so L = 7 <= D = 8. Comparable pairs besides the
source and sink: 1<4, 2<5, 3<5. The chains {0,1,4,6}, {2,5}, {3} cover every node, so W <= 3, and
{1,2,3} is an antichain, so W = 3. The antichains of size 3 are {1,2,3} and {4,2,3} ({1,5} and
{4,5} cannot grow: 5 is above 2 and 3), so the critical nodes are 1, 2, 3, 4.
Lateral widths: nodes incomparable to 1 (or to 4) are {2,3,5} with 2<5, 3<5: width 2; to 2:
{1,3,4} with 1<4: 2; to 3: {1,2,4}: 2; to 5: {1,4}: 1; 0 and 6 are comparable to everything: 0.
Times: EST = 0,1,1,1,4,3,6, EFT = 1,4,3,3,6,5,7; backwards from D = 8: LFT_6 = 8, LST_6 = 7;
LFT_4 = LFT_5 = 7, LST_4 = LST_5 = 5; LFT_1 = 5, LST_1 = 2; LFT_2 = LFT_3 = 5, LST_2 = LST_3 = 3;
LFT_0 = 2, LST_0 = 1.
Lower bound: vol = 13, ceil(13/8) = 2; critical C = 3+2+2+2 = 9 over [min EST, max LFT] = [1, 7]:
ceil(9/6) = 2; lb = 2 < W, so the episode starts.
Valid edges between critical, incomparable nodes with EFT_i <= LST_j: 2->3 (3 <= 3), 3->2,
2->4 (3 <= 5), 3->4; not 1->2 (4 > 3), 2->1 (3 > 2), 4->2, 4->3, 1->3, 3->1; 1->4 is implied.
After 2 -> 3: path 0-2-3-5-6 = 1+2+2+2+1 = 8 = D, chains {0,1,4,6}, {2,3,5}: W = 2 = lb, done.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sysgym.agents.heuristics.dag import GreedyWidth, list_schedule, list_scheduling_cores
from sysgym.envs.dag import DAGEnv, analyse_task, make_task, parse_dot

WCET = [1, 3, 2, 2, 2, 2, 1]
EDGES = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 5), (4, 6), (5, 6)]
N = 7


def action(i: int, j: int) -> int:
    return i * N + j


@pytest.fixture
def env():
    return DAGEnv(workload=make_task(WCET, EDGES, 8, name="fixture"))


def test_start_state_by_hand(env):
    obs, info = env.reset(seed=0)
    assert (info["width"], info["critical_path"], info["width_lower_bound"], info["deadline"]) == (3, 7, 2, 8)
    table = env.node_table()
    assert table["est"].tolist() == [0, 1, 1, 1, 4, 3, 6]
    assert table["eft"].tolist() == [1, 4, 3, 3, 6, 5, 7]
    assert table["lst"].tolist() == [1, 2, 3, 3, 5, 5, 7]
    assert table["lft"].tolist() == [2, 5, 5, 5, 7, 7, 8]
    assert table["lateral"].tolist() == [0, 2, 2, 2, 2, 1, 0]
    assert np.flatnonzero(table["critical"]).tolist() == [1, 2, 3, 4]
    valid = {(int(a) // N, int(a) % N) for a in np.flatnonzero(info["action_mask"])}
    assert valid == {(2, 3), (3, 2), (2, 4), (3, 4)}
    nodes = obs["nodes"]
    np.testing.assert_array_equal(nodes[:, 0], np.float32(np.array(WCET) / 8))
    np.testing.assert_array_equal(nodes[:, 3], np.float32(np.array([0, 2, 2, 2, 2, 1, 0]) / 7))
    assert nodes[:, 4].tolist() == [1.0] * 7
    closure = obs["closure"]
    assert closure[0].tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert closure[1].tolist() == [0, 0, 0, 0, 1, 0, 1]
    assert closure[2].tolist() == closure[3].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert closure[:, 0].sum() == 0


def test_one_edge_brings_width_to_two_at_l_equal_d(env):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action(2, 3))
    assert reward == 1.0
    np.testing.assert_array_equal(info["reward_components"], [1.0, -1 / 8, 0.0])
    assert (info["width"], info["critical_path"]) == (2, 8)
    assert terminated and not truncated
    metrics = info["episode_metrics"]
    assert metrics["initial_width"] == 3 and metrics["cores_needed"] == metrics["final_width"] == 2
    assert metrics["critical_path"] == 8 and metrics["slack"] == 0 and metrics["edges_added"] == 1
    assert env.added_edges() == [(2, 3)]


def test_an_edge_that_keeps_an_antichain_leaves_the_width(env):
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(action(2, 4))   # {1,2,3} is still an antichain
    assert reward == 0.0 and not terminated
    assert (info["width"], info["critical_path"]) == (3, 7)  # 0-2-4-6 = 6 <= 7


def test_processor_assignment_is_a_chain_cover_meeting_the_deadline(env):
    env.reset(seed=0)
    env.step(action(2, 3))
    procs = env.processor_assignment()
    assert sorted(set(procs.tolist())) == [0, 1]
    table = env.node_table()
    for p in (0, 1):
        nodes = np.flatnonzero(procs == p)
        for u, v in itertools.combinations(nodes, 2):      # a chain: totally ordered
            assert table["closure"][u, v] or table["closure"][v, u]
    assert table["eft"].max() <= 8


def test_greedy_takes_the_width_reducing_edge_with_most_slack(env):
    obs, info = env.reset(seed=0)
    width, length = env.edge_outcomes()
    assert {int(a): (int(width[a]), int(length[a])) for a in np.flatnonzero(width >= 0)} == {
        action(2, 3): (2, 8), action(3, 2): (2, 8), action(2, 4): (3, 7), action(3, 4): (3, 7)}
    assert GreedyWidth(env).act(obs, info) == action(2, 3)       # tie with 3->2 broken by index


def test_list_scheduling_by_hand():
    """Bottom levels 7,6,5,5,3,3,1. On 2 cores: 0@0; 1,2@1 (1 first: level 6); 3@3 when 2 ends;
    4@4; 5@5; 6@7 -> makespan 8 = D. One core needs vol = 13 > 8, so 2 cores."""
    task = make_task(WCET, EDGES, 8)
    makespan, start, core = list_schedule(task, 2)
    assert makespan == 8
    assert start.tolist() == [0, 1, 1, 3, 4, 5, 7]
    assert core.tolist() == [0, 0, 1, 1, 0, 1, 0]
    assert list_schedule(task, 1)[0] == 13
    assert list_scheduling_cores(task) == 2


def test_the_fixture_as_dot():
    text = """digraph fixture { D = 8;
      0 [label="src, C=1"]; 1 [label="C=3"]; 2 [label="C=2"]; 3 [C=2]; 4 [label="C=2"];
      5 [label="C=2"]; 6 [label="sink, C=1"];
      0 -> {1 2 3}; 1 -> 4 -> 6; 2 -> 5; 3 -> 5 -> 6;
    }"""
    (task,) = parse_dot(text)
    assert list(task.wcet) == WCET and sorted(task.edges) == sorted(EDGES) and task.deadline == 8


def test_analyse_task_outside_an_episode():
    start = analyse_task(make_task(WCET, EDGES, 8))
    assert (start["width"], start["critical_path"], start["lower_bound"], start["done"]) == (3, 7, 2, False)
    assert start["lateral"].tolist() == [0, 2, 2, 2, 2, 1, 0]
    assert analyse_task(make_task(WCET, EDGES, 8), processors=3)["done"]
    after = analyse_task(make_task(WCET, EDGES + [(2, 3)], 8))
    assert (after["width"], after["critical_path"], after["done"]) == (2, 8, True)
