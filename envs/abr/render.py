"""Renderings of an ABR sub-env: a text summary (ansi) and a bitrate / buffer plot (rgb_array)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frame_text import with_caption
from .config import AbrConfig

BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
AXIS = np.array([40, 40, 40], dtype=np.uint8)
BITRATE = np.array([52, 101, 164], dtype=np.uint8)
BUFFER = np.array([106, 168, 79], dtype=np.uint8)
STALL = np.array([204, 0, 0], dtype=np.uint8)
CAP = np.array([160, 160, 160], dtype=np.uint8)
PANEL = 72      # pixel height of each panel
COLUMN = 6      # pixel width of one chunk
MARGIN = 4
MAX_COLUMNS = 256   # a longer video shows its latest 256 chunks (the frame size stays fixed)


@dataclass(frozen=True)
class AbrFrame:
    """What a frame of one sub-env shows, built by the env: the chunk counter, the trace played and
    its clock, the buffer, the last chunk's outcome (``nbytes``, ``delay``, ``rebuffer``, ``sleep``
    in s), the QoE parts so far (``qoe``: quality, rebuffer, smoothness) and the episode's history
    (``history``: per-chunk ``level``, ``buffer_s``, ``rebuffer_s``)."""

    chunk: int
    last_level: int
    buffer_s: float
    trace_name: str
    trace: int
    t: float
    nbytes: int
    delay: float
    rebuffer: float
    sleep: float
    qoe: np.ndarray
    history: dict[str, np.ndarray]


def rgb(frame: AbrFrame, cfg: AbrConfig) -> np.ndarray:
    """uint8 picture: bitrate per chunk (blue bars, top), buffer after each chunk (green, bottom,
    grey line = buffer cap) and stalls (red ticks under the buffer panel); at most the latest
    MAX_COLUMNS chunks. A three-line caption above gives the chunk, the level just chosen and the
    buffer, and names the panels."""
    n = min(cfg.num_chunks, MAX_COLUMNS)
    hist = {key: values[-n:] for key, values in frame.history.items()}
    width = 2 * MARGIN + n * COLUMN
    height = 2 * PANEL + 3 * MARGIN + 6
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[...] = BACKGROUND
    top, bottom = MARGIN, 2 * MARGIN + PANEL
    kbps = np.asarray(cfg.bitrates_kbps)
    for c, level in enumerate(hist["level"]):
        x0 = MARGIN + c * COLUMN
        bar = max(1, round(PANEL * kbps[level] / kbps[-1]))
        img[top + PANEL - bar:top + PANEL, x0:x0 + COLUMN - 1] = BITRATE
        fill = max(1, round(PANEL * min(hist["buffer_s"][c] / cfg.buffer_cap_s, 1.0)))
        img[bottom + PANEL - fill:bottom + PANEL, x0:x0 + COLUMN - 1] = BUFFER
        if hist["rebuffer_s"][c] > 0:
            img[bottom + PANEL + 2:bottom + PANEL + 6, x0:x0 + COLUMN - 1] = STALL
    img[bottom, MARGIN:width - MARGIN] = CAP
    for y in (top + PANEL, bottom + PANEL):
        img[y, MARGIN:width - MARGIN] = AXIS
    img[top:bottom + PANEL + 1, MARGIN - 1] = AXIS
    last = "none yet"
    if frame.chunk > 0:
        last = f"level {frame.last_level} ({cfg.bitrates_kbps[frame.last_level]:g} kbps)"
    return with_caption(img, [
        f"ABR  chunk {frame.chunk}/{cfg.num_chunks}  chose {last}",
        f"top: bitrate per chunk, up to {kbps[-1]:g} kbps",
        f"bottom: buffer {frame.buffer_s:.1f} s of {cfg.buffer_cap_s:g} s; red = stall"])


def ansi(frame: AbrFrame, cfg: AbrConfig) -> str:
    """Chunk counter, trace, buffer bar, the last chunk's outcome and the QoE so far."""
    c, buffer_s = frame.chunk, frame.buffer_s
    filled = round(30 * min(buffer_s / cfg.buffer_cap_s, 1.0))
    lines = [f"chunk {c}/{cfg.num_chunks}  trace {frame.trace_name!r} "
             f"(#{frame.trace}) at t={frame.t:.2f}s",
             f"buffer [{'#' * filled}{'.' * (30 - filled)}] {buffer_s:5.2f}s / {cfg.buffer_cap_s:g}s"]
    if c > 0:
        level = frame.last_level
        lines.append(f"last chunk: level {level} ({cfg.bitrates_kbps[level]:g} kbps), "
                     f"{frame.nbytes} B, delay {frame.delay:.3f}s, "
                     f"rebuffer {frame.rebuffer:.3f}s, sleep {frame.sleep:.1f}s")
        acc = frame.qoe
        lines.append(f"QoE so far: quality {acc[0]:.2f}  rebuffer {acc[1]:.2f}  smoothness {acc[2]:.2f}  "
                     f"total {acc[0] + acc[1] + acc[2]:.2f}")
        levels = frame.history["level"][-24:]
        lines.append("levels: " + "".join(str(int(v)) if v < 10 else "+" for v in levels))
    return "\n".join(lines) + "\n"
