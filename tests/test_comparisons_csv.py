"""``comparisons.csv``: a verdict follows from the Holm-adjusted p of the test it prints, and no
interval leaves the range of its metric — for any family of comparisons (hypothesis)."""

from __future__ import annotations

import csv
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qhn.experiments.comparisons import (
    ACC_BMA,
    EXPECTED_COST,
    MASS,
    VERDICTS,
    Entry,
    compare_differences,
    entanglement_comparisons,
    holm_family,
)
from qhn.experiments.comparisons_csv import CSV_COLUMNS, comparisons_csv_text, write_comparisons_csv
from qhn.experiments.report import mean_interval

METRICS = {m.key: m for m in (ACC_BMA, MASS, EXPECTED_COST)}
# few distinct values, so ties, zero differences and all-equal pairs come up often
UNIT = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0))
VALUE = st.one_of(st.none(), UNIT)
NOISY = st.lists(st.tuples(VALUE, VALUE), min_size=0, max_size=14)
# B above A on every pair: raw p = 2/2ⁿ, significant alone, often not after Holm
SHIFTED = st.lists(
    st.tuples(st.floats(0.0, 0.5), st.floats(0.01, 0.5)), min_size=5, max_size=12
).map(lambda pairs: [(a, a + shift) for a, shift in pairs])
ARM = st.one_of(NOISY, SHIFTED)
FAMILY = st.lists(st.tuples(st.sampled_from(sorted(METRICS)), ARM), min_size=1, max_size=8)


def rows_of(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


@settings(max_examples=60, deadline=None)
@given(FAMILY)
def test_no_row_says_better_without_an_adjusted_p_below_alpha_or_leaves_the_range(family):
    comparisons = []
    for index, (key, pairs) in enumerate(family):
        diffs = [b - a if a is not None and b is not None else None for a, b in pairs]
        comparisons.append(
            compare_differences(diffs, METRICS[key], task="t", a=f"A{index}", b=f"B{index}")
        )
    rows = rows_of(comparisons_csv_text(holm_family(comparisons)))
    assert len(rows) == len(family)
    for row, (key, pairs) in zip(rows, family, strict=True):
        metric = METRICS[key]
        diffs = [b - a for a, b in pairs if a is not None and b is not None]
        assert row["verdict"] in VERDICTS
        assert int(row["n"]) == len(diffs)
        if not diffs:
            assert row["verdict"] == "not measured"
            assert row["p_value"] == row["p_adjusted"] == row["estimate"] == ""
            continue
        p, p_adjusted, estimate = (float(row[k]) for k in ("p_value", "p_adjusted", "estimate"))
        assert 0.0 <= p <= p_adjusted <= 1.0
        if row["verdict"].endswith("better"):
            assert p_adjusted < 0.05
            b_larger = (row["verdict"] == "b better") == metric.higher_is_better
            assert (estimate > 0) if b_larger else (estimate < 0)
        else:
            assert row["verdict"] == "no significant difference"
        low_bound, high_bound = metric.difference_bounds
        assert low_bound <= estimate <= high_bound
        if len(diffs) >= 2:
            low, high = float(row["ci_low"]), float(row["ci_high"])
            assert low_bound <= low <= high <= high_bound
            assert min(diffs) - 1e-12 <= low and high <= max(diffs) + 1e-12
        else:
            assert row["ci_low"] == row["ci_high"] == ""


@settings(max_examples=60, deadline=None)
@given(st.lists(VALUE, min_size=1, max_size=20))
def test_mean_intervals_of_a_bounded_metric_stay_in_its_range(values):
    interval = mean_interval(values, ACC_BMA)
    present = [v for v in values if v is not None]
    assert interval.n == len(present)
    if present:
        assert 0.0 <= interval.mean <= 1.0
        assert interval.mean == pytest.approx(sum(present) / len(present), abs=1e-12)
    if interval.defined:
        assert 0.0 <= interval.low <= interval.mean + 1e-12
        assert interval.mean - 1e-12 <= interval.high <= 1.0


def test_holm_over_the_family_withdraws_a_win_that_stands_alone():
    six_wins = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # exact p = 2/2⁶ = 0.03125
    alone = holm_family([compare_differences(six_wins, ACC_BMA)])
    assert alone[0].p_adjusted == pytest.approx(2 / 64) and alone[0].verdict() == "b better"
    family = holm_family([compare_differences(six_wins, ACC_BMA) for _ in range(10)])
    assert all(c.p_adjusted == pytest.approx(10 * 2 / 64) for c in family)
    assert {c.verdict() for c in family} == {"no significant difference"}
    # three pairs can never reach 0.05: the demo's "layers 1 better at p = 0.25" is gone
    three = holm_family([compare_differences([0.2, 0.3, 0.4], ACC_BMA)])
    assert three[0].p_adjusted == 0.25 and three[0].verdict() == "no significant difference"
    # lower is better: B smaller on E_q[C] on every pair is "b better"
    cost = holm_family([compare_differences([-0.1 * k for k in range(1, 9)], EXPECTED_COST)])
    assert cost[0].verdict() == "b better" and cost[0].estimate.mean < 0


def test_a_metric_nobody_measured_is_not_measured_but_keeps_its_pairs():
    (c,) = holm_family([compare_differences([None] * 10, ACC_BMA)])
    assert (c.pairs, c.n, c.verdict()) == (10, 0, "not measured")
    assert math.isnan(c.p_adjusted)


def test_write_comparisons_csv_is_atomic_and_names_the_file(tmp_path):
    comparisons = holm_family([compare_differences([0.1, -0.2, 0.3], MASS, task="x,y")])
    path = tmp_path / "comparisons.csv"
    write_comparisons_csv(path, comparisons)
    (row,) = rows_of(path.read_text())
    assert row["task"] == "x,y" and row["metric"] == "mass_optimal"
    assert list(tmp_path.iterdir()) == [path]
    blocked = tmp_path / "blocked"
    (blocked / "comparisons.csv").mkdir(parents=True)
    with pytest.raises(OSError) as error:
        write_comparisons_csv(blocked / "comparisons.csv", comparisons)
    assert error.value.filename == str(blocked / "comparisons.csv")


def test_entanglement_pooled_over_layers_tests_one_mean_difference_per_seed():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    seeds = range(7)
    value = {(layers, s): float(rng.uniform(0.5, 1.0)) for layers in (0, 1, 2) for s in seeds}
    entries = [
        Entry(
            SimpleNamespace(id=f"L{layers}-s{s}"),
            "t",
            "MLE",
            (0,),
            layers,
            "",
            (0, s),
            {ACC_BMA.key: value[layers, s], EXPECTED_COST.key: None, MASS.key: 0.5},
        )
        for (layers, s) in value
    ]
    found = {(c.b, c.metric.key): c for c in entanglement_comparisons(entries)}
    pooled = found["MLE L≥1", ACC_BMA.key]
    d = [(value[1, s] + value[2, s]) / 2 - value[0, s] for s in seeds]
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
    assert (pooled.pairs, pooled.n, pooled.layers) == (7, 7, (1, 2))
    assert pooled.estimate.mean == pytest.approx(float(np.median(walsh)), abs=1e-12)
    exact = stats.wilcoxon(d, method="exact").pvalue
    assert pooled.wilcoxon.p_value == pytest.approx(exact, rel=1e-9)
    assert found["MLE L1", ACC_BMA.key].n == 7
    unmeasured = found["MLE L≥1", EXPECTED_COST.key]
    assert (unmeasured.pairs, unmeasured.verdict()) == (7, "not measured")


def test_float_noise_of_a_bounded_metric_is_a_tie_and_nan_stays_missing():
    noise = [1e-17 * k for k in range(1, 11)]  # masses of 1e-17: no evidence either way
    (c,) = holm_family([compare_differences(noise, MASS)])
    assert (c.n, c.wilcoxon.n, c.estimate.mean, c.verdict()) == (
        10,
        0,
        0.0,
        "no significant difference",
    )
    (real,) = holm_family([compare_differences([1e-6 * k for k in range(1, 11)], MASS)])
    assert real.verdict() == "b better"  # the same pattern well above float noise
    (cost,) = holm_family([compare_differences(noise, EXPECTED_COST)])  # unbounded: kept
    assert cost.verdict() == "a better"
    assert compare_differences([math.nan, 0.5, 0.25], ACC_BMA).n == 2


@pytest.mark.parametrize(
    "p,text", [(0.0496, "0.0496"), (0.05, "0.05"), (0.0504, "0.05"), (0.0014, "0.0014"), (1, "1")]
)
def test_a_printed_p_never_rounds_across_alpha(p, text):
    from qhn.experiments.report_verdicts import _p

    assert _p(p) == text
    assert (float(_p(p)) < 0.05) == (p < 0.05)


def test_qhn_against_a_baseline_pooled_over_layers_tests_one_mean_difference_per_seed():
    from qhn.experiments.baseline_comparisons import baseline_comparisons

    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    seeds = range(8)
    ours = {(layers, s): float(rng.uniform(0.5, 1.0)) for layers in (0, 1, 2) for s in seeds}
    theirs = {s: float(rng.uniform(0.5, 1.0)) for s in seeds}

    def entry(run_id, arm, layers, s, acc, method):
        values = {ACC_BMA.key: acc, EXPECTED_COST.key: None, MASS.key: 0.5}
        return Entry(SimpleNamespace(id=run_id), "t", arm, (0,), layers, "", (0, s), values, method)

    entries = [entry(f"L{k}-s{s}", "MLE", k, s, v, "qhn") for (k, s), v in ours.items()]
    entries += [entry(f"a-s{s}", "anneal", 0, s, v, "anneal") for s, v in theirs.items()]
    found = {(c.layers, c.metric.key): c for c in baseline_comparisons(entries)}
    pooled = found[(0, 1, 2), ACC_BMA.key]
    assert (pooled.a, pooled.b, pooled.pairs) == ("MLE", "anneal", 8)
    # every layer count pairs with the same annealing run: the seed is the unit of the test
    d = [theirs[s] - (ours[0, s] + ours[1, s] + ours[2, s]) / 3 for s in seeds]
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
    assert pooled.estimate.mean == pytest.approx(float(np.median(walsh)), abs=1e-12)
    exact = stats.wilcoxon(d, method="exact").pvalue
    assert pooled.wilcoxon.p_value == pytest.approx(exact, rel=1e-9)
    single = found[(1,), ACC_BMA.key]
    one = [theirs[s] - ours[1, s] for s in seeds]
    assert single.wilcoxon.p_value == pytest.approx(
        stats.wilcoxon(one, method="exact").pvalue, rel=1e-9
    )
