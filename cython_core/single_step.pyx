# The single env's step (sysgym/envs/batched.py, KernelEnv.step) in one typed call, for an int
# action (a Python int or a numpy integer scalar) of a discrete space: the needs_reset check, the
# action's range check and store, the kernel call, the flags, the step count and TimeLimit, the
# reward as the same Python-float sum in the same order (no fused multiply-add: built with
# -ffp-contract=off), the info (KernelEnv._info's key order, values and Python types) and fresh
# observation copies. Anything else goes through the env's Python step (KernelEnv._step), which
# this mirrors line for line; tests/test_single_step.py compares the two.
#
# Holds raw pointers into the B = 1 env's state arrays (kept alive through the references held
# here): the env never reallocates them (set_state copies into them), and KernelEnv._bind rebuilds
# this object after unpickling.

cimport numpy as cnp
import numpy as np

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from step_arrays cimport contiguous, fresh_copy

cnp.import_array()

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1

# how a 1-D extra's element 0 becomes a Python scalar (what memoryview(v)[0] gives)
cdef enum:
    X_BOOL = 0
    X_INT = 1
    X_UINT = 2
    X_F64 = 3
    X_F32 = 4
    X_OTHER = 5     # another 1-D dtype: read through a memoryview, as the Python path does
    X_ROW = 6       # a 2-D or higher extra: a fresh copy of row 0


cdef inline object copy_of(value):
    """``value.copy()``: by memcpy where it is a C-contiguous array."""
    if type(value) is np.ndarray and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>value):
        return fresh_copy(<cnp.ndarray>value)
    return value.copy()


cdef object scalar_at(int kind, int size, const char* at, view):
    """Element 0 of a 1-D extra as the Python scalar ``memoryview(v)[0]`` gives."""
    if kind == X_BOOL:
        return at[0] != 0
    if kind == X_INT:
        if size == 8:
            return (<const int64_t*>at)[0]
        if size == 4:
            return (<const int32_t*>at)[0]
        if size == 2:
            return (<const int16_t*>at)[0]
        return (<const int8_t*>at)[0]
    if kind == X_UINT:
        if size == 8:
            return (<const uint64_t*>at)[0]
        if size == 4:
            return (<const uint32_t*>at)[0]
        if size == 2:
            return (<const uint16_t*>at)[0]
        return (<const uint8_t*>at)[0]
    if kind == X_F64:
        return (<const double*>at)[0]
    if kind == X_F32:
        return <double>(<const float*>at)[0]
    return view[0]


cdef int extra_kind(value):
    """How ``scalar_at`` reads a 1-D extra (X_ROW for the others)."""
    if value.ndim != 1:
        return X_ROW
    dtype = value.dtype
    if not dtype.isnative:
        return X_OTHER
    if dtype.kind == "b":
        return X_BOOL
    if dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8):
        return X_INT if dtype.kind == "i" else X_UINT
    if dtype.kind == "f" and dtype.itemsize == 8:
        return X_F64
    if dtype.kind == "f" and dtype.itemsize == 4:
        return X_F32
    return X_OTHER


cdef class SingleStep:
    """The step of the single env it is built for (see the module comment); it keeps no reference
    to the env (which holds it), so each call takes the env.

    ``step(env, action)`` returns the step's 5-tuple; any call it does not take (another action
    type, an action out of range, a step after the end, the env busy) goes to ``env._step(action)``,
    which refuses it with its message or takes it.
    """

    cdef object acquire, release, kernel_step, one, vec
    cdef object actions_arr, needs_reset_arr, terminated_arr, truncated_arr, steps_arr
    cdef object comps_arr, mask_arr, metrics_arr, obs
    cdef tuple metric_names
    cdef int64_t n_actions
    cdef int64_t* actions
    cdef uint8_t* needs_reset
    cdef uint8_t* terminated
    cdef uint8_t* truncated
    cdef int64_t* steps
    cdef double* comps
    cdef double* weights
    cdef object weights_arr
    cdef Py_ssize_t k
    cdef double* metrics
    cdef Py_ssize_t m
    cdef object extras
    cdef list plan       # (key, kind, itemsize, array, memoryview or None)
    cdef readonly long long taken    # calls this handled from start to end (tests read it)

    def __init__(self, env):
        vec = env._vec
        s = vec._state
        self.vec = vec
        lock = env._lock
        self.acquire, self.release = lock.acquire, lock.release
        self.kernel_step = env._kernel_step
        self.one = env._one
        self.n_actions = env._n_actions
        self.actions_arr = contiguous(s["actions"], np.int64, (1,), "SingleStep")
        self.actions = <int64_t*>cnp.PyArray_DATA(self.actions_arr)
        self.needs_reset_arr = contiguous(s["needs_reset"], np.uint8, (1,), "SingleStep")
        self.needs_reset = <uint8_t*>cnp.PyArray_DATA(self.needs_reset_arr)
        self.terminated_arr = contiguous(s["terminated"], np.uint8, (1,), "SingleStep")
        self.truncated_arr = contiguous(s["truncated"], np.uint8, (1,), "SingleStep")
        self.terminated = <uint8_t*>cnp.PyArray_DATA(self.terminated_arr)
        self.truncated = <uint8_t*>cnp.PyArray_DATA(self.truncated_arr)
        self.steps_arr = contiguous(s["episode_steps"], np.int64, (1,), "SingleStep")
        self.steps = <int64_t*>cnp.PyArray_DATA(self.steps_arr)
        self.weights_arr = np.array(env._weights, dtype=np.float64)
        self.k = len(self.weights_arr)
        self.weights = <double*>cnp.PyArray_DATA(self.weights_arr)
        self.comps_arr = contiguous(env._comps, np.float64, (self.k,), "SingleStep")
        self.comps = <double*>cnp.PyArray_DATA(self.comps_arr)
        if self.k < 1:
            raise ValueError("SingleStep needs K >= 1 reward weights")
        self.mask_arr = contiguous(env._mask, None, None, "SingleStep")
        self.metric_names = tuple(vec.metric_names)
        metrics = contiguous(s["metrics"], np.float64, None, "SingleStep")
        self.metrics_arr = metrics
        self.metrics = <double*>cnp.PyArray_DATA(metrics)
        self.m = min(len(self.metric_names), metrics.shape[1] if metrics.ndim == 2 else 0)
        rows = env._obs_rows
        if type(rows) is tuple:
            self.obs = tuple((key, contiguous(row, None, None, "SingleStep")) for key, row in rows)
        else:
            self.obs = contiguous(rows, None, None, "SingleStep")
        self.extras = None
        self.plan = None

    def step(self, env, action):
        cdef int overflow = 0
        cdef long long value
        if type(action) is int or isinstance(action, np.integer):
            value = PyLong_AsLongLongAndOverflow(int(action) if type(action) is not int else action, &overflow)
            if overflow or value < 0 or value >= self.n_actions:
                return env._step(action)    # refused there, with its message
        else:
            return env._step(action)
        if not self.acquire(False):
            return env._step(action)        # busy: raised there
        try:
            if not self.needs_reset[0]:
                self.actions[0] = value
                self.kernel_step(self.one)
                return self._finish()
        finally:
            self.release()
        return env._step(action)            # a step after the end (or before reset()): raised there

    cdef tuple _finish(self):
        """What the step returns after the kernel call (KernelEnv._step from its kernel call on)."""
        cdef bint terminated = self.terminated[0] != 0
        cdef bint truncated = self.truncated[0] != 0
        cdef bint kernel_ended = terminated or truncated
        cdef int64_t steps = self.steps[0] + 1
        cdef Py_ssize_t j
        self.steps[0] = steps
        limit = self.vec.max_episode_steps
        if limit is not None and steps >= limit:    # TimeLimit: also when it terminated
            truncated = True
            self.truncated[0] = 1
        if terminated or truncated:
            self.needs_reset[0] = 1
        comps = fresh_copy(<cnp.ndarray>self.comps_arr)
        cdef const double* c = <const double*>cnp.PyArray_DATA(<cnp.ndarray>comps)
        cdef double reward = c[0] * self.weights[0]
        for j in range(1, self.k):
            reward = reward + c[j] * self.weights[j]
        obs = self._observations()
        info = self._info(kernel_ended, comps)
        self.taken += 1
        return obs, reward, terminated, truncated, info

    cdef object _observations(self):
        """KernelEnv._obs: fresh copies of the observation rows."""
        cdef dict out
        if type(self.obs) is tuple:
            out = {}
            for key, row in self.obs:
                out[key] = fresh_copy(<cnp.ndarray>row)
            return out
        return fresh_copy(<cnp.ndarray>self.obs)

    cdef dict _info(self, bint ended, comps):
        """KernelEnv._info(ended, comps): the same keys in the same order, values and types."""
        cdef dict info = {"reward_components": comps, "action_mask": fresh_copy(<cnp.ndarray>self.mask_arr)}
        cdef int kind, size
        cdef Py_ssize_t j
        extras = self.vec._extra_infos()
        if extras is not self.extras:
            # first call, or a family that builds a new dict per call: read it as _single_info does
            self.extras, self.plan = extras, None
            for key, value in extras.items():
                info[key] = value.item(0) if value.ndim == 1 else value[0].copy()
        else:
            if self.plan is None:
                self.plan = []
                for key, value in extras.items():
                    kind = extra_kind(value)
                    self.plan.append((key, kind, value.dtype.itemsize, value,
                                      memoryview(value) if kind == X_OTHER else None))
            for key, kind, size, value, view in self.plan:
                if kind == X_ROW:
                    info[key] = copy_of(value[0])
                else:
                    info[key] = scalar_at(kind, size, <const char*>cnp.PyArray_DATA(<cnp.ndarray>value), view)
        if ended:
            metrics = {}
            for j in range(self.m):
                metrics[self.metric_names[j]] = self.metrics[j]
            info["episode_metrics"] = metrics
        return info
