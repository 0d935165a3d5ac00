# Adaptive-bitrate streaming over replayed bandwidth traces: B video sessions in one nogil loop,
# plus the offline-optimal planner (dynamic programming over the same dynamics).
#
# The dynamics are specified in sysgym/envs/abr/__init__.py (module docstring) and mirrored by
# tests/reference/abr.py. All state lives in numpy arrays owned by the Python env (so
# get_state/set_state are array copies); this class only holds typed views of them.

import numpy as np

from libc.stdint cimport uint64_t, int64_t, int32_t, uint8_t, int8_t
from libc.math cimport ceil, floor, fabs

from rng cimport rng_between, rng_integers
from kernel cimport check_batch, check_state, episode_outputs, ring_next, shift_left, zero_doubles

# Observation rows (Pensieve's state layout).
cdef enum:
    ROW_BITRATE = 0
    ROW_BUFFER = 1
    ROW_THROUGHPUT = 2
    ROW_DELAY = 3
    ROW_SIZES = 4
    ROW_LEFT = 5
    OBS_ROWS = 6

# Columns of the per-env accumulator array `acc`.
cdef enum:
    ACC_QUALITY = 0
    ACC_REBUFFER = 1
    ACC_SMOOTHNESS = 2
    ACC_REBUFFER_S = 3
    ACC_STARTUP = 4
    ACC_SWITCHES = 5
    ACC_KBPS = 6
    ACC_SESSION = 7
    ACC_CAPPED = 8
    ACC_COLUMNS = 9

# Columns of the per-chunk history `hist` (for renders and analysis).
cdef enum:
    HIST_LEVEL = 0
    HIST_BUFFER = 1
    HIST_REBUFFER = 2
    HIST_DELAY = 3
    HIST_COLUMNS = 4

cdef double BUFFER_NORM_S = 10.0    # Pensieve's BUFFER_NORM_FACTOR
cdef double BYTES_PER_MB = 1e6

N_ACC = ACC_COLUMNS
N_HIST = HIST_COLUMNS
N_OBS_ROWS = OBS_ROWS


# ---------------------------------------------------------------------- trace walks
cdef struct Loop:
    # How trace k resumes after its last segment: at (segment 0, time `start`); one whole loop
    # from there lasts `seconds` and delivers `nbytes` video bytes (step 1 of the dynamics).
    double start
    double seconds
    double nbytes


cdef inline Loop loop_of(const double* tau, const double* rate, int64_t n_seg, bint loop_zero,
                         double payload) noexcept nogil:
    cdef Loop lp
    cdef double begin
    cdef int64_t i
    lp.start = 0.0 if loop_zero else tau[0]
    lp.seconds = tau[n_seg] - lp.start
    lp.nbytes = 0.0
    for i in range(n_seg):
        begin = lp.start if i == 0 else tau[i]
        lp.nbytes += rate[i] * (tau[i + 1] - begin) * payload
    return lp


cdef inline int64_t walk_limit(int64_t n_seg) noexcept nogil:
    # Safety bound on segment steps per walk. The whole-loop skip finishes any walk within about
    # three passes over the trace, so this is never reached; it keeps every loop bounded by the
    # array size whatever the floating-point rounding does.
    return 8 * n_seg + 16


cdef struct Transfer:
    double seconds       # trace time the download took
    double delivered     # bytes delivered (all of them unless capped)
    bint capped          # cut at max_transfer_s


cdef inline Transfer walk_transfer(const double* tau, const double* rate, int64_t n_seg, Loop lp,
                                   int64_t* seg, double* t, double nbytes, double payload,
                                   double max_s) noexcept nogil:
    """Deliver `nbytes` from trace position (seg, t) (step 1 of the dynamics)."""
    cdef Transfer out
    cdef double rem = nbytes, took = 0.0, now = t[0], end, dur, cap, part, m, room
    cdef int64_t i = seg[0], steps = 0, limit = walk_limit(n_seg)
    cdef bint at_cap, at_start = i == 0 and now == lp.start   # only at entry or after a wrap
    out.capped = False
    while True:
        if at_start and rem > lp.nbytes:
            m = floor(rem / lp.nbytes)
            room = floor((max_s - took) / lp.seconds)
            if m > room:
                m = room
            if m > 0.0:
                took += m * lp.seconds
                rem -= m * lp.nbytes
                if rem <= 0.0:
                    rem = 0.0
                    break
        end = tau[i + 1]
        dur = end - now
        at_cap = took + dur > max_s
        if at_cap:
            dur = max_s - took
            if dur < 0.0:
                dur = 0.0
        cap = rate[i] * dur * payload
        if cap >= rem:
            part = rem / rate[i] / payload
            took += part
            now += part
            if now > end:
                now = end
            rem = 0.0
            break
        if at_cap:
            rem -= cap
            took = max_s
            now += dur
            out.capped = True
            break
        rem -= cap
        took += dur
        now = end
        i = ring_next(i, n_seg)
        at_start = i == 0   # wrapped: the next loop of the trace
        if at_start:
            now = lp.start
        steps += 1
        if steps > limit:
            out.capped = True
            break
    seg[0] = i
    t[0] = now
    out.seconds = took
    out.delivered = nbytes - rem
    return out


cdef inline void walk_idle(const double* tau, int64_t n_seg, Loop lp, int64_t* seg, double* t,
                           double seconds) noexcept nogil:
    """Advance the trace clock by `seconds` without delivering anything (step 6: the player sleeps)."""
    cdef double rem = seconds, now = t[0], end, dur
    cdef int64_t i = seg[0], steps = 0, limit = walk_limit(n_seg)
    cdef bint at_start = i == 0 and now == lp.start
    while True:
        if at_start and rem > lp.seconds:
            rem -= floor(rem / lp.seconds) * lp.seconds
            if rem < 0.0:
                rem = 0.0
        end = tau[i + 1]
        dur = end - now
        if dur >= rem:
            now += rem
            if now > end:
                now = end
            break
        rem -= dur
        now = end
        i = ring_next(i, n_seg)
        at_start = i == 0
        if at_start:
            now = lp.start
        steps += 1
        if steps > limit:
            break
    seg[0] = i
    t[0] = now


cdef struct Chunk:
    double transfer_s
    double delivered
    bint capped
    double delay_s
    double rebuffer_s
    double sleep_s
    double buffer_s


cdef inline Chunk play_chunk(const double* tau, const double* rate, int64_t n_seg, Loop lp, int64_t* seg,
                             double* t, double buffer_s, double nbytes, double noise_factor,
                             double rtt, double payload, double chunk_s, double cap,
                             double sleep_step, double max_s) noexcept nogil:
    """Download one chunk and update the buffer (steps 1-6 of the dynamics)."""
    cdef Chunk out
    cdef Transfer tr = walk_transfer(tau, rate, n_seg, lp, seg, t, nbytes, payload, max_s)
    out.transfer_s = tr.seconds
    out.delivered = tr.delivered
    out.capped = tr.capped
    out.delay_s = (out.transfer_s + rtt) * noise_factor
    out.rebuffer_s = out.delay_s - buffer_s
    if out.rebuffer_s < 0.0:
        out.rebuffer_s = 0.0
    buffer_s = buffer_s - out.delay_s
    if buffer_s < 0.0:
        buffer_s = 0.0
    buffer_s = buffer_s + chunk_s
    out.sleep_s = 0.0
    if buffer_s > cap:
        out.sleep_s = ceil((buffer_s - cap) / sleep_step) * sleep_step
        buffer_s = buffer_s - out.sleep_s
        if buffer_s < 0.0:
            buffer_s = 0.0
        walk_idle(tau, n_seg, lp, seg, t, out.sleep_s)
    out.buffer_s = buffer_s
    return out


cdef class AbrKernel:
    # --- configuration
    cdef int B, A, H
    cdef int64_t N, n_traces
    cdef double chunk_s, cap, sleep_step, rtt, payload, noise_lo, noise_hi, mu, lam, kbps_max, max_s
    cdef bint noise, sequential, startup_rebuffer, pensieve_obs
    cdef int64_t initial_level
    cdef bint first_fixed
    # --- shared read-only inputs
    cdef const double[::1] tau, rate
    cdef const int64_t[::1] first
    cdef const double[:, ::1] sizes
    cdef const double[::1] quality, kbps
    cdef object _loops_buf
    cdef Loop* loops
    # --- per-env state
    cdef int64_t[::1] trace, seg, chunk, last_level, counter
    cdef double[::1] t, buffer, delay, rebuffer, sleep, nbytes, throughput
    cdef double[:, ::1] acc
    cdef double[:, :, ::1] hist
    cdef uint64_t[:, ::1] rng
    # --- outputs
    cdef float[:, :, ::1] obs
    cdef double[:, ::1] comps, metrics
    cdef uint8_t[::1] terminated, truncated
    cdef int8_t[:, ::1] mask
    cdef int64_t[::1] actions

    def __init__(self, dict cfg, dict state, dict bank):
        self.B = cfg["num_envs"]
        self.A = cfg["num_levels"]
        self.H = cfg["history"]
        self.N = cfg["num_chunks"]
        self.chunk_s = cfg["chunk_s"]
        self.cap = cfg["buffer_cap_s"]
        self.sleep_step = cfg["sleep_step_s"]
        self.rtt = cfg["rtt_s"]
        self.payload = cfg["payload_portion"]
        self.noise = cfg["noise"]
        self.noise_lo, self.noise_hi = cfg["noise_range"]
        self.mu = cfg["rebuffer_penalty"]
        self.lam = cfg["smoothness_penalty"]
        self.sequential = cfg["sequential"]
        self.startup_rebuffer = cfg["startup_rebuffer"]
        self.initial_level = cfg["initial_level"]
        self.first_fixed = cfg["first_fixed"]
        self.pensieve_obs = cfg["pensieve_obs"]
        self.max_s = cfg["max_transfer_s"]

        self.tau = bank["tau"]
        self.rate = bank["rate"]
        self.first = bank["first"]
        self.n_traces = self.first.shape[0] - 1
        self.sizes = bank["sizes"]
        self.quality = bank["quality"]
        self.kbps = bank["kbps"]
        self.kbps_max = self.kbps[self.A - 1]
        # One Loop per trace, in a bytes buffer this object owns (3 doubles each).
        self._loops_buf = bytearray(max(1, self.n_traces) * sizeof(Loop))
        self.loops = <Loop*><char*>self._loops_buf
        cdef int64_t k, p0
        for k in range(self.n_traces):
            p0 = self.first[k]
            self.loops[k] = loop_of(&self.tau[p0], &self.rate[p0], self.first[k + 1] - p0 - 1,
                                    cfg["loop_zero"], self.payload)

        check_state(state, self.B)
        self.trace = state["trace"]
        self.seg = state["seg"]
        self.chunk = state["chunk"]
        self.last_level = state["last_level"]
        self.counter = state["counter"]
        self.t = state["t"]
        self.buffer = state["buffer"]
        self.delay = state["delay"]
        self.rebuffer = state["rebuffer"]
        self.sleep = state["sleep"]
        self.nbytes = state["nbytes"]
        self.throughput = state["throughput"]
        self.acc = state["acc"]
        self.hist = state["hist"]
        self.rng = state["rng"]
        self.obs = state["obs"]
        self.comps, self.metrics, self.terminated, self.truncated = episode_outputs(state)
        self.mask = state["action_mask"]
        self.actions = state["actions"]

    def loop(self, int64_t k):
        """(start, seconds, bytes) of a whole loop of trace ``k`` as the walks use it."""
        if not 0 <= k < self.n_traces:
            raise ValueError(f"trace index must be in [0, {self.n_traces - 1}], got {k}")
        return self.loops[k].start, self.loops[k].seconds, self.loops[k].nbytes

    # ------------------------------------------------------------------ entry points
    def reset(self, const uint8_t[::1] which, const int64_t[::1] forced_trace):
        cdef int b
        check_batch(which.shape[0], self.B, "which")
        check_batch(forced_trace.shape[0], self.B, "forced_trace")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    self._reset_one(b, forced_trace[b])

    def step(self, const uint8_t[::1] active):
        cdef int b
        check_batch(active.shape[0], self.B, "active")
        with nogil:
            for b in range(self.B):
                if active[b]:
                    self._step_one(b)

    # ------------------------------------------------------------------ episode
    cdef void _reset_one(self, int b, int64_t forced) noexcept nogil:
        cdef uint64_t* s = &self.rng[b, 0]
        cdef int64_t k, n_seg, i
        cdef int r, j
        if self.sequential:
            k = forced if forced >= 0 else self.counter[b] % self.n_traces
            i = 0
        else:
            k = forced if forced >= 0 else rng_integers(s, 0, self.n_traces - 1)
            n_seg = self.first[k + 1] - self.first[k] - 1
            i = rng_integers(s, 0, n_seg - 1)
        self.counter[b] = k + 1
        self.trace[b] = k
        self.seg[b] = i
        self.t[b] = self.tau[self.first[k] + i]
        self.buffer[b] = 0.0
        self.chunk[b] = 0
        self.last_level[b] = self.initial_level
        self.delay[b] = 0.0
        self.rebuffer[b] = 0.0
        self.sleep[b] = 0.0
        self.nbytes[b] = 0.0
        self.throughput[b] = 0.0
        zero_doubles(&self.acc[b, 0], ACC_COLUMNS)
        for r in range(OBS_ROWS):
            for j in range(self.H):
                self.obs[b, r, j] = 0.0
        for j in range(self.A):   # first_chunk="initial": chunk 0 is played at initial_level
            self.mask[b, j] = 0 if self.first_fixed and j != self.initial_level else 1
        if not self.pensieve_obs:   # Pensieve's harness starts from the zero matrix
            self._write_sizes(b, 0)
            self.obs[b, ROW_LEFT, self.H - 1] = 1.0

    cdef void _step_one(self, int b) noexcept nogil:
        cdef int64_t a = self.actions[b]
        cdef int64_t c = self.chunk[b]
        cdef int64_t k = self.trace[b]
        cdef int64_t p0 = self.first[k]
        cdef int64_t last = self.last_level[b]
        cdef double nbytes
        cdef double noise_factor = 1.0
        cdef double rebuffer_counted
        cdef Chunk ch
        cdef int j
        if c >= self.N:  # a session already over (the env never steps one; a direct kernel call might)
            self.terminated[b] = 1
            return
        if c == 0 and self.first_fixed:   # Pensieve downloads chunk 0 at its default quality
            a = self.initial_level
            for j in range(self.A):
                self.mask[b, j] = 1
        nbytes = self.sizes[a, c]
        if self.noise:
            noise_factor = rng_between(&self.rng[b, 0], self.noise_lo, self.noise_hi)
        ch = play_chunk(&self.tau[p0], &self.rate[p0], self.first[k + 1] - p0 - 1, self.loops[k],
                        &self.seg[b], &self.t[b], self.buffer[b], nbytes, noise_factor, self.rtt,
                        self.payload, self.chunk_s, self.cap, self.sleep_step, self.max_s)
        rebuffer_counted = ch.rebuffer_s
        if c == 0 and not self.startup_rebuffer:
            rebuffer_counted = 0.0
        self.buffer[b] = ch.buffer_s
        self.delay[b] = ch.delay_s
        self.rebuffer[b] = rebuffer_counted
        self.sleep[b] = ch.sleep_s
        self.nbytes[b] = nbytes
        self.throughput[b] = ch.delivered * 8.0 / ch.delay_s / BYTES_PER_MB

        self.comps[b, 0] = self.quality[a]
        self.comps[b, 1] = -(self.mu * rebuffer_counted)
        if last >= 0:
            self.comps[b, 2] = -(self.lam * fabs(self.quality[a] - self.quality[last]))
        else:
            self.comps[b, 2] = 0.0

        self.acc[b, ACC_QUALITY] += self.comps[b, 0]
        self.acc[b, ACC_REBUFFER] += self.comps[b, 1]
        self.acc[b, ACC_SMOOTHNESS] += self.comps[b, 2]
        self.acc[b, ACC_REBUFFER_S] += rebuffer_counted
        if c == 0:
            self.acc[b, ACC_STARTUP] = ch.delay_s
        elif a != last:
            self.acc[b, ACC_SWITCHES] += 1.0
        self.acc[b, ACC_KBPS] += self.kbps[a]
        self.acc[b, ACC_SESSION] += ch.delay_s + ch.sleep_s
        if ch.capped:
            self.acc[b, ACC_CAPPED] += 1.0
        self.hist[b, c, HIST_LEVEL] = <double>a
        self.hist[b, c, HIST_BUFFER] = ch.buffer_s
        self.hist[b, c, HIST_REBUFFER] = rebuffer_counted
        self.hist[b, c, HIST_DELAY] = ch.delay_s

        c += 1
        self.chunk[b] = c
        self.last_level[b] = a
        self._write_obs(b, a, ch.delivered, ch.delay_s, ch.buffer_s, c)
        self.terminated[b] = c >= self.N
        self.truncated[b] = 0
        if self.terminated[b]:
            self._write_metrics(b)

    cdef void _write_obs(self, int b, int64_t a, double delivered, double delay, double buffer_s,
                         int64_t c) noexcept nogil:
        cdef int j, h = self.H
        cdef int r
        cdef float oldest
        for r in range(OBS_ROWS):
            if r != ROW_SIZES:
                shift_left(&self.obs[b, r, 0], h, 1)
        self.obs[b, ROW_BITRATE, h - 1] = <float>(self.kbps[a] / self.kbps_max)
        self.obs[b, ROW_BUFFER, h - 1] = <float>(buffer_s / BUFFER_NORM_S)
        self.obs[b, ROW_THROUGHPUT, h - 1] = <float>(delivered / delay / BYTES_PER_MB)
        self.obs[b, ROW_DELAY, h - 1] = <float>(delay / BUFFER_NORM_S)
        self.obs[b, ROW_LEFT, h - 1] = <float>(<double>(self.N - c) / <double>self.N)
        if self.pensieve_obs:
            # Pensieve rolls the whole matrix: row 4's columns past the levels keep level-0 sizes
            # of earlier chunks; after the last chunk its player shows chunk 0 again.
            oldest = self.obs[b, ROW_SIZES, 0]
            if h > self.A:
                shift_left(&self.obs[b, ROW_SIZES, self.A], h - self.A, 1)
            if h > self.A:
                self.obs[b, ROW_SIZES, h - 1] = oldest
            for j in range(self.A):
                self.obs[b, ROW_SIZES, j] = <float>(self.sizes[j, c if c < self.N else 0] / BYTES_PER_MB)
        else:
            self._write_sizes(b, c)

    cdef void _write_sizes(self, int b, int64_t c) noexcept nogil:
        cdef int j
        for j in range(self.H):
            if j < self.A and c < self.N:
                self.obs[b, ROW_SIZES, j] = <float>(self.sizes[j, c] / BYTES_PER_MB)
            else:
                self.obs[b, ROW_SIZES, j] = 0.0

    cdef void _write_metrics(self, int b) noexcept nogil:
        cdef double n = <double>self.N
        self.metrics[b, 0] = (self.acc[b, ACC_QUALITY] + self.acc[b, ACC_REBUFFER]
                              + self.acc[b, ACC_SMOOTHNESS]) / n
        self.metrics[b, 1] = self.acc[b, ACC_QUALITY] / n
        self.metrics[b, 2] = self.acc[b, ACC_REBUFFER] / n
        self.metrics[b, 3] = self.acc[b, ACC_SMOOTHNESS] / n
        self.metrics[b, 4] = self.acc[b, ACC_REBUFFER_S]
        self.metrics[b, 5] = self.acc[b, ACC_SWITCHES]
        self.metrics[b, 6] = self.acc[b, ACC_KBPS] / n
        self.metrics[b, 7] = self.acc[b, ACC_STARTUP]
        self.metrics[b, 8] = self.acc[b, ACC_SESSION]
        self.metrics[b, 9] = <double>self.trace[b]
        self.metrics[b, 10] = self.acc[b, ACC_CAPPED]


# ---------------------------------------------------------------------- offline optimal
cdef inline uint64_t _hash(int64_t key) noexcept nogil:
    return (<uint64_t>key) * <uint64_t>0x9E3779B97F4A7C15ULL


def plan_offline(dict cfg, const double[::1] tau, const double[::1] rate, int64_t seg0, double t0,
                 const double[:, ::1] sizes, const double[::1] quality, double dt,
                 double lower_bound=-1e300):
    """Best bitrate plan for one noise-free episode with full knowledge of the trace.

    Dynamic programming over chunks: the states after chunk c are merged into cells
    (level, floor(trace time / dt), floor(buffer / dt)); each cell keeps its best-scoring state
    *exactly* (not snapped to the grid), so the returned plan is feasible and its score is what
    the env pays. As ``dt`` shrinks the plan tends to the optimum.

    ``tau``/``rate`` are one trace's points and per-segment deliverable rates (bytes/s),
    ``sizes`` the (levels, chunks) video. States that cannot reach ``lower_bound`` even if every
    later chunk earned the top quality are dropped. Returns (levels int64 array, planned return,
    states expanded), or (None, -inf, states) when no plan beats ``lower_bound``.
    """
    cdef int A = sizes.shape[0]
    cdef int64_t N = cfg["num_chunks"]
    cdef int64_t n_seg = tau.shape[0] - 1
    cdef double chunk_s = cfg["chunk_s"], cap = cfg["buffer_cap_s"], step = cfg["sleep_step_s"]
    cdef double rtt = cfg["rtt_s"], payload = cfg["payload_portion"]
    cdef double mu = cfg["rebuffer_penalty"], lam = cfg["smoothness_penalty"]
    cdef bint startup = cfg["startup_rebuffer"]
    cdef int64_t initial = cfg["initial_level"]
    cdef bint first_fixed = cfg["first_fixed"]     # chunk 0 is played at `initial` (Pensieve)
    cdef double max_s = cfg["max_transfer_s"]
    cdef Loop lp = loop_of(&tau[0], &rate[0], n_seg, cfg["loop_zero"], payload)
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    cdef int64_t n_tbins = <int64_t>floor(tau[n_seg] / dt) + 2
    cdef int64_t n_bbins = <int64_t>floor(cap / dt) + 2
    cdef double q_max = -1e300, future
    cdef int lv
    for lv in range(A):
        if quality[lv] > q_max:
            q_max = quality[lv]

    # layer arrays (current)
    cur_t = np.array([t0], dtype=np.float64)
    cur_seg = np.array([seg0], dtype=np.int64)
    cur_buf = np.zeros(1, dtype=np.float64)
    cur_lvl = np.array([initial], dtype=np.int64)
    cur_score = np.zeros(1, dtype=np.float64)
    parents, levels = [], []
    cdef double[::1] ct, cb, cs, nt, nb, ns
    cdef int64_t[::1] cseg, clvl, nseg, nlvl
    cdef int32_t[::1] npar
    cdef int64_t[::1] keys
    cdef int32_t[::1] slots
    cdef int64_t n_cur, n_next, j, key, c, last
    cdef uint64_t mask_bits, h
    cdef int a, shift
    cdef int64_t sg
    cdef double tt, r, reb, score
    cdef Chunk ch
    total_states = 0
    for c in range(N):
        n_cur = cur_t.shape[0]
        total_states += n_cur
        capacity = n_cur * A
        table = 1
        shift = 64
        while table < 2 * capacity:
            table *= 2
            shift -= 1
        keys_np = np.full(table, -1, dtype=np.int64)
        slots_np = np.empty(table, dtype=np.int32)
        nxt_t = np.empty(capacity, dtype=np.float64)
        nxt_seg = np.empty(capacity, dtype=np.int64)
        nxt_buf = np.empty(capacity, dtype=np.float64)
        nxt_lvl = np.empty(capacity, dtype=np.int64)
        nxt_score = np.empty(capacity, dtype=np.float64)
        nxt_par = np.empty(capacity, dtype=np.int32)
        ct, cseg, cb, clvl, cs = cur_t, cur_seg, cur_buf, cur_lvl, cur_score
        nt, nseg, nb, nlvl, ns, npar = nxt_t, nxt_seg, nxt_buf, nxt_lvl, nxt_score, nxt_par
        keys, slots = keys_np, slots_np
        mask_bits = <uint64_t>(table - 1)
        n_next = 0
        future = (N - c - 1) * q_max     # no chunk after this one can earn more than q_max
        with nogil:
            for j in range(n_cur):
                last = clvl[j]
                for a in range(A):
                    if c == 0 and first_fixed and a != initial:
                        continue
                    sg = cseg[j]
                    tt = ct[j]
                    ch = play_chunk(&tau[0], &rate[0], n_seg, lp, &sg, &tt, cb[j], sizes[a, c], 1.0,
                                    rtt, payload, chunk_s, cap, step, max_s)
                    reb = ch.rebuffer_s
                    if c == 0 and not startup:
                        reb = 0.0
                    r = quality[a] - mu * reb
                    if last >= 0:
                        r = r - lam * fabs(quality[a] - quality[last])
                    score = cs[j] + r
                    if score + future < lower_bound:
                        continue
                    key = (a * n_tbins + <int64_t>floor(tt / dt)) * n_bbins + <int64_t>floor(ch.buffer_s / dt)
                    h = (_hash(key) >> shift) & mask_bits
                    while keys[h] != -1 and keys[h] != key:
                        h = (h + 1) & mask_bits
                    if keys[h] == -1:
                        keys[h] = key
                        slots[h] = <int32_t>n_next
                        n_next += 1
                    elif score <= ns[slots[h]]:
                        continue
                    nt[slots[h]] = tt
                    nseg[slots[h]] = sg
                    nb[slots[h]] = ch.buffer_s
                    nlvl[slots[h]] = a
                    ns[slots[h]] = score
                    npar[slots[h]] = <int32_t>j
        if n_next == 0:      # everything fell below lower_bound
            return None, -np.inf, int(total_states)
        parents.append(nxt_par[:n_next].copy())
        levels.append(nxt_lvl[:n_next].copy())
        cur_t, cur_seg, cur_buf = nxt_t[:n_next], nxt_seg[:n_next], nxt_buf[:n_next]
        cur_lvl, cur_score = nxt_lvl[:n_next], nxt_score[:n_next]
    best = int(np.argmax(cur_score))
    value = float(cur_score[best])
    plan = np.empty(N, dtype=np.int64)
    idx = best
    for c in range(N - 1, -1, -1):
        plan[c] = levels[c][idx]
        idx = parents[c][idx]
    return plan, value, int(total_states)
