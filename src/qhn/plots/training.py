"""Figures of one training run: curves, the learned distribution, decision boundaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from qhn.bits import bitstring
from qhn.errors import ConfigError, choices
from qhn.models.network import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["decision_boundary", "top_bitstrings", "training_curves"]

#: Markers and colors of the training points of each class on a decision boundary.
_MARKERS = ("o", "^", "s", "D", "v", "P")
_POINT_COLORS = ("navy", "darkorange", "darkgreen", "purple", "black", "gold")

_CURVES = (
    ("loss", "loss (−objective)"),
    ("expected_cost", "E_q[C] (train)"),
    ("entropy", "entropy H(q) [nats]"),
    ("kl", "KL(q ‖ p)"),
    ("mmd2", "MMD²(q, p)"),
    ("grad_norm", "gradient norm"),
)


def training_curves(history: Sequence[dict[str, Any]], *, title: str | None = None) -> Figure:
    """One panel per metric present in the history (loss, ``E_q[C]``, entropy, KL or MMD²,
    gradient norm) against the step."""
    from matplotlib.figure import Figure

    panels = [(key, label) for key, label in _CURVES if any(key in r for r in history)]
    if not panels:
        raise ConfigError(
            f"the history ({len(history)} records) holds none of the metrics to plot: "
            f"{choices(key for key, _ in _CURVES)}"
        )
    figure = Figure(figsize=(3.2 * len(panels), 3.0), layout="constrained")
    steps = [r["step"] for r in history]
    for i, (key, label) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), i + 1)
        values = [r.get(key, float("nan")) for r in history]
        axes.plot(steps, values, color="tab:blue", linewidth=1.2)
        if key == "grad_norm":
            axes.set_yscale("log")
        axes.set_xlabel("step")
        axes.set_title(label, fontsize=10)
    if title:
        figure.suptitle(title)
    return figure


def top_bitstrings(
    probs: torch.Tensor, costs: torch.Tensor, optimal: torch.Tensor, *, top: int = 20
) -> Figure:
    """The ``top`` most probable networks: ``q(s)`` as bars, the landscape's ``C(s)`` beside them,
    optimal networks highlighted. Shapes: ``probs``, ``costs`` ``(2**n,)``; ``optimal`` indices."""
    from matplotlib.figure import Figure

    n = int(probs.numel()).bit_length() - 1
    top = max(1, min(top, int((probs > 0).sum())))
    values, indices = torch.topk(probs.detach(), top)
    is_optimal = torch.isin(indices, optimal)
    labels = [bitstring(i, n) for i in indices.tolist()]
    figure = Figure(figsize=(8.0, 0.25 * top + 1.5), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True, width_ratios=(2, 1))
    colors = ["tab:red" if o else "tab:blue" for o in is_optimal.tolist()]
    positions = range(top)
    left.barh(positions, values.numpy(), color=colors)
    left.set_yticks(list(positions), labels, fontsize=7, family="monospace")
    left.invert_yaxis()
    left.set_xscale("log")  # q spans orders of magnitude; a linear axis hides all but the mode
    left.set_xlabel("q(s) (log scale)")
    left.set_title("most probable networks (red: optimal set)", fontsize=10)
    right.barh(positions, costs[indices].numpy(), color=colors)
    right.axvline(float(costs.min()), color="k", linestyle=":", linewidth=1)
    right.set_xlabel("C(s) on train")
    return figure


def decision_boundary(
    network,
    bits: torch.Tensor,
    weights: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    resolution: int = 150,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Figure:
    """For 2-D inputs: the model average ``P(y = 1 | x) = Σ_k w_k p(y = 1 | x, s_k)`` over a
    ``resolution × resolution`` grid, with the training points.

    ``bits`` ``(K, n)`` and ``weights`` ``(K,)`` stand for ``q`` (e.g. its support); the average
    is accumulated in blocks of at most ``max_bytes`` scratch, never as ``(K, grid, classes)``.
    """
    from matplotlib.figure import Figure

    lo = x.min(0).values - 0.5
    hi = x.max(0).values + 0.5
    grid_x, grid_y = torch.meshgrid(
        torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=torch.float64),
        torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=torch.float64),
        indexing="xy",
    )
    points = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], 1)
    proba = network.average_proba(bits, weights, points, max_bytes=max_bytes)[:, -1]
    figure = Figure(figsize=(5.0, 4.2), layout="constrained")
    axes = figure.add_subplot()
    mesh = axes.contourf(
        grid_x.numpy(),
        grid_y.numpy(),
        proba.reshape(grid_x.shape).numpy(),
        levels=20,
        cmap="RdBu_r",
        vmin=0,
        vmax=1,
    )
    figure.colorbar(mesh, ax=axes, label="BMA P(y = 1 | x)")
    # Points drawn in the background's own colormap vanish into it: one marker and a fixed,
    # contrasting color per class, with a white edge, stay visible over any region.
    for k, label in enumerate(torch.unique(y).tolist()):
        chosen = y == label
        axes.scatter(
            x[chosen, 0].numpy(),
            x[chosen, 1].numpy(),
            marker=_MARKERS[k % len(_MARKERS)],
            color=_POINT_COLORS[k % len(_POINT_COLORS)],
            s=14,
            edgecolors="white",
            linewidths=0.5,
            label=f"y = {label}",
        )
    axes.legend(loc="upper right", fontsize=8, framealpha=0.8)
    axes.set_xlabel("x₁")
    axes.set_ylabel("x₂")
    return figure
