"""The figures of a sweep report (``figures/*.png``), built from the labelled runs of
:mod:`qhn.experiments.comparisons` with the plot builders of :mod:`qhn.plots.report`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qhn.experiments.bootstrap import bootstrap_interval, mean_rows
from qhn.experiments.comparisons import ACC_BMA, LEVEL, MASS, Entry, Metric, _group, _number
from qhn.experiments.results import write_named
from qhn.io import atomic_write_png

__all__ = ["FIGURES", "write_figures"]

logger = logging.getLogger(__name__)

FIGURES = "figures"


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
                values = [e.values[metric.key] for e in runs]
                interval = bootstrap_interval(values, mean_rows, level=LEVEL, bounds=metric.bounds)
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
                if entry.record.history_problem is not None:
                    continue  # a corrupt history would put wrong points on the curve
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


def write_figures(sweep_dir: Path, entries: list[Entry]) -> list[tuple[str, Path]]:
    """Write the report's figures into ``sweep_dir/figures`` (each atomically; an ``OSError``
    names the file) and return their captions and paths; none without matplotlib."""
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
                    f"{metric.label} against layers, per objective (mean over seeds and 95 % "
                    "percentile-bootstrap interval)",
                    name,
                    lambda p=panels, m=metric: metric_vs_layers(
                        p, ylabel=m.label, colors=colors, bounds=m.bounds
                    ),
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
        write_named(path, atomic_write_png, build(), dpi=110)
        written.append((caption, path))
    return written
