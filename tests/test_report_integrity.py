"""`qhn report` on damaged or mixed sweep directories: a real tiny sweep, then corrupted files, a
second sweep file run into the same directory, odd paths and unwritable outputs. The oracles are
the file system (which run directories hold what) and the sweep files' own expansion."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qhn.cli import app
from qhn.experiments.executors import run_sweep
from qhn.experiments.results import read_history_lenient, steps_to_fraction
from qhn.experiments.sweep import expand, loads_sweep

SWEEP_A = """
seeds = 3
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 40
n_test = 40
[base.train]
steps = 5
[grid]
objective = ["mle", "elbo"]
layers = [1]
"""

#: Another sweep file: other layers, so none of its points is a point of SWEEP_A.
SWEEP_B = SWEEP_A.replace("seeds = 3", "seeds = 2").replace("layers = [1]", "layers = [0]")


def ids_of(text: str) -> list[str]:
    return [point.id for point in expand(loads_sweep(text))]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("integrity") / "sweep"
    result = run_sweep(loads_sweep(SWEEP_A), out, plots=False)
    assert result.ok and sorted(result.completed) == sorted(ids_of(SWEEP_A))
    return out


@pytest.fixture
def sweep(pristine, tmp_path) -> Path:
    """A fresh copy of the tiny sweep (6 complete runs), to damage."""
    out = tmp_path / "sweep"
    shutil.copytree(pristine, out)
    return out


def report(*args: str) -> tuple[int, list[str], str]:
    """Run `qhn report`; its exit code, its stderr lines and its stdout. Never an exception."""
    result = CliRunner().invoke(app, ["report", *args, "--no-figures"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, [x for x in result.stderr.splitlines() if x.strip()], result.stdout


def csv_ids(sweep: Path) -> list[str]:
    with (sweep / "results.csv").open() as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def runs_used(sweep: Path) -> int:
    text = (sweep / "report.md").read_text()
    match = re.search(
        r"^Runs used: (\d+) complete runs?, the (\d+) rows of `results.csv`", text, re.M
    )
    assert match is not None, text[:2000]
    assert match.group(1) == match.group(2)
    return int(match.group(1))


def run_dir(sweep: Path, run_id: str) -> Path:
    return sweep / "runs" / run_id


# --- unreadable runs ----------------------------------------------------------------------------


def test_unreadable_summaries_are_skipped_one_warning_each_and_counts_match_the_table(sweep):
    ids = ids_of(SWEEP_A)
    not_object, truncated, empty = ids[0], ids[2], ids[4]
    (run_dir(sweep, not_object) / "summary.json").write_text("[1, 2]")
    whole = (run_dir(sweep, truncated) / "summary.json").read_bytes()
    (run_dir(sweep, truncated) / "summary.json").write_bytes(whole[: len(whole) // 2])
    (run_dir(sweep, empty) / "summary.json").write_bytes(b"")

    code, errors, stdout = report(str(sweep))

    assert code == 0
    good = [i for i in ids if i not in (not_object, truncated, empty)]
    assert sorted(csv_ids(sweep)) == sorted(good)
    assert runs_used(sweep) == len(good) == 3
    assert "(3 runs, one row each)" in stdout
    assert len(errors) == 3 and all(line.startswith("warning: skipped run ") for line in errors)
    for run_id, why in (
        (not_object, "is not a JSON object (it holds a list)"),
        (truncated, "is not valid JSON"),
        (empty, "is empty"),
    ):
        (line,) = [x for x in errors if run_id in x]
        assert f"{run_dir(sweep, run_id) / 'summary.json'} {why}" in line
    text = (sweep / "report.md").read_text()
    assert "Left out: 3 unreadable, 0 failed, 0 incomplete" in text
    left_out = text[text.index("## Runs left out") :]
    for run_id in (not_object, truncated, empty):
        assert f"- `{run_id}` unreadable: `runs/{run_id}/summary.json`" in left_out


def test_missing_or_invalid_config_is_skipped_and_a_torn_history_keeps_the_results(sweep):
    ids = ids_of(SWEEP_A)
    no_config, bad_config, torn = ids[1], ids[3], ids[5]
    (run_dir(sweep, no_config) / "config.toml").unlink()
    (run_dir(sweep, bad_config) / "config.toml").write_text("objective = [unclosed\n")
    history = run_dir(sweep, torn) / "history.jsonl"
    lines = history.read_text().splitlines(keepends=True)
    history.write_text("".join([lines[0], '{"step": 2, "obj\n', "\x00\x01garbage\n", *lines[1:]]))

    code, errors, _ = report(str(sweep))

    assert code == 0
    assert sorted(csv_ids(sweep)) == sorted(i for i in ids if i not in (no_config, bad_config))
    assert runs_used(sweep) == 4
    assert len(errors) == 3
    (missing,) = [x for x in errors if no_config in x]
    assert f"{run_dir(sweep, no_config) / 'config.toml'} is missing" in missing
    (invalid,) = [x for x in errors if bad_config in x]
    assert f"{run_dir(sweep, bad_config) / 'config.toml'} is not a valid run config" in invalid
    (history_line,) = [x for x in errors if torn in x]
    assert f"{history}: 2 lines, the first 2 is not a JSON record" in history_line
    assert "its results are used" in history_line
    with (sweep / "results.csv").open() as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    summary = json.loads((run_dir(sweep, torn) / "summary.json").read_text())
    assert float(rows[torn]["acc_bma_test"]) == summary["acc_bma_test"]
    assert rows[torn]["steps_to_99"] == ""  # not computed from a damaged history
    for run_id in rows.keys() - {torn}:
        records = [json.loads(x) for x in (run_dir(sweep, run_id) / "history.jsonl").open()]
        assert rows[run_id]["steps_to_99"] == str(steps_to_fraction(records))


def test_history_reading_and_steps_to_fraction_survive_torn_records(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(
        '{"step": 1, "objective": 0.0}\n[1, 2]\n{"objective": 9}\n{"step": true, "objective": 3}\n'
        '{"step": 2, "objective": 10.0}\n{"step": 3, "obj'
    )
    records, problem = read_history_lenient(path)
    assert [r["step"] for r in records] == [1, 2]
    assert problem == "4 lines, the first 2 is not a JSON record with an integer step"
    torn = [records[0], [1], {"objective": 5.0}, {"step": True, "objective": 3.0}, records[1]]
    assert steps_to_fraction(torn) == 2
    assert read_history_lenient(tmp_path / "absent.jsonl")[1].startswith("cannot be read")


# --- runs of another sweep file ----------------------------------------------------------------


def test_runs_of_another_sweep_file_are_excluded_by_default_and_listed(sweep):
    result = run_sweep(loads_sweep(SWEEP_B), sweep, plots=False)
    assert result.ok
    old, new = ids_of(SWEEP_A), ids_of(SWEEP_B)
    assert not set(old) & set(new)
    assert sorted(p.name for p in (sweep / "runs").iterdir()) == sorted(old + new)

    code, errors, _ = report(str(sweep))

    assert code == 0
    assert sorted(csv_ids(sweep)) == sorted(new)
    assert runs_used(sweep) == len(new) == 4
    (warning,) = errors
    assert warning.startswith(
        f"warning: 6 run directories are not points of the current sweep file {sweep}/sweep.toml"
    )
    assert "excluded from results.csv and the report" in warning and "--all-runs" in warning
    assert warning.endswith(": " + ", ".join(sorted(old)))
    text = (sweep / "report.md").read_text()
    assert "> **Warning:** 6 run directories are not points" in text
    assert "Left out: 0 unreadable, 0 failed, 0 incomplete, 6 of another sweep file" in text
    for run_id in old:
        assert f"- `{run_id}` (complete) is not a point of the current `sweep.toml`" in text

    code, errors, _ = report(str(sweep), "--all-runs")

    assert code == 0
    assert sorted(csv_ids(sweep)) == sorted(old + new)
    assert runs_used(sweep) == 10
    assert "including 6 of another sweep file, by `--all-runs`" in (sweep / "report.md").read_text()
    (warning,) = errors
    assert "included because of all_runs" in warning


def test_without_a_readable_sweep_file_every_run_is_used_with_a_warning(sweep):
    (sweep / "sweep.toml").unlink()
    code, errors, _ = report(str(sweep))
    assert code == 0 and sorted(csv_ids(sweep)) == sorted(ids_of(SWEEP_A))
    assert runs_used(sweep) == 6
    assert errors == [
        "warning: cannot tell which run directories belong to the current sweep file "
        "(sweep.toml is missing); using all 6 of them"
    ]
    (sweep / "sweep.toml").write_text("[grid\n")
    code, errors, _ = report(str(sweep))
    assert code == 0 and runs_used(sweep) == 6
    (warning,) = errors
    assert "sweep.toml is not valid TOML" in warning and warning.endswith("using all 6 of them")


# --- paths, usage and write errors --------------------------------------------------------------


def test_paths_with_rich_markup_print_literally(sweep, tmp_path):
    odd = tmp_path / "a[" / "x]" / "[bold]sweep"  # the path contains "[/x]"
    odd.parent.mkdir(parents=True)
    shutil.move(sweep, odd)
    run_id = ids_of(SWEEP_A)[0]
    (run_dir(odd, run_id) / "summary.json").write_text("[1, 2]")
    code, errors, stdout = report(str(odd))
    assert code == 0
    assert errors == [
        f"warning: skipped run {run_id}: {run_dir(odd, run_id) / 'summary.json'} is not a JSON "
        "object (it holds a list)"
    ]
    assert f"wrote {odd / 'results.csv'} (5 runs" in stdout

    missing = tmp_path / "b[" / "x]" / "[red]none"
    code, errors, _ = report(str(missing))
    assert code == 2
    assert errors == [f"error: {missing} has no runs/ folder; is it a sweep directory?"]


@pytest.mark.parametrize("name", ["results.csv", "report.md"])
def test_an_unwritable_output_is_one_line_naming_it_with_exit_code_1(sweep, name):
    # a directory where the file goes: the atomic rename fails (also for root, unlike chmod)
    (sweep / name).mkdir()
    (sweep / name / "keep").write_text("x")
    code, errors, _ = report(str(sweep))
    assert code == 1
    (line,) = errors
    assert line.startswith(f"error: {sweep / name}: ")
    assert ".tmp" not in line  # the target, not the temporary file beside it
