"""Grouping the runs of a sweep and comparing objectives and layer counts, paired by seed.

How runs are grouped. Every config field that varies across the runs plays one role:

- **task**: the task name with any varying task option (``teacher (n_train=50)``);
- **arm**: the objective with its own varying parameters (``beta`` for ELBO; ``lam``, the kernel
  and ``analytic_prior`` for SELBO; ``prior_p`` for both);
- **layers**;
- **replicate**: ``data_seed`` and ``train.seed`` — what means and intervals are taken over;
- **settings**: everything else that varies (``shots``, ``backend``, ``lr``, …).

Paired comparisons take the difference ``B − A`` of two arms over matching replicates (same task,
layers, settings and seeds): the mean difference with its t-interval at level :data:`LEVEL` and
the two-sided Wilcoxon signed-rank p-value, per layer count and pooled over layers. Entanglement
compares each ``layers ≥ 1`` with ``layers = 0`` (the product state) the same way, per arm.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qhn.experiments.config import OBJECTIVES
from qhn.experiments.results import RunRecord, flatten_config, varying_fields
from qhn.experiments.stats import Interval, WilcoxonResult, t_interval, wilcoxon_signed_rank

__all__ = [
    "CONCLUSION_METRICS",
    "LEVEL",
    "OBJECTIVE_PARAMETERS",
    "PAIRED_METRICS",
    "TABLE_METRICS",
    "Comparison",
    "Entry",
    "Metric",
    "entanglement_comparisons",
    "objective_comparisons",
]

logger = logging.getLogger(__name__)

#: Confidence level of every interval.
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
