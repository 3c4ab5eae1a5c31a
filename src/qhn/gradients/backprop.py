"""Exact gradients by automatic differentiation through the simulator (simulators only)."""

from __future__ import annotations

import torch

from qhn.backends.base import Backend, as_param_batch
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError
from qhn.gradients.base import (
    BitFunction,
    Estimator,
    as_cost_vector,
    exact_probs_missing,
)

__all__ = ["Backprop"]


class Backprop(Estimator):
    """Autograd through ``backend.probs``: ``∇θ E_q[f] = ∇θ Σ_s q_θ(s) f(s)``, exact.

    Needs a backend with exact, differentiable probabilities (``capabilities.backprop``).
    """

    name = "backprop"

    def missing(self, backend: Backend, *, exact: bool = False) -> str | None:
        return exact_probs_missing(backend, differentiable=True)

    def probs(self, backend: Backend, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """``q_θ`` as the backend computes it, differentiable by autograd.

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``.
        """
        self.check(backend, exact=True)
        return backend.probs(circuit, params)  # type: ignore[attr-defined]

    def expectation(
        self,
        backend: Backend,
        circuit: Circuit,
        params: torch.Tensor,
        f: BitFunction,
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Exact ``Σ_s q_θ(s) f(s)``; a callable ``f`` is tabulated over all ``2**n`` bitstrings.

        Shapes: params ``(B, P)`` → ``(B,)``; ``(P,)`` → ``()``. ``shots`` must be None.
        """
        if shots is not None:
            raise ConfigError(
                f"the backprop estimator computes exact expectations, so shots must be None, "
                f"got {shots!r}; use 'parameter-shift' or 'score-function' for shot-based estimates"
            )
        self.check(backend, exact=True)
        batch, _ = as_param_batch(circuit, params)
        cost = as_cost_vector(f, circuit.n_qubits, batch.dtype, batch.device)
        q = backend.probs(circuit, params)  # type: ignore[attr-defined]
        return q @ cost.to(q.dtype)
