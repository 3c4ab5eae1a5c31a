"""The digits10 table of docs/scale.md: QHN layers × estimator × seeds through the normal run path.

Each run is ``qhn train --config examples/digits10.toml`` with ``--set`` overrides (layers,
estimator, seed), written under ``--out`` as an ordinary run directory (summary.json, history,
checkpoint: a killed sweep resumes where it stopped). Prints one line per finished run and a
table of BMA / mode / sample test accuracy (mean ± 95 % t-interval over seeds) and wall time per
configuration; writes ``table.csv`` and, with ``--figures``, ``accuracy_vs_steps.png`` (the
sampled networks' accuracy on each step's minibatch, a 20-step running mean) and
``accuracy_vs_layers.png`` into ``--out``.

Run: ``python benchmarks/digits10.py --out runs/digits10-table --layers 0 1 2 --seeds 0 1 2``.
The anchors (STE ±1 network 0.892 ± 0.026, float MLP 0.967 ± 0.005) are METHOD.md §8's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path

from qhn.experiments.config import load_config
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.runner import read_summary, run

ANCHORS = {"STE ±1 (METHOD §8)": (0.892, 0.026), "float MLP (METHOD §8)": (0.967, 0.005)}
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, T95.get(len(values) - 1, 2.0) * statistics.stdev(values) / math.sqrt(len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/digits10.toml")
    parser.add_argument("--out", default="runs/digits10-table")
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--estimators", nargs="+", default=["local-expectation"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", nargs="*", default=[])
    parser.add_argument("--figures", action="store_true")
    parser.add_argument(
        "--finished-only", action="store_true", help="tabulate finished runs, start none"
    )
    args = parser.parse_args()
    base = load_config(args.config)
    out = Path(args.out)
    rows = []
    for layers in args.layers:
        for estimator in args.estimators:
            for seed in args.seeds:
                sets = [f"layers={layers}", f"estimator={estimator}", f"train.seed={seed}"]
                config = apply_overrides(base, [*args.overrides, *sets])
                where = out / f"L{layers}-{estimator}-s{seed}"
                summary = read_summary(where)
                if summary is None and args.finished_only:
                    continue
                summary = summary or run(config, where, resume=where.exists())
                rows.append({"layers": layers, "estimator": estimator, "seed": seed, **summary})
                print(
                    f"layers={layers} {estimator} seed={seed}: BMA {summary['acc_bma_test']:.4f} "
                    f"mode {summary['acc_mode_test']:.4f} sample {summary['acc_sample_test']:.4f} "
                    f"train {summary['train_seconds']:.0f} s wall {summary['wall_seconds']:.0f} s",
                    flush=True,
                )
    keys = ("layers", "estimator", "seed", "acc_bma_test", "acc_mode_test", "acc_sample_test")
    keys += ("nll_bma_test", "entropy", "kl_uniform", "train_seconds", "wall_seconds", "steps")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print("\n| QHN layers | estimator | seeds | BMA test acc | mode | sample | wall s (median) |")
    print("|---|---|---|---|---|---|---|")
    for layers in args.layers:
        for estimator in args.estimators:
            group = [r for r in rows if r["layers"] == layers and r["estimator"] == estimator]
            if not group:
                continue
            cells = [interval([r[k] for r in group]) for k in ("acc_bma_test", "acc_mode_test")]
            cells.append(interval([r["acc_sample_test"] for r in group]))
            wall = statistics.median(r["wall_seconds"] for r in group)
            text = " | ".join(f"{m:.3f} ± {h:.3f}" for m, h in cells)
            print(f"| {layers} | {estimator} | {len(group)} | {text} | {wall:.0f} |")
    for name, (mean, sd) in ANCHORS.items():
        print(f"| {name} | | 5 | {mean:.3f} ± {sd:.3f} (sd) | | | |")
    if args.figures:
        figures(out, rows, args.layers, args.estimators)


def figures(out: Path, rows: list[dict], layers: list[int], estimators: list[str]) -> None:
    """Sampled networks' minibatch accuracy vs step per configuration; BMA test accuracy vs
    layers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for layer in layers:
        for estimator in estimators:
            group = [r for r in rows if r["layers"] == layer and r["estimator"] == estimator]
            for i, r in enumerate(group):
                where = out / f"L{layer}-{estimator}-s{r['seed']}" / "history.jsonl"
                lines = [json.loads(t) for t in where.read_text().splitlines() if t.strip()]
                costs = [line["acc_minibatch"] for line in lines]
                smooth = [
                    statistics.fmean(costs[max(0, j - 19) : j + 1]) for j in range(len(costs))
                ]
                label = f"layers {layer}, {estimator}" if i == 0 else None
                style = "-" if estimator == "local-expectation" else "--"
                ax.plot(
                    range(1, len(costs) + 1),
                    smooth,
                    color=f"C{layer}",
                    linestyle=style,
                    alpha=0.7,
                    label=label,
                )
    ax.set_xlabel("step")
    ax.set_ylabel("train minibatch accuracy (sampled networks)")
    ax.set_title("digits10: training accuracy vs steps (20-step mean)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_steps.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 4))
    for estimator in estimators:
        shown, means, halves = [], [], []
        for layer in layers:
            group = [
                r["acc_bma_test"]
                for r in rows
                if r["layers"] == layer and r["estimator"] == estimator
            ]
            if not group:
                continue
            mean, half = interval(group)
            shown.append(layer)
            means.append(mean)
            halves.append(half)
            ax.scatter([layer] * len(group), group, color="grey", s=12, zorder=3)
        ax.errorbar(shown, means, yerr=halves, marker="o", capsize=4, label=f"QHN BMA, {estimator}")
    for i, (name, (mean, _)) in enumerate(ANCHORS.items()):
        ax.axhline(mean, color=f"C{i + 3}", linestyle="--", label=name)
    ax.set_xticks(layers)
    ax.set_xlabel("entangling layers per 10-qubit block")
    ax.set_ylabel("test accuracy")
    ax.set_title("digits10: BMA test accuracy vs layers (dots: seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_layers.png", dpi=120)


if __name__ == "__main__":
    main()
