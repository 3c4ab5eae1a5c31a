"""The report of a sweep: ``report.md`` with tables, a generated conclusion and figures.

:func:`write_report` reads the run directories only (through :mod:`qhn.experiments.results`),
rewrites ``results.csv`` and writes ``report.md`` and ``figures/*.png``.

Which runs. The report uses exactly the rows of ``results.csv`` (the runs
:func:`~qhn.experiments.results.scan_runs` keeps) and says so in a "Runs used" line under the
title; every run left out is listed with its reason (unreadable, failed, incomplete, or from
another sweep file run into the same directory), and the problems are repeated as warnings at
the top and in :attr:`Report.warnings`.

Runs are grouped into task × arm × layers × settings with seeds as replicates, and compared in
pairs, as :mod:`qhn.experiments.comparisons` describes. Tables give, per group, the mean ±
half-width of the 95 % t-interval over replicates of the test accuracy (mode and BMA),
``E_q[C]`` on the training data, the mass on the optimal set and the steps to 99 % of the
objective's final progress; then the paired differences between objectives and against the
product state (layers 0).

The conclusion at the top is generated from the pooled comparisons: an arm "beats" another on a
metric only where the interval of the difference excludes 0 in the better direction; otherwise
it reads "no significant difference". Intervals are per comparison (no multiplicity
correction), which the report says.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qhn.errors import QHNError
from qhn.experiments.comparisons import (
    CONCLUSION_METRICS,
    LEVEL,
    OBJECTIVE_PARAMETERS,
    PAIRED_METRICS,
    TABLE_METRICS,
    Comparison,
    Entry,
    Metric,
    _arms,
    _entries,
    _group,
    _number,
    _text,
    _varying,
    entanglement_comparisons,
    objective_comparisons,
)
from qhn.experiments.report_figures import FIGURES, write_figures
from qhn.experiments.results import (
    ResultsTable,
    RunRecord,
    RunScan,
    collect,
    flatten_config,
    write_named,
)
from qhn.experiments.stats import Interval, WilcoxonResult, t_interval
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
    return f"{_fmt(interval.mean)} ± {_fmt(interval.half_width, 2)}"


def _diff_ci(interval: Interval) -> str:
    if interval.n == 0:
        return "—"
    if not interval.defined:
        return f"{interval.mean:+.3g} (n=1, no interval)"
    return f"{interval.mean:+.3g} [{interval.low:+.3g}, {interval.high:+.3g}]"


def _p(result: WilcoxonResult) -> str:
    if result.n == 0:
        return "— (all pairs equal)"
    return f"{result.p_value:.3g}"


def _layers_text(layers: tuple[int, ...]) -> str:
    return ", ".join(str(layers) for layers in layers)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _verdict(comparison: Comparison, a_name: str, b_name: str) -> str:
    """One clause: who is better on the metric, by how much, with the interval and p."""
    interval, metric = comparison.interval, comparison.metric
    if interval.n == 0:
        return f"{metric.label}: not measured here (e.g. a task without test data)"
    if interval.n < 2:
        return f"{metric.label}: too few matched pairs for an interval (n = {interval.n})"
    if comparison.wilcoxon.n == 0:
        evidence = f"{_diff_ci(interval)}, every pair equal"
    else:
        evidence = f"{_diff_ci(interval)}, Wilcoxon p = {_p(comparison.wilcoxon)}"
    better = comparison.better()
    if better == 0:
        return f"{metric.label}: no significant difference ({evidence})"
    winner, loser = (b_name, a_name) if better > 0 else (a_name, b_name)
    return (
        f"{metric.label}: **{winner} better** than {loser} by {abs(interval.mean):.3g} ({evidence})"
    )


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`write_report` wrote: ``report.md``'s path and text, the figures, the results
    table (its ``scan`` says which runs were used and why others were not) and the warnings, one
    line each, files named under the sweep directory as given."""

    path: Path
    text: str
    figures: list[Path] = field(default_factory=list)
    results: ResultsTable | None = None
    warnings: list[str] = field(default_factory=list)


def write_report(
    sweep_dir: str | os.PathLike[str], *, figures: bool = True, all_runs: bool = False
) -> Report:
    """Rebuild ``results.csv``, ``report.md`` and (with ``figures``) ``figures/*.png`` of the
    sweep in ``sweep_dir`` from its run directories alone.

    ``all_runs``: also use run directories that are not points of the current ``sweep.toml``
    (left by another sweep file). Unreadable runs are skipped with a warning; an ``OSError``
    while writing names the file.
    """
    sweep_dir = Path(sweep_dir)
    table = collect(sweep_dir, all_runs=all_runs)
    assert table.scan is not None
    records = table.records
    entries = _entries(records)
    paired = objective_comparisons(entries)
    entangled = entanglement_comparisons(entries)

    written: list[tuple[str, Path]] = []
    if figures and entries:
        written = write_figures(sweep_dir, entries)

    lines = [f"# Sweep report: {sweep_dir.name}", ""]
    for warning in table.scan.warnings(root=Path()):
        lines += [f"> **Warning:** {warning}", ""]
    lines += [_runs_used(table), ""]
    lines += _conclusion(entries, paired, entangled)
    lines += _reference_section(sweep_dir, records)
    lines += _results_section(entries)
    lines += _paired_section(paired)
    lines += _entanglement_section(entangled)
    lines += _figures_section(written)
    lines += _runs_section(table.scan)
    text = "\n".join(lines).rstrip() + "\n"
    path = sweep_dir / REPORT
    write_named(path, atomic_write_text, text)
    return Report(path, text, [p for _, p in written], table, table.scan.warnings())


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


def _conclusion(
    entries: list[Entry], paired: list[Comparison], entangled: list[Comparison]
) -> list[str]:
    lines = [
        "## Conclusion",
        "",
        "_Generated from the numbers below. Differences are paired over matching seeds (same "
        "task, layers, settings and seeds) and pooled over layer counts; a difference is "
        "(ELBO or SELBO) − MLE, or (layers L) − (layers 0), on the metric's own scale (higher "
        "accuracy and mass are better, lower E_q[C] is better); intervals are 95 % "
        "t-intervals of the mean difference; a method is called better only where the interval "
        'excludes 0, otherwise "no significant difference". Wilcoxon signed-rank p-values are '
        "two-sided (with fewer than 6 pairs they cannot fall below 0.05). No correction for "
        "multiple comparisons: read isolated wins with care._",
        "",
    ]
    if not entries:
        return [*lines, "No complete runs yet.", ""]
    by_task = _group(entries, lambda e: e.task)
    for task, group in by_task.items():
        lines += [f"### {task}", ""]
        lines += _objective_conclusion(task, group, paired)
        lines += _entanglement_conclusion(task, group, entangled)
        lines.append("")
    return lines


def _pooled(comparisons: Iterable[Comparison]) -> dict[tuple[Any, ...], Comparison]:
    """The widest pooling of each comparison (pooled over all its layers)."""
    out: dict[tuple[Any, ...], Comparison] = {}
    for c in comparisons:
        key = (c.task, c.settings, c.a, c.b, c.metric.key)
        if key not in out or len(c.layers) > len(out[key].layers):
            out[key] = c
    return out


def _objective_conclusion(task: str, group: list[Entry], paired: list[Comparison]) -> list[str]:
    lines = []
    pooled = _pooled(c for c in paired if c.task == task)
    for settings, entries in _group(group, lambda e: e.settings).items():
        arms = _arms(entries)
        mle = {e.arm for e in entries if e.record.config.objective == "mle"}
        baselines = [a for a in arms if a in mle]
        others = [a for a in arms if a not in mle]
        where = f" ({settings})" if settings else ""
        if not baselines or not others:
            present = ", ".join(arms)
            lines.append(f"- Objectives{where}: only {present} ran here; no comparison with MLE.")
            continue
        for base in baselines:
            for other in others:
                found = [
                    pooled.get((task, settings, base, other, m.key)) for m in CONCLUSION_METRICS
                ]
                found = [c for c in found if c is not None]
                if not found:
                    lines.append(f"- **{other} vs {base}**{where}: no matched seeds.")
                    continue
                n = max(c.n for c in found)
                lines.append(
                    f"- **{other} vs {base}**{where}, n = {n} matched runs over layers "
                    f"{_layers_text(found[0].layers)}:"
                )
                wins, losses, ties = [], [], []
                for c in found:
                    lines.append(f"  - {_verdict(c, base, other)}")
                    if c.interval.n < 2:
                        continue  # no evidence either way (e.g. no test data): no verdict
                    bucket = {1: wins, -1: losses, 0: ties}[c.better()]
                    bucket.append(c.metric.label)
                summary = []
                if wins:
                    summary.append(f"{other} beats {base} on {', '.join(wins)}")
                if losses:
                    summary.append(f"{base} beats {other} on {', '.join(losses)}")
                if ties:
                    summary.append(f"no significant difference on {', '.join(ties)}")
                if summary:
                    lines.append(f"  - Verdict: {'; '.join(summary)}.")
    return lines


def _entanglement_conclusion(
    task: str, group: list[Entry], entangled: list[Comparison]
) -> list[str]:
    if not any(e.layers == 0 for e in group):
        return ["- Entanglement: no product-state runs (layers 0) to compare with."]
    if not any(e.layers > 0 for e in group):
        return ["- Entanglement: only product-state runs (layers 0)."]
    pooled = _pooled(c for c in entangled if c.task == task)
    lines = ["- Entanglement (layers ≥ 1 against the product state, layers 0, paired by seed):"]
    for (_, settings, a, b, metric_key), c in pooled.items():
        if metric_key != CONCLUSION_METRICS[0].key:
            continue
        arm = a.removesuffix(" L0")
        where = f" ({settings})" if settings else ""
        clauses = []
        for metric in CONCLUSION_METRICS:
            found = pooled.get((task, settings, a, b, metric.key))
            if found is not None:
                clauses.append(_verdict(found, "layers 0", f"layers {_layers_text(found.layers)}"))
        label = f"layers {_layers_text(c.layers)} vs 0"
        lines.append(f"  - {arm}{where}, {label}, n = {c.n}: " + "; ".join(clauses) + ".")
    if len(lines) == 1:
        lines.append("  - no seeds ran with both layers 0 and layers ≥ 1.")
    return lines


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
        *_table(["task", "network", "C (train)", "train accuracy", "test accuracy", "note"], rows),
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
        "Mean ± half-width of the 95 % t-interval over seeds; n = runs. E_q[C] is the expected "
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
                row.append(_mean_ci(t_interval([e.values[metric.key] for e in cell], LEVEL)))
            rows.append(row)
        lines += [*_table(header, rows), ""]
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


def _comparison_table(comparisons: list[Comparison]) -> list[str]:
    with_settings = any(c.settings for c in comparisons)
    header = ["difference", "layers", *(["settings"] if with_settings else [])]
    header += ["metric", "n", "mean [95 % CI]", "Wilcoxon p"]
    return _table(header, _comparison_rows(comparisons, with_settings))


def _comparison_rows(comparisons: list[Comparison], with_settings: bool) -> list[list[str]]:
    rows = []
    for c in comparisons:
        row = [f"{c.b} − {c.a}", _layers_text(c.layers)]
        if with_settings:
            row.append(c.settings or "—")
        row += [c.metric.label, str(c.n), _diff_ci(c.interval), _p(c.wilcoxon)]
        rows.append(row)
    return rows


def _paired_section(paired: list[Comparison]) -> list[str]:
    if not paired:
        return []
    lines = [
        "## Paired comparisons between objectives",
        "",
        "Difference B − A over runs with the same task, layers, settings and seeds (a row with "
        "several layer counts pools them). Positive means B is larger — better for accuracy and "
        "mass on the optimum, worse for E_q[C].",
        "",
    ]
    for task, group in _group(paired, lambda c: c.task).items():
        lines += [f"### {task}", "", *_comparison_table(group), ""]
    return lines


def _entanglement_section(entangled: list[Comparison]) -> list[str]:
    if not entangled:
        return []
    lines = [
        "## Entanglement against the product state",
        "",
        "Difference (layers L) − (layers 0) per objective over matching seeds.",
        "",
    ]
    for task, group in _group(entangled, lambda c: c.task).items():
        lines += [f"### {task}", "", *_comparison_table(group), ""]
    return lines


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
