# Shared random number generator for every kernel: xoshiro256** (Blackman & Vigna, 2018).
#
# Each sub-environment owns 4 uint64 words of state (a row of a (B, 4) uint64 array) seeded from a
# numpy SeedSequence in sysgym.envs.seeding. All draws are pure functions of that state, so the
# pure-Python reference models (tests/reference/rng.py) reproduce every stream bit for bit.
#
# Conventions the references rely on:
#   rng_uniform   -> (next >> 11) * 2**-53, in [0, 1)
#   rng_integers  -> lo + floor(uniform * (hi - lo + 1)), inclusive bounds
#   rng_between(lo, hi) -> lo + (hi - lo) * uniform, in [lo, hi)
#   rng_exponential(mean) -> -mean * log(1 - uniform)
#   rng_normal    -> Box-Muller from two uniforms (cosine branch), no cached second value

from libc.stdint cimport uint64_t, int64_t
from libc.math cimport log, sqrt, cos, M_PI


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t rng_next(uint64_t* s) noexcept nogil:
    cdef uint64_t result = _rotl(s[1] * 5, 7) * 9
    cdef uint64_t t = s[1] << 17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


cdef inline double rng_uniform(uint64_t* s) noexcept nogil:
    return <double>(rng_next(s) >> 11) * (1.0 / 9007199254740992.0)


cdef inline int64_t rng_integers(uint64_t* s, int64_t lo, int64_t hi) noexcept nogil:
    return lo + <int64_t>(rng_uniform(s) * <double>(hi - lo + 1))


cdef inline double rng_between(uint64_t* s, double lo, double hi) noexcept nogil:
    return lo + (hi - lo) * rng_uniform(s)


cdef inline double rng_exponential(uint64_t* s, double mean) noexcept nogil:
    return -mean * log(1.0 - rng_uniform(s))


cdef inline double rng_normal(uint64_t* s, double mu, double sigma) noexcept nogil:
    cdef double u1 = rng_uniform(s)
    cdef double u2 = rng_uniform(s)
    return mu + sigma * sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2)


# A second, independent stream for a sub-env (e.g. one that must not shift the main stream's
# draws): one draw of the parent seeds splitmix64 (Vigna), whose next 4 outputs are the child's
# state, as the xoshiro authors recommend; the all-zero state (a fixed point) is replaced by 1.
cdef inline uint64_t rng_splitmix64(uint64_t* x) noexcept nogil:
    cdef uint64_t z
    x[0] += <uint64_t>0x9E3779B97F4A7C15
    z = x[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline void rng_seed_child(uint64_t* parent, uint64_t* child) noexcept nogil:
    cdef uint64_t seed = rng_next(parent)
    cdef int j
    for j in range(4):
        child[j] = rng_splitmix64(&seed)
    if child[0] == 0 and child[1] == 0 and child[2] == 0 and child[3] == 0:
        child[0] = 1
