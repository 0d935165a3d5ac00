"""Normalised scores, their aggregates and bootstrap confidence intervals (pure numpy).

* **Normalised score** of an env: ``(m - m_random) / (m_best - m_random)`` with ``m`` the policy's
  mean primary metric, ``m_random`` the family's random policy's and ``m_best`` the best classical
  baseline's (best in the metric's direction), all over the *same* episodes. 0 = random, 1 = the
  best baseline, above 1 = better than every baseline; the formula needs no sign flip for
  lower-is-better metrics. Undefined (NaN) when ``m_best == m_random``.
* **Gap closed** (where an oracle or bound exists): ``(m - m_best) / (m_oracle - m_best)``, the
  fraction of the distance from the best baseline to the oracle that the policy covers (0 = the
  best baseline, 1 = the oracle; negative = worse than the best baseline).
* **Aggregates** over a family or all envs: the mean and the interquartile mean (IQM: the mean of
  the middle 50% of the sorted scores, dropping ``floor(n / 4)`` from each end, as
  ``scipy.stats.trim_mean(x, 0.25)``; Agarwal et al., NeurIPS 2021). NaN scores are left out.
* **Performance profile**: for each threshold tau, the fraction of envs whose normalised score
  is above tau, with a stratified-bootstrap band.

How each function maps onto rliable (Agarwal et al. 2021; its ``scores`` matrix is runs x tasks,
and sysgym's tasks are the suite's envs, each scored once per policy, its runs' spread replaced
by the spread over episodes):

============================  =====================================================================
sysgym                        rliable
============================  =====================================================================
:func:`nanmean`               ``metrics.aggregate_mean`` (mean over tasks of the per-task means)
:func:`iqm`                   ``metrics.aggregate_iqm`` (``trim_mean(x, 0.25)`` over all scores)
:func:`aggregate`             ``library.get_interval_estimates`` with ``StratifiedBootstrap``
                              (resample within each task, independently; percentile method)
:func:`performance_profile`   ``library.create_performance_profile`` with
                              ``metrics.score_distributions`` (fraction of runs with score > tau)
:class:`EnvScore` intervals   no rliable counterpart: a paired percentile bootstrap over episodes
============================  =====================================================================

Differences from rliable, on purpose: NaN scores (an env where the best baseline ties random) are
left out instead of propagating; the bootstrap resamples episodes, not training runs (a reference
agent is one run); 2,000 resamples instead of rliable's 50,000 (intervals move by about 0.01 of a
score unit; the scorecard must stay quick). rliable 1.2 itself no longer imports beside pandas 3
(its ``arch`` dependency fails), so it is not a dependency.
* **Confidence intervals**: percentile bootstrap over episodes, ``RESAMPLES = 2000`` resamples,
  95%, generator ``numpy.random.default_rng([SEED, crc32(env key)])`` with ``SEED = 0``. The raw
  metric's interval resamples the policy's episodes. A score's interval resamples episode indices
  and applies them to the policy *and* the reference rows together (paired: they played the same
  episodes), with the best baseline fixed to the one chosen on all episodes. Aggregate intervals
  resample each env's episodes independently (stratified bootstrap) and recompute the aggregate.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95

BOOTSTRAP = (f"percentile bootstrap over episodes, {RESAMPLES} resamples, {LEVEL:.0%} intervals, "
             f"numpy default_rng([{SEED}, crc32(env)]); scores paired with the reference rows on the "
             f"same episodes; aggregates stratified by env")


def normalised_score(value: float, random: float, best: float) -> float:
    """0 at the random policy's value, 1 at the best baseline's (NaN if they are equal)."""
    span = best - random
    return float((value - random) / span) if span != 0 else float("nan")


def gap_closed(value: float, best: float, oracle: float) -> float:
    """Fraction of the best-baseline -> oracle gap covered (NaN if there is no gap)."""
    span = oracle - best
    return float((value - best) / span) if span != 0 else float("nan")


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the sorted values without the lowest and highest
    ``floor(n / 4)`` (NaNs dropped; NaN if nothing is left)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan")
    cut = x.size // 4
    return float(x[cut:x.size - cut].mean())


def nanmean(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def generator(key: str, seed: int = SEED) -> np.random.Generator:
    """The bootstrap generator of one env (``key`` e.g. ``"deeprm/scenario-3"``)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def resample(n: int, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """(resamples, n) episode indices drawn with replacement."""
    return rng.integers(0, n, size=(resamples, n))


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap ``samples`` (NaN samples left out)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(x, [tail, 100.0 - tail])
    return float(lo), float(hi)


def mean_ci(values: Sequence[float], rng: np.random.Generator, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values``."""
    x = np.asarray(values, dtype=np.float64)
    return interval(x[resample(x.size, rng, resamples)].mean(axis=1))


class EnvScore:
    """An env's normalised score and gap closed, with paired bootstrap samples of both.

    ``policy``, ``random``, ``best`` and ``oracle`` (or None) are per-episode primary-metric values
    on the same episodes.
    """

    def __init__(self, policy: Sequence[float], random: Sequence[float], best: Sequence[float],
                 oracle: Sequence[float] | None, rng: np.random.Generator, resamples: int = RESAMPLES):
        p, r, b = (np.asarray(v, dtype=np.float64) for v in (policy, random, best))
        if not (p.size == r.size == b.size) or (oracle is not None and len(oracle) != p.size):
            raise ValueError("policy and reference rows must cover the same episodes")
        self.score = normalised_score(p.mean(), r.mean(), b.mean())
        idx = resample(p.size, rng, resamples)
        pm, rm, bm = p[idx].mean(axis=1), r[idx].mean(axis=1), b[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.score_samples = np.where(bm != rm, (pm - rm) / (bm - rm), np.nan)
        self.score_ci = interval(self.score_samples)
        self.gap, self.gap_ci, self.gap_samples = float("nan"), (float("nan"), float("nan")), None
        if oracle is not None:
            o = np.asarray(oracle, dtype=np.float64)
            self.gap = gap_closed(p.mean(), b.mean(), o.mean())
            om = o[idx].mean(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                self.gap_samples = np.where(om != bm, (pm - bm) / (om - bm), np.nan)
            self.gap_ci = interval(self.gap_samples)


def aggregate(scores: Sequence[EnvScore]) -> dict[str, tuple[float, tuple[float, float]]]:
    """Mean and IQM of the envs' normalised scores with stratified-bootstrap intervals (each env's
    bootstrap samples, drawn independently per env, are combined resample by resample)."""
    point = [s.score for s in scores]
    samples = np.stack([s.score_samples for s in scores]) if scores else np.zeros((0, RESAMPLES))
    means = np.array([nanmean(samples[:, k]) for k in range(samples.shape[1])])
    iqms = np.array([iqm(samples[:, k]) for k in range(samples.shape[1])])
    return {"mean": (nanmean(point), interval(means)), "iqm": (iqm(point), interval(iqms))}


def performance_profile(scores: Sequence[EnvScore], taus: Sequence[float]) -> dict[str, np.ndarray]:
    """Fraction of envs whose normalised score is above each ``tau`` (rliable's run-score
    distribution), with stratified-bootstrap bands from each env's paired episode resamples.

    Returns ``{"tau", "fraction", "low", "high"}`` arrays; NaN scores are left out.
    """
    tau = np.asarray(taus, dtype=np.float64)
    kept = [s for s in scores if not np.isnan(s.score)]
    if not kept:
        nan = np.full(tau.shape, np.nan)
        return {"tau": tau, "fraction": nan, "low": nan.copy(), "high": nan.copy()}
    point = np.array([s.score for s in kept])
    fraction = (point[:, None] > tau[None, :]).mean(axis=0)
    samples = np.stack([s.score_samples for s in kept])  # (envs, resamples)
    with np.errstate(invalid="ignore"):
        above = samples[:, :, None] > tau[None, None, :]
        counted = ~np.isnan(samples)[:, :, None]
        per_resample = (above & counted).sum(axis=0) / np.maximum(counted.sum(axis=0), 1)
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    low, high = np.percentile(per_resample, [tail, 100.0 - tail], axis=0)
    return {"tau": tau, "fraction": fraction, "low": low, "high": high}
