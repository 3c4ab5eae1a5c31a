"""``method`` as a run and sweep key: baselines run beside QHN points; the report compares them."""

from __future__ import annotations

import csv

import pytest
import torch

from qhn.baselines.search import random_search
from qhn.data.tasks import get_task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig, load_config, to_toml
from qhn.experiments.executors import run_sweep
from qhn.experiments.ids import point_id
from qhn.experiments.methods import baseline_config
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.report import write_report
from qhn.experiments.runner import read_summary
from qhn.experiments.sweep import expand, loads_sweep

SWEEP = """
seeds = 2
[base]
task = "teacher-tiny"
objective = "mle"
layers = 1
[base.train]
steps = 6

[[group]]
name = "qhn"

[[group]]
name = "baselines"
[group.base.baseline]
budget = 384
[group.grid]
method = ["random"]
"""


def test_method_sweep_runs_a_baseline_and_a_qhn_point_and_reports_the_comparison(tmp_path):
    result = run_sweep(loads_sweep(SWEEP), tmp_path, plots=False)
    assert result.ok and len(result.completed) == 4
    runs = {p.id: p for p in result.points}
    baseline_ids = [i for i, p in runs.items() if p.config.method == "random"]
    assert len(baseline_ids) == 2 and all("-random-" in i for i in baseline_ids)
    task = get_task("teacher-tiny")
    for run_id in baseline_ids:
        config = load_config(tmp_path / "runs" / run_id / "config.toml")  # a RunConfig
        summary = read_summary(tmp_path / "runs" / run_id)
        assert summary["method"] == "random" and summary["evaluations"] == 384
        # the same draws by hand give the same best cost (random search is its own oracle here:
        # uniform bitstrings from the run's seed, the minimum of C over them)

        _, best = random_search(
            task.cost, task.n_bits, 384, torch.Generator().manual_seed(config.train.seed)
        )
        assert summary["expected_cost"] == pytest.approx(best, rel=1e-12)
    qhn_summary = read_summary(tmp_path / "runs" / next(i for i in runs if "-mle-" in i))
    assert qhn_summary["evaluations"] == 6 * 2**6  # matched: 384 on both sides

    report = write_report(tmp_path, figures=False)
    with (tmp_path / "comparisons.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    versus = [r for r in rows if r["a"] == "MLE" and r["b"] == "random"]
    assert {r["metric"] for r in versus} == {
        "acc_bma_test",
        "acc_mode_test",
        "expected_cost",
        "mass_optimal",
    }
    assert all(r["n"] == "2" and r["group"].startswith("layers=1") for r in versus)
    assert "random vs MLE" in "\n".join(report.headline)


def test_method_qhn_is_the_default_and_keeps_the_id():
    plain = RunConfig(task="teacher-tiny")
    spelled = apply_overrides(plain, ["method=qhn"])
    assert spelled.method is None and to_toml(spelled) == to_toml(plain)
    assert point_id(spelled) == point_id(plain)


def test_baseline_config_takes_the_run_fields():
    config = apply_overrides(
        RunConfig(task="teacher-tiny"),
        ["method=anneal", "train.seed=7", "steps=11", "temperature=2.0", "baseline.replicas=3"],
    )
    base = baseline_config(config)
    assert (base.method, base.seed, base.steps, base.temperature, base.replicas) == (
        "anneal",
        7,
        11,
        2.0,
        3,
    )


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["method=annealing"], ["method", "annealing", "anneal"]),
        (["baseline.tau=0.5"], ["baseline options", "method"]),
        (["method=anneal", "baseline.seed=3"], ["baseline.seed", "train.seed"]),
        (["method=anneal", "baseline.taus=3"], ["'taus'", "tau"]),
        (["method=bayesbinn", "baseline.tau=-1"], ["tau", "-1"]),
    ],
)
def test_method_misconfigurations_are_one_line_errors(overrides, words):
    with pytest.raises(ConfigError) as error:
        apply_overrides(RunConfig(task="teacher-tiny"), overrides)
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_baseline_keys_in_a_grid_expand():
    text = SWEEP.replace("budget = 384", "").replace(
        'method = ["random"]', 'method = ["random"]\n"baseline.budget" = [64, 128]'
    )
    points = expand(loads_sweep(text))
    budgets = sorted(p.config.baseline.get("budget", 0) for p in points if p.config.method)
    assert budgets == [64, 64, 128, 128]


def test_qhn_train_runs_a_baseline_named_by_method(tmp_path):
    from typer.testing import CliRunner

    from qhn.cli import app

    out = tmp_path / "a"
    args = ["train", "--task", "teacher-tiny", "--out", str(out), "--set", "method=random"]
    result = CliRunner().invoke(app, [*args, "--set", "baseline.budget=100", "--set", "steps=3"])
    assert result.exit_code == 0, result.output
    assert "network-loss evaluations" in result.output
    assert load_config(out / "config.toml").method == "random"
    assert read_summary(out)["evaluations"] == 100
    bad = CliRunner().invoke(app, [*args, "--set", "baseline.budget=0"])
    assert bad.exit_code == 2 and "budget" in bad.output


def test_a_baseline_point_on_a_task_too_large_to_enumerate_passes_the_sweep_check():
    from qhn.experiments.sweep import check_tasks

    text = """
    [base]
    task = "teacher"
    [base.task_options]
    n_inputs = 24
    [grid]
    method = ["qhn", "anneal"]
    """
    points = expand(loads_sweep(text))
    assert get_task("teacher", n_inputs=24).n_bits > 22
    check_tasks([p for p in points if p.config.method == "anneal"])  # no enumeration needed
    with pytest.raises(ConfigError, match="exact training stops at 22 bits"):
        check_tasks([p for p in points if p.config.method is None])
