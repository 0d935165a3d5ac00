"""The exact oracle, state labelling and percentile efficacy (Python API over the Cython kernel).

Taub & Pianykh (PLoS ONE 17(3): e0264485, 2022) label each state of a day with the best next
task type, found by evaluating every possible tail of the day, and score a schedule by the
percentile of its cost among all orderings of the same day. This module offers both:

* :func:`oracle_values`: per action, the expected C_alpha of placing that type next and then
  completing the day optimally (``oracle="best"``) or the mean over all completions
  (``oracle="average"``, the paper's literal average over tails). The expectation runs over K
  common draw tables of the duration multipliers (one multiplier per future item, shared by every
  action so that their comparison is not blurred by different noise): for each draw the best
  completion is found by exhaustive branch-and-bound over the orderings of the remaining items.
  The continuation therefore knows each draw's durations (a perfect-information relaxation);
  with ``noise=0`` every draw is nominal and the values are exact.
* :func:`label_states`: every reachable state of a problem (every prefix of every ordering,
  realised at nominal durations) with its Boolean features, oracle values, best action and the
  per-action cost gap to it: the training set of a strategy learner.
* :func:`ordering_percentile`: the percentile efficacy of an ordering of a given day.

The oracle's state is a :class:`DayState`: the slot index, the end time of the last item, the
running maximum lateness, the idle time so far, the last two item types and the items left per
type. That is all the dynamics depend on (the booked time of the next item follows from the counts
placed, one slot per task and ``break_booked`` per break, and
the next item of a type is its ``n - remaining``-th occurrence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sysgym.cython_core.appointments import ORACLE_AVERAGE, ORACLE_BEST, Problem

from .. import validate
from .config import MAX_SAMPLES, AppointmentsConfig, build_config, kernel_config, prefix_count

__all__ = ["DayState", "StateLabels", "check_oracle_size", "label_states", "oracle_draws", "oracle_values",
           "ordering_percentile", "percentile_of_mean", "ORACLE_LIMIT"]

# Most orderings of a day the oracle walks for one draw (a configuration above it is refused).
ORACLE_LIMIT = 10**7
# Most states label_states returns (P3 has 186,691).
LABEL_LIMIT = 5_000_000
_MODES = {"best": ORACLE_BEST, "average": ORACLE_AVERAGE}


@dataclass(frozen=True)
class DayState:
    """The compact state the oracle works from (see the module docstring)."""

    step: int
    end: float
    max_lateness: float
    total_idle: float
    prev: int
    prev2: int
    remaining: tuple[int, ...]

    @classmethod
    def start(cls, config: AppointmentsConfig) -> DayState:
        """The state before the first item."""
        return cls(0, 0.0, 0.0, 0.0, -1, -1, config.counts[:config.num_types])

    def as_tuple(self) -> tuple:
        return (self.step, self.end, self.max_lateness, self.total_idle, self.prev, self.prev2,
                tuple(self.remaining))

    def check(self, config: AppointmentsConfig) -> None:
        """ValueError unless this state can occur in a day of ``config``."""
        t, n = config.num_types, config.num_items
        if len(self.remaining) != t:
            raise ValueError(f"remaining must have {t} counts (types {config.type_names}), got {self.remaining}")
        for name, value, hi in zip(config.type_names, self.remaining, config.counts):
            validate.integer(f"remaining[{name}]", value, 0, hi)
        step = validate.integer("step", self.step, 0, n)
        if step != n - sum(self.remaining):
            raise ValueError(f"step={step} but {sum(self.remaining)} of {n} items remain")
        validate.number("end", self.end, 0.0, config.horizon)
        validate.number("max_lateness", self.max_lateness, 0.0, config.horizon)
        validate.number("total_idle", self.total_idle, 0.0, config.booked_length)
        validate.integer("prev", self.prev, -1 if step < 1 else 0, -1 if step < 1 else t - 1)
        validate.integer("prev2", self.prev2, -1 if step < 2 else 0, -1 if step < 2 else t - 1)


@dataclass
class StateLabels:
    """Output of :func:`label_states`: one row per reachable non-terminal state.

    ``features`` (n, F) bool named ``feature_names``; ``numeric`` (n, 2T+4) float32 named
    ``numeric_names``; ``values`` (n, T) expected C_alpha per action (inf: type exhausted);
    ``mask`` (n, T) bool; ``best_action`` (n,); ``gap`` (n, T) = values - min (inf where masked);
    ``prefix`` (n, N) int8: the types placed so far, -1 after them.
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    numeric: np.ndarray
    numeric_names: tuple[str, ...]
    values: np.ndarray
    mask: np.ndarray
    best_action: np.ndarray
    gap: np.ndarray
    prefix: np.ndarray
    config: AppointmentsConfig

    def __len__(self) -> int:
        return len(self.best_action)


def _config(config: Any) -> AppointmentsConfig:
    """An AppointmentsConfig from a config, an env (single or vector) or a kwargs dict."""
    if isinstance(config, AppointmentsConfig):
        return config
    if isinstance(config, dict):
        return build_config(**config)
    base = getattr(config, "unwrapped", config)
    cfg = getattr(base, "config", None)
    if isinstance(cfg, AppointmentsConfig):
        return cfg
    raise TypeError(f"expected an AppointmentsConfig, a kwargs dict or an appointments env, got {type(config).__name__}")


def check_oracle_size(config: AppointmentsConfig) -> None:
    if config.orderings > ORACLE_LIMIT:
        raise ValueError(f"the oracle enumerates the orderings of the day: {config.orderings} > "
                         f"{ORACLE_LIMIT} orderings ({config.n_short} short, {config.n_long} long, "
                         f"{config.n_breaks} breaks) is too many; use fewer tasks")


def oracle_draws(config: Any, draws: int = 32, seed: int = 0) -> np.ndarray:
    """K = ``draws`` tables of duration multipliers, (K, 2, M) float64: row 0 the short tasks'
    (column j for the j-th short of the day), row 1 the long ones'. Each is
    ``1 + noise * (2u - 1)`` with u from ``numpy.random.default_rng(seed).random``; all ones
    when ``noise=0``."""
    cfg = _config(config)
    k = validate.integer("draws", draws, 1, 4096)
    seed = validate.integer("seed", seed, 0, 2**63 - 1)
    u = np.random.default_rng(seed).random((k, 2, cfg.factor_columns))
    return np.ascontiguousarray(1.0 + cfg.noise * (2.0 * u - 1.0))


def _mode(oracle: str) -> int:
    return _MODES[validate.choice("oracle", oracle, tuple(_MODES))]


def oracle_values(config: Any, state: DayState | None = None, *, draws: int = 32, oracle: str = "best",
                  seed: int = 0) -> np.ndarray:
    """Per-action expected C_alpha, (types,) float64 (inf where no item of the type is left), from
    ``state`` (default: the start of the day) of a day of ``config`` (a config, kwargs dict or
    env; with an env and no state, that env's current state of sub-env 0)."""
    cfg = _config(config)
    check_oracle_size(cfg)
    if state is None:
        base = getattr(config, "unwrapped", config)
        state = base.day_state() if hasattr(base, "day_state") else DayState.start(cfg)
    state.check(cfg)
    table = oracle_draws(cfg, draws, seed)
    out = np.empty(cfg.num_types)
    Problem(kernel_config(cfg)).values(state.as_tuple(), table, _mode(oracle), out)
    return out


def best_action(values: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """The lowest action index whose value is within ``tolerance`` of the row's minimum."""
    values = np.asarray(values, dtype=np.float64)
    low = values.min(axis=-1, keepdims=True)
    return np.argmax(values <= low + tolerance, axis=-1)


def label_states(problem: str = "P3", *, draws: int = 32, oracle: str = "best", seed: int = 0,
                 **kwargs: Any) -> StateLabels:
    """Label every reachable non-terminal state of ``problem`` (other env kwargs allowed, e.g.
    ``alpha``, ``noise``, counts): every prefix of every ordering of the day, realised at nominal
    durations, in depth-first order (types in action order). See :class:`StateLabels`."""
    cfg = build_config(problem=problem, **{"percentile": "off", **kwargs})
    check_oracle_size(cfg)
    rows = prefix_count(cfg)
    if rows > LABEL_LIMIT:
        raise ValueError(f"the day has {rows} reachable states, more than the {LABEL_LIMIT} label_states "
                         f"returns; use fewer tasks")
    table = oracle_draws(cfg, draws, seed)
    t = cfg.num_types
    features = np.zeros((rows, len(cfg.feature_names)), dtype=np.int8)
    numeric = np.zeros((rows, 2 * t + 4), dtype=np.float32)
    values = np.zeros((rows, t))
    prefix = np.zeros((rows, cfg.num_items), dtype=np.int8)
    written = Problem(kernel_config(cfg)).label(table, _mode(oracle), features, numeric, values, prefix)
    if written != rows:
        raise AssertionError(f"labelled {written} states, expected {rows}")
    mask = np.isfinite(values)
    best = best_action(values)
    gap = np.where(mask, values - values.min(axis=1, keepdims=True), np.inf)
    return StateLabels(features=features.astype(bool), feature_names=cfg.feature_names, numeric=numeric,
                       numeric_names=cfg.numeric_names, values=values, mask=mask, best_action=best,
                       gap=gap, prefix=prefix, config=cfg)


def ordering_percentile(config: Any, sequence: Any, factors: np.ndarray | None = None,
                        samples: int = 0, seed: int = 0) -> dict[str, float]:
    """Percentile efficacy of the ordering ``sequence`` (types, one per item) of a day whose
    duration multipliers are ``factors`` (2, M) (default: nominal), against every ordering of
    that day (``samples=0``) or against ``samples`` uniformly random ones. Returns ``cost``,
    ``percentile_efficacy``, ``best_cost`` and ``orderings``, as the env's episode metrics."""
    cfg = _config(config)
    seq = np.asarray(sequence, dtype=np.int64)
    used = np.bincount(seq[seq >= 0], minlength=3)[:3] if seq.ndim == 1 else None
    breaks_ok = (used is not None and used[2] <= cfg.n_breaks and seq[-1:].tolist() != [2]
                 if cfg.optional_breaks else used is not None and used[2] == cfg.n_breaks)
    if seq.ndim != 1 or len(seq) < cfg.num_tasks or len(seq) > cfg.num_items or np.any(seq < 0) or \
            np.any(seq >= cfg.num_types) or np.any(used[:2] != np.array(cfg.counts[:2])) or not breaks_ok:
        rule = "up to" if cfg.optional_breaks else "exactly"
        raise ValueError(f"sequence must place each of the {cfg.num_tasks} tasks ({cfg.n_short} short, "
                         f"{cfg.n_long} long) once and {rule} {cfg.n_breaks} breaks, none after the last "
                         f"task, got {seq.tolist()}")
    seq = np.concatenate([seq, np.full(cfg.num_items - len(seq), -1, dtype=np.int64)])
    fac = np.ones((2, cfg.factor_columns)) if factors is None else np.ascontiguousarray(factors, dtype=np.float64)
    if fac.shape != (2, cfg.factor_columns) or np.any(np.abs(fac - 1.0) > cfg.noise + 1e-12):
        raise ValueError(f"factors must have shape (2, {cfg.factor_columns}) within 1 +- noise")
    samples = validate.integer("samples", samples, 0, MAX_SAMPLES)
    if samples == 0 and cfg.orderings > cfg.enumeration_limit:
        raise ValueError(f"enumeration_limit={cfg.enumeration_limit}: {cfg.orderings} orderings; pass samples=")
    problem = Problem(kernel_config(cfg))
    cost = problem.cost_of(seq, fac)
    rng = np.random.SeedSequence(seed).generate_state(4, np.uint64)
    rng[0] |= np.uint64(1)
    worse, ties, total, best = problem.rank(cost, fac, samples, rng)
    return {"cost": cost, "percentile_efficacy": 100.0 * (worse + 0.5 * ties) / total, "best_cost": best,
            "orderings": total}


def percentile_of_mean(config: Any, factors: np.ndarray, costs: np.ndarray, samples: int = 0,
                       seed: int = 0) -> dict[str, float]:
    """The paper's percentile efficacy (Taub & Pianykh, section 3.1: "the average OCS schedule
    cost corresponds to the ... percentile of the overall schedule cost distribution"): the
    mid-rank of the *mean* of ``costs`` (one per day) within the pooled costs of every ordering of
    every one of those days (``factors`` (D, 2, M): each day's multipliers, e.g. from
    ``env.unwrapped.day_factors()``). ``samples > 0`` ranks against that many random orderings
    per day instead. The env's ``percentile_efficacy`` is the other reading: the mid-rank of each
    day's own cost among that day's orderings, to be averaged over days."""
    cfg = _config(config)
    fac = np.ascontiguousarray(factors, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    if fac.ndim != 3 or fac.shape[1:] != (2, cfg.factor_columns) or costs.shape != (len(fac),) or len(fac) == 0:
        raise ValueError(f"factors must be (D, 2, {cfg.factor_columns}) and costs (D,) with D >= 1, got "
                         f"{fac.shape} and {costs.shape}")
    if not np.all(np.isfinite(costs)) or np.any(np.abs(fac - 1.0) > cfg.noise + 1e-12):
        raise ValueError("costs must be finite and factors within 1 +- noise")
    samples = validate.integer("samples", samples, 0, MAX_SAMPLES)
    if samples == 0 and cfg.orderings > cfg.enumeration_limit:
        raise ValueError(f"enumeration_limit={cfg.enumeration_limit}: {cfg.orderings} orderings; pass samples=")
    problem = Problem(kernel_config(cfg))
    mean = float(costs.mean())
    worse = ties = total = 0.0
    rng = np.random.SeedSequence(seed).generate_state(4, np.uint64)
    rng[0] |= np.uint64(1)
    for day in fac:
        w, t, n, _ = problem.rank(mean, day, samples, rng)
        worse, ties, total = worse + w, ties + t, total + n
    return {"mean_cost": mean, "percentile_efficacy": 100.0 * (worse + 0.5 * ties) / total, "orderings": total}
