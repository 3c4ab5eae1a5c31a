"""``comparisons.csv``: every comparison of a report, one row each.

Columns :data:`CSV_COLUMNS`: ``task``; ``group`` (``layers=0,1`` and the settings, if any);
``a`` and ``b`` (arms, or ``ARM L0`` against ``ARM L1`` / ``ARM L≥1`` for entanglement);
``metric`` (its summary key); ``n`` (pairs with the metric on both sides); ``estimate``,
``ci_low``, ``ci_high`` (the Hodges–Lehmann shift ``b − a`` and its bootstrap interval);
``p_value`` (Wilcoxon signed-rank, two-sided), ``p_adjusted`` (Holm over the report's family);
``verdict`` (one of :data:`~qhn.experiments.comparisons.VERDICTS`). Numbers are written with
``repr`` (they read back exactly); a number that does not exist is an empty cell.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable

from qhn.experiments.comparisons import Comparison
from qhn.experiments.results import write_named
from qhn.io import atomic_write_text

__all__ = ["COMPARISONS_CSV", "CSV_COLUMNS", "comparisons_csv_text", "write_comparisons_csv"]

COMPARISONS_CSV = "comparisons.csv"
CSV_COLUMNS = (
    "task",
    "group",
    "a",
    "b",
    "metric",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "verdict",
)


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def comparisons_csv_text(comparisons: Iterable[Comparison]) -> str:
    """``comparisons.csv``: one row per comparison, columns :data:`CSV_COLUMNS` (empty cells
    where a number does not exist)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in comparisons:
        measured = c.measured
        writer.writerow(
            [
                c.task,
                c.group,
                c.a,
                c.b,
                c.metric.key,
                c.n,
                _cell(c.estimate.mean),
                _cell(c.estimate.low),
                _cell(c.estimate.high),
                _cell(c.wilcoxon.p_value) if measured else "",
                _cell(c.p_adjusted) if measured else "",
                c.verdict(),
            ]
        )
    return buffer.getvalue()


def write_comparisons_csv(path: str | os.PathLike[str], comparisons: Iterable[Comparison]) -> None:
    """Write :func:`comparisons_csv_text` atomically (an ``OSError`` names the file)."""
    write_named(path, atomic_write_text, comparisons_csv_text(comparisons))
