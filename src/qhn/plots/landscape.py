"""The histogram of a cost landscape."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from qhn.landscape import Landscape

__all__ = ["landscape_histogram"]


def landscape_histogram(
    landscape: Landscape, *, bins: int = 100, title: str | None = None
) -> Figure:
    """Histogram of ``C(s)`` over all ``2**n`` networks, counts on a log axis, with the optimum
    ``C*`` (and its degeneracy) and the median marked.

    The figure is built with :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot).
    """
    from matplotlib.figure import Figure

    costs = landscape.train_costs.numpy()
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(costs, bins=bins, color="0.55", edgecolor="none")
    axes.set_yscale("log")
    axes.axvline(
        landscape.optimum_value,
        color="tab:red",
        linewidth=1.5,
        label=f"optimum C* = {landscape.optimum_value:.6g} (×{landscape.degeneracy})",
    )
    axes.axvline(
        landscape.median.train_cost,
        color="tab:blue",
        linestyle="--",
        linewidth=1.0,
        label=f"median = {landscape.median.train_cost:.6g}",
    )
    axes.set_xlabel("training cost C(s)")
    axes.set_ylabel("number of networks")
    axes.set_title(title or f"{landscape.task_name}: all 2^{landscape.n_bits} networks")
    axes.legend(loc="upper right", fontsize="small")
    return figure
