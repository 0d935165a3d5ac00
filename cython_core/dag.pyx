# DAG edge-generation scheduling kernel (Sun et al., IEEE TC 2024): B DAG tasks stepped in one nogil loop.
#
# The dynamics are specified in sysgym/envs/dag/__init__.py (module docstring); the pure-Python
# reference tests/reference/dag.py is written from that text. All episode state lives in numpy
# arrays owned by the Python env (get_state/set_state are array copies); this class holds typed
# views of them plus a few scratch buffers that never outlive one call.
#
# Representation. A node set is a bitset of NW = ceil(N/64) uint64 words. desc[b, u] holds the
# strict descendants of u in the transitive closure, anc[b, u] its strict ancestors. Times are
# int64. The width is n - |maximum matching| of the bipartite graph (u_left, v_right) for u < v in
# the closure (Fulkerson's proof of Dilworth's theorem); the matching is kept between steps and
# only augmented (edges only add comparabilities, so an old matching stays a matching). The same
# holds per node k for the poset restricted to the nodes incomparable to k (lateral width); when
# that set loses nodes, each is spliced out of its chain (prev -> u -> r becomes prev -> r, by
# transitivity), and a new task's lateral matchings start from the width's matching spliced the
# same way (k's own chain leaves whole).
#
# Every matching also keeps a witness: an antichain of its node set, of size |set| - |matching|
# when the matching is maximum (the König cover of the last failed augmenting search gives it).
# After an edge, the witness minus the nodes that left the set, pruned to an antichain again, is
# a lower bound on the new width: augmenting stops as soon as the matching meets it, so the
# final search that finds no path is only run when the width really dropped further. The
# matchings are exactly those of augmenting to the end (the skipped search changes nothing).
# Witnesses live in the kernel, not in the state: one is always checked (pruned against the
# current closure) before use, so a stale one (after set_state) only costs time.

from libc.stdint cimport uint64_t, int64_t, int32_t, uint8_t, int8_t
from libc.string cimport memset, memcpy

from kernel cimport check_batch, check_index, check_state, episode_outputs, zero_doubles
from rng cimport rng_uniform, rng_integers

cdef extern from *:
    """
    /* Bit count without a libgcc call (the build does not assume the POPCNT instruction). */
    static inline int dag_popcount64(unsigned long long x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    }
    """
    int popcount64 "dag_popcount64"(unsigned long long) nogil
    int ctz64 "__builtin_ctzll"(unsigned long long) nogil

# SPREAD[x] holds the 8 bits of byte x as 8 bytes 0/1 (bit k at byte k): a closure row's byte
# becomes 8 int8 observation entries with one copy.
cdef uint8_t SPREAD[256][8]
cdef int _x, _k
for _x in range(256):
    for _k in range(8):
        SPREAD[_x][_k] = (_x >> _k) & 1

# Workload kinds (cfg["workload"]).
cdef enum:
    WL_TASKS = 0
    WL_LAYERED = 1
    WL_FORKJOIN = 2

# Fork-join block kinds.
cdef enum:
    FJ_TERMINAL = 0
    FJ_PARALLEL = 1
    FJ_SERIES = 2

# reset() status codes.
cdef enum:
    RESET_OK = 0
    RESET_NO_TASK = 1       # the generator produced only trivial tasks / wrong sizes MAX_DRAWS times

cdef int MAX_DRAWS = 1000   # generator attempts before reset gives up (reported as an error)
DRAW_LIMIT = MAX_DRAWS      # the same, for Python (snapshot checks)

# Columns of the metrics row, in METRIC_NAMES order.
METRIC_NAMES = ("initial_width", "final_width", "cores_needed", "width_lower_bound",
                "initial_critical_path", "critical_path", "deadline", "slack", "edges_added",
                "invalid_actions", "num_nodes", "tasks_redrawn")

cdef enum:
    NODE_FEATURES = 5       # C/D, EFT/D, LST/D, lateral width/n, node present

N_NODE_FEATURES = NODE_FEATURES


cdef inline bint bit_in(const uint64_t* s, int v) noexcept nogil:
    return (s[v >> 6] >> (v & 63)) & 1


cdef inline void bit_set(uint64_t* s, int v) noexcept nogil:
    s[v >> 6] |= (<uint64_t>1) << (v & 63)


cdef inline void bit_clear(uint64_t* s, int v) noexcept nogil:
    s[v >> 6] &= ~((<uint64_t>1) << (v & 63))



cdef inline void _not_related_to_all(const uint64_t* members, const uint64_t* others, const uint64_t* rel,
                                     int NW, uint64_t* out) noexcept nogil:
    """out = the nodes v of ``members`` whose relation row (``rel + v * NW``: a descendant or
    ancestor bitset) misses some node of ``others``; out is cleared first."""
    cdef int w, x, v
    cdef uint64_t bits
    cdef const uint64_t* row
    for w in range(NW):
        out[w] = 0
    for w in range(NW):
        bits = members[w]
        while bits:
            v = (w << 6) + ctz64(bits)
            bits &= bits - 1
            row = rel + v * NW
            for x in range(NW):
                if others[x] & ~row[x]:
                    bit_set(out, v)
                    break

cdef inline int _count_minus(const uint64_t* a, const uint64_t* b, int NW) noexcept nogil:
    """|a minus b| of two bitsets."""
    cdef int w, c = 0
    for w in range(NW):
        c += popcount64(a[w] & ~b[w])
    return c

cdef class DAGKernel:
    # --- configuration
    cdef int B, N, NW, workload, flat, reject
    cdef int64_t processors, max_steps
    cdef int n_lo, n_hi, parallelism, layers_lo, layers_hi, max_branches, max_depth
    cdef int64_t c_lo, c_hi
    cdef double edge_p, term_p, fork_p, util_min
    # --- task set (workload = WL_TASKS), read-only
    cdef int64_t[::1] ts_n, ts_deadline, playable
    cdef int64_t[:, ::1] ts_wcet
    cdef uint64_t[:, :, ::1] ts_adj
    # --- per-env state
    cdef int64_t[::1] n, deadline, task, width, length, lower_bound, initial_width, initial_length
    cdef int64_t[::1] steps, edges_added, invalid, redraws
    cdef int64_t[:, ::1] wcet, est, lft, lateral
    cdef uint64_t[:, :, ::1] adj, added, desc, anc
    cdef uint64_t[:, ::1] crit
    cdef int32_t[:, ::1] mate_l, mate_r
    cdef int32_t[:, :, ::1] lat_l, lat_r
    cdef uint64_t[:, ::1] rng
    # --- outputs
    cdef float[:, :, ::1] obs_nodes
    cdef int8_t[:, :, ::1] obs_closure
    cdef int8_t[:, ::1] obs_mask
    cdef float[:, ::1] obs_flat
    cdef double[:, ::1] comps, metrics
    cdef uint8_t[::1] terminated, truncated
    cdef int8_t[:, ::1] mask
    cdef int64_t[::1] actions
    cdef object _active_obj             # the last flag array step() was given, and its view
    cdef const uint8_t[::1] _active
    # --- scratch (one call at a time; never part of the state)
    cdef int32_t[::1] queue, parent, order, counts, fj_made, gained
    cdef int32_t[:, ::1] sml, smr
    cdef uint64_t[::1] s_seen, s_free, s_free_l, s_cand, s_set, s_up, s_down, s_valid, s_reach, s_wit, s_new_up, s_new_down, s_lat_changed, s_rows, s_out
    cdef uint64_t[:, ::1] s_desc, s_anc
    # --- witnesses (antichains) of the matchings: kernel-owned, checked before every use
    cdef uint64_t[:, ::1] wit
    cdef uint64_t[:, :, ::1] lat_wit
    cdef int fj_count, fj_top
    cdef int edge_i, edge_j            # the edge _step_one is adding (read by _times_after_edge)

    def __init__(self, dict cfg, dict state, dict tasks):
        self.B = cfg["num_envs"]
        self.N = cfg["max_nodes"]
        self.NW = (self.N + 63) // 64
        self.workload = cfg["workload"]
        self.flat = cfg["flat"]
        self.reject = cfg["reject_invalid"]
        self.processors = cfg["processors"]
        self.max_steps = cfg["max_steps"]
        self.n_lo, self.n_hi = cfg["num_nodes"]
        self.c_lo, self.c_hi = cfg["wcet"]
        self.parallelism = cfg["parallelism"]
        self.layers_lo, self.layers_hi = cfg["layers"]      # (0, 0): sizes from parallelism
        self.edge_p = cfg["edge_probability"]
        self.term_p = cfg["term_probability"]
        self.fork_p = cfg["fork_probability"]
        self.max_branches = cfg["max_branches"]
        self.max_depth = cfg["max_depth"]
        self.util_min = cfg["utilisation_min"]

        check_state(state, self.B)
        self.n = state["n"]
        self.deadline = state["deadline"]
        self.task = state["task"]
        self.width = state["width"]
        self.length = state["length"]
        self.lower_bound = state["lower_bound"]
        self.initial_width = state["initial_width"]
        self.initial_length = state["initial_length"]
        self.steps = state["steps"]
        self.edges_added = state["edges_added"]
        self.invalid = state["invalid"]
        self.redraws = state["redraws"]
        self.wcet = state["wcet"]
        self.est = state["est"]
        self.lft = state["lft"]
        self.lateral = state["lateral"]
        self.adj = state["adj"]
        self.added = state["added"]
        self.desc = state["desc"]
        self.anc = state["anc"]
        self.crit = state["crit"]
        self.mate_l = state["mate_l"]
        self.mate_r = state["mate_r"]
        self.lat_l = state["lat_l"]
        self.lat_r = state["lat_r"]
        self.rng = state["rng"]
        self.comps, self.metrics, self.terminated, self.truncated = episode_outputs(state)
        self.mask = state["action_mask"]
        self.actions = state["actions"]
        import numpy as np
        if self.flat:
            self.obs_flat = state["obs"]
            self.obs_nodes = np.zeros((1, 1, 1), dtype=np.float32)
            self.obs_closure = np.zeros((1, 1, 1), dtype=np.int8)
            self.obs_mask = np.zeros((1, 1), dtype=np.int8)
        else:
            self.obs_flat = np.zeros((1, 1), dtype=np.float32)
            self.obs_nodes = state["obs:nodes"]
            self.obs_closure = state["obs:closure"]
            self.obs_mask = state["obs:action_mask"]

        if self.workload == WL_TASKS:
            self.ts_n = tasks["n"]
            self.ts_deadline = tasks["deadline"]
            self.ts_wcet = tasks["wcet"]
            self.ts_adj = tasks["adj"]
            self.playable = tasks["playable"]

        cdef int N = self.N, NW = self.NW
        self.queue = np.zeros(2 * N + 2, dtype=np.int32)
        self.parent = np.zeros(N + 1, dtype=np.int32)
        self.order = np.zeros(N + 1, dtype=np.int32)
        self.counts = np.zeros(N + 2, dtype=np.int32)
        self.fj_made = np.zeros(4 * N + 8, dtype=np.int32)
        self.gained = np.zeros(N, dtype=np.int32)
        self.sml = np.zeros((1, N), dtype=np.int32)
        self.smr = np.zeros((1, N), dtype=np.int32)
        self.s_seen = np.zeros(NW, dtype=np.uint64)
        self.s_free = np.zeros(NW, dtype=np.uint64)
        self.s_free_l = np.zeros(NW, dtype=np.uint64)
        self.s_cand = np.zeros(NW, dtype=np.uint64)
        self.s_set = np.zeros(NW, dtype=np.uint64)
        self.s_up = np.zeros(NW, dtype=np.uint64)
        self.s_down = np.zeros(NW, dtype=np.uint64)
        self.s_valid = np.zeros(NW, dtype=np.uint64)
        self.s_reach = np.zeros(NW, dtype=np.uint64)
        self.s_lat_changed = np.zeros(NW, dtype=np.uint64)
        self.s_rows = np.zeros(NW, dtype=np.uint64)
        self.s_out = np.zeros(NW, dtype=np.uint64)
        self.s_wit = np.zeros(NW, dtype=np.uint64)
        self.s_new_up = np.zeros(NW, dtype=np.uint64)
        self.s_new_down = np.zeros(NW, dtype=np.uint64)
        self.wit = np.zeros((self.B, NW), dtype=np.uint64)
        self.lat_wit = np.zeros((self.B, N, NW), dtype=np.uint64)
        self.s_desc = np.zeros((N, NW), dtype=np.uint64)
        self.s_anc = np.zeros((N, NW), dtype=np.uint64)

    # ------------------------------------------------------------------ entry points
    def reset(self, const uint8_t[::1] which, const int64_t[::1] choice):
        """Start a new episode in every sub-env b with which[b]; choice[b] >= 0 picks task set entry
        choice[b] (task-set workloads), -1 draws one. Returns the index of the first sub-env whose
        generator failed (see RESET_NO_TASK), or -1."""
        cdef int b, failed = -1
        check_batch(which.shape[0], self.B, "which")
        check_batch(choice.shape[0], self.B, "choice")
        with nogil:
            for b in range(self.B):
                if which[b]:
                    if self._reset_one(b, choice[b]) != RESET_OK and failed < 0:
                        failed = b
        return failed

    def step(self, active):
        """Step every sub-env b with active[b] (uint8 flags, one per sub-env). The view of the
        flag array is kept while the caller passes the same array again (the single env's is
        fixed), and a single sub-env steps without releasing the GIL: both cost more than a
        B = 1 step's bookkeeping."""
        cdef const uint8_t[::1] view
        cdef int b
        if active is not self._active_obj:
            view = active
            check_batch(view.shape[0], self.B, "active")
            self._active = view
            self._active_obj = active
        if self.B == 1:
            if self._active[0]:
                self._step_one(0)
            return
        with nogil:
            for b in range(self.B):
                if self._active[b]:
                    self._step_one(b)

    def edge_outcomes(self, int b, const int8_t[::1] candidates, int64_t[::1] width_out,
                      int64_t[::1] length_out):
        """For every action a with candidates[a] that is a valid edge of sub-env b: the width and
        critical-path length after adding it (state untouched); -1 elsewhere."""
        cdef int a, i, j, N = self.N
        check_index(b, self.B, "sub-env")
        for name, size in (("candidates", candidates.shape[0]), ("width_out", width_out.shape[0]),
                           ("length_out", length_out.shape[0])):
            if size != N * N:
                raise ValueError(f"{name} must have one entry per action ({N * N}), got {size}")
        with nogil:
            for a in range(N * N):
                width_out[a] = -1
                length_out[a] = -1
                if candidates[a]:
                    i = a // N
                    j = a % N
                    if self._edge_valid(b, i, j):
                        width_out[a] = self._width_with_edge(b, i, j)
                        length_out[a] = self._length_with_edge(b, i, j)

    def processors_of(self, int b, int64_t[::1] out):
        """Processor of every node from the minimum chain cover (chains numbered by their first
        node's index); -1 for padding. Uses the kernel's current maximum matching."""
        cdef int v, u, hops, c = 0, nn
        check_index(b, self.B, "sub-env")
        if out.shape[0] != self.N:
            raise ValueError(f"out must have one entry per node ({self.N}), got {out.shape[0]}")
        nn = <int>self.n[b]
        for v in range(self.N):
            out[v] = -1
        for v in range(nn):
            if self.mate_r[b, v] < 0:       # v starts a chain
                u = v
                for hops in range(nn):      # a chain has at most n nodes
                    if u < 0:
                        break
                    out[u] = c
                    u = self.mate_l[b, u]
                c += 1
        return c

    def done(self, int b):
        """Whether sub-env b's current state is terminal (W at its bound or target, or no valid edge)."""
        check_index(b, self.B, "sub-env")
        return self._done(b)

    def edge_valid(self, int b, int i, int j):
        """Whether adding i -> j is a valid action of sub-env b (mask rule, ignoring the episode end)."""
        check_index(b, self.B, "sub-env")
        if i < 0 or j < 0 or i >= self.N or j >= self.N:
            return False
        return self._edge_valid(b, i, j)

    # ------------------------------------------------------------------ episode
    cdef int _reset_one(self, int b, int64_t choice) noexcept nogil:
        cdef int draws = 0, k
        cdef uint64_t* s = &self.rng[b, 0]
        while True:
            if self.workload == WL_TASKS:
                if choice >= 0:
                    k = <int>choice
                else:
                    k = <int>self.playable[rng_integers(s, 0, self.playable.shape[0] - 1)]
                self._load_task(b, k)
            else:
                if not self._generate(b):
                    return RESET_NO_TASK
            self._full_analysis(b)
            if self.workload == WL_TASKS or not self._done(b):
                break
            draws += 1
            if draws >= MAX_DRAWS:
                return RESET_NO_TASK
        self.redraws[b] = draws
        self.initial_width[b] = self.width[b]
        self.initial_length[b] = self.length[b]
        self.steps[b] = 0
        self.edges_added[b] = 0
        self.invalid[b] = 0
        zero_doubles(&self.comps[b, 0], self.comps.shape[1])
        self.terminated[b] = 0
        self.truncated[b] = 0
        self._write_outputs(b, False)
        return RESET_OK

    cdef void _step_one(self, int b) noexcept nogil:
        cdef int64_t a = self.actions[b]
        cdef int N = self.N
        cdef int i, j
        if a < 0 or a >= <int64_t>N * N:
            a = 0           # never after the Python checks; edge 0 -> 0 is always rejected
        i = <int>(a // N)
        j = <int>(a % N)
        cdef int64_t prev_width = self.width[b], prev_length = self.length[b]
        cdef uint64_t* up = &self.s_up[0]
        cdef uint64_t* down = &self.s_down[0]
        self.steps[b] += 1
        if not self._edge_valid(b, i, j):
            # Only reachable with reject_invalid (the Python side raises otherwise): the edge is
            # not added and nothing but the counters changes.
            self.invalid[b] += 1
            self.comps[b, 0] = 0.0
            self.comps[b, 1] = 0.0
            self.comps[b, 2] = -1.0
            self._write_end(b, False)
            return
        bit_set(&self.added[b, i, 0], j)
        self._edge_sides(b, i, j, up, down)
        self._new_sides(b, up, down)
        self._or_rows(&self.desc[b, 0, 0], up, down)
        self._or_rows(&self.anc[b, 0, 0], down, up)
        self.edge_i = i
        self.edge_j = j
        self._analysis(b, True)
        self.edges_added[b] += 1
        self.comps[b, 0] = <double>(prev_width - self.width[b])
        self.comps[b, 1] = <double>(prev_length - self.length[b]) / <double>self.deadline[b]
        self.comps[b, 2] = 0.0
        self._write_outputs(b, True)

    cdef bint _at_target(self, int b) noexcept nogil:
        """W reached its lower bound or the processor target."""
        return self.width[b] <= self.lower_bound[b] or (self.processors > 0 and self.width[b] <= self.processors)

    cdef bint _done(self, int b) noexcept nogil:
        """Terminal state: W reached its lower bound or the processor target, or no edge is valid."""
        return self._at_target(b) or not self._any_valid(b)

    cdef void _write_outputs(self, int b, bint after_edge) noexcept nogil:
        """Mask, observation and end flags; after_edge: right after _step_one's analysis of an added
        edge, when only what that edge changed is rewritten in the observation."""
        # the mask scan already tells whether any edge is valid: no second scan for the end test
        cdef bint any_valid = self._write_mask(b)
        self._write_obs(b, after_edge)
        if self.steps[b] > 0:
            self._write_end(b, self._at_target(b) or not any_valid)

    cdef void _write_end(self, int b, bint done) noexcept nogil:
        self.terminated[b] = done
        self.truncated[b] = (not done) and self.max_steps > 0 and self.steps[b] >= self.max_steps
        if self.terminated[b] or self.truncated[b]:
            self._write_metrics(b)

    # ------------------------------------------------------------------ task construction
    cdef void _clear(self, int b) noexcept nogil:
        cdef int N = self.N, NW = self.NW
        memset(&self.wcet[b, 0], 0, N * sizeof(int64_t))
        memset(&self.adj[b, 0, 0], 0, N * NW * sizeof(uint64_t))
        memset(&self.added[b, 0, 0], 0, N * NW * sizeof(uint64_t))

    cdef void _load_task(self, int b, int k) noexcept nogil:
        cdef int N = self.N, NW = self.NW
        self._clear(b)
        self.task[b] = k
        self.n[b] = self.ts_n[k]
        self.deadline[b] = self.ts_deadline[k]
        memcpy(&self.wcet[b, 0], &self.ts_wcet[k, 0], N * sizeof(int64_t))
        memcpy(&self.adj[b, 0, 0], &self.ts_adj[k, 0, 0], N * NW * sizeof(uint64_t))
        self._closure_from_adj(b)

    cdef bint _generate(self, int b) noexcept nogil:
        """Draw a task from the generator into sub-env b (structure, WCETs, deadline)."""
        cdef uint64_t* s = &self.rng[b, 0]
        cdef int v, nn, attempts = 0
        cdef int64_t vol = 0, L, hi
        self.task[b] = -1
        if self.workload == WL_LAYERED:
            self._clear(b)
            nn = self._layered(b, s)
        else:
            while True:
                self._clear(b)
                nn = self._forkjoin(b, s)
                if nn >= self.n_lo:
                    break
                attempts += 1
                if attempts >= MAX_DRAWS:
                    return False
        self.n[b] = nn
        for v in range(nn):
            self.wcet[b, v] = rng_integers(s, self.c_lo, self.c_hi)
            vol += self.wcet[b, v]
        self._closure_from_adj(b)
        self._times(b, 0)
        L = self.length[b]
        if L < 1:
            L = 1           # all WCETs 0: the deadline is still a positive integer
        hi = <int64_t>(<double>vol / self.util_min)
        if hi < L:
            hi = L
        self.deadline[b] = rng_integers(s, L, hi)
        return True

    cdef int _layered(self, int b, uint64_t* s) noexcept nogil:
        """Layer-by-layer DAG; returns the node count. All layer sizes are drawn first, then the
        edges; nodes are numbered layer by layer."""
        cdef int nn = <int>rng_integers(s, self.n_lo, self.n_hi)
        cdef int32_t* starts = &self.order[0]     # layer k holds nodes starts[k] .. starts[k+1]-1
        cdef int32_t* sizes = &self.counts[0]
        cdef int layers = 0, first = 0, size, k, v, u, has_pred
        if self.layers_lo > 0:
            layers = <int>rng_integers(s, self.layers_lo, self.layers_hi)
            if layers > nn:
                layers = nn
            for k in range(layers):
                sizes[k] = 1
            for v in range(nn - layers):
                sizes[rng_integers(s, 0, layers - 1)] += 1
            for k in range(layers):
                starts[k] = first
                first += sizes[k]
        else:
            while first < nn:
                size = <int>rng_integers(s, 1, self.parallelism)
                if size > nn - first:
                    size = nn - first
                starts[layers] = first
                layers += 1
                first += size
        starts[layers] = nn
        for k in range(1, layers):
            for v in range(starts[k], starts[k + 1]):
                has_pred = 0
                for u in range(starts[k]):
                    if rng_uniform(s) < self.edge_p:
                        bit_set(&self.adj[b, u, 0], v)
                        has_pred = 1
                if not has_pred:
                    u = starts[k - 1] + <int>rng_integers(s, 0, starts[k] - starts[k - 1] - 1)
                    bit_set(&self.adj[b, u, 0], v)
        return nn

    cdef int _forkjoin(self, int b, uint64_t* s) noexcept nogil:
        """Nested fork-join DAG (series / parallel composition); returns the node count."""
        cdef int entry, exit_
        self.fj_count = 0
        self.fj_top = 0
        self._fj_expand(b, s, 0, 0, &entry, &exit_)
        return self.fj_count

    cdef void _fj_expand(self, int b, uint64_t* s, int depth, int reserved, int* entry,
                         int* exit_) noexcept nogil:
        """Expand one block at `depth`; `reserved` nodes are promised to blocks still to expand."""
        cdef int kind = FJ_TERMINAL, k = 0, branch, fork, join, e, x, first_exit, base
        if depth < self.max_depth and rng_uniform(s) >= self.term_p:
            if rng_uniform(s) < self.fork_p:
                k = <int>rng_integers(s, 2, self.max_branches)
                if self.fj_count + reserved + k + 2 <= self.n_hi:
                    kind = FJ_PARALLEL
            elif self.fj_count + reserved + 2 <= self.n_hi:
                kind = FJ_SERIES
        if kind == FJ_TERMINAL:
            entry[0] = self.fj_count
            exit_[0] = self.fj_count
            self.fj_count += 1
        elif kind == FJ_SERIES:
            self._fj_expand(b, s, depth + 1, reserved + 1, entry, &first_exit)
            self._fj_expand(b, s, depth + 1, reserved, &e, exit_)
            bit_set(&self.adj[b, first_exit, 0], e)
        else:
            fork = self.fj_count
            self.fj_count += 1
            # Branch exits wait on a stack (fj_made, shared by nested blocks) until the join exists;
            # each branch still to expand and the join are promised one node each.
            base = self.fj_top
            for branch in range(k):
                self._fj_expand(b, s, depth + 1, reserved + (k - branch - 1) + 1, &e, &x)
                bit_set(&self.adj[b, fork, 0], e)
                self.fj_made[base + branch] = x
                self.fj_top = base + branch + 1
            join = self.fj_count
            self.fj_count += 1
            for branch in range(k):
                bit_set(&self.adj[b, self.fj_made[base + branch], 0], join)
            self.fj_top = base
            entry[0] = fork
            exit_[0] = join

    cdef void _closure_from_adj(self, int b) noexcept nogil:
        """desc = transitive closure of adj (Warshall on bitsets); anc = its transpose."""
        cdef int N = self.N, NW = self.NW, nn = <int>self.n[b], k, u, v
        memcpy(&self.desc[b, 0, 0], &self.adj[b, 0, 0], N * NW * sizeof(uint64_t))
        memset(&self.anc[b, 0, 0], 0, N * NW * sizeof(uint64_t))
        for k in range(nn):
            for u in range(nn):
                if bit_in(&self.desc[b, u, 0], k):
                    self._or_into(&self.desc[b, u, 0], &self.desc[b, k, 0])
        for u in range(nn):
            for v in range(nn):
                if bit_in(&self.desc[b, u, 0], v):
                    bit_set(&self.anc[b, v, 0], u)

    # ------------------------------------------------------------------ analysis
    cdef void _full_analysis(self, int b) noexcept nogil:
        """Analyse a freshly loaded task (closure already built): the width's matching from empty, each
        lateral one from it (see _analysis)."""
        cdef int N = self.N
        memset(&self.mate_l[b, 0], -1, N * sizeof(int32_t))     # all bytes 0xFF: -1
        memset(&self.mate_r[b, 0], -1, N * sizeof(int32_t))
        memset(&self.lat_l[b, 0, 0], -1, N * N * sizeof(int32_t))
        memset(&self.lat_r[b, 0, 0], -1, N * N * sizeof(int32_t))
        memset(&self.lateral[b, 0], 0, N * sizeof(int64_t))
        memset(&self.wit[b, 0], 0, self.NW * sizeof(uint64_t))         # no witness: search to the end
        memset(&self.lat_wit[b, 0, 0], 0, N * self.NW * sizeof(uint64_t))
        memset(&self.est[b, 0], 0, N * sizeof(int64_t))
        memset(&self.lft[b, 0], 0, N * sizeof(int64_t))
        self._analysis(b, False)

    cdef void _analysis(self, int b, bint incremental) noexcept nogil:
        """Times, L, W, lateral widths, critical nodes and the width lower bound of sub-env b.

        incremental: an edge i -> j was just added with s_up = {i} + anc(i), s_down = {j} + desc(j),
        and s_new_up / s_new_down the nodes of each side that gained a relation (see _new_sides); a
        node's lateral matching is only revisited when its set or the order inside it changed."""
        cdef int NW = self.NW, nn = <int>self.n[b], k, w, x, size, n_set, touched_up, touched_down
        cdef uint64_t bits
        cdef const uint64_t* gone
        cdef uint64_t* visit = &self.s_rows[0]          # (free until the observation is written)
        cdef uint64_t* valid = &self.s_valid[0]
        cdef uint64_t* S = &self.s_set[0]
        cdef int64_t vol = 0, crit_sum = 0, lo_est = -1, hi_lft = -1, period, lb, D = self.deadline[b]
        if D < 1:
            D = 1           # never in a validated state; keeps the division below defined
        self._valid_set(nn, valid)
        if incremental:
            self._times_after_edge(b)
        else:
            self._times(b, 1)
        # the node set never changes, so the old matching's size is n - W (0 on a fresh task)
        size = <int>(nn - self.width[b]) if incremental else 0
        size = self._max_matching(&self.desc[b, 0, 0], &self.anc[b, 0, 0], valid, &self.mate_l[b, 0], &self.mate_r[b, 0], size,
                                  &self.wit[b, 0], NULL)
        self.width[b] = nn - size
        memset(&self.s_lat_changed[0], 0, NW * sizeof(uint64_t))
        # the nodes whose lateral matching may change: a node of s_up or s_down that was already
        # comparable to the whole other side keeps its set and the order inside it
        for w in range(NW):
            visit[w] = valid[w]
            if incremental:
                visit[w] &= ~(self.s_up[w] | self.s_down[w]) | self.s_new_up[w] | self.s_new_down[w]
        for w in range(NW):
            bits = visit[w]
            while bits:
                k = (w << 6) + ctz64(bits)
                bits &= bits - 1
                touched_up = 0
                touched_down = 0
                for x in range(NW):
                    S[x] = valid[x] & ~self.anc[b, k, x] & ~self.desc[b, k, x]
                    touched_up |= (S[x] & self.s_new_up[x]) != 0
                    touched_down |= (S[x] & self.s_new_down[x]) != 0
                bit_clear(S, k)
                gone = NULL
                if incremental and not (bit_in(&self.s_new_up[0], k) or bit_in(&self.s_new_down[0], k)) \
                        and not (touched_up and touched_down):
                    continue    # k's set is unchanged and holds no new pair (one joins s_new_up to s_new_down)
                n_set = self._count(S)
                if not incremental:
                    # start from the width's matching and witness: its chains, with the nodes
                    # outside k's set spliced out, cover that set (k's chain vanishes whole)
                    memcpy(&self.lat_l[b, k, 0], &self.mate_l[b, 0], self.N * sizeof(int32_t))
                    memcpy(&self.lat_r[b, k, 0], &self.mate_r[b, 0], self.N * sizeof(int32_t))
                    memcpy(&self.lat_wit[b, k, 0], &self.wit[b, 0], NW * sizeof(uint64_t))
                    for x in range(NW):
                        self.s_out[x] = valid[x] & ~S[x]
                    size = <int>(nn - self.width[b])
                    gone = &self.s_out[0]
                else:
                    # the matching's size before the edge: k's set then held the gained nodes too
                    size = n_set - <int>self.lateral[b, k]
                    if bit_in(&self.s_new_up[0], k):
                        size += self.gained[k]      # k gained descendants: its set lost nodes of s_down
                        gone = &self.s_down[0]
                    elif bit_in(&self.s_new_down[0], k):
                        size += self.gained[k]      # k gained ancestors: its set lost nodes of s_up
                        gone = &self.s_up[0]
                size = self._max_matching(&self.desc[b, 0, 0], &self.anc[b, 0, 0], S, &self.lat_l[b, k, 0],
                                          &self.lat_r[b, k, 0], size, &self.lat_wit[b, k, 0], gone)
                if self.lateral[b, k] != n_set - size:
                    self.lateral[b, k] = n_set - size
                    bit_set(&self.s_lat_changed[0], k)
        memset(&self.crit[b, 0], 0, NW * sizeof(uint64_t))
        for k in range(nn):
            vol += self.wcet[b, k]
            if self.lateral[b, k] == self.width[b] - 1:
                bit_set(&self.crit[b, 0], k)
                crit_sum += self.wcet[b, k]
                if lo_est < 0 or self.est[b, k] < lo_est:
                    lo_est = self.est[b, k]
                if self.lft[b, k] > hi_lft:
                    hi_lft = self.lft[b, k]
        lb = (vol + D - 1) // D
        period = hi_lft - lo_est
        if period > 0 and (crit_sum + period - 1) // period > lb:
            lb = (crit_sum + period - 1) // period
        if lb < 1:
            lb = 1
        self.lower_bound[b] = lb

    cdef void _times(self, int b, bint backward) noexcept nogil:
        """EST forward over a topological order (nodes by ancestor count), L; LFT backward from D."""
        cdef int nn = <int>self.n[b], v, idx
        cdef int64_t t, L = 0
        cdef int32_t* order = &self.order[0]
        cdef int32_t* counts = &self.counts[0]
        # counting sort by |anc(v)|: an ancestor always has strictly fewer ancestors
        for v in range(nn + 1):
            counts[v] = 0
        for v in range(nn):
            counts[self._count(&self.anc[b, v, 0]) + 1] += 1
        for v in range(nn):
            counts[v + 1] += counts[v]
        for v in range(nn):
            idx = self._count(&self.anc[b, v, 0])
            order[counts[idx]] = v
            counts[idx] += 1
        for idx in range(nn):
            v = order[idx]
            t = self._est_from_ancestors(b, v)
            self.est[b, v] = t
            if t + self.wcet[b, v] > L:
                L = t + self.wcet[b, v]
        self.length[b] = L
        if not backward:
            return
        for idx in range(nn - 1, -1, -1):
            v = order[idx]
            self.lft[b, v] = self._lft_from_descendants(b, v)

    cdef void _times_after_edge(self, int b) noexcept nogil:
        """After the edge i -> j (s_up = {i} + anc(i), s_down = {j} + desc(j)): only the nodes of
        s_down gained ancestors (the nodes of s_up, whose latest finish is EFT_i) and only those of
        s_up gained descendants (the nodes of s_down, whose earliest latest start is LST_j). So
        EST_v = max(EST_v, EFT_i, EFT of v's ancestors inside s_down) over s_down in a topological
        order, LFT likewise over s_up, and L = max(L, EFT over s_down): the values _times gives."""
        cdef int NW = self.NW, v, a, w, idx, m
        cdef uint64_t bits
        cdef int64_t t, L = self.length[b]
        cdef int64_t* est = &self.est[b, 0]
        cdef int64_t* lft = &self.lft[b, 0]
        cdef const int64_t* wcet = &self.wcet[b, 0]
        cdef const uint64_t* anc = &self.anc[b, 0, 0]
        cdef const uint64_t* desc = &self.desc[b, 0, 0]
        cdef const uint64_t* up = &self.s_up[0]
        cdef const uint64_t* down = &self.s_down[0]
        cdef int32_t* order = &self.order[0]
        cdef int64_t eft_i = est[self.edge_i] + wcet[self.edge_i]
        cdef int64_t lst_j = lft[self.edge_j] - wcet[self.edge_j]
        m = self._sort_inside(down, anc)
        for idx in range(m):
            v = order[idx]
            t = est[v] if est[v] > eft_i else eft_i
            for w in range(NW):
                bits = anc[v * NW + w] & down[w]
                while bits:
                    a = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    if est[a] + wcet[a] > t:
                        t = est[a] + wcet[a]
            est[v] = t
            if t + wcet[v] > L:
                L = t + wcet[v]
        self.length[b] = L
        m = self._sort_inside(up, desc)
        for idx in range(m):
            v = order[idx]
            t = lft[v] if lft[v] < lst_j else lst_j
            for w in range(NW):
                bits = desc[v * NW + w] & up[w]
                while bits:
                    a = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    if lft[a] - wcet[a] < t:
                        t = lft[a] - wcet[a]
            lft[v] = t

    cdef int _sort_inside(self, const uint64_t* which, const uint64_t* rows) noexcept nogil:
        """The nodes v of ``which`` into self.order by |rows[v] & which| (counting sort, stable): a
        topological order of ``which`` when rows are ancestor (or, reversed roles, descendant) rows,
        since a related node inside the set has strictly fewer of them. Returns their count."""
        cdef int NW = self.NW, N = self.N, v, w, x, key, m = 0
        cdef uint64_t bits
        cdef int32_t* order = &self.order[0]
        cdef int32_t* counts = &self.counts[0]
        cdef int32_t* keys = &self.parent[0]        # free outside _max_matching
        for v in range(N + 2):
            counts[v] = 0
        for w in range(NW):
            bits = which[w]
            while bits:
                v = (w << 6) + ctz64(bits)
                bits &= bits - 1
                key = 0
                for x in range(NW):
                    key += popcount64(rows[v * NW + x] & which[x])
                keys[v] = key if key < N else N
                counts[keys[v] + 1] += 1
        for v in range(N):
            counts[v + 1] += counts[v]
        for w in range(NW):
            bits = which[w]
            while bits:
                v = (w << 6) + ctz64(bits)
                bits &= bits - 1
                order[counts[keys[v]]] = v
                counts[keys[v]] += 1
                m += 1
        return m

    cdef inline int64_t _est_from_ancestors(self, int b, int v) noexcept nogil:
        """EST of v from its ancestors' current values: their latest finish (EST + WCET), 0 if none."""
        cdef int w, a
        cdef int64_t t = 0
        cdef uint64_t bits
        for w in range(self.NW):
            bits = self.anc[b, v, w]
            while bits:
                a = (w << 6) + ctz64(bits)
                bits &= bits - 1
                if self.est[b, a] + self.wcet[b, a] > t:
                    t = self.est[b, a] + self.wcet[b, a]
        return t

    cdef inline int64_t _lft_from_descendants(self, int b, int v) noexcept nogil:
        """LFT of v from its descendants' current values: their earliest latest start (LFT - WCET), D if none."""
        cdef int w, a
        cdef int64_t t = self.deadline[b]
        cdef uint64_t bits
        for w in range(self.NW):
            bits = self.desc[b, v, w]
            while bits:
                a = (w << 6) + ctz64(bits)
                bits &= bits - 1
                if self.lft[b, a] - self.wcet[b, a] < t:
                    t = self.lft[b, a] - self.wcet[b, a]
        return t

    cdef int _max_matching(self, const uint64_t* rows, const uint64_t* cols, const uint64_t* S, int32_t* ml,
                           int32_t* mr, int size, uint64_t* A, const uint64_t* gone) noexcept nogil:
        """Grow (ml, mr) into a maximum matching of {(u, v): u, v in S, v in rows[u]}; its size.
        ``cols`` is the transpose of ``rows`` (cols[v] holds the u with v in rows[u]).

        ``size`` is the size of the matching given, all inside S, or, with ``gone`` given, inside
        S + gone (every node that left S is in gone, and none of gone is in S): each node of gone
        is then spliced out of its chain (prev -> u -> r becomes prev -> r: prev < u < r), which
        costs one pair per node that had a mate. ``A`` (in/out) is
        the witness: cut to S and pruned to an antichain (then, unless that already proves the
        matching maximum, greedily extended by nodes incomparable to all of it), it bounds the
        matching by |S| - |A|, and augmenting stops there; a search that finds no path proves the
        matching maximum and leaves its König antichain in A. Then a greedy pass and BFS
        augmenting paths from all free left vertices at once (bitset frontier), as long as the
        bound is not met. The free vertices of S are kept as bitsets (s_free_l, s_free), so the
        passes over them are word operations.

        Every loop is bounded by N whatever the arrays hold: at most N augmentations (+1 round
        that finds none), paths of at most N right vertices, chain splices and greedy additions
        one per node, and a BFS queue that takes each left vertex of S once plus one mate per
        right vertex seen (2N + 2 slots)."""
        cdef int N = self.N, NW = self.NW, u, r, w, x, prev, qh, qt, found, rounds, hops, bound, t
        cdef uint64_t bits, fl, fr
        cdef uint64_t* free_l = &self.s_free_l[0]
        cdef uint64_t* free_r = &self.s_free[0]
        cdef uint64_t* seen = &self.s_seen[0]
        cdef uint64_t* cand = &self.s_cand[0]
        cdef int32_t* queue = &self.queue[0]
        cdef int32_t* parent = &self.parent[0]
        if gone != NULL:
            for w in range(NW):
                bits = gone[w]
                while bits:
                    u = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    if u >= N:
                        break
                    prev = mr[u]
                    r = ml[u]
                    if prev >= 0 or r >= 0:
                        size -= 1
                    if prev >= 0:
                        ml[prev] = r
                        mr[u] = -1
                    if r >= 0:
                        mr[r] = prev
                        ml[u] = -1
        bound = self._count(S)
        # the witness, checked: inside S, and no node of it below another (a node with a
        # descendant still in A leaves; what stays is an antichain of the current order)
        for w in range(NW):
            A[w] &= S[w]
        for w in range(NW):
            bits = A[w]
            while bits:
                u = (w << 6) + ctz64(bits)
                bits &= bits - 1
                for x in range(NW):
                    if rows[u * NW + x] & A[x]:
                        bit_clear(A, u)
                        break
        if size >= bound - self._count(A):
            return size
        # extend A greedily (lowest node first) by the nodes of S comparable to none of it
        for w in range(NW):
            cand[w] = S[w] & ~A[w]
        for w in range(NW):
            bits = A[w]
            while bits:
                u = (w << 6) + ctz64(bits)
                bits &= bits - 1
                for x in range(NW):
                    cand[x] &= ~(rows[u * NW + x] | cols[u * NW + x])
        for w in range(NW):
            while cand[w]:
                u = (w << 6) + ctz64(cand[w])
                bit_set(A, u)
                for x in range(NW):
                    cand[x] &= ~(rows[u * NW + x] | cols[u * NW + x])
                bit_clear(cand, u)
        bound -= self._count(A)
        if size >= bound:
            return size
        # the free left and right vertices of S, in one branch-free pass
        for w in range(NW):
            fl = 0
            fr = 0
            bits = S[w]
            while bits:
                t = ctz64(bits)
                bits &= bits - 1
                u = (w << 6) + t
                fl |= (<uint64_t>(ml[u] < 0)) << t
                fr |= (<uint64_t>(mr[u] < 0)) << t
            free_l[w] = fl
            free_r[w] = fr
        # greedy: each free left vertex (in node order) takes its lowest free right one
        for w in range(NW):
            bits = free_l[w]
            while bits and size < bound:
                u = (w << 6) + ctz64(bits)
                bits &= bits - 1
                for x in range(NW):
                    if rows[u * NW + x] & free_r[x]:
                        r = (x << 6) + ctz64(rows[u * NW + x] & free_r[x])
                        ml[u] = r
                        mr[r] = u
                        bit_clear(free_r, r)
                        bit_clear(free_l, u)
                        size += 1
                        break
        for rounds in range(N + 1):
            if size >= bound:
                break
            qt = 0
            for w in range(NW):
                bits = free_l[w]
                while bits:
                    queue[qt] = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    qt += 1
            if qt == 0:
                break
            for w in range(NW):
                seen[w] = ~S[w]
            found = -1
            qh = 0
            while qh < qt and found < 0:
                u = queue[qh]
                qh += 1
                for w in range(NW):
                    bits = rows[u * NW + w] & ~seen[w]
                    if not bits:
                        continue
                    if bits & free_r[w]:
                        # the lowest free one ends the path (the ones below it only had mates)
                        r = (w << 6) + ctz64(bits & free_r[w])
                        parent[r] = u
                        found = r
                        break
                    seen[w] |= bits
                    while bits:
                        r = (w << 6) + ctz64(bits)
                        bits &= bits - 1
                        parent[r] = u
                        queue[qt] = mr[r]
                        qt += 1
            if found < 0:
                # maximum: the left vertices reached and not their right copies form an
                # antichain of |S| - size nodes (König's cover, Fulkerson's construction)
                for w in range(NW):
                    A[w] = 0
                for qh in range(qt):
                    bit_set(A, queue[qh])
                for w in range(NW):
                    A[w] &= ~seen[w]
                break
            r = found
            bit_clear(free_r, r)
            for hops in range(N + 1):
                u = parent[r]
                prev = ml[u]
                ml[u] = r
                mr[r] = u
                if prev < 0:
                    bit_clear(free_l, u)
                    break
                r = prev
            size += 1
        return size

    # ------------------------------------------------------------------ actions
    cdef bint _edge_valid(self, int b, int i, int j) noexcept nogil:
        """i != j, no path i ~> j or j ~> i, EFT_i <= LST_j, both nodes critical."""
        cdef int nn = <int>self.n[b]
        if i == j or i >= nn or j >= nn:
            return False
        if not (bit_in(&self.crit[b, 0], i) and bit_in(&self.crit[b, 0], j)):
            return False
        if bit_in(&self.desc[b, i, 0], j) or bit_in(&self.desc[b, j, 0], i):
            return False
        return self.est[b, i] + self.wcet[b, i] <= self.lft[b, j] - self.wcet[b, j]

    cdef bint _any_valid(self, int b) noexcept nogil:
        return self._scan_valid(b, NULL)

    cdef bint _scan_valid(self, int b, int8_t* m) noexcept nogil:
        """The mask rule over every pair of critical nodes: whether any edge is valid; with m
        given, m[i * N + j] = 1 for each valid edge (m not cleared here), else stop at the first."""
        cdef int N = self.N, NW = self.NW, nn = <int>self.n[b], i, j, w, x
        cdef uint64_t bits, cand
        cdef int64_t eft
        cdef int8_t ok
        cdef bint anyv = False
        cdef uint64_t* crit = &self.s_reach[0]      # the critical nodes that are real nodes
        # sub-env b's rows as plain pointers: the int8 stores into m may alias anything, so the
        # compiler would otherwise reload every memoryview's data pointer and strides per access
        cdef const int64_t* est = &self.est[b, 0]
        cdef const int64_t* lft = &self.lft[b, 0]
        cdef const int64_t* wcet = &self.wcet[b, 0]
        cdef const uint64_t* desc = &self.desc[b, 0, 0]
        cdef const uint64_t* anc = &self.anc[b, 0, 0]
        self._valid_set(nn, crit)
        for w in range(NW):
            crit[w] &= self.crit[b, w]
        for w in range(NW):
            bits = crit[w]
            while bits:
                i = (w << 6) + ctz64(bits)
                bits &= bits - 1
                eft = est[i] + wcet[i]
                for x in range(NW):
                    cand = crit[x] & ~desc[i * NW + x] & ~anc[i * NW + x]
                    if x == w:
                        cand &= ~((<uint64_t>1) << (i & 63))
                    if m == NULL:
                        while cand:
                            j = (x << 6) + ctz64(cand)
                            cand &= cand - 1
                            if eft <= lft[j] - wcet[j]:
                                return True
                    else:
                        while cand:     # m is zero: store the test's outcome, no branch on it
                            j = (x << 6) + ctz64(cand)
                            cand &= cand - 1
                            ok = eft <= lft[j] - wcet[j]
                            m[i * N + j] = ok
                            anyv |= ok
        return anyv

    cdef int64_t _width_with_edge(self, int b, int i, int j) noexcept nogil:
        cdef int N = self.N, NW = self.NW, nn = <int>self.n[b]
        cdef uint64_t* up = &self.s_up[0]
        cdef uint64_t* down = &self.s_down[0]
        memcpy(&self.s_desc[0, 0], &self.desc[b, 0, 0], N * NW * sizeof(uint64_t))
        memcpy(&self.sml[0, 0], &self.mate_l[b, 0], N * sizeof(int32_t))
        memcpy(&self.smr[0, 0], &self.mate_r[b, 0], N * sizeof(int32_t))
        self._edge_sides(b, i, j, up, down)
        memcpy(&self.s_anc[0, 0], &self.anc[b, 0, 0], N * NW * sizeof(uint64_t))
        self._or_rows(&self.s_desc[0, 0], up, down)
        self._or_rows(&self.s_anc[0, 0], down, up)
        self._valid_set(nn, &self.s_valid[0])
        memcpy(&self.s_wit[0], &self.wit[b, 0], NW * sizeof(uint64_t))
        return nn - self._max_matching(&self.s_desc[0, 0], &self.s_anc[0, 0], &self.s_valid[0], &self.sml[0, 0], &self.smr[0, 0],
                                       <int>(nn - self.width[b]), &self.s_wit[0], NULL)

    cdef int64_t _length_with_edge(self, int b, int i, int j) noexcept nogil:
        # longest path through i -> j: (EST_i + C_i) + (D - LST_j), since LST_j = D - tail(j)
        cdef int64_t through = self.est[b, i] + self.wcet[b, i] + self.deadline[b] - (self.lft[b, j] - self.wcet[b, j])
        return through if through > self.length[b] else self.length[b]

    # ------------------------------------------------------------------ outputs
    cdef bint _write_mask(self, int b) noexcept nogil:
        """Valid edges i*N + j; if there is none (only at an episode's end), action 0 alone, so a
        masked sampler always has a choice (the action is ignored there). Returns whether any
        edge is valid."""
        cdef int8_t* m = &self.mask[b, 0]
        memset(m, 0, self.N * self.N)
        cdef bint anyv = self._scan_valid(b, m)
        if not anyv:
            m[0] = 1
        return anyv

    cdef void _write_obs(self, int b, bint after_edge) noexcept nogil:
        """The observation of sub-env b. after_edge: the buffers hold the observation before the
        edge, so only the node features that can have moved (s_up: LFT, s_down: EST, and the nodes
        whose lateral width changed) and the closure rows of s_up are rewritten; the mask always."""
        cdef int N = self.N, NW = self.NW, nn = <int>self.n[b], v, u, w
        cdef double D = <double>self.deadline[b]
        cdef double n_d = <double>nn
        cdef uint64_t bits
        cdef uint64_t* feats = &self.s_reach[0]     # the mask scan is done with it
        cdef uint64_t* rows = &self.s_rows[0]
        cdef float* f
        cdef int8_t* c
        cdef float* fc
        cdef const uint64_t* row
        if self.flat:
            f = &self.obs_flat[b, 0]
        else:
            f = &self.obs_nodes[b, 0, 0]
        if after_edge:
            for w in range(NW):
                feats[w] = self.s_up[w] | self.s_down[w] | self.s_lat_changed[w]
                rows[w] = self.s_up[w]
        else:
            if self.flat:
                memset(f, 0, self.obs_flat.shape[1] * sizeof(float))
            else:
                memset(f, 0, N * NODE_FEATURES * sizeof(float))
                memset(&self.obs_closure[b, 0, 0], 0, N * N)
            self._valid_set(nn, feats)
            self._valid_set(nn, rows)
        for w in range(NW):
            bits = feats[w]
            while bits:
                v = (w << 6) + ctz64(bits)
                bits &= bits - 1
                f[v * NODE_FEATURES + 0] = <float>(<double>self.wcet[b, v] / D)
                f[v * NODE_FEATURES + 1] = <float>(<double>(self.est[b, v] + self.wcet[b, v]) / D)
                f[v * NODE_FEATURES + 2] = <float>(<double>(self.lft[b, v] - self.wcet[b, v]) / D)
                f[v * NODE_FEATURES + 3] = <float>(<double>self.lateral[b, v] / n_d)
                f[v * NODE_FEATURES + 4] = 1.0
        if self.flat:
            fc = f + N * NODE_FEATURES
            for w in range(NW):
                bits = rows[w]
                while bits:
                    u = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    row = &self.desc[b, u, 0]
                    for v in range(nn):
                        fc[u * N + v] = <float>bit_in(row, v)
            fc = fc + N * N
            for v in range(N * N):
                fc[v] = <float>self.mask[b, v]
        else:
            c = &self.obs_closure[b, 0, 0]
            for w in range(NW):
                bits = rows[w]
                while bits:
                    u = (w << 6) + ctz64(bits)
                    bits &= bits - 1
                    row = &self.desc[b, u, 0]
                    for v in range(nn >> 3):        # whole bytes of the row: 8 entries per copy
                        memcpy(c + u * N + (v << 3), &SPREAD[(row[v >> 3] >> ((v & 7) << 3)) & 0xFF][0], 8)
                    for v in range(nn & ~7, nn):
                        c[u * N + v] = <int8_t>bit_in(row, v)
            memcpy(&self.obs_mask[b, 0], &self.mask[b, 0], N * N)

    cdef void _write_metrics(self, int b) noexcept nogil:
        cdef double* m = &self.metrics[b, 0]
        m[0] = <double>self.initial_width[b]
        m[1] = <double>self.width[b]
        m[2] = <double>self.width[b]
        m[3] = <double>self.lower_bound[b]
        m[4] = <double>self.initial_length[b]
        m[5] = <double>self.length[b]
        m[6] = <double>self.deadline[b]
        m[7] = <double>(self.deadline[b] - self.length[b])
        m[8] = <double>self.edges_added[b]
        m[9] = <double>self.invalid[b]
        m[10] = <double>self.n[b]
        m[11] = <double>self.redraws[b]

    # ------------------------------------------------------------------ bitset helpers
    cdef inline void _edge_sides(self, int b, int i, int j, uint64_t* up, uint64_t* down) noexcept nogil:
        """up = {i} + ancestors of i, down = {j} + descendants of j: adding i -> j makes exactly
        the pairs (x in up, y in down) comparable."""
        cdef int w
        for w in range(self.NW):
            up[w] = self.anc[b, i, w]
            down[w] = self.desc[b, j, w]
        bit_set(up, i)
        bit_set(down, j)

    cdef void _new_sides(self, int b, const uint64_t* up, const uint64_t* down) noexcept nogil:
        """Before the closure takes the edge: s_new_up = the nodes of up not yet above all of down,
        s_new_down = those of down not yet below all of up. The new comparable pairs are exactly
        pairs (x, y), x in s_new_up, y in s_new_down (x in up already above y gains nothing).
        gained[k] = how many nodes k of either set becomes comparable to (the nodes its lateral
        set loses)."""
        cdef int NW = self.NW, w, k
        cdef uint64_t bits
        _not_related_to_all(up, down, &self.desc[b, 0, 0], NW, &self.s_new_up[0])
        _not_related_to_all(down, up, &self.anc[b, 0, 0], NW, &self.s_new_down[0])
        for w in range(NW):
            bits = self.s_new_up[w]
            while bits:
                k = (w << 6) + ctz64(bits)
                bits &= bits - 1
                self.gained[k] = _count_minus(down, &self.desc[b, k, 0], NW)
            bits = self.s_new_down[w]
            while bits:
                k = (w << 6) + ctz64(bits)
                bits &= bits - 1
                self.gained[k] = _count_minus(up, &self.anc[b, k, 0], NW)

    cdef inline void _or_rows(self, uint64_t* rows, const uint64_t* which, const uint64_t* value) noexcept nogil:
        """rows[u] |= value for every node u in the set ``which`` (rows: N x NW words)."""
        cdef int w, u
        cdef uint64_t bits
        for w in range(self.NW):
            bits = which[w]
            while bits:
                u = (w << 6) + ctz64(bits)
                bits &= bits - 1
                self._or_into(rows + u * self.NW, value)

    cdef inline void _or_into(self, uint64_t* dst, const uint64_t* src) noexcept nogil:
        cdef int w
        for w in range(self.NW):
            dst[w] |= src[w]

    cdef inline int _count(self, const uint64_t* s) noexcept nogil:
        cdef int w, c = 0
        for w in range(self.NW):
            c += popcount64(s[w])
        return c

    cdef inline void _valid_set(self, int nn, uint64_t* out) noexcept nogil:
        cdef int w
        for w in range(self.NW):
            if nn >= (w + 1) * 64:
                out[w] = ~(<uint64_t>0)
            elif nn > w * 64:
                out[w] = ((<uint64_t>1) << (nn - w * 64)) - 1
            else:
                out[w] = 0
