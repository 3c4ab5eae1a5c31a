"""A wrapper that turns any backend into a sample-only one, as a quantum computer is.

Wrapping a simulator in :class:`SampleOnly` runs the hardware code path (shots only, no
probability vector, no autograd) on a machine without quantum hardware, so that everything meant
for hardware can be tested here.
"""

from __future__ import annotations

import torch

from qhn.backends.base import Backend, Capabilities
from qhn.circuits.ir import Circuit

__all__ = ["SampleOnly"]


class SampleOnly:
    """Expose only ``sample`` of ``backend``; there is deliberately no ``probs`` attribute.

    ``capabilities`` says ``exact_probs=False, backprop=False`` and keeps the wrapped backend's
    ``max_qubits``, so :func:`~qhn.backends.base.require_exact` and the estimators' capability
    checks refuse anything that needs the probability vector. Samples are those of the wrapped
    backend, bit for bit for the same generator state.
    """

    def __init__(self, backend: Backend) -> None:
        self._inner = backend
        self.capabilities = Capabilities(
            exact_probs=False,
            backprop=False,
            max_qubits=backend.capabilities.max_qubits,
        )

    @property
    def inner(self) -> Backend:
        """The wrapped backend."""
        return self._inner

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times on the wrapped backend.

        Shapes: params ``(B, P)`` → bits ``(B, shots, n)`` uint8 (``(P,)`` → ``(shots, n)``).
        """
        with torch.no_grad():
            return self._inner.sample(circuit, params, shots, generator=generator)

    def __repr__(self) -> str:
        return f"SampleOnly({self._inner!r})"
