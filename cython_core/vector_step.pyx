# The native vector env's per-call bookkeeping in one typed call (see sysgym/envs/batched.py,
# BatchedKernelEnv._step): the common call, with int64 (B,) actions of a discrete space or float
# actions of a Box space (checks, loading the actions, the kernel call, NextStep resets in the step,
# the step count and TimeLimit truncation, the reward's weighted sum, SameStep autoresets, fresh
# flags, observations and infos). Everything else, and anything this refuses, goes through the
# env's general Python path, which this mirrors line for line; tests/test_vector_fast_paths.py
# compares the two.
#
# Holds raw pointers into the env's state arrays (kept alive through the references held here):
# the env never reallocates them (set_state copies into them), and _bind_step rebuilds this object
# after unpickling.

cimport numpy as cnp
import numpy as np

from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.string cimport memcpy, memset
from libc.math cimport isfinite

from step_arrays cimport contiguous, fresh_copy

cnp.import_array()

# autoreset modes
cdef enum:
    NEXT_STEP = 0
    SAME_STEP = 1
    DISABLED = 2


cdef inline object fresh_bools(const uint8_t* flags, cnp.npy_intp b):
    """A fresh (B,) bool array of 0/1 flags (what a copy of their bool view returns)."""
    cdef cnp.ndarray out = cnp.PyArray_SimpleNew(1, &b, cnp.NPY_BOOL)
    memcpy(cnp.PyArray_DATA(out), flags, b)
    return out


cdef inline object fresh_strided(cnp.ndarray src):
    """A fresh contiguous copy of a 1-D array of any stride (what ``src.copy()`` returns)."""
    cdef cnp.npy_intp n = cnp.PyArray_DIM(src, 0), stride = cnp.PyArray_STRIDE(src, 0), i
    cdef int size = cnp.PyArray_ITEMSIZE(src)
    cdef cnp.ndarray out = cnp.PyArray_SimpleNew(1, &n, cnp.PyArray_TYPE(src))
    cdef char* dst = <char*>cnp.PyArray_DATA(out)
    cdef const char* at = <const char*>cnp.PyArray_DATA(src)
    if stride == size:
        memcpy(dst, at, n * size)
    else:
        for i in range(n):
            memcpy(dst + i * size, at + i * stride, size)
    return out


cdef bint weighted_into(const double* comps, const double* weights, cnp.npy_intp b, Py_ssize_t k,
                        double* out) noexcept:
    """Per row of the (B, K) components, the products with the weights added left to right (what
    ``weighted_sum`` does; no fused multiply-add: built with -ffp-contract=off); whether all are finite."""
    cdef cnp.npy_intp i
    cdef Py_ssize_t j
    cdef const double* row
    cdef double total
    cdef bint finite = True
    for i in range(b):
        row = comps + i * k
        total = row[0] * weights[0]
        for j in range(1, k):
            total = total + row[j] * weights[j]
        out[i] = total
        finite &= isfinite(total) != 0
    return finite


def weighted_rewards(double[:, ::1] comps, double[::1] weights):
    """A fresh (B,) float64 array of ``weighted_into`` (for tests; the step calls it directly)."""
    cdef cnp.npy_intp b = comps.shape[0]
    cdef Py_ssize_t k = weights.shape[0]
    if k < 1 or comps.shape[1] != k:
        raise ValueError("comps must be (B, K) with K = len(weights) >= 1")
    cdef cnp.ndarray out = cnp.PyArray_SimpleNew(1, &b, cnp.NPY_FLOAT64)
    weighted_into(&comps[0, 0] if b else NULL, &weights[0], b, k, <double*>cnp.PyArray_DATA(out))
    return out


cdef class VectorStep:
    """The step of the native vector env it is built for (see the module comment); it keeps no
    reference to the env (which holds it), so each call takes the env.

    ``step(env, actions)`` returns the step's 5-tuple, or None having changed nothing (then the env's
    general path takes the call: other actions, an action out of range, a sub-env awaiting a reset
    outside NextStep autoreset). Where a call needs what only the general path does (a non-finite
    reward, extras that are not one dict kept by the family, a SameStep autoreset with extras that
    need a dtype conversion), it hands that part to the env's Python methods from the point reached.
    """

    cdef object all_mask, active_arr, resetting_arr
    cdef object terminated_arr, truncated_arr, comps_arr, mask_arr, obs, weights_arr
    cdef object extras, template, copies, actions_arr, metrics_arr, needs_reset_arr, steps_arr
    cdef cnp.npy_intp b
    cdef Py_ssize_t k
    cdef int64_t n_actions, limit
    cdef int mode
    cdef bint fresh_obs, planned, discrete
    cdef double* float_actions
    cdef int64_t* actions
    cdef uint8_t* needs_reset
    cdef uint8_t* terminated
    cdef uint8_t* truncated
    cdef uint8_t* active
    cdef uint8_t* resetting
    cdef int64_t* steps
    cdef double* comps
    cdef double* weights
    cdef double* metrics
    cdef cnp.npy_intp m
    cdef tuple metric_keys
    cdef readonly long long taken    # calls this handled from start to end (tests read it)

    def __init__(self, env, int mode):
        s = env._state
        self.mode = mode
        self.b = env.num_envs
        self.n_actions = env._n_actions
        self.limit = -1 if env.max_episode_steps is None else env.max_episode_steps
        self.fresh_obs = env.copy
        self.all_mask = env._all
        self.active_arr = np.zeros(self.b, dtype=np.uint8)
        self.resetting_arr = np.zeros(self.b, dtype=np.uint8)
        self.active = <uint8_t*>cnp.PyArray_DATA(self.active_arr)
        self.resetting = <uint8_t*>cnp.PyArray_DATA(self.resetting_arr)
        self.discrete = env._is_discrete
        if self.discrete:
            self.actions_arr = contiguous(s["actions"], np.int64, (self.b,), "VectorStep")
            self.actions = <int64_t*>cnp.PyArray_DATA(self.actions_arr)
        else:
            self.actions_arr = contiguous(s["actions"], np.float64, None, "VectorStep")
            self.float_actions = <double*>cnp.PyArray_DATA(self.actions_arr)
        self.needs_reset_arr = contiguous(s["needs_reset"], np.uint8, (self.b,), "VectorStep")
        self.needs_reset = <uint8_t*>cnp.PyArray_DATA(self.needs_reset_arr)
        self.terminated_arr = contiguous(s["terminated"], np.uint8, (self.b,), "VectorStep")
        self.truncated_arr = contiguous(s["truncated"], np.uint8, (self.b,), "VectorStep")
        self.terminated = <uint8_t*>cnp.PyArray_DATA(self.terminated_arr)
        self.truncated = <uint8_t*>cnp.PyArray_DATA(self.truncated_arr)
        self.steps_arr = contiguous(s["episode_steps"], np.int64, (self.b,), "VectorStep")
        self.steps = <int64_t*>cnp.PyArray_DATA(self.steps_arr)
        self.comps_arr = contiguous(s["reward_components"], np.float64, None, "VectorStep")
        self.comps = <double*>cnp.PyArray_DATA(self.comps_arr)
        self.weights_arr = np.array(env.reward_weights, dtype=np.float64)
        self.k = len(self.weights_arr)
        self.weights = <double*>cnp.PyArray_DATA(self.weights_arr)
        if self.comps_arr.shape != (self.b, self.k) or self.k < 1:
            raise ValueError("reward_components must be (B, K) with K >= 1 weights")
        self.metric_keys = tuple(env._metric_keys)
        self.m = len(self.metric_keys) // 2
        self.metrics_arr = contiguous(s["metrics"], np.float64, (self.b, self.m), "VectorStep")
        self.metrics = <double*>cnp.PyArray_DATA(self.metrics_arr)
        self.mask_arr = contiguous(s["action_mask"], np.int8, None, "VectorStep") if self.discrete else None
        views = env._views
        obs = views[len(views) - 1]     # (wraparound is off: no negative index)
        if type(obs) is tuple:
            self.obs = tuple((key, contiguous(value, None, None, "VectorStep")) for key, value in obs)
        else:
            self.obs = contiguous(obs, None, None, "VectorStep")
        self.planned = False

    def step(self, env, actions):
        cdef cnp.npy_intp i, b = self.b
        cdef bint resets = False, done = False
        if not cnp.PyArray_CheckExact(actions) or not self._valid(<cnp.ndarray>actions):
            return None         # the general path loads it, or refuses it with its message
        for i in range(b):
            resets |= self.needs_reset[i] != 0
        if resets and self.mode != NEXT_STEP:
            return None         # the general path raises
        self._load(<cnp.ndarray>actions)

        # the kernel call, NextStep resets, the step count and TimeLimit: as _step and _step_limit
        kernel_ended = None
        if not resets:
            env._step_kernel(self.all_mask)
            if self.limit >= 0:
                kernel_ended = self._kernel_ended()
            for i in range(b):
                self.steps[i] += 1
        else:
            for i in range(b):
                self.resetting[i] = self.needs_reset[i]
                self.active[i] = self.resetting[i] ^ 1
            env._step_kernel(self.active_arr)
            if self.limit >= 0:
                kernel_ended = self._kernel_ended()
            for i in range(b):
                self.steps[i] += self.active[i]
        if self.limit >= 0:
            for i in range(b):
                if self.steps[i] >= self.limit and (not resets or self.active[i]):
                    self.truncated[i] = 1
        if resets:
            self._reset(env)

        for i in range(b):
            done |= (self.terminated[i] | self.truncated[i]) != 0
        if done and self.mode == SAME_STEP and not self._plain_plan(env):
            return env._finish(kernel_ended)   # extras the C plan does not copy: the general path from here

        rewards = self._rewards(env)
        terminated = fresh_bools(self.terminated, b)
        truncated = fresh_bools(self.truncated, b)
        ended = None
        if done:
            ended = _ended(terminated, truncated, kernel_ended)
        if done and self.mode == SAME_STEP:
            infos = self._reset_same_step(env, terminated | truncated, ended)
        else:
            infos = self._infos(env, ended)
            if done:
                for i in range(b):
                    self.needs_reset[i] |= self.terminated[i] | self.truncated[i]
        obs = self._observations(env, self.fresh_obs)
        self.taken += 1
        return obs, rewards, terminated, truncated, infos

    cdef object _observations(self, env, bint fresh):
        """The env's ``_observations(fresh)``: fresh copies, or its read-only views."""
        if not fresh:
            return env._observations(False)
        if type(self.obs) is tuple:
            return {key: fresh_copy(value) for key, value in self.obs}
        return fresh_copy(self.obs)

    cdef bint _plain_plan(self, env) except -1:
        """Whether the infos plan copies every extra here (made now if not yet): then the SameStep
        autoreset's partial infos are built here too."""
        if not self.planned:
            self._infos(env, None)      # makes the plan (its infos are not used)
        if self.extras is None:
            return False
        for _, plain, _ in self.copies:
            if plain is None:
                return False
        return True

    cdef object _reset_same_step(self, env, done, ended):
        """The env's ``_reset_same_step(done, ended)``: the ended step's info and observation of the
        done sub-envs under ``final_info`` / ``final_obs``, their reset, then the infos of all."""
        cdef cnp.npy_intp i, b = self.b
        cdef const uint8_t* rows = <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>done)
        extras = env._extra_infos()
        if extras is not self.extras:
            self.extras = None
            final_info = env._infos(ended, rows=done)
        else:
            # _general_infos(rows=done): every key's copy zero where a sub-env is not done, and one
            # copy of done as every key's mask
            mask = fresh_bools(rows, b)
            final_info = self.template.copy()
            for key, value in self.template.items():
                if value is not None:
                    final_info[key] = mask
            final_info["reward_components"] = _zero_rows(fresh_copy(self.comps_arr), rows)
            if self.mask_arr is not None:
                final_info["action_mask"] = _zero_rows(fresh_copy(self.mask_arr), rows)
            for key, plain, _ in self.copies:
                final_info[key] = _zero_rows(fresh_strided(plain), rows)
            if ended is not None and _any(ended):
                self._add_metrics(final_info, ended)
        current = self._observations(env, True)
        final_obs = np.full(b, None, dtype=object)
        for i in range(b):
            if rows[i]:
                final_obs[i] = {key: value[i] for key, value in current.items()} if type(current) is dict \
                    else current[i]
        for i in range(b):
            self.resetting[i] = rows[i]
        self._reset(env)
        infos = self._infos(env, None)
        infos["final_obs"], infos["_final_obs"] = final_obs, fresh_bools(rows, b)
        infos["final_info"], infos["_final_info"] = final_info, fresh_bools(rows, b)
        return infos

    cdef bint _valid(self, cnp.ndarray given):
        """Whether ``given`` is what this loads: int64 (B,) actions in [0, n) of a discrete space,
        or a C-contiguous float64/float32 array of the buffer's shape holding finite numbers."""
        cdef cnp.npy_intp i, n, stride
        cdef const char* at = <const char*>cnp.PyArray_DATA(given)
        cdef const double* doubles
        cdef const float* floats
        if not cnp.PyArray_ISNOTSWAPPED(given):
            return False
        if self.discrete:
            if cnp.PyArray_NDIM(given) != 1 or cnp.PyArray_DIM(given, 0) != self.b \
                    or cnp.PyArray_TYPE(given) != cnp.NPY_INT64:
                return False
            stride = cnp.PyArray_STRIDE(given, 0)
            for i in range(self.b):     # both bounds in one compare: a negative action reads as a huge unsigned one
                if <uint64_t>(<const int64_t*>(at + i * stride))[0] >= <uint64_t>self.n_actions:
                    return False
            return True
        if not cnp.PyArray_IS_C_CONTIGUOUS(given) or not cnp.PyArray_SAMESHAPE(given, <cnp.ndarray>self.actions_arr):
            return False
        n = cnp.PyArray_SIZE(given)
        if cnp.PyArray_TYPE(given) == cnp.NPY_FLOAT64:
            doubles = <const double*>at
            for i in range(n):
                if not isfinite(doubles[i]):
                    return False
            return True
        if cnp.PyArray_TYPE(given) == cnp.NPY_FLOAT32:
            floats = <const float*>at
            for i in range(n):
                if not isfinite(floats[i]):
                    return False
            return True
        return False

    cdef void _load(self, cnp.ndarray given) noexcept:
        """Write actions ``_valid`` accepted into the kernel's action buffer."""
        cdef cnp.npy_intp i, n, stride
        cdef const char* at = <const char*>cnp.PyArray_DATA(given)
        if self.discrete:
            stride = cnp.PyArray_STRIDE(given, 0)
            for i in range(self.b):
                self.actions[i] = (<const int64_t*>(at + i * stride))[0]
        elif cnp.PyArray_TYPE(given) == cnp.NPY_FLOAT64:
            memcpy(self.float_actions, at, cnp.PyArray_NBYTES(given))
        else:
            n = cnp.PyArray_SIZE(given)
            for i in range(n):
                self.float_actions[i] = (<const float*>at)[i]

    cdef object _kernel_ended(self):
        """(B,) bool: the sub-envs the kernel itself ended (before the step limit's truncation)."""
        cdef cnp.npy_intp i, b = self.b
        cdef cnp.ndarray out = cnp.PyArray_SimpleNew(1, &b, cnp.NPY_BOOL)
        cdef uint8_t* flags = <uint8_t*>cnp.PyArray_DATA(out)
        for i in range(b):
            flags[i] = (self.terminated[i] | self.truncated[i]) != 0
        return out

    cdef object _rewards(self, env):
        """weighted_sum of the reward components; numpy's own path where a sum is not finite
        (where numpy warns of an overflow or an invalid product, it still does)."""
        cdef cnp.ndarray out = cnp.PyArray_SimpleNew(1, &self.b, cnp.NPY_FLOAT64)
        if not weighted_into(self.comps, self.weights, self.b, self.k, <double*>cnp.PyArray_DATA(out)):
            return env._rewards(self.comps_arr)
        return out

    def infos(self, env):
        """The infos of every sub-env now, without ``episode_metrics`` (the env's ``_infos(None)``)."""
        return self._infos(env, None)

    cdef object _infos(self, env, ended):
        """The infos of every sub-env (the env's ``_infos(ended)``), copied with a plan made on the
        first call when the family returns the same extras dict every call."""
        extras = env._extra_infos()
        if not self.planned:
            self.planned = True
            self.extras, self.template, copies = env._plan_extras(extras)
            # (key, 1-D array copied here, or None, bound copy): same-dtype 1-D extras are copied here
            self.copies = tuple([(key, extras[key] if _plain(extras[key], bound) else None, bound)
                                 for key, bound in copies])
        if extras is not self.extras:
            # another dict than the first call's (a family building one per call): the general path
            self.extras = None
            return env._infos(ended)
        infos = self.template.copy()
        infos["reward_components"] = fresh_copy(self.comps_arr)
        if self.mask_arr is not None:
            infos["action_mask"] = fresh_copy(self.mask_arr)
        for key, plain, bound in self.copies:
            infos[key] = bound() if plain is None else fresh_strided(plain)
        if ended is not None and _any(ended):
            self._add_metrics(infos, ended)
        return infos

    cdef void _reset(self, env) except *:
        """``_reset_masked(resetting, None)``: zero the resetting sub-envs' reward components and
        flags, the kernel's reset, then their reset flag and step count."""
        cdef cnp.npy_intp i, b = self.b
        for i in range(b):
            if self.resetting[i]:
                memset(self.comps + i * self.k, 0, self.k * sizeof(double))
                self.terminated[i] = 0
                self.truncated[i] = 0
        env._kernel_reset(self.resetting_arr, None)
        for i in range(b):
            if self.resetting[i]:
                self.needs_reset[i] = 0
                self.steps[i] = 0

    cdef void _add_metrics(self, dict infos, cnp.ndarray ended) except *:
        """``_add_metrics(infos, ended)``: metric k is row k of the transpose of a fresh (B, M) copy
        of the metrics with zero rows where the episode did not end (the layout of np.where(ended,
        metrics.T, 0.0)); the M + 1 masks are the rows of one fresh (M + 1, B) copy of ``ended``."""
        cdef cnp.npy_intp i, j, b = self.b, m = self.m
        cdef cnp.npy_intp dims[2]
        cdef const uint8_t* flags = <const uint8_t*>cnp.PyArray_DATA(ended)
        dims[0], dims[1] = b, m
        cdef cnp.ndarray block = cnp.PyArray_SimpleNew(2, dims, cnp.NPY_FLOAT64)
        cdef double* values = <double*>cnp.PyArray_DATA(block)
        for i in range(b):
            if flags[i]:
                memcpy(values + i * m, self.metrics + i * m, m * sizeof(double))
            else:
                memset(values + i * m, 0, m * sizeof(double))
        dims[0], dims[1] = m + 1, b
        cdef cnp.ndarray masks = cnp.PyArray_SimpleNew(2, dims, cnp.NPY_BOOL)
        cdef uint8_t* mask_rows = <uint8_t*>cnp.PyArray_DATA(masks)
        for j in range(m + 1):
            memcpy(mask_rows + j * b, flags, b)
        value_list = list(block.T)
        mask_list = list(masks)
        metrics = {}
        for j in range(m):
            metrics[self.metric_keys[2 * j]] = value_list[j]
            metrics[self.metric_keys[2 * j + 1]] = mask_list[j]
        infos["episode_metrics"] = metrics
        infos["_episode_metrics"] = mask_list[m]


cdef object _ended(terminated, truncated, kernel_ended):
    """done, or done & kernel_ended under a step limit (as ``_finish``)."""
    done = terminated | truncated
    return done if kernel_ended is None else done & kernel_ended


cdef object _zero_rows(cnp.ndarray fresh, const uint8_t* rows):
    """``fresh`` (a C-contiguous (B, ...) array) with the rows of the sub-envs not flagged set to zero."""
    cdef cnp.npy_intp i, b = cnp.PyArray_DIM(fresh, 0)
    cdef cnp.npy_intp row = cnp.PyArray_NBYTES(fresh) // b if b else 0
    cdef char* at = <char*>cnp.PyArray_DATA(fresh)
    for i in range(b):
        if not rows[i]:
            memset(at + i * row, 0, row)
    return fresh


cdef bint _any(cnp.ndarray flags):
    """Whether a fresh (B,) bool array has a flag set."""
    cdef const uint8_t* at = <const uint8_t*>cnp.PyArray_DATA(flags)
    cdef cnp.npy_intp i
    for i in range(cnp.PyArray_SIZE(flags)):
        if at[i]:
            return True
    return False


cdef bint _plain(value, bound):
    """Whether ``bound`` is ``value.copy`` of a native-order 1-D bool/int/float array."""
    return (type(value) is np.ndarray and value.ndim == 1 and value.dtype.kind in "biuf"
            and value.dtype.isnative and getattr(bound, "__self__", None) is value
            and getattr(bound, "__name__", None) == "copy")
