"""Angle gradients of runs of one-qubit rotations, computed directly instead of by autograd.

A run of one slot (every qubit's gate is one rotation ``R(θ) = exp(−iθG/2)`` or a fixed gate)
is what every ``hardware_efficient`` layer compiles to. Its operands are products of the gates'
matrix entries, and the adjoint gives their gradient; carrying it back to θ through autograd
costs a node per operation of the operands' construction, which on a small or mid-sized circuit
is a good part of a training step. Here it is two short closed forms:

- **Products of factor entries** (a Kronecker block, a product-state half): for entries
  ``e = sign·Π_j f[index_j]``, the factor entries get
  ``H_p = Σ_{j,e: index_j(e) = p} conj(g_e)·sign_e·Π_{i≠j} f[index_i(e)]``
  (:func:`factor_entry_grads`; exclusive products by a cumulative product from each end, so
  zero entries need no care).
- **Rotations**: ``dR/dθ = −(i/2)·G·R``, so an angle gets ``Re Σ_rc (−(i/2)·G·R)_rc·H_rc`` over
  its gate's ``H`` (:func:`add_rotation_grads`), added over the gates that share it.

The convention is the adjoint's (:func:`qhn.backends.torch_adjoint.carry_to_theta`): the
gradient ``g`` of a complex operand ``t`` gives ``dL/dθ = Re Σ ∂t/∂θ·conj(g)``.
"""

from __future__ import annotations

import torch

from qhn.backends.torch_passes import (
    GATHERED_ENTRIES,
    factor_positions,
    gather_factor_entries,
    kron_vectors,
)

__all__ = [
    "HALF_GENERATORS",
    "add_rotation_grads",
    "factor_entry_grads",
    "is_one_slot",
    "kron_vector_grads",
]

#: ``−(i/2)·G`` for ``R(θ) = exp(−iθG/2)``: ``dR/dθ = −(i/2)·G·R``.
HALF_GENERATORS = {
    "ry": ((0.0, -0.5), (0.5, 0.0)),
    "rx": ((0.0, -0.5j), (-0.5j, 0.0)),
    "rz": ((-0.5j, 0.0), (0.0, 0.5j)),
}


def is_one_slot(run) -> bool:
    """True for a :class:`qhn.backends.torch_passes.OneQubitRun` of one slot of rotations or
    fixed gates, whose gradient :func:`add_rotation_grads` carries."""
    return len(run.slots) == 1 and all(
        name in HALF_GENERATORS or params is None for name, _, params in run.slots[0]
    )


def factor_entry_grads(
    factors: torch.Tensor,
    index: torch.Tensor,
    grad: torch.Tensor,
    sign: torch.Tensor | None = None,
) -> torch.Tensor:
    """``H`` over the factor entries of ``e = sign·Π_j f[index_j]`` (module docstring).

    Shapes: ``factors`` ``(B, F)``; ``index`` ``(J, E)`` positions in ``0..F`` (``F``: a 1
    padding the shorter products); ``grad`` ``(B, E)``; ``sign`` ``(E,)`` → ``(B, F)``.
    """
    batch, size = factors.shape
    gathered = gather_factor_entries(factors, index)
    ones = gathered.new_ones(batch, 1, index.shape[1])
    before = torch.cat([ones, gathered[:, :-1].cumprod(1)], 1)
    after = torch.cat([gathered[:, 1:].flip(1).cumprod(1).flip(1), ones], 1)
    weight = grad.conj()
    if sign is not None:
        weight = weight * sign.to(device=grad.device)
    terms = (before * after * weight.unsqueeze(1)).reshape(batch, -1)
    positions = index.to(factors.device).view(1, -1).expand(batch, -1)
    return factors.new_zeros(batch, size + 1).scatter_add_(1, positions, terms)[:, :-1]


def kron_vector_grads(vectors: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``H`` of each factor of ``v = ⊗_j vectors[:, j]`` (first most significant) from ``v``'s
    gradient: ``H[:, j, r] = Σ_{R_j = r} conj(g[R])·Π_{i≠j} vectors[:, i, R_i]``. Up to
    :data:`qhn.backends.torch_passes.GATHERED_ENTRIES` gathered entries by
    :func:`factor_entry_grads`; a longer product splits as ``v = a ⊗ b``, whose halves get
    ``conj(g)`` contracted with the other half (``O(2^m)``, where the exclusive products of all
    ``m`` factors would take ``O(m·2^m)``). Shapes: ``(B, m, 2)``, ``(B, 2^m)`` → ``(B, m, 2)``.
    """
    batch, m = vectors.shape[:2]
    if m * 2**m <= GATHERED_ENTRIES:
        index = factor_positions(((0, m),), 2, 1, m)
        return factor_entry_grads(vectors.reshape(batch, -1), index, grad).view(batch, m, 2)
    half = m // 2
    left, right = kron_vectors(vectors[:, :half]), kron_vectors(vectors[:, half:])
    weight = grad.conj().view(batch, 2**half, -1)
    h_left = (weight @ right.unsqueeze(-1)).squeeze(-1)
    h_right = (left.unsqueeze(1) @ weight).squeeze(1)
    return torch.cat(
        [
            kron_vector_grads(vectors[:, :half], h_left.conj()),
            kron_vector_grads(vectors[:, half:], h_right.conj()),
        ],
        1,
    )


def add_rotation_grads(run, mats: torch.Tensor, per_qubit: torch.Tensor, out: torch.Tensor):
    """Add a one-slot run's angle gradients to ``out`` ``(B, P)``: each rotation's
    ``Re Σ_rc (−(i/2)·G·R)_rc·H_rc``. Shapes: the run's matrices ``mats`` and ``H``
    ``per_qubit`` ``(B, n, 2, 2)`` (zero where no gradient arrives)."""
    ((slot,),) = (run.slots,)
    for name, qubits, params in slot:
        if params is None:
            continue
        qubits = qubits.to(mats.device)
        half = torch.tensor(HALF_GENERATORS[name], dtype=mats.dtype, device=mats.device)
        value = ((half @ mats[:, qubits]) * per_qubit[:, qubits]).sum((-2, -1))
        out.index_add_(1, params.to(out.device), value.real.to(out.dtype))
