"""Normalised scores, gap closed, IQM and bootstrap intervals on hand-made numbers."""

import math

import numpy as np
import pytest

from sysgym.benchmark import scores


def test_normalised_score_is_0_at_random_and_1_at_the_best_baseline_in_either_direction():
    # higher is better: random 10, best 30
    assert scores.normalised_score(10.0, 10.0, 30.0) == 0.0
    assert scores.normalised_score(30.0, 10.0, 30.0) == 1.0
    assert scores.normalised_score(20.0, 10.0, 30.0) == 0.5
    assert scores.normalised_score(40.0, 10.0, 30.0) == 1.5
    # lower is better (slowdown): random 9, best 3; 6 is halfway, 1.5 beats the best by a quarter span
    assert scores.normalised_score(6.0, 9.0, 3.0) == 0.5
    assert scores.normalised_score(1.5, 9.0, 3.0) == 1.25
    assert scores.normalised_score(12.0, 9.0, 3.0) == -0.5
    assert math.isnan(scores.normalised_score(5.0, 4.0, 4.0))


def test_gap_closed_is_the_fraction_of_the_baseline_to_oracle_distance():
    assert scores.gap_closed(1.0, 1.0, 1.5) == 0.0
    assert scores.gap_closed(1.5, 1.0, 1.5) == 1.0
    assert scores.gap_closed(1.25, 1.0, 1.5) == 0.5
    assert scores.gap_closed(0.5, 1.0, 1.5) == -1.0
    # lower is better with a lower bound: best 4 cores, bound 3.5 -> 3.75 closes half the gap
    assert scores.gap_closed(3.75, 4.0, 3.5) == 0.5
    assert math.isnan(scores.gap_closed(2.0, 3.0, 3.0))


def test_iqm_drops_a_quarter_from_each_end():
    assert scores.iqm([1, 2, 3, 4, 5, 6, 7, 100]) == 4.5          # mean of 3, 4, 5, 6
    assert scores.iqm([100, 1, 4, 2, 3]) == 3.0                   # floor(5/4) = 1 cut: mean of 2, 3, 4
    assert scores.iqm([7.0]) == 7.0
    assert scores.iqm([1, 2, float("nan"), 3]) == 2.0             # NaN dropped: 3 values, nothing cut
    assert math.isnan(scores.iqm([]))


def test_percentile_interval_of_known_samples():
    lo, hi = scores.interval(np.arange(1001.0))
    assert (lo, hi) == pytest.approx((25.0, 975.0))


def test_bootstrap_interval_contains_the_mean_and_repeats_with_the_seed():
    values = np.random.default_rng(3).exponential(2.0, size=40)
    lo, hi = scores.mean_ci(values, scores.generator("x/y"))
    assert lo < values.mean() < hi
    assert (lo, hi) == scores.mean_ci(values, scores.generator("x/y"))
    assert (lo, hi) != scores.mean_ci(values, scores.generator("x/z"))
    assert scores.mean_ci(np.full(10, 4.0), scores.generator("k")) == (4.0, 4.0)


def test_env_score_is_paired_with_the_reference_rows():
    rng = np.random.default_rng(1)
    random = rng.normal(10.0, 3.0, 50)
    best = random + 20.0 + rng.normal(0.0, 1.0, 50)
    # the best baseline itself: score exactly 1 on every resample
    s = scores.EnvScore(best, random, best, None, scores.generator("a"))
    assert s.score == 1.0 and s.score_ci == (1.0, 1.0)
    assert math.isnan(s.gap)
    # halfway between random and best on every episode
    half = (random + best) / 2
    s = scores.EnvScore(half, random, best, best + 10.0, scores.generator("a"))
    assert s.score == pytest.approx(0.5) and s.score_ci == pytest.approx((0.5, 0.5))
    assert s.gap == pytest.approx(scores.gap_closed(half.mean(), best.mean(), best.mean() + 10.0))
    assert s.gap_ci[0] <= s.gap <= s.gap_ci[1]
    with pytest.raises(ValueError, match="same episodes"):
        scores.EnvScore(half[:10], random, best, None, scores.generator("a"))


def test_aggregate_mean_and_iqm_over_envs():
    base = np.arange(20.0)
    envs = []
    for k, target in enumerate([0.0, 0.5, 1.0, 3.0]):   # policy = random + target * (best - random)
        random, best = base, base + 10.0
        envs.append(scores.EnvScore(random + 10.0 * target, random, best, None, scores.generator(str(k))))
    agg = scores.aggregate(envs)
    mean, (lo, hi) = agg["mean"]
    assert mean == pytest.approx(1.125) and lo == pytest.approx(1.125) and hi == pytest.approx(1.125)
    assert agg["iqm"][0] == pytest.approx(0.75)      # 4 envs: drop 1 from each end -> mean(0.5, 1.0)


class _FixedScore:
    """An EnvScore stand-in with a chosen point score and bootstrap samples."""

    def __init__(self, score, samples):
        self.score = score
        self.score_samples = np.asarray(samples, dtype=np.float64)


def test_performance_profile_is_the_fraction_of_envs_above_each_threshold():
    # three envs scoring 0.2, 0.9 and 1.4: above 0 -> 3/3, above 0.5 -> 2/3, above 1 -> 1/3, above 2 -> 0
    envs = [_FixedScore(0.2, [0.2] * 10), _FixedScore(0.9, [0.9] * 10), _FixedScore(1.4, [1.4] * 10)]
    profile = scores.performance_profile(envs, [0.0, 0.5, 1.0, 2.0])
    assert profile["fraction"].tolist() == [1.0, 2 / 3, 1 / 3, 0.0]
    # resamples that never move give a band of zero width
    assert profile["low"].tolist() == profile["fraction"].tolist() == profile["high"].tolist()


def test_performance_profile_band_follows_the_resamples_and_drops_nan_envs():
    # env A's resamples straddle 1.0 half the time: the fraction above 1.0 is 0 or 1/2 per resample
    a = _FixedScore(0.95, [0.9, 1.1] * 50)
    b = _FixedScore(2.0, [2.0] * 100)
    nan_env = _FixedScore(float("nan"), [float("nan")] * 100)
    profile = scores.performance_profile([a, b, nan_env], [1.0])
    assert profile["fraction"].tolist() == [0.5]      # point: only B is above 1.0
    assert profile["low"][0] == 0.5 and profile["high"][0] == 1.0
    empty = scores.performance_profile([nan_env], [1.0])
    assert math.isnan(empty["fraction"][0])


def test_iqm_equals_a_25_percent_trimmed_mean_worked_by_hand():
    # rliable's IQM is scipy.stats.trim_mean(x, 0.25): n=10 trims int(2.5)=2 from each end
    x = [9, 1, 8, 2, 7, 3, 6, 4, 5, 100]
    assert scores.iqm(x) == (3 + 4 + 5 + 6 + 7 + 8) / 6
