# The PPO fast path's small kernels in C (sysgym/agents/ppo/fastact.py, fastgrad.py): a float32
# tanh, the tanh derivative of the backward pass, and the whole rollout step of an MLP
# actor-critic with a masked categorical head (forward pass, log-softmax, Gumbel-max sampling,
# value) for the few rows of one vector-env step, where numpy's per-call cost dominates.
# Rounding: sums run in float32 in a fixed order (not BLAS's) and tanh / exp / log are this file's
# and libm's, so results agree with the numpy path to float32 rounding, not bit for bit
# (tests/agents/test_ppo_forward.py). The callers check shapes and dtypes (the loops trust them).

import numpy as np

from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc


cdef extern from *:
    """
    #include <math.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* tanh for float32 by a rational function of x (odd numerator of degree 13 over an even
       denominator of degree 6; the coefficients are Eigen's fast float tanh): x clamped to
       [-7.905, 7.905] (where tanh rounds to +-1), x itself below 4e-4 in size. Relative error
       below 4e-7 over every float (tests/agents/test_ppo_forward.py); NaN stays NaN. The SSE2 and
       scalar loops run the same IEEE operations, so every entry gets the same result. */
    #define SYSGYM_TANH_CLAMP 7.90531110763549805f
    #define SYSGYM_TANH_TINY 0.0004f
    static const float sysgym_tanh_p[7] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f,
                                           5.12229709037114e-08f, 1.48572235717979e-05f, 6.37261928875436e-04f,
                                           4.89352455891786e-03f};
    static const float sysgym_tanh_q[4] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f,
                                           4.89352518554385e-03f};
    static inline float sysgym_tanh1(float v) {
        float x = SYSGYM_TANH_CLAMP < v ? SYSGYM_TANH_CLAMP : v;   /* minps(clamp, v): NaN passes */
        x = -SYSGYM_TANH_CLAMP > x ? -SYSGYM_TANH_CLAMP : x;
        float x2 = x * x, p = sysgym_tanh_p[0], q = sysgym_tanh_q[0];
        for (int k = 1; k < 7; k++) p = p * x2 + sysgym_tanh_p[k];
        for (int k = 1; k < 4; k++) q = q * x2 + sysgym_tanh_q[k];
        return fabsf(v) < SYSGYM_TANH_TINY ? v : (p * x) / q;
    }
    static void sysgym_tanh(float *a, Py_ssize_t n) {
        Py_ssize_t i = 0;
    #if defined(__SSE2__)
        const __m128 hi = _mm_set1_ps(SYSGYM_TANH_CLAMP), lo = _mm_set1_ps(-SYSGYM_TANH_CLAMP),
                     tiny = _mm_set1_ps(SYSGYM_TANH_TINY), sign = _mm_set1_ps(-0.0f);
        for (; i + 4 <= n; i += 4) {
            __m128 v = _mm_loadu_ps(a + i);
            __m128 x = _mm_max_ps(lo, _mm_min_ps(hi, v));
            __m128 x2 = _mm_mul_ps(x, x), p = _mm_set1_ps(sysgym_tanh_p[0]), q = _mm_set1_ps(sysgym_tanh_q[0]);
            for (int k = 1; k < 7; k++) p = _mm_add_ps(_mm_mul_ps(p, x2), _mm_set1_ps(sysgym_tanh_p[k]));
            for (int k = 1; k < 4; k++) q = _mm_add_ps(_mm_mul_ps(q, x2), _mm_set1_ps(sysgym_tanh_q[k]));
            __m128 r = _mm_div_ps(_mm_mul_ps(p, x), q);
            __m128 small = _mm_cmplt_ps(_mm_andnot_ps(sign, v), tiny);
            _mm_storeu_ps(a + i, _mm_or_ps(_mm_and_ps(small, v), _mm_andnot_ps(small, r)));
        }
    #endif
        for (; i < n; i++) a[i] = sysgym_tanh1(a[i]);
    }
    /* h[r, :] = tanh(h[r, :] + bias) for r < rows: numpy's h += bias, then this file's tanh */
    static void sysgym_bias_tanh(float *h, const float *bias, Py_ssize_t rows, Py_ssize_t width) {
        for (Py_ssize_t r = 0; r < rows; r++) {
            float *o = h + r * width;
            for (Py_ssize_t j = 0; j < width; j++) o[j] = o[j] + bias[j];
            sysgym_tanh(o, width);
        }
    }
    /* dz = dz - (h h) dz: the error through tanh, the numpy path's three operations in its order */
    static void sysgym_tanh_backward(const float *restrict h, float *restrict dz, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) {
            float t = h[i] * h[i];
            t = t * dz[i];
            dz[i] = dz[i] - t;
        }
    }
    /* out[r, :m] = act(sum_i x[r, i] wt[i, :m] + bias) for r < rows (act 0: none, 1: tanh, 2: relu);
       wt is (n, m) row-major, x and out have row strides ldx and ldo; each sum runs over i upwards
       from 0, the bias added last (the same operations for every output, SSE2 or not). With SSE2,
       16 outputs of two rows at a time are kept in registers (each weight load serves both rows). */
    static void sysgym_dense(const float *x, Py_ssize_t ldx, Py_ssize_t rows, Py_ssize_t n, const float *wt,
                             Py_ssize_t m, const float *bias, float *out, Py_ssize_t ldo, int act) {
        Py_ssize_t r = 0, h, i;
    #if defined(__SSE2__)
        for (; r + 2 <= rows; r += 2) {
            const float *xa = x + r * ldx, *xb = xa + ldx;
            float *oa = out + r * ldo, *ob = oa + ldo;
            for (h = 0; h + 16 <= m; h += 16) {
                __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                for (i = 0; i < n; i++) {
                    const float *w = wt + i * m + h;
                    const __m128 w0 = _mm_loadu_ps(w), w1 = _mm_loadu_ps(w + 4), w2 = _mm_loadu_ps(w + 8),
                                 w3 = _mm_loadu_ps(w + 12), u = _mm_set1_ps(xa[i]), v = _mm_set1_ps(xb[i]);
                    a0 = _mm_add_ps(a0, _mm_mul_ps(u, w0)); a1 = _mm_add_ps(a1, _mm_mul_ps(u, w1));
                    a2 = _mm_add_ps(a2, _mm_mul_ps(u, w2)); a3 = _mm_add_ps(a3, _mm_mul_ps(u, w3));
                    b0 = _mm_add_ps(b0, _mm_mul_ps(v, w0)); b1 = _mm_add_ps(b1, _mm_mul_ps(v, w1));
                    b2 = _mm_add_ps(b2, _mm_mul_ps(v, w2)); b3 = _mm_add_ps(b3, _mm_mul_ps(v, w3));
                }
                const float *c = bias + h;
                _mm_storeu_ps(oa + h, _mm_add_ps(a0, _mm_loadu_ps(c)));
                _mm_storeu_ps(oa + h + 4, _mm_add_ps(a1, _mm_loadu_ps(c + 4)));
                _mm_storeu_ps(oa + h + 8, _mm_add_ps(a2, _mm_loadu_ps(c + 8)));
                _mm_storeu_ps(oa + h + 12, _mm_add_ps(a3, _mm_loadu_ps(c + 12)));
                _mm_storeu_ps(ob + h, _mm_add_ps(b0, _mm_loadu_ps(c)));
                _mm_storeu_ps(ob + h + 4, _mm_add_ps(b1, _mm_loadu_ps(c + 4)));
                _mm_storeu_ps(ob + h + 8, _mm_add_ps(b2, _mm_loadu_ps(c + 8)));
                _mm_storeu_ps(ob + h + 12, _mm_add_ps(b3, _mm_loadu_ps(c + 12)));
            }
            for (; h < m; h++) {
                float s = 0, t = 0;
                for (i = 0; i < n; i++) { s += xa[i] * wt[i * m + h]; t += xb[i] * wt[i * m + h]; }
                oa[h] = s + bias[h];
                ob[h] = t + bias[h];
            }
        }
    #endif
        for (; r < rows; r++) {
            const float *xr = x + r * ldx;
            float *o = out + r * ldo;
            for (h = 0; h < m; h++) {
                float s = 0;
                for (i = 0; i < n; i++) s += xr[i] * wt[i * m + h];
                o[h] = s + bias[h];
            }
        }
        for (r = 0; r < rows; r++) {
            float *o = out + r * ldo;
            if (act == 1) sysgym_tanh(o, m);
            else if (act == 2) for (h = 0; h < m; h++) o[h] = o[h] < 0.0f ? 0.0f : o[h];
        }
    }
    /* One row of the masked categorical: z (k logits) becomes log-softmax (masked entries get the
       logit masked_logit first), and the action is the first argmax of g + log p (Gumbel-max);
       returns it and its log-probability in *logp. */
    static int64_t sysgym_sample_row(float *z, const uint8_t *mask, const double *g, Py_ssize_t k,
                                     float masked_logit, float *logp) {
        Py_ssize_t j, best = 0;
        float top, total = 0.0f, log_total;
        double v, best_v = 0.0;
        if (mask != NULL)
            for (j = 0; j < k; j++) if (!mask[j]) z[j] = masked_logit;
        top = z[0];
        for (j = 1; j < k; j++) if (z[j] > top) top = z[j];
        for (j = 0; j < k; j++) { z[j] = z[j] - top; total += expf(z[j]); }
        log_total = logf(total);
        for (j = 0; j < k; j++) {
            z[j] = z[j] - log_total;
            v = g[j] + (double)z[j];
            if (j == 0 || v > best_v) { best = j; best_v = v; }
        }
        *logp = z[best];
        return (int64_t)best;
    }
    /* The categorical PPO loss's gradient with respect to the logits and the value (fastgrad's
       ManualGradients.__call__ without value clipping), per sample i of n (columns of the (k, n)
       arrays): masked log-softmax of z (overwritten by log p) and p, the clipped surrogate's
       d logp, d_out = p ((log p + H) c_e / n - d logp) + onehot(a) d logp, dv = (v - R) c_v / n;
       stats = [policy loss, value loss, entropy, approx KL, clip fraction] (means in double).
       Float32 throughout as numpy's path; sums run in index order. */
    static void sysgym_categorical_loss(float *z, float *p, const uint8_t *mask, const int64_t *actions,
                                        const float *old_logp, const float *adv, const float *ret,
                                        const float *value, Py_ssize_t k, Py_ssize_t n, float masked_logit,
                                        double clip_coef, double ent_scale, double vf_scale, int norm_adv,
                                        float *logp, float *neg_ent, float *d_logp, float *d_out, float *dv,
                                        double *stats) {
        Py_ssize_t i, j;
        float lo = (float)(1.0 - clip_coef), hi = (float)(1.0 + clip_coef), clip = (float)clip_coef;
        float mean = 0.0f, ss = 0.0f, step, c_e = (float)ent_scale, c_v = (float)vf_scale;
        double scale = 1.0, pg = 0.0, vl = 0.0, ent = 0.0, kl = 0.0, cf = 0.0;
        for (i = 0; i < n; i++) {
            float top, total = 0.0f, log_total, h = 0.0f;
            if (mask != NULL)
                for (j = 0; j < k; j++) if (!mask[i * k + j]) z[j * n + i] = masked_logit;
            top = z[i];
            for (j = 1; j < k; j++) if (z[j * n + i] > top) top = z[j * n + i];
            for (j = 0; j < k; j++) {
                z[j * n + i] = z[j * n + i] - top;
                p[j * n + i] = expf(z[j * n + i]);
                total += p[j * n + i];
            }
            log_total = logf(total);
            for (j = 0; j < k; j++) {
                p[j * n + i] = p[j * n + i] / total;
                z[j * n + i] = z[j * n + i] - log_total;
                h += p[j * n + i] * z[j * n + i];
            }
            logp[i] = z[actions[i] * n + i];
            neg_ent[i] = h;
        }
        if (norm_adv && n > 1) {
            for (i = 0; i < n; i++) mean += adv[i];
            mean = mean / (float)n;
            for (i = 0; i < n; i++) ss += (adv[i] - mean) * (adv[i] - mean);
            scale = 1.0 / (sqrt((double)ss / (double)(n - 1)) + 1e-8);
        }
        step = (float)(-scale / (double)n);
        for (i = 0; i < n; i++) {
            float a = norm_adv && n > 1 ? adv[i] - mean : adv[i];
            float log_ratio = logp[i] - old_logp[i], ratio = expf(log_ratio);
            float r = ratio < lo ? lo : ratio;
            r = r > hi ? hi : r;
            float unclipped = a * ratio, clipped = a * r;
            d_logp[i] = (unclipped <= clipped ? unclipped : 0.0f) * step;
            float error = value[i] - ret[i];
            dv[i] = error * c_v;
            pg += unclipped < clipped ? unclipped : clipped;
            vl += (double)error * error;
            ent += neg_ent[i];
            kl += (double)(ratio - 1.0f) - log_ratio;
            cf += fabsf(ratio - 1.0f) > clip;
        }
        for (j = 0; j < k; j++)
            for (i = 0; i < n; i++) {
                float g = (z[j * n + i] - neg_ent[i]) * c_e;
                d_out[j * n + i] = (g - d_logp[i]) * p[j * n + i];
            }
        for (i = 0; i < n; i++) d_out[actions[i] * n + i] += d_logp[i];
        stats[0] = -pg / n * scale;
        stats[1] = 0.5 * vl / n;
        stats[2] = -ent / n;
        stats[3] = kl / n;
        stats[4] = cf / n;
    }
    """
    void sysgym_tanh(float* a, Py_ssize_t n) nogil
    void sysgym_bias_tanh(float* h, const float* bias, Py_ssize_t rows, Py_ssize_t width) nogil
    void sysgym_tanh_backward(const float* h, float* dz, Py_ssize_t n) nogil
    void sysgym_dense(const float* x, Py_ssize_t ldx, Py_ssize_t rows, Py_ssize_t n, const float* wt, Py_ssize_t m,
                      const float* bias, float* out, Py_ssize_t ldo, int act) nogil
    void sysgym_categorical_loss(float* z, float* p, const uint8_t* mask, const int64_t* actions,
                                 const float* old_logp, const float* adv, const float* ret, const float* value,
                                 Py_ssize_t k, Py_ssize_t n, float masked_logit, double clip_coef, double ent_scale,
                                 double vf_scale, int norm_adv, float* logp, float* neg_ent, float* d_logp,
                                 float* d_out, float* dv, double* stats) nogil
    int64_t sysgym_sample_row(float* z, const uint8_t* mask, const double* g, Py_ssize_t k, float masked_logit,
                              float* logp) nogil


def tanh(float[::1] a):
    """tanh in place on ``a`` (float32, contiguous; see the module's rounding note)."""
    if a.shape[0]:
        with nogil:
            sysgym_tanh(&a[0], a.shape[0])


def bias_tanh(float[:, ::1] h, const float[::1] bias):
    """h = tanh(h + bias) in place, ``bias`` added to every row (the same numbers as numpy's
    ``h += bias`` followed by :func:`tanh`)."""
    if h.shape[1] != bias.shape[0]:
        raise ValueError(f"bias of {bias.shape[0]} entries for rows of {h.shape[1]}")
    if h.shape[0] and h.shape[1]:
        with nogil:
            sysgym_bias_tanh(&h[0, 0], &bias[0], h.shape[0], h.shape[1])


def tanh_backward(const float[::1] h, float[::1] dz):
    """dz -= h^2 dz in place (the error through tanh, given its outputs ``h``): the same operations
    in the same order as numpy's ``t = h * h; t *= dz; dz -= t``."""
    if h.shape[0] != dz.shape[0]:
        raise ValueError("h and dz must have the same length")
    if h.shape[0]:
        with nogil:
            sysgym_tanh_backward(&h[0], &dz[0], h.shape[0])


cdef class FrozenPolicy:
    """The rollout step of an MLP actor-critic with a masked categorical head, on copies of its
    weights taken at construction (valid while they do not change: a rollout).

    ``ops`` lists the dense layers in order as (wt, bias, src, src_offset, dst, dst_offset): wt the
    (inputs, outputs) weights (transposed from torch's layout), ``src`` -1 for the input rows or the
    index of an earlier layer's activations, offsets in columns. ``widths`` are the trunk layers'
    widths; the actor head reads columns ``[0, head inputs)`` of the last layer, the value head the
    ``value_offset`` columns onwards. ``act``: 1 tanh, 2 ReLU.
    """

    cdef list keep
    cdef Py_ssize_t n_ops, rows, n_in, n_out, n_head_in, n_layers, value_offset
    cdef float masked_logit
    cdef int act
    cdef const float** wt
    cdef const float** bias
    cdef Py_ssize_t* shape   # per op: inputs, outputs, src, src offset, dst, dst offset
    cdef float** h           # per layer: (rows, width) activations
    cdef Py_ssize_t* width
    cdef float[:, ::1] logits
    cdef const float* head_wt
    cdef const float* head_b
    cdef const float* value_wt
    cdef const float* value_b

    def __cinit__(self):
        self.wt = NULL
        self.bias = NULL
        self.shape = NULL
        self.h = NULL
        self.width = NULL

    def __init__(self, list ops, list widths, tuple head, tuple value, Py_ssize_t value_offset, Py_ssize_t rows,
                 Py_ssize_t n_in, int act, float masked_logit):
        cdef Py_ssize_t k, n_ops = len(ops), n_layers = len(widths)
        cdef const float[:, ::1] w
        cdef const float[::1] b
        cdef float[:, ::1] buf
        if n_ops < 1 or n_layers < 1 or rows < 1 or act not in (1, 2):
            raise ValueError("FrozenPolicy needs at least one layer, one row and act 1 or 2")
        self.keep, self.n_ops, self.n_layers, self.rows, self.n_in = [], n_ops, n_layers, rows, n_in
        self.act, self.masked_logit, self.value_offset = act, masked_logit, value_offset
        self.wt = <const float**>malloc(n_ops * sizeof(float*))
        self.bias = <const float**>malloc(n_ops * sizeof(float*))
        self.shape = <Py_ssize_t*>malloc(6 * n_ops * sizeof(Py_ssize_t))
        self.h = <float**>malloc(n_layers * sizeof(float*))
        self.width = <Py_ssize_t*>malloc(n_layers * sizeof(Py_ssize_t))
        if not (self.wt and self.bias and self.shape and self.h and self.width):
            raise MemoryError()
        for k in range(n_layers):
            arr = np.zeros((rows, int(widths[k])), np.float32)
            buf = arr
            self.keep.append(arr)
            self.h[k], self.width[k] = &buf[0, 0], arr.shape[1]
        for k, (wt, bias, src, src_off, dst, dst_off) in enumerate(ops):
            wt, bias = np.ascontiguousarray(wt, np.float32), np.ascontiguousarray(bias, np.float32)
            self.keep += [wt, bias]
            w, b = wt, bias
            n_src = n_in if src == -1 else (self.width[src] if 0 <= src < n_layers else -1)
            if not (0 <= dst < n_layers and src < dst and b.shape[0] == w.shape[1] and
                    0 <= src_off and src_off + w.shape[0] <= n_src and 0 <= dst_off and
                    dst_off + w.shape[1] <= self.width[dst] and w.shape[0] >= 1 and w.shape[1] >= 1):
                raise ValueError(f"FrozenPolicy: layer {k} of shape {tuple(wt.shape)} does not fit")
            self.wt[k], self.bias[k] = &w[0, 0], &b[0]
            self.shape[6 * k: 6 * k + 6] = [w.shape[0], w.shape[1], src, src_off, dst, dst_off]
        last = self.width[n_layers - 1]
        hw, hb = np.ascontiguousarray(head[0], np.float32), np.ascontiguousarray(head[1], np.float32)
        vw, vb = np.ascontiguousarray(value[0], np.float32), np.ascontiguousarray(value[1], np.float32)
        if hw.ndim != 2 or hb.shape != (hw.shape[1],) or not 1 <= hw.shape[0] <= last or hw.shape[1] < 1 or \
                vw.shape != (last - value_offset, 1) or vb.shape != (1,) or not 0 <= value_offset < last:
            raise ValueError("FrozenPolicy: head or value weights do not fit the last layer")
        self.keep += [hw, hb, vw, vb]
        self.n_out, self.n_head_in = hw.shape[1], hw.shape[0]
        w, b = hw, hb
        self.head_wt, self.head_b = &w[0, 0], &b[0]
        w, b = vw, vb
        self.value_wt, self.value_b = &w[0, 0], &b[0]
        self.logits = np.zeros((rows, self.n_out), np.float32)

    def __dealloc__(self):
        free(self.wt)
        free(self.bias)
        free(self.shape)
        free(self.h)
        free(self.width)

    cdef void _trunk(self, const float* x) noexcept nogil:
        cdef Py_ssize_t k
        cdef Py_ssize_t* s
        cdef const float* src
        for k in range(self.n_ops):
            s = &self.shape[6 * k]
            src = x if s[2] == -1 else self.h[s[2]]
            sysgym_dense(src + s[3], self.n_in if s[2] == -1 else self.width[s[2]], self.rows, s[0], self.wt[k],
                         s[1], self.bias[k], self.h[s[4]] + s[5], self.width[s[4]], self.act)

    cdef void _value(self, float* value) noexcept nogil:
        cdef Py_ssize_t last = self.width[self.n_layers - 1]
        sysgym_dense(self.h[self.n_layers - 1] + self.value_offset, last, self.rows, last - self.value_offset,
                     self.value_wt, 1, self.value_b, value, 1, 0)

    def value(self, const float[:, ::1] x, float[::1] value):
        """``value`` = V(x) for the input rows ``x`` (rows, inputs)."""
        self._check(x, value)
        with nogil:
            self._trunk(&x[0, 0])
            self._value(&value[0])

    def _check(self, const float[:, ::1] x, float[::1] value):
        if x.shape[0] != self.rows or x.shape[1] != self.n_in or value.shape[0] != self.rows:
            raise ValueError(f"FrozenPolicy takes {self.rows} rows of {self.n_in} inputs")

    def step(self, const float[:, ::1] x, const uint8_t[:, ::1] mask, const double[:, ::1] noise,
             int64_t[::1] action, float[::1] logp, float[::1] value):
        """Per row of ``x``: the action argmax(log p + noise) under the masked categorical (``mask``
        (rows, outputs) of 0 / 1, or None), its log-probability and the value, into the given arrays."""
        cdef Py_ssize_t r, k = self.n_out, last = self.width[self.n_layers - 1]
        cdef const uint8_t* m = NULL
        self._check(x, value)
        if noise.shape[0] != self.rows or noise.shape[1] != k or action.shape[0] != self.rows or \
                logp.shape[0] != self.rows or (mask is not None and (mask.shape[0] != self.rows or mask.shape[1] != k)):
            raise ValueError(f"FrozenPolicy: noise, mask, action and logp must have {self.rows} rows of {k}")
        with nogil:
            self._trunk(&x[0, 0])
            sysgym_dense(self.h[self.n_layers - 1], last, self.rows, self.n_head_in, self.head_wt, k, self.head_b,
                         &self.logits[0, 0], k, 0)
            self._value(&value[0])
            for r in range(self.rows):
                if mask is not None:
                    m = &mask[r, 0]
                action[r] = sysgym_sample_row(&self.logits[r, 0], m, &noise[r, 0], k, self.masked_logit, &logp[r])


def categorical_loss(float[:, ::1] z, float[:, ::1] probs, const uint8_t[:, ::1] mask, const int64_t[::1] actions,
                     const float[::1] old_logp, const float[::1] advantages, const float[::1] returns,
                     const float[::1] value, float masked_logit, double clip_coef, double ent_scale,
                     double vf_scale, bint norm_adv, float[::1] scratch, float[:, ::1] d_out, float[::1] dv, double[::1] stats):
    """The categorical PPO loss's gradient with respect to the logits ``z`` ((outputs, n), transposed;
    overwritten by the log-probabilities) into ``d_out`` ((outputs, n)), with respect to the values
    into ``dv`` (n), the probabilities into ``probs``, and [policy loss, value loss, entropy, approx
    KL, clip fraction] into ``stats`` (5); ``scratch`` holds 3 n floats; ``ent_scale`` and
    ``vf_scale`` are the entropy and value coefficients over n. As fastgrad's numpy path without
    value clipping (``clip_vloss`` off); ``mask`` (n, outputs) of 0 / 1, or None."""
    cdef Py_ssize_t k = z.shape[0], n = z.shape[1], i
    cdef const uint8_t* m = NULL
    if probs.shape[0] != k or probs.shape[1] != n or d_out.shape[0] != k or d_out.shape[1] != n or \
            actions.shape[0] != n or old_logp.shape[0] != n or advantages.shape[0] != n or returns.shape[0] != n or \
            value.shape[0] != n or dv.shape[0] != n or scratch.shape[0] < 3 * n or stats.shape[0] != 5 or \
            (mask is not None and (mask.shape[0] != n or mask.shape[1] != k)) or n < 1:
        raise ValueError(f"categorical_loss: arrays do not match {k} outputs of {n} samples")
    for i in range(n):
        if not 0 <= actions[i] < k:
            raise ValueError(f"categorical_loss: action {actions[i]} outside [0, {k})")
    if mask is not None:
        m = &mask[0, 0]
    with nogil:
        sysgym_categorical_loss(&z[0, 0], &probs[0, 0], m, &actions[0],
                                &old_logp[0], &advantages[0], &returns[0], &value[0], k, n, masked_logit,
                                clip_coef, ent_scale, vf_scale, norm_adv, &scratch[0], &scratch[n], &scratch[2 * n],
                                &d_out[0, 0], &dv[0], &stats[0])
