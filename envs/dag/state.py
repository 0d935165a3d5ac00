"""The DAG kernel's state arrays, and the checks a snapshot of them must pass before ``set_state``.

A DAG state is determined by a few primary arrays per sub-env (n, WCETs, deadline, the task's
edges ``adj`` and the agent's edges ``added``, counters); everything else (closure, times, width,
lateral widths, critical set, lower bound, mask, observation) is derived from them. The check
therefore (1) bounds every primary value and bitset so the kernel cannot index outside its
arrays, (2) re-derives the rest with a scratch kernel (the same code a reset runs) and requires the
snapshot to agree exactly, and (3) checks the warm-start matchings are matchings of the right
size inside the right node sets. An edited or foreign snapshot is refused with a ValueError
naming the array and sub-env; nothing of it reaches the live kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sysgym.cython_core.dag import DRAW_LIMIT, METRIC_NAMES, N_NODE_FEATURES, DAGKernel

from ..snapshot import check_range
from .tasks import MAX_TIME

if TYPE_CHECKING:
    from .config import DAGConfig

N_REWARD_COMPONENTS = 3
# Arrays recomputed from (n, wcet, deadline, adj | added) and compared with the snapshot.
_DERIVED = ("desc", "anc", "est", "lft", "lateral", "crit", "length", "width", "lower_bound")


def family_arrays(cfg: DAGConfig, b: int) -> dict[str, np.ndarray]:
    """The per-sub-env state of the kernel for ``b`` sub-envs (a blank, never-reset state)."""
    n, w = cfg.max_nodes, cfg.words
    scalar = lambda: np.zeros(b, dtype=np.int64)  # noqa: E731
    return {
        "n": scalar(), "deadline": scalar(), "task": scalar(), "width": scalar(), "length": scalar(),
        "lower_bound": scalar(), "initial_width": scalar(), "initial_length": scalar(),
        "steps": scalar(), "edges_added": scalar(), "invalid": scalar(), "redraws": scalar(),
        "wcet": np.zeros((b, n), dtype=np.int64), "est": np.zeros((b, n), dtype=np.int64),
        "lft": np.zeros((b, n), dtype=np.int64), "lateral": np.zeros((b, n), dtype=np.int64),
        "adj": np.zeros((b, n, w), dtype=np.uint64), "added": np.zeros((b, n, w), dtype=np.uint64),
        "desc": np.zeros((b, n, w), dtype=np.uint64), "anc": np.zeros((b, n, w), dtype=np.uint64),
        "crit": np.zeros((b, w), dtype=np.uint64),
        "mate_l": np.full((b, n), -1, dtype=np.int32), "mate_r": np.full((b, n), -1, dtype=np.int32),
        "lat_l": np.full((b, n, n), -1, dtype=np.int32), "lat_r": np.full((b, n, n), -1, dtype=np.int32),
    }


def kernel_buffers(cfg: DAGConfig, b: int) -> dict[str, np.ndarray]:
    """State plus output buffers for a scratch kernel of ``b`` sub-envs (outside any env)."""
    n = cfg.max_nodes
    out = family_arrays(cfg, b)
    if cfg.observation == "dict":
        out.update({"obs:nodes": np.zeros((b, n, N_NODE_FEATURES), dtype=np.float32),
                    "obs:closure": np.zeros((b, n, n), dtype=np.int8),
                    "obs:action_mask": np.zeros((b, n * n), dtype=np.int8)})
    else:
        out["obs"] = np.zeros((b, n * N_NODE_FEATURES + 2 * n * n), dtype=np.float32)
    out.update({"action_mask": np.zeros((b, n * n), dtype=np.int8), "actions": np.zeros(b, dtype=np.int64),
                "reward_components": np.zeros((b, N_REWARD_COMPONENTS)),
                "metrics": np.zeros((b, len(METRIC_NAMES))), "terminated": np.zeros(b, dtype=np.uint8),
                "truncated": np.zeros(b, dtype=np.uint8), "rng": np.ones((b, 4), dtype=np.uint64)})
    return out


def state_bytes(cfg: DAGConfig) -> int:
    """Bytes of state and output buffers one sub-env holds."""
    return sum(a.nbytes for a in kernel_buffers(cfg, 1).values())


def bits_to_bool(bits: np.ndarray, n: int) -> np.ndarray:
    """(..., words) uint64 bitsets -> (..., n) bool."""
    as_bytes = bits.astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n].astype(bool)


def _low_bits(n: np.ndarray, words: int) -> np.ndarray:
    """(B, words) uint64: the bitset {0, ..., n[b] - 1} of every row."""
    out = np.zeros((len(n), words), dtype=np.uint64)
    for w in range(words):
        k = np.clip(n - 64 * w, 0, 64)
        full = k == 64
        out[full, w] = np.uint64(2**64 - 1)
        part = ~full & (k > 0)
        out[part, w] = (np.uint64(1) << k[part].astype(np.uint64)) - np.uint64(1)
    return out


def _refuse(key: str, b: int, what: str) -> None:
    raise ValueError(f"snapshot array {key!r} of sub-env {b}: {what}")


def _first(bad: np.ndarray) -> int:
    """The sub-env (leading index) of the first True entry."""
    return int(np.argwhere(bad)[0][0])


def check_state(cfg: DAGConfig, tasks: dict[str, np.ndarray] | None, arrays: dict[str, Any]) -> None:
    """Refuse (ValueError) a snapshot's family arrays unless they form a state the kernel could
    have reached: see the module docstring. Shapes and dtypes were checked by the caller."""
    N = cfg.max_nodes
    n = arrays["n"]
    check_range(arrays, "n", 0, N)
    blank = n == 0
    if np.any(blank & (arrays["needs_reset"] == 0)):
        _refuse("n", _first(blank & (arrays["needs_reset"] == 0)), "0 nodes (never reset) but needs_reset is 0")
    _check_blank(cfg, arrays, blank)
    if blank.all():
        return
    live = ~blank
    _check_primary(cfg, tasks, arrays, live)
    derived = _derive(cfg, arrays, live)
    _check_derived(cfg, arrays, live, derived)
    _check_matchings(arrays, live)
    _check_flags(cfg, arrays, live)


def _check_blank(cfg: DAGConfig, arrays: dict[str, Any], blank: np.ndarray) -> None:
    """A never-reset sub-env holds exactly the arrays a new env starts with."""
    if not blank.any():
        return
    template = family_arrays(cfg, 1)
    for key, value in template.items():
        bad = np.any((arrays[key][blank] != value).reshape(int(blank.sum()), -1), axis=1)
        if bad.any():
            _refuse(key, int(np.flatnonzero(blank)[np.argmax(bad)]), "a never-reset sub-env (n = 0) must hold "
                    "the initial values")
    for key in [k for k in arrays if k.startswith("obs")] + ["action_mask", "reward_components"]:
        rows = arrays[key][blank].reshape(int(blank.sum()), -1)
        if np.any(rows != 0):
            _refuse(key, int(np.flatnonzero(blank)[np.argmax(np.any(rows != 0, axis=1))]),
                    "a never-reset sub-env (n = 0) must hold zeros")


def _check_primary(cfg: DAGConfig, tasks: dict[str, np.ndarray] | None, arrays: dict[str, Any],
                   live: np.ndarray) -> None:
    """Ranges of the primary arrays: node count, task index, WCETs, deadline, edge bitsets, counters."""
    N, W = cfg.max_nodes, cfg.words
    n = arrays["n"]
    off = ~live                                           # blank rows: already checked, all zero
    if tasks is None:
        check_range(arrays, "n", np.where(off, 0, cfg.num_nodes[0]), np.where(off, 0, cfg.num_nodes[1]))
        check_range(arrays, "task", np.where(off, 0, -1), np.where(off, 0, -1))
        check_range(arrays, "redraws", 0, DRAW_LIMIT)
    else:
        check_range(arrays, "task", 0, len(tasks["n"]) - 1)
        k = arrays["task"]
        playable = np.isin(k, tasks["playable"])
        if np.any(live & ~playable):
            _refuse("task", _first(live & ~playable), f"task {int(k[_first(live & ~playable)])} is not a "
                    "playable task of this task set")
        for key in ("n", "deadline", "wcet", "adj"):
            differs = (arrays[key] != tasks[key][k]).reshape(len(k), -1).any(axis=1) & live
            if differs.any():
                _refuse(key, _first(differs), f"does not match task {int(k[_first(differs)])} of the task set")
        check_range(arrays, "redraws", 0, 0)
    check_range(arrays, "deadline", np.where(off, 0, 1), np.where(off, 0, MAX_TIME))
    inside = np.arange(N)[None, :] < n[:, None]           # (B, N): real nodes
    if tasks is None:
        lo, hi = cfg.wcet
        check_range(arrays, "wcet", np.where(inside, lo, 0), np.where(inside, hi, 0))

    allowed = _low_bits(n, W)                             # (B, W)
    for key in ("adj", "added", "desc", "anc"):
        bits = arrays[key]
        stray = np.any((bits & ~allowed[:, None, :]) != 0, axis=2) | (~inside & np.any(bits != 0, axis=2))
        if stray.any():
            b, v = (int(x) for x in np.argwhere(stray)[0])
            _refuse(key, b, f"row {v} has bits outside the sub-env's nodes 0..{int(n[b]) - 1}")
    if np.any((arrays["crit"] & ~allowed) != 0):
        _refuse("crit", _first((arrays["crit"] & ~allowed) != 0), "bits outside the sub-env's nodes")
    both = np.any((arrays["adj"] & arrays["added"]) != 0, axis=(1, 2))
    if both.any():
        _refuse("added", _first(both), "an added edge is also an edge of the task")

    counted = np.bitwise_count(arrays["added"]).reshape(len(n), -1).sum(axis=1)
    if np.any(counted != arrays["edges_added"]):
        _refuse("edges_added", _first(counted != arrays["edges_added"]),
                f"{int(arrays['edges_added'][_first(counted != arrays['edges_added'])])} but the added-edge "
                f"bitsets hold {int(counted[_first(counted != arrays['edges_added'])])} edges")
    check_range(arrays, "steps", 0, cfg.max_steps)
    check_range(arrays, "invalid", 0, arrays["steps"])
    if np.any(arrays["steps"] != arrays["edges_added"] + arrays["invalid"]):
        _refuse("steps", _first(arrays["steps"] != arrays["edges_added"] + arrays["invalid"]),
                "steps must equal edges_added + invalid")

    for key in ("mate_l", "mate_r"):
        check_range(arrays, key, -1, np.where(inside, n[:, None] - 1, -1))
    rows_inside = inside[:, :, None] & inside[:, None, :]   # (B, k, u): k and u real nodes
    for key in ("lat_l", "lat_r"):
        check_range(arrays, key, -1, np.where(rows_inside, n[:, None, None] - 1, -1))


def _derive(cfg: DAGConfig, arrays: dict[str, Any], live: np.ndarray) -> dict[str, np.ndarray]:
    """Everything a reset derives, recomputed by a scratch kernel for the live sub-envs: rows
    0..K-1 from the task's edges alone (the episode's start), rows K..2K-1 with the added edges."""
    from .config import kernel_config  # noqa: PLC0415 (config imports the DOT reader; keep this module light)

    rows = np.flatnonzero(live)
    k = len(rows)
    adj = arrays["adj"][rows]
    tasks = {"n": np.tile(arrays["n"][rows], 2), "deadline": np.tile(arrays["deadline"][rows], 2),
             "wcet": np.tile(arrays["wcet"][rows], (2, 1)),
             "adj": np.concatenate([adj, adj | arrays["added"][rows]]), "playable": np.arange(2 * k, dtype=np.int64)}
    kcfg = kernel_config(cfg, 2 * k)
    kcfg["workload"] = 0                                  # load the tasks given, do not generate
    buffers = kernel_buffers(cfg, 2 * k)
    DAGKernel(kcfg, buffers, tasks).reset(np.ones(2 * k, dtype=np.uint8), np.arange(2 * k, dtype=np.int64))
    return buffers


def _check_derived(cfg: DAGConfig, arrays: dict[str, Any], live: np.ndarray, derived: dict[str, np.ndarray]) -> None:
    rows = np.flatnonzero(live)
    k = len(rows)
    N = cfg.max_nodes
    diag = bits_to_bool(derived["desc"][k:], N)[:, np.arange(N), np.arange(N)]
    if diag.any():
        _refuse("added", int(rows[_first(diag)]), "the task's and the added edges form a cycle")
    if np.any(derived["length"][k:] > arrays["deadline"][rows]):
        b = _first(derived["length"][k:] > arrays["deadline"][rows])
        _refuse("wcet", int(rows[b]), f"the critical path {int(derived['length'][k + b])} exceeds the deadline "
                f"{int(arrays['deadline'][rows[b]])}")
    if cfg.workload != "tasks":
        length = np.maximum(derived["length"][:k], 1)
        vol = arrays["wcet"][rows].sum(axis=1)
        hi = np.maximum(length, (vol.astype(np.float64) / cfg.utilisation_min).astype(np.int64))
        out = (arrays["deadline"][rows] < length) | (arrays["deadline"][rows] > hi)
        if out.any():
            b = _first(out)
            _refuse("deadline", int(rows[b]), f"{int(arrays['deadline'][rows[b]])} is outside the generator's "
                    f"range [{int(length[b])}, {int(hi[b])}] for this task")
    pairs = [(key, key) for key in _DERIVED] + [("initial_width", "width"), ("initial_length", "length")]
    pairs += [(key, key) for key in arrays if key.startswith("obs")] + [("action_mask", "action_mask")]
    for key, source in pairs:
        got = arrays[key][rows].reshape(k, -1)
        want = (derived[source][:k] if key.startswith("initial") else derived[source][k:]).reshape(k, -1)
        differs = np.any(got != want, axis=1)
        if differs.any():
            _refuse(key, int(rows[_first(differs)]), "does not match what the task's WCETs, deadline and "
                    "edges give (recomputed from n, wcet, deadline, adj and added)")


def _check_matchings(arrays: dict[str, Any], live: np.ndarray) -> None:
    """mate_l/mate_r: a matching of the closure's comparabilities of size n - width; lat_l/lat_r
    row k: one inside the nodes incomparable to k, of size |those nodes| - lateral[k]."""
    n, desc = arrays["n"], arrays["desc"]
    _one_matching("mate", arrays["mate_l"][:, None, :], arrays["mate_r"][:, None, :], desc, None)
    sizes = np.sum(arrays["mate_l"] >= 0, axis=1)
    bad = live & (sizes != n - arrays["width"])
    if bad.any():
        _refuse("mate_l", _first(bad), f"a matching of {int(sizes[_first(bad)])} pairs, but n - width = "
                f"{int(n[_first(bad)] - arrays['width'][_first(bad)])}")
    N = desc.shape[1]
    closure = bits_to_bool(desc, N)                                       # (B, u, v): u < v
    comparable = closure | closure.transpose(0, 2, 1) | np.eye(N, dtype=bool)[None]
    outside = comparable                                                  # (B, k, u): u not in S_k
    _one_matching("lat", arrays["lat_l"], arrays["lat_r"], desc, outside)
    inside = np.arange(N)[None, :] < n[:, None]
    set_sizes = np.where(inside, np.sum(~outside & inside[:, None, :], axis=2), 0)
    sizes = np.sum(arrays["lat_l"] >= 0, axis=2)
    bad = inside & (sizes != set_sizes - arrays["lateral"])
    if bad.any():
        b, v = (int(x) for x in np.argwhere(bad)[0])
        _refuse("lat_l", b, f"node {v}'s lateral matching has {int(sizes[b, v])} pairs, but the nodes "
                f"incomparable to it number {int(set_sizes[b, v])} and its lateral width is "
                f"{int(arrays['lateral'][b, v])}")


def _one_matching(name: str, ml: np.ndarray, mr: np.ndarray, desc: np.ndarray, outside: np.ndarray | None) -> None:
    """(B, K, N) left/right mates (values already in [-1, n-1]): mutual, comparable (u < r), and
    for ``outside`` (B, K, N) given, both ends inside row k's set."""
    b, k, u = np.nonzero(ml >= 0)
    r = ml[b, k, u]
    bad = mr[b, k, r] != u
    bad |= ((desc[b, u, r >> 6] >> (r & 63).astype(np.uint64)) & np.uint64(1)) == 0
    if outside is not None:
        bad |= outside[b, k, u] | outside[b, k, r]
    if bad.any():
        i = int(np.argmax(bad))
        where = f"row {int(k[i])}, " if outside is not None else ""
        raise ValueError(f"snapshot array '{name}_l' of sub-env {int(b[i])}: {where}node {int(u[i])} is matched "
                         f"to {int(r[i])}, which is not a valid matching pair (mutual, u before r"
                         f"{', both incomparable to the row node' if outside is not None else ''})")
    b, k, r = np.nonzero(mr >= 0)
    u = mr[b, k, r]
    bad = ml[b, k, u] != r
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"snapshot array '{name}_r' of sub-env {int(b[i])}: node {int(r[i])}'s mate "
                         f"{int(u[i])} is not matched back")


def _check_flags(cfg: DAGConfig, arrays: dict[str, Any], live: np.ndarray) -> None:
    """Reward components in their ranges; an episode in progress is not over."""
    comps = arrays["reward_components"]
    check_range({"reward_components": comps}, "reward_components", [0, -1, -1], [cfg.max_nodes, 0, 0])
    running = live & (arrays["needs_reset"] == 0)
    ended = (arrays["terminated"] | arrays["truncated"]) != 0
    if np.any(running & ended):
        _refuse("terminated", _first(running & ended), "the episode ended but needs_reset is 0")
    target = arrays["width"] <= arrays["lower_bound"]
    if cfg.processors is not None:
        target |= arrays["width"] <= cfg.processors
    stuck = arrays["action_mask"][:, 0] == 1                  # the placeholder: no valid edge
    over = running & (target | stuck | (arrays["steps"] >= cfg.max_steps))
    if over.any():
        _refuse("needs_reset", _first(over), "0, but the state is terminal (width at its bound or target, "
                "no valid edge, or max_steps reached)")
