"""``qhn landscape`` end to end, and the histogram figure."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from qhn.bits import all_bits
from qhn.cli import app
from qhn.data import get_task
from qhn.landscape import compute_landscape
from qhn.plots import landscape_histogram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_landscape_command_writes_the_file_summary_and_histogram(tmp_path):
    runner = CliRunner()
    args = ["landscape", "teacher-tiny", "--out", str(tmp_path), "--seed", "2"]
    args += ["--set", "n_train=50", "--set", "n_test=20"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "degeneracy 1" in result.output and "enumerated" in result.output

    [npz] = tmp_path.glob("landscape-teacher-tiny-*.npz")
    [png] = tmp_path.glob("landscape-teacher-tiny-*.png")
    [summary_file] = tmp_path.glob("landscape-teacher-tiny-*.json")
    assert png.read_bytes()[:8] == PNG_MAGIC
    task = get_task("teacher-tiny", seed=2, n_train=50, n_test=20)
    with np.load(npz) as stored:
        # The enumeration sums the logits in another order than the network's forward pass
        # (linear networks: two bit halves), so they agree to float64 rounding.
        np.testing.assert_allclose(
            stored["train_costs"], task.cost(all_bits(6)).numpy(), rtol=1e-13, atol=0
        )
    summary = json.loads(summary_file.read_text())
    assert summary["n_bits"] == 6 and summary["degeneracy"] == 1
    assert summary["optimal_bitstrings"][0] in result.output
    assert summary["optimum"]["index"] == task.info["teacher_index"]

    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "read from cache" in again.output


def test_landscape_command_on_the_reference_cost_vector(tmp_path, mnist01_dir):
    path = mnist01_dir / "Cop_4x4.txt"
    args = ["landscape", "cost-vector", "--out", str(tmp_path), "--set", f"path={path}"]
    result = CliRunner().invoke(app, [*args, "--tol", "7e-7", "--rtol", "0"])
    assert result.exit_code == 0, result.output
    assert "degeneracy 4" in result.output and "10100010010011001" in result.output


def test_landscape_command_reports_bad_input_clearly(tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(app, ["landscape", "mnist", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown task 'mnist'" in unknown.output
    option = runner.invoke(app, ["landscape", "moons", "--out", str(tmp_path), "--set", "hue=1"])
    assert option.exit_code == 2 and "valid options" in option.output
    malformed = runner.invoke(app, ["landscape", "moons", "--out", str(tmp_path), "--set", "x"])
    assert malformed.exit_code != 0 and "key=value" in malformed.output
    too_big = ["landscape", "teacher", "--out", str(tmp_path), "--set", "n_inputs=30"]
    budget = runner.invoke(app, too_big)
    assert budget.exit_code == 2 and "at most 26 bits" in budget.output
    assert not list(tmp_path.iterdir())


def test_histogram_has_log_counts_and_marks_the_optimum():
    landscape = compute_landscape(get_task("teacher-tiny", n_train=30))
    figure = landscape_histogram(landscape, bins=20)
    [axes] = figure.axes
    assert axes.get_yscale() == "log"
    marked = [line.get_xdata()[0] for line in axes.get_lines()]
    assert landscape.optimum_value in marked
    counts = sum(patch.get_height() for patch in axes.patches)
    assert counts == 2**6
