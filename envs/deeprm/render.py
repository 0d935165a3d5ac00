"""Renderings of a DeepRM sub-env: a text summary (ansi) and the DeepRM image in colour (rgb_array)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..frame_text import with_caption

if TYPE_CHECKING:
    from .env import DeepRMVectorEnv

CELL = 6  # pixels per image cell
OCCUPIED = np.array([52, 101, 164], dtype=np.uint8)
JOB = np.array([237, 125, 49], dtype=np.uint8)
BACKLOG = np.array([120, 120, 120], dtype=np.uint8)
CLOCK = np.array([106, 168, 79], dtype=np.uint8)
EMPTY = np.array([250, 250, 250], dtype=np.uint8)
SEPARATOR = np.array([40, 40, 40], dtype=np.uint8)


def image(env: DeepRMVectorEnv, index: int) -> np.ndarray:
    """The DeepRM image of sub-env ``index`` as float32 (horizon, width), in any observation mode."""
    cfg = env.config
    out = np.zeros((cfg.horizon, cfg.image_width), dtype=np.float32)
    env._kernel.write_image(index, out)
    return out


def _column_roles(env: DeepRMVectorEnv) -> tuple[np.ndarray, list[int]]:
    """Colour of each image column and the column indices where a block starts."""
    cfg = env.config
    colours, starts = [], []
    for r in range(cfg.num_resources):
        starts.append(len(colours))
        colours += [OCCUPIED] * cfg.capacity[r]
        for _ in range(cfg.window):
            starts.append(len(colours))
            colours += [JOB] * cfg.max_job_size
    starts.append(len(colours))
    colours += [BACKLOG] * cfg.backlog_columns
    starts.append(len(colours))
    colours.append(CLOCK)
    return np.stack(colours), starts


def rgb(env: DeepRMVectorEnv, index: int) -> np.ndarray:
    """uint8 RGB picture: cluster occupancy (blue), window jobs (orange), backlog (grey), clock (green),
    under a two-line caption (clock and counters; what the columns and rows are)."""
    img = image(env, index)
    colours, starts = _column_roles(env)
    value = img[..., None]
    cells = (EMPTY * (1.0 - value) + colours[None, :, :] * value).astype(np.uint8)
    picture = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)
    for start in starts[1:]:
        picture[:, start * CELL, :] = SEPARATOR
    s, cfg = env._state, env.config
    return with_caption(picture, [
        f"DeepRM  t={int(s['now'][index])}  waiting={int(s['n_wait'][index])}  "
        f"allocated={int(s['n_run'][index])}  finished={int(s['acc'][index, 3])}  "
        f"dropped={int(s['acc'][index, 5])}",
        f"columns: cluster (blue) | window slots 0-{cfg.window - 1} (orange) | backlog | clock;  "
        f"rows: time now..now+{cfg.horizon - 1}, top = now"])


def ansi(env: DeepRMVectorEnv, index: int) -> str:
    """A short text summary: clock, cluster usage now, visible jobs, backlog, counters."""
    s, cfg = env._state, env.config
    free = env.free_resources()[index]
    jobs = env.window_jobs()
    lines = [f"t={int(s['now'][index])}  waiting={int(s['n_wait'][index])}  "
             f"allocated={int(s['n_run'][index])}  finished={int(s['acc'][index, 3])}  "
             f"dropped={int(s['acc'][index, 5])}"]
    for r, cap in enumerate(cfg.capacity):
        used = cap - int(free[r, 0])
        bar = "#" * round(20 * used / cap) + "." * (20 - round(20 * used / cap))
        lines.append(f"resource {r}: [{bar}] {used}/{cap} used now")
    for slot in range(cfg.window):
        if not jobs["present"][index, slot]:
            break
        sizes = ",".join(str(int(v)) for v in jobs["size"][index, slot])
        mark = "fits" if jobs["fits"][index, slot] else "    "
        lines.append(f"  slot {slot}: len={int(jobs['length'][index, slot]):3d} size=({sizes}) "
                     f"waited={int(jobs['age'][index, slot])} {mark}")
    backlog = max(0, int(s["n_wait"][index]) - cfg.window)
    lines.append(f"backlog: {backlog}/{cfg.backlog}")
    return "\n".join(lines) + "\n"
