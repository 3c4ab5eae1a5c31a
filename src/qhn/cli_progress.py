"""What a training command (``qhn train``, ``qhn baseline``) shows: its progress bar while it
trains and its summary table at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["print_summary", "step_progress"]

StepCallback = Callable[[int, int, dict[str, Any]], None]


@contextlib.contextmanager
def step_progress(console: Any, name: str) -> Iterator[StepCallback]:
    """Yield a ``progress(step, total, record)`` callback drawing a bar with the record's loss.

    The bar starts on the first step, so a run refused during validation prints its error line
    alone; text is shown literally (no markup).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}", markup=False),
        TimeRemainingColumn(),
        console=console,
    )
    jobs: list[Any] = []

    def progress(step: int, total: int, record: dict[str, Any]) -> None:
        if not jobs:
            bar.start()
            jobs.append(bar.add_task(name, total=total, loss="…"))
        loss = record.get("loss", float("nan"))
        bar.update(jobs[0], completed=step, total=total, loss=f"{loss:.6g}")

    try:
        yield progress
    finally:
        if jobs:
            bar.stop()


def print_summary(title: str, summary: dict[str, Any], shown: Sequence[tuple[str, str]]) -> None:
    """Print the ``shown`` (key, label) metrics of ``summary`` that are set, as a table on
    stdout; every text literally (no markup)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in shown:
        if summary.get(key) is not None:
            value = summary[key]
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            table.add_row(escape(label), escape(text))
    Console().print(table)
