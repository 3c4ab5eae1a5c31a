"""QHN against classical baselines, paired by seed: each QHN arm against each baseline arm of
the same task and settings, per layer count and pooled over layer counts (see
:mod:`qhn.experiments.comparisons` for the grouping, the test and the verdict;
:mod:`qhn.experiments.methods` for baseline runs)."""

from __future__ import annotations

from collections.abc import Sequence

from qhn.experiments.comparisons import (
    PAIRED_METRICS,
    Comparison,
    Entry,
    Metric,
    _arms,
    _group,
    _matched,
    _seed_means,
    layered_comparisons,
)

__all__ = ["baseline_comparisons", "is_baseline_arm"]


def is_baseline_arm(name: str) -> bool:
    """Whether an arm name is a baseline's (its first word is a baseline method)."""
    from qhn.baselines.config import METHODS

    return name.split(" ")[0] in METHODS


def baseline_comparisons(
    entries: list[Entry], metrics: Sequence[Metric] = PAIRED_METRICS
) -> list[Comparison]:
    """Every QHN arm (``A``) against every baseline arm (``B``), within each task × settings,
    matched by replicate: per layer count (``layers = (L,)``), then pooled over the layer counts
    as one difference per replicate, the mean over ``L`` of ``x_B − x_A(L)`` (every ``L`` pairs
    with the same baseline run, so the replicate, not the run, is the unit of the test). The
    headline shows the pooled comparison; budgets are matched by the sweep (``evaluations`` of
    both sides are in ``results.csv``)."""
    out = []
    for (task, settings), group in _group(entries, lambda e: (e.task, e.settings)).items():
        baselines = [e for e in group if e.method != "qhn"]
        ours = [e for e in group if e.method == "qhn"]
        if not baselines or not ours:
            continue
        by_arm = _group(baselines, lambda e: e.arm)
        for arm, runs in _group(ours, lambda e: e.arm).items():
            by_layers = _group(runs, lambda e: e.layers)
            for b in _arms(baselines):
                per_layer = {
                    layers: _matched(by_layers[layers], by_arm[b]) for layers in sorted(by_layers)
                }
                per_layer = {k: v for k, v in per_layer.items() if v}
                if not per_layer:
                    continue
                out += layered_comparisons(
                    per_layer,
                    metrics,
                    task=task,
                    settings=settings,
                    a=arm,
                    b=b,
                    pool=lambda per_layer, metric: _seed_means(per_layer.values(), metric),
                )
    return out
