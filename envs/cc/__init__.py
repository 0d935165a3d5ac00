"""Congestion control: rate-based senders over simulated links (Aurora) and a multi-flow version.

References: N. Jay, N. H. Rotman, P. B. Godfrey, M. Schapira, A. Tamar, "A Deep Reinforcement
Learning Perspective on Internet Congestion Control", ICML 2019 (Aurora: monitor intervals, the
observation history, the rate-change rule and the reward). M. Dong et al., "PCC Vivace",
NSDI 2018 (latency gradient as a regression slope). Z. Xia et al., "Genet: Automatic Curriculum
Generation for Learning Adaptation in Networking", SIGCOMM 2022 (bandwidth-normalised
throughput reward). S. Patel et al., "CrystalBox: Future-Based Explanations for Input-Driven
Deep RL Systems", AAAI 2024 (explains this env through its reward components). D.-M. Chiu,
R. Jain, "Analysis of the increase and decrease algorithms for congestion avoidance", 1989
(Jain's fairness index). L. Brakmo, L. Peterson, "TCP Vegas", IEEE JSAC 1995.

IDs: ``sysgym/CC-v0`` (continuous rate change, Box[-1, 1]) and ``sysgym/CC-Discrete-v0`` (rate
changes {-25%, -5%, 0, +5%, +25%}). ``sysgym.envs.cc.parallel_env(n_flows=N, ...)`` is the
PettingZoo ParallelEnv with N senders sharing the path; each agent has the single-flow spaces
(``aec_env(...)`` gives the agent-by-agent form).

Kwargs (all envs)
-----------------
bandwidth (100, 500) packets/s   delay (0.05, 0.5) s one-way   queue (2, 3000) packets   loss (0, 0.05)
    per-link ranges; a single number fixes the value. Queue sizes are drawn log-uniformly.
n_links 1          links on the path (each drawn independently from the ranges)
traces None        bandwidth traces replayed on link 0: a cooked ``time_s Mbps`` or Mahimahi
                   file, a directory, a list (read by :mod:`sysgym.envs.bandwidth`;
                   ``trace_format``, ``trace_bin_ms``) or "synthetic" (16 seeded synthetic traces)
link_set None      None: fresh links every episode; "train" / "test": a fixed set of
                   ``link_set_size`` (1000 / 100) links drawn with ``split_seed``, from disjoint seed
                   streams; with traces the set also splits the traces (``test_fraction`` 0.2)
start_rate (0.3, 1.5)  x bottleneck bandwidth     min_rate 40, max_rate 1000 packets/s
action "continuous" | "discrete"   delta_scale 0.05   rate_changes (-0.25, -0.05, 0, 0.05, 0.25)
history 10         monitor intervals in the observation
features ("latency_gradient", "latency_ratio", "send_ratio") + optional "send_rate",
                   "recv_rate", "loss_rate"
first_mi 3.0 (x base RTT)   mi_rtts 0.5 (x smoothed RTT)   mi_limits (0.01, 10.0) s
max_steps 400      monitor intervals per episode (then truncated)
max_inflight 8192  packets a flow may have outstanding (a receive window; sizes a 16-byte-per-packet
                   ring per flow and sub-env, 128 KB at the default)
throughput "absolute" | "normalised"    reward_scale 1.0 (Aurora's code uses 0.001)

Dynamics (the kernel ``cython_core/cc.pyx`` and ``tests/reference/cc.py`` implement exactly this)
-----------------------------------------------------------------------------------------------
*Units.* Time in seconds, sizes in packets (1500 bytes), rates in packets/s; a trace's Mbps
become packets/s as Mbps x 10^6 / 12000. All draws come from the sub-env's xoshiro256** stream
(``cython_core/rng.pxd``): ``U`` is one ``uniform()``, ``I(lo, hi)`` one ``integers(lo, hi)``.

*Path.* Links 0..L-1 in series, each with bandwidth ``bw_k``, one-way propagation delay ``d_k``,
queue size ``Q_k`` (packets the link holds, the one in transmission included) and random loss
``p_k``. With traces, link 0's bandwidth follows the trace (below) and the others are constant.
Acknowledgements return over the reverse path with delay ``D = sum_k d_k`` and are never queued
or lost. ``base RTT = 2 D``.

*Reset* draws, in this order: (1) with a link set, ``e = I(0, S-1)`` (not drawn when the reset
option ``link_index`` names the entry) and entry e gives every link's (bw, d, Q, p) and the
trace and offset; otherwise for k = 0..L-1: ``bw_k = lo + (hi-lo) U``
(not drawn for link 0 with traces), ``d_k = lo + (hi-lo) U``, ``Q_k = min(floor(exp(ln Q_lo +
(ln(Q_hi+1) - ln Q_lo) U)), Q_hi)``, ``p_k = lo + (hi-lo) U``; then with traces the trace
``choices[I(0, n-1)]`` among the split's traces and the offset ``U x duration``. (2) For each flow
f in order: ``rate_f = clip((lo + (hi-lo) U) x B0, min_rate, max_rate)`` with B0 the smallest
link bandwidth at time 0, then its first send time ``U / rate_f``. Smoothed RTT starts at the base
RTT, the observation history at the neutral values (gradient 0, latency ratio 1, send ratio 1,
rates and loss 0). (3) A first monitor interval of length ``clip(first_mi x base RTT, mi_limits)``
is simulated at the starting rates; the first observation ends with its row; the reset info shows
its statistics and zero reward components.

*Trace links.* A trace with samples (T_j, r_j), j = 0..n-1, rel_j = T_j - T_0, gives rate r_j on
segment j = [rel_j, rel_{j+1}) for j < n-1 and loops with period rel_{n-1}; at time t of the
episode the link is at trace time t + offset. Two cursors (segment j, origin o: segment j covers
[o + rel_j, o + rel_{j+1}); o starts at -offset and grows by the period at each wrap) walk the
trace forward: the *service* cursor serves packets, the *capacity* cursor integrates bandwidth
per monitor interval. A packet whose transmission starts at s needs one packet of service:
walking from the service cursor, skip segments whose end <= s; on a segment with r > 0 and
``r x (end - s) >= remaining`` it completes at ``s + remaining / r``, otherwise ``remaining -=
r x (end - s)`` (when r > 0) and s moves to the segment end. Capacity over [t0, t1) adds
``r x (min(end, t1) - s)`` over the segments walked from t0, stopping on the segment with end >= t1.

*Events.* Each flow f has a SEND event and, while it has packets outstanding, a NOTIFY event
for its oldest outstanding packet. Events run in order of time, then id: NOTIFY of flow f has
id f, SEND of flow f has id N + f (so at equal times notifications come first, lower flows first).
A monitor interval [start, end) runs every event with time < end; then the clock is ``end``.

*SEND of flow f at time t.* If f has ``max_inflight`` packets outstanding the opportunity is
skipped (counted in ``window_limited``). Otherwise the packet draws L coins ``c_k = U`` (k = 0..L-1)
and travels the links in order, arriving at link 0 at a = t. At link k, if it is still alive: it
is lost if ``c_k < p_k``; else the link forgets departures <= a and the packet is dropped if the
link still holds ``Q_k`` packets; else it starts transmission at ``s = max(a, busy_k)``, departs at
``dep = s + 1 / bw_k`` (or the trace service time), ``busy_k = dep``, and arrives at the next link
at ``dep + d_k``. A lost packet continues as a placeholder that takes no transmission time:
it leaves link k at ``max(a, busy_k)`` and arrives at ``max(a, busy_k) + d_k``. After the last
link the packet's notification time is ``arrival + D``: an acknowledgement carrying
``RTT = notification time - t``, or for a lost packet a loss report (the sender learns of a loss
when the packet would have been acknowledged, as with duplicate ACKs). The next SEND of the flow
is at ``t + 1 / rate_f`` with the rate in force now. (Because every flow crosses the same FIFO
links with constant delays, packets reach every link in send order; the simulation may therefore
resolve the whole path at send time, and the reference resolves it link by link in time order.)

*NOTIFY.* The flow's oldest outstanding packet is resolved: a loss report counts one lost packet;
an acknowledgement counts one acked packet with its RTT, adds to the regression sums with
x = send time - start of the current MI, updates ``min_rtt`` and the smoothed RTT
(``srtt = rtt`` at the first sample, then ``srtt = srtt + 0.125 x (rtt - srtt)``).

*Step(actions).* Each flow's rate changes first: continuous a is clipped to [-1, 1] and
``delta = a x delta_scale``; ``rate x (1 + delta)`` if delta >= 0 else ``rate / (1 - delta)``;
discrete i gives ``rate x (1 + rate_changes[i])``; the result is clipped to [min_rate, max_rate].
Then an MI of length ``clip(mi_rtts x (sum_f srtt_f) / N, mi_limits)`` runs. With
``dur = end - start`` and the flow's counts in the MI: throughput = acked / dur; latency =
mean RTT of the MI's acknowledgements, or srtt if there were none; loss = lost / (acked + lost)
(0 if none). Reward components per flow: [throughput (packets/s), latency (s), loss (fraction)],
weights [10, -1000, -2000] x reward_scale (Aurora). ``throughput="normalised"`` uses
acked / C instead, C the bottleneck capacity of the MI (the smallest integral of a link's
bandwidth over the MI; 0 if C = 0), weighted 500 (Genet's 10 x 50). ``reward ==
info["reward_components"] @ reward_weights`` exactly.

*Observation* (float32, ``history x len(features)``, oldest MI first): per MI, clipped to the
bounds in brackets: latency_gradient [-1, 10] = least-squares slope of RTT against send time over
the MI's acknowledgements (0 with fewer than 2 or a non-positive denominator ``n Sxx - Sx^2``;
slope = (n Sxy - Sx Sy) / (n Sxx - Sx^2)); latency_ratio [1, 10] = latency / min_rtt (1 before any
sample); send_ratio [0, 10] = sent / acked (1 if nothing was sent or acked, 10 if packets were
sent but none acked); send_rate [0, 2] = sent / dur / max_rate; recv_rate [0, 2] = throughput /
max_rate; loss_rate [0, 1].

*End.* Truncated after ``max_steps`` steps (never terminated). ``info["episode_metrics"]``:
throughput (acked packets of all flows / episode duration), latency (mean RTT of all
acknowledgements), loss_rate, utilisation (acknowledged packets over the capacity of the
bottleneck: the smallest integral of a link's bandwidth over the episode), queueing_delay (mean over acknowledgements of RTT minus the flow's minimum RTT),
jain_index ((sum x)^2 / (N sum x^2) over per-flow throughputs, 1 if all are 0), duration (s),
window_limited (skipped sends). ``info`` at every step: sending_rate, throughput, latency,
loss_rate, min_rtt, send_rate (the flow's MI statistics), mi_duration and time.
"""

from .config import (
    AURORA_FEATURES,
    DISCRETE_RATE_CHANGES,
    FEATURES,
    MBPS_TO_PKTS,
    CCConfig,
    LinkTable,
    build_config,
)
from .env import (
    FLOW_METRIC_NAMES,
    FLOW_STAT_NAMES,
    METRIC_NAMES,
    REWARD_COMPONENTS,
    CCEnv,
    CCVectorEnv,
    spaces_for,
)
from .multiflow import CCParallelEnv, aec_env, parallel_env

__all__ = [
    "AURORA_FEATURES", "DISCRETE_RATE_CHANGES", "FEATURES", "MBPS_TO_PKTS", "CCConfig", "LinkTable",
    "build_config", "FLOW_METRIC_NAMES", "FLOW_STAT_NAMES", "METRIC_NAMES", "REWARD_COMPONENTS", "CCEnv",
    "CCVectorEnv", "spaces_for", "CCParallelEnv", "aec_env", "parallel_env",
]
