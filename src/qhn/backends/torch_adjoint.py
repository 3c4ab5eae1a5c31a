"""The adjoint gradient of the torch passes (:mod:`qhn.backends.torch_passes`).

The **adjoint method** (a custom autograd function): the forward pass keeps only the final
state; the backward pass walks the program in reverse, un-applying each unitary pass to the state
and to the adjoint vector ``λ = ∂L/∂ψ̄`` together, and contracts them into the gradient of each
small block matrix. Those go to θ one run of one-qubit gates at a time: directly for a run of
one slot of rotations (:meth:`qhn.backends.torch_plan.Operands.add_theta_grad`), else by
autograd from the run's operand entries (:func:`carry_to_theta`). Memory stays at six state
vectors whatever the depth, and every pass writes into a preallocated buffer."""

from __future__ import annotations

import torch

from qhn.backends.entanglers import CNOTRun, negate_pairs
from qhn.backends.torch_passes import (
    Block,
    Buffers,
    Negate,
    apply_cnots,
    forward_pass,
    squared_modulus,
)
from qhn.backends.torch_plan import Operands

__all__ = ["AdjointProbs", "carry_to_theta"]


class AdjointProbs(torch.autograd.Function):
    """Probabilities with an adjoint-method backward. ``(B, P)`` → ``(B, 2**n)``."""

    @staticmethod
    def forward(ctx, params, circuit, backend):  # type: ignore[override]
        """The probabilities by the backend's passes; keeps the final state and the passes'
        small operands (with their graph to θ, or what computes their gradient) for
        :meth:`backward`."""
        with torch.enable_grad():
            theta = params.detach().requires_grad_(True)
            passes, dtype = backend._plan(circuit, theta, adjoint=True)
        with torch.no_grad():
            buffers = Buffers((params.shape[0], 2**circuit.n_qubits), dtype, params.device)
            psi = forward_pass(passes, circuit.n_qubits, buffers)
            probs = squared_modulus(
                psi, out=torch.empty(psi.shape, dtype=params.dtype, device=psi.device)
            )
        ctx.save_for_backward(psi)
        ctx.theta, ctx.passes, ctx.dtype, ctx.n = theta, passes, dtype, circuit.n_qubits
        return probs

    @staticmethod
    def backward(ctx, grad_probs):  # type: ignore[override]
        """The passes un-applied in reverse to ψ and λ together; the small operands' gradients
        carried to θ (:meth:`_OperandGrads.theta_grad`)."""
        (psi,) = ctx.saved_tensors
        saved = psi
        theta, passes, dtype, n = ctx.theta, ctx.passes, ctx.dtype, ctx.n
        with torch.no_grad():
            # Separate pools: a pass on ψ must never overwrite λ, and back.
            psi_pool = Buffers(tuple(psi.shape), dtype, psi.device)
            lam_pool = Buffers(tuple(psi.shape), dtype, psi.device)
            # torch's convention for a real loss: the gradient wrt ψ is 2·∂L/∂ψ̄ = 2·g·ψ.
            lam = (2 * grad_probs).to(dtype) * psi
            operands = _OperandGrads()
            batch = psi.shape[0]
            for op in reversed(passes):
                if isinstance(op, Block):
                    w, m = op.width, op.matrix
                    rows, cols = 2 ** (n - w), 2**w
                    # Forward: out = M·V with V = (ψ_in viewed (rows, cols))ᵀ. Un-apply the
                    # unitary: ψ_in viewed = outᵀ·conj(M); the same map carries λ back.
                    psi_in = psi_pool.take(psi)
                    torch.matmul(
                        psi.view(batch, cols, rows).transpose(1, 2),
                        m.conj(),
                        out=psi_in.view(batch, rows, cols),
                    )
                    lam_out = lam.view(batch, cols, rows)
                    grad = torch.matmul(lam_out, psi_in.view(batch, rows, cols).conj())
                    operands.add(op, (m,), (grad,))
                    lam_in = lam_pool.take(lam)
                    torch.matmul(
                        lam_out.transpose(1, 2), m.conj(), out=lam_in.view(batch, rows, cols)
                    )
                    psi, lam = psi_in, lam_in
                elif isinstance(op, Negate):
                    if psi is saved:
                        psi = psi_pool.take().copy_(psi)
                    psi = negate_pairs(psi, n, op.pairs)
                    lam = negate_pairs(lam, n, op.pairs)
                elif isinstance(op, CNOTRun):
                    psi = apply_cnots(psi, op, psi_pool, inverse=True)
                    lam = apply_cnots(lam, op, lam_pool, inverse=True)
                else:
                    grid = lam.view(batch, op.left.shape[1], -1)
                    left = torch.matmul(grid, op.right.conj().unsqueeze(-1)).squeeze(-1)
                    right = torch.matmul(op.left.conj().unsqueeze(1), grid).squeeze(1)
                    operands.add(op, (op.left, op.right), (left, right))
        return operands.theta_grad(theta), None, None


class _OperandGrads:
    """The small operands' gradients as the backward meets the passes (last first). Passes
    that are views of one run's :class:`qhn.backends.torch_plan.Operands` are joined into that
    run's entries, in their order there (pass order), so autograd carries one tensor per run."""

    def __init__(self) -> None:
        self.operands: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []
        self.runs: dict[int, tuple[Operands, list[torch.Tensor]]] = {}

    def add(self, op, operands: tuple[torch.Tensor, ...], grads: tuple[torch.Tensor, ...]):
        if op.source is None:
            self.operands += operands
            self.grads += grads
            return
        parts = self.runs.setdefault(id(op.source), (op.source, []))[1]
        parts += [g.reshape(g.shape[0], -1) for g in reversed(grads)]

    def theta_grad(self, theta: torch.Tensor) -> torch.Tensor:
        """``dL/dθ``, like ``theta``: each run's part from its :class:`Operands` where they
        compute it, the rest by :func:`carry_to_theta`."""
        operands, grads = list(self.operands), list(self.grads)
        direct = torch.zeros_like(theta)
        for source, parts in self.runs.values():
            grad = torch.cat(parts[::-1], 1) if len(parts) > 1 else parts[0]
            if source.template is not None:
                source.add_theta_grad(grad, direct)
            else:
                operands.append(source.entries)
                grads.append(grad)
        return direct + carry_to_theta(theta, operands, grads) if operands else direct


def carry_to_theta(
    theta: torch.Tensor, operands: list[torch.Tensor], grads: list[torch.Tensor]
) -> torch.Tensor:
    """The adjoint's last step: autograd from the gradients of the small operands (block
    matrices, gate matrices, product halves; built from ``theta`` with their graph) to θ. Zeros
    where no operand depends on θ. The operands' graph is kept (it is small), so the caller's
    graph can be differentiated again (``retain_graph=True``). Shapes: ``grads[i]`` like
    ``operands[i]`` → like ``theta``."""
    pairs = [(t, g) for t, g in zip(operands, grads, strict=True) if t.requires_grad]
    if not pairs:
        return torch.zeros_like(theta)
    # One real scalar Σ_i Re Σ t_i·conj(g_i), whose gradient in each t_i is g_i: autograd.grad
    # with explicit output gradients imports torch.fx's symbolic shapes (and sympy) on its first
    # call, 0.5 s of a short run.
    with torch.enable_grad():  # a Function's backward runs without grad mode
        inner = sum(
            (t * g.conj()).real.sum() if t.is_complex() else (t * g).sum() for t, g in pairs
        )
    (grad,) = torch.autograd.grad(inner, theta, allow_unused=True, retain_graph=True)
    return torch.zeros_like(theta) if grad is None else grad
