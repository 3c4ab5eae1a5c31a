"""Results table and report: statistics against closed forms, brute force and scipy; the
generated conclusion against constructed data; a report built from a real tiny sweep."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qhn.cli import app
from qhn.experiments.config import RunConfig, save_config
from qhn.experiments.executors import run_sweep
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.report import write_report
from qhn.experiments.results import collect, steps_to_fraction
from qhn.experiments.stats import t_cdf, t_interval, t_quantile, wilcoxon_signed_rank
from qhn.experiments.sweep import loads_sweep, point_id

# --- statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_closed_forms(p):
    # ν = 1 is the Cauchy distribution; ν = 2 has t = (2p − 1) / sqrt(2p(1 − p))
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)
    assert t_quantile(1 - p, 2) == pytest.approx(-t_quantile(p, 2), rel=1e-12)
    # ν → ∞ tends to the normal quantile (bisection on erf)
    low, high = 0.0, 10.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if 0.5 * math.erfc(-middle / math.sqrt(2)) < p else (low, middle)
    assert t_quantile(p, 1e7) == pytest.approx(low, rel=1e-6)


def test_t_cdf_matches_the_closed_form_for_three_degrees_of_freedom():
    for t in (-3.0, -0.5, 0.0, 0.7, 2.5, 10.0):
        x = t / math.sqrt(3)
        closed = 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi
        assert t_cdf(t, 3) == pytest.approx(closed, abs=1e-13)


def test_t_quantile_and_interval_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 19, 60, 500):
        for p in (0.55, 0.9, 0.975, 0.9995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)
    values = np.random.default_rng(3).normal(1.0, 2.0, size=9)
    low, high = stats.t.interval(0.95, 8, loc=values.mean(), scale=stats.sem(values))
    interval = t_interval(values.tolist())
    assert interval.mean == pytest.approx(values.mean(), rel=1e-12)
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-9)


def test_t_interval_closed_form_and_degenerate_cases():
    interval = t_interval([1.0, 2.0, 3.0, None, float("nan")])
    # n = 3, s = 1: half-width t_{0.975, 2} / sqrt(3), t_{0.975, 2} = 0.95 / sqrt(0.04875)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) / math.sqrt(3)
    assert (interval.n, interval.mean) == (3, 2.0)
    assert interval.half_width == pytest.approx(half, rel=1e-10)
    single = t_interval([5.0])
    assert single.n == 1 and single.mean == 5.0 and not single.defined and single.sign() == 0
    assert t_interval([]).n == 0
    assert t_interval([2.0, 2.0]).sign() == 1 and t_interval([-1.0, -1.0]).sign() == -1


def brute_force_wilcoxon(differences: list[float]) -> float:
    """Two-sided exact p by enumerating every sign pattern (mean ranks for ties)."""
    nonzero = [d for d in differences if d != 0]
    magnitudes = sorted(abs(d) for d in nonzero)
    ranks = {m: np.mean([i + 1 for i, v in enumerate(magnitudes) if v == m]) for m in magnitudes}
    r = [ranks[abs(d)] for d in nonzero]
    observed = sum(rank for rank, d in zip(r, nonzero, strict=True) if d > 0)
    totals = [
        sum(rank for rank, s in zip(r, signs, strict=True) if s)
        for signs in itertools.product((0, 1), repeat=len(r))
    ]
    lower = np.mean([t <= observed + 1e-9 for t in totals])
    upper = np.mean([t >= observed - 1e-9 for t in totals])
    return min(1.0, 2 * min(lower, upper))


@pytest.mark.parametrize(
    "differences",
    [
        [0.3, 1.2, -0.4, 2.2, 0.9],
        [1.0, 1.0, -1.0, 2.0, 2.0, 3.0, -0.5, 0.0],  # ties and a zero
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, -0.05, 0.8, 0.9, 1.0],
    ],
)
def test_wilcoxon_exact_matches_brute_force(differences):
    result = wilcoxon_signed_rank(differences)
    assert result.method == "exact"
    assert result.n == sum(d != 0 for d in differences)
    assert result.p_value == pytest.approx(brute_force_wilcoxon(differences), abs=1e-12)


def test_wilcoxon_closed_forms():
    # all n differences positive and distinct: only one of 2^n sign patterns is as extreme
    for n in (1, 3, 6, 10):
        assert wilcoxon_signed_rank(list(range(1, n + 1))).p_value == pytest.approx(
            min(1.0, 2 / 2**n)
        )
    nothing = wilcoxon_signed_rank([0.0, 0.0])
    assert (nothing.n, nothing.p_value) == (0, 1.0)


def test_wilcoxon_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(11)
    for n in (4, 9, 25, 50):
        d = rng.normal(0.4, 1.0, n)
        ours = wilcoxon_signed_rank(d.tolist())
        theirs = stats.wilcoxon(d, method="exact")
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    for n in (51, 80, 300):
        d = rng.normal(0.1, 1.0, n)
        ours = wilcoxon_signed_rank(d.tolist())
        theirs = stats.wilcoxon(d, method="approx", correction=False)
        assert ours.method == "normal"
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)


def test_steps_to_fraction():
    rising = [{"step": s, "objective": v} for s, v in enumerate([0.0, 50.0, 98.0, 99.0, 100.0], 1)]
    assert steps_to_fraction(rising) == 4
    falling = [{"step": s, "objective": v} for s, v in enumerate([10.0, 2.0, 0.05, 0.0], 1)]
    assert steps_to_fraction(falling) == 3  # progress (0.05 − 10) / (0 − 10) = 0.995
    assert steps_to_fraction([{"step": 1, "objective": 3.0}, {"step": 2, "objective": 3.0}]) == 1
    assert steps_to_fraction([{"step": 1}]) is None


# --- the conclusion on constructed data -------------------------------------------------------

SEEDS = range(12)


def fake_run(sweep: Path, overrides: list[str], summary: dict, history: list[dict]) -> str:
    config = apply_overrides(RunConfig(task="teacher-tiny"), overrides)
    run_id = point_id(config)
    run_dir = sweep / "runs" / run_id
    run_dir.mkdir(parents=True)
    save_config(config, run_dir / "config.toml")
    full = {"task": "teacher-tiny", "objective": config.objective, "shots": 0, **summary}
    (run_dir / "summary.json").write_text(json.dumps(full))
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    return run_id


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    """ELBO: accuracy +0.05 over MLE and E_q[C] +0.02 (worse) on every seed; SELBO: accuracy
    differences that cancel exactly; mass on the optimum equal everywhere; layers 1 adds 0.1
    accuracy over layers 0 for every objective."""
    sweep = tmp_path_factory.mktemp("constructed")
    rng = np.random.default_rng(5)
    base = {s: 0.7 + 0.01 * rng.standard_normal() for s in SEEDS}
    swing = [0.012, -0.012] * (len(SEEDS) // 2)
    for layers in (0, 1):
        for seed in SEEDS:
            mle_acc = base[seed] + 0.1 * layers
            cost = 0.5 + 0.01 * seed
            for objective, acc, expected_cost in (
                ("mle", mle_acc, cost),
                ("elbo", mle_acc + 0.05 + 0.002 * rng.standard_normal(), cost + 0.02),
                ("selbo", mle_acc + swing[seed], cost),
            ):
                history = [
                    {"step": 1, "objective": -10.0, "expected_cost": 1.0, "entropy": 2.0},
                    {"step": 2, "objective": -1.0, "expected_cost": 0.6, "entropy": 1.0},
                    {"step": 3, "objective": -0.5, "expected_cost": expected_cost, "entropy": 0.5},
                ]
                fake_run(
                    sweep,
                    [f"objective={objective}", f"layers={layers}", f"train.seed={seed}"],
                    {
                        "acc_bma_test": acc,
                        "acc_mode_test": acc,
                        "expected_cost": expected_cost,
                        "mass_optimal": 0.25,
                        "optimum_value": 0.2,
                        "optimum_degeneracy": 1,
                    },
                    history,
                )
    report = write_report(sweep, figures=False)
    return sweep, report.text


def section(text: str, start: str, stop: str = "\n- ") -> str:
    begin = text.index(start)
    end = text.find(stop, begin + len(start))
    return text[begin : end if end != -1 else len(text)]


def test_headline_then_conclusion_state_supported_wins_only(constructed):
    _, text = constructed
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:2] == ["Headline", "Conclusion"]
    assert headings[-1] == "Appendix: every comparison"
    headline = section(text, "## Headline", "\n## ")
    row = next(x for x in headline.splitlines() if x.startswith("| teacher-tiny | ELBO vs MLE |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "24"
    assert re.fullmatch(r"\+0\.0(49|50|51)\d* \[.*\], p̃ = [0-9.e-]+, \*\*ELBO better\*\*", cells[3])
    assert re.fullmatch(r"\+0\.02 \[.*\], p̃ = [0-9.e-]+, \*\*MLE better\*\*", cells[4])
    assert cells[5] == "+0 [+0, +0], p̃ = 1, no significant difference"
    assert "| teacher-tiny | SELBO vs ELBO |" not in headline  # in the appendix only
    assert "| teacher-tiny | MLE: layers 1 vs 0 | 12 | +0.1 [" in headline
    conclusion = text[text.index("## Conclusion") : text.index("\n## ", text.index("## Conc") + 3)]
    elbo = section(conclusion, "- **ELBO vs MLE**")
    assert "n = 24 matched runs over layers 0, 1" in elbo
    assert re.search(r"test accuracy \(BMA\): \*\*ELBO better\*\* than MLE by 0\.0(49|50|51)", elbo)
    assert "E_q[C] (train): **MLE better** than ELBO by 0.02" in elbo
    assert "mass on the optimal set: no significant difference" in elbo
    assert (
        "Verdict: ELBO beats MLE on test accuracy (BMA); MLE beats ELBO on E_q[C] (train); "
        "no significant difference on mass on the optimal set." in elbo
    )
    selbo = section(conclusion, "- **SELBO vs MLE**")
    assert "test accuracy (BMA): no significant difference (+0 " in selbo
    assert "better" not in selbo
    entanglement = section(conclusion, "- Entanglement", "\n## ")
    for arm in ("MLE", "ELBO", "SELBO"):
        line = next(
            x
            for x in entanglement.splitlines()
            if x.startswith(f"  - {arm}, layers 1 vs 0, n = {len(SEEDS)}")
        )
        assert re.search(
            r"\(BMA\): \*\*layers 1 better\*\* than layers 0 by 0\.(1 |09[5-9]|10[0-5])", line
        )
        assert "E_q[C] (train): no significant difference" in line


def holm_oracle(p: list[float]) -> list[float]:
    """Holm's adjustment by its definition: p̃_i = max over the sorted prefix ending at i."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = [min(1.0, (m - rank) * p[i]) for rank, i in enumerate(order)]
    out = [0.0] * m
    for rank, i in enumerate(order):
        out[i] = max(scaled[: rank + 1])
    return out


def test_every_printed_number_matches_an_independent_computation(constructed):
    sweep, text = constructed
    stats = pytest.importorskip("scipy.stats")
    rows = {
        (r["objective"], r["layers"], r["train.seed"]): r for r in collect(sweep, write=False).rows
    }
    with (sweep / "comparisons.csv").open() as handle:
        table = list(csv.DictReader(handle))
    measured = [row for row in table if row["verdict"] != "not measured"]
    assert len(measured) == len(table) == 45  # 3 arm pairs × 4 metrics × 3 + 3 arms × 3 metrics
    adjusted = holm_oracle([float(row["p_value"]) for row in measured])
    for row, p_adjusted in zip(measured, adjusted, strict=True):
        assert float(row["p_adjusted"]) == pytest.approx(p_adjusted, rel=1e-12)
        significant = p_adjusted < 0.05
        assert (row["verdict"] != "no significant difference") == significant, row
    names = {"MLE": "mle", "ELBO": "elbo", "SELBO": "selbo"}
    for row in measured:
        if row["a"].endswith(" L0"):
            continue
        layers = [int(x) for x in row["group"].removeprefix("layers=").split(",")]
        d = np.array(
            [
                rows[names[row["b"]], layer, seed][row["metric"]]
                - rows[names[row["a"]], layer, seed][row["metric"]]
                for layer in layers
                for seed in SEEDS
            ]
        )
        assert int(row["n"]) == len(d)
        walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
        assert float(row["estimate"]) == pytest.approx(np.median(walsh), abs=1e-12)
        assert d.min() - 1e-12 <= float(row["ci_low"]) <= float(row["estimate"]) + 1e-12
        assert float(row["estimate"]) - 1e-12 <= float(row["ci_high"]) <= d.max() + 1e-12
        magnitudes = np.abs(d)
        if np.all(magnitudes < 1e-12):
            assert float(row["p_value"]) == 1.0
        elif np.ptp(magnitudes) < 1e-12:  # one tie group: the signed-rank test is the sign test
            sign_test = stats.binomtest(int(np.sum(d > 0)), len(d)).pvalue
            assert float(row["p_value"]) == pytest.approx(sign_test, rel=1e-9)
        else:
            assert len(np.unique(magnitudes.round(12))) == len(d)  # no ties: scipy is exact
            exact = stats.wilcoxon(d, method="exact").pvalue
            assert float(row["p_value"]) == pytest.approx(exact, rel=1e-9)
    elbo = next(
        r
        for r in measured
        if (r["a"], r["b"], r["metric"], r["group"])
        == ("MLE", "ELBO", "acc_bma_test", "layers=0,1")
    )
    expected = (
        f"({float(elbo['estimate']):+.3g} [{float(elbo['ci_low']):+.3g}, "
        f"{float(elbo['ci_high']):+.3g}], Wilcoxon p = {float(elbo['p_value']):.2g}, "
        f"adjusted p = {float(elbo['p_adjusted']):.2g})"
    )
    assert expected in section(text, "- **ELBO vs MLE**")


def test_results_table_cells_and_reference_rows(constructed):
    _, text = constructed
    results = section(text, "## Results per configuration", "\n## ")
    rows = [line for line in results.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 6  # header + 3 objectives × 2 layer counts
    assert rows[0].startswith("| objective | layers | n | test accuracy (BMA)")
    mle0 = next(r for r in rows if r.startswith("| MLE | 0 |"))
    assert f"| {len(SEEDS)} |" in mle0 and "| 0.25 [0.25, 0.25] |" in mle0
    assert "optimum (exhaustive search) | 0.2 |" in text
    appendix = section(text, "## Appendix: every comparison", "\n## ")
    assert "| ELBO − MLE | 0, 1 | test accuracy (BMA) | 24 |" in appendix
    assert "— (all pairs equal)" in appendix  # mass on the optimum is identical


# --- a real tiny sweep ------------------------------------------------------------------------

TINY_SWEEP = """
seeds = 2
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 80
n_test = 80
[base.train]
steps = 20
[grid]
objective = ["mle", "elbo"]
layers = [0, 1]
[[include]]
objective = "selbo"
backend = "sampled"
shots = 32
layers = 1
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "sweep"
    result = run_sweep(loads_sweep(TINY_SWEEP), out, workers=1, plots=False)
    assert result.ok and len(result.completed) == 10
    return out, write_report(out)


def test_report_of_a_real_sweep_has_tables_conclusion_and_figures(tiny_sweep):
    out, report = tiny_sweep
    text = (out / "report.md").read_text()
    assert text == report.text
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:3] == ["Headline", "Conclusion", "Reference networks"]
    for heading in ("Results per configuration", "Figures", "Appendix: every comparison"):
        assert heading in headings
    assert "- **ELBO vs MLE** (backend=statevector, shots=none), n = 4 matched runs" in text
    assert "- Entanglement (layers ≥ 1 against the product state" in text
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text)
    assert {Path(link).stem for link in links} == {
        "accuracy_vs_layers",
        "mass_optimal_vs_layers",
        "curves_expected_cost",
        "curves_entropy",
        "shots_vs_accuracy",
    }
    for link in links:
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(report.figures) == sorted(out / link for link in links)


def test_reference_rows_come_from_the_landscape(tiny_sweep):
    out, report = tiny_sweep
    summary = json.loads(next((out / "runs").glob("*/summary.json")).read_text())
    reference = section(report.text, "## Reference networks", "\n## ")
    assert f"| teacher-tiny | optimum (exhaustive search) | {summary['optimum_value']:.7g} |" in (
        reference
    )
    assert f"degeneracy {summary['optimum_degeneracy']}" in reference
    assert "| teacher-tiny | random network |" in reference


def test_results_csv_has_one_row_per_run_with_the_summaries(tiny_sweep):
    out, _ = tiny_sweep
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    run_ids = sorted(p.name for p in (out / "runs").iterdir())
    assert sorted(row["id"] for row in rows) == run_ids
    for column in ("task", "objective", "layers", "train.seed", "backend", "shots"):
        assert column in rows[0]
    assert {"shots_spent", "acc_bma_test", "expected_cost", "steps_to_99"} <= set(rows[0])
    for row in rows:
        summary = json.loads((out / "runs" / row["id"] / "summary.json").read_text())
        assert float(row["acc_bma_test"]) == summary["acc_bma_test"]
        assert int(row["shots_spent"]) == summary["shots"]
        assert row["shots"] == ("32" if row["backend"] == "sampled" else "")
    mle0 = [r for r in rows if r["objective"] == "mle" and r["layers"] == "0"]
    mean = np.mean([float(r["acc_bma_test"]) for r in mle0])
    table_row = next(
        line for line in (out / "report.md").read_text().splitlines() if "| MLE | 0 |" in line
    )
    assert f"| {mean:.4g} [" in table_row


def test_qhn_report_rebuilds_the_same_files_from_the_run_directories(tiny_sweep, tmp_path):
    out = tmp_path / "sweep"  # the same folder name: the title names it
    shutil.copytree(tiny_sweep[0], out)
    names = ("results.csv", "comparisons.csv", "report.md")
    before = {name: (out / name).read_text() for name in names}
    for name in before:
        (out / name).unlink()
    result = CliRunner().invoke(app, ["report", str(out), "--no-figures"])
    assert result.exit_code == 0, result.output
    for name in ("results.csv", "comparisons.csv"):
        assert (out / name).read_text() == before[name]
    rebuilt = (out / "report.md").read_text()
    assert rebuilt == re.sub(r"## Figures\n.*?(?=## )", "", before["report.md"], flags=re.S)


def test_the_terminal_gets_the_title_the_power_warning_and_the_headline_table_only(tiny_sweep):
    from qhn.cli_sweep import _conclusion

    _, report = tiny_sweep
    printed = _conclusion(report.text).splitlines()
    assert printed[0] == report.text.splitlines()[0]
    assert printed[2] == "## Headline"
    # 4 seeds cannot clear Holm over this family: the warning comes before the table
    power = [line for line in report.headline if line.startswith("**Power of this design")]
    assert len(power) == 1 and printed[4:6] == [power[0], ""]
    table = [line for line in report.headline if line.startswith("|")]
    assert printed[6:] == table and len(table) > 2


def test_qhn_sweep_dry_run_lists_points_and_writes_nothing(tmp_path):
    spec = tmp_path / "grid.toml"
    spec.write_text(TINY_SWEEP)
    result = CliRunner().invoke(
        app, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "10 points" in result.output and "teacher-tiny-selbo-L1-s1-" in result.output
    assert not (tmp_path / "out").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_SWEEP.replace('"elbo"]', '"elbow"]'))
    result = CliRunner().invoke(app, ["sweep", str(bad), "--dry-run"])
    assert result.exit_code == 2
    assert "elbow" in result.output
