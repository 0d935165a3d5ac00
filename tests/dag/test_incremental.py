"""The kernel's incremental structures against a from-scratch recomputation at every step.

After each edge the kernel updates its closure bitsets, recomputes times only on the nodes the
edge can move (from EFT_i and LST_j), keeps every maximum matching (the width's and one per node
for its lateral width; nodes leaving a lateral set are spliced out of their chains) and only
augments it, stopping as soon as a kept antichain proves it maximum, and rewrites only the
observation entries the edge can change. A new task's lateral matchings start from the width's
matching. Here every step of
random seeded episodes (several sizes, one and several bitset words, both generators, a
processor target, snapshots restored mid-episode) is checked against plain Python written from
the definitions in sysgym/envs/dag/__init__.py: closure by depth-first search over the current
edges, EST/LFT over a topological order, widths from Kuhn's augmenting-path matching, and the
kernel's stored matchings must be matchings of the comparability graph of the right size, and
the observation buffers must hold what those recomputed quantities give.
"""

from __future__ import annotations

import numpy as np
import pytest

from sysgym.envs.dag import DAGVectorEnv
from sysgym.envs.dag.state import bits_to_bool


def closure_from_edges(n: int, edges: np.ndarray) -> np.ndarray:
    """(n, n) bool, [u, v] iff a path u ~> v, by a depth-first search from every node."""
    succ = [np.flatnonzero(edges[u]).tolist() for u in range(n)]
    out = np.zeros((n, n), dtype=bool)
    for s in range(n):
        stack = list(succ[s])
        while stack:
            v = stack.pop()
            if not out[s, v]:
                out[s, v] = True
                stack.extend(succ[v])
    return out


def matching_size(nodes: list[int], closure: np.ndarray) -> int:
    """Maximum matching of {(u_left, v_right): u, v in nodes, u < v} by Kuhn's augmenting paths."""
    inside = set(nodes)
    succ = {u: [v for v in np.flatnonzero(closure[u]).tolist() if v in inside] for u in nodes}
    mate: dict[int, int] = {}          # right vertex -> its left mate

    def augment(u: int, seen: set[int]) -> bool:
        for v in succ[u]:
            if v not in seen:
                seen.add(v)
                if v not in mate or augment(mate[v], seen):
                    mate[v] = u
                    return True
        return False

    return sum(augment(u, set()) for u in nodes)


def width_of(nodes: list[int], closure: np.ndarray) -> int:
    return len(nodes) - matching_size(nodes, closure)


def expected_state(wcet: list[int], edges: np.ndarray, deadline: int) -> dict:
    """Closure, times, width, lateral widths and critical set of the task with these edges."""
    n = len(wcet)
    closure = closure_from_edges(n, edges)
    order = sorted(range(n), key=lambda v: int(closure[:, v].sum()))     # ancestors first
    est = [0] * n
    for v in order:
        est[v] = max((est[u] + wcet[u] for u in np.flatnonzero(closure[:, v])), default=0)
    lft = [deadline] * n
    for v in reversed(order):
        lft[v] = min((lft[d] - wcet[d] for d in np.flatnonzero(closure[v])), default=deadline)
    everyone = list(range(n))
    width = width_of(everyone, closure)
    lateral = []
    for v in everyone:
        others = [u for u in everyone if u != v and not closure[u, v] and not closure[v, u]]
        lateral.append(width_of(others, closure))
    return {"closure": closure, "est": est, "lft": lft, "length": max(e + c for e, c in zip(est, wcet)),
            "width": width, "lateral": lateral, "critical": [lw == width - 1 for lw in lateral]}


def check_matching(ml: np.ndarray, mr: np.ndarray, nodes: list[int], closure: np.ndarray, size: int) -> None:
    """(ml, mr) is a matching of the comparability graph inside ``nodes`` with ``size`` pairs."""
    inside = set(nodes)
    pairs = [(u, int(ml[u])) for u in range(len(ml)) if ml[u] >= 0]
    assert len(pairs) == size
    for u, r in pairs:
        assert u in inside and r in inside and closure[u, r] and mr[r] == u
    assert sum(int(m >= 0) for m in mr) == size


def check_sub_env(vec: DAGVectorEnv, b: int) -> None:
    s = vec._state
    n = int(s["n"][b])
    wcet = s["wcet"][b, :n].tolist()
    edges = bits_to_bool(s["adj"][b, :n] | s["added"][b, :n], n)
    want = expected_state(wcet, edges, int(s["deadline"][b]))
    closure = want["closure"]
    np.testing.assert_array_equal(bits_to_bool(s["desc"][b, :n], n), closure)
    np.testing.assert_array_equal(bits_to_bool(s["anc"][b, :n], n), closure.T)
    assert s["est"][b, :n].tolist() == want["est"]
    assert s["lft"][b, :n].tolist() == want["lft"]
    assert int(s["length"][b]) == want["length"]
    assert int(s["width"][b]) == want["width"]
    assert s["lateral"][b, :n].tolist() == want["lateral"]
    assert bits_to_bool(s["crit"][b], n).tolist() == want["critical"]
    everyone = list(range(n))
    check_matching(s["mate_l"][b], s["mate_r"][b], everyone, closure, n - want["width"])
    for k in everyone:
        others = [u for u in everyone if u != k and not closure[u, k] and not closure[k, u]]
        check_matching(s["lat_l"][b, k], s["lat_r"][b, k], others, closure, len(others) - want["lateral"][k])
    # the mask from its rule on the recomputed quantities
    mask = np.zeros(vec.config.max_nodes ** 2, dtype=np.int8)
    crit = [v for v in everyone if want["critical"][v]]
    for i in crit:
        for j in crit:
            if i != j and not closure[i, j] and not closure[j, i] \
                    and want["est"][i] + wcet[i] <= want["lft"][j] - wcet[j]:
                mask[i * vec.config.max_nodes + j] = 1
    if not mask.any():
        mask[0] = 1                     # the placeholder when no edge is valid
    np.testing.assert_array_equal(s["action_mask"][b], mask)
    check_observation(vec, b, want, mask)


def check_observation(vec: DAGVectorEnv, b: int, want: dict, mask: np.ndarray) -> None:
    """The observation buffers of sub-env b from the recomputed quantities: node features C/D,
    EFT/D, LST/D, lateral/n, present (padding rows zero), the closure (0/1) and the mask."""
    s, N = vec._state, vec.config.max_nodes
    n, D = int(s["n"][b]), int(s["deadline"][b])
    wcet = s["wcet"][b, :n].tolist()
    nodes = np.zeros((N, 5), dtype=np.float32)
    for v in range(n):
        nodes[v] = [wcet[v] / D, (want["est"][v] + wcet[v]) / D, (want["lft"][v] - wcet[v]) / D,
                    want["lateral"][v] / n, 1.0]
    closure = np.zeros((N, N), dtype=np.int8)
    closure[:n, :n] = want["closure"]
    if vec.config.observation == "flat":
        flat = np.concatenate([nodes.ravel(), closure.ravel().astype(np.float32), mask.astype(np.float32)])
        np.testing.assert_array_equal(s["obs"][b], flat)
    else:
        np.testing.assert_array_equal(s["obs:nodes"][b], nodes)
        np.testing.assert_array_equal(s["obs:closure"][b], closure)
        np.testing.assert_array_equal(s["obs:action_mask"][b], mask)


def check_outcomes(vec: DAGVectorEnv, b: int) -> None:
    """edge_outcomes' widths (the look-ahead matching, from a copy of the kept one) from scratch."""
    s = vec._state
    n, N = int(s["n"][b]), vec.config.max_nodes
    widths, _ = vec.edge_outcomes(b)
    edges = bits_to_bool(s["adj"][b, :n] | s["added"][b, :n], n)
    for a in np.flatnonzero(widths >= 0)[:4]:
        i, j = divmod(int(a), N)
        more = edges.copy()
        more[i, j] = True
        assert widths[a] == width_of(list(range(n)), closure_from_edges(n, more))


def roll(vec: DAGVectorEnv, seed: int, steps: int, outcomes_every: int = 0) -> int:
    """Random valid (and sometimes invalid) actions; every sub-env checked after every step."""
    rng = np.random.default_rng(seed)
    _, infos = vec.reset(seed=seed)
    for b in range(vec.num_envs):
        check_sub_env(vec, b)
    for t in range(steps):
        mask = infos["action_mask"]
        actions = (rng.random(mask.shape) * mask).argmax(axis=1)
        if t % 5 == 4:
            actions[0] = rng.integers(mask.shape[1])
        _, _, _, _, infos = vec.step(actions)
        for b in range(vec.num_envs):
            check_sub_env(vec, b)
            if outcomes_every and t % outcomes_every == 0:
                check_outcomes(vec, b)
    return steps


@pytest.mark.parametrize("kwargs, steps", [
    ({"num_nodes": (8, 14)}, 40),
    ({"num_nodes": (20, 30)}, 20),
    ({"workload": "forkjoin", "num_nodes": (10, 30)}, 20),
    ({"num_nodes": (18, 24), "processors": 3, "observation": "flat"}, 20),
    ({"num_nodes": (66, 70), "parallelism": 12}, 4),          # two bitset words
])
def test_incremental_state_equals_a_recomputation_at_every_step(kwargs, steps):
    vec = DAGVectorEnv(2, **kwargs)
    roll(vec, seed=sum(map(ord, str(kwargs))), steps=steps, outcomes_every=7)


def test_restored_snapshots_continue_exactly():
    """After set_state the kernel's kept antichains describe another state: the steps that follow
    (different ones from the snapshot's future) must still match a recomputation."""
    vec = DAGVectorEnv(2, num_nodes=(16, 22))
    rng = np.random.default_rng(3)
    _, infos = vec.reset(seed=3)
    snapshots = []
    for _ in range(30):
        snapshots.append(vec.get_state())
        mask = infos["action_mask"]
        _, _, _, _, infos = vec.step((rng.random(mask.shape) * mask).argmax(axis=1))
    for snap in snapshots[::-4]:
        vec.set_state(snap)
        mask = vec._state["action_mask"]
        for _ in range(3):
            if vec._state["needs_reset"].any():
                break
            vec.step((rng.random(mask.shape) * mask).argmax(axis=1))
            for b in range(vec.num_envs):
                check_sub_env(vec, b)
