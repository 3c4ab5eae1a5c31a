"""Figures of a sweep report: metrics against layers, training curves with seed bands, shots.

The builders take plain data (built by :mod:`qhn.experiments.report`): a mapping from panel
title to a mapping from series label to the series. They return a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot; callers save it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Band",
    "Estimate",
    "curve_bands",
    "metric_vs_layers",
    "scatter_panels",
    "series_colors",
]


@dataclass(frozen=True)
class Estimate:
    """A mean at ``x`` with its interval (``low``/``high`` NaN when undefined)."""

    x: float
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Band:
    """A curve over steps: the median and an interval (e.g. the interquartile range) of several
    runs. Shapes: all four sequences have the same length."""

    steps: Sequence[float]
    median: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]


#: Ten distinct colors (matplotlib's tab10): a report rarely has more series than that.
_COLORS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def _grid(count: int, ncols: int | None, width: float, height: float) -> tuple[Figure, int, int]:
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols or count, count))
    nrows = max(1, math.ceil(count / ncols))
    figure = Figure(figsize=(width * ncols + 1.0, height * nrows + 0.6), layout="constrained")
    return figure, nrows, ncols


def _legend(figure: Figure, axes: list[Axes]) -> None:
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels:
        # as many columns as fit the figure's width (about 11 characters per inch)
        per_entry = max(len(label) for label in labels) + 6
        ncols = max(1, min(len(labels), int(figure.get_figwidth() * 11) // per_entry))
        figure.legend(
            [handles[label] for label in labels], labels, loc="outside lower center", ncols=ncols
        )


def _colors(
    panels: Mapping[str, Mapping[str, object]], given: Mapping[str, str] | None
) -> dict[str, str]:
    """``given`` colors first (so a series keeps its color across figures), then a cycle."""
    labels: dict[str, None] = {}
    for series in panels.values():
        labels.update(dict.fromkeys(series))
    colors = dict(given or {})
    free = [label for label in labels if label not in colors]
    for i, label in enumerate(free):
        colors[label] = _COLORS[i % len(_COLORS)]
    return colors


def _clip(value: float, bounds: tuple[float, float] | None) -> float:
    if bounds is None or not math.isfinite(value):
        return value
    return min(max(value, bounds[0]), bounds[1])


def _extent(upper: float, lower: float) -> float:
    """The length of an error bar from ``lower`` to ``upper``: 0 when an end is undefined."""
    if not (math.isfinite(upper) and math.isfinite(lower)):
        return 0.0
    return max(0.0, upper - lower)


def _limit_axis(ax: Axes, bounds: tuple[float, float]) -> None:
    """Keep the y axis inside ``bounds`` plus a margin of 2 % of the range (finite ends only)."""
    low, high = ax.get_ylim()
    finite = [b for b in bounds if math.isfinite(b)]
    margin = 0.02 * (max(finite) - min(finite)) if len(finite) == 2 else 0.0
    if math.isfinite(bounds[0]):
        low = max(low, bounds[0] - margin)
    if math.isfinite(bounds[1]):
        high = min(high, bounds[1] + margin)
    ax.set_ylim(low, high)


def series_colors(labels: Sequence[str]) -> dict[str, str]:
    """A color per label, in order, from the same cycle the builders use."""
    return {label: _COLORS[i % len(_COLORS)] for i, label in enumerate(dict.fromkeys(labels))}


def metric_vs_layers(
    panels: Mapping[str, Mapping[str, Sequence[Estimate]]],
    *,
    ylabel: str,
    title: str | None = None,
    ncols: int | None = None,
    colors: Mapping[str, str] | None = None,
    bounds: tuple[float, float] | None = None,
) -> Figure:
    """One panel per key of ``panels`` (e.g. a task); in each, one line per series: the mean
    against the number of layers, with its confidence interval as error bars.

    ``bounds`` is the metric's range (an accuracy's ``(0, 1)``): intervals are clipped to it and
    the axis does not extend past it. Layer counts are integers, and so are the ticks."""
    figure, nrows, ncols = _grid(len(panels), ncols, 4.0, 3.2)
    colors = _colors(panels, colors)
    axes_list = []
    for i, (panel, series) in enumerate(panels.items()):
        ax = figure.add_subplot(nrows, ncols, i + 1)
        axes_list.append(ax)
        for j, (label, estimates) in enumerate(series.items()):
            points = sorted(estimates, key=lambda e: e.x)
            offset = 0.04 * (j - (len(series) - 1) / 2)  # keep error bars apart
            xs = [e.x + offset for e in points]
            means = [e.mean for e in points]
            below = [_extent(e.mean, _clip(e.low, bounds)) for e in points]
            above = [_extent(_clip(e.high, bounds), e.mean) for e in points]
            ax.errorbar(
                xs,
                means,
                yerr=[below, above],
                marker="o",
                capsize=3,
                label=label,
                color=colors[label],
            )
        ax.set_xlabel("layers")
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if bounds is not None:
            _limit_axis(ax, bounds)
    _legend(figure, axes_list)
    if title:
        figure.suptitle(title)
    return figure


def curve_bands(
    panels: Mapping[str, Mapping[str, Band]],
    *,
    ylabel: str,
    title: str | None = None,
    ncols: int | None = None,
    log_y: bool = False,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per key of ``panels``; in each, one median curve per series with its band
    shaded."""
    figure, nrows, ncols = _grid(len(panels), ncols, 3.6, 2.8)
    colors = _colors(panels, colors)
    axes_list = []
    for i, (panel, series) in enumerate(panels.items()):
        ax = figure.add_subplot(nrows, ncols, i + 1)
        axes_list.append(ax)
        for label, band in series.items():
            ax.plot(band.steps, band.median, color=colors[label], linewidth=1.2, label=label)
            ax.fill_between(band.steps, band.low, band.high, color=colors[label], alpha=0.2)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize=10)
    _legend(figure, axes_list)
    if title:
        figure.suptitle(title)
    return figure


def scatter_panels(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    log_x: bool = True,
    ncols: int | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per key of ``panels``; in each, one set of ``(x, y)`` points per series."""
    figure, nrows, ncols = _grid(len(panels), ncols, 4.0, 3.2)
    colors = _colors(panels, colors)
    axes_list = []
    for i, (panel, series) in enumerate(panels.items()):
        ax = figure.add_subplot(nrows, ncols, i + 1)
        axes_list.append(ax)
        for label, points in series.items():
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            ax.scatter(xs, ys, s=18, color=colors[label], label=label, alpha=0.8)
        if log_x and any(p[0] > 0 for s in series.values() for p in s):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize=10)
    _legend(figure, axes_list)
    if title:
        figure.suptitle(title)
    return figure
