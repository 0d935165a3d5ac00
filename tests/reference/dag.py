"""Pure-Python (networkx) reference of the DAG edge-generation env, written from the dynamics in
sysgym/envs/dag/__init__.py. Slow and obvious on purpose: graphs are networkx DiGraphs, times come
from a topological sort over direct edges, widths from networkx's Hopcroft-Karp matching (and, for
small graphs, from enumerating every antichain), generators from the Python xoshiro twin."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from tests.reference.rng import Rng

MAX_DRAWS = 1000


# ---------------------------------------------------------------- order-theoretic quantities
def closure_of(n: int, edges) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return nx.transitive_closure_dag(g)


def width_by_matching(closure: nx.DiGraph, nodes) -> int:
    """Dilworth via Fulkerson: |nodes| - maximum matching of the comparability bipartite graph."""
    nodes = list(nodes)
    if not nodes:
        return 0
    inside = set(nodes)
    bip = nx.Graph()
    left = [("L", u) for u in nodes]
    bip.add_nodes_from(left)
    bip.add_nodes_from(("R", v) for v in nodes)
    for u in nodes:
        for v in closure.successors(u):
            if v in inside:
                bip.add_edge(("L", u), ("R", v))
    matching = nx.bipartite.hopcroft_karp_matching(bip, top_nodes=left)
    return len(nodes) - len(matching) // 2


def antichains_brute_force(closure: nx.DiGraph) -> tuple[int, set[int]]:
    """(width, nodes in some maximum antichain) by enumerating every antichain (small graphs)."""
    best, members = 0, set()
    for chain in nx.antichains(closure):
        if len(chain) > best:
            best, members = len(chain), set(chain)
        elif len(chain) == best:
            members |= set(chain)
    return best, members


@dataclass
class Analysis:
    wcet: list[int]
    closure: np.ndarray          # (n, n) bool
    est: list[int]
    lft: list[int]
    length: int
    width: int
    lateral: list[int]
    critical: list[bool]
    lower_bound: int
    valid: set[tuple[int, int]] = field(default_factory=set)

    @property
    def eft(self):
        return [e + c for e, c in zip(self.est, self.wcet)]


def analyse(wcet, edges, deadline) -> Analysis:
    n = len(wcet)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    order = list(nx.topological_sort(g))
    est = [0] * n
    for v in order:
        est[v] = max((est[u] + wcet[u] for u in g.predecessors(v)), default=0)
    length = max(est[v] + wcet[v] for v in range(n))
    lft = [deadline] * n
    for v in reversed(order):
        lft[v] = min((lft[w] - wcet[w] for w in g.successors(v)), default=deadline)
    clo = nx.transitive_closure_dag(g)
    closure = np.zeros((n, n), dtype=bool)
    for u, v in clo.edges:
        closure[u, v] = True
    width = width_by_matching(clo, range(n))
    lateral = []
    for v in range(n):
        others = [u for u in range(n) if u != v and not closure[u, v] and not closure[v, u]]
        lateral.append(width_by_matching(clo, others))
    critical = [lw == width - 1 for lw in lateral]
    vol = sum(wcet)
    lb = max(1, _ceil_div(vol, deadline))
    crit = [v for v in range(n) if critical[v]]
    period = max(lft[v] for v in crit) - min(est[v] for v in crit)
    if period > 0:
        lb = max(lb, _ceil_div(sum(wcet[v] for v in crit), period))
    a = Analysis(list(wcet), closure, est, lft, length, width, lateral, critical, lb)
    for i in crit:
        for j in crit:
            if i != j and not closure[i, j] and not closure[j, i] \
                    and est[i] + wcet[i] <= lft[j] - wcet[j]:
                a.valid.add((i, j))
    return a


def _ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for integers, exact at any size (float division is not above 2^53)."""
    return -(-a // b)


def is_done(a: Analysis, processors: int | None) -> bool:
    if a.width <= a.lower_bound:
        return True
    if processors is not None and a.width <= processors:
        return True
    return not a.valid


def action_mask(a: Analysis, max_nodes: int) -> np.ndarray:
    mask = np.zeros(max_nodes * max_nodes, dtype=np.int8)
    for i, j in a.valid:
        mask[i * max_nodes + j] = 1
    if not a.valid:
        mask[0] = 1
    return mask


def node_features(a: Analysis, deadline: int, max_nodes: int) -> np.ndarray:
    n = len(a.wcet)
    out = np.zeros((max_nodes, 5), dtype=np.float32)
    for v in range(n):
        out[v] = [a.wcet[v] / deadline, (a.est[v] + a.wcet[v]) / deadline,
                  (a.lft[v] - a.wcet[v]) / deadline, a.lateral[v] / n, 1.0]
    return out


# ---------------------------------------------------------------- generators
def generate_layered(rng: Rng, p: dict):
    n = rng.integers(*p["num_nodes"])
    if p.get("layers"):
        k = min(n, rng.integers(*p["layers"]))
        sizes = [1] * k
        for _ in range(n - k):
            sizes[rng.integers(0, k - 1)] += 1
    else:
        sizes, left = [], n
        while left > 0:
            sizes.append(min(rng.integers(1, p["parallelism"]), left))
            left -= sizes[-1]
    layers, first = [], 0
    for size in sizes:
        layers.append(list(range(first, first + size)))
        first += size
    edges = []
    for k in range(1, len(layers)):
        earlier = [u for layer in layers[:k] for u in layer]
        for v in layers[k]:
            got = False
            for u in earlier:
                if rng.uniform() < p["edge_probability"]:
                    edges.append((u, v))
                    got = True
            if not got:
                prev = layers[k - 1]
                edges.append((prev[0] + rng.integers(0, len(prev) - 1), v))
    return n, edges


class _ForkJoin:
    """One fork-join draw: ``made`` nodes so far and the edges between them."""

    def __init__(self, rng: Rng, p: dict):
        self.rng, self.p, self.made, self.edges = rng, p, 0, []

    def expand(self, depth: int, reserved: int) -> tuple[int, int]:
        rng, p, hi = self.rng, self.p, self.p["num_nodes"][1]
        kind = "node"
        if depth < p["max_depth"] and rng.uniform() >= p["term_probability"]:
            if rng.uniform() < p["fork_probability"]:
                k = rng.integers(2, p["max_branches"])
                if self.made + reserved + k + 2 <= hi:
                    kind = "parallel"
            elif self.made + reserved + 2 <= hi:
                kind = "series"
        if kind == "node":
            self.made += 1
            return self.made - 1, self.made - 1
        if kind == "series":
            e1, x1 = self.expand(depth + 1, reserved + 1)
            e2, x2 = self.expand(depth + 1, reserved)
            self.edges.append((x1, e2))
            return e1, x2
        fork = self.made
        self.made += 1
        exits = []
        for b in range(k):
            e, x = self.expand(depth + 1, reserved + k - b)
            self.edges.append((fork, e))
            exits.append(x)
        join = self.made
        self.made += 1
        self.edges.extend((x, join) for x in exits)
        return fork, join


def generate_forkjoin(rng: Rng, p: dict):
    for _ in range(MAX_DRAWS):
        draw = _ForkJoin(rng, p)
        draw.expand(0, 0)
        if draw.made >= p["num_nodes"][0]:
            return draw.made, draw.edges
    return None


def generate(rng: Rng, p: dict):
    """One generated task (wcet, edges, deadline), or None if the fork-join generator gave up."""
    shape = generate_layered(rng, p) if p["workload"] == "layered" else generate_forkjoin(rng, p)
    if shape is None:
        return None
    n, edges = shape
    wcet = [rng.integers(*p["wcet"]) for _ in range(n)]
    lo = max(_longest(n, wcet, edges), 1)          # a deadline is positive even if every WCET is 0
    hi = max(lo, int(sum(wcet) / p["utilisation_min"]))
    return wcet, edges, rng.integers(lo, hi)


def _longest(n, wcet, edges):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    finish = {}
    for v in nx.topological_sort(g):
        finish[v] = max((finish[u] for u in g.predecessors(v)), default=0) + wcet[v]
    return max(finish.values())


# ---------------------------------------------------------------- episodes
class ReferenceEpisode:
    """One episode from a given task: step(action) mirrors the env's step."""

    def __init__(self, wcet, edges, deadline, max_nodes, processors=None, max_steps=None,
                 redraws=0):
        self.wcet, self.edges, self.deadline = list(wcet), list(edges), deadline
        self.max_nodes, self.processors = max_nodes, processors
        self.max_steps = max_nodes * max_nodes if max_steps is None else max_steps
        self.added: list[tuple[int, int]] = []
        self.a = analyse(self.wcet, self.edges, deadline)
        self.initial_width, self.initial_length = self.a.width, self.a.length
        self.redraws = redraws
        self.steps = self.invalid = 0

    def done(self) -> bool:
        return is_done(self.a, self.processors)

    def mask(self) -> np.ndarray:
        return action_mask(self.a, self.max_nodes)

    def obs(self) -> dict[str, np.ndarray]:
        n, N = len(self.wcet), self.max_nodes
        closure = np.zeros((N, N), dtype=np.int8)
        closure[:n, :n] = self.a.closure
        return {"nodes": node_features(self.a, self.deadline, N), "closure": closure,
                "action_mask": self.mask()}

    def step(self, action: int):
        """The step under invalid_action="reject": (components, terminated, truncated)."""
        i, j = divmod(action, self.max_nodes)
        self.steps += 1
        if (i, j) not in self.a.valid:
            self.invalid += 1
            comps = np.array([0.0, 0.0, -1.0])
        else:
            before = self.a
            self.added.append((i, j))
            self.a = analyse(self.wcet, self.edges + self.added, self.deadline)
            comps = np.array([float(before.width - self.a.width),
                              float(before.length - self.a.length) / float(self.deadline), 0.0])
        terminated = self.done()
        truncated = not terminated and self.steps >= self.max_steps
        return comps, terminated, truncated

    def metrics(self) -> dict[str, float]:
        a = self.a
        return {"initial_width": self.initial_width, "final_width": a.width, "cores_needed": a.width,
                "width_lower_bound": a.lower_bound, "initial_critical_path": self.initial_length,
                "critical_path": a.length, "deadline": self.deadline, "slack": self.deadline - a.length,
                "edges_added": len(self.added), "invalid_actions": self.invalid,
                "num_nodes": len(self.wcet), "tasks_redrawn": self.redraws}


def reset_generated(rng: Rng, p: dict, max_nodes: int, processors=None, max_steps=None):
    """The episode a generator reset starts (redrawing done tasks), or None if it gives up."""
    for draws in range(MAX_DRAWS):
        task = generate(rng, p)
        if task is None:
            return None
        ep = ReferenceEpisode(*task, max_nodes, processors, max_steps, redraws=draws)
        if not ep.done():
            return ep
    return None
