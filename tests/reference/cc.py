"""Pure-Python reference model of the congestion-control family (``sysgym.envs.cc``), tests only.

Written from the dynamics specification in the docstring of :mod:`sysgym.envs.cc`, not from the
kernel: one sub-environment, Python objects per packet, and a plain time-ordered event loop in
which a packet crosses its links one event at a time (arrival at link k is its own event), where
the kernel resolves a packet's whole path when it is sent. Same seed, same actions => the same
sender-visible event sequence, observations, reward components and metrics, bit for bit.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sysgym.envs.cc import FEATURES, CCConfig

from .rng import Rng

NOTIFY, SEND, ARRIVE = 0, 1, 2
LOG_SEND, LOG_ACK, LOG_LOSS, LOG_SKIP = 0, 1, 2, 3
METRICS = ("throughput", "latency", "loss_rate", "utilisation", "queueing_delay", "jain_index",
           "duration", "window_limited")


class Step(NamedTuple):
    obs: np.ndarray             # (N, history * features) float32
    reward_components: np.ndarray  # (N, 3)
    stats: np.ndarray           # (N, 6): rate, throughput, latency, loss, min_rtt, send rate
    truncated: bool
    metrics: dict[str, float] | None
    flow_metrics: np.ndarray | None


@dataclass(eq=False)
class Packet:
    seq: int
    flow: int
    sent: float
    coins: list[float]
    lost: bool = False


@dataclass
class TraceLink:
    """A looping trace as a cumulative delivery function A(tau) over trace time (the spec's
    "Trace links"): segments found by linear scans, not the kernel's binary search."""

    rel: list[float]
    rate: list[float]

    def __post_init__(self) -> None:
        self.cum = [0.0]
        for j in range(len(self.rel) - 1):
            self.cum.append(self.cum[-1] + self.rate[j] * (self.rel[j + 1] - self.rel[j]))
        self.period = self.rel[-1]
        self.packets = self.cum[-1]

    def _in_loop(self, tau: float) -> tuple[float, float, int]:
        if 0.0 <= tau < self.period:
            k, u = 0.0, tau
        else:
            k = float(math.floor(tau / self.period))
            u = min(max(tau - k * self.period, 0.0), self.period)
        j = max(i for i in range(len(self.rel) - 1) if self.rel[i] <= u)
        return k, u, j

    def delivered(self, tau: float) -> float:
        k, u, j = self._in_loop(tau)
        return k * self.packets + self.cum[j] + self.rate[j] * (u - self.rel[j])

    def rate_at(self, tau: float) -> float:
        return self.rate[self._in_loop(tau)[2]]

    def departure(self, s: float, tau: float) -> float:
        """When a packet starting at time s, trace time tau, leaves: within its segment if that
        delivers a packet by its end, else once A has grown by one (returned as a trace time)."""
        k, u, j = self._in_loop(tau)
        r = self.rate[j]
        if r * (self.rel[j + 1] - u) >= 1.0:
            return ("time", s + 1.0 / r)
        target = k * self.packets + self.cum[j] + r * (u - self.rel[j]) + 1.0
        k = float(math.floor(target / self.packets))
        v = target - k * self.packets
        if v <= 0.0:
            k -= 1.0
            v += self.packets
        v = min(v, self.packets)
        j = min(i for i in range(len(self.rel) - 1) if self.cum[i + 1] >= v)
        return ("trace time", k * self.period + self.rel[j] + (v - self.cum[j]) / self.rate[j])


@dataclass
class Link:
    bandwidth: float
    delay: float
    queue: int
    loss: float
    busy: float = 0.0
    departures: deque = field(default_factory=deque)  # departure times of packets it holds
    capacity_total: float = 0.0


@dataclass
class Flow:
    rate: float
    srtt: float
    min_rtt: float = 0.0
    outstanding: int = 0
    mi: dict = field(default_factory=dict)
    sent_total: int = 0
    acked_total: int = 0
    lost_total: int = 0
    rtt_total: float = 0.0
    skipped: int = 0
    history: list = field(default_factory=list)


class CCReference:
    """One sub-env of the congestion-control family, from the spec."""

    def __init__(self, cfg: CCConfig):
        self.cfg = cfg
        self.log: list[tuple[float, int, int, float]] = []

    # ------------------------------------------------------------------ episode
    def reset(self, rng_state: np.ndarray, link_index: int | None = None) -> Step:
        cfg = self.cfg
        rng = self.rng = Rng(rng_state)
        tt = cfg.trace_table
        links: list[Link] = []
        offset, trace = 0.0, -1
        if cfg.links is not None:
            e = rng.integers(0, len(cfg.links) - 1) if link_index is None else link_index
            for k in range(cfg.n_links):
                links.append(Link(float(cfg.links.bandwidth[e, k]), float(cfg.links.delay[e, k]),
                                  int(cfg.links.queue[e, k]), float(cfg.links.loss[e, k])))
            trace, offset = int(cfg.links.trace[e]), float(cfg.links.offset[e])
        else:
            (blo, bhi), (dlo, dhi), (qlo, qhi), (plo, phi) = cfg.bandwidth, cfg.delay, cfg.queue, cfg.loss
            for k in range(cfg.n_links):
                bw = 0.0 if (k == 0 and tt is not None) else blo + (bhi - blo) * rng.uniform()
                d = dlo + (dhi - dlo) * rng.uniform()
                lq0, lq1 = math.log(qlo), math.log(qhi + 1)
                q = min(int(math.floor(math.exp(lq0 + (lq1 - lq0) * rng.uniform()))), qhi)
                p = plo + (phi - plo) * rng.uniform()
                links.append(Link(bw, d, q, p))
            if tt is not None:
                trace = int(tt.choices[rng.integers(0, len(tt.choices) - 1)])
                offset = rng.uniform() * float(tt.duration[trace])
        self.links = links
        self.trace = None
        if tt is not None:
            self.set_future_input(trace, offset)
        self.D = 0.0
        for link in links:
            self.D += link.delay
        base_rtt = 2.0 * self.D

        self.now = self.mi_start = 0.0
        self.events: list[tuple] = []
        self.seq = 0
        self.steps = 0
        bottleneck = min(self._bandwidth(k, 0.0) for k in range(len(links)))
        neutral = [FEATURES[f][2] for f in cfg.features]
        self.flows = []
        for f in range(cfg.n_flows):
            u = rng.uniform()
            rate = _clip((cfg.start_rate[0] + (cfg.start_rate[1] - cfg.start_rate[0]) * u) * bottleneck,
                         cfg.min_rate, cfg.max_rate)
            flow = Flow(rate=rate, srtt=base_rtt, history=[list(neutral) for _ in range(cfg.history)])
            self.flows.append(flow)
            self._push(rng.uniform() / rate, SEND, f, 0)
        step = self._monitor_interval(_clip(cfg.first_mi * base_rtt, *cfg.mi_limits))
        return step._replace(reward_components=np.zeros_like(step.reward_components))

    def step(self, actions) -> Step:
        cfg = self.cfg
        for f, flow in enumerate(self.flows):
            if cfg.action == "discrete":
                new = flow.rate * (1.0 + cfg.rate_changes[int(actions[f])])
            else:
                bound = cfg.action_bound  # the action space's bounds
                delta = _clip(float(np.asarray(actions[f]).reshape(-1)[0]), -bound, bound) * cfg.delta_scale
                new = flow.rate * (1.0 + delta) if delta >= 0.0 else flow.rate / (1.0 - delta)
            flow.rate = _clip(new, cfg.min_rate, cfg.max_rate)
        total = 0.0
        for flow in self.flows:
            total += flow.srtt
        step = self._monitor_interval(_clip(cfg.mi_rtts * (total / cfg.n_flows), *cfg.mi_limits))
        self.steps += 1
        if self.steps >= cfg.max_steps:
            metrics, flow_metrics = self._metrics()
            return step._replace(truncated=True, metrics=metrics, flow_metrics=flow_metrics)
        return step

    def set_future_input(self, trace: int, position: float) -> None:
        """Link 0 follows trace ``trace`` from ``position`` seconds into it, from now on."""
        tt = self.cfg.trace_table
        lo, n = int(tt.start[trace]), int(tt.length[trace])
        self.trace = TraceLink(tt.rel[lo:lo + n].tolist(), tt.rate[lo:lo + n].tolist())
        self.trace_index, self.trace_pos = int(trace), float(position)

    def _bandwidth(self, k: int, t: float) -> float:
        """Link k's bandwidth at time t of the current monitor interval (or at reset)."""
        if k == 0 and self.trace is not None:
            return self.trace.rate_at(self.trace_pos + (t - self.mi_start))
        return self.links[k].bandwidth

    # ------------------------------------------------------------------ events
    def _push(self, time: float, kind: int, who: int, seq: int, packet: Packet | None = None,
              link: int = 0) -> None:
        # order: time, then kind (notifications, sends, link arrivals), then flow / link, then seq
        heapq.heappush(self.events, (time, kind, who, seq, packet, link))

    def _monitor_interval(self, length: float) -> Step:
        start = self.now
        end = start + length
        self.mi_start = start
        for flow in self.flows:
            flow.mi = {"sent": 0, "acked": 0, "lost": 0, "rtt": 0.0, "x": 0.0, "xx": 0.0, "xy": 0.0}
        while self.events and self.events[0][0] < end:
            time, kind, who, _, packet, link = heapq.heappop(self.events)
            self.now = time
            if kind == SEND:
                self._send(who, time)
            elif kind == ARRIVE:
                self._arrive(packet, link, time)
            else:
                self._notify(packet, time)
        self.now = end
        return self._finish(start, end)

    def _send(self, f: int, t: float) -> None:
        flow = self.flows[f]
        if flow.outstanding >= self.cfg.max_inflight:
            flow.skipped += 1
            self.log.append((t, LOG_SKIP, f, 0.0))
        else:
            coins = [self.rng.uniform() for _ in self.links]
            packet = Packet(self.seq, f, t, coins)
            self.seq += 1
            flow.outstanding += 1
            flow.mi["sent"] += 1
            flow.sent_total += 1
            self.log.append((t, LOG_SEND, f, 0.0))
            self._arrive(packet, 0, t)  # link 0 is entered at the send time
        self._push(t + 1.0 / flow.rate, SEND, f, 0)

    def _arrive(self, packet: Packet, k: int, a: float) -> None:
        link = self.links[k]
        if not packet.lost:
            if packet.coins[k] < link.loss:
                packet.lost = True
            else:
                while link.departures and link.departures[0] <= a:
                    link.departures.popleft()
                if len(link.departures) >= link.queue:
                    packet.lost = True
                else:
                    s = max(a, link.busy)
                    if k == 0 and self.trace is not None:
                        # trace time p + (t - start) within the interval, and back
                        kind, when = self.trace.departure(s, self.trace_pos + (s - self.mi_start))
                        dep = when if kind == "time" else max(s, self.mi_start + (when - self.trace_pos))
                    else:
                        dep = s + 1.0 / link.bandwidth
                    link.departures.append(dep)
                    link.busy = dep
                    self._forward(packet, k, dep + link.delay)
                    return
        self._forward(packet, k, max(a, link.busy) + link.delay)

    def _forward(self, packet: Packet, k: int, arrival: float) -> None:
        if k + 1 < len(self.links):
            self._push(arrival, ARRIVE, k + 1, packet.seq, packet, k + 1)
        else:
            self._push(arrival + self.D, NOTIFY, packet.flow, packet.seq, packet)

    def _notify(self, packet: Packet, t: float) -> None:
        flow = self.flows[packet.flow]
        flow.outstanding -= 1
        if packet.lost:
            flow.mi["lost"] += 1
            flow.lost_total += 1
            self.log.append((t, LOG_LOSS, packet.flow, 0.0))
            return
        rtt = t - packet.sent
        x = packet.sent - self.mi_start
        m = flow.mi
        m["acked"] += 1
        m["rtt"] += rtt
        m["x"] += x
        m["xx"] += x * x
        m["xy"] += x * rtt
        flow.acked_total += 1
        flow.rtt_total += rtt
        if flow.min_rtt == 0.0:
            flow.srtt = flow.min_rtt = rtt
        else:
            flow.srtt = flow.srtt + 0.125 * (rtt - flow.srtt)
            flow.min_rtt = min(flow.min_rtt, rtt)
        self.log.append((t, LOG_ACK, packet.flow, rtt))

    # ------------------------------------------------------------------ monitor interval results
    def _finish(self, start: float, end: float) -> Step:
        cfg = self.cfg
        dur = end - start
        caps = []
        for k, link in enumerate(self.links):
            if k == 0 and self.trace is not None:
                p = self.trace_pos
                cap = max(0.0, self.trace.delivered(p + (end - start)) - self.trace.delivered(p))
                self.trace_pos = math.fmod(p + (end - start), self.trace.period)
            else:
                cap = link.bandwidth * dur
            link.capacity_total += cap
            caps.append(cap)
        c = min(caps)
        self.mi_bandwidth = c / dur
        comps, stats, obs = [], [], []
        for flow in self.flows:
            m = flow.mi
            sent, acked, lost = float(m["sent"]), float(m["acked"]), float(m["lost"])
            thr = acked / dur
            lat = m["rtt"] / acked if acked > 0 else flow.srtt
            loss = lost / (acked + lost) if acked + lost > 0 else 0.0
            if cfg.throughput == "normalised":
                first = acked / c if c > 0 else 0.0
            else:
                first = thr
            comps.append([first, lat, loss])
            stats.append([flow.rate, thr, lat, loss, flow.min_rtt, sent / dur])
            row = []
            for name in cfg.features:
                if name == "latency_gradient":
                    value = 0.0
                    if acked >= 2:
                        den = acked * m["xx"] - m["x"] * m["x"]
                        if den > 0:
                            value = (acked * m["xy"] - m["x"] * m["rtt"]) / den
                elif name == "latency_ratio":
                    value = lat / flow.min_rtt if flow.min_rtt > 0 else 1.0
                elif name == "send_ratio":
                    value = sent / acked if acked > 0 else (1.0 if sent == 0 else FEATURES[name][1])
                elif name == "send_rate":
                    value = sent / dur / cfg.max_rate
                elif name == "recv_rate":
                    value = thr / cfg.max_rate
                else:
                    value = loss
                lo, hi = FEATURES[name][:2]
                row.append(_clip(value, lo, hi))
            flow.history = flow.history[1:] + [row]
            obs.append(np.asarray(flow.history, dtype=np.float32).reshape(-1))
        return Step(np.stack(obs), np.asarray(comps), np.asarray(stats), False, None, None)

    def _metrics(self) -> tuple[dict[str, float], np.ndarray]:
        duration = self.now
        acked = lost = rtt = skipped = qdelay = 0.0
        sum_x = sum_xx = 0.0
        per_flow = []
        for flow in self.flows:
            thr = flow.acked_total / duration
            per_flow.append([thr, flow.rtt_total / flow.acked_total if flow.acked_total else 0.0,
                             flow.lost_total / (flow.acked_total + flow.lost_total)
                             if flow.acked_total + flow.lost_total else 0.0])
            acked += flow.acked_total
            lost += flow.lost_total
            rtt += flow.rtt_total
            skipped += flow.skipped
            if flow.acked_total:
                qdelay += flow.rtt_total - flow.acked_total * flow.min_rtt
            sum_x += thr
            sum_xx += thr * thr
        cap = min(link.capacity_total for link in self.links)
        metrics = {
            "throughput": acked / duration,
            "latency": rtt / acked if acked else 0.0,
            "loss_rate": lost / (acked + lost) if acked + lost else 0.0,
            "utilisation": acked / cap if cap > 0 else 0.0,
            "queueing_delay": qdelay / acked if acked else 0.0,
            "jain_index": sum_x * sum_x / (len(self.flows) * sum_xx) if sum_xx > 0 else 1.0,
            "duration": duration,
            "window_limited": float(skipped),
        }
        return metrics, np.asarray(per_flow)


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else (hi if x > hi else x)
