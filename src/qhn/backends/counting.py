"""Counting what a run spends on a backend: circuit executions and shots."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from qhn.backends.base import Backend, Capabilities
from qhn.circuits.ir import Circuit

__all__ = ["CountingBackend", "ExecutionStats"]


@dataclass
class ExecutionStats:
    """Running totals. One execution is one parameter row run once (as ``probs`` or as a
    ``sample`` call); ``shots`` counts measured bitstrings."""

    circuit_executions: int = 0
    shots: int = 0
    probability_vectors: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)

    def load(self, values: dict[str, int]) -> None:
        for key, value in values.items():
            setattr(self, key, int(value))


class CountingBackend:
    """Wraps a backend and counts every execution; offers ``probs`` only when the inner one does."""

    def __init__(self, inner: Backend, stats: ExecutionStats | None = None) -> None:
        self.inner = inner
        self.stats = stats or ExecutionStats()
        self.capabilities: Capabilities = inner.capabilities
        if hasattr(inner, "probs"):
            self.probs = self._probs

    def __repr__(self) -> str:
        return f"CountingBackend({self.inner!r})"

    @staticmethod
    def _rows(params: torch.Tensor) -> int:
        return 1 if params.ndim == 1 else int(params.shape[0])

    def _probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        rows = self._rows(params)
        self.stats.circuit_executions += rows
        self.stats.probability_vectors += rows
        return self.inner.probs(circuit, params)  # type: ignore[attr-defined]

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        rows = self._rows(params)
        self.stats.circuit_executions += rows
        self.stats.shots += rows * int(shots)
        return self.inner.sample(circuit, params, shots, generator=generator)
