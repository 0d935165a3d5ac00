# Sparse first-layer products for the PPO fast path (sysgym/agents/ppo/fastgrad.py) on image
# observations such as DeepRM's: an image row seldom differs from the next one (a job occupies
# the same cells for its whole duration), so the row differences D[t] = x[t] - x[t+1] (x[T] = 0)
# are far sparser than the image. With C[t] = W[0] + ... + W[t] (prefix sums over rows of the
# weights, stored one input per row), x . W = D . C; and the weight gradient is the suffix sum
# over rows of D^T dz. This module only encodes D and runs the two sparse products; the callers
# check every shape and index first (the loops below trust them).

import numpy as np

from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset


def encode_row_differences(const float[:, :, ::1] x):
    """(indptr (N + 1,) int64, cols int32, vals float32): per sample i of ``x`` (N, T, L), the
    nonzero entries of D[t, c] = x[i, t, c] - x[i, t + 1, c] (x[i, T] = 0) in the CSR layout,
    column t * L + c, ascending."""
    cdef Py_ssize_t N = x.shape[0], T = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t i, t, c
    cdef int64_t k
    cdef float d
    indptr = np.empty(N + 1, dtype=np.int64)
    cdef int64_t[::1] ip = indptr
    with nogil:
        k = 0
        ip[0] = 0
        for i in range(N):
            for t in range(T):
                for c in range(L):
                    d = x[i, t, c] - x[i, t + 1, c] if t + 1 < T else x[i, t, c]
                    if d != 0:
                        k += 1
            ip[i + 1] = k
    cols = np.empty(k, dtype=np.int32)
    vals = np.empty(k, dtype=np.float32)
    cdef int32_t[::1] cv = cols
    cdef float[::1] vv = vals
    with nogil:
        k = 0
        for i in range(N):
            for t in range(T):
                for c in range(L):
                    d = x[i, t, c] - x[i, t + 1, c] if t + 1 < T else x[i, t, c]
                    if d != 0:
                        cv[k] = <int32_t>(t * L + c)
                        vv[k] = d
                        k += 1
    return indptr, cols, vals


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


def sparse_rows_gradient(Py_ssize_t rows, const int64_t[::1] indptr, const int32_t[::1] cols,
                         const float[::1] vals, const int64_t[::1] ids, const float[:, ::1] dz,
                         float[:, ::1] out):
    """out = x^T dz for the samples ids[i] ((rows * L, H), one input per row): the suffix sums over
    image rows of D^T dz, image row by image row from the last: out[t] = out[t + 1] + the
    entries of row t (samples in order, entries in descending order) times dz. Returns the sum of
    the squares of ``out`` (float32 partial sums per column of ``out``, added in double)."""
    cdef Py_ssize_t n = ids.shape[0], H = dz.shape[1], L = out.shape[0] // rows, i, h, j, t, c
    cdef int64_t k, start
    cdef float v
    cdef float* dst
    cdef const float* src
    cdef float* g = &out[0, 0]
    cdef double total = 0
    cursor = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] cur = cursor
    squares = np.zeros(H, dtype=np.float32)
    cdef float[::1] sq = squares
    with nogil:
        for i in range(n):
            cur[i] = indptr[ids[i] + 1]
        for t in range(rows - 1, -1, -1):
            dst = g + t * L * H
            if t == rows - 1:
                memset(dst, 0, L * H * sizeof(float))
            else:
                for j in range(L * H):
                    dst[j] = dst[L * H + j]
            for i in range(n):
                src = &dz[i, 0]
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
            for j in range(L):
                for h in range(H):
                    sq[h] += dst[j * H + h] * dst[j * H + h]
        for h in range(H):
            total += sq[h]
    return total
