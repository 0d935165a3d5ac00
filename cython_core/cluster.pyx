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

from libc.stdint cimport uint64_t, int64_t, int32_t, uint8_t, int8_t
from libc.string cimport memset

from rng cimport rng_uniform, rng_integers

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
    cdef int width, backlog_cols, obs_dim
    cdef int32_t cap[MAX_RESOURCES]
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
        self.comps = state["reward_components"]
        self.metrics = state["metrics"]
        self.terminated = state["terminated"]
        self.truncated = state["truncated"]
        self.mask = state["action_mask"]
        self.actions = state["actions"]

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
        with nogil:
            for b in range(self.B):
                if which[b]:
                    self._reset_one(b)

    def step(self, const uint8_t[::1] active):
        cdef int b
        with nogil:
            for b in range(self.B):
                if active[b]:
                    self._step_one(b)

    def write_image(self, int b, float[:, ::1] out):
        """Draw sub-env b's DeepRM image into `out` (horizon x image_width), whatever the obs mode."""
        if out.shape[0] * out.shape[1] != self.H * self.width:
            raise ValueError("image buffer has the wrong shape")
        self._write_image(b, &out[0, 0])

    def fits_offset(self, int b, int slot):
        """Start offset at which window slot `slot` of sub-env `b` would be placed, or -1."""
        if slot >= self.n_wait[b] or slot >= self.W:
            return -1
        return self._fits(b, self.wait[b, slot])

    # ------------------------------------------------------------------ episode
    cdef void _reset_one(self, int b) noexcept nogil:
        cdef int r, k
        cdef int64_t start
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
        for k in range(ACC_COLUMNS):
            self.acc[b, k] = 0.0
        for r in range(self.R):
            memset(&self.used[b, r, 0], 0, self.L * sizeof(int32_t))
        for k in range(self.comps.shape[1]):
            self.comps[b, k] = 0.0
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
        cdef int k, offset
        cdef double weight
        cdef bint ended
        for k in range(3):
            self.comps[b, k] = 0.0
        self.elapsed[b] = 0
        offset = -1
        # n_run < MAXRUN always holds for a job that fits (each allocated job holds a unit of every
        # resource in [now, now+H)); checking it keeps an inconsistent state from writing out of bounds.
        if a < self.W and a < self.n_wait[b] and self.n_run[b] < self.MAXRUN:
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
        self.wait[b, self.n_wait[b]] = j
        self.n_wait[b] += 1

    # ------------------------------------------------------------------ allocation
    cdef int _fits(self, int b, int j) noexcept nogil:
        """Earliest start offset (0 in 'now' mode) at which job j fits, or -1."""
        cdef int r, t, run_length = 0
        cdef int h = <int>self.head[b]
        cdef int length = self.job_len[b, j]
        cdef bint ok
        if not self.reserve:
            for r in range(self.R):
                if self.used[b, r, h] + self.job_size[b, j, r] > self.cap[r]:
                    return -1
            return 0
        for t in range(self.H - 1 + length):
            ok = True
            for r in range(self.R):
                if self.used[b, r, (h + t) % self.L] + self.job_size[b, j, r] > self.cap[r]:
                    ok = False
                    break
            if ok:
                run_length += 1
                if run_length == length:
                    return t - length + 1
            else:
                run_length = 0
                if t >= self.H - 1:
                    return -1
        return -1

    cdef void _allocate(self, int b, int slot, int offset) noexcept nogil:
        cdef int j = self.wait[b, slot]
        cdef int r, t, i
        cdef int h = <int>self.head[b]
        for r in range(self.R):
            for t in range(offset, offset + self.job_len[b, j]):
                self.used[b, r, (h + t) % self.L] += self.job_size[b, j, r]
        self.job_start[b, j] = self.now[b] + offset
        self.run[b, self.n_run[b]] = j
        self.n_run[b] += 1
        for i in range(slot, self.n_wait[b] - 1):
            self.wait[b, i] = self.wait[b, i + 1]
        self.n_wait[b] -= 1

    # ------------------------------------------------------------------ outputs
    cdef bint _write_mask(self, int b) noexcept nogil:
        """Write the action mask of sub-env b; return whether any window job fits."""
        cdef int i
        cdef bint any_fits = False
        for i in range(self.W):
            if i < self.n_wait[b] and self._fits(b, self.wait[b, i]) >= 0:
                self.mask[b, i] = 1
                any_fits = True
            else:
                self.mask[b, i] = 0
        self.mask[b, self.W] = 1
        return any_fits

    cdef void _write_obs(self, int b) noexcept nogil:
        if self.image:
            self._write_image(b, &self.obs[b, 0])
        else:
            self._write_compact(b)

    cdef void _write_compact(self, int b) noexcept nogil:
        cdef float* o = &self.obs[b, 0]
        cdef int r, t, i, k = 0, j
        cdef int h = <int>self.head[b]
        cdef double cap, u, x
        cdef double cluster_steps = <double>self.cap[0] * <double>self.maxlen
        cdef int64_t now = self.now[b]
        cdef int64_t n_back
        for r in range(self.R):
            cap = self.cap[r]
            for t in range(self.H):
                u = self.used[b, r, (h + t) % self.L]
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

    cdef void _write_image(self, int b, float* img) noexcept nogil:
        cdef int r, t, c, i, j, col = 0, rows, span, size
        cdef int h = <int>self.head[b]
        cdef int width = self.width
        cdef int64_t n_back
        cdef double x
        memset(img, 0, self.H * self.width * sizeof(float))
        for r in range(self.R):
            for t in range(self.H):
                for c in range(self.used[b, r, (h + t) % self.L]):
                    img[t * width + col + c] = 1.0
            col += self.cap[r]
            for i in range(self.W):
                if i < self.n_wait[b]:
                    j = self.wait[b, i]
                    span = self.job_len[b, j] if self.job_len[b, j] < self.H else self.H
                    size = self.job_size[b, j, r]
                    for t in range(span):
                        for c in range(size):
                            img[t * width + col + c] = 1.0
                col += self.maxsize
        if self.backlog_cols > 0:
            n_back = self.n_wait[b] - self.W
            if n_back > 0:
                rows = <int>(n_back // self.backlog_cols)
                for t in range(rows):
                    for c in range(self.backlog_cols):
                        img[t * width + col + c] = 1.0
                for c in range(<int>(n_back % self.backlog_cols)):
                    img[rows * width + col + c] = 1.0
            col += self.backlog_cols
        x = <double>(self.now[b] - self.last_arrival[b]) / ARRIVAL_TRACKING
        for t in range(self.H):
            img[t * width + col] = <float>(x if x < 1.0 else 1.0)

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
        self.metrics[b, 0] = self.acc[b, ACC_SLOWDOWN] / finished if finished > 0 else 0.0
        self.metrics[b, 1] = self.acc[b, ACC_BOUNDED_SLOWDOWN] / finished if finished > 0 else 0.0
        self.metrics[b, 2] = self.acc[b, ACC_WAIT] / finished if finished > 0 else 0.0
        self.metrics[b, 3] = self.acc[b, ACC_BUSY] / (self.cap[0] * now) if now > 0 else 0.0
        self.metrics[b, 4] = self.acc[b, ACC_MAKESPAN]
        self.metrics[b, 5] = finished
        self.metrics[b, 6] = self.n_wait[b] + self.n_run[b]
        self.metrics[b, 7] = self.acc[b, ACC_DROPPED]
        self.metrics[b, 8] = self.acc[b, ACC_INVALID]
        self.metrics[b, 9] = now
        i = self.n_run[b] + self.n_wait[b]
        self.metrics[b, 10] = slowdown_all / (finished + i) if finished + i > 0 else 0.0
