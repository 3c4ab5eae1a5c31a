"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM.

While training, the first SIGINT or SIGTERM is only recorded; the loop finishes the step it is in
(so θ and the optimizer state are never half-updated), writes a checkpoint and raises
:class:`TrainingInterrupted`. A second signal interrupts at once, as Python normally does.
Handlers are installed only in the main thread (Python allows no other) and are restored when
training ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["InterruptFlag", "TrainingInterrupted", "deferred_interrupts"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving its state.

    A :class:`KeyboardInterrupt`, so code that handles only ``Exception`` (a sweep worker that
    records failures) lets it through: an interrupted run has not failed.
    ``signum``: the signal; ``step``: completed steps; ``checkpoint``: the file written (None
    without a checkpoint directory).
    """

    def __init__(self, signum: int, step: int, total: int, checkpoint: Path | None) -> None:
        self.signum = signum
        self.step = step
        self.total = total
        self.checkpoint = checkpoint
        where = f"; checkpoint saved to {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"interrupted by {self.signal_name} at step {step}/{total}{where}")

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """The shell convention for death by signal: 128 + signal number."""
        return 128 + int(self.signum)


@dataclass
class InterruptFlag:
    """The first signal received while armed (None: none yet)."""

    signum: int | None = None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[InterruptFlag]:
    """Record the first SIGINT/SIGTERM in the yielded flag instead of raising; a second one
    raises :class:`KeyboardInterrupt` immediately. Outside the main thread it only yields a flag
    that is never set."""
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag.signum is not None:
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
