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

Kwargs (all envs) and their valid ranges
----------------------------------------
Every value is checked in Python when the env is built; anything outside its range, NaN or
infinite raises a ``ValueError`` naming the kwarg (or the trace file and sample).

=====================  ==========================================  ===========================================
kwarg                  default                                     valid range
=====================  ==========================================  ===========================================
bandwidth              (100, 500) packets/s                        [1, 1e7] (12 kbps .. 120 Gbps)
delay                  (0.05, 0.5) s one-way, per link              (0, 100]
queue                  (2, 3000) packets (drawn log-uniformly)      whole numbers in [1, 2^20]
loss                   (0, 0.05) random loss per link               [0, 1)
n_links                1 link on the path (each drawn alone)        1..8
n_flows                1 (``parallel_env``: 2)                       1..64 (the Gymnasium envs: 1)
start_rate             (0.3, 1.5) x bottleneck bandwidth            (0, 1000]
min_rate, max_rate     40, 1000 packets/s                          [1e-3, 1e7], min_rate <= max_rate
action                 "continuous" | "discrete"
delta_scale            0.05 (continuous rate change per unit)       (0, 10]
rate_changes           (-0.25, -0.05, 0, 0.05, 0.25) (discrete)     1..16 values, each in (-1, 10]
history                10 monitor intervals in the observation     1..1000
features               ("latency_gradient", "latency_ratio",      distinct names; also "send_rate",
                       "send_ratio")                               "recv_rate", "loss_rate"
first_mi               3.0 x base RTT (first monitor interval)      (0, 1000]
mi_rtts                0.5 x smoothed RTT (later intervals)         (0, 1000]
mi_limits              (0.01, 10.0) s, bounds on any interval       [1e-6, 60], low <= high
max_steps              400 monitor intervals, then truncated        1..10^6
max_inflight           8192 packets outstanding per flow            1..2^20 (a receive window: a ring of
                                                                   16 bytes per packet per flow)
throughput             "absolute" | "normalised"
reward_scale           1.0 (Aurora's code uses 0.001)               (0, 1e6]
aurora_compatible      False                                       see "Aurora compatibility" below
traces                 None: constant links; a cooked ``time_s      see "Trace values" below
                       Mbps`` or Mahimahi file, a directory, a
                       list, or "synthetic" (16 seeded traces);
                       replayed on link 0
trace_format           "auto" | "cooked" | "mahimahi"
trace_bin_ms           500 (Mahimahi bins)                         [1, 3.6e6]
link_set               None: fresh links every episode; "train" /
                       "test": a fixed set drawn with
                       ``split_seed`` from disjoint seed streams
                       (with traces, also a trace split)
link_set_size          1000 / 100                                  1..100000
split_seed             0                                           0..2^63-1
test_fraction          0.2 (traces in the test split)               (0, 1)
=====================  ==========================================  ===========================================

Two limits on a sub-env's cost, checked together: ``n_flows x mi_limits[1] x max_rate <= 10^7``
sends per monitor interval (about half a second of CPU at the limit), and at most 64 MiB of state
per sub-env (``16 n_flows max_inflight + 8 n_links queue[1]`` bytes for the packet rings and link
queues, plus the observation history and the plot).

*Trace values.* Traces load through :mod:`sysgym.envs.bandwidth` (file, line and field in its
errors); CC then requires of each trace: a duration in (0, 1e6] s, bandwidths of at most 1e5 Mbps,
and at least one 1500-byte packet per loop of the trace (``P >= 1`` below: a trace that cannot
deliver one packet in its whole duration is refused rather than replayed for ever); at most 2^22
samples over all traces (the table holds 3 float64 arrays of that length: 96 MiB). Zero bandwidth
(outages) is allowed anywhere.

*Aurora compatibility.* ``aurora_compatible=True`` takes what PCC-RL's simulator
(``src/gym/network_sim.py``) does differently from the defaults here: the action is scaled by
0.025 (its ``DELTA_SCALE``) and not bounded (the action space is [-1e12, 1e12], as Aurora
declares it; the rate is still clipped to [min_rate, max_rate]), and the first monitor interval
lasts 3 x the one-way delay (``first_mi = 1.5`` x base RTT). It fixes ``delta_scale`` and
``first_mi`` and needs ``action="continuous"``. Not reproduced: Aurora runs two unobserved
intervals at reset and its first step's interval also lasts 3 x the one-way delay; its later
intervals last 0.5 x the last interval's mean latency (here the smoothed RTT); its queue sizes are
1 + floor(e^U(0, 8)); its reward is scaled by 0.001 (``reward_scale=0.001``).

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

*Trace links.* A trace with samples (T_j, r_j), j = 0..n-1, rel_j = T_j - T_0, has the loop period
T = rel_{n-1} and rate r_j on [rel_j, rel_{j+1}) of each loop (j < n-1). Its cumulative capacity is
``cum_0 = 0, cum_{j+1} = cum_j + r_j x (rel_{j+1} - rel_j)`` (added in order) and a loop delivers
P = cum_{n-1} packets. The packets delivered from trace time 0 to tau are
``A(tau) = k x P + cum_j + r_j x (u - rel_j)`` with k = 0 and u = tau if 0 <= tau < T, otherwise
``k = floor(tau / T)`` and ``u = tau - k x T`` clipped to [0, T]; j is the largest index <= n-2
with rel_j <= u; the link's rate at tau is r_j.
The env keeps the *trace position* p, the trace time at the clock's ``now``: reset sets p to the
episode's offset; an instant t of the monitor interval starting at ``now`` is at trace time
``p + (t - now)``; when the interval [start, end) closes, ``p = fmod(p + (end - start), T)``.
A packet whose transmission starts at s, at trace time tau = p + (s - now) (loop k, offset u,
segment j as for A), leaves at ``s + 1 / r_j`` if ``r_j x (rel_{j+1} - u) >= 1`` (it is done within
its segment); otherwise when the trace has delivered one packet more: with
``a = k x P + cum_j + r_j x (u - rel_j) + 1`` (that is A(tau) + 1), ``k' = floor(a / P)``,
``v = a - k' x P`` (if v <= 0: k' = k' - 1, v = v + P; then v = min(v, P)) and j' the smallest
index with cum_{j'+1} >= v, at ``max(s, now + ((k' x T + rel_j' + (v - cum_j') / r_j') - p))``.
The capacity of the interval [start, end) is ``max(0, A(p + (end - start)) - A(p))`` (A's rounding
across a loop's end could make a zero capacity slightly negative). The kernel finds j and j' by
binary search, so a packet costs at most 2 x 22 halvings whatever the trace.

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

*Step(actions).* Each flow's rate changes first: continuous a is clipped to the action space's
bounds ([-1, 1], or [-1e12, 1e12] with ``aurora_compatible``) and
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

Bounds on every kernel loop (independent of the data)
-----------------------------------------------------
A monitor interval runs at most ``n_flows x (mi_limits[1] x max_rate + 1)`` SEND events, hence at
most 10^7 + 64 by the limit above: each advances its flow's next send by 1 / rate >= 1 / max_rate,
and the clock never exceeds ``(max_steps + 1) x mi_limits[1]``, so with ``max_steps <= 10^6`` and
``mi_limits[1] x max_rate <= 10^7`` that step is more than 400 ulps of any clock value (rounding
cannot stall it). Each SEND visits at most 8 links. Forgetting departed packets and resolving
notifications walk the link queues (<= 2^20 entries) and the flows' rings (<= max_inflight), and
each entry is removed once, so an interval does at most (entries held + SENDs) of them. A trace
lookup tries the last segment found and the next one, then binary-searches (<= 23 halvings).
Reset and the end of an interval loop over flows, links and history rows. Nothing loops over
trace segments or over time, so no trace can make a step slow; a snapshot is checked against the
invariants these bounds rest on (below). Since ``mi_limits[0] >= 1e-6`` s is more than 100 ulps
of the clock, every interval has a positive duration and nothing divides by zero; with the
ranges above every time stays below 1e15 s and every sum below 1e50, so rewards, statistics and
observations are finite, and observations are clipped into the space.

Future input (CrystalBox's "what if the network behaved like that trace from now on")
------------------------------------------------------------------------------------
``set_future_input(trace, offset_s, index=None)`` (vector env: ``index`` a sub-env or None for all;
single and PettingZoo env: the one episode) sets link 0 to trace ``trace`` of the env's trace
table (``config.traces``, any of them, not only the split's) at trace position ``offset_s`` in
[0, its duration) seconds, in a running episode. Everything the senders have seen and done is
kept: rates, observation history, RTT estimates, packets in flight and queued (with their
scheduled departures), statistics and RNG; only what link 0 delivers from now on changes.
``future_input()`` gives the current (trace, position); setting it back changes nothing.

Feature names
-------------
``env.unwrapped.feature_names`` (and ``parallel_env(...).feature_names``) name the flattened
observation: ``f"{feature}[t-{k}]"`` for each history row, oldest first (k = history .. 1, the
interval k steps back), features in the order of the ``features`` kwarg; e.g.
``latency_gradient[t-10], latency_ratio[t-10], send_ratio[t-10], ..., send_ratio[t-1]``.

Snapshots
---------
``get_state()`` / ``set_state()`` (both envs; the PettingZoo env adds its live agents) use the
envelope of :mod:`sysgym.envs.snapshot`: the configuration's fingerprint (kwargs, traces and link
set included) must match, then every array is checked against what the kernel relies on: clock
``0 <= mi_start <= now <= (steps + 1) x mi_limits[1]``, ``steps <= max_steps``; link parameters in
their ranges and the path delays summed as at reset; trace index in the table and position in
[0, duration]; queue and packet ring heads inside their rings and counts <= the link's queue / the
window; every time finite and in [0, 1e15] s; each flow's next send in [now, now + 1 / min_rate]
and the event heap a permutation of the flows in (time, flow) order; rates in [min_rate, max_rate];
send times <= notification times (or -1 for a lost packet); statistics finite and non-negative;
observations inside the space. A failing check raises ``ValueError`` naming the array, index and
bound, and leaves the env unchanged.
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
from .env import FLOW_STAT_NAMES, METRIC_NAMES, REWARD_COMPONENTS, CCEnv, CCVectorEnv, spaces_for
from .multiflow import CCAECEnv, CCParallelEnv, aec_env, env, parallel_env, raw_env  # noqa: F811

# PettingZoo's module convention (as its own environment modules): ``env()`` (AEC), ``raw_env()``
# and ``parallel_env()``, so ``pettingzoo.test.max_cycles_test(sysgym.envs.cc)`` and friends take this
# package. ``env`` here is that factory; the single-flow Gymnasium module stays importable as
# ``sysgym.envs.cc.env`` through ``from sysgym.envs.cc.env import ...``.
from .state import FLOW_METRIC_NAMES

__all__ = [
    "AURORA_FEATURES", "DISCRETE_RATE_CHANGES", "FEATURES", "MBPS_TO_PKTS", "CCConfig", "LinkTable",
    "build_config", "FLOW_METRIC_NAMES", "FLOW_STAT_NAMES", "METRIC_NAMES", "REWARD_COMPONENTS", "CCEnv",
    "CCVectorEnv", "spaces_for", "CCAECEnv", "CCParallelEnv", "aec_env", "env", "parallel_env", "raw_env",
]
