"""The prior-weight study: test accuracy and ``E_q[C]`` against β (ELBO), λ (SELBO) and the
temperature ``T`` (``N_eff = N/T``) of the sweep ``examples/prior_weight.toml``.

Reads the sweep directory's runs (``qhn.experiments.results.collect``), prints a Markdown table
(per objective, knob and value: mean over seeds and the seeds' range) and writes a figure.

Run::

    nice -n 10 qhn sweep examples/prior_weight.toml --out /tmp/prior_weight --no-plots
    python benchmarks/prior_weight.py /tmp/prior_weight --figure docs/prior_weight.png
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from qhn.experiments.results import collect

METRICS = (
    ("acc_bma_test", "test accuracy (BMA)"),
    ("acc_mode_test", "test accuracy (mode)"),
    ("expected_cost", "E_q[C] (train)"),
    ("kl_uniform", "n ln 2 − H(q)"),
)


def series(sweep_dir: Path) -> dict[tuple[str, str], dict[float, list[dict]]]:
    """``(objective, knob) → prior weight → summaries``; knob is ``beta``, ``lam`` or ``T``.
    The ``T = 1`` runs at β = 1 (λ = 1) belong to both their objective's knob and ``T``."""
    out: dict[tuple[str, str], dict[float, list[dict]]] = {}
    for record in collect(sweep_dir, write=False).records:
        c, s = record.config, record.summary
        if c.objective == "mle":
            out.setdefault(("mle", "-"), {}).setdefault(0.0, []).append(s)
            continue
        own = "beta" if c.objective == "elbo" else "lam"
        value = c.beta if c.objective == "elbo" else c.lam
        if c.temperature == 1.0:
            out.setdefault((c.objective, own), {}).setdefault(value, []).append(s)
        if value == 1.0:
            out.setdefault((c.objective, "T"), {}).setdefault(c.temperature, []).append(s)
    return out


def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.fmean(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def table(data: dict[tuple[str, str], dict[float, list[dict]]]) -> list[str]:
    lines = [
        "| objective | prior weight | value | seeds | " + " | ".join(m[1] for m in METRICS) + " |",
        "|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for (objective, knob), points in data.items():
        for value in sorted(points):
            runs = points[value]
            cells = [_cell([r[k] for r in runs if r.get(k) is not None]) for k, _ in METRICS]
            shown = "—" if knob == "-" else f"{value:g}"
            lines.append(
                f"| {objective.upper()} | {knob} | {shown} | {len(runs)} | "
                + " | ".join(cells)
                + " |"
            )
    return lines


def figure(data: dict[tuple[str, str], dict[float, list[dict]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = {"beta": "ELBO vs β", "lam": "SELBO vs λ", "T": "vs T (N_eff = N/T)"}
    for ax, (key, label) in zip(axes, (METRICS[0], METRICS[2]), strict=True):
        for (objective, knob), points in data.items():
            xs = sorted(points)
            ys = [statistics.fmean(r[key] for r in points[x]) for x in xs]
            if knob == "-":
                ax.axhline(ys[0], color="grey", linestyle=":", label="MLE")
                continue
            name = labels[knob] if knob != "T" else f"{objective.upper()} {labels['T']}"
            ax.plot(xs, ys, marker="o", label=name)
            for x in xs:
                values = [r[key] for r in points[x]]
                ax.vlines(x, min(values), max(values), alpha=0.4)
        ax.set_xscale("log")
        ax.set_xlabel("prior weight (β, λ or T)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize="small")
    fig.suptitle("moons, layers 1: mean over 3 seeds (bars: the seeds' range)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    data = series(args.sweep_dir)
    print("\n".join(table(data)))
    if args.figure is not None:
        figure(data, args.figure)


if __name__ == "__main__":
    main()
