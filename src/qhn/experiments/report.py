"""The report of a sweep: ``report.md`` with tables, a generated conclusion and figures.

:func:`write_report` reads the run directories only (through :mod:`qhn.experiments.results`),
rewrites ``results.csv`` and writes ``report.md`` and ``figures/*.png``.

Which runs. The report uses exactly the rows of ``results.csv`` (the runs
:func:`~qhn.experiments.results.scan_runs` keeps) and says so in a "Runs used" line under the
title; every run left out is listed with its reason (unreadable, failed, incomplete, or from
another sweep file run into the same directory), and the problems are repeated as warnings at
the top and in :attr:`Report.warnings`.

Runs are grouped into task × arm × layers × settings with seeds as replicates, and compared in
pairs, as :mod:`qhn.experiments.comparisons` describes: one Wilcoxon signed-rank test per
comparison, Holm-adjusted over every comparison of the report, the verdict from the adjusted p,
the Hodges–Lehmann shift with a paired-bootstrap interval. Every comparison is a row of
``comparisons.csv``. ``report.md`` opens with the headline table (the pooled comparisons,
:mod:`qhn.experiments.report_verdicts`), then the conclusion in words with the same verdicts, the
reference networks, a table per task of the mean of each metric over replicates with its
percentile-bootstrap interval (inside the metric's range), the figures, and an appendix with
every comparison per layer count.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qhn.errors import QHNError
from qhn.experiments.baseline_comparisons import baseline_comparisons
from qhn.experiments.bootstrap import bootstrap_interval, mean_rows
from qhn.experiments.comparisons import (
    CONCLUSION_METRICS,
    LEVEL,
    OBJECTIVE_PARAMETERS,
    PAIRED_METRICS,
    TABLE_METRICS,
    Comparison,
    Entry,
    Metric,
    _entries,
    _group,
    _number,
    _text,
    _varying,
    entanglement_comparisons,
    holm_family,
    objective_comparisons,
)
from qhn.experiments.comparisons_csv import COMPARISONS_CSV, write_comparisons_csv
from qhn.experiments.report_figures import FIGURES, write_figures
from qhn.experiments.report_verdicts import (
    appendix_section,
    conclusion_section,
    headline_section,
    table,
)
from qhn.experiments.results import (
    ResultsTable,
    RunRecord,
    RunScan,
    collect,
    flatten_config,
    write_named,
)
from qhn.experiments.stats import Interval
from qhn.io import atomic_write_text

__all__ = [
    "CONCLUSION_METRICS",
    "OBJECTIVE_PARAMETERS",
    "PAIRED_METRICS",
    "TABLE_METRICS",
    "Comparison",
    "Metric",
    "Report",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT = "report.md"


# --- formatting -------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def _mean_ci(interval: Interval) -> str:
    if interval.n == 0:
        return "—"
    if not interval.defined:
        return f"{_fmt(interval.mean)} (n=1)"
    return f"{_fmt(interval.mean)} [{_fmt(interval.low, 3)}, {_fmt(interval.high, 3)}]"


def mean_interval(values: list[float | None], metric: Metric) -> Interval:
    """Mean of a metric over replicates with its percentile-bootstrap interval, inside the
    metric's bounds."""
    return bootstrap_interval(values, mean_rows, level=LEVEL, bounds=metric.bounds)


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`write_report` wrote: ``report.md``'s path and text, the figures, the results
    table (its ``scan`` says which runs were used and why others were not), the warnings, one
    line each, files named under the sweep directory as given, every comparison (Holm-adjusted,
    as in ``comparisons.csv``) and the headline table's Markdown lines."""

    path: Path
    text: str
    figures: list[Path] = field(default_factory=list)
    results: ResultsTable | None = None
    warnings: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)


def write_report(
    sweep_dir: str | os.PathLike[str], *, figures: bool = True, all_runs: bool = False
) -> Report:
    """Rebuild ``results.csv``, ``comparisons.csv``, ``report.md`` and (with ``figures``)
    ``figures/*.png`` of the sweep in ``sweep_dir`` from its run directories alone.

    ``all_runs``: also use run directories that are not points of the current ``sweep.toml``
    (left by another sweep file). Unreadable runs are skipped with a warning; an ``OSError``
    while writing names the file.
    """
    sweep_dir = Path(sweep_dir)
    table = collect(sweep_dir, all_runs=all_runs)
    assert table.scan is not None
    records = table.records
    entries = _entries(records)
    paired = objective_comparisons(entries) + baseline_comparisons(entries)
    family = holm_family([*paired, *entangled_unadjusted(entries)])
    paired, entangled = family[: len(paired)], family[len(paired) :]
    write_comparisons_csv(sweep_dir / COMPARISONS_CSV, family)

    written: list[tuple[str, Path]] = []
    if figures and entries:
        written = write_figures(sweep_dir, entries)

    lines = [f"# Sweep report: {sweep_dir.name}", ""]
    for warning in table.scan.warnings(root=Path()):
        lines += [f"> **Warning:** {warning}", ""]
    lines += [_runs_used(table), ""]
    headline = headline_section(family)
    lines += headline
    lines += conclusion_section(entries, paired, entangled)
    lines += _reference_section(sweep_dir, records)
    lines += _results_section(entries)
    lines += _figures_section(written)
    lines += appendix_section(paired, entangled)
    lines += _runs_section(table.scan)
    text = "\n".join(lines).rstrip() + "\n"
    path = sweep_dir / REPORT
    write_named(path, atomic_write_text, text)
    return Report(
        path, text, [p for _, p in written], table, table.scan.warnings(), family, headline
    )


def entangled_unadjusted(entries: list[Entry]) -> list[Comparison]:
    """The entanglement comparisons on the conclusion metrics (before Holm)."""
    return entanglement_comparisons(entries, CONCLUSION_METRICS)


def _runs_used(table: ResultsTable) -> str:
    """The "Runs used" line: the rows of results.csv and every run directory left out."""
    scan = table.scan
    assert scan is not None
    n = len(table.rows)
    counts: dict[str, int] = defaultdict(int)
    for state in scan.scope.values():
        counts[state] += 1
    used = f"Runs used: {n} complete run{'s' if n != 1 else ''}, the {n} rows of `results.csv`"
    if scan.all_runs and scan.other_sweep:
        other = set(scan.other_sweep)
        m = sum(record.id in other for record in table.records)
        used += f" (including {m} of another sweep file, by `--all-runs`)"
    left = [
        f"{len(scan.skipped)} unreadable",
        f"{counts['failed']} failed",
        f"{counts['incomplete']} incomplete",
    ]
    if scan.other_sweep and not scan.all_runs:
        left.append(f"{len(scan.other_sweep)} of another sweep file")
    line = f"{used}. Left out: {', '.join(left)}"
    listed = any(not text.startswith("0 ") for text in left)
    line += ' (listed under "Runs left out").' if listed else "."
    if scan.not_started:
        line += f" {len(scan.not_started)} points of `sweep.toml` have no run directory yet."
    return (
        line + " Built from the run directories by `qhn report`; every number below is in "
        "`results.csv`."
    )


def _reference_section(sweep_dir: Path, records: list[RunRecord]) -> list[str]:
    rows = []
    seen = set()
    for record in records:
        config = record.config
        key = json.dumps(
            [config.task, config.data_seed, config.task_options, config.temperature],
            sort_keys=True,
        )
        if key in seen:
            continue
        seen.add(key)
        label = config.task + (f" (data seed {config.data_seed})" if config.data_seed else "")
        landscape = _cached_landscape(sweep_dir, record)
        if landscape is not None:
            optimum = landscape.optimum
            note = f"degeneracy {landscape.degeneracy}"
            ranges = landscape.optimum_accuracy_range
            if landscape.degeneracy > 1 and ranges.get("test"):
                low, high = ranges["test"]
                note += f"; test accuracy over the optimal set {low:.4g}–{high:.4g}"
            for name, network, extra in (
                ("optimum (exhaustive search)", optimum, note),
                ("median network", landscape.median, f"index {landscape.median.index}"),
                ("random network", landscape.random, f"index {landscape.random.index}"),
            ):
                rows.append(
                    [
                        label,
                        name,
                        _fmt(network.train_cost, 7),
                        _fmt(network.train_accuracy),
                        _fmt(network.test_accuracy),
                        extra,
                    ]
                )
        elif record.summary.get("optimum_value") is not None:
            degeneracy = record.summary.get("optimum_degeneracy")
            rows.append(
                [
                    label,
                    "optimum (exhaustive search)",
                    _fmt(_number(record.summary["optimum_value"]), 7),
                    "—",
                    "—",
                    f"degeneracy {degeneracy} (landscape cache not found)",
                ]
            )
    if not rows:
        return []
    return [
        "## Reference networks",
        "",
        "From the enumerated landscape of each task (all 2^n networks): the optimum C* of the "
        "training cost, the median network and one random network.",
        "",
        *table(["task", "network", "C (train)", "train accuracy", "test accuracy", "note"], rows),
        "",
    ]


def _cached_landscape(sweep_dir: Path, record: RunRecord) -> Any:
    """The landscape of a run's task from the sweep's cache, or None (never enumerates)."""
    from qhn.data.tasks import get_task
    from qhn.landscape import cache_path, compute_landscape

    config = record.config
    cache_dir = sweep_dir / "landscapes"
    try:
        task = get_task(
            config.task,
            seed=config.data_seed,
            temperature=config.temperature,
            **config.task_options,
        )
        if not cache_path(task, cache_dir).exists():
            return None
        return compute_landscape(task, cache_dir=cache_dir)
    except (QHNError, OSError, ValueError) as error:
        logger.info("no landscape for %s: %s", record.id, error)
        return None


def _results_section(entries: list[Entry]) -> list[str]:
    if not entries:
        return []
    lines = [
        "## Results per configuration",
        "",
        "Mean over seeds [95 % percentile-bootstrap interval, inside the metric's range]; "
        "n = runs. E_q[C] is the expected "
        "training cost under the learned distribution; steps to 99 % is the first step at which "
        "the objective made 99 % of its total progress.",
        "",
    ]
    for task, group in _group(entries, lambda e: e.task).items():
        lines += [f"### {task}", ""]
        with_settings = any(e.settings for e in group)
        header = ["objective", "layers", *(["settings"] if with_settings else []), "n"]
        header += [m.label for m in TABLE_METRICS]
        cells = _group(group, lambda e: (e.arm_order, e.arm, e.layers, e.settings))
        rows = []
        for (_, arm, layers, settings), cell in sorted(cells.items(), key=lambda kv: kv[0]):
            row = [arm, str(layers), *([settings or "—"] if with_settings else []), str(len(cell))]
            for metric in TABLE_METRICS:
                row.append(_mean_ci(mean_interval([e.values[metric.key] for e in cell], metric)))
            rows.append(row)
        lines += [*table(header, rows), ""]
        shared = _shared_settings([e.record for e in group])
        if shared:
            lines += [f"Shared by every run of this task: {shared}.", ""]
    return lines


#: Settings listed under each task's table when every run of the task shares them.
SHARED_KEYS = (
    "data_seed",
    "temperature",
    "beta",
    "lam",
    "prior_p",
    "ansatz",
    "entangler",
    "topology",
    "init",
    "backend",
    "shots",
    "train.optimizer",
    "train.lr",
    "train.steps",
    "train.schedule",
)


def _shared_settings(records: list[RunRecord]) -> str:
    varying = set(_varying(records))
    flat = flatten_config(records[0].config)
    return ", ".join(
        f"`{k}={_text(flat.get(k))}`" for k in SHARED_KEYS if k in flat and k not in varying
    )


def _figures_section(written: list[tuple[str, Path]]) -> list[str]:
    if not written:
        return []
    lines = ["## Figures", ""]
    for caption, path in written:
        lines += [f"![{path.stem}]({FIGURES}/{path.name})", "", f"_{caption}_", ""]
    return lines


def _runs_section(scan: RunScan) -> list[str]:
    scope = scan.scope
    failed = [run_id for run_id, state in scope.items() if state == "failed"]
    incomplete = [run_id for run_id, state in scope.items() if state == "incomplete"]
    other = [] if scan.all_runs else scan.other_sweep
    if not (scan.skipped or failed or incomplete or other):
        return []
    lines = ["## Runs left out", ""]
    for skipped in scan.skipped:
        lines.append(f"- `{skipped.id}` unreadable: `{skipped.file}` {skipped.reason}")
    for run_id in failed:
        try:
            text = (scan.sweep_dir / "runs" / run_id / "error.txt").read_text(
                encoding="utf-8", errors="replace"
            )
            last = text.strip().splitlines()[-1] if text.strip() else "(empty error.txt)"
        except OSError:
            last = "(error.txt unreadable)"
        lines.append(f"- `{run_id}` failed: {last}")
    for run_id in incomplete:
        lines.append(f"- `{run_id}` incomplete (rerun the sweep to finish it)")
    for run_id in other:
        lines.append(
            f"- `{run_id}` ({scan.states[run_id]}) is not a point of the current `sweep.toml`"
        )
    return [*lines, ""]
