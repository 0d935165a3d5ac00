"""Configuration of the appointment-scheduling family: kwargs validation, the P1-P3 presets,
derived sizes and the names of observation entries and metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import validate

# Taub & Pianykh (PLoS ONE 2022): P1 short/long tasks; P2 plus a changeover buffer; P3 plus breaks.
PROBLEMS: dict[str, dict[str, float | int]] = {
    "P1": {"buffer": 0.0, "n_breaks": 0},
    "P2": {"buffer": 15.0, "n_breaks": 0},
    "P3": {"buffer": 15.0, "n_breaks": 2},
}
TYPE_NAMES = ("short", "long", "break")
MAX_TASKS_PER_TYPE = 64
MAX_BREAKS = 8
MAX_MINUTES = 24 * 60.0
PERCENTILE_MODES = ("exact", "auto", "sample", "off")
BASE_METRICS = ("cost", "mean_idle", "max_lateness", "total_idle", "makespan", "invalid_actions")
PERCENTILE_METRICS = ("percentile_efficacy", "best_cost", "orderings")


def multinomial(counts: tuple[int, ...]) -> int:
    """Number of distinct orderings of a multiset with these counts."""
    out = math.factorial(sum(counts))
    for c in counts:
        out //= math.factorial(c)
    return out


@dataclass(frozen=True)
class AppointmentsConfig:
    """Validated settings; see :mod:`sysgym.envs.appointments` for what each one means."""

    problem: str
    n_short: int
    n_long: int
    n_breaks: int
    short_duration: float
    long_duration: float
    slot: float
    buffer: float
    break_duration: float
    break_elasticity: float
    noise: float
    alpha: float
    observation: str
    invalid_action: str
    invalid_weight: float
    percentile: str            # resolved: "exact", "sample" or "off"
    enumeration_limit: int
    percentile_samples: int

    @property
    def counts(self) -> tuple[int, int, int]:
        return (self.n_short, self.n_long, self.n_breaks)

    @property
    def durations(self) -> tuple[float, float, float]:
        return (self.short_duration, self.long_duration, self.break_duration)

    @property
    def num_types(self) -> int:
        """Action types: short and long, plus break when the day has breaks."""
        return 3 if self.n_breaks > 0 else 2

    @property
    def type_names(self) -> tuple[str, ...]:
        return TYPE_NAMES[:self.num_types]

    @property
    def num_items(self) -> int:
        return self.n_short + self.n_long + self.n_breaks

    @property
    def orderings(self) -> int:
        """Distinct orderings of the day's items (what the percentile ranks against)."""
        return multinomial(self.counts)

    @property
    def factor_columns(self) -> int:
        return max(self.n_short, self.n_long, 1)

    @property
    def horizon(self) -> float:
        """An upper bound of every time in a day (minutes): all slots plus every item at its
        longest plus every buffer."""
        return (self.num_items * self.slot + (1.0 + self.noise) * (
            self.n_short * self.short_duration + self.n_long * self.long_duration)
            + self.n_breaks * self.break_duration + self.num_items * self.buffer)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the Boolean observation (Taub & Pianykh, Table 1, as read in the docs)."""
        t = self.type_names
        names = ["progress_gt_25", "progress_gt_50", "progress_gt_75", "delayed",
                 "significantly_delayed", "spent_lt_left"]
        names += [f"prev_{x}" for x in t] + [f"prev2_{x}" for x in t]
        names += ["prev_longer", "prev_shorter", "prev_equal"]
        if self.n_breaks > 0:
            names.append("break_available")
        names += ["short_left", "long_left", "more_short_left", "more_long_left"]
        return tuple(names)

    @property
    def numeric_names(self) -> tuple[str, ...]:
        t = self.type_names
        return tuple([f"{x}_left" for x in t] + ["step", "delay", "max_lateness", "total_idle"]
                     + [f"prev_{x}" for x in t])

    @property
    def metric_names(self) -> tuple[str, ...]:
        return BASE_METRICS + (() if self.percentile == "off" else PERCENTILE_METRICS)

    def numeric_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box bounds of the numeric observation."""
        t, h = self.num_types, self.horizon
        low = [0.0] * t + [0.0, -self.slot, 0.0, 0.0] + [0.0] * t
        high = [float(c) for c in self.counts[:t]] + [float(self.num_items), h, h,
                                                       self.num_items * self.slot] + [1.0] * t
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)


def build_config(*, problem: str = "P1", n_short: int = 6, n_long: int = 6, n_breaks: int | None = None,
                 short_duration: float = 30.0, long_duration: float = 60.0, slot: float = 45.0,
                 buffer: float | None = None, break_duration: float = 60.0, break_elasticity: float = 15.0,
                 noise: float = 0.05, alpha: float = 0.5, observation: str = "boolean",
                 invalid_action: str = "substitute", invalid_weight: float = 0.0, percentile: str = "exact",
                 enumeration_limit: int = 1_000_000, percentile_samples: int = 10_000) -> AppointmentsConfig:
    """Validate the kwargs into an :class:`AppointmentsConfig` (``ValueError`` naming the kwarg).

    ``problem`` supplies the defaults of ``buffer`` and ``n_breaks``; passing them overrides it.
    """
    problem = validate.choice("problem", problem, tuple(PROBLEMS))
    preset = PROBLEMS[problem]
    n_short = validate.integer("n_short", n_short, 0, MAX_TASKS_PER_TYPE)
    n_long = validate.integer("n_long", n_long, 0, MAX_TASKS_PER_TYPE)
    n_breaks = validate.integer("n_breaks", preset["n_breaks"] if n_breaks is None else n_breaks, 0, MAX_BREAKS)
    if n_short + n_long < 1:
        raise ValueError("n_short + n_long must be >= 1: a day needs at least one task")
    short_duration = validate.number("short_duration", short_duration, 0.0, MAX_MINUTES, lo_open=True)
    long_duration = validate.number("long_duration", long_duration, 0.0, MAX_MINUTES, lo_open=True)
    slot = validate.number("slot", slot, 0.0, MAX_MINUTES, lo_open=True)
    buffer = validate.number("buffer", preset["buffer"] if buffer is None else buffer, 0.0, MAX_MINUTES)
    break_duration = validate.number("break_duration", break_duration, 0.0, MAX_MINUTES, lo_open=True)
    break_elasticity = validate.number("break_elasticity", break_elasticity, 0.0, break_duration)
    noise = validate.number("noise", noise, 0.0, 1.0)
    alpha = validate.number("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)
    observation = validate.choice("observation", observation, ("boolean", "numeric"))
    invalid_action = validate.choice("invalid_action", invalid_action, ("substitute", "raise"))
    invalid_weight = validate.number("invalid_weight", invalid_weight, 0.0, 1e6)
    percentile = validate.choice("percentile", percentile, PERCENTILE_MODES)
    enumeration_limit = validate.integer("enumeration_limit", enumeration_limit, 1, 10**9)
    percentile_samples = validate.integer("percentile_samples", percentile_samples, 1, 10**7)

    count = multinomial((n_short, n_long, n_breaks))
    if percentile == "exact" and count > enumeration_limit:
        raise ValueError(f"enumeration_limit={enumeration_limit}: the day has {count} orderings "
                         f"({n_short} short, {n_long} long, {n_breaks} breaks) to enumerate for the "
                         "percentile; raise enumeration_limit, or pass percentile='auto' (sample above "
                         "the limit), 'sample' or 'off'")
    if percentile == "auto":
        percentile = "exact" if count <= enumeration_limit else "sample"

    return AppointmentsConfig(
        problem=problem, n_short=n_short, n_long=n_long, n_breaks=n_breaks,
        short_duration=short_duration, long_duration=long_duration, slot=slot, buffer=buffer,
        break_duration=break_duration, break_elasticity=break_elasticity, noise=noise, alpha=alpha,
        observation=observation, invalid_action=invalid_action, invalid_weight=invalid_weight,
        percentile=percentile, enumeration_limit=enumeration_limit, percentile_samples=percentile_samples,
    )


def multinomial_table(cfg: AppointmentsConfig) -> np.ndarray:
    """(n_short+1, n_long+1, n_breaks+1) float64: orderings of every remaining multiset."""
    shape = tuple(c + 1 for c in cfg.counts)
    out = np.zeros(shape, dtype=np.float64)
    for index in np.ndindex(*shape):
        out[index] = float(multinomial(index))
    return out


def prefix_count(cfg: AppointmentsConfig) -> int:
    """Reachable non-terminal states: distinct prefixes (the empty one included) of the orderings."""
    return sum(multinomial(index) for index in np.ndindex(*(c + 1 for c in cfg.counts))) - cfg.orderings


def kernel_config(cfg: AppointmentsConfig, num_envs: int = 1) -> dict:
    """The flat dict of numbers the Cython kernel reads."""
    mode = {"off": 0, "exact": 1, "sample": 2}[cfg.percentile]
    return {
        "num_envs": num_envs, "slot": cfg.slot, "buffer": cfg.buffer, "elasticity": cfg.break_elasticity,
        "alpha": cfg.alpha, "noise": cfg.noise, "counts": list(cfg.counts), "durations": list(cfg.durations),
        "num_types": cfg.num_types, "factor_columns": cfg.factor_columns,
        "multinomials": multinomial_table(cfg), "boolean": int(cfg.observation == "boolean"),
        "percentile_mode": mode, "percentile_samples": cfg.percentile_samples,
    }
