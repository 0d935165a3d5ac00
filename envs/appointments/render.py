"""Renderings of a day: a Gantt line in text (ansi) and a Gantt chart drawn with numpy (rgb_array)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..frame_text import draw_text, with_caption
from .config import AppointmentsConfig

LETTERS = ("S", "L", "B")
WIDTH, HEIGHT, MARGIN = 640, 160, 12
COLOURS = np.array([[52, 101, 164], [237, 125, 49], [106, 168, 79]], dtype=np.uint8)
BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
SLOT_SHADES = np.array([[222, 222, 222], [200, 200, 200]], dtype=np.uint8)
BUFFER = np.array([150, 150, 150], dtype=np.uint8)
LATE = np.array([200, 40, 40], dtype=np.uint8)
AXIS = np.array([40, 40, 40], dtype=np.uint8)


@dataclass(frozen=True)
class AppointmentsFrame:
    """What a frame of one sub-env shows, built by the env: the items placed so far (``day``:
    ``type``, ``booked``, ``start``, ``finish``), the booked start of the next item, the items left
    per type, the item counter, the end of the last item, idle time and maximum lateness (minutes)."""

    day: dict[str, np.ndarray]
    booked_next: float
    left: np.ndarray
    k: int
    end: float
    idle: float
    late_max: float


def _buffers(cfg: AppointmentsConfig, types: np.ndarray) -> np.ndarray:
    """The changeover buffer before each placed item (minutes)."""
    out = np.zeros(len(types))
    for j in range(1, len(types)):
        a, p = types[j], types[j - 1]
        if a != 2 and p != 2 and a != p:
            out[j] = cfg.buffer
    return out


def _slots(frame: AppointmentsFrame, cfg: AppointmentsConfig) -> list[tuple[float, float]]:
    """(booked start, booked end) of the placed items, then of the items still to come (tasks,
    and breaks when they are mandatory) one slot each."""
    day = frame.day
    out = [(float(b), float(b) + (cfg.break_booked if t == 2 else cfg.slot)) for t, b in zip(day["type"], day["booked"])]
    nxt = frame.booked_next
    rem = frame.left
    for i in range(int(rem[0] + rem[1]) + (0 if cfg.optional_breaks else int(rem[2]))):
        out.append((nxt + i * cfg.slot, nxt + (i + 1) * cfg.slot))
    return out


def _cost(frame: AppointmentsFrame, cfg: AppointmentsConfig) -> float:
    """C_alpha so far: idle time (scaled) and maximum lateness weighed by alpha."""
    return cfg.alpha * frame.idle / cfg.cost_divisor + (1 - cfg.alpha) * frame.late_max


def ansi(frame: AppointmentsFrame, cfg: AppointmentsConfig) -> str:
    """Two Gantt lines (booked slots, what happened: S/L/B items, ``~`` buffer, ``.`` idle) and a
    status line."""
    day = frame.day
    slots = _slots(frame, cfg)
    span = max(slots[-1][1] if slots else 0.0, float(day["finish"].max()) if len(day["finish"]) else 0.0)
    scale = max(5.0, math.ceil(span / 120.0 / 5.0) * 5.0)          # minutes per character
    width = int(math.ceil(span / scale)) + 1
    booked = [" "] * width
    for lo, _ in slots:
        booked[int(lo / scale)] = "|"
    line = [" "] * width
    buffers = _buffers(cfg, day["type"])
    previous_end = 0.0
    for a, start, finish, buf in zip(day["type"], day["start"], day["finish"], buffers):
        ready = previous_end + buf
        for c in range(int(previous_end / scale), int(ready / scale)):
            line[c] = "~"
        for c in range(int(ready / scale), int(start / scale)):
            line[c] = "."
        for c in range(int(start / scale), max(int(finish / scale), int(start / scale) + 1)):
            line[min(c, width - 1)] = LETTERS[int(a)]
        previous_end = finish
    delay = frame.end - frame.booked_next
    left = " ".join(f"{name}={int(r)}" for name, r in zip(cfg.type_names, frame.left))
    return (f"slots {''.join(booked)}\nday   {''.join(line)}\n"
            f"item {frame.k}/{cfg.num_items}  left {left}  delay {delay:+.1f} min  idle {frame.idle:.1f}  "
            f"max lateness {frame.late_max:.1f}  C_alpha {_cost(frame, cfg):.2f}  ({scale:g} min/char)\n")


def rgb(frame: AppointmentsFrame, cfg: AppointmentsConfig) -> np.ndarray:
    """uint8 (192, 640, 3): a two-line caption (the item just placed, delay, idle, lateness,
    C_alpha, what is left) over a (160, 640) Gantt chart on a fixed time axis (the configuration's
    horizon, hours labelled): booked slots (grey bands), items (short blue, long orange, break
    green), buffers (dark grey) and each client's lateness (red, from the booked time to the
    start)."""
    day = frame.day
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    horizon = max(cfg.horizon, 1e-9)

    def x(t: float) -> int:
        return MARGIN + int(round((WIDTH - 2 * MARGIN) * min(max(t, 0.0), horizon) / horizon))

    for k, (lo, hi) in enumerate(_slots(frame, cfg)):
        img[20:50, x(lo):max(x(hi), x(lo) + 1)] = SLOT_SHADES[k % 2]
    buffers = _buffers(cfg, day["type"])
    previous_end = 0.0
    for j, (a, start, finish, buf) in enumerate(zip(day["type"], day["start"], day["finish"], buffers)):
        if buf > 0:
            img[70:110, x(previous_end):x(previous_end + buf)] = BUFFER
        img[70:110, x(start):max(x(finish), x(start) + 1)] = COLOURS[int(a)]
        img[70:110, x(start)] = AXIS
        booked = float(day["booked"][j])
        if int(a) != 2 and start > booked:
            img[114:124, x(booked):max(x(start), x(booked) + 1)] = LATE
        previous_end = finish
    img[140, MARGIN:WIDTH - MARGIN] = AXIS
    hours = int(horizon // 60.0)
    for hour in range(hours + 1):
        img[136:145, x(hour * 60.0)] = AXIS
        if hour % max(1, math.ceil(hours / 12)) == 0:
            draw_text(img, x(hour * 60.0) + 2, 145, f"{hour} h", size=10)
    draw_text(img, MARGIN, 5, "booked slots", size=10)
    draw_text(img, MARGIN, 54, "what happened: short blue, long orange, break green, buffer grey; "
              "red below = a client's lateness", size=10)
    last = cfg.type_names[int(day["type"][-1])] if frame.k > 0 else "none yet"
    delay = frame.end - frame.booked_next
    left = ", ".join(f"{name} {int(r)}" for name, r in zip(cfg.type_names, frame.left))
    return with_caption(img, [
        f"Appointments  item {frame.k}/{cfg.num_items}  placed: {last}  delay {delay:+.1f} min  "
        f"C_alpha {_cost(frame, cfg):.2f}",
        f"idle {frame.idle:.1f} min  max lateness {frame.late_max:.1f} min  left: {left}"])
