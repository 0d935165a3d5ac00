# Congestion-control kernel: packet-level simulation of N rate-based senders sharing a path of
# FIFO links, stepped one monitor interval (MI) at a time, B sub-environments per nogil loop.
#
# The dynamics are specified in sysgym/envs/cc/__init__.py (module docstring); the pure-Python
# event simulation tests/reference/cc.py implements them independently. All state lives in numpy
# arrays owned by the Python env (get_state is an array copy); this class holds typed views.
#
# Why a packet can cross its whole path when it is sent: every flow uses the same FIFO links with
# constant propagation delays, so packets reach each link in the order they were sent. Handling a
# packet's links at send time therefore visits every link's arrivals in time order, exactly as a
# time-ordered event loop would. The event heap orders the flows' SEND events; each packet's
# notification (ACK or loss report) time is known when it is sent and is non-decreasing in send
# order, so notifications wait in a per-flow ring and are resolved in ring order: all those before
# the end of the monitor interval when it closes, and those due by a send that finds the flow's
# window full before that send (notifications come first at equal times). Sends depend on
# notifications only through the window, and a flow's statistics only on its own notifications,
# so this gives exactly the statistics of one time-ordered event loop.

cimport cython
import numpy as np
from libc.stdint cimport uint64_t, int64_t, int32_t, uint8_t
from libc.math cimport exp, floor, fmod

from rng cimport rng_between, rng_uniform, rng_integers
from kernel cimport (check_batch, check_index, check_state, clip, episode_outputs, ratio,
                     ring_next, ring_wrap, shift_left, zero_doubles)

cdef enum:
    MAX_LINKS = 8
    MAX_FLOWS = 64
    MAX_FEATURES = 8
    MAX_CHANGES = 16


cdef struct Sim:
    # one sub-env's arrays, bound for the duration of a monitor interval
    int b
    uint64_t* rng
    double* rate
    double* srtt
    double* min_rtt
    double* ring_t
    double* ring_s
    int64_t* ring_head
    int64_t* ring_n
    double* mi_acc
    double* flow_tot
    double* lq
    int64_t* lq_head
    int64_t* lq_n
    double* busy
    double* bw
    double* delay
    double* loss
    int64_t* queue
    double* link_acc
    double service[MAX_LINKS]   # 1 / bandwidth of the constant links
    double mi_start
    double ret_delay

# Per-flow monitor-interval accumulators (mi_acc columns).
cdef enum:
    M_SENT = 0
    M_ACKED = 1
    M_LOST = 2
    M_RTT = 3     # sum of RTT samples
    M_X = 4       # regression sums over samples: x = send time - MI start, y = RTT
    M_XX = 5
    M_XY = 6
    M_COLS = 7

# Per-flow episode totals (flow_tot columns).
cdef enum:
    T_SENT = 0
    T_ACKED = 1
    T_LOST = 2
    T_RTT = 3
    T_SKIPPED = 4
    T_COLS = 5

# Per-link episode totals (link_acc columns).
cdef enum:
    K_ACCEPTED = 0
    K_RANDOM_LOSS = 1
    K_QUEUE_DROP = 2
    K_CAPACITY = 3   # integral of bandwidth over the episode (packets)
    K_COLS = 4

# Per-flow statistics of the last MI (flow_stats columns, shown in info).
cdef enum:
    S_RATE = 0
    S_THROUGHPUT = 1
    S_LATENCY = 2
    S_LOSS = 3
    S_MIN_RTT = 4
    S_SEND_RATE = 5
    S_COLS = 6

# Observation features, in the order of sysgym.envs.cc.config.FEATURES.
cdef enum:
    F_GRADIENT = 0
    F_LATENCY_RATIO = 1
    F_SEND_RATIO = 2
    F_SEND_RATE = 3
    F_RECV_RATE = 4
    F_LOSS = 5

# Episode metrics (metrics columns) and per-flow metrics (flow_metrics columns).
cdef enum:
    X_THROUGHPUT = 0
    X_LATENCY = 1
    X_LOSS = 2
    X_UTILISATION = 3
    X_QUEUEING = 4
    X_JAIN = 5
    X_DURATION = 6
    X_SKIPPED = 7
    X_COLS = 8

# Event log kinds (tests only).
cdef enum:
    LOG_SEND = 0
    LOG_ACK = 1
    LOG_LOSS = 2
    LOG_SKIP = 3

N_MI_ACC = M_COLS
N_FLOW_TOT = T_COLS
N_LINK_ACC = K_COLS
N_FLOW_STATS = S_COLS
N_METRICS = X_COLS


cdef inline bint _before(const double* key, int a, int c) noexcept nogil:
    """SEND event order: earlier time first; at equal times the lower flow."""
    return key[a] < key[c] or (key[a] == key[c] and a < c)


cdef inline void _sift_down(int32_t* heap, int64_t n, const double* key, int64_t i) noexcept nogil:
    cdef int32_t e = heap[i]
    cdef int64_t c
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _before(key, heap[c + 1], heap[c]):
            c += 1
        if _before(key, heap[c], e):
            heap[i] = heap[c]
            i = c
        else:
            break
    heap[i] = e


cdef inline void _sift_up(int32_t* heap, const double* key, int64_t i) noexcept nogil:
    cdef int32_t e = heap[i]
    cdef int64_t p
    while i > 0:
        p = (i - 1) // 2
        if _before(key, e, heap[p]):
            heap[i] = heap[p]
            i = p
        else:
            break
    heap[i] = e


cdef struct Trace:
    # one looping trace (see "Trace links" in the spec): rate[j] holds on [rel[j], rel[j + 1]) of
    # each loop, cum[j] packets are deliverable from the loop's start to rel[j]
    const double* rel
    const double* rate
    const double* cum
    int64_t last        # index of the last segment (samples - 2)
    double period       # T = rel[last + 1]
    double packets      # P = cum[last + 1], packets per loop (>= 1, checked at load time)


cdef inline int64_t _segment_at(const Trace* tr, double u, int64_t hint) noexcept nogil:
    """The largest j <= last with rel[j] <= u (rel[0] = 0 <= u): the hint or the segment after
    it when it is that j, else a binary search (log2(samples) <= 22 halvings)."""
    cdef int64_t lo, hi, mid, h
    for h in range(hint, hint + 2):
        if 0 <= h <= tr.last and tr.rel[h] <= u and (h == tr.last or tr.rel[h + 1] > u):
            return h
    lo = 0
    hi = tr.last
    while lo < hi:
        mid = lo + (hi - lo + 1) // 2
        if tr.rel[mid] <= u:
            lo = mid
        else:
            hi = mid - 1
    return lo


cdef inline int64_t _segment_reaching(const Trace* tr, double v, int64_t hint) noexcept nogil:
    """The smallest j <= last with cum[j + 1] >= v, for 0 < v <= P (then rate[j] > 0)."""
    cdef int64_t lo, hi, mid, h
    for h in range(hint, hint + 2):
        if 0 <= h <= tr.last and tr.cum[h + 1] >= v and (h == 0 or tr.cum[h] < v):
            return h
    lo = 0
    hi = tr.last
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if tr.cum[mid + 1] >= v:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline int64_t _locate(const Trace* tr, double tau, int64_t* hint, double* k, double* u) noexcept nogil:
    """Trace time tau as loop k, offset u in [0, T] into it, and the segment j holding u."""
    cdef int64_t j
    if 0.0 <= tau < tr.period:  # the common case, without a division
        k[0] = 0.0
        u[0] = tau
    else:
        k[0] = floor(tau / tr.period)
        u[0] = tau - k[0] * tr.period
        if u[0] < 0.0:
            u[0] = 0.0
        elif u[0] > tr.period:
            u[0] = tr.period
    j = _segment_at(tr, u[0], hint[0])
    hint[0] = j
    return j


cdef inline double _delivered(const Trace* tr, double tau, int64_t* hint) noexcept nogil:
    """A(tau): packets the trace delivers from trace time 0 to tau."""
    cdef double k, u
    cdef int64_t j = _locate(tr, tau, hint, &k, &u)
    return k * tr.packets + tr.cum[j] + tr.rate[j] * (u - tr.rel[j])


cdef inline double _neutral(int feature) noexcept nogil:
    """A feature's value before any monitor interval (see FEATURES in envs/cc/config.py)."""
    if feature == F_LATENCY_RATIO or feature == F_SEND_RATIO:
        return 1.0
    return 0.0


@cython.final
cdef class CCKernel:
    # --- configuration
    cdef int B, N, L, C, QC, P, H, F
    cdef int discrete, normalised, use_trace, use_set, n_changes
    cdef int feat[MAX_FEATURES]
    cdef double feat_lo[MAX_FEATURES]
    cdef double feat_hi[MAX_FEATURES]
    cdef double changes[MAX_CHANGES]
    cdef double delta_scale, action_bound, min_rate, max_rate, start_lo, start_hi
    cdef double first_mi, mi_rtts, mi_lo, mi_hi
    cdef double bw_lo, bw_hi, d_lo, d_hi, ql_lo, ql_hi, loss_lo, loss_hi
    cdef int64_t q_hi, max_steps, n_choices, n_set
    # --- per-env state
    cdef double[::1] now, mi_start, ret_delay, base_rtt, mi_duration, mi_bandwidth, trace_pos
    cdef int64_t[::1] steps, trace_id, plot_n
    cdef int32_t[:, ::1] heap
    cdef double[:, ::1] ev_time
    cdef double[:, ::1] bw, delay, loss, busy, plot_bw
    cdef int64_t[:, ::1] queue, lq_head, lq_n
    cdef double[:, :, ::1] lq, link_acc
    cdef double[:, ::1] rate, srtt, min_rtt
    cdef double[:, :, ::1] ring_t, ring_s
    cdef int64_t[:, ::1] ring_head, ring_n
    cdef double[:, :, ::1] mi_acc, flow_tot, flow_stats, flow_metrics
    cdef double[:, :, :, ::1] plot
    cdef uint64_t[:, ::1] rng
    # --- outputs / inputs
    cdef float[:, :, ::1] obs
    cdef double[:, :, ::1] comps
    cdef double[:, ::1] metrics
    cdef uint8_t[::1] terminated, truncated
    cdef double[:, ::1] act_f
    cdef int64_t[:, ::1] act_i
    # --- read-only tables
    cdef double[::1] tr_rel, tr_rate, tr_cum, tr_duration, tr_packets, set_offset
    # last segments found per sub-env (service start, departure, capacity): a cache, not state
    cdef int64_t[:, ::1] hint
    cdef int64_t[::1] tr_start, tr_length, tr_choices, set_trace
    cdef double[:, ::1] set_bw, set_delay, set_loss
    cdef int64_t[:, ::1] set_queue
    # --- optional event log (tests): rows (time, kind, flow, value)
    cdef double[:, ::1] log
    cdef int64_t log_n, log_cap

    def __init__(self, dict cfg, dict state, dict tables):
        cdef int i
        self.B = cfg["num_envs"]
        self.N = cfg["n_flows"]
        self.L = cfg["n_links"]
        self.C = cfg["ring"]
        self.QC = cfg["queue_capacity"]
        self.P = cfg["plot"]
        self.H = cfg["history"]
        self.F = len(cfg["features"])
        if (self.L > MAX_LINKS or self.N > MAX_FLOWS or self.F > MAX_FEATURES
                or len(cfg["rate_changes"]) > MAX_CHANGES):
            raise ValueError("too many links, features or rate changes for the kernel")
        for i in range(self.F):
            self.feat[i] = cfg["features"][i]
            self.feat_lo[i] = cfg["feature_low"][i]
            self.feat_hi[i] = cfg["feature_high"][i]
        self.discrete = cfg["discrete"]
        self.n_changes = len(cfg["rate_changes"])
        for i in range(self.n_changes):
            self.changes[i] = cfg["rate_changes"][i]
        self.normalised = cfg["normalised"]
        self.delta_scale = cfg["delta_scale"]
        self.action_bound = cfg["action_bound"]
        self.min_rate = cfg["min_rate"]
        self.max_rate = cfg["max_rate"]
        self.start_lo, self.start_hi = cfg["start_rate"]
        self.first_mi = cfg["first_mi"]
        self.mi_rtts = cfg["mi_rtts"]
        self.mi_lo, self.mi_hi = cfg["mi_limits"]
        self.max_steps = cfg["max_steps"]
        self.bw_lo, self.bw_hi = cfg["bandwidth"]
        self.d_lo, self.d_hi = cfg["delay"]
        self.ql_lo, self.ql_hi = cfg["queue_log"]
        self.q_hi = cfg["queue"][1]
        self.loss_lo, self.loss_hi = cfg["loss"]

        check_state(state, self.B)
        self.now = state["now"]
        self.mi_start = state["mi_start"]
        self.ret_delay = state["ret_delay"]
        self.base_rtt = state["base_rtt"]
        self.mi_duration = state["mi_duration"]
        self.mi_bandwidth = state["mi_bandwidth"]
        self.steps = state["steps"]
        self.trace_id = state["trace_id"]
        self.plot_n = state["plot_n"]
        self.trace_pos = state["trace_pos"]
        self.heap = state["heap"]
        self.ev_time = state["ev_time"]
        self.bw = state["bw"]
        self.delay = state["delay"]
        self.loss = state["loss"]
        self.busy = state["busy"]
        self.plot_bw = state["plot_bw"]
        self.queue = state["queue"]
        self.lq_head = state["lq_head"]
        self.lq_n = state["lq_n"]
        self.lq = state["lq"]
        self.link_acc = state["link_acc"]
        self.rate = state["rate"]
        self.srtt = state["srtt"]
        self.min_rtt = state["min_rtt"]
        self.ring_t = state["ring_t"]
        self.ring_s = state["ring_s"]
        self.ring_head = state["ring_head"]
        self.ring_n = state["ring_n"]
        self.mi_acc = state["mi_acc"]
        self.flow_tot = state["flow_tot"]
        self.flow_stats = state["flow_stats"]
        self.flow_metrics = state["flow_metrics"]
        self.plot = state["plot"]
        self.rng = state["rng"]
        self.obs = state["obs"]
        self.comps, self.metrics, self.terminated, self.truncated = episode_outputs(state)
        if self.discrete:
            self.act_i = state["actions"]
        else:
            self.act_f = state["actions"]

        self.use_trace = tables["use_trace"]
        self.use_set = tables["use_set"]
        self.tr_rel = tables["tr_rel"]
        self.tr_rate = tables["tr_rate"]
        self.tr_cum = tables["tr_cum"]
        self.tr_packets = tables["tr_packets"]
        self.hint = np.zeros((self.B, 3), dtype=np.int64)
        self.tr_start = tables["tr_start"]
        self.tr_length = tables["tr_length"]
        self.tr_duration = tables["tr_duration"]
        self.tr_choices = tables["tr_choices"]
        self.n_choices = len(tables["tr_choices"])
        self.set_bw = tables["set_bandwidth"]
        self.set_delay = tables["set_delay"]
        self.set_loss = tables["set_loss"]
        self.set_queue = tables["set_queue"]
        self.set_trace = tables["set_trace"]
        self.set_offset = tables["set_offset"]
        self.n_set = tables["set_delay"].shape[0]
        self.log_n = 0
        self.log_cap = 0

    # ------------------------------------------------------------------ entry points
    def reset(self, const uint8_t[::1] which, const int64_t[::1] link_index=None):
        """Start new episodes in the flagged sub-envs; ``link_index[b] >= 0`` picks that entry of
        the link set instead of drawing one."""
        cdef int b
        cdef int64_t entry
        check_batch(which.shape[0], self.B, "which")
        if link_index is not None:
            if not self.use_set:
                raise ValueError("link_index needs a link set (link_set='train' or 'test')")
            check_batch(link_index.shape[0], self.B, "link_index")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    entry = -1 if link_index is None else link_index[b]
                    self._reset_one(b, entry)

    def step(self, const uint8_t[::1] active):
        cdef int b
        check_batch(active.shape[0], self.B, "active")
        with nogil:
            for b in range(self.B):
                if active[b]:
                    self._step_one(b)

    def record_events(self, double[:, ::1] log):
        """Append every sender-visible event (time, kind, flow, value) to ``log`` (tests only)."""
        self.log = log
        self.log_cap = log.shape[0]
        self.log_n = 0

    def logged(self):
        """Number of rows written to the event log (may exceed its capacity: then it overflowed)."""
        return self.log_n

    def bottleneck_bandwidth(self, int b):
        """The smallest link bandwidth (packets/s) of sub-env ``b`` at its current time."""
        check_index(b, self.B, "sub-env")
        return self._bottleneck_at(b, self.now[b])

    def link_bandwidth(self, int b, int k):
        """Bandwidth (packets/s) of link ``k`` of sub-env ``b`` at its current time."""
        check_index(b, self.B, "sub-env")
        check_index(k, self.L, "link")
        return self._bw_at(b, k, self.now[b])

    def bottleneck_queue(self, int b):
        """Packets held now by the link with the smallest bandwidth of sub-env ``b``."""
        cdef int k, best = 0
        check_index(b, self.B, "sub-env")
        for k in range(1, self.L):
            if self._bw_at(b, k, self.now[b]) < self._bw_at(b, best, self.now[b]):
                best = k
        return self.queue_length(b, best)

    def queue_length(self, int b, int k):
        """Packets held by link ``k`` of sub-env ``b`` (waiting or in transmission) right now.

        Counted from departure times: for links after the first this includes packets already
        on their way to the link, whose place in its queue is settled (see the note at the top).
        """
        cdef int64_t i, n = 0, h
        check_index(b, self.B, "sub-env")
        check_index(k, self.L, "link")
        h = self.lq_head[b, k]
        for i in range(self.lq_n[b, k]):
            if self.lq[b, k, (h + i) % self.QC] > self.now[b]:
                n += 1
        return n

    # ------------------------------------------------------------------ episode
    cdef void _reset_one(self, int b, int64_t entry) noexcept nogil:
        cdef uint64_t* s = &self.rng[b, 0]
        cdef int k, f, i
        cdef double offset = 0.0, total_delay = 0.0, bottleneck, end
        cdef float* o
        self.now[b] = 0.0
        self.steps[b] = 0
        self.terminated[b] = 0
        self.truncated[b] = 0
        self.plot_n[b] = 0
        # 1. the path
        if self.use_set:
            if entry < 0:
                entry = rng_integers(s, 0, self.n_set - 1)
            for k in range(self.L):
                self.bw[b, k] = self.set_bw[entry, k]
                self.delay[b, k] = self.set_delay[entry, k]
                self.queue[b, k] = self.set_queue[entry, k]
                self.loss[b, k] = self.set_loss[entry, k]
            if self.use_trace:
                self.trace_id[b] = self.set_trace[entry]
                offset = self.set_offset[entry]
        else:
            for k in range(self.L):
                if k == 0 and self.use_trace:
                    self.bw[b, k] = 0.0
                else:
                    self.bw[b, k] = rng_between(s, self.bw_lo, self.bw_hi)
                self.delay[b, k] = rng_between(s, self.d_lo, self.d_hi)
                self.queue[b, k] = <int64_t>floor(exp(rng_between(s, self.ql_lo, self.ql_hi)))
                if self.queue[b, k] > self.q_hi:
                    self.queue[b, k] = self.q_hi
                self.loss[b, k] = rng_between(s, self.loss_lo, self.loss_hi)
            if self.use_trace:
                self.trace_id[b] = self.tr_choices[rng_integers(s, 0, self.n_choices - 1)]
                offset = rng_uniform(s) * self.tr_duration[self.trace_id[b]]
        for k in range(self.L):
            total_delay += self.delay[b, k]
            self.busy[b, k] = 0.0
            self.lq_head[b, k] = 0
            self.lq_n[b, k] = 0
            zero_doubles(&self.link_acc[b, k, 0], K_COLS)
        self.ret_delay[b] = total_delay
        self.base_rtt[b] = 2.0 * total_delay
        self.trace_pos[b] = offset
        # 2. the senders
        bottleneck = self._bottleneck_at(b, 0.0)
        for f in range(self.N):
            self.rate[b, f] = clip(rng_between(s, self.start_lo, self.start_hi) * bottleneck,
                                   self.min_rate, self.max_rate)
            self.ev_time[b, f] = rng_uniform(s) / self.rate[b, f]
            self.heap[b, f] = f
            _sift_up(&self.heap[b, 0], &self.ev_time[b, 0], f)
            self.srtt[b, f] = self.base_rtt[b]
            self.min_rtt[b, f] = 0.0
            self.ring_head[b, f] = 0
            self.ring_n[b, f] = 0
            zero_doubles(&self.flow_tot[b, f, 0], T_COLS)
            o = &self.obs[b, f, 0]
            for i in range(self.H * self.F):
                o[i] = <float>_neutral(self.feat[i % self.F])
        # 3. the first monitor interval, at the starting rates
        end = clip(self.first_mi * self.base_rtt[b], self.mi_lo, self.mi_hi)
        self._run_mi(b, end)
        for f in range(self.N):
            zero_doubles(&self.comps[b, f, 0], 3)

    cdef void _step_one(self, int b) noexcept nogil:
        cdef int f
        cdef double total = 0.0, factor, d
        for f in range(self.N):
            if self.discrete:
                factor = 1.0 + self.changes[self.act_i[b, f]]
                self.rate[b, f] = clip(self.rate[b, f] * factor, self.min_rate, self.max_rate)
            else:
                d = clip(self.act_f[b, f], -self.action_bound, self.action_bound) * self.delta_scale
                if d >= 0.0:
                    self.rate[b, f] = clip(self.rate[b, f] * (1.0 + d), self.min_rate, self.max_rate)
                else:
                    self.rate[b, f] = clip(self.rate[b, f] / (1.0 - d), self.min_rate, self.max_rate)
            total += self.srtt[b, f]
        self._run_mi(b, clip(self.mi_rtts * (total / self.N), self.mi_lo, self.mi_hi))
        self.steps[b] += 1
        if self.steps[b] >= self.max_steps:
            self.truncated[b] = 1
            self._write_metrics(b)

    # ------------------------------------------------------------------ one monitor interval
    cdef void _run_mi(self, int b, double length) noexcept nogil:
        cdef int f
        cdef double start = self.now[b]
        cdef double end = start + length
        for f in range(self.N):
            zero_doubles(&self.mi_acc[b, f, 0], M_COLS)
        self.mi_start[b] = start
        self._simulate(b, end)
        self.now[b] = end
        self._finish_mi(b, start, end)

    cdef void _simulate(self, int b, double end) noexcept nogil:
        """Run the monitor interval up to `end`: sends in (time, flow) order from the heap, each
        flow's notifications drained in ring order (before a send that finds the window full,
        and at the end for those with time < end)."""
        cdef Sim sim
        cdef int32_t* heap = &self.heap[b, 0]
        cdef double* key = &self.ev_time[b, 0]
        cdef double gap[MAX_FLOWS]
        cdef int32_t f
        cdef int k
        cdef double t
        self._bind(b, &sim)
        for f in range(self.N):
            gap[f] = 1.0 / sim.rate[f]
        for k in range(self.L):
            sim.service[k] = 1.0 / sim.bw[k] if sim.bw[k] > 0.0 else 0.0
        while True:
            f = heap[0]
            t = key[f]
            if not t < end:     # (not t >= end: a NaN time, from rates the env never lets in, must end the loop too)
                break
            key[f] = t + gap[f]
            _sift_down(heap, self.N, key, 0)
            self._send(&sim, f, t)
        for f in range(self.N):
            self._drain(&sim, f, end, False)

    cdef void _bind(self, int b, Sim* sim) noexcept nogil:
        """Pointers to sub-env b's arrays, so the per-packet code does no memoryview arithmetic."""
        sim.b = b
        sim.rng = &self.rng[b, 0]
        sim.rate = &self.rate[b, 0]
        sim.srtt = &self.srtt[b, 0]
        sim.min_rtt = &self.min_rtt[b, 0]
        sim.ring_t = &self.ring_t[b, 0, 0]
        sim.ring_s = &self.ring_s[b, 0, 0]
        sim.ring_head = &self.ring_head[b, 0]
        sim.ring_n = &self.ring_n[b, 0]
        sim.mi_acc = &self.mi_acc[b, 0, 0]
        sim.flow_tot = &self.flow_tot[b, 0, 0]
        sim.lq = &self.lq[b, 0, 0]
        sim.lq_head = &self.lq_head[b, 0]
        sim.lq_n = &self.lq_n[b, 0]
        sim.busy = &self.busy[b, 0]
        sim.bw = &self.bw[b, 0]
        sim.delay = &self.delay[b, 0]
        sim.loss = &self.loss[b, 0]
        sim.queue = &self.queue[b, 0]
        sim.link_acc = &self.link_acc[b, 0, 0]
        sim.mi_start = self.mi_start[b]
        sim.ret_delay = self.ret_delay[b]

    cdef void _send(self, Sim* sim, int f, double t) noexcept nogil:
        """Send one packet of flow f at time t across its whole path (see the note at the top)."""
        cdef double coins[MAX_LINKS]
        cdef double a = t, start, dep
        cdef bint lost = False
        cdef int k, L = self.L, QC = self.QC
        cdef int64_t h, n, slot
        cdef double* lq
        if sim.ring_n[f] >= self.C:
            self._drain(sim, f, t, True)
            if sim.ring_n[f] >= self.C:
                sim.flow_tot[f * T_COLS + T_SKIPPED] += 1.0
                self._log(t, LOG_SKIP, f, 0.0)
                return
        for k in range(L):
            coins[k] = rng_uniform(sim.rng)
        for k in range(L):
            if not lost:
                if coins[k] < sim.loss[k]:
                    lost = True
                    sim.link_acc[k * K_COLS + K_RANDOM_LOSS] += 1.0
                else:
                    lq = sim.lq + k * QC
                    h = sim.lq_head[k]
                    n = sim.lq_n[k]
                    if a >= sim.busy[k]:  # idle link: everything it held has left
                        h = ring_wrap(h + n, <int64_t>QC)
                        n = 0
                    else:
                        while n > 0 and lq[h] <= a:
                            h = ring_next(h, <int64_t>QC)
                            n -= 1
                    sim.lq_head[k] = h
                    if n >= sim.queue[k]:
                        sim.lq_n[k] = n
                        lost = True
                        sim.link_acc[k * K_COLS + K_QUEUE_DROP] += 1.0
                    else:
                        start = a if a > sim.busy[k] else sim.busy[k]
                        if k == 0 and self.use_trace:
                            dep = self._trace_departure(sim.b, start, sim.mi_start)
                        else:
                            dep = start + sim.service[k]
                        lq[ring_wrap(h + n, <int64_t>QC)] = dep
                        sim.lq_n[k] = n + 1
                        sim.busy[k] = dep
                        sim.link_acc[k * K_COLS + K_ACCEPTED] += 1.0
                        a = dep + sim.delay[k]
                        continue
            # a lost packet leaves behind the packets ahead of it, taking no time of its own
            a = (a if a > sim.busy[k] else sim.busy[k]) + sim.delay[k]
        n = sim.ring_n[f]
        slot = f * self.C + ring_wrap(sim.ring_head[f] + n, <int64_t>self.C)
        sim.ring_t[slot] = a + sim.ret_delay
        sim.ring_s[slot] = -1.0 if lost else t
        sim.ring_n[f] = n + 1
        sim.mi_acc[f * M_COLS + M_SENT] += 1.0
        sim.flow_tot[f * T_COLS + T_SENT] += 1.0
        self._log(t, LOG_SEND, f, 0.0)

    cdef void _drain(self, Sim* sim, int f, double t, bint inclusive) noexcept nogil:
        """Resolve flow f's outstanding packets notified before t (or at t if inclusive)."""
        cdef double* ring_t = sim.ring_t + f * self.C
        while sim.ring_n[f] > 0:
            if ring_t[sim.ring_head[f]] > t or (not inclusive and ring_t[sim.ring_head[f]] == t):
                break
            self._notify(sim, f)

    cdef void _notify(self, Sim* sim, int f) noexcept nogil:
        """The sender of flow f learns the fate of its oldest outstanding packet."""
        cdef int64_t h = sim.ring_head[f]
        cdef double t = sim.ring_t[f * self.C + h]
        cdef double sent = sim.ring_s[f * self.C + h]
        cdef double rtt, x
        cdef double* acc = sim.mi_acc + f * M_COLS
        cdef double* tot = sim.flow_tot + f * T_COLS
        sim.ring_head[f] = ring_next(h, <int64_t>self.C)
        sim.ring_n[f] -= 1
        if sent < 0.0:
            acc[M_LOST] += 1.0
            tot[T_LOST] += 1.0
            self._log(t, LOG_LOSS, f, 0.0)
            return
        rtt = t - sent
        x = sent - sim.mi_start
        acc[M_ACKED] += 1.0
        acc[M_RTT] += rtt
        acc[M_X] += x
        acc[M_XX] += x * x
        acc[M_XY] += x * rtt
        tot[T_ACKED] += 1.0
        tot[T_RTT] += rtt
        if sim.min_rtt[f] == 0.0:
            sim.srtt[f] = rtt
            sim.min_rtt[f] = rtt
        else:
            sim.srtt[f] = sim.srtt[f] + 0.125 * (rtt - sim.srtt[f])
            if rtt < sim.min_rtt[f]:
                sim.min_rtt[f] = rtt
        self._log(t, LOG_ACK, f, rtt)

    cdef inline void _log(self, double t, int kind, int f, double value) noexcept nogil:
        if self.log_cap == 0:
            return
        if self.log_n < self.log_cap:
            self.log[self.log_n, 0] = t
            self.log[self.log_n, 1] = kind
            self.log[self.log_n, 2] = f
            self.log[self.log_n, 3] = value
        self.log_n += 1

    cdef void _finish_mi(self, int b, double start, double end) noexcept nogil:
        """Statistics, reward components and the new observation row of every flow."""
        cdef double dur = end - start
        cdef double cap, bottleneck_cap = -1.0
        cdef double sent, acked, lost, thr, lat, loss_rate, n, den, grad, value
        cdef double* acc
        cdef float* o
        cdef int k, f, i, p
        cdef Trace tr
        for k in range(self.L):
            if k == 0 and self.use_trace:
                self._trace_of(b, &tr)
                cap = (_delivered(&tr, self.trace_pos[b] + (end - start), &self.hint[b, 2])
                       - _delivered(&tr, self.trace_pos[b], &self.hint[b, 2]))
                if cap < 0.0:  # a rounding step across the loop's end during an outage
                    cap = 0.0
                self.trace_pos[b] = fmod(self.trace_pos[b] + (end - start), tr.period)
            else:
                cap = self.bw[b, k] * dur
            self.link_acc[b, k, K_CAPACITY] += cap
            if bottleneck_cap < 0.0 or cap < bottleneck_cap:
                bottleneck_cap = cap
        self.mi_duration[b] = dur
        self.mi_bandwidth[b] = bottleneck_cap / dur
        p = <int>(self.plot_n[b] % self.P)
        self.plot_bw[b, p] = bottleneck_cap / dur
        for f in range(self.N):
            acc = &self.mi_acc[b, f, 0]
            sent = acc[M_SENT]
            acked = acc[M_ACKED]
            lost = acc[M_LOST]
            thr = acked / dur
            lat = acc[M_RTT] / acked if acked > 0.0 else self.srtt[b, f]
            loss_rate = ratio(lost, acked + lost)
            self.flow_stats[b, f, S_RATE] = self.rate[b, f]
            self.flow_stats[b, f, S_THROUGHPUT] = thr
            self.flow_stats[b, f, S_LATENCY] = lat
            self.flow_stats[b, f, S_LOSS] = loss_rate
            self.flow_stats[b, f, S_MIN_RTT] = self.min_rtt[b, f]
            self.flow_stats[b, f, S_SEND_RATE] = sent / dur
            if self.normalised:
                self.comps[b, f, 0] = ratio(acked, bottleneck_cap)
            else:
                self.comps[b, f, 0] = thr
            self.comps[b, f, 1] = lat
            self.comps[b, f, 2] = loss_rate
            self.plot[b, f, p, 0] = self.rate[b, f]
            self.plot[b, f, p, 1] = thr
            self.plot[b, f, p, 2] = lat
            o = &self.obs[b, f, 0]
            shift_left(o, self.H * self.F, self.F)
            o = o + (self.H - 1) * self.F
            for i in range(self.F):
                if self.feat[i] == F_GRADIENT:
                    value = 0.0
                    n = acked
                    if n >= 2.0:
                        den = n * acc[M_XX] - acc[M_X] * acc[M_X]
                        if den > 0.0:
                            value = (n * acc[M_XY] - acc[M_X] * acc[M_RTT]) / den
                elif self.feat[i] == F_LATENCY_RATIO:
                    value = lat / self.min_rtt[b, f] if self.min_rtt[b, f] > 0.0 else 1.0
                elif self.feat[i] == F_SEND_RATIO:
                    if acked > 0.0:
                        value = sent / acked
                    else:
                        value = 1.0 if sent == 0.0 else self.feat_hi[i]
                elif self.feat[i] == F_SEND_RATE:
                    value = sent / dur / self.max_rate
                elif self.feat[i] == F_RECV_RATE:
                    value = thr / self.max_rate
                else:
                    value = loss_rate
                o[i] = <float>clip(value, self.feat_lo[i], self.feat_hi[i])
        self.plot_n[b] += 1

    cdef void _write_metrics(self, int b) noexcept nogil:
        cdef double duration = self.now[b]
        cdef double acked = 0.0, lost = 0.0, rtt = 0.0, skipped = 0.0, qdelay = 0.0
        cdef double thr, sum_x = 0.0, sum_xx = 0.0, cap, best = -1.0
        cdef int f, k
        cdef double* tot
        for f in range(self.N):
            tot = &self.flow_tot[b, f, 0]
            thr = tot[T_ACKED] / duration
            self.flow_metrics[b, f, 0] = thr
            self.flow_metrics[b, f, 1] = ratio(tot[T_RTT], tot[T_ACKED])
            self.flow_metrics[b, f, 2] = ratio(tot[T_LOST], tot[T_ACKED] + tot[T_LOST])
            acked += tot[T_ACKED]
            lost += tot[T_LOST]
            rtt += tot[T_RTT]
            skipped += tot[T_SKIPPED]
            if tot[T_ACKED] > 0.0:
                qdelay += tot[T_RTT] - tot[T_ACKED] * self.min_rtt[b, f]
            sum_x += thr
            sum_xx += thr * thr
        for k in range(self.L):
            cap = self.link_acc[b, k, K_CAPACITY]
            if best < 0.0 or cap < best:
                best = cap
        self.metrics[b, X_THROUGHPUT] = acked / duration
        self.metrics[b, X_LATENCY] = ratio(rtt, acked)
        self.metrics[b, X_LOSS] = ratio(lost, acked + lost)
        self.metrics[b, X_UTILISATION] = ratio(acked, best)
        self.metrics[b, X_QUEUEING] = ratio(qdelay, acked)
        self.metrics[b, X_JAIN] = sum_x * sum_x / (self.N * sum_xx) if sum_xx > 0.0 else 1.0
        self.metrics[b, X_DURATION] = duration
        self.metrics[b, X_SKIPPED] = skipped

    # ------------------------------------------------------------------ bandwidth
    cdef double _bottleneck_at(self, int b, double t) noexcept nogil:
        cdef double best = -1.0, v
        cdef int k
        for k in range(self.L):
            v = self._bw_at(b, k, t)
            if best < 0.0 or v < best:
                best = v
        return best

    cdef void _trace_of(self, int b, Trace* tr) noexcept nogil:
        """Sub-env b's trace (its index was checked on load, reset and set_state)."""
        cdef int64_t tid = self.trace_id[b]
        cdef int64_t first = self.tr_start[tid]
        tr.rel = &self.tr_rel[first]
        tr.rate = &self.tr_rate[first]
        tr.cum = &self.tr_cum[first]
        tr.last = self.tr_length[tid] - 2
        tr.period = self.tr_duration[tid]
        tr.packets = self.tr_packets[tid]

    cdef double _bw_at(self, int b, int k, double t) noexcept nogil:
        """Bandwidth of link k at time t >= now (between monitor intervals or at reset)."""
        cdef Trace tr
        cdef double loop, u
        cdef int64_t hint = self.hint[b, 2]
        if not (k == 0 and self.use_trace):
            return self.bw[b, k]
        self._trace_of(b, &tr)
        return tr.rate[_locate(&tr, self.trace_pos[b] + (t - self.now[b]), &hint, &loop, &u)]

    cdef double _trace_departure(self, int b, double s, double base) noexcept nogil:
        """When a packet whose transmission starts at s (in the monitor interval that started at
        base) has left the trace link: once the trace has delivered one packet more."""
        cdef Trace tr
        cdef double pos = self.trace_pos[b], target, k, u, r, v, dep
        cdef int64_t j
        self._trace_of(b, &tr)
        j = _locate(&tr, pos + (s - base), &self.hint[b, 0], &k, &u)
        r = tr.rate[j]
        if r * (tr.rel[j + 1] - u) >= 1.0:  # done within the segment it starts in
            return s + 1.0 / r
        target = k * tr.packets + tr.cum[j] + r * (u - tr.rel[j]) + 1.0
        k = floor(target / tr.packets)
        v = target - k * tr.packets
        if v <= 0.0:
            k = k - 1.0
            v = v + tr.packets
        if v > tr.packets:
            v = tr.packets
        j = _segment_reaching(&tr, v, self.hint[b, 1])
        self.hint[b, 1] = j
        dep = base + ((k * tr.period + tr.rel[j] + (v - tr.cum[j]) / tr.rate[j]) - pos)
        return dep if dep > s else s
