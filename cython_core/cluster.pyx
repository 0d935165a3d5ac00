# DeepRM-style cluster scheduling kernel: B clusters stepped in one nogil loop.
#
# The dynamics are specified in sysgym/envs/deeprm/__init__.py (module docstring) and mirrored
# line for line by tests/reference/deeprm.py. All state lives in numpy arrays owned by the Python
# env (so get_state/set_state are array copies); this class only holds typed views of them.
#
# Job records live in a fixed pool of W + backlog + (most allocated jobs) slots per sub-env: every
# job in the system waits or holds resources, so the pool never runs out, and its size does not
# depend on the episode length or on how many jobs a (replaced) input stream brings. Free slots
# form a stack (`free`, `n_free`). Job ids are never observable.
#
# Two caches live in the kernel object, outside the env state (see `forget`):
# - `fit_at`: each window job's earliest fit offset (the action mask, and the next allocation's
#   start). With allocation "reserve" they are carried across steps instead of recomputed by a
#   scan of the horizon for every window job (see `_shift_fits` and `_refit_after`);
# - `drawn_*`: what the image observation in `obs` currently shows, so that each step rewrites only
#   the cells that change (a time step shifts the usage profile by one row, an allocation moves a
#   few job-slot blocks: tens of cells against H x width for a full redraw); `win_from` marks the
#   first window slot whose job changed since the last draw.
# Both are marked stale (`fit_ok`, `drawn_ok`) whenever the state arrays are written from outside
# the kernel: a new kernel starts stale, and the env calls `forget()` after `set_state`. Stale
# caches are rebuilt from the state arrays alone, so a snapshot cannot reach them.

import numpy as np

from libc.stdint cimport uint64_t, int64_t, int32_t, uint8_t, int8_t
from libc.string cimport memset

from rng cimport rng_uniform, rng_integers
from kernel cimport (check_batch, check_index, check_state, episode_outputs, ratio, ring_next,
                     zero_doubles)

cdef extern from *:
    void __builtin_prefetch(const void* addr, int rw, int locality) nogil

cdef enum:
    MAX_RESOURCES = 8

# Columns of the per-env accumulator array `acc`.
cdef enum:
    ACC_SLOWDOWN = 0
    ACC_BOUNDED_SLOWDOWN = 1
    ACC_WAIT = 2
    ACC_FINISHED = 3
    ACC_BUSY = 4
    ACC_DROPPED = 5
    ACC_INVALID = 6
    ACC_MAKESPAN = 7

# Job features recorded at submission (job_feat columns).
cdef enum:
    FEAT_QUEUE = 0
    FEAT_QUEUED_WORK = 1
    FEAT_FREE = 2
    FEAT_REMAINING_WORK = 3

cdef enum:
    ACC_COLUMNS = 8

cdef enum:
    FIT_UNKNOWN = -2   # fit_at entry to compute at the next mask

cdef double BOUNDED_SLOWDOWN_TAU = 10.0  # tau of the bounded slowdown, in time steps
cdef double ARRIVAL_TRACKING = 10.0      # DeepRM's max_track_since_new: steps since last arrival saturate here

N_ACC = ACC_COLUMNS


cdef class ClusterKernel:
    # --- configuration
    cdef int B, R, H, L, W, BK, QCAP, MAXRUN, NSLOTS, maxlen, maxsize
    cdef int image, sparse, reserve, fixed_horizon, use_trace, trace_fixed_start
    cdef int64_t T, time_limit, last_time, n_starts
    cdef double rate, small_chance, gamma, scale
    cdef int small_lo, small_hi, big_lo, big_hi, dom_lo, dom_hi, oth_lo, oth_hi
    cdef int width, backlog_cols, obs_dim, backlog_col
    cdef int32_t cap[MAX_RESOURCES]
    cdef int colbase[MAX_RESOURCES]   # image column of resource r's cluster block
    # --- per-env scalar state
    cdef int64_t[::1] now, head, n_wait, n_run, n_free, n_jobs, last_arrival
    cdef int64_t[::1] trace_ptr, trace_end, trace_base, stream_start, elapsed
    cdef double[:, ::1] acc
    cdef uint64_t[:, ::1] rng
    # --- per-env arrays
    cdef int32_t[:, :, ::1] used
    cdef int32_t[:, ::1] wait, run, free, job_len
    cdef int32_t[:, :, ::1] job_size
    cdef int64_t[:, ::1] job_submit, job_start
    cdef int64_t[:, :, ::1] job_feat
    # --- shared read-only trace
    cdef int64_t[::1] tr_submit, tr_window_end
    cdef int32_t[::1] tr_len
    cdef int32_t[:, ::1] tr_size
    # --- outputs
    cdef float[:, ::1] obs
    cdef double[:, ::1] comps, metrics
    cdef uint8_t[::1] terminated, truncated
    cdef int8_t[:, ::1] mask
    cdef int64_t[::1] actions
    # --- caches (kernel-owned, never part of the state; stale until recomputed, see the header)
    cdef uint8_t[::1] fit_ok           # fit_at[b] holds the fit offsets of the current state
    cdef int32_t[:, ::1] fit_at        # (B, W): offset at which window slot i's job fits, -1 if none,
                                       # FIT_UNKNOWN if not computed yet (slots >= n_wait: undefined)
    cdef uint8_t[::1] drawn_ok         # obs[b] shows exactly the drawn_* values of row b
    cdef int32_t[:, :, ::1] drawn_used  # (B, R, H): used[r][now+t] as drawn in the cluster block
    cdef int32_t[:, ::1] drawn_span    # (B, W): rows of window slot i's block (0 = empty slot)
    cdef int32_t[:, :, ::1] drawn_size  # (B, W, R): columns of slot i's block for resource r
    cdef int64_t[::1] drawn_back, drawn_since  # backlog cells drawn; min(now - last_arrival, 10) drawn
    cdef int32_t[::1] win_from         # window slots below win_from[b] hold the jobs of the last draw
    cdef int32_t[::1] scratch          # (H,): row list of _draw_image

    def __init__(self, dict cfg, dict state, dict trace):
        cdef int r
        self.B = cfg["num_envs"]
        self.R = cfg["num_resources"]
        if self.R > MAX_RESOURCES:
            raise ValueError(f"at most {MAX_RESOURCES} resources are supported")
        for r in range(self.R):
            self.cap[r] = cfg["capacity"][r]
        self.H = cfg["horizon"]
        self.L = cfg["timeline"]
        self.W = cfg["window"]
        self.BK = cfg["backlog"]
        self.QCAP = self.W + self.BK
        self.maxlen = cfg["max_job_length"]
        self.maxsize = cfg["max_job_size"]
        self.image = cfg["image"]
        self.sparse = cfg["sparse"]
        self.reserve = cfg["reserve"]
        self.fixed_horizon = cfg["fixed_horizon"]
        self.T = cfg["episode_length"]
        self.time_limit = cfg["time_limit"]
        # the latest time an episode can reach: the time limit, and T under protocol "bracis"
        self.last_time = self.time_limit
        if self.fixed_horizon and self.T < self.last_time:
            self.last_time = self.T
        self.gamma = cfg["smdp_gamma"]
        self.scale = cfg["reward_divisor"]
        self.rate = cfg["new_job_rate"]
        self.small_chance = cfg["small_job_chance"]
        self.small_lo, self.small_hi = cfg["small_length"]
        self.big_lo, self.big_hi = cfg["large_length"]
        self.dom_lo, self.dom_hi = cfg["dominant_size"]
        self.oth_lo, self.oth_hi = cfg["other_size"]
        self.width = cfg["image_width"]
        self.backlog_cols = cfg["backlog_columns"]
        self.obs_dim = cfg["obs_dim"]
        # image layout: per resource the cluster block then W job-slot blocks; then the backlog block
        cdef int col = 0
        for r in range(self.R):
            self.colbase[r] = col
            col += self.cap[r] + self.W * self.maxsize
        self.backlog_col = col

        check_state(state, self.B)
        self.now = state["now"]
        self.head = state["head"]
        self.n_wait = state["n_wait"]
        self.n_run = state["n_run"]
        self.n_free = state["n_free"]
        self.n_jobs = state["n_jobs"]
        self.last_arrival = state["last_arrival"]
        self.trace_ptr = state["trace_ptr"]
        self.trace_end = state["trace_end"]
        self.trace_base = state["trace_base"]
        self.stream_start = state["stream_start"]
        self.elapsed = state["elapsed"]
        self.acc = state["acc"]
        self.rng = state["rng"]
        self.used = state["used"]
        self.wait = state["wait"]
        self.run = state["run"]
        self.free = state["free"]
        self.MAXRUN = self.run.shape[1]
        self.NSLOTS = self.free.shape[1]
        if self.wait.shape[1] != self.QCAP or self.NSLOTS != self.QCAP + self.MAXRUN:
            raise ValueError("job pool arrays do not match the queue and allocation capacities")
        self.job_len = state["job_len"]
        self.job_size = state["job_size"]
        self.job_submit = state["job_submit"]
        self.job_start = state["job_start"]
        self.job_feat = state["job_feat"]
        self.obs = state["obs"].reshape(self.B, -1)
        self.comps, self.metrics, self.terminated, self.truncated = episode_outputs(state)
        self.mask = state["action_mask"]
        self.actions = state["actions"]

        self.fit_ok = np.zeros(self.B, dtype=np.uint8)
        self.fit_at = np.full((self.B, self.W), -1, dtype=np.int32)
        cdef int rows = self.B if self.image else 0   # the draw cache serves the image observation
        self.drawn_ok = np.zeros(rows, dtype=np.uint8)
        self.drawn_used = np.zeros((rows, self.R, self.H), dtype=np.int32)
        self.drawn_span = np.zeros((rows, self.W), dtype=np.int32)
        self.drawn_size = np.zeros((rows, self.W, self.R), dtype=np.int32)
        self.drawn_back = np.zeros(rows, dtype=np.int64)
        self.drawn_since = np.zeros(rows, dtype=np.int64)
        self.win_from = np.zeros(self.B, dtype=np.int32)
        self.scratch = np.zeros(self.H, dtype=np.int32)

        self.use_trace = trace is not None
        if self.use_trace:
            self.tr_submit = trace["submit"]
            self.tr_len = trace["length"]
            self.tr_size = trace["size"]
            self.tr_window_end = trace["window_end"]
            self.n_starts = trace["n_starts"]
            self.trace_fixed_start = trace["fixed_start"]

    # ------------------------------------------------------------------ entry points
    def reset(self, const uint8_t[::1] which):
        cdef int b
        check_batch(which.shape[0], self.B, "which")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    self._reset_one(b)

    def step(self, const uint8_t[::1] active):
        cdef int b
        check_batch(active.shape[0], self.B, "active")
        with nogil:
            for b in range(self.B):
                if b + 1 < self.B:
                    self._prefetch(b + 1)
                if active[b]:
                    self._step_one(b)

    cdef void _prefetch(self, int b) noexcept nogil:
        cdef int t
        cdef char* p
        __builtin_prefetch(&self.used[b, 0, 0], 1, 3)
        __builtin_prefetch(&self.wait[b, 0], 0, 3)
        __builtin_prefetch(&self.run[b, 0], 1, 3)
        __builtin_prefetch(&self.job_len[b, 0], 0, 3)
        __builtin_prefetch(&self.acc[b, 0], 1, 3)
        if self.image:
            __builtin_prefetch(&self.drawn_used[b, 0, 0], 1, 3)
            __builtin_prefetch(&self.drawn_size[b, 0, 0], 1, 3)
            p = <char*>&self.obs[b, 0]
            for t in range(self.H):
                __builtin_prefetch(p + (t * self.width + self.backlog_col) * 4, 1, 3)
                __builtin_prefetch(p + (t * self.width) * 4, 1, 3)

    def write_image(self, int b, float[:, ::1] out):
        """Draw sub-env b's DeepRM image into `out` (horizon x image_width), whatever the obs mode."""
        if out.shape[0] * out.shape[1] != self.H * self.width:
            raise ValueError("image buffer has the wrong shape")
        check_index(b, self.B, "sub-env")
        # a full draw into `out`: a blank image and a scratch draw cache that describes it
        cdef int32_t[:, ::1] used = np.zeros((self.R, self.H), dtype=np.int32)
        cdef int32_t[::1] span = np.zeros(self.W, dtype=np.int32)
        cdef int32_t[:, ::1] size = np.zeros((self.W, self.R), dtype=np.int32)
        cdef int64_t back = 0, since = 0
        memset(&out[0, 0], 0, self.H * self.width * sizeof(float))
        self._draw_image(b, &out[0, 0], &used[0, 0], &span[0], &size[0, 0], &back, &since, True)

    def fits_offset(self, int b, int slot):
        """Start offset at which window slot `slot` of sub-env `b` would be placed, or -1."""
        check_index(b, self.B, "sub-env")
        if slot < 0 or slot >= self.n_wait[b] or slot >= self.W:
            return -1
        return self._fits(b, self.wait[b, slot])

    def forget(self):
        """Mark every cache stale: call after writing the state arrays from outside the kernel."""
        self.fit_ok[:] = 0
        self.drawn_ok[:] = 0

    # ------------------------------------------------------------------ episode
    cdef void _reset_one(self, int b) noexcept nogil:
        cdef int r, k
        cdef int64_t start
        self.fit_ok[b] = 0   # recomputed by the first mask
        self.win_from[b] = 0   # the window empties
        self.now[b] = 0
        self.head[b] = 0
        self.n_wait[b] = 0
        self.n_run[b] = 0
        self.n_jobs[b] = 0
        # the free stack pops slots 0, 1, 2, ... first
        self.n_free[b] = self.NSLOTS
        for k in range(self.NSLOTS):
            self.free[b, k] = self.NSLOTS - 1 - k
        self.last_arrival[b] = 0
        self.elapsed[b] = 0
        zero_doubles(&self.acc[b, 0], ACC_COLUMNS)
        for r in range(self.R):
            memset(&self.used[b, r, 0], 0, self.L * sizeof(int32_t))
        zero_doubles(&self.comps[b, 0], self.comps.shape[1])
        self.terminated[b] = 0
        self.truncated[b] = 0
        if self.use_trace:
            if self.trace_fixed_start >= 0:
                start = self.trace_fixed_start
            else:
                start = rng_integers(&self.rng[b, 0], 0, self.n_starts - 1)
            self.trace_ptr[b] = start
            self.stream_start[b] = start
            self.trace_end[b] = self.tr_window_end[start]
            self.trace_base[b] = self.tr_submit[start]
        self._arrivals(b)
        if self.sparse:
            # Skip ahead to the first decision. A fresh cluster fits any arriving job, so the
            # skipped steps hold no jobs and carry no reward. The skip stops one step before the
            # episode's last time (so the first step ends it if nothing happens).
            while (not self._terminal(b)) and self.now[b] + 1 < self.last_time \
                    and not self._write_mask(b):
                self._advance(b, 0.0)
        self._write_mask(b)
        self._write_obs(b)

    cdef void _step_one(self, int b) noexcept nogil:
        cdef int64_t a = self.actions[b]
        cdef int offset
        cdef double weight
        cdef bint ended
        zero_doubles(&self.comps[b, 0], 3)
        self.elapsed[b] = 0
        offset = -1
        # n_run < MAXRUN always holds for a job that fits (each allocated job holds a unit of every
        # resource in [now, now+H)); checking it keeps an inconsistent state from writing out of bounds.
        if a < self.W and a < self.n_wait[b] and self.n_run[b] < self.MAXRUN:
            # the mask that offered this action computed the offset (unless set_state came between)
            offset = self.fit_at[b, a] if self.fit_ok[b] else FIT_UNKNOWN
            if offset == FIT_UNKNOWN:
                offset = self._fits(b, self.wait[b, a])
        if offset >= 0:
            self._allocate(b, <int>a, offset)
        else:
            if a != self.W:
                self.acc[b, ACC_INVALID] += 1.0
            self._advance(b, 1.0)
            self.elapsed[b] = 1
        ended = self._terminal(b) or self.now[b] >= self.time_limit
        if self.sparse and not ended:
            weight = 1.0 if self.elapsed[b] == 0 else self.gamma
            while not self._write_mask(b):
                self._advance(b, weight)
                self.elapsed[b] += 1
                weight = weight * self.gamma
                if self._terminal(b) or self.now[b] >= self.time_limit:
                    break
        self.terminated[b] = self._terminal(b)
        self.truncated[b] = (not self.terminated[b]) and self.now[b] >= self.time_limit
        self._write_mask(b)
        self._write_obs(b)
        if self.terminated[b] or self.truncated[b]:
            self._write_metrics(b)

    cdef bint _terminal(self, int b) noexcept nogil:
        """Whether the episode has reached its end (terminated): protocol "drain", once no job can
        arrive any more and the cluster is empty; protocol "bracis", once the clock reaches T."""
        if self.fixed_horizon:
            return self.now[b] >= self.T
        return self._arrivals_over(b) and self.n_wait[b] == 0 and self.n_run[b] == 0

    cdef bint _arrivals_over(self, int b) noexcept nogil:
        if self.use_trace:
            return self.trace_ptr[b] >= self.trace_end[b]
        return self.now[b] + 1 >= self.T

    # ------------------------------------------------------------------ time
    cdef void _advance(self, int b, double weight) noexcept nogil:
        """Move time forward one step; add `weight` x this step's reward to comps[b]."""
        cdef int r, i, w, j
        cdef int h = <int>self.head[b]
        cdef int64_t end, now
        cdef double c_run = 0.0, c_win = 0.0, c_back = 0.0
        # The reward covers the step now elapsing, [now, now+1): every job in the system during it.
        if weight != 0.0:
            for i in range(self.n_run[b]):
                c_run -= 1.0 / self.job_len[b, self.run[b, i]]
            for i in range(self.n_wait[b]):
                if i < self.W:
                    c_win -= 1.0 / self.job_len[b, self.wait[b, i]]
                else:
                    c_back -= 1.0 / self.job_len[b, self.wait[b, i]]
            self.comps[b, 0] += weight * (c_run / self.scale)
            self.comps[b, 1] += weight * (c_win / self.scale)
            self.comps[b, 2] += weight * (c_back / self.scale)
        self.acc[b, ACC_BUSY] += self.used[b, 0, h]
        for r in range(self.R):
            self.used[b, r, h] = 0
        self.head[b] = (h + 1) % self.L
        self.now[b] += 1
        self._shift_fits(b)
        now = self.now[b]
        w = 0
        for i in range(self.n_run[b]):
            j = self.run[b, i]
            end = self.job_start[b, j] + self.job_len[b, j]
            if end <= now:
                self._record_finish(b, j, end)
                self.free[b, self.n_free[b]] = j
                self.n_free[b] += 1
            else:
                self.run[b, w] = j
                w += 1
        self.n_run[b] = w
        self._arrivals(b)

    cdef void _record_finish(self, int b, int j, int64_t end) noexcept nogil:
        cdef double length = self.job_len[b, j]
        cdef double response = end - self.job_submit[b, j]
        cdef double bounded = response / (length if length > BOUNDED_SLOWDOWN_TAU else BOUNDED_SLOWDOWN_TAU)
        self.acc[b, ACC_SLOWDOWN] += response / length
        self.acc[b, ACC_BOUNDED_SLOWDOWN] += bounded if bounded > 1.0 else 1.0
        self.acc[b, ACC_WAIT] += self.job_start[b, j] - self.job_submit[b, j]
        self.acc[b, ACC_FINISHED] += 1.0
        if end > self.acc[b, ACC_MAKESPAN]:
            self.acc[b, ACC_MAKESPAN] = end

    # ------------------------------------------------------------------ arrivals
    cdef void _arrivals(self, int b) noexcept nogil:
        cdef uint64_t* s = &self.rng[b, 0]
        cdef int r, dominant
        cdef int32_t length
        cdef int32_t size[MAX_RESOURCES]
        cdef int64_t p
        if self.use_trace:
            p = self.trace_ptr[b]
            while p < self.trace_end[b] and self.tr_submit[p] - self.trace_base[b] <= self.now[b]:
                self._submit(b, self.tr_len[p], &self.tr_size[p, 0])
                p += 1
            self.trace_ptr[b] = p
            return
        if self.now[b] >= self.T:
            return
        if rng_uniform(s) >= self.rate:
            return
        if rng_uniform(s) < self.small_chance:
            length = <int32_t>rng_integers(s, self.small_lo, self.small_hi)
        else:
            length = <int32_t>rng_integers(s, self.big_lo, self.big_hi)
        dominant = <int>rng_integers(s, 0, self.R - 1) if self.R > 1 else 0
        for r in range(self.R):
            if r == dominant:
                size[r] = <int32_t>rng_integers(s, self.dom_lo, self.dom_hi)
            else:
                size[r] = <int32_t>rng_integers(s, self.oth_lo, self.oth_hi)
        self._submit(b, length, size)

    cdef void _submit(self, int b, int32_t length, const int32_t* size) noexcept nogil:
        """Queue a job arriving now with its submission features, or count it dropped when the
        queue is full."""
        cdef int i, q, j, r
        cdef int64_t queued = 0, remaining = 0, start, now = self.now[b]
        self.n_jobs[b] += 1
        self.last_arrival[b] = now
        # n_free > 0 always holds while the queue has room (the pool has a slot for every job that
        # can wait or run); checking it keeps an inconsistent state from writing out of bounds.
        if self.n_wait[b] >= self.QCAP or self.n_free[b] <= 0:
            self.acc[b, ACC_DROPPED] += 1.0
            return
        for i in range(self.n_wait[b]):
            q = self.wait[b, i]
            queued += <int64_t>self.job_len[b, q] * self.job_size[b, q, 0]
        for i in range(self.n_run[b]):
            q = self.run[b, i]
            start = self.job_start[b, q]
            if start < now:
                start = now
            remaining += (self.job_start[b, q] + self.job_len[b, q] - start) * self.job_size[b, q, 0]
        self.n_free[b] -= 1
        j = self.free[b, self.n_free[b]]
        self.job_len[b, j] = length
        for r in range(self.R):
            self.job_size[b, j, r] = size[r]
        self.job_feat[b, j, FEAT_QUEUE] = self.n_wait[b]
        self.job_feat[b, j, FEAT_QUEUED_WORK] = queued
        self.job_feat[b, j, FEAT_FREE] = self.cap[0] - self.used[b, 0, self.head[b]]
        self.job_feat[b, j, FEAT_REMAINING_WORK] = remaining
        self.job_submit[b, j] = now
        self.job_start[b, j] = -1
        if self.n_wait[b] < self.W:
            self.fit_at[b, self.n_wait[b]] = FIT_UNKNOWN
            if self.n_wait[b] < self.win_from[b]:
                self.win_from[b] = <int32_t>self.n_wait[b]
        self.wait[b, self.n_wait[b]] = j
        self.n_wait[b] += 1

    # ------------------------------------------------------------------ allocation
    cdef int _fits(self, int b, int j) noexcept nogil:
        """Earliest start offset (0 in 'now' mode) at which job j fits, or -1."""
        cdef int r
        cdef int h = <int>self.head[b]
        if not self.reserve:
            for r in range(self.R):
                if self.used[b, r, h] + self.job_size[b, j, r] > self.cap[r]:
                    return -1
            return 0
        return self._fits_from(b, j, 0)

    cdef int _fits_from(self, int b, int j, int first) noexcept nogil:
        """Reserve mode: earliest offset in [first, H-1] at which job j fits, or -1."""
        cdef int r, t, run_length = 0, idx
        cdef int L = self.L, R = self.R
        cdef int length = self.job_len[b, j]
        cdef int32_t* used = &self.used[b, 0, 0]   # used[r * L + slot]
        cdef int32_t room[MAX_RESOURCES]           # the most units already in use where job j fits
        cdef bint ok
        for r in range(R):
            room[r] = self.cap[r] - self.job_size[b, j, r]
        # One pass over the profile, counting the run of steps where the job fits; profile slot
        # `idx` is step now + t (the ring index (head + t) % L, advanced without a division).
        idx = (<int>self.head[b] + first) % L
        for t in range(first, self.H - 1 + length):
            ok = True
            for r in range(R):
                if used[r * L + idx] > room[r]:
                    ok = False
                    break
            idx = ring_next(idx, L)
            if ok:
                run_length += 1
                if run_length == length:
                    return t - length + 1
            else:
                run_length = 0
                if t >= self.H - 1:
                    return -1
        return -1

    cdef bint _fits_at(self, int b, int j, int offset) noexcept nogil:
        """Reserve mode: whether job j fits over steps [now + offset, now + offset + length)."""
        cdef int r, t, idx
        cdef int L = self.L
        for r in range(self.R):
            idx = (<int>self.head[b] + offset) % L
            for t in range(self.job_len[b, j]):
                if self.used[b, r, idx] + self.job_size[b, j, r] > self.cap[r]:
                    return False
                idx = ring_next(idx, L)
        return True

    # Carrying the fit offsets across steps (reserve mode). fit_at[b, i] is the earliest offset o
    # in [0, H-1] at which window job i fits (-1: none). The profile changes in two ways only:
    # - a time step shifts it by one (the step leaving is dropped, an empty step enters at
    #   now + L - 1, beyond every window [o, o + length) with o <= H-1): offsets o >= 1 become
    #   o - 1 (the same windows, earlier ones still fail); o = 0 must be searched again; -1 stays
    #   -1 unless the one new candidate, H - 1, fits (`_shift_fits`);
    # - an allocation raises it over [start, start + length): offsets before o still fail, and o
    #   still fits unless its window overlaps the raised steps, in which case the search resumes
    #   at o (`_refit_after`); -1 stays -1.
    # Window jobs that change slot carry their offset; a job entering the window is FIT_UNKNOWN.
    cdef void _shift_fits(self, int b) noexcept nogil:
        cdef int i, o, j
        cdef int n = <int>self.n_wait[b] if self.n_wait[b] < self.W else self.W
        if not self.fit_ok[b]:
            return
        if not self.reserve:
            self.fit_ok[b] = 0   # "now" fits depend on the new step's usage alone: recompute all
            return
        for i in range(n):
            o = self.fit_at[b, i]
            if o >= 1:
                self.fit_at[b, i] = o - 1
            elif o == 0:
                self.fit_at[b, i] = FIT_UNKNOWN
            elif o == -1:
                j = self.wait[b, i]
                if self._fits_at(b, j, self.H - 1):
                    self.fit_at[b, i] = self.H - 1

    cdef void _refit_after(self, int b, int slot, int start, int length) noexcept nogil:
        """Update the window's fit offsets after the job in `slot` was allocated over
        [now + start, now + start + length) (the profile already raised; the job still in `slot`)."""
        cdef int i, o, j
        cdef int n = <int>self.n_wait[b] if self.n_wait[b] < self.W else self.W
        if not self.reserve:
            self.fit_ok[b] = 0
            return
        for i in range(n):
            o = self.fit_at[b, i]
            if i == slot or o < 0:
                continue
            j = self.wait[b, i]
            if o < start + length and start < o + self.job_len[b, j]:
                self.fit_at[b, i] = self._fits_from(b, j, o)

    cdef void _allocate(self, int b, int slot, int offset) noexcept nogil:
        cdef int j = self.wait[b, slot]
        cdef int r, t, i, idx
        cdef int h = <int>self.head[b]
        for r in range(self.R):
            idx = (h + offset) % self.L
            for t in range(self.job_len[b, j]):
                self.used[b, r, idx] += self.job_size[b, j, r]
                idx = ring_next(idx, self.L)
        if self.fit_ok[b]:
            self._refit_after(b, slot, offset, self.job_len[b, j])
        self.job_start[b, j] = self.now[b] + offset
        self.run[b, self.n_run[b]] = j
        self.n_run[b] += 1
        for i in range(slot, self.n_wait[b] - 1):
            self.wait[b, i] = self.wait[b, i + 1]
        # the window's fit offsets move with their jobs; a backlog job entering the window is unknown
        for i in range(slot, self.W - 1):
            self.fit_at[b, i] = self.fit_at[b, i + 1]
        self.fit_at[b, self.W - 1] = FIT_UNKNOWN
        if slot < self.win_from[b]:
            self.win_from[b] = slot
        self.n_wait[b] -= 1

    # ------------------------------------------------------------------ outputs
    cdef bint _write_mask(self, int b) noexcept nogil:
        """Write the action mask of sub-env b; return whether any window job fits."""
        cdef int i, offset
        cdef int n = <int>self.n_wait[b] if self.n_wait[b] < self.W else self.W
        cdef bint any_fits = False
        cdef bint known = self.fit_ok[b]
        cdef int32_t* fit = &self.fit_at[b, 0]
        cdef int8_t* mask = &self.mask[b, 0]   # (local pointers: int8 stores may alias anything)
        for i in range(n):
            offset = fit[i] if known else FIT_UNKNOWN
            if offset == FIT_UNKNOWN:
                offset = self._fits(b, self.wait[b, i])
                fit[i] = offset
            mask[i] = offset >= 0
            any_fits = any_fits or offset >= 0
        for i in range(n, self.W):
            fit[i] = -1
            mask[i] = 0
        mask[self.W] = 1
        self.fit_ok[b] = 1
        return any_fits

    cdef void _write_obs(self, int b) noexcept nogil:
        cdef bint full = False
        if self.image:
            if not self.drawn_ok[b]:
                # redraw from a blank image (and a draw cache that describes a blank image)
                memset(&self.obs[b, 0], 0, self.H * self.width * sizeof(float))
                memset(&self.drawn_used[b, 0, 0], 0, self.R * self.H * sizeof(int32_t))
                memset(&self.drawn_span[b, 0], 0, self.W * sizeof(int32_t))
                memset(&self.drawn_size[b, 0, 0], 0, self.W * self.R * sizeof(int32_t))
                self.drawn_back[b] = 0
                self.drawn_since[b] = 0
                self.drawn_ok[b] = 1
                full = True
            self._draw_image(b, &self.obs[b, 0], &self.drawn_used[b, 0, 0], &self.drawn_span[b, 0],
                             &self.drawn_size[b, 0, 0], &self.drawn_back[b], &self.drawn_since[b], full)
            self.win_from[b] = self.W
        else:
            self._write_compact(b)

    cdef void _write_compact(self, int b) noexcept nogil:
        cdef float* o = &self.obs[b, 0]
        cdef int r, t, i, k = 0, j, idx
        cdef int h = <int>self.head[b]
        cdef double cap, u, x
        cdef double cluster_steps = <double>self.cap[0] * <double>self.maxlen
        cdef int64_t now = self.now[b]
        cdef int64_t n_back
        for r in range(self.R):
            cap = self.cap[r]
            idx = h
            for t in range(self.H):
                u = self.used[b, r, idx]
                idx = ring_next(idx, self.L)
                o[k] = <float>(u / cap)
                o[k + 1] = <float>((cap - u) / cap)
                k += 2
        for i in range(self.W):
            if i >= self.n_wait[b]:
                for t in range(7 + self.R):
                    o[k + t] = 0.0
                k += 7 + self.R
                continue
            j = self.wait[b, i]
            o[k] = 1.0
            x = <double>(now - self.job_submit[b, j]) / <double>self.T
            o[k + 1] = <float>(x if x < 1.0 else 1.0)
            o[k + 2] = <float>(<double>self.job_len[b, j] / <double>self.maxlen)
            k += 3
            for r in range(self.R):
                o[k] = <float>(<double>self.job_size[b, j, r] / <double>self.cap[r])
                k += 1
            o[k] = <float>(<double>self.job_feat[b, j, FEAT_QUEUE] / <double>self.QCAP)
            x = <double>self.job_feat[b, j, FEAT_QUEUED_WORK] / cluster_steps
            o[k + 1] = <float>(x / (1.0 + x))
            o[k + 2] = <float>(<double>self.job_feat[b, j, FEAT_FREE] / <double>self.cap[0])
            x = <double>self.job_feat[b, j, FEAT_REMAINING_WORK] / cluster_steps
            o[k + 3] = <float>(x / (1.0 + x))
            k += 4
        n_back = self.n_wait[b] - self.W
        o[k] = <float>(<double>n_back / <double>self.BK) if (self.BK > 0 and n_back > 0) else 0.0
        x = <double>(now - self.last_arrival[b]) / ARRIVAL_TRACKING
        o[k + 1] = <float>(x if x < 1.0 else 1.0)
        x = <double>(self.T - 1 - now) / <double>self.T
        o[k + 2] = <float>(x if x > 0.0 else 0.0)

    cdef void _draw_image(self, int b, float* img, int32_t* d_used, int32_t* d_span, int32_t* d_size,
                          int64_t* d_back, int64_t* d_since, bint full) noexcept nogil:
        """Bring `img` up to date with sub-env b's state, rewriting only the cells that change.

        `img` must show exactly what the draw cache (d_used (R, H), d_span (W), d_size (W, R),
        d_back, d_since) describes; on return it shows the current state and the cache says so.
        A blank image with a zeroed cache is a valid start (every block empty, since-column 0).
        Unless `full`, window slots below win_from[b] are taken to show their jobs already.
        The image (layout in the package docstring) is a function of the state alone.
        """
        cdef int r, t, i, j, k, n, u, span, old_span, size, old_size, want, have
        cdef int first = 0 if full else self.win_from[b]
        cdef int H = self.H, L = self.L, W = self.W, R = self.R
        cdef int width = self.width
        cdef int h = <int>self.head[b]
        cdef int wrap = L - h if L - h < H else H   # rows before the profile ring wraps around
        cdef int n_wait = <int>self.n_wait[b]
        cdef int32_t* used
        cdef int32_t* drawn
        cdef int32_t* rows = &self.scratch[0]
        cdef float* cell
        cdef int64_t n_back, old_back, since
        cdef float value
        # cluster blocks: row t shows used[r][now + t] units (cells [0, used) set). First list the
        # rows whose count changed (without a branch per row, whose outcome is hard to predict),
        # then set or clear the cells between the drawn count and the new one.
        for r in range(R):
            used = &self.used[b, r, 0]
            drawn = d_used + r * H
            n = 0
            for t in range(wrap):
                rows[n] = t
                n += used[h + t] != drawn[t]
            for t in range(wrap, H):
                rows[n] = t
                n += used[t - wrap] != drawn[t]
            cell = img + self.colbase[r]
            for k in range(n):
                t = rows[k]
                u = used[h + t] if t < wrap else used[t - wrap]
                _fill_run(cell + t * width, drawn[t], u)
                drawn[t] = u
        # job-slot blocks: slot i's job as min(length, H) rows by size[r] columns (empty: 0 by 0)
        for i in range(first, W):
            j = self.wait[b, i] if i < n_wait else -1
            span = 0
            if j >= 0:
                span = self.job_len[b, j] if self.job_len[b, j] < H else H
            old_span = d_span[i]
            for r in range(R):
                size = self.job_size[b, j, r] if j >= 0 else 0
                old_size = d_size[i * R + r]
                if span == old_span and size == old_size:
                    continue
                cell = img + self.colbase[r] + self.cap[r] + i * self.maxsize
                for t in range(span if span > old_span else old_span):
                    want = size if t < span else 0
                    have = old_size if t < old_span else 0
                    if want != have:
                        _fill_run(cell + t * width, have, want)
                d_size[i * R + r] = size
            d_span[i] = span
        # backlog block: backlog job k is cell (k // columns, k % columns)
        if self.backlog_cols > 0:
            n_back = n_wait - W if n_wait > W else 0
            old_back = d_back[0]
            cell = img + self.backlog_col
            for k in range(<int>old_back, <int>n_back):
                cell[(k // self.backlog_cols) * width + k % self.backlog_cols] = 1.0
            for k in range(<int>n_back, <int>old_back):
                cell[(k // self.backlog_cols) * width + k % self.backlog_cols] = 0.0
            d_back[0] = n_back
        # last column: min((now - last_arrival) / 10, 1), drawn once per change of its value
        since = self.now[b] - self.last_arrival[b]
        if since > <int64_t>ARRIVAL_TRACKING:
            since = <int64_t>ARRIVAL_TRACKING
        if since != d_since[0]:
            value = <float>(<double>since / ARRIVAL_TRACKING)
            cell = img + self.backlog_col + self.backlog_cols
            for t in range(H):
                cell[t * width] = value
            d_since[0] = since

    cdef void _write_metrics(self, int b) noexcept nogil:
        cdef double finished = self.acc[b, ACC_FINISHED]
        cdef double now = self.now[b]
        cdef double slowdown_all = self.acc[b, ACC_SLOWDOWN]
        cdef int i, j
        # Jobs still in the system count with the slowdown they have reached so far, so a policy
        # that leaves jobs unfinished cannot look good by finishing only the easy ones.
        for i in range(self.n_run[b]):
            j = self.run[b, i]
            slowdown_all += (now - self.job_submit[b, j]) / self.job_len[b, j]
        for i in range(self.n_wait[b]):
            j = self.wait[b, i]
            slowdown_all += (now - self.job_submit[b, j]) / self.job_len[b, j]
        self.metrics[b, 0] = ratio(self.acc[b, ACC_SLOWDOWN], finished)
        self.metrics[b, 1] = ratio(self.acc[b, ACC_BOUNDED_SLOWDOWN], finished)
        self.metrics[b, 2] = ratio(self.acc[b, ACC_WAIT], finished)
        self.metrics[b, 3] = self.acc[b, ACC_BUSY] / (self.cap[0] * now) if now > 0 else 0.0
        self.metrics[b, 4] = self.acc[b, ACC_MAKESPAN]
        self.metrics[b, 5] = finished
        self.metrics[b, 6] = self.n_wait[b] + self.n_run[b]
        self.metrics[b, 7] = self.acc[b, ACC_DROPPED]
        self.metrics[b, 8] = self.acc[b, ACC_INVALID]
        self.metrics[b, 9] = now
        i = self.n_run[b] + self.n_wait[b]
        self.metrics[b, 10] = ratio(slowdown_all, finished + i)


cdef inline void _fill_run(float* row, int have, int want) noexcept nogil:
    """Turn a row's run of set cells [0, have) into [0, want)."""
    cdef int c
    for c in range(have, want):
        row[c] = 1.0
    for c in range(want, have):
        row[c] = 0.0
