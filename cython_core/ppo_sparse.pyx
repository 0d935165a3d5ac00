# Sparse first-layer products for the PPO fast path (sysgym/agents/ppo/fastgrad.py) on image
# observations such as DeepRM's: an image row seldom differs from the next one (a job occupies
# the same cells for its whole duration), so the row differences D[t] = x[t] - x[t+1] (x[T] = 0)
# are far sparser than the image. With C[t] = W[0] + ... + W[t] (prefix sums over rows of the
# weights, stored one input per row), x . W = D . C; and the weight gradient is the suffix sum
# over rows of D^T dz. This module encodes D, runs the two sparse products, and runs Adam (on the
# whole flat parameter vector, or on the first layer with its gradient made one image row at a
# time and never written out); the callers check every shape and index first (the loops trust them).

import numpy as np

from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset


cdef extern from *:
    """
    /* the number of c < n with a[c] - b[c] != 0 (b NULL: a[c] != 0); branch-free, so it vectorises */
    static int64_t sysgym_count_differences(const float *a, const float *b, Py_ssize_t n) {
        int64_t k = 0;
        if (b == NULL) {
            for (Py_ssize_t c = 0; c < n; c++) k += a[c] != 0;
        } else {
            for (Py_ssize_t c = 0; c < n; c++) k += (a[c] - b[c]) != 0;
        }
        return k;
    }
    """
    int64_t sysgym_count_differences(const float* a, const float* b, Py_ssize_t n) nogil


def encode_row_differences(const float[:, :, ::1] x):
    """(indptr (N + 1,) int64, cols int32, vals float32): per sample i of ``x`` (N, T, L), the
    nonzero entries of D[t, c] = x[i, t, c] - x[i, t + 1, c] (x[i, T] = 0) in the CSR layout,
    column t * L + c, ascending."""
    cdef Py_ssize_t N = x.shape[0], T = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t i, t, c
    cdef int64_t k
    cdef float d
    cdef const float* a
    indptr = np.empty(N + 1, dtype=np.int64)
    counts = np.empty(N * T, dtype=np.int64)   # per image row: its entries (0: skipped below)
    cdef int64_t[::1] ip = indptr, nr = counts
    with nogil:
        k = 0
        ip[0] = 0
        for i in range(N):
            for t in range(T):
                a = &x[i, t, 0]
                nr[i * T + t] = sysgym_count_differences(a, a + L if t + 1 < T else NULL, L)
                k += nr[i * T + t]
            ip[i + 1] = k
    cols = np.empty(k + 1, dtype=np.int32)     # one spare entry: the loop below stores before it counts
    vals = np.empty(k + 1, dtype=np.float32)
    cdef int32_t[::1] cv = cols
    cdef float[::1] vv = vals
    with nogil:
        k = 0
        for i in range(N):
            for t in range(T):
                if nr[i * T + t] == 0:
                    continue
                a = &x[i, t, 0]
                for c in range(L):
                    d = a[c] - a[L + c] if t + 1 < T else a[c]
                    cv[k] = <int32_t>(t * L + c)
                    vv[k] = d
                    k += d != 0
    return indptr, cols[:k], vals[:k]


def sparse_rows_product(const float[:, ::1] weight, Py_ssize_t rows, const int64_t[::1] indptr,
                        const int32_t[::1] cols, const float[::1] vals, const int64_t[::1] ids,
                        float[:, ::1] out, float[:, ::1] prefix):
    """out[i] = D_i . C for the samples ids[i], C the prefix sums over image rows of ``weight``
    ((rows * L, H), one input per row): image row by image row, C[t] = C[t - 1] + weight[t] is
    kept in ``prefix`` ((L, H)) and each sample's entries of row t are added (ascending order)."""
    cdef Py_ssize_t n = ids.shape[0], H = weight.shape[1], L = prefix.shape[0], i, h, j, t, c
    cdef int64_t k, end
    cdef float v
    cdef float* row
    cdef float* pre = &prefix[0, 0]
    cdef const float* src
    cursor = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] cur = cursor
    with nogil:
        for i in range(n):
            memset(&out[i, 0], 0, H * sizeof(float))
            cur[i] = indptr[ids[i]]
        for t in range(rows):
            src = &weight[t * L, 0]
            if t == 0:
                for j in range(L * H):
                    pre[j] = src[j]
            else:
                for j in range(L * H):
                    pre[j] = pre[j] + src[j]
            for i in range(n):
                row = &out[i, 0]
                end = indptr[ids[i] + 1]
                k = cur[i]
                while k < end and cols[k] < (t + 1) * L:
                    c = cols[k] - t * L
                    v = vals[k]
                    k += 1
                    if c < 0:
                        continue
                    for h in range(H):
                        row[h] += v * pre[c * H + h]
                cur[i] = k


def sparse_rows_lookup(const float[:, ::1] table, const int64_t[::1] indptr, const int32_t[::1] cols,
                       const float[::1] vals, const int64_t[::1] ids, float[:, ::1] out):
    """out[i] = sum over the entries k of sample ids[i] of vals[k] * table[cols[k]] (ascending), with
    ``table`` the prefix sums C themselves ((rows * L, H)): the same sums as
    :func:`sparse_rows_product` without recomputing C."""
    cdef Py_ssize_t n = ids.shape[0], H = table.shape[1], i, h
    cdef int64_t k
    cdef float v
    cdef float* row
    cdef const float* src
    with nogil:
        for i in range(n):
            row = &out[i, 0]
            memset(row, 0, H * sizeof(float))
            for k in range(indptr[ids[i]], indptr[ids[i] + 1]):
                v = vals[k]
                src = &table[cols[k], 0]
                for h in range(H):
                    row[h] += v * src[h]


cdef extern from *:
    """
    #include <math.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* One Adam step (float32) on n entries, the gradient times coef (1 when not clipping). The
       update is PyTorch's lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) with sqrt(bc2) folded into
       step = lr sqrt(bc2) / bc1 and eps_hat = eps sqrt(bc2): one division per entry instead of two. */
    static void sysgym_adam(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                            Py_ssize_t n, float coef, float b1, float c1, float b2, float c2, float step,
                            float eps_hat) {
        Py_ssize_t i = 0;
    #if defined(__SSE2__)  /* four entries at a time, the same IEEE operations as the loop below */
        const __m128 vcoef = _mm_set1_ps(coef), vb1 = _mm_set1_ps(b1), vc1 = _mm_set1_ps(c1),
                     vb2 = _mm_set1_ps(b2), vc2 = _mm_set1_ps(c2), vstep = _mm_set1_ps(step),
                     veps = _mm_set1_ps(eps_hat);
        for (; i + 4 <= n; i += 4) {
            __m128 gi = _mm_mul_ps(_mm_loadu_ps(g + i), vcoef);
            __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
            __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
            _mm_storeu_ps(m + i, mi);
            _mm_storeu_ps(v + i, vi);
            __m128 d = _mm_add_ps(_mm_sqrt_ps(vi), veps);
            _mm_storeu_ps(p + i, _mm_sub_ps(_mm_loadu_ps(p + i), _mm_div_ps(_mm_mul_ps(vstep, mi), d)));
        }
    #endif
        for (; i < n; i++) {
            float gi = g[i] * coef;
            float mi = b1 * m[i] + c1 * gi;
            float vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] - step * mi / (sqrtf(vi) + eps_hat);
        }
    }
    """
    void sysgym_adam(float* p, const float* g, float* m, float* v, Py_ssize_t n, float coef, float b1, float c1,
                     float b2, float c2, float step, float eps_hat) nogil


cdef inline void _gradient_row(float* dst, const float* below, Py_ssize_t t, Py_ssize_t L, Py_ssize_t H,
                               Py_ssize_t n, const int64_t* indptr, const int32_t* cols, const float* vals,
                               const int64_t* ids, const float* dz, int64_t* cur, float* sq) noexcept nogil:
    """Image row t of x^T dz into ``dst`` ((L, H)): ``below`` (row t + 1, already in ``dst`` when
    the two are the same buffer; NULL for the last row: zeros) plus the entries of row t, samples in
    order, entries in descending order; adds the squares of the row to ``sq`` (H) unless NULL.
    Every caller runs these same operations, so their rows agree bit for bit."""
    cdef Py_ssize_t i, h, j, c
    cdef int64_t k, start
    cdef float v
    cdef const float* src
    if below == NULL:
        memset(dst, 0, L * H * sizeof(float))
    elif below != dst:
        for j in range(L * H):
            dst[j] = below[j]
    for i in range(n):
        src = dz + i * H
        start = indptr[ids[i]]
        k = cur[i]
        while k > start and cols[k - 1] >= t * L:
            k -= 1
            c = cols[k] - t * L
            if c >= L:
                continue
            v = vals[k]
            for h in range(H):
                dst[c * H + h] += v * src[h]
        cur[i] = k
    if sq != NULL:
        for j in range(L):
            for h in range(H):
                sq[h] += dst[j * H + h] * dst[j * H + h]


cdef int64_t[::1] _cursors(const int64_t[::1] indptr, const int64_t[::1] ids):
    """Per sample, one past its last entry (the backward walks the entries from the end)."""
    cursor = np.empty(ids.shape[0], dtype=np.int64)
    cdef int64_t[::1] cur = cursor
    cdef Py_ssize_t i
    for i in range(ids.shape[0]):
        cur[i] = indptr[ids[i] + 1]
    return cur


cdef double _gradient_squares(Py_ssize_t rows, Py_ssize_t L, const int64_t[::1] indptr, const int32_t[::1] cols,
                              const float[::1] vals, const int64_t[::1] ids, const float[:, ::1] dz, float* base,
                              Py_ssize_t stride):
    """Every image row of x^T dz, from the last, into base + t * stride (stride 0: one row buffer
    reused); returns the sum of their squares (float32 partial sums per column, added in double)."""
    cdef Py_ssize_t n = ids.shape[0], H = dz.shape[1], t, h
    cdef double total = 0
    cdef int64_t[::1] cur = _cursors(indptr, ids)
    squares = np.zeros(H, dtype=np.float32)
    cdef float[::1] sq = squares
    with nogil:
        for t in range(rows - 1, -1, -1):
            _gradient_row(base + t * stride, base + (t + 1) * stride if t < rows - 1 else NULL, t, L, H, n,
                          &indptr[0], &cols[0] if cols.shape[0] else NULL, &vals[0] if vals.shape[0] else NULL,
                          &ids[0] if n else NULL, &dz[0, 0] if n else NULL, &cur[0] if n else NULL, &sq[0])
        for h in range(H):
            total += sq[h]
    return total


def sparse_rows_gradient(Py_ssize_t rows, const int64_t[::1] indptr, const int32_t[::1] cols,
                         const float[::1] vals, const int64_t[::1] ids, const float[:, ::1] dz,
                         float[:, ::1] out):
    """out = x^T dz for the samples ids[i] ((rows * L, H), one input per row): the suffix sums over
    image rows of D^T dz, image row by image row from the last: out[t] = out[t + 1] + the
    entries of row t (samples in order, entries in descending order) times dz. Returns the sum of
    the squares of ``out`` (float32 partial sums per column of ``out``, added in double)."""
    cdef Py_ssize_t L = out.shape[0] // rows
    return _gradient_squares(rows, L, indptr, cols, vals, ids, dz, &out[0, 0], L * dz.shape[1])


def sparse_rows_squares(Py_ssize_t rows, const int64_t[::1] indptr, const int32_t[::1] cols,
                        const float[::1] vals, const int64_t[::1] ids, const float[:, ::1] dz,
                        float[:, ::1] row):
    """What :func:`sparse_rows_gradient` returns (the sum of the squares of x^T dz, the same
    number bit for bit) without writing x^T dz: each image row is built in ``row`` ((L, H)) and
    dropped."""
    return _gradient_squares(rows, row.shape[0], indptr, cols, vals, ids, dz, &row[0, 0], 0)


def sparse_rows_adam(Py_ssize_t rows, const int64_t[::1] indptr, const int32_t[::1] cols,
                     const float[::1] vals, const int64_t[::1] ids, const float[:, ::1] dz,
                     float[:, ::1] row, float[::1] param, float[::1] exp_avg, float[::1] exp_avg_sq,
                     float coef, double beta1, double beta2, float step_size, float eps_hat):
    """:func:`adam_step` on the first-layer weights ``param`` (rows * L * H entries, one input per
    row of H) with the gradient x^T dz, built image row by image row in ``row`` ((L, H)) as
    :func:`sparse_rows_gradient` builds it (the same numbers) and used while it is in cache: the
    gradient is never written out."""
    cdef Py_ssize_t n = ids.shape[0], H = dz.shape[1], L = row.shape[0], t, block = L * H
    cdef float b1 = <float>beta1, b2 = <float>beta2, c1 = <float>(1.0 - beta1), c2 = <float>(1.0 - beta2)
    cdef int64_t[::1] cur = _cursors(indptr, ids)
    if param.shape[0] != rows * block or exp_avg.shape[0] != rows * block or exp_avg_sq.shape[0] != rows * block:
        raise ValueError(f"param, exp_avg and exp_avg_sq must have {rows} x {L} x {H} entries")
    with nogil:
        for t in range(rows - 1, -1, -1):
            _gradient_row(&row[0, 0], &row[0, 0] if t < rows - 1 else NULL, t, L, H, n, &indptr[0],
                          &cols[0] if cols.shape[0] else NULL, &vals[0] if vals.shape[0] else NULL, &ids[0] if n else NULL,
                          &dz[0, 0] if n else NULL, &cur[0] if n else NULL, NULL)
            sysgym_adam(&param[t * block], &row[0, 0], &exp_avg[t * block], &exp_avg_sq[t * block], block,
                        coef, b1, c1, b2, c2, step_size, eps_hat)


def adam_step(float[::1] param, const float[::1] grad, float[::1] exp_avg, float[::1] exp_avg_sq, float coef,
              double beta1, double beta2, float step_size, float eps_hat):
    """One Adam step in place on ``param`` / ``exp_avg`` / ``exp_avg_sq`` with the gradient
    ``grad * coef`` (``grad`` is not written): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g g,
    param -= step_size m / (sqrt(v) + eps_hat)."""
    cdef Py_ssize_t n = param.shape[0]
    cdef float b1 = <float>beta1, b2 = <float>beta2, c1 = <float>(1.0 - beta1), c2 = <float>(1.0 - beta2)
    if grad.shape[0] != n or exp_avg.shape[0] != n or exp_avg_sq.shape[0] != n:
        raise ValueError("param, grad, exp_avg and exp_avg_sq must have the same length")
    if n == 0:
        return
    with nogil:
        sysgym_adam(&param[0], &grad[0], &exp_avg[0], &exp_avg_sq[0], n, coef, b1, c1, b2, c2, step_size, eps_hat)
