"""Callbacks: small observers the training loop calls after every step.

A callback has ``on_step(record, model) -> bool`` (True asks the loop to stop) and may have
``on_start(history)``, called once before the first step with the records restored from a
checkpoint (empty for a fresh run), and ``on_end()``, called once when the loop ends, also after
an error. A callback that stops the run may name why in a ``stop_reason`` attribute.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import torch

from qhn.errors import ConfigError
from qhn.io import atomic_write_text, json_default

__all__ = ["Callback", "EarlyStopping", "HistoryWriter", "read_history"]


@runtime_checkable
class Callback(Protocol):
    def on_step(self, record: dict[str, Any], model: torch.nn.Module) -> bool: ...


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=json_default) + "\n"


class HistoryWriter:
    """Append one JSON line per step to ``path`` (flushed line by line, so a killed run keeps
    every completed step).

    A fresh run starts the file empty; a resumed run rewrites it with exactly the checkpointed
    records, so steps that ran after the last checkpoint are not duplicated.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def on_start(self, history: list[dict[str, Any]]) -> None:
        self.on_end()
        atomic_write_text(self.path, "".join(_json_line(r) for r in history))
        self._handle = self.path.open("a", encoding="utf-8")

    def on_step(self, record: dict[str, Any], model: torch.nn.Module) -> bool:
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(_json_line(record))
        self._handle.flush()
        return False

    def on_end(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a history file written by :class:`HistoryWriter` (a torn last line is skipped)."""
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                records.append(json.loads(line))
    return records


class EarlyStopping:
    """Stop when ``metric`` has not improved by more than ``min_delta`` for ``patience`` steps.

    Improvement means ``value < best − min_delta`` (``mode="min"``) or ``value > best + min_delta``
    (``mode="max"``); the first record sets ``best``. With patience ``p`` a run whose metric never
    improves stops at step ``p + 1``. Non-finite values never count as improvements.
    """

    stop_reason = "early_stopping"

    def __init__(
        self, patience: int, min_delta: float = 0.0, metric: str = "loss", mode: str = "min"
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"patience must be an integer >= 1, got {patience!r}")
        if not (
            isinstance(min_delta, (int, float)) and min_delta >= 0 and math.isfinite(min_delta)
        ):
            raise ConfigError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ConfigError(f"unknown mode {mode!r}; choose one of: min, max")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.metric = metric
        self.sign = 1.0 if mode == "min" else -1.0
        self._best: float | None = None  # sign · best value, so that lower is always better
        self.best_step: int | None = None
        self.waited = 0

    @property
    def best(self) -> float | None:
        """The best value of ``metric`` seen so far."""
        return None if self._best is None else self.sign * self._best

    def on_start(self, history: list[dict[str, Any]]) -> None:
        """Rebuild the state from restored records, exactly as if they had been seen live."""
        self._best, self.best_step, self.waited = None, None, 0
        for record in history:
            self._update(record)

    def on_step(self, record: dict[str, Any], model: torch.nn.Module) -> bool:
        return self._update(record)

    def _update(self, record: dict[str, Any]) -> bool:
        if self.metric not in record:
            raise ConfigError(
                f"early stopping watches {self.metric!r}, which the records lack; "
                f"available: {', '.join(sorted(record))}"
            )
        value = self.sign * float(record[self.metric])
        if math.isfinite(value) and (self._best is None or value < self._best - self.min_delta):
            self._best, self.best_step, self.waited = value, record.get("step"), 0
        else:
            self.waited += 1
        return self.waited >= self.patience
