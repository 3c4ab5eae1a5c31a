"""QHN against classical baselines, paired by seed: each QHN arm at each layer count against
each baseline arm of the same task and settings (see :mod:`qhn.experiments.comparisons` for the
grouping, the test and the verdict; :mod:`qhn.experiments.methods` for baseline runs)."""

from __future__ import annotations

from collections.abc import Sequence

from qhn.experiments.comparisons import (
    PAIRED_METRICS,
    Comparison,
    Entry,
    Metric,
    _arms,
    _compare,
    _group,
    _matched,
)

__all__ = ["baseline_comparisons", "is_baseline_arm"]


def is_baseline_arm(name: str) -> bool:
    """Whether an arm name is a baseline's (its first word is a baseline method)."""
    from qhn.baselines.config import METHODS

    return name.split(" ")[0] in METHODS


def baseline_comparisons(
    entries: list[Entry], metrics: Sequence[Metric] = PAIRED_METRICS
) -> list[Comparison]:
    """Every QHN arm at each layer count (``A``, named ``"ELBO (layers 2)"``) against every
    baseline arm (``B``), within each task × settings, matched by replicate. A baseline has no
    layers, so its run for a replicate serves every layer count; budgets are matched by the
    sweep (``evaluations`` of both sides are in ``results.csv``)."""
    out = []
    for (task, settings), group in _group(entries, lambda e: (e.task, e.settings)).items():
        baselines = [e for e in group if e.method != "qhn"]
        ours = [e for e in group if e.method == "qhn"]
        if not baselines or not ours:
            continue
        by_arm = _group(baselines, lambda e: e.arm)
        for (arm, layers), runs in _group(ours, lambda e: (e.arm, e.layers)).items():
            for b in _arms(baselines):
                pairs = _matched(runs, by_arm[b])
                if not pairs:
                    continue
                for metric in metrics:
                    out.append(
                        _compare(
                            pairs,
                            metric,
                            task=task,
                            settings=settings,
                            a=f"{arm} (layers {layers})",
                            b=b,
                            layers=(layers,),
                        )
                    )
    return out
