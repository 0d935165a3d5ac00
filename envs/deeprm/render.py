"""Renderings of a DeepRM sub-env: a text summary (ansi) and the DeepRM image in colour (rgb_array)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frame_text import with_caption
from .config import DeepRMConfig

CELL = 6  # pixels per image cell
OCCUPIED = np.array([52, 101, 164], dtype=np.uint8)
JOB = np.array([237, 125, 49], dtype=np.uint8)
BACKLOG = np.array([120, 120, 120], dtype=np.uint8)
CLOCK = np.array([106, 168, 79], dtype=np.uint8)
EMPTY = np.array([250, 250, 250], dtype=np.uint8)
SEPARATOR = np.array([40, 40, 40], dtype=np.uint8)


@dataclass(frozen=True)
class DeepRMFrame:
    """What a frame of one sub-env shows, built by the env: the DeepRM image (float32 (horizon,
    width), in any observation mode), counters, free units now per resource, and the window jobs
    (``present`` (W,) bool, ``length`` (W,), ``size`` (W, R), ``age`` (W,), ``fits`` (W,) bool)."""

    image: np.ndarray
    now: int
    waiting: int
    allocated: int
    finished: int
    dropped: int
    free_now: np.ndarray
    jobs: dict[str, np.ndarray]


def _column_roles(cfg: DeepRMConfig) -> tuple[np.ndarray, list[int]]:
    """Colour of each image column and the column indices where a block starts."""
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


def _counters(frame: DeepRMFrame) -> str:
    return (f"t={frame.now}  waiting={frame.waiting}  allocated={frame.allocated}  "
            f"finished={frame.finished}  dropped={frame.dropped}")


def rgb(frame: DeepRMFrame, cfg: DeepRMConfig) -> np.ndarray:
    """uint8 RGB picture: cluster occupancy (blue), window jobs (orange), backlog (grey), clock (green),
    under a two-line caption (clock and counters; what the columns and rows are)."""
    colours, starts = _column_roles(cfg)
    value = frame.image[..., None]
    cells = (EMPTY * (1.0 - value) + colours[None, :, :] * value).astype(np.uint8)
    picture = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)
    for start in starts[1:]:
        picture[:, start * CELL, :] = SEPARATOR
    return with_caption(picture, [
        f"DeepRM  {_counters(frame)}",
        f"columns: cluster (blue) | window slots 0-{cfg.window - 1} (orange) | backlog | clock;  "
        f"rows: time now..now+{cfg.horizon - 1}, top = now"])


def ansi(frame: DeepRMFrame, cfg: DeepRMConfig) -> str:
    """A short text summary: clock, cluster usage now, visible jobs, backlog, counters."""
    jobs = frame.jobs
    lines = [_counters(frame)]
    for r, cap in enumerate(cfg.capacity):
        used = cap - int(frame.free_now[r])
        bar = "#" * round(20 * used / cap) + "." * (20 - round(20 * used / cap))
        lines.append(f"resource {r}: [{bar}] {used}/{cap} used now")
    for slot in range(cfg.window):
        if not jobs["present"][slot]:
            break
        sizes = ",".join(str(int(v)) for v in jobs["size"][slot])
        mark = "fits" if jobs["fits"][slot] else "    "
        lines.append(f"  slot {slot}: len={int(jobs['length'][slot]):3d} size=({sizes}) "
                     f"waited={int(jobs['age'][slot])} {mark}")
    backlog = max(0, frame.waiting - cfg.window)
    lines.append(f"backlog: {backlog}/{cfg.backlog}")
    return "\n".join(lines) + "\n"
