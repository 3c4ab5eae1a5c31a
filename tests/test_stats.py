"""Holm, Hodges–Lehmann, the rank-biserial effect size and the percentile bootstrap against
their definitions, a hand-checked example and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qhn.errors import ConfigError
from qhn.experiments.bootstrap import (
    bootstrap_interval,
    bootstrap_statistics,
    hodges_lehmann_rows,
    mean_rows,
)
from qhn.experiments.stats import hodges_lehmann, holm, rank_biserial, wilcoxon_signed_rank


def test_holm_hand_checked_example():
    # sorted: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04 → max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    # NaN is not a test: m = 2 for the rest
    adjusted = holm([0.02, math.nan, 0.3])
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.3)
    assert holm([0.4, 0.6]) == [0.8, 0.8]  # 0.6·1 < 0.4·2: adjusted p never decreases
    assert holm([0.9, 0.7]) == [1.0, 1.0]
    assert holm([]) == []
    with pytest.raises(ConfigError, match=r"1\.5"):
        holm([0.1, 1.5])


def test_holm_rejections_match_the_step_down_procedure():
    rng = np.random.default_rng(4)
    for _ in range(50):
        p = rng.uniform(0, 0.1, rng.integers(1, 12)).tolist()
        m = len(p)
        rejected = set()
        for rank, i in enumerate(np.argsort(p, kind="stable")):
            if p[i] >= 0.05 / (m - rank):
                break
            rejected.add(int(i))
        assert {i for i, q in enumerate(holm(p)) if q < 0.05} == rejected


@pytest.mark.parametrize(
    "d", [[0.3, -1.2, 0.5], [1.0, 1.0, -1.0, 2.0, 0.0], list(np.linspace(-1, 2, 10)), [2.5]]
)
def test_hodges_lehmann_is_the_median_of_walsh_averages(d):
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
    assert hodges_lehmann(d) == pytest.approx(float(np.median(walsh)), abs=1e-15)
    assert hodges_lehmann_rows(np.array([d, d[::-1]])) == pytest.approx([np.median(walsh)] * 2)
    assert math.isnan(hodges_lehmann([None, math.nan]))


def test_rank_biserial_and_direction_follow_the_signed_ranks():
    result = wilcoxon_signed_rank([1.0, 2.0, 3.0, -4.0])  # W⁺ = 6, W⁻ = 4
    assert (result.statistic, rank_biserial(result), result.direction) == (6.0, 0.2, 1)
    assert rank_biserial(wilcoxon_signed_rank([-1.0, -2.0])) == -1.0
    assert wilcoxon_signed_rank([1.0, -1.0]).direction == 0
    assert math.isnan(rank_biserial(wilcoxon_signed_rank([0.0])))


def test_walsh_averages_count_the_signed_rank_statistic():
    """Without ties, W⁺ is the number of positive Walsh averages, so the sign of the
    Hodges–Lehmann estimate agrees with the side the test points to."""
    rng = np.random.default_rng(8)
    for _ in range(30):
        d = rng.normal(0.2, 1.0, rng.integers(2, 15))
        walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
        result = wilcoxon_signed_rank(d.tolist())
        assert result.statistic == sum(w > 0 for w in walsh)
        if result.direction:
            assert np.sign(hodges_lehmann(d.tolist())) in (0, result.direction)


@pytest.mark.parametrize("statistic,name", [(mean_rows, "mean"), (hodges_lehmann_rows, "hl")])
def test_percentile_bootstrap_matches_scipy_within_monte_carlo_error(statistic, name):
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(2).exponential(1.0, 15)
    resamples = 4000
    ours = bootstrap_statistics(x.tolist(), statistic, resamples=resamples, seed=1)
    if name == "mean":
        scipy_statistic = np.mean
    else:

        def scipy_statistic(sample, axis=-1):
            moved = np.moveaxis(np.asarray(sample), axis, -1)
            flat = moved.reshape(-1, moved.shape[-1])
            return hodges_lehmann_rows(flat).reshape(moved.shape[:-1])

    theirs = stats.bootstrap(
        (x,), scipy_statistic, method="percentile", n_resamples=resamples, rng=7
    ).confidence_interval
    # each endpoint is an empirical quantile; both estimates of the 2.5 % quantile differ by
    # a quantile level of at most 5 standard errors of a proportion over both samples
    se = math.sqrt(2 * 0.025 * 0.975 / resamples)
    for endpoint, level in ((theirs.low, 0.025), (theirs.high, 0.975)):
        fraction = float(np.mean(ours <= endpoint))
        assert abs(fraction - level) < 5 * se, (name, endpoint, fraction)
    interval = bootstrap_interval(x.tolist(), statistic, resamples=resamples, seed=1)
    assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(ours, [0.025, 0.975])))


def test_bootstrap_intervals_are_seeded_and_inside_the_bounds():
    values = [1.0, 1.0, 0.98, 1.0, 0.97]
    first = bootstrap_interval(values, bounds=(0.0, 1.0))
    assert first == bootstrap_interval(values, bounds=(0.0, 1.0))
    assert 0.97 <= first.low <= first.mean <= first.high <= 1.0
    assert first.mean == pytest.approx(np.mean(values))
    assert bootstrap_interval([0.5], bounds=(0.0, 1.0)).n == 1
    assert not bootstrap_interval([0.5]).defined
    assert bootstrap_interval([None]).n == 0
    clipped = bootstrap_interval([1.0 + 1e-12, 1.0], bounds=(0.0, 1.0))
    assert clipped.high <= 1.0 and clipped.mean <= 1.0
    with pytest.raises(ConfigError, match="level"):
        bootstrap_interval(values, level=1.0)
