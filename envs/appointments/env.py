"""Gymnasium front ends of the appointment-scheduling kernel: the native vector env and its single view."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sysgym.cython_core.appointments import (
    N_BASE_METRICS,
    N_PERCENTILE_METRICS,
    ORACLE_AVERAGE,
    ORACLE_BEST,
    AppointmentsKernel,
)

from .. import snapshot, validate
from ..batched import BatchedKernelEnv, KernelEnv
from . import render
from .config import (
    BASE_METRICS,
    PERCENTILE_METRICS,
    AppointmentsConfig,
    build_config,
    kernel_config,
)
from .oracle import DayState, check_oracle_size, oracle_draws

__all__ = ["REWARD_COMPONENTS", "AppointmentsEnv", "AppointmentsVectorEnv"]

REWARD_COMPONENTS = ("idle", "lateness", "invalid")
ORACLE_MODES = {"best": ORACLE_BEST, "average": ORACLE_AVERAGE}
assert (len(BASE_METRICS), len(PERCENTILE_METRICS)) == (N_BASE_METRICS, N_PERCENTILE_METRICS)


def booking_table(cfg: AppointmentsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(table, strides): the booked start of the next item, one slot per task placed and
    break_booked per break placed, for every remaining multiset ``rem`` (placed = counts - rem), at
    flat index ``rem @ strides`` (the C-order strides of the (n_short+1, n_long+1, n_breaks+1) grid)."""
    shape = tuple(c + 1 for c in cfg.counts)
    rem = np.array(list(np.ndindex(*shape)), dtype=np.int64).reshape(-1, 3)
    placed = np.array(cfg.counts, dtype=np.int64) - rem
    table = (placed[:, 0] + placed[:, 1]) * cfg.slot
    if cfg.counts[2]:       # (with no break to place, placed breaks stay 0: booked + 0.0 is booked)
        table += placed[:, 2] * cfg.break_booked
    return table, np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)


class AppointmentsVectorEnv(BatchedKernelEnv):
    """B clinic days scheduled in one Cython call. Kwargs: see :mod:`sysgym.envs.appointments`.

    With ``invalid_action="substitute"`` (default) an exhausted type is replaced by the first type
    with items left, counted in ``invalid_actions`` and flagged in ``info["invalid_action"]``; with
    ``"raise"`` a ``ValueError`` naming the first offending sub-env is raised before any sub-env moves.
    """

    reward_components = REWARD_COMPONENTS
    config_builder = staticmethod(build_config)
    _connected = ("_extras", "_booking", "_info_sources")

    def _build(self, **kwargs: Any) -> dict[str, np.ndarray]:
        self.config: AppointmentsConfig = build_config(**kwargs)
        cfg = self.config
        if cfg.observation == "boolean":
            self.single_observation_space = spaces.MultiBinary(len(cfg.feature_names))
        else:
            low, high = cfg.numeric_bounds()
            self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(cfg.num_types)
        self.reward_weights = np.array([1.0, 1.0, cfg.invalid_weight])
        self.metric_names = cfg.metric_names
        self._draw_cache: dict[tuple[int, int], np.ndarray] = {}
        b, n = self.num_envs, cfg.num_items
        scalar = lambda: np.zeros(b, dtype=np.int64)  # noqa: E731
        real = lambda: np.zeros(b, dtype=np.float64)  # noqa: E731
        return {
            "k": scalar(), "prev": np.full(b, -1, dtype=np.int64), "prev2": np.full(b, -1, dtype=np.int64),
            "invalid": scalar(), "rem": np.tile(np.array(cfg.counts, dtype=np.int64), (b, 1)),
            "seq": np.full((b, n), -1, dtype=np.int64), "end": real(), "late_max": real(), "idle": real(),
            "start": np.zeros((b, n)), "finish": np.zeros((b, n)),
            "fac": np.ones((b, 2, cfg.factor_columns)), "perc_rng": np.ones((b, 4), dtype=np.uint64),
        }

    def _connect(self) -> None:
        self._kernel = AppointmentsKernel(kernel_config(self.config, self.num_envs), self._state)
        s, b = self._state, self.num_envs
        # the extra infos, rewritten in place by every _extra_infos call (one dict: the vector step
        # copies it with a plan made once), and what _booked_next reads: the booked start of every
        # remaining multiset, looked up at rem @ strides (one matrix product and one lookup per call)
        self._extras = {"invalid_action": np.zeros(b, dtype=bool), "delay": np.zeros(b)}
        table, strides = booking_table(self.config)
        self._booking = (s["rem"], strides, np.zeros(b, dtype=np.int64), table)
        self._info_sources = (s["reward_components"][:, 2], s["end"])

    def _kernel_reset(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        if options:
            raise ValueError(f"Appointments reset takes no options besides reset_mask, got {sorted(options)}")
        self._kernel.reset(mask)

    def _kernel_step(self, active: np.ndarray) -> None:
        if self.config.invalid_action == "raise" and (b := self._first_masked_action(active)) is not None:
            prefix = f"sub-env {b}: " if self.num_envs > 1 else ""
            a = int(self._state["actions"][b])
            raise ValueError(f"{prefix}action {a} ({self.config.type_names[a]}) is not valid: no "
                             f"{self.config.type_names[a]} item is left to schedule")
        self._kernel.step(active)

    def _extra_infos(self) -> dict[str, np.ndarray]:
        # invalid_action: reward component 2 < 0; delay: end - the booked start of the next item
        extras = self._extras
        invalid, end = self._info_sources
        np.less(invalid, 0, out=extras["invalid_action"])
        np.subtract(end, self._booked_next(), out=extras["delay"])
        return extras

    def _booked_next(self) -> np.ndarray:
        """(B,) booked start of the next item (see :func:`booking_table`), a fresh array."""
        rem, strides, index, table = self._booking
        np.dot(rem, strides, out=index)
        return table[index]

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Every index, count and time of a snapshot against the bounds the kernel relies on."""
        cfg = self.config
        n, t = cfg.num_items, cfg.num_types
        counts = np.array(cfg.counts, dtype=np.int64)
        snapshot.check_range(arrays, "k", 0, n)
        snapshot.check_range(arrays, "rem", 0, counts[None, :])
        snapshot.check_range(arrays, "prev", -1, t - 1)
        snapshot.check_range(arrays, "prev2", -1, t - 1)
        snapshot.check_range(arrays, "seq", -1, t - 1)
        snapshot.check_range(arrays, "invalid", 0, 2**62)
        snapshot.check_range(arrays, "end", 0.0, cfg.horizon)
        snapshot.check_range(arrays, "late_max", 0.0, cfg.horizon)
        snapshot.check_range(arrays, "idle", 0.0, cfg.booked_length)
        snapshot.check_range(arrays, "start", 0.0, cfg.horizon)
        snapshot.check_range(arrays, "finish", 0.0, cfg.horizon)
        lo, hi = 1.0 - cfg.noise, 1.0 + cfg.noise
        snapshot.check_range(arrays, "fac", lo, hi)
        if not np.all(arrays["perc_rng"].any(axis=1)):
            raise ValueError("snapshot array 'perc_rng' holds an all-zero xoshiro256** state")
        k, seq, rem = arrays["k"], arrays["seq"], arrays["rem"]
        if cfg.optional_breaks and np.any((rem[:, 0] + rem[:, 1] == 0) & (seq[:, n - 1] == 2)):
            raise ValueError("snapshot array 'seq' ends a day with a break after its last task")
        placed = np.arange(n)[None, :] < k[:, None]
        for b in range(self.num_envs):
            kb = int(k[b])
            if np.any(seq[b, :kb] < 0) or np.any(seq[b, kb:] != -1):
                raise ValueError(f"snapshot array 'seq'[{b}] must hold k={kb} types then -1s, got "
                                 f"{seq[b].tolist()}")
            used = np.bincount(seq[b, :kb], minlength=3)[:3]
            if np.any(rem[b] != counts - used):
                raise ValueError(f"snapshot array 'rem'[{b}] = {rem[b].tolist()} does not match the "
                                 f"{kb} items in 'seq' (expected {(counts - used).tolist()})")
            for key, back in (("prev", 1), ("prev2", 2)):
                want = int(seq[b, kb - back]) if kb >= back else -1
                if int(arrays[key][b]) != want:
                    raise ValueError(f"snapshot array {key!r}[{b}] = {int(arrays[key][b])} but 'seq' says {want}")
        if np.any(~placed & ((arrays["start"] != 0) | (arrays["finish"] != 0))):
            raise ValueError("snapshot arrays 'start'/'finish' hold times for slots not yet placed")

    # ------------------------------------------------------------------ read-only views for agents
    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the observation entries (Boolean features, or the numeric state)."""
        cfg = self.config
        return cfg.feature_names if cfg.observation == "boolean" else cfg.numeric_names

    def boolean_features(self) -> np.ndarray:
        """The Boolean features (B, F) int8 of every sub-env now, in any observation mode
        (names: ``config.feature_names``)."""
        out = np.zeros((self.num_envs, len(self.config.feature_names)), dtype=np.int8)
        self._kernel.write_features(out)
        return out

    def day_state(self, index: int = 0) -> DayState:
        """The compact state of sub-env ``index`` that the oracle works from."""
        s = self._state
        return DayState(step=int(s["k"][index]), end=float(s["end"][index]),
                        max_lateness=float(s["late_max"][index]), total_idle=float(s["idle"][index]),
                        prev=int(s["prev"][index]), prev2=int(s["prev2"][index]),
                        remaining=tuple(int(x) for x in s["rem"][index, :self.config.num_types]))

    def day_factors(self) -> np.ndarray:
        """(B, 2, M) the duration multipliers of every sub-env's day (drawn at reset): what
        :func:`~sysgym.envs.appointments.oracle.percentile_of_mean` ranks a cost against."""
        return self._state["fac"].copy()

    def schedule(self, index: int = 0) -> dict[str, np.ndarray]:
        """The items placed so far in sub-env ``index``: ``type``, ``booked``, ``start``, ``finish``."""
        s, cfg = self._state, self.config
        k = int(s["k"][index])
        types = s["seq"][index, :k].copy()
        lengths = np.where(types == 2, cfg.break_booked, cfg.slot)
        return {"type": types, "booked": np.concatenate([[0.0], np.cumsum(lengths)[:-1]])[:k],
                "start": s["start"][index, :k].copy(), "finish": s["finish"][index, :k].copy()}

    def oracle_values(self, draws: int = 32, oracle: str = "best", seed: int = 0) -> np.ndarray:
        """Per-action expected C_alpha (B, types) of every sub-env from its current state, with an
        optimal continuation (``oracle="best"``) or the mean over all continuations
        (``"average"``), over ``draws`` common noise draws (``inf``: no item of that type left).
        See :func:`sysgym.envs.appointments.oracle.oracle_values`."""
        mode, table = self.oracle_setup(draws, oracle, seed)
        out = np.empty((self.num_envs, self.config.num_types))
        self._kernel.oracle(self._all, table, mode, out)
        return out

    def oracle_setup(self, draws: int = 32, oracle: str = "best", seed: int = 0) -> tuple[int, np.ndarray]:
        """Check the oracle's arguments (ValueError) and return its mode and (cached) draw table."""
        if oracle not in ORACLE_MODES:
            raise ValueError(f"oracle must be one of {tuple(ORACLE_MODES)}, got {oracle!r}")
        check_oracle_size(self.config)
        key = (validate.integer("draws", draws, 1, 4096), validate.integer("seed", seed, 0, 2**63 - 1))
        if key not in self._draw_cache:
            self._draw_cache[key] = oracle_draws(self.config, draws=draws, seed=seed)
        return ORACLE_MODES[oracle], self._draw_cache[key]

    def render_frame(self, index: int, mode: str) -> Any:
        s = self._state
        frame = render.AppointmentsFrame(
            day=self.schedule(index), booked_next=float(self._booked_next()[index]), left=s["rem"][index].copy(),
            k=int(s["k"][index]), end=float(s["end"][index]), idle=float(s["idle"][index]),
            late_max=float(s["late_max"][index]))
        return render.ansi(frame, self.config) if mode == "ansi" else render.rgb(frame, self.config)


class AppointmentsEnv(KernelEnv):
    """Appointment scheduling (single env). Kwargs: see :mod:`sysgym.envs.appointments`."""

    vector_class = AppointmentsVectorEnv

    @property
    def config(self) -> AppointmentsConfig:
        return self._vec.config

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._vec.feature_names

    def boolean_features(self) -> np.ndarray:
        return self._vec.boolean_features()[0]

    def day_state(self) -> DayState:
        return self._vec.day_state(0)

    def schedule(self) -> dict[str, np.ndarray]:
        return self._vec.schedule(0)

    def day_factors(self) -> np.ndarray:
        return self._vec.day_factors()[0]

    def oracle_values(self, draws: int = 32, oracle: str = "best", seed: int = 0) -> np.ndarray:
        return self._vec.oracle_values(draws, oracle, seed)[0]
