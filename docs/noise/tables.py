"""Markdown tables of the training-under-noise sweep (docs/noise.md) from its results.csv.

    python docs/noise/tables.py runs/noise/results.csv

Rows: task × setting × method, over seeds: mean and 95 % t-interval of BMA test accuracy (from
the run's own shots on its backend), of E_q[C] evaluated noiselessly (exact, statevector, at the
trained angles) and of the mass on the optimal networks (noiseless), and shots spent in training
plus evaluation. Then the paired (same seed, same initial angles) effect of readout correction.
Every interval is clipped to its metric's range (accuracy and mass in [0, 1], E_q[C] ≥ 0, a
difference of [0, 1] metrics in [−1, 1]): with 5 seeds a t-interval of a bimodal mass would
otherwise leave [0, 1]. Clipping keeps the t-interval's coverage.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict

from qhn.experiments.stats import t_interval

#: Rows with fewer finished seeds are listed as left out, not tabulated.
MIN_SEEDS = 5
#: The range of a difference of two [0, 1] metrics.
DIFFERENCE = (-1.0, 1.0)


def setting(row: dict[str, str]) -> str:
    backend = row["backend"]
    if backend == "noisy":
        return f"noisy x={float(row['noise.scale']):g}, readout {float(row['noise.readout']):g}"
    if backend == "sampled":
        return "noiseless (sampled)"
    return backend


def method(row: dict[str, str]) -> str:
    if row["objective"] == "mle":
        return "MLE"
    return "SELBO + readout corr." if row["readout_correction"].lower() == "true" else "SELBO"


def column(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows]


def fmt(values: list[float], digits: int = 3, bounds: tuple[float, float] = (0.0, 1.0)) -> str:
    """``mean [low, high]``: the 95 % t-interval clipped to ``bounds``."""
    interval = t_interval(values)
    low = min(max(interval.mean - interval.half_width, bounds[0]), bounds[1])
    high = min(max(interval.mean + interval.half_width, bounds[0]), bounds[1])
    return f"{interval.mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def main(path: str) -> None:
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("expected_cost_noiseless")]
    groups: dict[tuple[str, str, int, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], setting(row), -int(row["steps"]), method(row))].append(row)
    short = {key: len(group) for key, group in groups.items() if len(group) < MIN_SEEDS}
    for key in short:
        del groups[key]
    print(
        "| task | setting | method | seeds | steps | BMA test acc. | E_q[C] noiseless "
        "| mass on optimum (noiseless) | shots spent |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (task, where, steps, how), group in sorted(groups.items()):
        shots = sum(column(group, "shots_spent")) / len(group)
        print(
            f"| {task} | {where} | {how} | {len(group)} | {-steps} "
            f"| {fmt(column(group, 'acc_bma_test'))} "
            f"| {fmt(column(group, 'expected_cost_noiseless'), 4, (0.0, math.inf))} "
            f"| {fmt(column(group, 'mass_optimal_noiseless'))} | {shots:,.0f} |"
        )
    for (task, where, steps, how), n in sorted(short.items()):
        print(
            f"\nLeft out (only {n} of {MIN_SEEDS} seeds finished): "
            f"{task}, {where}, {how}, {-steps} steps."
        )
    print()
    print("Paired effect of readout correction on SELBO (corrected − uncorrected, same seeds):")
    print()
    print("| task | setting | seeds | Δ BMA test acc. | Δ E_q[C] noiseless | Δ mass on optimum |")
    print("|---|---|---|---|---|---|")
    for (task, where, steps, how), group in sorted(groups.items()):
        if how != "SELBO + readout corr.":
            continue
        plain = {r["train.seed"]: r for r in groups[(task, where, steps, "SELBO")]}
        pairs = [(r, plain[r["train.seed"]]) for r in group if r["train.seed"] in plain]
        deltas = {
            key: [float(a[key]) - float(b[key]) for a, b in pairs]
            for key in ("acc_bma_test", "expected_cost_noiseless", "mass_optimal_noiseless")
        }
        print(
            f"| {task} | {where} | {len(pairs)} | {fmt(deltas['acc_bma_test'], 3, DIFFERENCE)} "
            f"| {fmt(deltas['expected_cost_noiseless'], 4, (-math.inf, math.inf))} "
            f"| {fmt(deltas['mass_optimal_noiseless'], 3, DIFFERENCE)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/noise/results.csv")
