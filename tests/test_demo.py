"""``qhn demo`` trains a small QHN and says where its figures went."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qhn.cli import app

pytest.importorskip("matplotlib")


def test_demo_trains_and_points_to_figures_that_exist(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--steps", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 15 and summary["task"] == "moons"
    # the accuracy printed is the one the run recorded
    printed = re.search(r"test accuracy: ([0-9.]+) \(model average\)", result.output)
    assert printed and float(printed.group(1)) == pytest.approx(summary["acc_bma_test"], abs=5e-4)
    figures = [Path(p) for p in re.findall(r"^\s+(\S+\.png)\s", result.output, re.M)]
    assert {p.name for p in figures} == {
        "curves.png",
        "top_bitstrings.png",
        "decision_boundary.png",
    }
    assert all(p.is_file() and p.stat().st_size > 0 for p in figures)

    again = CliRunner().invoke(app, ["demo", "--out", str(out), "--steps", "15"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "summary.json").read_text()) == summary  # found, not retrained


def test_demo_refuses_a_bad_step_count_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--steps", "0"])
    assert result.exit_code == 2
    assert not (tmp_path / "d").exists()
