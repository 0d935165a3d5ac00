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
BREAK_MODELS = ("paper", "slot")
# Bounds that keep the percentile of one day well under a second of one core (a P3 day's 84,084
# orderings take ~5 ms): exact enumeration of at most 10^7 orderings, at most 10^5 samples.
MAX_ENUMERATION = 10**7
MAX_SAMPLES = 10**5
# The exact percentile shares the tails of states with at most RANK_CUT tasks left on days with at
# least SHARED_TAILS_FROM orderings (P3: 84,084); smaller days (P1, P2: 924) walk every ordering,
# which is faster there (cython_core/appointments.pyx, _rank_day).
RANK_CUT = 4
SHARED_TAILS_FROM = 10_000
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
    break_model: str = "paper"

    @property
    def optional_breaks(self) -> bool:
        """Breaks may be left unused and the day ends with its last task (the paper's "up to two")."""
        return self.break_model == "paper"

    @property
    def num_tasks(self) -> int:
        return self.n_short + self.n_long

    @property
    def break_booked(self) -> float:
        """Booked minutes a break takes: its own duration ("paper") or one slot ("slot")."""
        return self.break_duration if self.break_model == "paper" else self.slot

    @property
    def cost_divisor(self) -> int:
        """The n of C_tardiness = total idle / n: the tasks ("paper"), or every item ("slot")."""
        return self.num_tasks if self.break_model == "paper" else self.num_items

    @property
    def booked_length(self) -> float:
        """Booked minutes of the whole day with every break used."""
        return self.num_tasks * self.slot + self.n_breaks * self.break_booked

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
        """Distinct orderings of the day (what the percentile ranks against); with optional
        breaks, every ordering of the tasks with 0..n_breaks breaks inserted before tasks."""
        return completions(self, self.counts)

    @property
    def factor_columns(self) -> int:
        return max(self.n_short, self.n_long, 1)

    @property
    def horizon(self) -> float:
        """An upper bound of every time in a day (minutes): all slots plus every item at its
        longest plus every buffer."""
        return (self.num_items * self.slot + (1.0 + self.noise) * (
            self.n_short * self.short_duration + self.n_long * self.long_duration)
            + 2 * self.n_breaks * self.break_duration + self.num_items * self.buffer)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the Boolean observation (Taub & Pianykh, Table 1 and sections 2.5, 3.1-3.3)."""
        t = self.type_names
        names = ["more_than_25pct_scheduled", "more_than_50pct_scheduled", "more_than_75pct_scheduled",
                 "currently_delayed", "significantly_delayed", "less_time_spent_than_left"]
        names += [f"prev_is_{x}" for x in t] + [f"second_prev_is_{x}" for x in t]
        names += ["prev_longer_than_second_prev", "prev_shorter_than_second_prev", "prev_equal_to_second_prev"]
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
                                                       self.booked_length] + [1.0] * t
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)


def build_config(*, problem: str = "P1", n_short: int = 6, n_long: int = 6, n_breaks: int | None = None,
                 short_duration: float = 30.0, long_duration: float = 60.0, slot: float = 45.0,
                 buffer: float | None = None, break_duration: float = 60.0, break_elasticity: float = 15.0,
                 noise: float = 0.05, alpha: float = 0.5, observation: str = "boolean",
                 invalid_action: str = "substitute", invalid_weight: float = 0.0, percentile: str = "exact",
                 enumeration_limit: int = 1_000_000, percentile_samples: int = 10_000,
                 break_model: str = "paper") -> AppointmentsConfig:
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
    enumeration_limit = validate.integer("enumeration_limit", enumeration_limit, 1, MAX_ENUMERATION)
    percentile_samples = validate.integer("percentile_samples", percentile_samples, 1, MAX_SAMPLES)
    break_model = validate.choice("break_model", break_model, BREAK_MODELS)

    count = _count(n_short, n_long, n_breaks, break_model == "paper")
    if percentile == "exact" and count > enumeration_limit:
        raise_it = (f"raise enumeration_limit (at most {MAX_ENUMERATION:.0e}), or pass "
                    if count <= MAX_ENUMERATION else "")
        raise ValueError(f"enumeration_limit={enumeration_limit}: the day has {count} orderings "
                         f"({n_short} short, {n_long} long, {n_breaks} breaks) to enumerate for the "
                         f"percentile; {raise_it}percentile='sample' (rank among percentile_samples random "
                         "orderings), 'auto' (sample above the limit) or 'off'")
    if percentile == "auto":
        percentile = "exact" if count <= enumeration_limit else "sample"

    return AppointmentsConfig(
        problem=problem, n_short=n_short, n_long=n_long, n_breaks=n_breaks,
        short_duration=short_duration, long_duration=long_duration, slot=slot, buffer=buffer,
        break_duration=break_duration, break_elasticity=break_elasticity, noise=noise, alpha=alpha,
        observation=observation, invalid_action=invalid_action, invalid_weight=invalid_weight,
        percentile=percentile, enumeration_limit=enumeration_limit, percentile_samples=percentile_samples,
        break_model=break_model,
    )


def _count(s: int, n: int, b: int, optional: bool) -> int:
    """Completions of a day with s short, n long and b breaks left. Mandatory breaks: the
    multinomial. Optional ones: the tasks' orderings times the ways to put 0..b breaks into the
    s + n gaps before tasks, sum_j C(s+n-1+j, j) = C(s+n+b, b); 1 once no task is left."""
    if not optional:
        return multinomial((s, n, b))
    if s + n == 0:
        return 1
    return math.comb(s + n, s) * math.comb(s + n + b, b)


def completions(cfg: AppointmentsConfig, remaining: tuple[int, int, int]) -> int:
    return _count(*remaining, cfg.optional_breaks)


def multinomial_table(cfg: AppointmentsConfig) -> np.ndarray:
    """(n_short+1, n_long+1, n_breaks+1) float64: completions of every remaining multiset."""
    shape = tuple(c + 1 for c in cfg.counts)
    out = np.zeros(shape, dtype=np.float64)
    for index in np.ndindex(*shape):
        out[index] = float(completions(cfg, index))
    return out


def prefix_count(cfg: AppointmentsConfig) -> int:
    """Reachable non-terminal states: distinct prefixes (the empty one included) of the orderings,
    i.e. the sequences of placed items after which the day is not over."""
    total = 0
    for used in np.ndindex(*(c + 1 for c in cfg.counts)):
        over = (used[0] + used[1] == cfg.num_tasks) if cfg.optional_breaks else sum(used) == cfg.num_items
        if not over:
            total += multinomial(used)
    return total


def kernel_config(cfg: AppointmentsConfig, num_envs: int = 1) -> dict:
    """The flat dict of numbers the Cython kernel reads."""
    mode = {"off": 0, "exact": 1, "sample": 2}[cfg.percentile]
    return {
        "num_envs": num_envs, "slot": cfg.slot, "buffer": cfg.buffer, "elasticity": cfg.break_elasticity,
        "alpha": cfg.alpha, "noise": cfg.noise, "counts": list(cfg.counts), "durations": list(cfg.durations),
        "num_types": cfg.num_types, "factor_columns": cfg.factor_columns,
        "multinomials": multinomial_table(cfg), "boolean": int(cfg.observation == "boolean"),
        "break_booked": cfg.break_booked, "n_div": float(cfg.cost_divisor),
        "optional_breaks": int(cfg.optional_breaks),
        "percentile_mode": mode, "percentile_samples": cfg.percentile_samples, "horizon": cfg.horizon,
        "rank_cut": RANK_CUT if cfg.orderings >= SHARED_TAILS_FROM else -1,
    }
