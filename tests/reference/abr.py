"""Pure-Python reference models of the ABR family, for tests only.

``AbrSession`` follows the dynamics specification in the docstring of :mod:`sysgym.envs.abr`
(Pensieve's simulator, Mao et al. SIGCOMM'17) and ``robust_mpc_choice`` the robustMPC rule in
:mod:`sysgym.agents.heuristics.abr` (Yin et al. SIGCOMM'15), independently of the Cython code:
plain floats and lists, one session, numpy only to assemble the observation. Slow on purpose.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from sysgym.envs.abr import AbrConfig

from .rng import Rng


class Step(NamedTuple):
    obs: np.ndarray
    components: list[float]
    terminated: bool
    info: dict[str, float]
    metrics: dict[str, float] | None


class Trace:
    """One trace as the spec sees it: points tau, one link rate (bytes/s) per segment, and the
    loop: where the walk resumes (lam), how long a whole loop lasts and what it delivers."""

    def __init__(self, time_s, mbps, rate_at: str, loop_clock: str, payload: float):
        self.tau = [float(x) for x in time_s]
        values = list(mbps)[:-1] if rate_at == "start" else list(mbps)[1:]
        self.rate = [float(v) * 1e6 / 8.0 for v in values]
        self.lam = self.tau[0] if loop_clock == "first" else 0.0
        self.loop_s = self.tau[-1] - self.lam
        self.loop_bytes = 0.0
        for i in range(self.segments):
            begin = self.lam if i == 0 else self.tau[i]
            self.loop_bytes += self.rate[i] * (self.tau[i + 1] - begin) * payload

    @property
    def segments(self) -> int:
        return len(self.tau) - 1


class AbrSession:
    """One ABR video session (one sub-env) stepped chunk by chunk."""

    def __init__(self, cfg: AbrConfig, rng_state):
        self.cfg = cfg
        self.rng = Rng(rng_state)
        self.traces = [Trace(tr.time_s, tr.mbps, cfg.rate_at, cfg.loop_clock, cfg.payload_portion)
                       for tr in cfg.traces]
        self.sizes = [[float(x) for x in row] for row in cfg.sizes]
        self.episodes = 0

    # --------------------------------------------------------------- trace walks (spec steps 1, 6)
    def _next_segment(self, tr: Trace) -> None:
        self.i += 1
        if self.i == tr.segments:
            self.i = 0
            self.t = tr.lam
        else:
            self.t = tr.tau[self.i]

    def transfer(self, nbytes: float) -> tuple[float, float, bool]:
        """(seconds, delivered bytes, capped) of one download."""
        tr, p, cap_s = self.traces[self.k], self.cfg.payload_portion, self.cfg.max_transfer_s
        rem, x = nbytes, 0.0
        while True:
            if self.i == 0 and self.t == tr.lam and rem > tr.loop_bytes:
                whole = math.floor(rem / tr.loop_bytes) if tr.loop_bytes > 0 else math.inf
                m = min(whole, math.floor((cap_s - x) / tr.loop_s))
                if m > 0:
                    x += m * tr.loop_s
                    rem -= m * tr.loop_bytes
                    if rem <= 0:
                        return x, nbytes, False
            e = tr.tau[self.i + 1]
            dur = e - self.t
            capped = x + dur > cap_s
            if capped:
                dur = max(cap_s - x, 0.0)
            cap = tr.rate[self.i] * dur * p
            if cap >= rem:
                x += rem / tr.rate[self.i] / p
                self.t = min(self.t + rem / tr.rate[self.i] / p, e)
                return x, nbytes, False
            if capped:
                rem -= cap
                self.t += dur
                return cap_s, nbytes - rem, True
            rem -= cap
            x += dur
            self._next_segment(tr)

    def idle(self, seconds: float) -> None:
        tr = self.traces[self.k]
        s = seconds
        while True:
            if self.i == 0 and self.t == tr.lam and s > tr.loop_s:
                s = max(s - math.floor(s / tr.loop_s) * tr.loop_s, 0.0)
            e = tr.tau[self.i + 1]
            dur = e - self.t
            if dur >= s:
                self.t = min(self.t + s, e)
                return
            s -= dur
            self._next_segment(tr)

    # --------------------------------------------------------------- episode
    def reset(self, trace_index: int | None = None, seeded: bool = False) -> np.ndarray:
        cfg = self.cfg
        if cfg.trace_order == "random":
            self.k = trace_index if trace_index is not None else self.rng.integers(0, len(self.traces) - 1)
            self.i = self.rng.integers(0, self.traces[self.k].segments - 1)
        else:
            if seeded:
                self.episodes = 0
            self.k = trace_index if trace_index is not None else self.episodes % len(self.traces)
            self.i = 0
        self.episodes = self.k + 1
        self.t = self.traces[self.k].tau[self.i]
        self.b = 0.0
        self.c = 0
        self.last = -1 if cfg.initial_level is None else cfg.initial_level
        self.levels: list[int] = []
        self.sums = {"quality": 0.0, "rebuffer": 0.0, "smoothness": 0.0, "rebuffer_s": 0.0,
                     "kbps": 0.0, "session": 0.0, "startup": 0.0, "switches": 0.0, "capped": 0.0}
        self.history = {row: [0.0] * cfg.history for row in (0, 1, 2, 3, 5)}
        # Pensieve's harness: one float64 matrix, rolled as a whole (see pensieve_state below)
        self.matrix = np.zeros((6, cfg.history))
        if cfg.observation == "clean":
            self.history[5][-1] = 1.0
        return self.observation()

    def replace_future(self, trace_index: int, offset_s: float) -> None:
        """The spec of ``set_future_input``: same session, another trace position."""
        tr = self.traces[trace_index]
        self.k = trace_index
        self.i = 0
        while self.i + 1 < tr.segments and tr.tau[self.i + 1] <= offset_s:
            self.i += 1
        self.t = offset_s

    def observation(self) -> np.ndarray:
        cfg = self.cfg
        if cfg.observation == "pensieve":
            return self.matrix.astype(np.float32)
        obs = np.zeros((6, cfg.history), dtype=np.float32)
        for row, values in self.history.items():
            obs[row] = np.asarray(values, dtype=np.float64).astype(np.float32)
        if self.c < cfg.num_chunks:
            for j in range(cfg.num_levels):
                obs[4, j] = np.float32(self.sizes[j][self.c] / 1e6)
        return obs

    def pensieve_state(self, new: dict[int, float]) -> None:
        """Pensieve's test harness: roll the previous state left, then write the newest column of
        rows 0-3 and 5 and the next chunk's sizes (chunk 0's after the last chunk) in row 4."""
        state = np.roll(self.matrix, -1, axis=1)
        for row, value in new.items():
            state[row, -1] = value
        shown = self.c if self.c < self.cfg.num_chunks else 0
        state[4, :self.cfg.num_levels] = [self.sizes[j][shown] / 1e6 for j in range(self.cfg.num_levels)]
        self.matrix = state

    def step(self, a: int) -> Step:
        cfg = self.cfg
        if self.c == 0 and cfg.first_chunk == "initial":  # chunk 0 at the default quality
            a = cfg.initial_level
        size = self.sizes[a][self.c]
        x, delivered, capped = self.transfer(size)
        nu = 1.0
        if cfg.noise:
            lo, hi = cfg.noise_range
            nu = lo + (hi - lo) * self.rng.uniform()
        d = (x + cfg.rtt_s) * nu
        rho = max(d - self.b, 0.0)
        if self.c == 0 and not cfg.startup_rebuffer:
            rho = 0.0
        self.b = max(self.b - d, 0.0) + cfg.chunk_s
        sleep = 0.0
        if self.b > cfg.buffer_cap_s:
            sleep = math.ceil((self.b - cfg.buffer_cap_s) / cfg.sleep_step_s) * cfg.sleep_step_s
            self.b = max(self.b - sleep, 0.0)
            self.idle(sleep)
        q = cfg.quality
        quality = q[a]
        rebuffer = -(cfg.rebuffer_penalty * rho)
        smoothness = -(cfg.smoothness_penalty * abs(q[a] - q[self.last])) if self.last >= 0 else 0.0

        s = self.sums
        s["quality"] += quality
        s["rebuffer"] += rebuffer
        s["smoothness"] += smoothness
        s["rebuffer_s"] += rho
        s["kbps"] += cfg.bitrates_kbps[a]
        s["session"] += d + sleep
        s["capped"] += float(capped)
        if self.c == 0:
            s["startup"] = d
        elif a != self.levels[-1]:
            s["switches"] += 1.0
        self.levels.append(a)
        self.last = a
        self.c += 1

        new = {0: cfg.bitrates_kbps[a] / cfg.bitrates_kbps[-1], 1: self.b / 10.0, 2: delivered / d / 1e6,
               3: d / 10.0, 5: (cfg.num_chunks - self.c) / cfg.num_chunks}
        for row, value in new.items():
            self.history[row] = self.history[row][1:] + [value]
        self.pensieve_state(new)
        done = self.c >= cfg.num_chunks
        info = {"chunk_index": self.c, "buffer_s": self.b, "delay_s": d, "rebuffer_s": rho, "sleep_s": sleep,
                "chunk_bytes": size, "throughput_mbps": delivered * 8.0 / d / 1e6, "last_level": a,
                "trace_index": self.k}
        metrics = None
        if done:
            n = cfg.num_chunks
            metrics = {
                "qoe_per_chunk": (s["quality"] + s["rebuffer"] + s["smoothness"]) / n,
                "quality_per_chunk": s["quality"] / n, "rebuffer_per_chunk": s["rebuffer"] / n,
                "smoothness_per_chunk": s["smoothness"] / n, "rebuffer_time_s": s["rebuffer_s"],
                "switches": s["switches"], "mean_bitrate_kbps": s["kbps"] / n,
                "startup_delay_s": s["startup"], "session_time_s": s["session"],
                "trace_index": float(self.k), "capped_downloads": s["capped"],
            }
        return Step(self.observation(), [quality, rebuffer, smoothness], done, info, metrics)


def robust_mpc_choice(sizes, quality, buffer_s: float, last_level: int, chunk_index: int, bandwidth: float, *,
                      horizon: int, num_chunks: int, chunk_s: float, buffer_cap_s: float, sleep_step_s: float,
                      rebuffer_penalty: float, smoothness_penalty: float) -> int:
    """robustMPC's exhaustive search, plan by plan with itertools (the spec, not the DFS)."""
    h = min(horizon, num_chunks - chunk_index)
    best, choice = -math.inf, 0
    for plan in itertools.product(range(len(quality)), repeat=h):
        b, total, prev = buffer_s, 0.0, last_level
        for d, level in enumerate(plan):
            download = sizes[level][chunk_index + d] / bandwidth
            rebuffer = max(download - b, 0.0)
            b = max(b - download, 0.0) + chunk_s
            if b > buffer_cap_s:
                b -= math.ceil((b - buffer_cap_s) / sleep_step_s) * sleep_step_s
            r = quality[level] - rebuffer_penalty * rebuffer
            if prev >= 0:
                r = r - smoothness_penalty * abs(quality[level] - quality[prev])
            total += r
            prev = level
        if total >= best:
            best, choice = total, plan[0]
    return choice
