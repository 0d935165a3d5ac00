"""Renderings of a day: a Gantt line in text (ansi) and a Gantt chart drawn with numpy (rgb_array)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..frame_text import draw_text, with_caption

if TYPE_CHECKING:
    from .env import AppointmentsVectorEnv

LETTERS = ("S", "L", "B")
WIDTH, HEIGHT, MARGIN = 640, 160, 12
COLOURS = np.array([[52, 101, 164], [237, 125, 49], [106, 168, 79]], dtype=np.uint8)
BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
SLOT_SHADES = np.array([[222, 222, 222], [200, 200, 200]], dtype=np.uint8)
BUFFER = np.array([150, 150, 150], dtype=np.uint8)
LATE = np.array([200, 40, 40], dtype=np.uint8)
AXIS = np.array([40, 40, 40], dtype=np.uint8)


def _buffers(env: AppointmentsVectorEnv, types: np.ndarray) -> np.ndarray:
    """The changeover buffer before each placed item (minutes)."""
    cfg = env.config
    out = np.zeros(len(types))
    for j in range(1, len(types)):
        a, p = types[j], types[j - 1]
        if a != 2 and p != 2 and a != p:
            out[j] = cfg.buffer
    return out


def _slots(env: AppointmentsVectorEnv, index: int, day: dict) -> list[tuple[float, float]]:
    """(booked start, booked end) of the placed items, then of the items still to come (tasks,
    and breaks when they are mandatory) one slot each."""
    cfg = env.config
    out = [(float(b), float(b) + (cfg.break_booked if t == 2 else cfg.slot)) for t, b in zip(day["type"], day["booked"])]
    nxt = float(env._booked_next()[index])
    rem = env._state["rem"][index]
    for i in range(int(rem[0] + rem[1]) + (0 if cfg.optional_breaks else int(rem[2]))):
        out.append((nxt + i * cfg.slot, nxt + (i + 1) * cfg.slot))
    return out


def ansi(env: AppointmentsVectorEnv, index: int) -> str:
    """Two Gantt lines (booked slots, what happened: S/L/B items, ``~`` buffer, ``.`` idle) and a
    status line."""
    cfg, day = env.config, env.schedule(index)
    s = env._state
    slots = _slots(env, index, day)
    span = max(slots[-1][1] if slots else 0.0, float(day["finish"].max()) if len(day["finish"]) else 0.0)
    scale = max(5.0, math.ceil(span / 120.0 / 5.0) * 5.0)          # minutes per character
    width = int(math.ceil(span / scale)) + 1
    booked = [" "] * width
    for lo, _ in slots:
        booked[int(lo / scale)] = "|"
    line = [" "] * width
    buffers = _buffers(env, day["type"])
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
    k = int(s["k"][index])
    delay = float(s["end"][index]) - float(env._booked_next()[index])
    cost = cfg.alpha * float(s["idle"][index]) / cfg.cost_divisor + (1 - cfg.alpha) * float(s["late_max"][index])
    left = " ".join(f"{name}={int(r)}" for name, r in zip(cfg.type_names, s["rem"][index]))
    return (f"slots {''.join(booked)}\nday   {''.join(line)}\n"
            f"item {k}/{cfg.num_items}  left {left}  delay {delay:+.1f} min  idle {float(s['idle'][index]):.1f}  "
            f"max lateness {float(s['late_max'][index]):.1f}  C_alpha {cost:.2f}  ({scale:g} min/char)\n")


def rgb(env: AppointmentsVectorEnv, index: int) -> np.ndarray:
    """uint8 (192, 640, 3): a two-line caption (the item just placed, delay, idle, lateness,
    C_alpha, what is left) over a (160, 640) Gantt chart on a fixed time axis (the configuration's
    horizon, hours labelled): booked slots (grey bands), items (short blue, long orange, break
    green), buffers (dark grey) and each client's lateness (red, from the booked time to the
    start)."""
    cfg, day = env.config, env.schedule(index)
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    horizon = max(cfg.horizon, 1e-9)

    def x(t: float) -> int:
        return MARGIN + int(round((WIDTH - 2 * MARGIN) * min(max(t, 0.0), horizon) / horizon))

    for k, (lo, hi) in enumerate(_slots(env, index, day)):
        img[20:50, x(lo):max(x(hi), x(lo) + 1)] = SLOT_SHADES[k % 2]
    buffers = _buffers(env, day["type"])
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
    s = env._state
    k = int(s["k"][index])
    last = cfg.type_names[int(day["type"][-1])] if k > 0 else "none yet"
    delay = float(s["end"][index]) - float(env._booked_next()[index])
    cost = cfg.alpha * float(s["idle"][index]) / cfg.cost_divisor + (1 - cfg.alpha) * float(s["late_max"][index])
    left = ", ".join(f"{name} {int(r)}" for name, r in zip(cfg.type_names, s["rem"][index]))
    return with_caption(img, [
        f"Appointments  item {k}/{cfg.num_items}  placed: {last}  delay {delay:+.1f} min  C_alpha {cost:.2f}",
        f"idle {float(s['idle'][index]):.1f} min  max lateness {float(s['late_max'][index]):.1f} min  "
        f"left: {left}"])
