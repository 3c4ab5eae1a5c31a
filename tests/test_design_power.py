"""What a family of comparisons can declare at all: the smallest attainable Wilcoxon p against
scipy and brute force over sign patterns, and the report's power paragraph against what Holm
then actually declares."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from qhn.experiments.comparisons import ACC_BMA, compare_differences, holm_family
from qhn.experiments.report_verdicts import design_power
from qhn.experiments.stats import pairs_needed, smallest_wilcoxon_p, wilcoxon_signed_rank


@pytest.mark.parametrize("n", range(1, 13))
def test_smallest_p_is_scipys_exact_p_of_one_sided_data(n):
    one_sided = np.arange(1, n + 1, dtype=float)
    assert smallest_wilcoxon_p(n) == pytest.approx(
        wilcoxon(one_sided, method="exact").pvalue, rel=1e-12
    )


@pytest.mark.parametrize("n", range(1, 9))
def test_no_sign_pattern_and_no_ties_reach_below_it(n):
    magnitudes = np.arange(1, n + 1, dtype=float)
    patterns = itertools.product((-1.0, 1.0), repeat=n)
    lowest = min(wilcoxon_signed_rank(list(magnitudes * signs)).p_value for signs in patterns)
    assert lowest == pytest.approx(smallest_wilcoxon_p(n), rel=1e-12)
    tied = wilcoxon_signed_rank([0.5] * n).p_value
    assert tied == pytest.approx(smallest_wilcoxon_p(n), rel=1e-12)


def test_above_the_exact_range_it_is_the_normal_approximation():
    one_sided = np.arange(1, 61, dtype=float)
    expected = wilcoxon(one_sided, method="approx", correction=False).pvalue
    assert smallest_wilcoxon_p(60) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("m", [1, 3, 25, 26, 292, 2000])
def test_pairs_needed_is_the_first_n_whose_smallest_p_clears_holms_first_step(m):
    n = pairs_needed(m, 0.05)
    assert smallest_wilcoxon_p(n) < 0.05 / m <= smallest_wilcoxon_p(n - 1)
    assert n == math.floor(math.log2(2 * m / 0.05)) + 1


def _family(size: int, pairs: int):
    """``size`` comparisons, each of ``pairs`` differences that all favour B."""
    rng = np.random.default_rng(0)
    return holm_family(
        [
            compare_differences(list(rng.uniform(0.01, 0.1, pairs)), ACC_BMA, a=f"A{k}", b="B")
            for k in range(size)
        ]
    )


def test_a_family_too_large_for_its_seeds_is_flagged_and_indeed_declares_nothing():
    family = _family(300, 10)
    text = "\n".join(design_power(family))
    assert "no comparison of this report can be declared" in text
    assert f"at least {pairs_needed(300, 0.05)} pairs" in text
    assert all(c.verdict() == "no significant difference" for c in family)


def test_a_family_small_enough_is_not_flagged_and_declares_the_consistent_effects():
    family = _family(5, 10)
    assert design_power(family) == []
    assert all(c.verdict() == "b better" for c in family)


def test_a_mixed_family_names_how_many_comparisons_are_too_short():
    family = holm_family([*_family(4, 3), *_family(4, 12)])
    text = "\n".join(design_power(family))
    assert "4 of the 8 comparisons have too few pairs" in text
    assert all(c.verdict() == "no significant difference" for c in family[:4])
