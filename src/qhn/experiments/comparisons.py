"""Grouping the runs of a sweep and comparing objectives and layer counts, paired by seed.

How runs are grouped. Every config field that varies across the runs plays one role:

- **task**: the task name with any varying task option (``teacher (n_train=50)``);
- **arm**: the objective with its own varying parameters (``beta`` for ELBO; ``lam``, the kernel
  and ``analytic_prior`` for SELBO; ``prior_p`` for both);
- **layers**;
- **replicate**: ``data_seed`` and ``train.seed`` — what means and intervals are taken over;
- **settings**: everything else that varies (``shots``, ``backend``, ``lr``, …).

One comparison, one test. A comparison takes the differences ``d_i = B_i − A_i`` of two arms
over matching replicates (same task, layers, settings and seeds), per layer count and pooled
over layers; entanglement compares each ``layers ≥ 1`` with ``layers = 0`` (the product state)
the same way, per arm, and pools the layer counts by averaging each seed's differences (the
product-state run is shared). Of the ``d_i`` it reports

- the estimate: the Hodges–Lehmann shift (median of the Walsh averages), with its
  :data:`LEVEL` paired-bootstrap percentile interval, which stays inside the range of a
  difference of the metric, ``[lo − hi, hi − lo]``;
- the two-sided Wilcoxon signed-rank p-value (exact up to 50 non-zero differences), its
  rank-biserial effect size, and the p-value after Holm's adjustment over the *family*: every
  comparison of one report (:func:`holm_family`);
- the verdict (:meth:`Comparison.verdict`) from that adjusted p alone: ``b better`` or
  ``a better`` where ``p̃ < ALPHA`` — the direction is the signed-rank statistic's, and the
  estimate must have the same sign (it can differ only through zero differences, which the
  test drops) — else ``no significant difference``; ``not measured`` where no pair has the
  metric (e.g. test accuracy on a task without test data).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from qhn.experiments.bootstrap import bootstrap_interval, hodges_lehmann_rows
from qhn.experiments.config import OBJECTIVES
from qhn.experiments.results import RunRecord, flatten_config, varying_fields
from qhn.experiments.stats import (
    Interval,
    WilcoxonResult,
    hodges_lehmann,
    holm,
    rank_biserial,
    wilcoxon_signed_rank,
)

__all__ = [
    "ALPHA",
    "CONCLUSION_METRICS",
    "LEVEL",
    "NOISE",
    "OBJECTIVE_PARAMETERS",
    "PAIRED_METRICS",
    "TABLE_METRICS",
    "VERDICTS",
    "Comparison",
    "Entry",
    "Metric",
    "compare_differences",
    "entanglement_comparisons",
    "holm_family",
    "objective_comparisons",
]

logger = logging.getLogger(__name__)

#: Confidence level of every interval.
LEVEL = 0.95
#: Family-wise error rate: a verdict is "better" only where the Holm-adjusted p is below it.
ALPHA = 0.05
#: Differences within this fraction of a bounded metric's range count as zero (float noise).
NOISE = 1e-12
VERDICTS = ("a better", "b better", "no significant difference", "not measured")
_UNBOUNDED = (-math.inf, math.inf)


@dataclass(frozen=True)
class Metric:
    """A per-run number of the report: summary key (or ``steps_to_99``), label, direction and
    the range ``bounds = (lo, hi)`` its values can take."""

    key: str
    label: str
    higher_is_better: bool
    bounds: tuple[float, float] = _UNBOUNDED

    @property
    def difference_bounds(self) -> tuple[float, float]:
        """The range of a difference of two values: ``[lo − hi, hi − lo]``."""
        low, high = self.bounds
        return (low - high, high - low)


ACC_BMA = Metric("acc_bma_test", "test accuracy (BMA)", True, (0.0, 1.0))
ACC_MODE = Metric("acc_mode_test", "test accuracy (mode)", True, (0.0, 1.0))
EXPECTED_COST = Metric("expected_cost", "E_q[C] (train)", False)
MASS = Metric("mass_optimal", "mass on the optimal set", True, (0.0, 1.0))
STEPS = Metric("steps_to_99", "steps to 99 %", False, (0.0, math.inf))

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
    method: str = "qhn"


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
        roles = ("task", "objective", "layers", "method", *_REPLICATE, *_ALL_OBJECTIVE_PARAMETERS)
        settings_keys = [
            k
            for k in _varying(group)
            if k not in roles and not k.startswith(("task_options.", "baseline."))
        ]
        for objective, runs in _by(group, _kind).items():
            varying = _varying(runs)
            parameters = [k for k in _parameters(objective) if k in varying]
            for record in runs:
                flat = flatten_config(record.config)
                arm = _NAMES.get(objective, objective)
                if parameters:
                    arm += f" ({', '.join(f'{k}={_text(flat.get(k))}' for k in parameters)})"
                arm_order = (
                    _kind_order(objective),
                    *(_sort_value(flat.get(k)) for k in parameters),
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
                        record.config.method or "qhn",
                    )
                )
    order = {record.id: i for i, record in enumerate(records)}
    entries.sort(key=lambda e: order[e.record.id])
    return entries


def _kind(record: RunRecord) -> str:
    """The objective of a QHN run, the method of a baseline run."""
    return record.config.method or record.config.objective


def _parameters(kind: str) -> tuple[str, ...]:
    """The fields that belong to an arm: an objective's parameters, a baseline's options."""
    if kind in OBJECTIVE_PARAMETERS:
        return OBJECTIVE_PARAMETERS[kind]
    from qhn.baselines.config import BaselineConfig

    return tuple(f"baseline.{f.name}" for f in fields(BaselineConfig))


def _kind_order(kind: str) -> int:
    if kind in OBJECTIVES:
        return OBJECTIVES.index(kind)
    from qhn.baselines.config import METHODS

    return len(OBJECTIVES) + METHODS.index(kind)


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
    """``B − A`` on ``metric`` over matched pairs (see the module docstring). ``layers``: the
    layer counts pooled; ``pairs``: matched replicates; ``estimate``: the Hodges–Lehmann shift
    (its ``mean`` field) with the bootstrap interval, ``estimate.n`` the pairs where both runs
    have the metric; ``p_adjusted``: Holm over the family (NaN until :func:`holm_family`)."""

    task: str
    settings: str
    a: str
    b: str
    layers: tuple[int, ...]
    metric: Metric
    pairs: int
    estimate: Interval
    wilcoxon: WilcoxonResult
    p_adjusted: float = math.nan

    @property
    def n(self) -> int:
        """Number of matched pairs with the metric measured on both sides."""
        return self.estimate.n

    @property
    def measured(self) -> bool:
        """Whether any pair has the metric."""
        return self.n > 0

    @property
    def effect_size(self) -> float:
        """The rank-biserial correlation of the signed-rank test, in [−1, 1]."""
        return rank_biserial(self.wilcoxon)

    def better(self, alpha: float = ALPHA) -> int:
        """+1 when B is significantly better than A, −1 when A is, 0 otherwise (see
        :meth:`verdict`)."""
        if not self.measured or not self.p_adjusted < alpha:
            return 0
        direction = self.wilcoxon.direction
        shift = self.estimate.mean
        if direction == 0 or not shift * direction > 0:
            return 0
        return direction if self.metric.higher_is_better else -direction

    def verdict(self, alpha: float = ALPHA) -> str:
        """One of :data:`VERDICTS`, from the Holm-adjusted Wilcoxon p."""
        if not self.measured:
            return "not measured"
        return {1: "b better", -1: "a better", 0: "no significant difference"}[self.better(alpha)]

    @property
    def group(self) -> str:
        """The ``group`` column: the layer counts and the settings of the comparison."""
        text = "layers=" + ",".join(str(layers) for layers in self.layers)
        return f"{text}; {self.settings}" if self.settings else text


def compare_differences(
    differences: Sequence[float | None],
    metric: Metric,
    *,
    task: str = "",
    settings: str = "",
    a: str = "A",
    b: str = "B",
    layers: tuple[int, ...] = (),
) -> Comparison:
    """The comparison of the paired differences ``B − A`` (None where a pair lacks the
    metric), not yet adjusted. For a metric with a finite range, a difference within
    :data:`NOISE` of the range is float noise and counts as zero (a tie, which the signed-rank
    test drops): probabilities of a normalized float64 state carry absolute errors near 1e-16,
    so a mass of 1e-17 against one of 1e-19 is no evidence either way."""
    low, high = metric.bounds
    tolerance = NOISE * (high - low) if math.isfinite(high - low) else 0.0
    differences = [d if d is None or not abs(d) <= tolerance else 0.0 for d in differences]
    estimate = bootstrap_interval(
        differences, hodges_lehmann_rows, level=LEVEL, bounds=metric.difference_bounds
    )
    if estimate.n:
        shift = hodges_lehmann(differences)
        shift = 0.0 if abs(shift) <= tolerance else shift
        low, high = metric.difference_bounds
        estimate = replace(estimate, mean=min(max(shift, low), high))
    return Comparison(
        task,
        settings,
        a,
        b,
        layers,
        metric,
        len(differences),
        estimate,
        wilcoxon_signed_rank(differences),
    )


def holm_family(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons with ``p_adjusted`` set by Holm's method over all measured ones."""
    p_values = [c.wilcoxon.p_value if c.measured else math.nan for c in comparisons]
    adjusted = holm(p_values)
    return [replace(c, p_adjusted=p) for c, p in zip(comparisons, adjusted, strict=True)]


def _pairs(pairs: Iterable[tuple[Entry, Entry]], metric: Metric) -> list[float | None]:
    diffs: list[float | None] = []
    for a, b in pairs:
        va, vb = a.values.get(metric.key), b.values.get(metric.key)
        diffs.append(vb - va if va is not None and vb is not None else None)
    return diffs


def _seed_means(
    per_layer: Iterable[list[tuple[Entry, Entry]]], metric: Metric
) -> list[float | None]:
    """Per replicate, the mean of its differences over layer counts (None if none measured)."""
    by_replicate: dict[tuple[Any, ...], list[float]] = {}
    for pairs in per_layer:
        for (a, _), diff in zip(pairs, _pairs(pairs, metric), strict=True):
            found = by_replicate.setdefault(a.replicate, [])
            if diff is not None:
                found.append(diff)
    return [math.fsum(d) / len(d) if d else None for d in by_replicate.values()]


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
    return compare_differences(
        _pairs(pairs, metric), metric, task=task, settings=settings, a=a, b=b, layers=layers
    )


def _matched(a: list[Entry], b: list[Entry]) -> list[tuple[Entry, Entry]]:
    left = _by_replicate(a)
    return [(left[r], e) for r, e in _by_replicate(b).items() if r in left]


def objective_comparisons(
    entries: list[Entry], metrics: Sequence[Metric] = PAIRED_METRICS
) -> list[Comparison]:
    """Every pair of QHN arms within each task × settings: per layer count, then pooled."""
    out = []
    entries = [e for e in entries if e.method == "qhn"]
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
                out += layered_comparisons(
                    per_layer, metrics, task=task, settings=settings, a=a, b=b, pool=_all_pairs
                )
    return out


def _all_pairs(
    per_layer: dict[int, list[tuple[Entry, Entry]]], metric: Metric
) -> list[float | None]:
    """Every pair of every layer count: independent runs on both sides."""
    return _pairs([pair for pairs in per_layer.values() for pair in pairs], metric)


def layered_comparisons(
    per_layer: dict[int, list[tuple[Entry, Entry]]],
    metrics: Sequence[Metric],
    *,
    task: str,
    settings: str,
    a: str,
    b: str,
    pool: Callable[[dict[int, list[tuple[Entry, Entry]]], Metric], list[float | None]],
) -> list[Comparison]:
    """``a`` against ``b`` per metric: at each layer count of ``per_layer`` (matched pairs), then,
    over several layer counts, on the differences ``pool`` makes of all of them."""
    out = []
    for metric in metrics:
        for layers, pairs in per_layer.items():
            out.append(
                _compare(pairs, metric, task=task, settings=settings, a=a, b=b, layers=(layers,))
            )
        if len(per_layer) > 1:
            out.append(
                compare_differences(
                    pool(per_layer, metric),
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
    product state), matched by replicate, then all ``L ≥ 1`` pooled: one difference per
    replicate, the mean over its layer counts of ``x_L − x_0`` (every ``L`` shares the same
    product-state run, so the replicate, not the run, is the unit of the test)."""
    out = []
    entries = [e for e in entries if e.method == "qhn"]
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
                    compare_differences(
                        _seed_means(per_layer.values(), metric),
                        metric,
                        task=task,
                        settings=settings,
                        a=f"{arm} L0",
                        b=f"{arm} L≥1",
                        layers=tuple(per_layer),
                    )
                )
    return out
