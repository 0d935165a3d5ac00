"""DAG-EGS env behaviour: kwargs, invalid actions, deadline safety, helpers, task sets, rendering."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sysgym  # noqa: F401
from sysgym.envs.dag import DAGEnv, DAGVectorEnv, generate_tasks, make_task, parse_dot

FIXTURE = make_task([1, 3, 2, 2, 2, 2, 1], [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 5), (4, 6), (5, 6)], 8,
                    name="fixture")


# ---------------------------------------------------------------- kwargs
@pytest.mark.parametrize("kwargs, pattern", [
    ({"parallelism": 1}, r"parallelism must be an integer in \[2, 256\], got 1"),
    ({"parallelism": 10**9}, r"parallelism must be an integer in \[2, 256\]"),
    ({"parallelism": 4, "layers": 3}, "give parallelism .* or layers .*, not both"),
    ({"layers": (0, 2)}, r"layers\[0\] must be an integer in \[1, 256\]"),
    ({"workload": "forkjoin", "layers": 3}, "layers do\\(es\\) not apply"),
    ({"num_nodes": (9, 3)}, "num_nodes: low 9 > high 3"),
    ({"num_nodes": 1}, r"num_nodes\[0\] must be an integer in \[2, 256\]"),
    ({"num_nodes": (2, 300)}, r"num_nodes\[1\] must be an integer in \[2, 256\]"),
    ({"edge_probability": 1.5}, r"edge_probability must be a number in \[0.0, 1.0\]"),
    ({"term_probability": 0.5}, "term_probability do\\(es\\) not apply to workload='layered'"),
    ({"workload": "forkjoin", "parallelism": 3}, "parallelism do\\(es\\) not apply"),
    ({"workload": "forkjoin", "term_probability": 1.0}, r"term_probability must be a number in \[0.0, 1.0\)"),
    ({"workload": "forkjoin", "max_depth": 10**6}, r"max_depth must be an integer in \[1, 256\]"),
    ({"workload": "forkjoin", "max_branches": 10**6}, r"max_branches must be an integer in \[2, 256\]"),
    ({"workload": "forkjoin", "num_nodes": (40, 50), "max_branches": 2, "max_depth": 2},
     "have at most 10 nodes < num_nodes low=40"),
    ({"workload": FIXTURE, "wcet": (1, 3)}, "wcet do\\(es\\) not apply to a task-set workload"),
    ({"workload": FIXTURE, "max_nodes": 5}, "max_nodes=5 is smaller than the largest task"),
    ({"max_nodes": 300, "num_nodes": (20, 30)}, r"max_nodes must be an integer in \[2, 256\]"),
    ({"workload": "nonsense"}, "workload must be one of"),
    ({"workload": "layerd"}, "did you mean 'layered'"),
    ({"observation": "image"}, "observation must be one of"),
    ({"observation": ["dict"]}, "observation must be one of"),
    ({"processors": 0}, r"processors must be an integer in \[1, 256\]"),
    ({"processors": True}, r"processors must be an integer"),
    ({"max_steps": 2**40}, r"max_steps must be an integer in \[1, 2147483647\]"),
    ({"invalid_action": "ignore"}, "invalid_action must be one of"),
    ({"utilisation_min": 0}, r"utilisation_min must be a number in \(0.0, 1e\+12\]"),
    ({"slack_weight": float("nan")}, "slack_weight must be finite"),
    ({"invalid_weight": 1e300}, r"invalid_weight must be a number in \[-1e\+12, 1e\+12\]"),
    ({"wcet": (0, 0)}, "wcet must allow a positive WCET"),
    ({"wcet": (1.5, 3)}, r"wcet\[0\] must be an integer"),
    # WCETs whose sums could overflow int64 (2^58 x 30 nodes > 2^63) are refused up front
    ({"wcet": (1, 2**58)}, r"wcet\[1\] must be an integer in \[0, 9007199254740992\]"),
    ({"wcet": (1, 2**50), "num_nodes": (20, 30)}, r"num_nodes high 30 x wcet high 1125899906842624 = .* exceeds 2\^53"),
    ({"wcet": (1, 2**40), "utilisation_min": 1e-6}, r"/ utilisation_min 1e-06 exceeds 2\^53"),
])
def test_bad_kwargs_are_clear_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        DAGEnv(**kwargs)


def test_memory_and_task_count_caps():
    with pytest.raises(ValueError, match="num_envs=10000 sub-envs with max_nodes=256 need .* bytes"):
        DAGVectorEnv(10000, num_nodes=(2, 256))
    with pytest.raises(ValueError, match="a task set holds at most 65536 tasks, got 65537"):
        DAGEnv(workload=[FIXTURE] * 65537)


def test_helpers_check_the_sub_env_index():
    """The kernel does not bounds-check a sub-env index: the helpers do, before calling it."""
    vec = DAGVectorEnv(2, workload=FIXTURE)
    with pytest.raises(RuntimeError, match="sub-env 1 has not been reset yet"):
        vec.task(1)
    vec.reset(seed=0)
    for helper in (vec.processor_assignment, vec.edge_outcomes, vec.node_table, vec.task, vec.to_dot):
        for index in (2, -1, 10**6, 0.5):
            with pytest.raises(ValueError, match=r"index must be an integer in \[0, 1\]"):
                helper(index)
    with pytest.raises(ValueError, match="index must be an integer"):
        vec.explain_action(0, 5)


def test_generator_that_cannot_deliver_is_a_clear_error():
    env = DAGEnv(workload="forkjoin", num_nodes=(30, 40), term_probability=0.97)
    with pytest.raises(RuntimeError, match="drew 1000 tasks"):
        env.reset(seed=0)


# ---------------------------------------------------------------- invalid actions
def fixture_env(**kwargs) -> DAGEnv:
    env = DAGEnv(workload=FIXTURE, **kwargs)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("edge, reason", [
    ((1, 2), r"EFT_1=4 > LST_2=3: the critical path would exceed the deadline D=8"),
    ((0, 5), "5 is already reachable from 0"),
    ((5, 0), "5 is reachable from 0, so the edge would close a cycle"),
    ((3, 3), "a node cannot precede itself"),
    ((1, 5), r"node\(s\) \[5\] are not critical"),
    ((8, 0), "the task has nodes 0..6 \\(the rest is padding up to max_nodes=9\\)"),
])
def test_raise_mode_says_why_and_changes_nothing(edge, reason):
    env = fixture_env(invalid_action="raise", max_nodes=9)
    before = env.get_state()
    with pytest.raises(ValueError, match=reason):
        env.step(edge[0] * 9 + edge[1])
    assert env.explain_action(edge[0] * 9 + edge[1]) is not None
    for key, value in before["arrays"].items():
        if key != "actions":                     # the input buffer holds the rejected action
            np.testing.assert_array_equal(env.get_state()["arrays"][key], value, err_msg=key)
    assert env.explain_action(2 * 9 + 3) is None
    env.step(2 * 9 + 3)                                           # a valid one still works


def test_reject_mode_keeps_the_state_and_reports():
    env = fixture_env(invalid_weight=0.5)
    obs0 = env.unwrapped.batched._observations(True)
    obs, reward, terminated, truncated, info = env.step(1 * 7 + 2)
    assert info["invalid_action"] and reward == -0.5 and not (terminated or truncated)
    np.testing.assert_array_equal(info["reward_components"], [0.0, 0.0, -1.0])
    for key in obs:
        np.testing.assert_array_equal(obs[key], obs0[key][0])
    obs, reward, terminated, _, info = env.step(2 * 7 + 3)
    assert not info["invalid_action"] and reward == 1.0 and terminated
    assert info["episode_metrics"]["invalid_actions"] == 1 and info["episode_metrics"]["edges_added"] == 1


def test_max_steps_truncates_counting_rejected_actions():
    env = fixture_env(max_steps=3)
    for k in range(3):
        _, _, terminated, truncated, info = env.step(0)            # 0 -> 0: always invalid
        assert not terminated and truncated == (k == 2)
    assert info["episode_metrics"]["invalid_actions"] == 3


def test_vector_env_raise_mode_names_the_sub_env_and_moves_none():
    vec = DAGVectorEnv(3, workload=FIXTURE, invalid_action="raise")
    vec.reset(seed=0)
    before = vec.get_state()
    with pytest.raises(ValueError, match="sub-env 1: action 9 \\(edge 1 -> 2\\)"):
        vec.step(np.array([17, 9, 17]))
    for key, value in before["arrays"].items():
        if key != "actions":
            np.testing.assert_array_equal(vec.get_state()["arrays"][key], value, err_msg=key)


def test_vector_env_reject_mode_only_touches_the_offending_sub_env():
    vec = DAGVectorEnv(3, workload=FIXTURE)
    vec.reset(seed=0)
    _, rewards, terminated, _, info = vec.step(np.array([17, 9, 18]))
    assert info["invalid_action"].tolist() == [False, True, False]
    assert rewards.tolist() == [1.0, 0.0, 0.0] and terminated.tolist() == [True, False, False]
    assert info["width"].tolist() == [2, 3, 3]


# ---------------------------------------------------------------- deadline safety (property)
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), workload=st.sampled_from(["layered", "forkjoin"]),
       n=st.integers(10, 30), utilisation=st.floats(1.0, 4.0), unmasked=st.floats(0.0, 0.5))
def test_masking_keeps_l_within_d_on_every_step(seed, workload, n, utilisation, unmasked):
    env = DAGEnv(workload=workload, num_nodes=(n - 6, n), utilisation_min=utilisation)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    width = info["width"]
    while True:
        assert info["critical_path"] <= info["deadline"]
        assert info["width_lower_bound"] <= info["width"]
        assert env.observation_space.contains(obs)
        if rng.random() < unmasked:
            action = int(rng.integers(env.action_space.n))
        else:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward == width - info["width"] >= 0
        width = info["width"]
        if terminated or truncated:
            assert info["critical_path"] <= info["deadline"]
            assert terminated
            break


# ---------------------------------------------------------------- episode ends
def test_processors_target_ends_episodes_and_redraws_tasks_already_there():
    env = DAGEnv(num_nodes=(8, 12), processors=5)
    redrawn = 0
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        assert info["width"] > 5
        while True:
            obs, _, terminated, truncated, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
            if terminated:
                metrics = info["episode_metrics"]
                assert metrics["cores_needed"] <= 5 or metrics["cores_needed"] == metrics["width_lower_bound"] \
                    or info["action_mask"][0] == 1                 # target, bound, or stuck
                redrawn += metrics["tasks_redrawn"]
                break
    assert redrawn > 0


def test_placeholder_mask_only_when_no_edge_is_valid():
    vec = DAGVectorEnv(8, num_nodes=(10, 14))
    _, infos = vec.reset(seed=3)
    rng = np.random.default_rng(0)
    seen_placeholder = False
    for _ in range(400):
        masks = infos["action_mask"]
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        _, _, terminated, _, infos = vec.step(actions)
        for i in np.flatnonzero(terminated):
            m = infos["action_mask"][i]
            if m[0]:
                assert m.sum() == 1 and vec.explain_action(0, i) is not None
                seen_placeholder = True
    assert seen_placeholder


# ---------------------------------------------------------------- observations
def test_flat_observation_is_the_dict_one_concatenated():
    a = DAGEnv(num_nodes=(10, 12))
    b = DAGEnv(num_nodes=(10, 12), observation="flat")
    assert b.observation_space.shape == (12 * 5 + 2 * 144,)
    oa, ia = a.reset(seed=5)
    ob, ib = b.reset(seed=5)
    for _ in range(6):
        flat = np.concatenate([oa["nodes"].ravel(), oa["closure"].ravel(), oa["action_mask"].ravel()])
        np.testing.assert_array_equal(ob, flat.astype(np.float32))
        action = int(np.flatnonzero(ia["action_mask"])[-1])
        oa, _, ta, _, ia = a.step(action)
        ob, _, tb, _, ib = b.step(action)
        if ta:
            break


# ---------------------------------------------------------------- helpers
def test_edge_outcomes_predict_the_step_exactly():
    env = DAGEnv(num_nodes=(14, 18))
    obs, info = env.reset(seed=11)
    checked = 0
    for _ in range(4):
        width, length = env.edge_outcomes()
        snapshot = env.get_state()
        valid = np.flatnonzero(info["action_mask"])
        assert set(np.flatnonzero(width >= 0)) == set(valid)
        for a in valid:
            env.set_state(snapshot)
            _, _, _, _, after = env.step(int(a))
            assert (after["width"], after["critical_path"]) == (width[a], length[a])
            checked += 1
        env.set_state(snapshot)
        _, _, terminated, _, info = env.step(int(valid[0]))
        if terminated:
            break
    assert checked > 20


def test_processor_assignment_is_a_minimum_chain_cover_that_meets_d():
    env = DAGEnv(num_nodes=(20, 25))
    for seed in range(5):
        _, info = env.reset(seed=seed)
        for _ in range(seed * 3):
            _, _, terminated, _, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
            if terminated:
                break
        procs = env.processor_assignment()
        table = env.node_table()
        assert procs.max() + 1 == info["width"]
        for p in range(info["width"]):
            nodes = np.flatnonzero(procs == p)
            for u, v in itertools.combinations(nodes, 2):
                assert table["closure"][u, v] or table["closure"][v, u]
                # run at EST on one core: comparable nodes never overlap
                first, second = (u, v) if table["closure"][u, v] else (v, u)
                assert table["eft"][first] <= table["est"][second]
        assert table["eft"].max() <= info["deadline"]


def test_to_dot_exports_the_scheduled_graph():
    env = DAGEnv(num_nodes=(12, 14))
    _, info = env.reset(seed=2)
    for _ in range(3):
        _, _, terminated, _, info = env.step(int(np.flatnonzero(info["action_mask"])[-1]))
        if terminated:
            break
    (exported,) = parse_dot(env.to_dot())
    task = env.task()
    assert set(exported.edges) == set(task.edges) | set(env.added_edges())
    assert exported.wcet == task.wcet and exported.deadline == task.deadline
    again = DAGEnv(workload=exported, processors=1)               # the same graph, analysed afresh
    _, fresh = again.reset()
    assert (fresh["width"], fresh["critical_path"]) == (info["width"], info["critical_path"])


def test_generate_tasks_are_the_tasks_resets_start_from():
    tasks = generate_tasks(5, seed=40, workload="forkjoin", num_nodes=(10, 20))
    env = DAGEnv(workload="forkjoin", num_nodes=(10, 20))
    for k, task in enumerate(tasks):
        env.reset(seed=40 + k)
        assert task.name == f"forkjoin-{40 + k}"
        assert (task.wcet, set(task.edges), task.deadline) == \
               (env.task().wcet, set(env.task().edges), env.task().deadline)
        assert 10 <= task.num_nodes <= 20 and task.critical_path() <= task.deadline


# ---------------------------------------------------------------- task sets
def test_task_sets_skip_tasks_done_at_the_start_and_pick_by_option():
    trivial = make_task([2, 2], [(0, 1)], 4, name="chain")         # width 1 = lower bound
    env = DAGEnv(workload=[trivial, FIXTURE, FIXTURE])
    assert env.skipped_tasks == [(0, "chain", "width 1 already equals its lower bound")]
    for seed in range(10):
        env.reset(seed=seed)
        assert env.task().name == "fixture"
    _, info = env.reset(options={"task": 2})
    assert info["width"] == 3
    with pytest.raises(ValueError, match="task 0 \\(chain\\) cannot start an episode: width 1"):
        env.reset(options={"task": 0})
    with pytest.raises(ValueError, match="task index in \\[0, 2\\]"):
        env.reset(options={"task": 7})
    with pytest.raises(ValueError, match="only the options 'task'"):
        env.reset(options={"start": 1})
    with pytest.raises(ValueError, match="every task of .* is done before the first step"):
        DAGEnv(workload=trivial)
    with pytest.raises(ValueError, match="needs a task-set workload"):
        DAGEnv().reset(options={"task": 0})


def test_shipped_task_sets_load():
    from sysgym.traces import trace_path

    tasks = DAGEnv(workload=trace_path("dag", "layered_n40.dot")).config.tasks
    assert len(tasks) >= 50 and all(t.num_nodes == 40 for t in tasks)
    env = gym.make("sysgym/DAG-EGS-v0", workload=trace_path("dag", "forkjoin_n20-40.dot"))
    _, info = env.reset(seed=0)
    assert info["width"] > info["width_lower_bound"]


# ---------------------------------------------------------------- rendering
def test_render_highlights_added_edges():
    env = DAGEnv(workload=FIXTURE, render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step(2 * 7 + 3)
    after = env.render()
    red = np.all(after == [214, 39, 40], axis=-1)
    assert red.sum() > 20 and not np.all(before == [214, 39, 40], axis=-1).any()
    text = DAGEnv(workload=FIXTURE, render_mode="ansi")
    text.reset(seed=0)
    text.step(2 * 7 + 3)
    summary = text.render()
    assert "width W=2" in summary and "added edges: 2->3" in summary and "L=8" in summary


def test_rgb_frames_keep_one_shape_over_episodes_and_task_sizes():
    """A fixed canvas per env (from max_nodes), as video writers need: a chain, an antichain and
    the 7-node fixture, before and after edges are added, and before any reset."""
    deep = make_task([1] * 40, [(v, v + 1) for v in range(19)], 41)       # a 20-node chain + 20 nodes
    wide = make_task([1] * 40, [], 20)
    env = DAGEnv(workload=[FIXTURE, deep, wide], render_mode="rgb_array")
    shapes = {env.render().shape}                                 # never reset: an empty canvas
    rng = np.random.default_rng(0)
    for k in env.unwrapped.batched.playable_tasks:
        _, info = env.reset(options={"task": k})
        shapes.add(env.render().shape)
        for _ in range(15):
            _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            shapes.add(env.render().shape)
            if terminated or truncated:
                break
    assert len(shapes) == 1
    height, width, channels = shapes.pop()
    assert channels == 3 and height % 16 == 0 and width % 16 == 0
    big = DAGEnv(num_nodes=(200, 256), render_mode="rgb_array")
    big.reset(seed=0)
    small = DAGEnv(workload=FIXTURE, max_nodes=256, render_mode="rgb_array")
    small.reset(seed=0)
    assert big.render().shape == small.render().shape             # the canvas depends on max_nodes only
    assert max(big.render().shape) <= 1024                        # and stays bounded at N = 256


def test_record_video_writes_one_clip(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(gym.make("sysgym/DAG-EGS-v0", render_mode="rgb_array"), str(tmp_path / "videos"),
                                   episode_trigger=lambda k: True, disable_logger=True)
    _, info = env.reset(seed=0)
    while True:
        _, _, terminated, truncated, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        if terminated or truncated:
            break
    env.close()
    assert list((tmp_path / "videos").glob("*.mp4"))


# ---------------------------------------------------------------- feature names
@pytest.mark.parametrize("observation", ["dict", "flat"])
def test_feature_names_name_the_flattened_observation(observation):
    env = DAGEnv(workload=FIXTURE, max_nodes=9, observation=observation)
    names = env.unwrapped.feature_names
    assert len(names) == gym.spaces.flatdim(env.observation_space) == len(set(names))
    obs, info = env.reset(seed=0)
    obs, _, _, _, info = env.step(2 * 9 + 3)                      # add the edge 2 -> 3
    flat = gym.spaces.flatten(env.observation_space, obs)
    value = dict(zip(names, flat.tolist()))
    table = env.unwrapped.node_table()
    d = info["deadline"]
    for v in range(7):
        assert value[f"node{v}.C/D"] == pytest.approx(table["wcet"][v] / d, rel=1e-6)
        assert value[f"node{v}.EFT/D"] == pytest.approx(table["eft"][v] / d, rel=1e-6)
        assert value[f"node{v}.LST/D"] == pytest.approx(table["lst"][v] / d, rel=1e-6)
        assert value[f"node{v}.lateral/n"] == pytest.approx(table["lateral"][v] / 7, rel=1e-6)
        assert value[f"node{v}.present"] == 1.0
    assert value["node8.present"] == 0.0
    assert value["path[2->3]"] == 1.0 and value["path[3->2]"] == 0.0 and value["path[0->6]"] == 1.0
    for u, v in itertools.product(range(9), range(9)):
        assert value[f"edge[{u}->{v}]"] == info["action_mask"][u * 9 + v]
    if observation == "dict":       # gymnasium flattens a Dict in its key order: action_mask first
        assert names[0] == "edge[0->0]" and names[-1] == "node8.present"
    else:
        assert names[0] == "node0.C/D" and names[-1] == "edge[8->8]"


# ---------------------------------------------------------------- extreme but valid kwargs
EXTREME = [
    {"num_nodes": (2, 3), "wcet": (0, 1)},                        # all-zero WCETs: D is still >= 1
    {"num_nodes": (2, 8), "wcet": (0, 2**50), "utilisation_min": 1e12},   # 8 x 2^50 = 2^53, D = L
    {"num_nodes": (20, 30), "wcet": (1, 10), "utilisation_min": 1e-6, "observation": "flat"},
    {"workload": make_task([1, 1], [], 2), "max_nodes": 256},    # a 2-node task in the largest spaces
    {"num_nodes": (30, 40), "parallelism": 256, "edge_probability": 0.0},
    {"num_nodes": (30, 40), "parallelism": 3, "edge_probability": 1.0},
    {"num_nodes": (10, 40), "layers": (1, 256)},
    {"workload": "forkjoin", "num_nodes": (2, 40), "max_depth": 256, "max_branches": 256,
     "term_probability": 0.0, "fork_probability": 1.0},
    {"workload": "forkjoin", "num_nodes": (3, 60), "max_depth": 256, "term_probability": 0.0,
     "fork_probability": 0.1, "observation": "flat"},
    {"num_nodes": (10, 20), "processors": 1, "max_steps": 1},
]


@pytest.mark.parametrize("kwargs", EXTREME, ids=range(len(EXTREME)))
def test_observations_stay_in_space_with_extreme_kwargs(kwargs):
    env = DAGEnv(**kwargs)
    rng = np.random.default_rng(1)
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        for _ in range(40):
            assert env.observation_space.contains(obs)
            assert 1 <= info["deadline"] and info["critical_path"] <= info["deadline"]
            mask = info["action_mask"] if rng.random() < 0.8 else np.ones_like(info["action_mask"])
            obs, reward, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
            assert np.isfinite(reward) and np.all(np.isfinite(info["reward_components"]))
            if terminated or truncated:
                assert env.observation_space.contains(obs)
                assert all(np.isfinite(v) for v in info["episode_metrics"].values())
                break


@pytest.mark.parametrize("num_envs", [1, 3])
def test_kernel_step_reads_the_flags_it_is_given_at_every_call(num_envs):
    """The kernel keeps its view of the last flag array between calls: a flag changed in that
    array and another array must both be read afresh, and a wrong length is still refused."""
    vec = DAGVectorEnv(num_envs, num_nodes=(10, 14))
    _, infos = vec.reset(seed=1)
    s, kernel = vec._state, vec._kernel
    s["actions"][:] = infos["action_mask"].argmax(axis=1)      # valid edges: no episode ends at once
    expected = s["steps"].copy()
    flags = np.zeros(num_envs, dtype=np.uint8)
    kernel.step(flags)
    assert s["steps"].tolist() == expected.tolist()
    flags[-1] = 1
    kernel.step(flags)
    expected[-1] += 1
    assert s["steps"].tolist() == expected.tolist()
    other = np.zeros(num_envs, dtype=np.uint8)
    other[0] = 1
    s["actions"][0] = 0                                       # edge 0 -> 0: rejected, still a step
    kernel.step(other)
    expected[0] += 1
    assert s["steps"].tolist() == expected.tolist()
    with pytest.raises(ValueError, match="active must have one entry per sub-env"):
        kernel.step(np.ones(num_envs + 1, dtype=np.uint8))
    flags[:] = 0
    kernel.step(flags)
    assert s["steps"].tolist() == expected.tolist()
