"""Results of a sweep: read the run directories, write ``results.csv``.

Which runs count (:func:`scan_runs`). The sweep directory's ``sweep.toml`` (the sweep file of the
last ``qhn sweep``) names the current points; a run directory under ``runs/`` that is not one of
them was left by another sweep file run into the same directory, and is excluded unless
``all_runs`` (``qhn report --all-runs``); without a readable ``sweep.toml`` every run directory
counts. Of those, a run is used when it is complete: a ``summary.json`` holding a JSON object
(written atomically, last, by the runner) and a readable ``config.toml``. A complete run that
cannot be read is skipped with a warning naming the file and why; a ``history.jsonl`` with
unreadable lines keeps its run but leaves out its ``steps_to_99`` and training curves. The
records :func:`scan_runs` returns are the rows of ``results.csv``, one each, so counts taken from
them always equal the table's.

:func:`collect` writes one row per used run: ``id``, the
config fields that identify it (``task``, ``objective``, ``layers``, ``train.seed``) and every
other config field that varies across the runs (dotted names, as in ``--set``), then every
scalar of the summary, then ``steps_to_99`` (see :func:`steps_to_fraction`). Summary keys that
would clash with a config column are renamed: ``shots`` → ``shots_spent`` (shots taken in
total), ``estimator`` → ``estimator_used`` (``auto`` resolved), ``ansatz`` → ``circuit`` (the
circuit's name); the summary's ``task`` and ``objective`` equal the config's and are not
repeated. Rows are ordered by task, objective (mle, elbo, selbo), layers, the other varying
fields, then seeds.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from qhn.errors import QHNError
from qhn.experiments.config import OBJECTIVES, RunConfig, loads_config
from qhn.experiments.toml_format import toml_value
from qhn.io import atomic_write_text

__all__ = [
    "ID_COLUMNS",
    "RESULTS",
    "ResultsTable",
    "RunRecord",
    "RunScan",
    "SkippedRun",
    "collect",
    "flatten_config",
    "load_runs",
    "read_history_lenient",
    "run_states",
    "scan_runs",
    "steps_to_fraction",
    "varying_fields",
    "write_named",
]

logger = logging.getLogger(__name__)

RESULTS = "results.csv"
RUNS = "runs"
SWEEP_FILE = "sweep.toml"
SUMMARY = "summary.json"
CONFIG = "config.toml"
HISTORY = "history.jsonl"
#: Config columns every results table has, after ``id``.
ID_COLUMNS = ("task", "objective", "layers", "train.seed")
SUMMARY_RENAMES = {"shots": "shots_spent", "estimator": "estimator_used", "ansatz": "circuit"}
_REPEATED = ("task", "objective")
#: The value whose progress ``steps_to_99`` measures.
PROGRESS_KEY = "objective"


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def steps_to_fraction(
    history: list[dict[str, Any]], key: str = PROGRESS_KEY, fraction: float = 0.99
) -> int | None:
    """The first step whose progress ``(value − initial) / (final − initial)`` reaches
    ``fraction`` (initial: the first usable record's value, final: the last's); the first step
    when the value did not move; None without usable records (a usable record is a JSON object
    with an integer ``step`` and a finite ``key``)."""
    points = [
        (record["step"], float(record[key]))
        for record in history
        if isinstance(record, dict) and _is_step(record.get("step")) and _is_finite(record.get(key))
    ]
    if not points:
        return None
    initial, final = points[0][1], points[-1][1]
    if final == initial:
        return points[0][0]
    for step, value in points:
        if (value - initial) / (final - initial) >= fraction:
            return step
    return points[-1][0]  # pragma: no cover - the last point has progress 1


def read_history_lenient(
    path: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], str | None]:
    """The records of a ``history.jsonl`` (JSON objects with an integer ``step``) and, when some
    lines are not such records or the file cannot be read, why (else None). Never raises for the
    file's content: a torn or garbage line is counted, not fatal."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict) and _is_step(record.get("step")):
                    records.append(record)
                else:
                    bad.append(number)
    except OSError as error:
        return [], f"cannot be read ({error.strerror or error})"
    if not bad:
        return records, None
    lines = "line" if len(bad) == 1 else f"{len(bad)} lines, the first"
    return records, f"{lines} {bad[0]} is not a JSON record with an integer step"


@dataclass
class RunRecord:
    """One complete run of a sweep: its directory, config, summary and history (the readable
    records of ``history.jsonl``; ``history_problem`` says why it is unusable, else None)."""

    id: str
    run_dir: Path
    config: RunConfig
    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    history_problem: str | None = None

    @cached_property
    def steps_to_99(self) -> int | None:
        """First step reaching 99 % of the objective's total progress (see
        :func:`steps_to_fraction`); None when the history is unusable."""
        if self.history_problem is not None:
            return None
        return steps_to_fraction(self.history)


@dataclass(frozen=True)
class SkippedRun:
    """A complete-looking run that could not be read: its ``id``, the ``file`` at fault (relative
    to the sweep directory) and ``reason``."""

    id: str
    file: str
    reason: str


@dataclass
class RunScan:
    """What :func:`scan_runs` found under a sweep directory.

    ``states``: every run directory → ``complete``, ``failed`` or ``incomplete``;
    ``records``: the runs used, in row order (one row of ``results.csv`` each);
    ``skipped``: complete runs of the scope that could not be read;
    ``other_sweep``: run directories that are not points of ``sweep.toml`` (in ``records`` only
    with ``all_runs``); ``not_started``: points of ``sweep.toml`` without a run directory;
    ``sweep_file_problem``: why ``sweep.toml`` could not name the current points (then every
    run directory is in scope), else None.
    """

    sweep_dir: Path
    states: dict[str, str]
    records: list[RunRecord]
    skipped: list[SkippedRun]
    other_sweep: list[str]
    all_runs: bool
    not_started: list[str]
    sweep_file_problem: str | None

    @property
    def scope(self) -> dict[str, str]:
        """The states of the run directories the results consider."""
        if self.all_runs:
            return dict(self.states)
        other = set(self.other_sweep)
        return {run_id: s for run_id, s in self.states.items() if run_id not in other}

    def warnings(self, root: str | os.PathLike[str] | None = None) -> list[str]:
        """One line per problem, files named under ``root`` (default: the sweep directory)."""
        base = Path(self.sweep_dir if root is None else root)
        lines = []
        if self.sweep_file_problem is not None:
            lines.append(
                "cannot tell which run directories belong to the current sweep file "
                f"({self.sweep_file_problem}); using all {len(self.states)} of them"
            )
        if self.other_sweep:
            n = len(self.other_sweep)
            what = (
                "included because of all_runs (qhn report --all-runs)"
                if self.all_runs
                else "excluded from results.csv and the report (qhn report --all-runs includes "
                + ("it" if n == 1 else "them")
                + ")"
            )
            are = "run directory is not a point" if n == 1 else "run directories are not points"
            lines.append(
                f"{n} {are} of the current sweep file {base / SWEEP_FILE} (another sweep file "
                f"ran into this directory); {what}: {', '.join(self.other_sweep)}"
            )
        for skipped in self.skipped:
            lines.append(f"skipped run {skipped.id}: {base / skipped.file} {skipped.reason}")
        for record in self.records:
            if record.history_problem is not None:
                file = base / RUNS / record.id / HISTORY
                lines.append(
                    f"run {record.id}: {file}: {record.history_problem}; its results are used, "
                    "its steps_to_99 and training curves are not"
                )
        return lines


def run_states(sweep_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The state of every run directory under ``sweep_dir/runs``: ``complete`` (a summary),
    ``failed`` (an ``error.txt`` and no summary) or ``incomplete``."""
    runs = Path(sweep_dir) / RUNS
    states = {}
    if not runs.is_dir():
        return states
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if (run_dir / SUMMARY).exists():
            states[run_dir.name] = "complete"
        elif (run_dir / "error.txt").exists():
            states[run_dir.name] = "failed"
        else:
            states[run_dir.name] = "incomplete"
    return states


def _current_points(sweep_dir: Path) -> tuple[list[str] | None, str | None]:
    """The point ids of ``sweep_dir/sweep.toml``, or None and why."""
    from qhn.experiments.sweep import expand, loads_sweep

    path = sweep_dir / SWEEP_FILE
    try:
        text = path.read_text(encoding="utf-8")
        points = expand(loads_sweep(text, source=SWEEP_FILE), check_task=False)
    except FileNotFoundError:
        return None, f"{SWEEP_FILE} is missing"
    except OSError as error:
        return None, f"{SWEEP_FILE} cannot be read: {error.strerror or error}"
    except (QHNError, ValueError) as error:
        return None, str(error)
    for point in points:
        data = point.config.task_options.get("path")
        if isinstance(data, str) and not Path(data).is_file():
            # the ids of a file task hash the file's bytes: without it they cannot be known
            return None, f"{SWEEP_FILE} reads {data}, which is not found from here"
    return [point.id for point in points], None


def _read_run(run_dir: Path) -> RunRecord | tuple[str, str]:
    """The run in ``run_dir``, or the file at fault (name within the directory) and why."""
    try:
        text = (run_dir / SUMMARY).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return SUMMARY, f"cannot be read ({getattr(error, 'strerror', None) or error})"
    if not text.strip():
        return SUMMARY, "is empty"
    try:
        summary = json.loads(text)
    except ValueError as error:
        return SUMMARY, f"is not valid JSON ({error})"
    if not isinstance(summary, dict):
        return SUMMARY, f"is not a JSON object (it holds a {type(summary).__name__})"
    try:
        config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
    except FileNotFoundError:
        return CONFIG, "is missing"
    except (OSError, UnicodeDecodeError) as error:
        return CONFIG, f"cannot be read ({getattr(error, 'strerror', None) or error})"
    try:
        config = loads_config(config_text, source=CONFIG, check_task=False)
    except QHNError as error:
        return CONFIG, f"is not a valid run config ({error})"
    history: list[dict[str, Any]] = []
    problem = None
    if (run_dir / HISTORY).exists():
        history, problem = read_history_lenient(run_dir / HISTORY)
    return RunRecord(run_dir.name, run_dir, config, summary, history, problem)


def scan_runs(sweep_dir: str | os.PathLike[str], *, all_runs: bool = False) -> RunScan:
    """Which run directories under ``sweep_dir`` the results use, and why the others are left
    out (see the module docstring). Warnings are logged and kept in the returned scan."""
    sweep_dir = Path(sweep_dir)
    states = run_states(sweep_dir)
    current, problem = _current_points(sweep_dir)
    other = [] if current is None else [r for r in states if r not in set(current)]
    not_started = [] if current is None else [r for r in current if r not in states]
    scan = RunScan(sweep_dir, states, [], [], other, all_runs, not_started, problem)
    for run_id, state in scan.scope.items():
        if state != "complete":
            continue
        read = _read_run(sweep_dir / RUNS / run_id)
        if isinstance(read, RunRecord):
            scan.records.append(read)
        else:
            scan.skipped.append(SkippedRun(run_id, f"{RUNS}/{run_id}/{read[0]}", read[1]))
    varying = varying_fields([r.config for r in scan.records])
    scan.records.sort(key=lambda r: _sort_key(r, varying))
    for line in scan.warnings():
        logger.warning("%s", line)
    return scan


def load_runs(sweep_dir: str | os.PathLike[str], *, all_runs: bool = False) -> list[RunRecord]:
    """The runs :func:`scan_runs` uses, in the order of :func:`collect`'s rows."""
    return scan_runs(sweep_dir, all_runs=all_runs).records


def flatten_config(config: RunConfig) -> dict[str, Any]:
    """The config as ``dotted.name → value`` (``task_options.<k>``, ``noise.<k>``,
    ``train.<k>``); arrays as lists."""
    out: dict[str, Any] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict) and value:
                walk(f"{prefix}{key}.", value)
            else:
                out[f"{prefix}{key}"] = value

    data = config.to_dict()
    for key, value in data.items():
        if key in ("task_options", "noise", "train", "baseline"):
            walk(f"{key}.", value)
        else:
            out[key] = value
    return out


def varying_fields(configs: list[RunConfig]) -> list[str]:
    """Flattened config fields with more than one value across ``configs`` (a task option set
    in some configs and not others varies), in field order."""
    flats = [flatten_config(c) for c in configs]
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    varying = []
    for key in keys:
        seen = {json.dumps(flat.get(key, "<unset>"), sort_keys=True) for flat in flats}
        if len(seen) > 1:
            varying.append(key)
    return varying


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))


def _sort_key(record: RunRecord, varying: list[str]) -> tuple[Any, ...]:
    flat = flatten_config(record.config)
    objective = OBJECTIVES.index(record.config.objective)
    seeds = ("data_seed", "train.seed")
    rest = [_sortable(flat.get(k)) for k in varying if k not in (*ID_COLUMNS, *seeds)]
    return (
        record.config.task,
        objective,
        record.config.layers,
        *rest,
        record.config.data_seed,
        record.config.train.seed,
        record.id,
    )


@dataclass
class ResultsTable:
    """The rows of ``results.csv`` (column → value) and its columns, in order; ``records``: the
    runs behind the rows, one each, in the same order; ``scan``: what :func:`scan_runs` found."""

    columns: list[str]
    rows: list[dict[str, Any]]
    path: Path | None = None
    records: list[RunRecord] = field(default_factory=list)
    scan: RunScan | None = None

    def to_csv(self) -> str:
        """The table as CSV text (arrays as TOML literals, None as an empty cell)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({key: _cell(row.get(key)) for key in self.columns})
        return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return toml_value(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def write_named(
    path: str | os.PathLike[str], write: Callable[..., None], *args: Any, **kwargs: Any
) -> None:
    """``write(path, *args, **kwargs)`` (an atomic writer of :mod:`qhn.io`), an ``OSError``
    raised again naming ``path`` itself rather than the temporary file beside it."""
    try:
        write(path, *args, **kwargs)
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), str(path)) from None


def collect(
    sweep_dir: str | os.PathLike[str], *, write: bool = True, all_runs: bool = False
) -> ResultsTable:
    """One row per run :func:`scan_runs` uses (see the module docstring); with ``write``,
    ``sweep_dir/results.csv`` is replaced atomically (an ``OSError`` names it)."""
    scan = scan_runs(sweep_dir, all_runs=all_runs)
    records = scan.records
    varying = varying_fields([r.config for r in records])
    config_columns = list(ID_COLUMNS) + [k for k in varying if k not in ID_COLUMNS]
    summary_columns: dict[str, None] = {}
    rows = []
    for record in records:
        flat = flatten_config(record.config)
        row: dict[str, Any] = {"id": record.id}
        row.update({key: flat.get(key) for key in config_columns})
        for key, value in record.summary.items():
            if key in _REPEATED or not _is_scalar(value):
                continue
            name = SUMMARY_RENAMES.get(key, key)
            if name in config_columns or name == "id":
                name = f"summary.{name}"
            summary_columns.setdefault(name)
            row[name] = value
        row["steps_to_99"] = record.steps_to_99
        rows.append(row)
    columns = ["id", *config_columns, *summary_columns, "steps_to_99"]
    table = ResultsTable(columns, rows, records=records, scan=scan)
    if write:
        path = Path(sweep_dir) / RESULTS
        write_named(path, atomic_write_text, table.to_csv())
        table.path = path
    return table
