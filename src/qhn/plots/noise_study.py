"""The reference noise study's figure: E_q[C] and the near-optimal mass against the noise scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["noise_study_figure"]


def noise_study_figure(
    summary: Sequence[dict[str, float]], optimum: float, near_optimal: Sequence[int]
) -> Figure:
    """Two panels against ``x``: the mean ``E_q[C]`` over runs and the mean mass on the
    near-optimal bitstrings, each with its 95 % interval; the noiseless optimum ``C*`` is marked.
    Built without pyplot."""
    from matplotlib.figure import Figure

    x = [s["x"] for s in summary]
    figure = Figure(figsize=(9.0, 3.8), layout="constrained")
    cost_axes, mass_axes = figure.subplots(1, 2)
    panels = (
        (cost_axes, "expected_cost", "mean E_q[C] over runs", "tab:blue"),
        (
            mass_axes,
            "mass_near_optimal",
            f"mass on the {len(near_optimal)} near-optimal",
            "tab:green",
        ),
    )
    for axes, key, label, color in panels:
        mean = [s[f"{key}_mean"] for s in summary]
        low = [s[f"{key}_low"] for s in summary]
        high = [s[f"{key}_high"] for s in summary]
        axes.fill_between(x, low, high, color=color, alpha=0.25, linewidth=0, label="95 % interval")
        axes.plot(x, mean, "o-", color=color, markersize=4, label=label)
        axes.set_xlabel("noise scale x  (p1 = 0.001·x, p2 = 0.00375·x)")
    cost_axes.axhline(
        optimum,
        color="tab:red",
        linestyle="--",
        linewidth=1.2,
        label=f"noiseless optimum C* = {optimum:.6f}",
    )
    cost_axes.set_ylabel("E_q[C]")
    mass_axes.set_ylabel("probability")
    mass_axes.set_ylim(0, 1.02)
    for axes in (cost_axes, mass_axes):
        axes.legend(loc="best", fontsize="small")
    figure.suptitle("Reference QHN under depolarizing noise")
    return figure
