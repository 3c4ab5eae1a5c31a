"""Figures: intervals stay in a metric's range, layer ticks are integers, q(s) is on a log axis,
and a decision boundary's data points stand out from its background."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from qhn.bits import index_to_bits
from qhn.data import get_task
from qhn.plots.report import Estimate, metric_vs_layers
from qhn.plots.training import decision_boundary, top_bitstrings

# An accuracy whose (deliberately broken) interval leaves [0, 1] on both sides.
WIDE = {"task": {"ELBO": [Estimate(0, 0.95, 0.80, 1.30), Estimate(1, 0.05, -0.25, 0.30)]}}


def _bar_ends(figure) -> list[float]:
    """The y coordinates of every error-bar segment of the figure's first axes."""
    ends = []
    for collection in figure.axes[0].collections:
        for segment in collection.get_segments():
            ends.extend(float(y) for y in np.asarray(segment)[:, 1])
    return ends


def test_intervals_of_a_bounded_metric_are_clipped_to_its_range():
    unbounded = _bar_ends(metric_vs_layers(WIDE, ylabel="accuracy"))
    assert min(unbounded) < 0 and max(unbounded) > 1  # the input really leaves the range
    figure = metric_vs_layers(WIDE, ylabel="accuracy", bounds=(0.0, 1.0))
    ends = _bar_ends(figure)
    assert ends and min(ends) == 0.0 and max(ends) == 1.0
    low, high = figure.axes[0].get_ylim()
    assert low >= -0.02 - 1e-12 and high <= 1.02 + 1e-12


def test_a_one_sided_bound_clips_only_that_side():
    series = {"task": {"MLE": [Estimate(0, 0.1, -0.2, 0.4), Estimate(2, 5.0, 4.0, 7.0)]}}
    ends = _bar_ends(metric_vs_layers(series, ylabel="E_q[C]", bounds=(0.0, math.inf)))
    assert min(ends) == 0.0 and max(ends) == 7.0


def test_layer_ticks_are_integers():
    series = {"t": {"MLE": [Estimate(x, 0.5, 0.4, 0.6) for x in (0, 1, 2, 3)]}}
    figure = metric_vs_layers(series, ylabel="accuracy", bounds=(0.0, 1.0))
    figure.canvas.draw()
    ax = figure.axes[0]
    left, right = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if left <= t <= right]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_top_bitstrings_puts_q_on_a_log_axis():
    probs = torch.tensor([0.9, 0.09, 0.009, 0.001], dtype=torch.float64)
    figure = top_bitstrings(probs, torch.arange(4.0), torch.tensor([0]))
    assert figure.axes[0].get_xscale() == "log"


def test_decision_boundary_points_are_not_drawn_in_the_background_colormap():
    from matplotlib import colormaps
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba

    task = get_task("moons")
    generator = torch.Generator().manual_seed(0)
    indices = torch.randint(0, 2**task.n_bits, (3,), generator=generator)
    bits = index_to_bits(indices, task.n_bits)
    weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    figure = decision_boundary(
        task.network, bits, weights, task.x_train, task.y_train, resolution=20
    )
    points = [c for c in figure.axes[0].collections if isinstance(c, PathCollection)]
    assert len(points) == len(torch.unique(task.y_train))  # one marker set per class
    assert sum(len(c.get_offsets()) for c in points) == len(task.x_train)
    background = colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3]
    for collection in points:
        assert collection.get_array() is None  # a fixed color, not mapped like the background
        face = np.asarray(to_rgba(collection.get_facecolor()[0]))[:3]
        # at least 0.1 (Euclidean, RGB in [0, 1]) from every color the background can take
        assert np.min(np.linalg.norm(background - face, axis=1)) > 0.1
