"""Renderings of a congestion-control sub-env: a text summary (ansi) and a rate / latency plot (rgb)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..frame_text import with_caption
from .config import PLOT_LENGTH, CCConfig

WIDTH, PANEL = 2 * PLOT_LENGTH + 16, 90  # pixels: 2 px per monitor interval, two panels
BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
GRID = np.array([210, 210, 210], dtype=np.uint8)
BANDWIDTH = np.array([40, 40, 40], dtype=np.uint8)
FLOW_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                         [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127]], dtype=np.uint8)


def _recent(state: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, np.ndarray]:
    """The last recorded monitor intervals in time order: per-flow (rate, throughput, latency) and
    bottleneck bandwidth."""
    count = int(state["plot_n"][index])
    n = min(count, PLOT_LENGTH)
    order = (np.arange(count - n, count) % PLOT_LENGTH)
    return state["plot"][index][:, order, :], state["plot_bw"][index][order]


def ansi(state: dict[str, np.ndarray], kernel: Any, cfg: CCConfig, index: int) -> str:
    """Clock, link parameters and queue, and each flow's last monitor interval."""
    lines = [f"t={state['now'][index]:.3f}s  MI {int(state['steps'][index])}/{cfg.max_steps}  "
             f"MI length {state['mi_duration'][index] * 1e3:.1f} ms"]
    for k in range(cfg.n_links):
        queued = kernel.queue_length(index, k)
        cap = int(state["queue"][index, k])
        bar = "#" * round(20 * queued / cap) + "." * (20 - round(20 * queued / cap))
        lines.append(f"link {k}: {kernel.link_bandwidth(index, k):7.1f} pkt/s  delay "
                     f"{state['delay'][index, k] * 1e3:6.1f} ms  loss {state['loss'][index, k]:.3f}  "
                     f"queue [{bar}] {queued}/{cap}")
    for f in range(cfg.n_flows):
        st = state["flow_stats"][index, f]
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


def rgb(state: dict[str, np.ndarray], cfg: CCConfig, index: int) -> np.ndarray:
    """Top: sending rate of each flow (colours) against the bottleneck bandwidth (black).
    Bottom: each flow's mean RTT per monitor interval. The last 128 intervals, oldest left. A
    three-line caption above gives the clock, flow 0's rate and the panels' scales."""
    series, bandwidth = _recent(state, index)
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
    rate = float(state["flow_stats"][index, 0, 0])
    return with_caption(img, [
        f"CC  t={state['now'][index]:.2f} s  MI {int(state['steps'][index])}/{cfg.max_steps}  "
        f"rate {rate:.0f} pkt/s",
        f"top: rate vs bandwidth (black), 0-{rate_scale:.0f} pkt/s",
        f"bottom: RTT per interval, 0-{latency_scale * 1e3:.0f} ms"])
