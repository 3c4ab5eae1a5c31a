"""Results of a sweep: read the run directories, write ``results.csv``.

Only complete runs count: a run directory with a ``summary.json`` (written atomically, last, by
the runner) and its ``config.toml``. :func:`collect` writes one row per such run: ``id``, the
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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from qhn.errors import QHNError
from qhn.experiments.config import OBJECTIVES, RunConfig, _toml_value, load_config
from qhn.io import atomic_write_text

__all__ = [
    "ID_COLUMNS",
    "RESULTS",
    "ResultsTable",
    "RunRecord",
    "collect",
    "flatten_config",
    "load_runs",
    "run_states",
    "steps_to_fraction",
    "varying_fields",
]

logger = logging.getLogger(__name__)

RESULTS = "results.csv"
#: Config columns every results table has, after ``id``.
ID_COLUMNS = ("task", "objective", "layers", "train.seed")
SUMMARY_RENAMES = {"shots": "shots_spent", "estimator": "estimator_used", "ansatz": "circuit"}
_REPEATED = ("task", "objective")
#: The value whose progress ``steps_to_99`` measures.
PROGRESS_KEY = "objective"


def steps_to_fraction(
    history: list[dict[str, Any]], key: str = PROGRESS_KEY, fraction: float = 0.99
) -> int | None:
    """The first step whose progress ``(value − initial) / (final − initial)`` reaches
    ``fraction`` (initial: the first record's value, final: the last's); the first step when
    the value did not move; None without usable records."""
    points = [
        (record["step"], float(record[key]))
        for record in history
        if isinstance(record.get(key), (int, float)) and math.isfinite(record[key])
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


@dataclass
class RunRecord:
    """One complete run of a sweep: its directory, config and summary; its history is read on
    first use."""

    id: str
    run_dir: Path
    config: RunConfig
    summary: dict[str, Any]

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        """The records of ``history.jsonl`` (empty when absent)."""
        from qhn.train import read_history

        path = self.run_dir / "history.jsonl"
        return read_history(path) if path.exists() else []

    @cached_property
    def steps_to_99(self) -> int | None:
        """First step reaching 99 % of the objective's total progress (see
        :func:`steps_to_fraction`)."""
        return steps_to_fraction(self.history)


def run_states(sweep_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The state of every run directory under ``sweep_dir/runs``: ``complete`` (a summary),
    ``failed`` (an ``error.txt`` and no summary) or ``incomplete``."""
    runs = Path(sweep_dir) / "runs"
    states = {}
    if not runs.is_dir():
        return states
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if (run_dir / "summary.json").exists():
            states[run_dir.name] = "complete"
        elif (run_dir / "error.txt").exists():
            states[run_dir.name] = "failed"
        else:
            states[run_dir.name] = "incomplete"
    return states


def load_runs(sweep_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Every complete run under ``sweep_dir/runs`` (unreadable ones are logged and skipped),
    in the order of :func:`collect`'s rows."""
    runs = Path(sweep_dir) / "runs"
    records = []
    for run_id, state in run_states(sweep_dir).items():
        if state != "complete":
            continue
        run_dir = runs / run_id
        try:
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            config = load_config(run_dir / "config.toml", check_task=False)
        except (OSError, ValueError, QHNError) as error:
            logger.warning("skipping run %s: %s", run_dir, error)
            continue
        records.append(RunRecord(run_id, run_dir, config, summary))
    varying = varying_fields([r.config for r in records])
    records.sort(key=lambda r: _sort_key(r, varying))
    return records


def flatten_config(config: RunConfig) -> dict[str, Any]:
    """The config as ``dotted.name → value`` (``task_options.<k>``, ``train.<k>``); arrays as
    lists."""
    out: dict[str, Any] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict) and value:
                walk(f"{prefix}{key}.", value)
            else:
                out[f"{prefix}{key}"] = value

    data = config.to_dict()
    for key, value in data.items():
        if key in ("task_options", "train"):
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
    """The rows of ``results.csv`` (column → value) and its columns, in order."""

    columns: list[str]
    rows: list[dict[str, Any]]
    path: Path | None = None
    records: list[RunRecord] = field(default_factory=list)

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
        return _toml_value(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def collect(sweep_dir: str | os.PathLike[str], *, write: bool = True) -> ResultsTable:
    """One row per complete run under ``sweep_dir`` (see the module docstring); with ``write``,
    ``sweep_dir/results.csv`` is replaced atomically."""
    records = load_runs(sweep_dir)
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
    table = ResultsTable(columns, rows, records=records)
    if write:
        path = Path(sweep_dir) / RESULTS
        atomic_write_text(path, table.to_csv())
        table.path = path
    return table
