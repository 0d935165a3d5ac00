"""Renderings of a congestion-control sub-env: a text summary (ansi) and a rate / latency plot (rgb)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frame_text import with_caption
from .config import PLOT_LENGTH, CCConfig

WIDTH, PANEL = 2 * PLOT_LENGTH + 16, 90  # pixels: 2 px per monitor interval, two panels
BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
GRID = np.array([210, 210, 210], dtype=np.uint8)
BANDWIDTH = np.array([40, 40, 40], dtype=np.uint8)
FLOW_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                         [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127]], dtype=np.uint8)


@dataclass(frozen=True)
class CCFrame:
    """What a frame of one sub-env shows, built by the env: the clock (s), monitor intervals so
    far and the current one's length (s); per link its bandwidth now (pkt/s), packets queued, queue
    capacity, delay (s) and loss rate; per flow its last interval's stats (rate, throughput,
    latency, loss, min RTT); the recorded intervals oldest first (``history`` (flows, n, 3): rate,
    throughput, latency; ``history_bandwidth`` (n,): bottleneck bandwidth)."""

    now: float
    steps: int
    mi_duration: float
    bandwidth: tuple[float, ...]
    queued: tuple[int, ...]
    queue: np.ndarray
    delay: np.ndarray
    loss: np.ndarray
    flow_stats: np.ndarray
    history: np.ndarray
    history_bandwidth: np.ndarray


def ansi(frame: CCFrame, cfg: CCConfig) -> str:
    """Clock, link parameters and queue, and each flow's last monitor interval."""
    lines = [f"t={frame.now:.3f}s  MI {frame.steps}/{cfg.max_steps}  "
             f"MI length {frame.mi_duration * 1e3:.1f} ms"]
    for k in range(cfg.n_links):
        queued = frame.queued[k]
        cap = int(frame.queue[k])
        bar = "#" * round(20 * queued / cap) + "." * (20 - round(20 * queued / cap))
        lines.append(f"link {k}: {frame.bandwidth[k]:7.1f} pkt/s  delay "
                     f"{frame.delay[k] * 1e3:6.1f} ms  loss {frame.loss[k]:.3f}  "
                     f"queue [{bar}] {queued}/{cap}")
    for f in range(cfg.n_flows):
        st = frame.flow_stats[f]
        lines.append(f"flow {f}: rate {st[0]:7.1f}  thr {st[1]:7.1f} pkt/s  latency "
                     f"{st[2] * 1e3:7.1f} ms  loss {st[3]:.3f}  min RTT {st[4] * 1e3:6.1f} ms")
    return "\n".join(lines) + "\n"


def _draw_series(img: np.ndarray, top: int, values: np.ndarray, scale: float, colour: np.ndarray) -> None:
    """A 2-px-per-point line in the panel starting at row ``top`` (value ``scale`` at the top)."""
    if len(values) == 0 or scale <= 0:
        return
    rows = top + PANEL - 1 - np.clip(values / scale, 0.0, 1.0) * (PANEL - 1)
    rows = rows.astype(int)
    x0 = 8
    for i, r in enumerate(rows):
        prev = rows[i - 1] if i else r
        lo, hi = min(prev, r), max(prev, r)
        img[lo:hi + 1, x0 + 2 * i:x0 + 2 * i + 2] = colour


def rgb(frame: CCFrame, cfg: CCConfig) -> np.ndarray:
    """Top: sending rate of each flow (colours) against the bottleneck bandwidth (black).
    Bottom: each flow's mean RTT per monitor interval. The last 128 intervals, oldest left. A
    three-line caption above gives the clock, flow 0's rate and the panels' scales."""
    series, bandwidth = frame.history, frame.history_bandwidth
    img = np.empty((2 * PANEL + 12, WIDTH, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    for top in (4, PANEL + 8):
        img[top + PANEL - 1, 4:-4] = GRID
        img[top:top + PANEL, 4] = GRID
    rate_scale = 1.2 * max(float(bandwidth.max(initial=0.0)), float(series[:, :, 0].max(initial=0.0)), 1e-9)
    latency_scale = 1.2 * max(float(series[:, :, 2].max(initial=0.0)), 1e-9)
    _draw_series(img, 4, bandwidth, rate_scale, BANDWIDTH)
    for f in range(series.shape[0]):
        colour = FLOW_COLOURS[f % len(FLOW_COLOURS)]
        _draw_series(img, 4, series[f, :, 0], rate_scale, colour)
        _draw_series(img, PANEL + 8, series[f, :, 2], latency_scale, colour)
    rate = float(frame.flow_stats[0, 0])
    return with_caption(img, [
        f"CC  t={frame.now:.2f} s  MI {frame.steps}/{cfg.max_steps}  "
        f"rate {rate:.0f} pkt/s",
        f"top: rate vs bandwidth (black), 0-{rate_scale:.0f} pkt/s",
        f"bottom: RTT per interval, 0-{latency_scale * 1e3:.0f} ms"])
