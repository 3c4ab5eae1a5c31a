"""The comparison sections of ``report.md``: the headline table, the conclusion in words and the
per-layer appendix — all three printing the same :class:`~qhn.experiments.comparisons.Comparison`
objects, so a verdict, its interval and its adjusted p can never disagree between them or with
``comparisons.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from qhn.experiments.baseline_comparisons import is_baseline_arm
from qhn.experiments.comparisons import (
    ALPHA,
    CONCLUSION_METRICS,
    LEVEL,
    Comparison,
    Entry,
    _arms,
    _group,
)
from qhn.experiments.comparisons_csv import COMPARISONS_CSV
from qhn.experiments.stats import pairs_needed, smallest_wilcoxon_p

__all__ = [
    "appendix_section",
    "conclusion_section",
    "design_power",
    "headline_section",
    "headline_table",
    "pooled",
    "table",
]

HEADLINE = "Headline"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _layers_text(layers: tuple[int, ...]) -> str:
    return ", ".join(str(layers) for layers in layers)


def _p(p: float) -> str:
    """Two significant digits, more where rounding would move p across :data:`ALPHA`."""
    if not math.isfinite(p):
        return "—"
    digits = 2
    text = f"{p:.{digits}g}"
    while (float(text) < ALPHA) != (p < ALPHA) and digits < 17:
        digits += 1
        text = f"{p:.{digits}g}"
    return text


def _shift(c: Comparison) -> str:
    """``estimate [low, high]`` of B − A, or why there is no interval."""
    interval = c.estimate
    if interval.n == 0:
        return "—"
    if not interval.defined:
        return f"{interval.mean:+.3g} (n=1, no interval)"
    return f"{interval.mean:+.3g} [{interval.low:+.3g}, {interval.high:+.3g}]"


def _names(c: Comparison) -> tuple[str, str]:
    """Display names of A and B (entanglement arms read ``layers 0`` / ``layers 1, 2``)."""
    if c.a.endswith(" L0"):
        return "layers 0", f"layers {_layers_text(c.layers)}"
    return c.a, c.b


def _winner(c: Comparison) -> str:
    a, b = _names(c)
    verdict = c.verdict()
    return {"a better": f"{a} better", "b better": f"{b} better"}.get(verdict, verdict)


def _label(c: Comparison) -> str:
    if c.a.endswith(" L0"):
        text = f"{c.a.removesuffix(' L0')}: layers {_layers_text(c.layers)} vs 0"
    else:
        text = f"{c.b} vs {c.a}"
    return f"{text} ({c.settings})" if c.settings else text


def _entangled(c: Comparison) -> bool:
    return c.a.endswith(" L0")


def pooled(comparisons: Iterable[Comparison]) -> dict[tuple[Any, ...], Comparison]:
    """The widest pooling of each comparison (over all its layers), keyed by task, settings,
    a, b (``L≥1`` for every layer count against the product state) and metric key, in
    first-seen order."""
    out: dict[tuple[Any, ...], Comparison] = {}
    for c in comparisons:
        b = "L≥1" if _entangled(c) else c.b
        key = (c.task, c.settings, c.a, b, c.metric.key)
        if key not in out or len(c.layers) > len(out[key].layers):
            out[key] = c
    return out


def _headline_rows(comparisons: Sequence[Comparison]) -> dict[tuple[Any, ...], list[Comparison]]:
    """Per task × settings × comparison, its pooled comparisons on the conclusion metrics:
    every arm against MLE (every pair of arms where a task has no MLE), then every arm's
    layers ≥ 1 against its product state."""
    keys = {m.key for m in CONCLUSION_METRICS}
    found = [c for c in pooled(comparisons).values() if c.metric.key in keys]
    with_mle = {c.task for c in found if c.a == "MLE"}
    rows: dict[tuple[Any, ...], list[Comparison]] = {}
    for c in found:
        if _entangled(c) or c.a == "MLE" or c.task not in with_mle or is_baseline_arm(c.b):
            key = (c.task, _entangled(c), c.settings, c.a, "L≥1" if _entangled(c) else c.b)
            rows.setdefault(key, []).append(c)
    tasks = list(dict.fromkeys(c.task for c in found))
    return dict(sorted(rows.items(), key=lambda kv: (tasks.index(kv[0][0]), kv[0][1])))


def _cell(c: Comparison | None) -> str:
    if c is None or not c.measured:
        return "not measured"
    verdict = f"**{_winner(c)}**" if c.better() else _winner(c)
    return f"{_shift(c)}, p̃ = {_p(c.p_adjusted)}, {verdict}"


def headline_table(comparisons: Sequence[Comparison]) -> list[str]:
    """One row per task × comparison (pooled over layers), one cell per conclusion metric:
    ``effect B − A [95 % CI], p̃ = adjusted p, verdict``."""
    rows = []
    for (task, *_), found in _headline_rows(comparisons).items():
        by_metric = {c.metric.key: c for c in found}
        cells = [_cell(by_metric.get(m.key)) for m in CONCLUSION_METRICS]
        if all(cell == "not measured" for cell in cells):
            continue
        rows.append([task, _label(found[0]), str(max(c.pairs for c in found)), *cells])
    return table(["task", "comparison", "pairs", *(m.label for m in CONCLUSION_METRICS)], rows)


def headline_section(comparisons: Sequence[Comparison]) -> list[str]:
    """``## Headline``: the method in one paragraph, then :func:`headline_table`."""
    m = sum(c.measured for c in comparisons)
    lines = [f"## {HEADLINE}", ""]
    if not any(c.measured for c in comparisons):
        return [*lines, "No matched pairs to compare yet.", ""]
    return [
        *lines,
        f"_One paired test per comparison: the two-sided Wilcoxon signed-rank test over runs "
        f"with the same task, layers, settings and seeds (pooled over layer counts here), its p "
        f"adjusted by Holm's method over all {m} comparisons of this report (every measured row "
        f"of `{COMPARISONS_CSV}`), p̃. The verdict names the better side only where p̃ < "
        f"{ALPHA:g}. The effect is the Hodges–Lehmann shift B − A (higher accuracy and mass are "
        f"better, lower E_q[C] is better) with a {LEVEL:.0%} paired-bootstrap percentile "
        f"interval, which describes its size (it is not adjusted; the verdict comes from p̃ "
        f"alone). Layer counts are pooled per seed against the product state. Every other "
        f"comparison (other pairs of arms, each layer count) is in the appendix._",
        "",
        *design_power(comparisons),
        *headline_table(comparisons),
        "",
    ]


def design_power(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[str]:
    """What the family can declare at all, before looking at the data: Holm over the ``m``
    measured comparisons rejects nothing unless some comparison's smallest attainable Wilcoxon
    p, ``2/2^n`` for ``n`` pairs (:func:`qhn.experiments.stats.smallest_wilcoxon_p`), is below
    ``α/m``. One paragraph; empty when every comparison could be declared."""
    measured = [c for c in comparisons if c.measured]
    if not measured:
        return []
    m = len(measured)
    threshold = alpha / m
    needed = pairs_needed(m, alpha)
    short = [c for c in measured if smallest_wilcoxon_p(c.n) >= threshold]
    if not short:
        return []
    most = max(c.n for c in measured)
    how = f"(`seeds = {needed}` in a sweep, `qhn reproduce --seeds {needed}`)"
    if len(short) == m:
        text = (
            f"**Power of this design: no comparison of this report can be declared, whatever "
            f"the data.** With at most {most} pairs per comparison the smallest two-sided "
            f"Wilcoxon p is {_p(smallest_wilcoxon_p(most))}, while Holm over these {m} "
            f"comparisons needs p < {alpha:g}/{m} = {threshold:.2g} for its first rejection. "
            f'Every "no significant difference" below says that the design could not tell, '
            f"not that the arms are equal; read the direction from the unadjusted p and the "
            f"interval. A family of this size needs at least {needed} pairs per comparison {how}."
        )
    else:
        text = (
            f"**Power of this design:** {len(short)} of the {m} comparisons have too few pairs "
            f"to be declared whatever the data (the smallest Wilcoxon p with n pairs is 2/2^n; "
            f"Holm's first rejection needs p < {alpha:g}/{m} = {threshold:.2g}, i.e. at least "
            f'{needed} pairs {how}); their "no significant difference" says the design could '
            f"not tell."
        )
    return [text, ""]


def _clause(c: Comparison) -> str:
    """One clause of the conclusion: who is better on the metric, by how much, and why."""
    label = c.metric.label
    if not c.measured:
        return f"{label}: not measured here (e.g. a task without test data)"
    a, b = _names(c)
    evidence = (
        f"{_shift(c)}, Wilcoxon p = {_p(c.wilcoxon.p_value)}, adjusted p = {_p(c.p_adjusted)}"
    )
    if c.wilcoxon.n == 0:
        evidence = f"{_shift(c)}, every pair equal"
    better = c.better()
    if better == 0:
        return f"{label}: no significant difference ({evidence})"
    winner, loser = (b, a) if better > 0 else (a, b)
    return f"{label}: **{winner} better** than {loser} by {abs(c.estimate.mean):.3g} ({evidence})"


def conclusion_section(
    entries: list[Entry], paired: list[Comparison], entangled: list[Comparison]
) -> list[str]:
    """``## Conclusion``: per task, each arm against MLE and each layer count against the
    product state, in words, with the verdicts of the headline table."""
    lines = ["## Conclusion", ""]
    if not entries:
        return [*lines, "No complete runs yet.", ""]
    for task, group in _group(entries, lambda e: e.task).items():
        lines += [f"### {task}", ""]
        ours = [e for e in group if e.method == "qhn"]
        lines += _objective_conclusion(task, ours, paired)
        lines += _baseline_conclusion(task, paired)
        lines += _entanglement_conclusion(task, ours, entangled)
        lines.append("")
    return lines


def _objective_conclusion(task: str, group: list[Entry], paired: list[Comparison]) -> list[str]:
    lines = []
    found_all = pooled(c for c in paired if c.task == task)
    for settings, entries in _group(group, lambda e: e.settings).items():
        arms = _arms(entries)
        mle = {e.arm for e in entries if e.record.config.objective == "mle"}
        baselines = [a for a in arms if a in mle]
        others = [a for a in arms if a not in mle]
        where = f" ({settings})" if settings else ""
        if not baselines or not others:
            present = ", ".join(arms)
            lines.append(f"- Objectives{where}: only {present} ran here; no comparison with MLE.")
            continue
        for base in baselines:
            for other in others:
                found = [
                    found_all.get((task, settings, base, other, m.key)) for m in CONCLUSION_METRICS
                ]
                found = [c for c in found if c is not None]
                if not found:
                    lines.append(f"- **{other} vs {base}**{where}: no matched seeds.")
                    continue
                lines.append(
                    f"- **{other} vs {base}**{where}, n = {found[0].pairs} matched runs over "
                    f"layers {_layers_text(found[0].layers)}:"
                )
                buckets: dict[int, list[str]] = {1: [], -1: [], 0: []}
                for c in found:
                    lines.append(f"  - {_clause(c)}")
                    if c.measured:
                        buckets[c.better()].append(c.metric.label)
                summary = []
                if buckets[1]:
                    summary.append(f"{other} beats {base} on {', '.join(buckets[1])}")
                if buckets[-1]:
                    summary.append(f"{base} beats {other} on {', '.join(buckets[-1])}")
                if buckets[0]:
                    summary.append(f"no significant difference on {', '.join(buckets[0])}")
                if summary:
                    lines.append(f"  - Verdict: {'; '.join(summary)}.")
    return lines


def _baseline_conclusion(task: str, paired: list[Comparison]) -> list[str]:
    """Each QHN arm and layer count against each baseline (budgets as the sweep set them)."""
    lines = []
    found_all = pooled(c for c in paired if c.task == task and is_baseline_arm(c.b))
    for (_, settings, a, b, metric_key), first in found_all.items():
        if metric_key != CONCLUSION_METRICS[0].key:
            continue
        where = f" ({settings})" if settings else ""
        lines.append(f"- **{b} vs {a}**{where}, n = {first.pairs} matched runs:")
        for metric in CONCLUSION_METRICS:
            c = found_all.get((task, settings, a, b, metric.key))
            if c is not None:
                lines.append(f"  - {_clause(c)}")
    return lines


def _entanglement_conclusion(
    task: str, group: list[Entry], entangled: list[Comparison]
) -> list[str]:
    if not any(e.layers == 0 for e in group):
        return ["- Entanglement: no product-state runs (layers 0) to compare with."]
    if not any(e.layers > 0 for e in group):
        return ["- Entanglement: only product-state runs (layers 0)."]
    found_all = pooled(c for c in entangled if c.task == task)
    lines = ["- Entanglement (layers ≥ 1 against the product state, layers 0, paired by seed):"]
    for (_, settings, a, b, metric_key), c in found_all.items():
        if metric_key != CONCLUSION_METRICS[0].key:
            continue
        where = f" ({settings})" if settings else ""
        clauses = [
            _clause(found)
            for metric in CONCLUSION_METRICS
            if (found := found_all.get((task, settings, a, b, metric.key))) is not None
        ]
        label = f"layers {_layers_text(c.layers)} vs 0"
        arm = a.removesuffix(" L0")
        lines.append(f"  - {arm}{where}, {label}, n = {c.pairs}: " + "; ".join(clauses) + ".")
    if len(lines) == 1:
        lines.append("  - no seeds ran with both layers 0 and layers ≥ 1.")
    return lines


def _detail_table(comparisons: list[Comparison]) -> list[str]:
    with_settings = any(c.settings for c in comparisons)
    header = ["difference", "layers", *(["settings"] if with_settings else [])]
    header += ["metric", "n", "shift [95 % CI]", "r", "Wilcoxon p", "adjusted p", "verdict"]
    rows = []
    for c in comparisons:
        row = [f"{c.b} − {c.a}", _layers_text(c.layers)]
        if with_settings:
            row.append(c.settings or "—")
        p = "— (all pairs equal)" if c.measured and c.wilcoxon.n == 0 else _p(c.wilcoxon.p_value)
        row += [
            c.metric.label,
            str(c.n),
            _shift(c),
            f"{c.effect_size:.2g}" if c.wilcoxon.n else "—",
            p if c.measured else "—",
            _p(c.p_adjusted),
            _winner(c),
        ]
        rows.append(row)
    return table(header, rows)


def appendix_section(paired: list[Comparison], entangled: list[Comparison]) -> list[str]:
    """``## Appendix: every comparison``: per layer count and pooled, as in the CSV."""
    if not paired and not entangled:
        return []
    lines = [
        "## Appendix: every comparison",
        "",
        f"Every row of `{COMPARISONS_CSV}`: the Hodges–Lehmann shift B − A with its "
        f"{LEVEL:.0%} paired-bootstrap interval, the rank-biserial effect size r = (W⁺ − W⁻)/"
        f"(W⁺ + W⁻) of the signed-rank test, its p and the Holm-adjusted p. A row with several "
        "layer counts pools them.",
        "",
    ]
    for title, comparisons in (
        ("Objectives", paired),
        ("Entanglement against the product state (layers L − layers 0)", entangled),
    ):
        for task, group in _group(comparisons, lambda c: c.task).items():
            lines += [f"### {title}: {task}", "", *_detail_table(group), ""]
    return lines
