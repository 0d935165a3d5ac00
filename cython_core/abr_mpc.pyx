# robustMPC for the ABR family (Yin et al., "A Control-Theoretic Approach for Dynamic Adaptive
# Video Streaming over HTTP", SIGCOMM 2015), batched over sub-envs in one nogil loop.
#
# The rule is specified in sysgym/agents/heuristics/abr.py (RobustMPC docstring) and mirrored by
# tests/reference/abr.py. The per-sub-env memory (throughput and error windows, last estimate)
# lives in numpy arrays owned by the Python heuristic.

from libc.stdint cimport int64_t
from libc.math cimport ceil, fabs

from kernel cimport check_batch, shift_left

cdef enum:
    MAX_HORIZON = 16


cdef struct Model:
    int A
    int horizon
    int64_t N
    double chunk_s
    double cap
    double sleep_step
    double mu
    double lam


cdef int search(const Model* m, const double[:, ::1] sizes, const double[::1] quality,
                double buffer_s, int64_t last, int64_t c, double bandwidth) noexcept nogil:
    """First level of the best plan over the next min(horizon, N - c) chunks (exhaustive).

    The rule: among the plans with the largest summed reward, the last one in lexicographic
    order (Pensieve's robustMPC keeps a plan whose reward is >= the best so far). The search
    visits plans in reverse lexicographic order, so the first best plan found is that one and a
    later plan replaces it only if strictly better; a branch is cut when even the top quality for
    every remaining chunk (penalties are <= 0) could not beat the best plan.
    """
    cdef int h = m.horizon
    cdef int d, lv, prev
    cdef int level[MAX_HORIZON]
    cdef double buf[MAX_HORIZON + 1]
    cdef double score[MAX_HORIZON + 1]
    cdef double download[MAX_HORIZON][32]
    cdef double best = -1e300, dl, b, reb, r, q_max = quality[0]
    cdef int best_first = 0
    if m.N - c < h:
        h = <int>(m.N - c)
    if h <= 0:
        return 0
    for lv in range(m.A):
        if quality[lv] > q_max:
            q_max = quality[lv]
    for d in range(h):
        for lv in range(m.A):
            download[d][lv] = sizes[lv, c + d] / bandwidth
    buf[0] = buffer_s
    score[0] = 0.0
    d = 0
    level[0] = m.A
    while d >= 0:
        level[d] -= 1
        if level[d] < 0:
            d -= 1
            continue
        lv = level[d]
        dl = download[d][lv]
        b = buf[d]
        if b < dl:
            reb = dl - b
            b = 0.0
        else:
            reb = 0.0
            b = b - dl
        b = b + m.chunk_s
        if b > m.cap:
            b = b - ceil((b - m.cap) / m.sleep_step) * m.sleep_step
        prev = level[d - 1] if d > 0 else <int>last
        r = quality[lv] - m.mu * reb
        if prev >= 0:
            r = r - m.lam * fabs(quality[lv] - quality[prev])
        score[d + 1] = score[d] + r
        buf[d + 1] = b
        if d + 1 == h:
            if score[h] > best:
                best = score[h]
                best_first = level[0]
        elif score[d + 1] + (h - d - 1) * q_max > best:
            d += 1
            level[d] = m.A
    return best_first


cdef Model _model(dict cfg, int A):
    cdef Model m
    m.A = A
    m.horizon = cfg["horizon"]
    m.N = cfg["num_chunks"]
    m.chunk_s = cfg["chunk_s"]
    m.cap = cfg["buffer_cap_s"]
    m.sleep_step = cfg["sleep_step_s"]
    m.mu = cfg["rebuffer_penalty"]
    m.lam = cfg["smoothness_penalty"]
    if not 1 <= m.horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be in [1, {MAX_HORIZON}], got {m.horizon}")
    if A > 32:
        raise ValueError(f"robustMPC supports at most 32 bitrate levels, got {A}")
    return m


def mpc_search(dict cfg, const double[:, ::1] sizes, const double[::1] quality, double buffer_s,
               int64_t last_level, int64_t chunk_index, double bandwidth):
    """The level robustMPC's exhaustive search picks for one state (bandwidth in bytes/s)."""
    cdef Model m = _model(cfg, sizes.shape[0])
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    return search(&m, sizes, quality, buffer_s, last_level, chunk_index, bandwidth)


def robust_mpc_act(dict cfg, const double[:, ::1] sizes, const double[::1] quality,
                   const int64_t[::1] chunk_index, const double[::1] chunk_bytes,
                   const double[::1] delay_s, const double[::1] buffer_s,
                   const int64_t[::1] last_level, double[:, ::1] thr, double[:, ::1] err,
                   int64_t[::1] n_obs, double[::1] estimate, double[::1] predicted,
                   int64_t[::1] out):
    """One robustMPC decision per sub-env, updating its throughput/error memory in place."""
    cdef Model m = _model(cfg, sizes.shape[0])
    cdef int64_t first_level = cfg["first_level"]
    cdef int B = chunk_index.shape[0]
    cdef int W = thr.shape[1]
    cdef int b, j, n
    cdef double measured, error, inv_sum, harmonic, max_err
    for name, rows in (("chunk_bytes", chunk_bytes.shape[0]), ("delay_s", delay_s.shape[0]),
                       ("buffer_s", buffer_s.shape[0]), ("last_level", last_level.shape[0]),
                       ("thr", thr.shape[0]), ("err", err.shape[0]), ("n_obs", n_obs.shape[0]),
                       ("estimate", estimate.shape[0]), ("predicted", predicted.shape[0]),
                       ("out", out.shape[0])):
        check_batch(rows, B, name)
    if err.shape[1] != W:
        raise ValueError(f"err must have the window of thr ({W} columns), got {err.shape[1]}")
    with nogil:
        for b in range(B):
            if chunk_index[b] == 0:
                n_obs[b] = 0
                estimate[b] = 0.0
                predicted[b] = 0.0
                out[b] = first_level
                continue
            measured = chunk_bytes[b] / delay_s[b]
            error = 0.0
            if n_obs[b] > 0:
                error = fabs(estimate[b] - measured) / measured
            shift_left(&thr[b, 0], W, 1)
            shift_left(&err[b, 0], W, 1)
            thr[b, W - 1] = measured
            err[b, W - 1] = error
            if n_obs[b] < W:
                n_obs[b] += 1
            n = <int>n_obs[b]
            inv_sum = 0.0
            max_err = 0.0
            for j in range(W - n, W):
                inv_sum += 1.0 / thr[b, j]
                if err[b, j] > max_err:
                    max_err = err[b, j]
            harmonic = 1.0 / (inv_sum / n)
            estimate[b] = harmonic
            predicted[b] = harmonic / (1.0 + max_err)
            out[b] = search(&m, sizes, quality, buffer_s[b], last_level[b], chunk_index[b], predicted[b])
