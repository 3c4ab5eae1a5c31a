"""The report of a sweep: ``report.md`` with tables, a generated conclusion and figures.

:func:`write_report` reads the run directories only (through :mod:`qhn.experiments.results`),
rewrites ``results.csv`` and writes ``report.md`` and ``figures/*.png``.

How runs are grouped. Every config field that varies across the runs plays one role:

- **task**: the task name with any varying task option (``teacher (n_train=50)``);
- **arm**: the objective with its own varying parameters (``beta`` for ELBO; ``lam``, the kernel
  and ``analytic_prior`` for SELBO; ``prior_p`` for both);
- **layers**;
- **replicate**: ``data_seed`` and ``train.seed`` — what means and intervals are taken over;
- **settings**: everything else that varies (``shots``, ``backend``, ``lr``, …).

Tables give, per task × arm × layers × settings, the mean ± half-width of the 95 % t-interval
over replicates of the test accuracy (mode and BMA), ``E_q[C]`` on the training data, the mass
on the optimal set and the steps to 99 % of the objective's final progress. Paired comparisons
take the difference ``B − A`` of two arms over matching replicates (same task, layers, settings
and seeds): the mean difference with its t-interval and the two-sided Wilcoxon signed-rank
p-value, per layer count and pooled over layers. Entanglement compares each ``layers ≥ 1`` with
``layers = 0`` (the product state) the same way, per arm.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qhn.errors import QHNError
from qhn.experiments.config import OBJECTIVES
from qhn.experiments.results import (
    ResultsTable,
    RunRecord,
    collect,
    flatten_config,
    run_states,
    varying_fields,
)
from qhn.experiments.stats import Interval, WilcoxonResult, t_interval, wilcoxon_signed_rank
from qhn.io import atomic_write_png, atomic_write_text

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
FIGURES = "figures"
LEVEL = 0.95


@dataclass(frozen=True)
class Metric:
    """A per-run number of the report: summary key (or ``steps_to_99``), label, direction."""

    key: str
    label: str
    higher_is_better: bool


ACC_BMA = Metric("acc_bma_test", "test accuracy (BMA)", True)
ACC_MODE = Metric("acc_mode_test", "test accuracy (mode)", True)
EXPECTED_COST = Metric("expected_cost", "E_q[C] (train)", False)
MASS = Metric("mass_optimal", "mass on the optimal set", True)
STEPS = Metric("steps_to_99", "steps to 99 %", False)

TABLE_METRICS = (ACC_BMA, ACC_MODE, EXPECTED_COST, MASS, STEPS)
PAIRED_METRICS = (ACC_BMA, ACC_MODE, EXPECTED_COST, MASS)
CONCLUSION_METRICS = (ACC_BMA, EXPECTED_COST, MASS)

#: The config fields that only matter to some objectives (part of the arm, not the settings).
OBJECTIVE_PARAMETERS = {
    "mle": (),
    "elbo": ("beta", "prior_p"),
    "selbo": ("lam", "prior_p", "kernel_bandwidths", "analytic_prior"),
}
_ALL_OBJECTIVE_PARAMETERS = ("beta", "lam", "prior_p", "kernel_bandwidths", "analytic_prior")
_NAMES = {"mle": "MLE", "elbo": "ELBO", "selbo": "SELBO"}
_REPLICATE = ("data_seed", "train.seed")


# --- grouping ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """One run with its role labels (see the module docstring) and its metric values."""

    record: RunRecord
    task: str
    arm: str
    arm_order: tuple[Any, ...]
    layers: int
    settings: str
    replicate: tuple[Any, ...]
    values: dict[str, float | None]


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _varying(records: list[RunRecord]) -> list[str]:
    return varying_fields([r.config for r in records])


def _by(records: Iterable[RunRecord], key: Callable[[RunRecord], Any]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def _entries(records: list[RunRecord]) -> list[Entry]:
    """Label each run with its roles. A field counts as varying only where it varies among
    runs of the same task (so a temperature set per task is not a "setting")."""
    labels: dict[str, str] = {}
    for name, group in _by(records, lambda r: r.config.task).items():
        keys = [k for k in _varying(group) if k.startswith("task_options.")]
        for record in group:
            flat = flatten_config(record.config)
            options = [f"{k.removeprefix('task_options.')}={_text(flat.get(k))}" for k in keys]
            labels[record.id] = name + (f" ({', '.join(options)})" if options else "")
    entries = []
    for task, group in _by(records, lambda r: labels[r.id]).items():
        roles = ("task", "objective", "layers", *_REPLICATE, *_ALL_OBJECTIVE_PARAMETERS)
        settings_keys = [
            k for k in _varying(group) if k not in roles and not k.startswith("task_options.")
        ]
        for objective, runs in _by(group, lambda r: r.config.objective).items():
            varying = _varying(runs)
            parameters = [k for k in OBJECTIVE_PARAMETERS[objective] if k in varying]
            for record in runs:
                flat = flatten_config(record.config)
                arm = _NAMES[objective]
                if parameters:
                    arm += f" ({', '.join(f'{k}={_text(flat[k])}' for k in parameters)})"
                arm_order = (
                    OBJECTIVES.index(objective),
                    *(_sort_value(flat[k]) for k in parameters),
                )
                settings = ", ".join(f"{k}={_text(flat.get(k))}" for k in settings_keys)
                values = {m.key: _number(record.summary.get(m.key)) for m in TABLE_METRICS}
                values[STEPS.key] = _number(record.steps_to_99)
                entries.append(
                    Entry(
                        record,
                        task,
                        arm,
                        arm_order,
                        record.config.layers,
                        settings,
                        (record.config.data_seed, record.config.train.seed),
                        values,
                    )
                )
    order = {record.id: i for i, record in enumerate(records)}
    entries.sort(key=lambda e: order[e.record.id])
    return entries


def _sort_value(value: Any) -> tuple[int, Any]:
    number = _number(value)
    return (0, number) if number is not None else (1, json.dumps(value, sort_keys=True))


def _group(entries: Iterable[Entry], key: Callable[[Entry], Any]) -> dict[Any, list[Entry]]:
    groups: dict[Any, list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[key(entry)].append(entry)
    return dict(groups)


def _arms(entries: Iterable[Entry]) -> list[str]:
    order = {}
    for entry in entries:
        order.setdefault(entry.arm, entry.arm_order)
    return sorted(order, key=order.__getitem__)


def _by_replicate(entries: Iterable[Entry]) -> dict[tuple[Any, ...], Entry]:
    out: dict[tuple[Any, ...], Entry] = {}
    for entry in entries:
        if entry.replicate in out:
            logger.info(
                "runs %s and %s differ only in fields their objective ignores; using the first",
                out[entry.replicate].record.id,
                entry.record.id,
            )
            continue
        out[entry.replicate] = entry
    return out


# --- comparisons ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """``B − A`` on ``metric`` over matched pairs: its mean and t-interval, and the Wilcoxon
    test; ``layers``: the layer counts pooled."""

    task: str
    settings: str
    a: str
    b: str
    layers: tuple[int, ...]
    metric: Metric
    interval: Interval
    wilcoxon: WilcoxonResult

    @property
    def n(self) -> int:
        """Number of matched pairs."""
        return self.interval.n

    def better(self) -> int:
        """+1 when B is significantly better than A, −1 when worse, 0 otherwise."""
        sign = self.interval.sign()
        return sign if self.metric.higher_is_better else -sign


def _pairs(pairs: Iterable[tuple[Entry, Entry]], metric: Metric) -> list[float]:
    diffs = []
    for a, b in pairs:
        va, vb = a.values.get(metric.key), b.values.get(metric.key)
        if va is not None and vb is not None:
            diffs.append(vb - va)
    return diffs


def _compare(
    pairs: list[tuple[Entry, Entry]],
    metric: Metric,
    *,
    task: str,
    settings: str,
    a: str,
    b: str,
    layers: tuple[int, ...],
) -> Comparison:
    diffs = _pairs(pairs, metric)
    return Comparison(
        task, settings, a, b, layers, metric, t_interval(diffs, LEVEL), wilcoxon_signed_rank(diffs)
    )


def _matched(a: list[Entry], b: list[Entry]) -> list[tuple[Entry, Entry]]:
    left = _by_replicate(a)
    return [(left[r], e) for r, e in _by_replicate(b).items() if r in left]


def objective_comparisons(
    entries: list[Entry], metrics: Sequence[Metric] = PAIRED_METRICS
) -> list[Comparison]:
    """Every pair of arms within each task × settings: per layer count, then pooled."""
    out = []
    for (task, settings), group in _group(entries, lambda e: (e.task, e.settings)).items():
        arms = _arms(group)
        by_arm_layers = _group(group, lambda e: (e.arm, e.layers))
        layers_all = sorted({e.layers for e in group})
        for i, a in enumerate(arms):
            for b in arms[i + 1 :]:
                per_layer = {
                    layers: _matched(
                        by_arm_layers.get((a, layers), []), by_arm_layers.get((b, layers), [])
                    )
                    for layers in layers_all
                }
                per_layer = {k: v for k, v in per_layer.items() if v}
                if not per_layer:
                    continue
                pooled = [pair for pairs in per_layer.values() for pair in pairs]
                for metric in metrics:
                    for layers, pairs in per_layer.items():
                        out.append(
                            _compare(
                                pairs,
                                metric,
                                task=task,
                                settings=settings,
                                a=a,
                                b=b,
                                layers=(layers,),
                            )
                        )
                    if len(per_layer) > 1:
                        out.append(
                            _compare(
                                pooled,
                                metric,
                                task=task,
                                settings=settings,
                                a=a,
                                b=b,
                                layers=tuple(per_layer),
                            )
                        )
    return out


def entanglement_comparisons(
    entries: list[Entry], metrics: Sequence[Metric] = CONCLUSION_METRICS
) -> list[Comparison]:
    """For each task × arm × settings: every ``layers = L ≥ 1`` against ``layers = 0`` (the
    product state), matched by replicate, then all ``L ≥ 1`` pooled."""
    out = []
    key = lambda e: (e.task, e.settings, e.arm)  # noqa: E731
    for (task, settings, arm), group in _group(entries, key).items():
        by_layers = _group(group, lambda e: e.layers)
        if 0 not in by_layers:
            continue
        per_layer = {
            layers: _matched(by_layers[0], by_layers[layers])
            for layers in sorted(by_layers)
            if layers > 0
        }
        per_layer = {k: v for k, v in per_layer.items() if v}
        if not per_layer:
            continue
        pooled = [pair for pairs in per_layer.values() for pair in pairs]
        for metric in metrics:
            for layers, pairs in per_layer.items():
                out.append(
                    _compare(
                        pairs,
                        metric,
                        task=task,
                        settings=settings,
                        a=f"{arm} L0",
                        b=f"{arm} L{layers}",
                        layers=(layers,),
                    )
                )
            if len(per_layer) > 1:
                out.append(
                    _compare(
                        pooled,
                        metric,
                        task=task,
                        settings=settings,
                        a=f"{arm} L0",
                        b=f"{arm} L≥1",
                        layers=tuple(per_layer),
                    )
                )
    return out


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
    """What :func:`write_report` wrote: ``report.md``'s path and text, the figures and the
    results table."""

    path: Path
    text: str
    figures: list[Path] = field(default_factory=list)
    results: ResultsTable | None = None


def write_report(sweep_dir: str | os.PathLike[str], *, figures: bool = True) -> Report:
    """Rebuild ``results.csv``, ``report.md`` and (with ``figures``) ``figures/*.png`` of the
    sweep in ``sweep_dir`` from its run directories alone."""
    sweep_dir = Path(sweep_dir)
    table = collect(sweep_dir)
    records = table.records
    entries = _entries(records)
    states = run_states(sweep_dir)
    paired = objective_comparisons(entries)
    entangled = entanglement_comparisons(entries)

    written: list[tuple[str, Path]] = []
    if figures and entries:
        written = _write_figures(sweep_dir, entries)

    lines = [f"# Sweep report: {sweep_dir.name}", ""]
    counts = defaultdict(int)
    for state in states.values():
        counts[state] += 1
    lines.append(
        f"{counts['complete']} complete runs, {counts['failed']} failed, "
        f"{counts['incomplete']} incomplete. Built from the run directories by `qhn report`; "
        "every number below is in `results.csv`."
    )
    lines.append("")
    lines += _conclusion(entries, paired, entangled)
    lines += _reference_section(sweep_dir, records)
    lines += _results_section(entries)
    lines += _paired_section(paired)
    lines += _entanglement_section(entangled)
    lines += _figures_section(written)
    lines += _runs_section(sweep_dir, states)
    text = "\n".join(lines).rstrip() + "\n"
    path = sweep_dir / REPORT
    atomic_write_text(path, text)
    return Report(path, text, [p for _, p in written], table)


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


def _runs_section(sweep_dir: Path, states: dict[str, str]) -> list[str]:
    failed = [run_id for run_id, state in states.items() if state == "failed"]
    incomplete = [run_id for run_id, state in states.items() if state == "incomplete"]
    if not failed and not incomplete:
        return []
    lines = ["## Runs without results", ""]
    for run_id in failed:
        try:
            text = (sweep_dir / "runs" / run_id / "error.txt").read_text(encoding="utf-8")
            last = text.strip().splitlines()[-1] if text.strip() else "(empty error.txt)"
        except OSError:
            last = "(error.txt unreadable)"
        lines.append(f"- `{run_id}` failed: {last}")
    for run_id in incomplete:
        lines.append(f"- `{run_id}` incomplete (rerun the sweep to finish it)")
    return [*lines, ""]


# --- figures ----------------------------------------------------------------------------------


def _series_label(entry: Entry) -> str:
    return f"{entry.arm} · {entry.settings}" if entry.settings else entry.arm


def _estimates(entries: list[Entry], metric: Metric) -> dict[str, dict[str, list[Any]]]:
    from qhn.plots.report import Estimate

    panels: dict[str, dict[str, list[Any]]] = {}
    for task, group in _group(entries, lambda e: e.task).items():
        series: dict[str, list[Any]] = {}
        ordered = sorted(group, key=lambda e: (e.arm_order, e.settings))
        for label, cell in _group(ordered, _series_label).items():
            for layers, runs in sorted(_group(cell, lambda e: e.layers).items()):
                interval = t_interval([e.values[metric.key] for e in runs], LEVEL)
                if interval.n:
                    series.setdefault(label, []).append(
                        Estimate(layers, interval.mean, interval.low, interval.high)
                    )
        if series:
            panels[task] = series
    return panels


def _bands(entries: list[Entry], key: str) -> dict[str, dict[str, Any]]:
    import numpy as np

    from qhn.plots.report import Band

    panels: dict[str, dict[str, Any]] = {}
    ordered = sorted(entries, key=lambda e: (e.task, e.layers, e.arm_order, e.settings))
    for (task, layers), group in _group(ordered, lambda e: (e.task, e.layers)).items():
        series = {}
        for label, runs in _group(group, _series_label).items():
            by_step: dict[int, list[float]] = defaultdict(list)
            for entry in runs:
                for record in entry.record.history:
                    value = _number(record.get(key))
                    if value is not None:
                        by_step[int(record["step"])].append(value)
            if not by_step:
                continue
            steps = sorted(by_step)
            quartiles = np.array([np.percentile(by_step[s], [50, 25, 75]) for s in steps])
            series[label] = Band(steps, quartiles[:, 0], quartiles[:, 1], quartiles[:, 2])
        if series:
            panels[f"{task} · layers {layers}"] = series
    return panels


def _shots_points(entries: list[Entry]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    sampled = [e for e in entries if e.record.config.shots is not None]
    ordered = sorted(sampled, key=lambda e: (e.task, e.arm_order, e.layers, e.settings))
    for task, group in _group(ordered, lambda e: e.task).items():
        series: dict[str, list[tuple[float, float]]] = {}
        for entry in group:
            shots = _number(entry.record.summary.get("shots"))
            accuracy = entry.values.get(ACC_BMA.key)
            if shots is not None and accuracy is not None:
                series.setdefault(_series_label(entry), []).append((shots, accuracy))
        if series:
            panels[task] = series
    return panels


def _write_figures(sweep_dir: Path, entries: list[Entry]) -> list[tuple[str, Path]]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - matplotlib is an optional extra
        logger.warning("matplotlib is not installed (pip install 'qhn[plot]'): figures skipped")
        return []
    from qhn.plots.report import curve_bands, metric_vs_layers, scatter_panels, series_colors

    out = sweep_dir / FIGURES
    out.mkdir(exist_ok=True)
    layer_columns = len({e.layers for e in entries})
    ordered = sorted(entries, key=lambda e: (e.arm_order, e.settings))
    colors = series_colors([_series_label(e) for e in ordered])
    plans: list[tuple[str, str, Callable[[], Any]]] = []

    for metric, name in ((ACC_BMA, "accuracy_vs_layers"), (MASS, "mass_optimal_vs_layers")):
        panels = _estimates(entries, metric)
        if panels:
            plans.append(
                (
                    f"{metric.label} against layers, per objective (mean and 95 % CI over seeds)",
                    name,
                    lambda p=panels, m=metric: metric_vs_layers(p, ylabel=m.label, colors=colors),
                )
            )
    for key, label, name in (
        ("expected_cost", "E_q[C] (train)", "curves_expected_cost"),
        ("entropy", "entropy H(q) [nats]", "curves_entropy"),
    ):
        panels = _bands(entries, key)
        if panels:
            plans.append(
                (
                    f"{label} during training: median over seeds, interquartile band",
                    name,
                    lambda p=panels, y=label: curve_bands(
                        p, ylabel=y, ncols=layer_columns, colors=colors
                    ),
                )
            )
    shots = _shots_points(entries)
    if shots:
        plans.append(
            (
                "shots spent against test accuracy (BMA), sample-only runs",
                "shots_vs_accuracy",
                lambda: scatter_panels(shots, xlabel="shots spent (total)", ylabel=ACC_BMA.label),
            )
        )
    written = []
    for caption, name, build in plans:
        path = out / f"{name}.png"
        atomic_write_png(path, build(), dpi=110)
        written.append((caption, path))
    return written
