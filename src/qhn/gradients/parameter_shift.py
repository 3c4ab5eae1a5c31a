"""The parameter-shift rule: gradients from shifted circuits, on any backend, hardware included.

Every rotation is ``exp(−iθG/2)`` with ``G² = I``, so for one gate occurrence ``k``

    ∂ E_q[f] / ∂θ_k = ½ ( E_{q(θ + π/2·e_k)}[f] − E_{q(θ − π/2·e_k)}[f] ),

and a parameter used by several gates gets the sum over its occurrences. The work splits into two
pure functions, as in PennyLane's gradient transforms: :func:`plan_shifts` builds the shifted
parameter batch on the *expanded* circuit (one parameter per rotation occurrence) and
:func:`combine_shifts` turns the shifted circuits' expectations into the gradient. The
:class:`ParameterShift` estimator runs the plan on a backend: with exact probabilities the gradient
is exact; with shots it is unbiased and needs only samples.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from qhn.backends.base import Backend, as_param_batch, check_shots, chunked_expectations
from qhn.bits import bits_to_index
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError
from qhn.gradients.base import (
    BitFunction,
    Estimator,
    as_cost_vector,
    check_bit_function,
    exact_probs_missing,
    honest,
    sampled_values,
)

__all__ = ["SHIFT", "ParameterShift", "ShiftPlan", "combine_shifts", "plan_shifts"]

#: The shift of the two-term rule for generators with eigenvalues ±1.
SHIFT = math.pi / 2


@dataclass(frozen=True)
class ShiftPlan:
    """The shifted circuits of the two-term rule for a batch of parameter vectors.

    Attributes:
        expanded: the circuit with one parameter per rotation occurrence (``P'`` of them).
        origin: ``(P',)`` int64, the original parameter index of each occurrence.
        n_params: ``P``, the original circuit's parameter count.
        base: ``(B, P')`` the unshifted expanded parameters ``θ[origin]``.
        shifted: ``(B, 2P', P')``; row ``k`` is ``base + π/2·e_k`` and row ``P' + k`` is
            ``base − π/2·e_k``.
    """

    expanded: Circuit
    origin: torch.Tensor
    n_params: int
    base: torch.Tensor
    shifted: torch.Tensor

    @property
    def n_occurrences(self) -> int:
        """``P'``, the number of rotation occurrences."""
        return int(self.origin.numel())


@functools.lru_cache(maxsize=64)
def _expand(circuit: Circuit) -> tuple[Circuit, tuple[int, ...]]:
    return circuit.expanded()


def plan_shifts(circuit: Circuit, params: torch.Tensor) -> ShiftPlan:
    """Plan the ``2P'`` shifted circuits for each row of ``params`` (detached).

    Shapes: params ``(B, P)`` or ``(P,)`` (then ``B = 1``); see :class:`ShiftPlan`.
    """
    batch, _ = as_param_batch(circuit, params)
    batch = batch.detach()
    expanded, origin = _expand(circuit)
    origin_index = torch.tensor(origin, dtype=torch.int64, device=batch.device)
    base = batch[:, origin_index]
    step = SHIFT * torch.eye(len(origin), dtype=batch.dtype, device=batch.device)
    shifted = base.unsqueeze(1) + torch.cat([step, -step])
    return ShiftPlan(expanded, origin_index, circuit.n_params, base, shifted)


def combine_shifts(plan: ShiftPlan, values: torch.Tensor) -> torch.Tensor:
    """Gradient from the shifted expectations: ``∂_p = Σ_{k: origin[k] = p} ½(v⁺_k − v⁻_k)``.

    Shapes: values ``(B, 2P')`` in the row order of ``plan.shifted`` → gradient ``(B, P)``.
    """
    k = plan.n_occurrences
    batch = plan.base.shape[0]
    if tuple(values.shape) != (batch, 2 * k):
        raise ConfigError(
            f"shifted values must have shape ({batch}, {2 * k}) for this plan, "
            f"got {tuple(values.shape)}"
        )
    per_occurrence = 0.5 * (values[:, :k] - values[:, k:])
    grad = torch.zeros(batch, plan.n_params, dtype=values.dtype, device=values.device)
    return grad.index_add_(1, plan.origin.to(values.device), per_occurrence)


class _ShiftRuleProbs(torch.autograd.Function):
    """``q_θ`` from the backend; backward is the vector-Jacobian product by the shift rule.

    ``Σ_s g(s) ∂q_θ(s)/∂θ_p`` is the parameter-shift gradient of ``E_q[g]`` with ``f = g``.
    """

    @staticmethod
    def forward(ctx, params, backend, circuit, estimator):  # type: ignore[override]
        ctx.save_for_backward(params)
        ctx.backend, ctx.circuit, ctx.estimator = backend, circuit, estimator
        return backend.probs(circuit, params.detach())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_probs):  # type: ignore[override]
        (params,) = ctx.saved_tensors
        plan = plan_shifts(ctx.circuit, params)
        values = ctx.estimator._exact_shifted_values(ctx.backend, plan, grad_probs)
        return combine_shifts(plan, values).to(params.dtype), None, None, None


class ParameterShift(Estimator):
    """The parameter-shift estimator.

    ``expectation`` with ``shots=None`` is exact (needs exact probabilities); with ``shots`` it
    needs only ``sample``: the value is the mean of ``f`` over ``shots`` shots at ``θ``, and each
    of the ``2P'`` shifted circuits gets ``shots`` shots of its own, all in one ``sample`` call.
    ``probs`` is differentiable by the shift rule (exact probabilities needed).

    Args:
        max_chunk_bytes: exact mode evaluates the shifted circuits' probability vectors in chunks
            of about this many bytes, so memory stays bounded whatever ``P'``.
    """

    name = "parameter-shift"

    def __init__(self, max_chunk_bytes: int = 128 * 2**20) -> None:
        if max_chunk_bytes < 1:
            raise ConfigError(f"max_chunk_bytes must be positive, got {max_chunk_bytes}")
        self.max_chunk_bytes = int(max_chunk_bytes)

    def missing(self, backend: Backend, *, exact: bool = False) -> str | None:
        if not callable(getattr(backend, "sample", None)):
            return "a backend that can sample"
        return exact_probs_missing(backend, differentiable=False) if exact else None

    def probs(self, backend: Backend, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """``q_θ``, differentiable through the shift rule (``2P'`` circuits per backward row).

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``.
        """
        self.check(backend, exact=True)
        batch, batched = as_param_batch(circuit, params)
        out = _ShiftRuleProbs.apply(batch, backend, circuit, self)
        return out if batched else out[0]

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
        """Honest ``E_q[f]`` carrying the shift-rule gradient.

        The shifted circuits run only when a gradient is wanted (grad mode on and
        ``params.requires_grad``). Shapes: params ``(B, P)`` → ``(B,)``; ``(P,)`` → ``()``.
        """
        if shots is not None:
            check_shots(shots)
        self.check(backend, exact=shots is None)
        check_bit_function(f, circuit.n_qubits)
        batch, batched = as_param_batch(circuit, params)
        want_grad = torch.is_grad_enabled() and batch.requires_grad
        if shots is None:
            value, grad = self._exact(backend, circuit, batch, f, want_grad)
        else:
            value, grad = self._sampled(backend, circuit, batch, f, shots, generator, want_grad)
        out = value if grad is None else honest(value, (grad * batch).sum(-1))
        return out if batched else out[0]

    # ----------------------------------------------------------------- internals
    def _exact(self, backend, circuit, batch, f, want_grad):
        cost = as_cost_vector(f, circuit.n_qubits, batch.dtype, batch.device)
        with torch.no_grad():
            value = backend.probs(circuit, batch.detach()).to(batch.dtype) @ cost
        if not want_grad:
            return value, None
        plan = plan_shifts(circuit, batch)
        return value, combine_shifts(plan, self._exact_shifted_values(backend, plan, cost))

    def _sampled(self, backend, circuit, batch, f, shots, generator, want_grad):
        n = circuit.n_qubits
        if not want_grad:
            bits = backend.sample(circuit, batch.detach(), shots, generator=generator)
            return sampled_values(f, bits_to_index(bits), n, batch.dtype).mean(-1), None
        plan = plan_shifts(circuit, batch)
        # The unshifted circuit rides in the same call: one job on hardware.
        rows = torch.cat([plan.base.unsqueeze(1), plan.shifted], 1)
        flat = rows.reshape(-1, plan.n_occurrences)
        bits = backend.sample(plan.expanded, flat, shots, generator=generator)
        means = sampled_values(f, bits_to_index(bits), n, batch.dtype).mean(-1)
        means = means.view(rows.shape[0], rows.shape[1])
        return means[:, 0], combine_shifts(plan, means[:, 1:])

    def _exact_shifted_values(
        self, backend: Backend, plan: ShiftPlan, weights: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_s q_{shifted}(s) w(s)`` for every shifted row, batch row by batch row (so a backend
        with ``expectations``, the statevector one, sees rows that share leading passes), in
        bounded-memory chunks otherwise.

        Shapes: weights ``(2**n,)`` (one for all rows) or ``(B, 2**n)`` (one per batch row)
        → ``(B, 2P')``.
        """
        dot = getattr(backend, "expectations", None)
        if dot is None:
            dot = functools.partial(chunked_expectations, backend, max_bytes=self.max_chunk_bytes)
        return torch.stack(
            [
                dot(plan.expanded, rows, weights[b] if weights.ndim > 1 else weights)
                for b, rows in enumerate(plan.shifted)
            ]
        )
