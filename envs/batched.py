"""The machinery every sysgym family shares: a native batched vector env over a kernel, and the
single-env view of it.

A family subclasses :class:`BatchedKernelEnv` and provides

* ``_build(...)``: validate kwargs, set ``single_observation_space`` / ``single_action_space``,
  ``reward_components``, ``reward_weights``, ``metric_names`` and return the family's state arrays
  (leading dimension = number of sub-envs);
* ``_kernel_reset(mask, options)`` and ``_kernel_step(active)``: one kernel call each, looping over
  the sub-envs flagged in the uint8 mask, reading ``self._state["actions"]`` and writing into the
  shared output buffers below;
* ``_check_state(arrays)``: check a snapshot's arrays (shapes and dtypes already match) against
  every bound the kernel relies on, raising ``ValueError`` (see :mod:`sysgym.envs.snapshot`);
* ``config_builder``: the function validating the family kwargs (its signature lists them; a
  misspelt kwarg is refused with the nearest valid name) and ``feature_names``;
* optionally ``_extra_infos()`` and ``render_frame(index, mode)``.

Output buffers (all in ``self._state`` so :meth:`get_state` captures them):

``obs`` (or ``obs:<key>`` for Dict spaces), ``reward_components`` (B, K) float64,
``terminated`` / ``truncated`` (B,) uint8, ``action_mask`` (B, A) int8 for discrete actions,
``metrics`` (B, M) float64 written when an episode ends, ``rng`` (B, 4) uint64 kernel RNG states,
``needs_reset`` and ``episode_steps`` (B,) (the base's autoreset and step-limit bookkeeping).

``max_episode_steps`` (a kwarg of every env, also passed by ``gymnasium.make_vec`` from a spec's
time limit) truncates an episode after that many steps, exactly as Gymnasium's ``TimeLimit`` does
on the single env: ``truncated`` is set and, unless the kernel ended the episode in the same
step, no ``episode_metrics`` are reported.

The single env (:class:`KernelEnv`) is the same kernel with B=1; it returns fresh copies on every
call, as Gymnasium >= 1.4's checker requires.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from itertools import chain
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sysgym.cython_core.single_step import SingleStep
from sysgym.cython_core.vector_step import VectorStep

from . import snapshot
from .seeding import per_env_seeds, rng_state
from .validate import check_kwargs, integer

RENDER_MODES = ("ansi", "rgb_array")
_AUTORESET_CODES = {AutoresetMode.NEXT_STEP: 0, AutoresetMode.SAME_STEP: 1, AutoresetMode.DISABLED: 2}  # VectorStep's
VECTOR_ONLY_KWARGS = ("autoreset_mode", "copy")   # options of a vector env, never of one env


def weighted_sum(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``components @ weights`` over the last axis, added left to right one component at a time.

    The native vector env uses this order and the single env the same order on Python floats, so
    their rewards are equal bit for bit (a BLAS matrix-vector product over a batch fuses
    multiply-adds and can differ from a one-row product in the last bit).
    """
    out = components[..., 0] * weights[0]
    for k in range(1, len(weights)):
        out += components[..., k] * weights[k]
    return out


class ExclusiveUse:
    """Refuses a second thread entering an env that is being stepped or reset.

    One env used from two threads at once is a misuse that would race inside a ``nogil`` kernel
    loop; it raises here instead of corrupting the state or spinning.
    """

    def __init__(self, owner: str):
        self.owner = owner
        self._lock = threading.Lock()

    def busy(self) -> RuntimeError:
        return RuntimeError(f"{self.owner} is already being stepped or reset by another thread; "
                            "an env must not be used from two threads at once (give each thread its own)")

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise self.busy()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


class KernelPickling:
    """Pickling for envs whose ``_kernel`` (typed memoryviews over their state arrays) cannot be
    pickled: it is left out and rebuilt by ``_connect()`` from the unpickled arrays; the thread
    guard is made anew. The state arrays are copied under the guard (as ``get_state`` reads them):
    pickling while another thread steps raises instead of saving a torn state that unpickling
    would hand to the kernel unchecked. Other attributes that ``_connect()`` makes (views bound to
    the kernel or the state arrays) are named in ``_connected``; they are left out too."""

    _state: dict[str, np.ndarray]
    _connected: ClassVar[tuple[str, ...]] = ()

    def _connect(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        with self._guard:
            state = self.__dict__.copy()
            state["_state"] = {k: v.copy() for k, v in self._state.items()}
        for key in ("_kernel", "_guard", *self._connected):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._guard = ExclusiveUse(type(self).__name__)
        self._connect()


class BatchedKernelEnv(KernelPickling, VectorEnv):
    """Native vector env stepping B sub-environments in one kernel call (``vector_entry_point``).

    Args:
        num_envs: number of sub-environments B.
        autoreset_mode: Gymnasium autoreset mode, ``"NextStep"`` (Gymnasium's default),
            ``"SameStep"`` (final observation in ``info["final_obs"]``) or ``"Disabled"``
            (reset done sub-envs yourself with ``reset(options={"reset_mask": mask})``).
        copy: return fresh arrays from ``reset``/``step`` (default). ``False`` returns read-only
            views of the internal buffers, which the next call overwrites: faster, for code that
            consumes observations immediately (kernels may draw the next observation over the last).
        render_mode: ``"ansi"`` or ``"rgb_array"``; ``render()`` returns one frame per sub-env.
        max_episode_steps: truncate every episode after this many steps (None: the env's own limit).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4,
                                          "autoreset_mode": AutoresetMode.NEXT_STEP}
    reward_components: tuple[str, ...]
    reward_weights: np.ndarray
    metric_names: tuple[str, ...]
    config_builder: ClassVar[Callable[..., Any] | None] = None
    config: Any = None

    def __init__(self, num_envs: int = 1, *, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
                 copy: bool = True, render_mode: str | None = None, max_episode_steps: int | None = None,
                 **kwargs: Any):
        self.num_envs = integer("num_envs", num_envs, 1, 2**20)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")
        self.max_episode_steps = None if max_episode_steps is None else \
            integer("max_episode_steps", max_episode_steps, 1, 2**62)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.copy = bool(copy)
        self.render_mode = render_mode
        self.spec = None
        self._guard = ExclusiveUse(type(self).__name__)

        builder = type(self).config_builder
        if builder is not None:
            check_kwargs(type(self).__name__.replace("VectorEnv", " env"), builder, kwargs)
        family_state = self._build(**kwargs)
        self._config_id = snapshot.fingerprint(self.config)
        self.reward_weights = np.asarray(self.reward_weights, dtype=np.float64)
        if self.reward_weights.shape != (len(self.reward_components),):
            raise AssertionError("reward_weights must have one weight per reward component")
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._state = self._output_buffers()
        clash = set(family_state) & set(self._state)
        if clash:
            raise AssertionError(f"family state reuses reserved names {sorted(clash)}")
        self._state.update(family_state)
        self._seal_prefix = snapshot.layout(self._config_id, self._state)
        for i in range(self.num_envs):
            self._state["rng"][i] = rng_state(None)
        self._all = np.ones(self.num_envs, dtype=np.uint8)
        # The "_key" masks of keys every sub-env reports: one shared array, read-only so that it
        # cannot be corrupted by a caller, instead of a fresh allocation per key and step.
        self._everyone = np.ones(self.num_envs, dtype=bool)
        self._everyone.flags.writeable = False
        # per-call constants of the step path (a B = 8 step is mostly this Python layer)
        self._is_discrete = self.discrete
        self._n_actions = int(self.single_action_space.n) if self._is_discrete else 0
        self._info_dtypes: dict[str, tuple[np.dtype, np.dtype, str]] = {}   # key: its dtype, info dtype, mask key
        self._no_flags = bytes(self.num_envs)   # tobytes() of a (B,) uint8/bool array with none set
        self._metric_keys = tuple(key for name in self.metric_names for key in (name, f"_{name}"))
        self._connect()
        self._bind_step()

    # what _bind_step makes: views of the state arrays, rebuilt after unpickling
    _step_bound: ClassVar[tuple[str, ...]] = ("_views", "_reward_scratch", "_step_kernel", "_fast")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for key in self._step_bound:
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._bind_step()

    def _bind_step(self) -> None:
        """Bind the state arrays the step path reads once (they are never reallocated: ``set_state``
        copies into them), so that a call at small B pays no dict look-ups or view creation."""
        s = self._state
        self._step_kernel = self._single_kernel_step()
        if isinstance(self.single_observation_space, spaces.Dict):
            obs: Any = tuple((k, s[f"obs:{k}"]) for k in self.single_observation_space.spaces)
        else:
            obs = s["obs"]
        self._views = (s["actions"], s["needs_reset"], s["terminated"], s["truncated"],
                       s["terminated"].view(bool), s["truncated"].view(bool), s["episode_steps"],
                       s["reward_components"], s.get("action_mask"), obs)
        products = np.empty_like(s["reward_components"])
        self._reward_scratch = (products, tuple(products[:, k] for k in range(products.shape[1])))
        # the common call in one typed call (see _step); None: every call takes the general path
        self._fast: VectorStep | None = VectorStep(self, _AUTORESET_CODES[self.autoreset_mode])

    # ------------------------------------------------------------------ family hooks
    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _connect(self) -> None:
        """Create the kernel object over ``self._state`` (called after construction and set_state)."""
        raise NotImplementedError

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def _kernel_step(self, active: np.ndarray) -> None:
        """Step the flagged sub-envs: the kernel's ``step`` (``_connect`` makes ``self._kernel``); a
        family overrides it to check actions before the call."""
        self._kernel.step(active)

    def _single_kernel_step(self) -> Callable[[np.ndarray], Any]:
        """What the steps call with their active flags (the single env's (1,) one, the vector env's
        (B,) one): the kernel's own ``step`` where the family keeps this class's ``_kernel_step``
        (the same call, one Python frame less), else its ``_kernel_step``. Bound when the env is
        built and again after unpickling (``_connect`` makes a new kernel)."""
        if type(self)._kernel_step is BatchedKernelEnv._kernel_step:
            return self._kernel.step
        return self._kernel_step

    def _first_masked_action(self, active: np.ndarray) -> int | None:
        """The first active sub-env whose loaded action its action mask rules out, or None."""
        s = self._state
        rows = np.flatnonzero(active)
        ok = s["action_mask"][rows, s["actions"][rows]] == 1
        return None if ok.all() else int(rows[np.argmin(ok)])

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Check a snapshot's family arrays against the bounds the kernel relies on (ValueError)."""
        raise NotImplementedError(f"{type(self).__name__} does not validate snapshots")

    def _extra_infos(self) -> dict[str, np.ndarray]:
        """Family-specific per-step info arrays with leading dimension B (copied by the caller).

        Returning the same dict every call (of views of state arrays, or of arrays the family
        rewrites in place each call), with the same keys and arrays, lets the vector step copy
        them with a plan made once (see ``_plan_extras``); a new dict per call works too, slower."""
        return {}

    def render_frame(self, index: int, mode: str) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ buffers
    @property
    def discrete(self) -> bool:
        return isinstance(self.single_action_space, spaces.Discrete)

    def _obs_keys(self) -> list[str]:
        if isinstance(self.single_observation_space, spaces.Dict):
            return [f"obs:{k}" for k in self.single_observation_space.spaces]
        return ["obs"]

    def _output_buffers(self) -> dict[str, np.ndarray]:
        b = self.num_envs
        out: dict[str, np.ndarray] = {}
        obs_space = self.single_observation_space
        if isinstance(obs_space, spaces.Dict):
            for key, sub in obs_space.spaces.items():
                out[f"obs:{key}"] = np.zeros((b, *sub.shape), dtype=sub.dtype)
        else:
            out["obs"] = np.zeros((b, *obs_space.shape), dtype=obs_space.dtype)
        act = self.single_action_space
        if isinstance(act, spaces.Discrete):
            out["actions"] = np.zeros(b, dtype=np.int64)
            out["action_mask"] = np.zeros((b, int(act.n)), dtype=np.int8)
        elif isinstance(act, spaces.Box):
            out["actions"] = np.zeros((b, *act.shape), dtype=np.float64)
        else:
            raise NotImplementedError(f"unsupported action space {act}")
        out["reward_components"] = np.zeros((b, len(self.reward_components)), dtype=np.float64)
        out["terminated"] = np.zeros(b, dtype=np.uint8)
        out["truncated"] = np.zeros(b, dtype=np.uint8)
        out["metrics"] = np.zeros((b, len(self.metric_names)), dtype=np.float64)
        out["rng"] = np.zeros((b, 4), dtype=np.uint64)
        out["needs_reset"] = np.ones(b, dtype=np.uint8)
        out["episode_steps"] = np.zeros(b, dtype=np.int64)
        return out

    def _observations(self, copy: bool) -> Any:
        obs = self._views[-1]
        if type(obs) is tuple:      # a Dict space: (key, array) pairs
            return {k: v.copy() for k, v in obs} if copy else {k: _read_only(v) for k, v in obs}
        return obs.copy() if copy else _read_only(obs)

    def _load_actions(self, actions: Any) -> None:
        buf = self._state["actions"]
        arr = actions if type(actions) is np.ndarray else np.asarray(actions)
        if arr.shape != buf.shape:
            raise ValueError(f"expected actions of shape {buf.shape}, got {arr.shape}")
        if self._is_discrete:
            kind = arr.dtype.kind
            if kind not in "iu":
                if kind == "f" and np.all(arr == np.floor(arr)):
                    arr = arr.astype(np.int64)
                else:
                    raise ValueError(f"discrete actions must be integers, got dtype {arr.dtype}")
            n = self._n_actions
            if kind == "u":
                bad = arr.max() >= n
            else:
                # one reduction for both bounds: a negative action reads as a huge unsigned one
                signed = arr if arr.dtype == np.int64 else arr.astype(np.int64)
                bad = signed.view(np.uint64).max() >= n
            if bad:
                raise ValueError(f"actions must lie in [0, {n - 1}], got {arr}")
        elif arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
            raise ValueError(f"actions must be finite numbers, got {arr!r}")
        buf[...] = arr

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``); see :mod:`sysgym.envs.seeding`."""
        with self._guard:
            options = dict(options or {})
            mask = options.pop("reset_mask", None)
            if mask is None:
                mask = np.ones(self.num_envs, dtype=np.uint8)
            else:
                mask = np.asarray(mask)
                if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                    raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},)")
                mask = mask.astype(np.uint8)
            seeds = per_env_seeds(seed, self.num_envs)
            for i, s in enumerate(seeds):
                if s is not None and mask[i]:
                    self._state["rng"][i] = rng_state(s)
            if seed is not None and isinstance(seed, (int, np.integer)):
                self._np_random, self._np_random_seed = gym.utils.seeding.np_random(int(seed))
            self._reset_masked(mask, options)
            # as SyncVectorEnv, the _-masks say which sub-envs were reset; unlike it, the other rows
            # keep their current values (Gymnasium leaves zeros there), so a consumer reading every
            # row's action mask after a masked reset still reads valid masks
            infos = self._every_info() if mask.all() else self._infos(None, rows=mask.astype(bool), zero_others=False)
            return self._observations(self.copy), infos

    def _reset_masked(self, mask: np.ndarray, options: dict[str, Any] | None,
                      chosen: np.ndarray | None = None) -> None:
        """Reset the sub-envs flagged in the uint8 ``mask`` (``chosen``: the same as bool, if at hand).
        ``VectorStep._reset`` does the same for NextStep resets inside a step: change both."""
        s = self._state
        if chosen is None:
            chosen = slice(None) if mask is self._all else mask.astype(bool)    # every sub-env: no mask indexing
        s["reward_components"][chosen] = 0.0
        s["terminated"][chosen] = 0
        s["truncated"][chosen] = 0
        self._kernel_reset(mask, options)
        s["needs_reset"][chosen] = 0
        s["episode_steps"][chosen] = 0

    def _step_limit(self, active: np.ndarray | None) -> np.ndarray | None:
        """Count the steps just taken; truncate sub-envs at ``max_episode_steps``.

        Returns which sub-envs the kernel itself ended (they carry episode metrics), or None when
        no limit is set (then every ended sub-env was ended by the kernel).
        """
        s = self._state
        if active is None:
            s["episode_steps"] += 1
        else:
            s["episode_steps"] += active
        if self.max_episode_steps is None:
            return None
        kernel_ended = (s["terminated"] | s["truncated"]).astype(bool)
        # TimeLimit's rule: truncated at the limit even when the episode also terminated there
        hit = s["episode_steps"] >= self.max_episode_steps
        if active is not None:
            hit &= active.astype(bool)
        s["truncated"][hit] = 1
        return kernel_ended

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        lock = self._guard._lock      # what ``with self._guard`` does, without its two method calls
        if not lock.acquire(False):
            raise self._guard.busy()
        try:
            # the common call in one typed call (``VectorStep.step``: int64 (B,) actions in range, or
            # finite float actions of the buffer's shape, and no sub-env awaiting a reset outside
            # NextStep autoreset); None: it changed nothing, and the general path takes the call
            fast = self._fast
            if fast is not None:
                out = fast.step(self, actions)
                if out is not None:
                    return out
            return self._step(actions)
        finally:
            lock.release()

    def _step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The general path of a step, which ``VectorStep`` mirrors (the test suite compares the
        two); ``VectorStep`` hands a SameStep autoreset with extras it does not copy to ``_finish``."""
        self._load_actions(actions)
        needs_reset = self._views[1]
        if needs_reset.tobytes() == self._no_flags:
            self._step_kernel(self._all)
            kernel_ended = self._step_limit(None)
        elif self.autoreset_mode is AutoresetMode.NEXT_STEP:
            resetting = needs_reset.copy()          # uint8 0/1: the kernel's reset mask
            active = resetting ^ 1                  # and the sub-envs that step
            self._step_kernel(active)
            kernel_ended = self._step_limit(active)
            self._reset_masked(resetting, None, resetting.view(bool))
        else:
            raise RuntimeError("step() on a sub-env whose episode ended; with autoreset_mode "
                               "'Disabled' call reset(options={'reset_mask': mask}) first")
        return self._finish(kernel_ended)

    def _finish(self, kernel_ended: np.ndarray | None) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """What a step returns once the kernel stepped and the step limit was applied: rewards,
        fresh flags, infos (SameStep: the autoreset of the done sub-envs), observations.
        ``kernel_ended``: what ``_step_limit`` returned."""
        _, needs_reset, term, trunc, term_flags, trunc_flags, _, comps, _, _ = self._views
        no_flags = self._no_flags
        rewards = self._rewards(comps)
        terminated = term_flags.copy()      # the kernels write 0/1: the same as astype(bool)
        truncated = trunc_flags.copy()
        if term.tobytes() == no_flags and trunc.tobytes() == no_flags:
            infos = self._every_info()      # no sub-env is done: nothing to report or reset
        else:
            done = terminated | truncated
            ended = done if kernel_ended is None else done & kernel_ended
            if self.autoreset_mode is AutoresetMode.SAME_STEP:
                infos = self._reset_same_step(done, ended)
            else:
                infos = self._infos(ended)
                needs_reset |= done
        return self._observations(self.copy), rewards, terminated, truncated, infos

    def _rewards(self, comps: np.ndarray) -> np.ndarray:
        """:func:`weighted_sum` of the (B, K) reward components, bit for bit (the same products,
        added left to right), in one multiply into a scratch buffer and K - 1 adds of its columns."""
        products, columns = self._reward_scratch
        np.multiply(comps, self.reward_weights, out=products)
        if len(columns) == 1:
            return columns[0].copy()
        out = np.add(columns[0], columns[1])
        for column in columns[2:]:
            out += column
        return out

    def _reset_same_step(self, done: np.ndarray, ended: np.ndarray) -> dict[str, Any]:
        """SameStep autoreset of the ``done`` sub-envs, with the infos SyncVectorEnv builds: the
        ended step's info and observation under ``final_info`` / ``final_obs`` (rows of the done
        sub-envs only), and at the top level the step info of the others and the reset info
        (reward components zero, the new episode's mask) of the done ones.
        ``VectorStep._reset_same_step`` does the same in C: change both."""
        final_info = self._infos(ended, rows=done)
        current = self._observations(True)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in np.flatnonzero(done):
            final_obs[i] = _index(current, i)
        self._reset_masked(done.astype(np.uint8), None)
        infos = self._every_info()
        infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
        infos["final_info"], infos["_final_info"] = final_info, done.copy()
        return infos

    def _every_info(self) -> dict[str, Any]:
        """``_infos(None)``: the infos of every sub-env, copied by ``VectorStep``'s plan if it has one."""
        fast = self._fast
        return self._general_infos(None) if fast is None else fast.infos(self)

    def _infos(self, ended: np.ndarray | None, rows: np.ndarray | None = None,
               zero_others: bool = True) -> dict[str, Any]:
        """The step's infos in Gymnasium's vector layout (``_key`` masks); ``episode_metrics`` for
        the sub-envs in ``ended``. With ``rows`` (bool, B) only those sub-envs report: their masks
        are True, the others' False and (with ``zero_others``) their entries zero, as
        ``VectorEnv._add_info`` leaves them. Scalar extras use the dtype ``_add_info`` gives the
        single env's Python scalars (int64, float64, bool), so native and sync infos are equal key
        by key, dtype included."""
        infos = self._general_infos(rows, zero_others)
        if ended is not None and ended.tobytes() != self._no_flags:
            self._add_metrics(infos, ended)
        return infos

    def _add_metrics(self, infos: dict[str, Any], ended: np.ndarray) -> None:
        """Add ``episode_metrics`` (and its mask) of the sub-envs flagged in the bool ``ended`` (some
        are): one fresh (M, B) array, metric k its row k, zero where the episode did not end; the
        M + 1 masks are the rows of one fresh (M + 1, B) copy of ``ended``. ``VectorStep`` builds the
        same in C (``_add_metrics``): change both."""
        values = np.where(ended, self._state["metrics"].T, 0.0)
        masks = np.empty((len(values) + 1, self.num_envs), dtype=bool)
        masks[...] = ended
        rows = list(masks)
        infos["episode_metrics"] = dict(zip(self._metric_keys, chain.from_iterable(zip(values, rows))))
        infos["_episode_metrics"] = rows[-1]

    def _plan_extras(self, extras: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, Any], list[Any]]:
        """How ``VectorStep`` copies the infos of every sub-env (``_general_infos(None)``) when the
        family returns the same dict every call: (extras, the infos' keys in order with their
        ``_key`` masks, [(key, bound copy: ``copy``, or ``astype`` to the info dtype)])."""
        everyone = self._everyone
        template: dict[str, Any] = {"reward_components": None, "_reward_components": everyone}
        if self._is_discrete:
            template["action_mask"], template["_action_mask"] = None, everyone
        copies = []
        for key, value in extras.items():
            template[key], template[f"_{key}"] = None, everyone
            dtype = _scalar_info_dtype(value)
            # (astype keeps a 2-D source's memory order, as the general path's astype does)
            same = value.ndim == 1 and value.dtype == dtype
            copies.append((key, value.copy if same else functools.partial(value.astype, dtype)))
        return extras, template, copies

    def _general_infos(self, rows: np.ndarray | None, zero_others: bool = True) -> dict[str, Any]:
        """The infos without ``episode_metrics``, key by key (see :meth:`_infos`)."""
        s = self._state
        mask = self._everyone if rows is None else rows.copy()
        partial = rows is not None and zero_others

        def only(values: np.ndarray) -> np.ndarray:
            if not partial:
                return values
            shaped = rows.reshape((-1,) + (1,) * (values.ndim - 1))
            return np.where(shaped, values, np.zeros((), dtype=values.dtype))

        infos: dict[str, Any] = {
            "reward_components": only(s["reward_components"].copy()),
            "_reward_components": mask,
        }
        if self._is_discrete:
            infos["action_mask"] = only(s["action_mask"].copy())
            infos["_action_mask"] = mask
        dtypes = self._info_dtypes
        for key, value in self._extra_infos().items():
            known = dtypes.get(key)
            if known is None or known[0] != value.dtype:
                known = dtypes[key] = (value.dtype, _scalar_info_dtype(value), f"_{key}")
            infos[key] = only(value.astype(known[1], copy=True))
            infos[known[2]] = mask
        return infos

    def _single_info(self, i: int, ended: bool) -> dict[str, Any]:
        s = self._state
        info: dict[str, Any] = {"reward_components": s["reward_components"][i].copy()}
        if self.discrete:
            info["action_mask"] = s["action_mask"][i].copy()
        for key, value in self._extra_infos().items():
            info[key] = value.item(i) if value.ndim == 1 else value[i].copy()
        if ended:
            info["episode_metrics"] = dict(zip(self.metric_names, s["metrics"][i].tolist()))
        return info

    def action_masks(self) -> np.ndarray:
        """Valid actions of every sub-env, (B, n) bool (sb3-contrib MaskablePPO convention)."""
        if not self.discrete:
            raise AttributeError("continuous action spaces have no action mask")
        return self._state["action_mask"].astype(bool)

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        return tuple(self.render_frame(i, self.render_mode) for i in range(self.num_envs))

    # ------------------------------------------------------------------ state save / restore
    def get_state(self) -> dict[str, Any]:
        """A picklable snapshot of every sub-env (kernel state, RNGs, last outputs) and of the
        identity of this env's configuration (see :mod:`sysgym.envs.snapshot`).

        Raises ``RuntimeError`` while another thread steps or resets the env: the arrays are read
        under the same guard, so a snapshot (and its seal) is always a state between two calls.
        """
        with self._guard:
            arrays = {k: v.copy() for k, v in self._state.items()}
        return {"format": snapshot.FORMAT, "class": type(self).__name__, "num_envs": self.num_envs,
                "config": self._config_id, "arrays": arrays,
                "seal": snapshot.seal(self._seal_prefix, arrays.values())}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`get_state` on an env built with the same kwargs.

        Raises ``ValueError`` (and leaves the env unchanged) if the snapshot comes from another
        class, size or configuration, or if any value lies outside what the kernel accepts. An
        unchanged snapshot taken in this process skips the value checks (see
        :mod:`sysgym.envs.snapshot`: its seal proves it is this env's own state).
        """
        with self._guard:
            arrays = snapshot.check_envelope(state, type(self).__name__, self.num_envs, self._config_id)
            snapshot.check_arrays_match(self._state, arrays)
            if not snapshot.sealed(state, self._seal_prefix, self._state):
                self._check_common_state(arrays)
                self._check_state(arrays)
            for key, dst in self._state.items():
                np.copyto(dst, arrays[key])

    def _check_common_state(self, arrays: dict[str, np.ndarray]) -> None:
        snapshot.check_flags(arrays, "terminated", "truncated", "needs_reset")
        snapshot.check_finite(arrays, "reward_components", "metrics")
        snapshot.check_range(arrays, "episode_steps", 0, 2**62)
        if not np.all(arrays["rng"].any(axis=1)):
            raise ValueError("snapshot array 'rng' holds an all-zero xoshiro256** state")
        if self.discrete:
            snapshot.check_flags(arrays, "action_mask")
            live = arrays["needs_reset"] == 0
            if not np.all(arrays["action_mask"][live].any(axis=1)):
                raise ValueError("snapshot array 'action_mask' leaves a running sub-env no valid action")
            snapshot.check_range(arrays, "actions", 0, int(self.single_action_space.n) - 1)
        else:
            snapshot.check_finite(arrays, "actions")
        obs_space = self.single_observation_space
        if isinstance(obs_space, spaces.Dict):
            for key, sub in obs_space.spaces.items():
                snapshot.check_in_space(arrays, f"obs:{key}", sub)
        else:
            snapshot.check_in_space(arrays, "obs", obs_space)

    def close_extras(self, **kwargs: Any) -> None:
        pass


class KernelEnv(gym.Env):
    """Single-env view (B=1) of a family's :class:`BatchedKernelEnv`.

    Subclasses only set ``vector_class``. Observations and infos are fresh copies on every call.
    Stepping after the episode ended raises: call ``reset()``.

    Contract: the single env returns exactly what the B=1 vector env returns (observation,
    reward, flags, info values), which ``tests/test_contract.py`` checks for every ID.

    How the two paths share code, so that a change to one is checked against the other:

    * shared: the kernel and its state arrays (``self._vec._state``, one B=1 vector env built in
      ``__init__``), ``reset`` (it calls the vector env's ``_reset_masked``), action checks
      (``_discrete_action``), observations (the vector env's buffers), ``get_state`` /
      ``set_state`` / pickling, ``render`` and the families' extra infos (``_extra_infos``);
    * its own, for speed (the per-call path most users pay for): ``step`` checks an int action
      inline (anything else goes through ``_discrete_action``), calls the callable the family's
      ``_single_kernel_step`` gives, bound once, reads flags and counts through memoryviews bound
      once (the state arrays are never reallocated: ``set_state`` copies into them), applies
      ``max_episode_steps`` as ``BatchedKernelEnv._step_limit`` does, sums the reward as
      :func:`weighted_sum` does, and builds its info as ``BatchedKernelEnv._single_info`` does.
      Change one of those and change its twin here; ``tests/test_single_step.py`` checks each
      against the general path.
    * the same step in one typed call (``sysgym.cython_core.single_step.SingleStep``) for an int
      action of a discrete space; ``_step`` (the Python step above) takes every other call and
      refuses what it refuses. Change ``_step`` and change its twin there; the same test module
      compares the two.
    """

    vector_class: ClassVar[type[BatchedKernelEnv]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        for key in VECTOR_ONLY_KWARGS:
            if key in kwargs:
                raise ValueError(f"{key}= is an option of a vector env, not of one env: with gym.make_vec("
                                 f"..., vectorization_mode='sync' or 'async') pass vector_kwargs={{{key!r}: ...}}, "
                                 f"or use vectorization_mode='vector_entry_point'")
        self._vec = self.vector_class(1, autoreset_mode=AutoresetMode.DISABLED, copy=False,
                                      render_mode=render_mode, **kwargs)
        self.render_mode = render_mode
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self.reward_components = self._vec.reward_components
        self.reward_weights = self._vec.reward_weights
        self._weights = self.reward_weights.tolist()
        self.metric_names = self._vec.metric_names
        self._one = np.ones(1, dtype=np.uint8)
        self._discrete = self._vec.discrete
        self._n_actions = int(self.action_space.n) if self._discrete else 0
        self._dict_obs = isinstance(self.observation_space, spaces.Dict)
        self._bind()

    def _bind(self) -> None:
        """Views of the B=1 state rows the step reads and writes."""
        s = self._vec._state
        self._lock = self._vec._guard._lock
        # memoryviews of the per-step flags: indexing one is a fraction of numpy's per-call cost
        self._needs_reset, self._actions = memoryview(s["needs_reset"]), s["actions"]
        self._terminated, self._truncated = memoryview(s["terminated"]), memoryview(s["truncated"])
        self._steps, self._comps = memoryview(s["episode_steps"]), s["reward_components"][0]
        # a discrete action is stored through a memoryview too (the value is checked first)
        self._action_slot = memoryview(s["actions"]) if self._discrete else None
        self._kernel_step = self._vec._single_kernel_step()
        self._mask = s["action_mask"][0] if self._discrete else None
        # (key, row) pairs of a Dict observation, or the row of a Box one
        self._obs_rows = tuple((k, s[f"obs:{k}"][0]) for k in self.observation_space.spaces) if self._dict_obs \
            else s["obs"][0]
        self._extras: dict[str, np.ndarray] | None = None
        self._extras_views: list[tuple[str, Any, bool]] | None = None   # (info key, view, scalar)
        self._action_shape = None if self._discrete else (1, *self.action_space.shape)
        # an int action's step in one typed call (see step); None: every call takes _step
        self._fast: SingleStep | None = SingleStep(self) if self._discrete else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_needs_reset", "_actions", "_action_slot", "_terminated", "_truncated", "_steps", "_comps",
                    "_kernel_step", "_mask", "_obs_rows", "_extras", "_extras_views", "_fast"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    @property
    def batched(self) -> BatchedKernelEnv:
        """The underlying B=1 batched env (kernel state, family helpers)."""
        return self._vec

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        vec = self._vec
        with vec._guard:
            if seed is not None:
                vec._state["rng"][0] = rng_state(seed)
            vec._reset_masked(vec._all, options)
            return self._obs(), self._info(False)

    def step(self, action: Any):
        fast = self._fast
        if fast is None:
            return self._step(action)
        return fast.step(self, action)    # an int action in range; it hands anything else to _step

    def _step(self, action: Any):
        """The step in Python: every action, its checks and refusals (``SingleStep`` mirrors it)."""
        vec = self._vec
        if not self._lock.acquire(False):
            raise vec._guard.busy()
        try:
            if self._needs_reset[0]:
                raise RuntimeError("step() called after the episode ended (or before reset()); call reset()")
            if self._discrete:
                self._action_slot[0] = action if type(action) is int and 0 <= action < self._n_actions \
                    else _discrete_action(action, self._n_actions)
            else:
                self._load_continuous(action)
            self._kernel_step(self._one)
            terminated = self._terminated[0] != 0
            truncated = self._truncated[0] != 0
            kernel_ended = terminated or truncated
            steps = self._steps[0] + 1
            self._steps[0] = steps
            limit = vec.max_episode_steps
            if limit is not None and steps >= limit:   # TimeLimit: also when it terminated
                truncated = True
                self._truncated[0] = 1
            if terminated or truncated:
                self._needs_reset[0] = 1
            comps = self._comps.copy()
            c, w = comps.tolist(), self._weights
            if len(w) == 3:     # weighted_sum's order, on Python floats: ((c0 w0 + c1 w1) + c2 w2)
                reward = c[0] * w[0] + c[1] * w[1] + c[2] * w[2]
            else:
                reward = c[0] * w[0]
                for k in range(1, len(w)):
                    reward += c[k] * w[k]
            return (self._obs(), reward, terminated, truncated,
                    self._info(kernel_ended, comps))
        finally:
            self._lock.release()

    def _load_continuous(self, action: Any) -> None:
        arr = np.asarray(action)
        if arr.size != self._actions.size or arr.dtype.kind not in "iuf":
            raise ValueError(f"expected a numeric action of shape {self.action_space.shape}, got {action!r}")
        values = arr.reshape(self._action_shape)
        if not all(map(math.isfinite, values.flat)):
            raise ValueError(f"actions must be finite numbers, got {action!r}")
        if arr.shape != self.action_space.shape and arr.shape != self._action_shape:
            raise ValueError(f"expected actions of shape {self.action_space.shape}, got {arr.shape}")
        self._actions[...] = values

    def _info(self, ended: bool, comps: np.ndarray | None = None) -> dict[str, Any]:
        """The step's info: what ``BatchedKernelEnv._single_info(0, ended)`` gives."""
        if comps is None:
            comps = self._comps.copy()
        info: dict[str, Any] = {"reward_components": comps, "action_mask": self._mask.copy()} if self._discrete \
            else {"reward_components": comps}
        extras = self._vec._extra_infos()
        if extras is not self._extras:
            # first call, or a family that builds a new dict per call: read it as _single_info does
            self._extras, self._extras_views = extras, None
            for key, value in extras.items():
                info[key] = value.item(0) if value.ndim == 1 else value[0].copy()
        else:
            views = self._extras_views
            if views is None:
                # The family keeps one dict of views: read its scalars through memoryviews from now on
                # (indexing one gives the Python int/float/bool that .item gives, in a third of the time).
                views = self._extras_views = [(k, memoryview(v) if v.ndim == 1 else v, v.ndim == 1)
                                              for k, v in extras.items()]
            for key, view, scalar in views:
                info[key] = view[0] if scalar else view[0].copy()
        if ended:
            vec = self._vec
            info["episode_metrics"] = dict(zip(vec.metric_names, vec._state["metrics"][0].tolist()))
        return info

    def _obs(self) -> Any:
        if self._dict_obs:
            obs = {}
            for key, row in self._obs_rows:
                obs[key] = row.copy()
            return obs
        return self._obs_rows.copy()

    def action_masks(self) -> np.ndarray:
        """Valid actions now, (n,) bool (sb3-contrib MaskablePPO convention)."""
        if not self._discrete:
            raise AttributeError("continuous action spaces have no action mask")
        return self._vec._state["action_mask"][0].astype(bool)

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        return self._vec.render_frame(0, self.render_mode)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the flattened observation's entries (see the family's docs)."""
        return self._vec.feature_names

    def get_state(self) -> dict[str, Any]:
        """A picklable snapshot of the simulation (see :meth:`BatchedKernelEnv.get_state`)."""
        return self._vec.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from :meth:`get_state`; the next step continues from it exactly."""
        self._vec.set_state(state)


def restore_arrays(live: dict[str, np.ndarray], saved: dict[str, np.ndarray]) -> None:
    """Copy ``saved`` into the ``live`` state arrays in place (kernels keep views of them)."""
    snapshot.check_arrays_match(live, saved)
    for key, dst in live.items():
        np.copyto(dst, saved[key])


def _discrete_action(action: Any, n: int) -> int:
    """``action`` as an int in [0, n): ints, numpy integer scalars and integral floats."""
    if isinstance(action, (bool, np.bool_)):
        a = None
    elif isinstance(action, (int, np.integer)):
        a = int(action)
    else:
        value = np.asarray(action)
        a = None
        if value.ndim == 0 and value.dtype.kind in "iuf" and np.isfinite(value) and value == np.floor(value):
            a = int(value)
    if a is None or not 0 <= a < n:
        raise ValueError(f"action must be an int in [0, {n - 1}], got {action!r}")
    return a


def _scalar_info_dtype(values: np.ndarray) -> np.dtype:
    # the dtype VectorEnv._add_info gives a single env's Python int / float / bool info values
    if values.ndim != 1:
        return values.dtype
    return {"b": np.dtype(bool), "i": np.dtype(np.int64), "u": np.dtype(np.int64)}.get(
        values.dtype.kind, np.dtype(np.float64))


def _index(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written through (the buffer itself stays writable)."""
    view = array.view()
    view.flags.writeable = False
    return view
