# Shared scaffolding of every simulation kernel in cython_core/ (randomness lives in rng.pxd).
#
# What every kernel does, so that a new family's kernel is its physics only:
#
# 1. State. All episode state lives in numpy arrays owned by the Python env, one row per
#    sub-env (leading axis B), so get_state/set_state are array copies. The kernel class holds
#    typed views of them, bound once in __init__ after `check_state(state, B)` has checked the
#    rows (views are compiled without bounds checks: a short array would be written past its end);
#    every kernel writes the `episode_outputs` and, for discrete actions, "action_mask".
# 2. Batch loop. The entry points take one uint8 flag per sub-env, checked with `check_batch`,
#    then run one nogil loop over the flagged rows with preallocated buffers only:
#
#        def step(self, const uint8_t[::1] active):
#            check_batch(active.shape[0], self.B, "active")
#            with nogil:
#                for b in range(self.B):
#                    if active[b]:
#                        self._step_one(b)
#
#    `reset(which, ...)` is the same loop over `_reset_one(b, ...)`. The per-sub-env methods are
#    `cdef ... noexcept nogil`: no Python object, no allocation, no exception inside the loop.
# 3. Randomness. Every draw comes from the sub-env's own xoshiro256** row `&self.rng[b, 0]`
#    (rng.pxd), seeded by the env from the seed given to reset; nothing else is random.
# 4. Bounds. Every loop is bounded by the configuration (sizes, capacities, a walk limit), never
#    by the data alone; counts and indices read from the state (which a snapshot may have set)
#    are compared with the buffer they index before a write (the env's set_state checks them too);
#    an index passed to a Python-level accessor is checked with `check_index`.
#    Ring buffers advance with `ring_next` / `ring_wrap`.
# 5. Finite outputs. No NaN/inf leaves a kernel: a mean over a count that may be 0 is `ratio`,
#    a feature held in its declared range is `clip`, and accumulators start from `zero_doubles`.
#
# Everything here is `cdef inline`: it compiles into each kernel's C as if written there, and
# cimporting this file adds no import at run time.

from libc.stdint cimport int64_t


ctypedef fused index_t:
    int
    int64_t

ctypedef fused real_t:
    float
    double


# ---------------------------------------------------------------------- checks (with the GIL)
cdef inline int check_batch(Py_ssize_t n, Py_ssize_t B, str name) except -1:
    """Raise a ValueError unless a per-sub-env buffer passed to an entry point has B entries."""
    if n != B:
        raise ValueError(f"{name} must have one entry per sub-env ({B}), got {n}")
    return 0


cdef inline int check_index(Py_ssize_t i, Py_ssize_t n, str name) except -1:
    """Raise an IndexError unless 0 <= i < n (a sub-env, link or slot index a caller passed)."""
    if not 0 <= i < n:
        raise IndexError(f"{name} must be in [0, {n - 1}], got {i}")
    return 0


cdef inline int check_state(dict state, Py_ssize_t B) except -1:
    """Raise a ValueError unless every state array has one row per sub-env and the RNG rows
    hold the 4 words of xoshiro256**."""
    cdef str key
    for key, value in state.items():
        if value.ndim < 1 or value.shape[0] != B:
            raise ValueError(f"state array {key!r} must have one row per sub-env ({B}), "
                             f"got shape {value.shape}")
    rng = state["rng"]
    if rng.ndim != 2 or rng.shape[1] != 4:
        raise ValueError(f"state array 'rng' must have shape ({B}, 4), got {rng.shape}")
    return 0


cdef inline tuple episode_outputs(dict state):
    """The state arrays every kernel writes for each sub-env it steps: the reward components,
    the end-of-episode metrics, and the terminated and truncated flags (in this order)."""
    return state["reward_components"], state["metrics"], state["terminated"], state["truncated"]


# ---------------------------------------------------------------------- arithmetic (nogil)
cdef inline double ratio(double num, double den) noexcept nogil:
    """num / den, or 0 when den <= 0 (a mean over nothing): never NaN or inf from a 0 count."""
    return num / den if den > 0.0 else 0.0


cdef inline double clip(double x, double lo, double hi) noexcept nogil:
    """x held in [lo, hi]."""
    return lo if x < lo else (hi if x > hi else x)


cdef inline index_t ring_next(index_t i, index_t n) noexcept nogil:
    """The slot after i in a ring of n slots."""
    i += 1
    return 0 if i == n else i


cdef inline index_t ring_wrap(index_t i, index_t n) noexcept nogil:
    """Slot i of a ring of n slots, for 0 <= i < 2n (a head plus a count or an offset < n)."""
    return i - n if i >= n else i


# ---------------------------------------------------------------------- rows (nogil)
cdef inline void zero_doubles(double* row, Py_ssize_t n) noexcept nogil:
    """Set row[0:n] to 0.0 (an accumulator or reward row at the start of an episode or step)."""
    cdef Py_ssize_t i
    for i in range(n):
        row[i] = 0.0


cdef inline void shift_left(real_t* row, Py_ssize_t n, Py_ssize_t by) noexcept nogil:
    """Move row[by:n] to row[0:n-by] (a history window drops its oldest `by` entries); the last
    `by` entries keep their values until the caller writes the newest ones."""
    cdef Py_ssize_t i
    for i in range(n - by):
        row[i] = row[i + by]
