"""The score-function (REINFORCE) estimator with a leave-one-out baseline (simulators only).

``∇θ E_q[f] = E_q[f(s) ∇θ log q_θ(s)]``. From ``S`` shots ``s_1..s_S ∼ q_θ`` (drawn without
gradient) the estimate is

    ĝ = (1/S) Σ_i (f_i − b_i) ∇θ log q_θ(s_i),   b_i = (Σ_j f_j − f_i) / (S − 1),

unbiased because each baseline ``b_i`` is independent of ``s_i`` and ``E_q[∇ log q] = 0``. It needs
``log q_θ(s)`` with its gradient, so a simulator; it serves as a variance comparison for the
parameter-shift rule.
"""

from __future__ import annotations

import torch

from qhn.backends.base import Backend, as_param_batch
from qhn.backends.sampling import sample_indices
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError
from qhn.gradients.base import (
    BitFunction,
    Estimator,
    check_bit_function,
    exact_probs_missing,
    honest,
    sampled_values,
)

__all__ = ["ScoreFunction"]


class ScoreFunction(Estimator):
    """REINFORCE with a leave-one-out baseline; ``probs`` is plain autograd through the backend."""

    name = "score-function"

    def missing(self, backend: Backend, *, exact: bool = False) -> str | None:
        return exact_probs_missing(backend, differentiable=True)

    def probs(self, backend: Backend, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """``q_θ`` differentiable by autograd. Shapes: ``(B, P)`` → ``(B, 2**n)``."""
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
        """Mean of ``f`` over ``shots`` draws, carrying the score-function gradient.

        Shapes: params ``(B, P)`` → ``(B,)``; ``(P,)`` → ``()``. ``shots ≥ 2`` is required (the
        baseline leaves one shot out).
        """
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 2:
            raise ConfigError(
                f"the score-function estimator needs an integer number of shots >= 2 "
                f"(a leave-one-out baseline), got {shots!r}"
            )
        self.check(backend, exact=True)
        check_bit_function(f, circuit.n_qubits)
        batch, batched = as_param_batch(circuit, params)
        q = backend.probs(circuit, batch)  # type: ignore[attr-defined]
        indices = sample_indices(q.detach(), shots, generator=generator)
        values = sampled_values(f, indices, circuit.n_qubits, batch.dtype)
        baseline = (values.sum(-1, keepdim=True) - values) / (shots - 1)
        log_q = torch.log(q.gather(-1, indices).to(batch.dtype))
        surrogate = ((values - baseline) * log_q).mean(-1)
        out = honest(values.mean(-1), surrogate)
        return out if batched else out[0]
