"""Renderings of a DAG sub-env: a text summary (ansi) and a layered drawing (rgb_array)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frame_text import header_height, with_caption
from .config import DAGConfig

BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
EDGE = np.array([150, 150, 150], dtype=np.uint8)
ADDED = np.array([214, 39, 40], dtype=np.uint8)
NODE = np.array([52, 101, 164], dtype=np.uint8)
CRITICAL = np.array([237, 125, 49], dtype=np.uint8)
SLACK_BAR = np.array([106, 168, 79], dtype=np.uint8)
BAR_BACK = np.array([220, 220, 220], dtype=np.uint8)

SPACING = 40      # pixels between node centres (at most; less when many nodes share the canvas)
RADIUS = 9
MARGIN = 30
BAR = 8           # height of the L/D bar along the top
GRID = 16         # the canvas holds GRID rows and columns at full spacing


@dataclass(frozen=True)
class DAGFrame:
    """What a frame of one (reset) sub-env shows, built by the env: per node ``wcet``, ``critical``
    (bool) and the transitive ``closure`` ((n, n) bool), the task's own edges and the added ones,
    each node's processor, the width W (now, initially, lower bound), the critical-path length L,
    the deadline D, the step count and the action mask."""

    wcet: np.ndarray
    critical: np.ndarray
    closure: np.ndarray
    task_edges: list[tuple[int, int]]
    added_edges: list[tuple[int, int]]
    processors: np.ndarray
    width: int
    initial_width: int
    lower_bound: int
    length: int
    deadline: int
    steps: int
    action_mask: np.ndarray


def layers(closure: np.ndarray) -> np.ndarray:
    """Layer of each node: the number of nodes on the longest chain of its ancestors."""
    n = len(closure)
    depth = np.zeros(n, dtype=np.int64)
    for v in np.argsort(closure.sum(axis=0), kind="stable"):   # ancestors have fewer ancestors
        ancestors = np.flatnonzero(closure[:, v])
        depth[v] = depth[ancestors].max() + 1 if len(ancestors) else 0
    return depth


def _line(img: np.ndarray, p: tuple[float, float], q: tuple[float, float], colour: np.ndarray,
          thick: int) -> None:
    steps = int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))) + 1
    ys = np.rint(np.linspace(p[0], q[0], steps)).astype(int)
    xs = np.rint(np.linspace(p[1], q[1], steps)).astype(int)
    for dy in range(-(thick // 2), thick - thick // 2):
        for dx in range(-(thick // 2), thick - thick // 2):
            yy = np.clip(ys + dy, 0, img.shape[0] - 1)
            xx = np.clip(xs + dx, 0, img.shape[1] - 1)
            img[yy, xx] = colour


def _disk(img: np.ndarray, centre: tuple[float, float], radius: int, colour: np.ndarray) -> None:
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    yy, xx = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    inside = yy * yy + xx * xx <= radius * radius
    img[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1][inside] = colour


def canvas_shape(max_nodes: int) -> tuple[int, int]:
    """(height, width) of every frame of an env with ``max_nodes``: fixed, so that video writers
    (``gymnasium.wrappers.RecordVideo``) get one frame size; multiples of 16 for video codecs.
    The height includes the two-line caption."""
    return _picture_shape(max_nodes)[0] + header_height(2), _picture_shape(max_nodes)[1]


def _picture_shape(max_nodes: int) -> tuple[int, int]:
    cells = min(max_nodes, GRID)
    side = 2 * MARGIN + (cells - 1) * SPACING
    return _round16(side + BAR), _round16(max(side, 400))


def _round16(x: int) -> int:
    return (x + 15) // 16 * 16


def rgb(frame: DAGFrame | None, cfg: DAGConfig) -> np.ndarray:
    """uint8 picture, top to bottom by layer: original edges grey, added edges red, critical nodes
    orange, the others blue; the bar on top is L/D (green) of the deadline (grey). The canvas size
    depends only on ``max_nodes``; deep or wide graphs are drawn with a tighter spacing. A two-line
    caption above gives W, L, D, the last edge added and the colours. ``frame`` None: the sub-env
    was never reset (an empty canvas)."""
    height, width = _picture_shape(cfg.max_nodes)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[...] = BACKGROUND
    if frame is None:
        return with_caption(img, ["DAG-EGS  not reset yet", ""])
    closure = frame.closure
    n = len(closure)
    depth = layers(closure)
    rows = int(depth.max()) + 1
    per_row = np.bincount(depth, minlength=rows)
    cols = int(per_row.max())
    dy = min(SPACING, (height - 2 * MARGIN - BAR) / max(rows - 1, 1))
    dx = min(SPACING, (width - 2 * MARGIN) / max(cols - 1, 1))
    radius = max(2, min(RADIUS, int(0.3 * min(dx, dy))))

    pos = np.zeros((n, 2))
    slot = np.zeros(rows, dtype=np.int64)
    for v in range(n):
        r = depth[v]
        offset = (width - (per_row[r] - 1) * dx) / 2
        pos[v] = (MARGIN + BAR + r * dy, offset + slot[r] * dx)
        slot[r] += 1
    for u, v in frame.task_edges:
        _line(img, tuple(pos[u]), tuple(pos[v]), EDGE, 1)
    for u, v in frame.added_edges:
        _line(img, tuple(pos[u]), tuple(pos[v]), ADDED, 3)
    for v in range(n):
        _disk(img, tuple(pos[v]), radius, CRITICAL if frame.critical[v] else NODE)

    fill = int(round((width - 2 * MARGIN) * frame.length / frame.deadline))
    img[MARGIN // 2:MARGIN // 2 + BAR, MARGIN:width - MARGIN] = BAR_BACK
    img[MARGIN // 2:MARGIN // 2 + BAR, MARGIN:MARGIN + fill] = SLACK_BAR
    added = frame.added_edges
    last = f"{added[-1][0]}->{added[-1][1]}" if added else "none yet"
    return with_caption(img, [
        f"DAG-EGS  width W={frame.width} (lower bound {frame.lower_bound})  "
        f"L={frame.length} of D={frame.deadline}  edges added {len(added)}, last {last}",
        "bar: L/D; grey edges: task, red: added; orange nodes: critical"])


def ansi(frame: DAGFrame | None, cfg: DAGConfig) -> str:
    """A short text summary: sizes, L vs D, W vs its bounds, critical nodes, added edges, chains
    (``frame`` None: never reset)."""
    if frame is None:
        return "not reset yet\n"
    n = len(frame.wcet)
    d, length = frame.deadline, frame.length
    mask = frame.action_mask
    valid = 0 if mask[0] else int(mask.sum())   # action 0 (edge 0 -> 0) only marks "no valid edge"
    procs = frame.processors
    chains = [" ".join(str(v) for v in np.flatnonzero(procs == p)) for p in range(int(procs.max()) + 1)]
    added = frame.added_edges
    lines = [
        f"n={n}  D={d}  L={length} (slack {d - length})  vol={int(frame.wcet.sum())}",
        f"width W={frame.width}  initial {frame.initial_width}  "
        f"lower bound {frame.lower_bound}  edges added {frame.steps}  valid edges {valid}",
        "critical nodes: " + " ".join(str(v) for v in np.flatnonzero(frame.critical)),
        "added edges: " + (", ".join(f"{u}->{v}" for u, v in added) if added else "none"),
    ]
    lines += [f"  P{p}: {chain}" for p, chain in enumerate(chains)]
    return "\n".join(lines) + "\n"
