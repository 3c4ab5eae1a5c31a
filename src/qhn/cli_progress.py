"""The progress bar of a training command (``qhn train``, ``qhn baseline``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["step_progress"]

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
