"""Shannon entropy of an explicit distribution, with a gradient that stays finite on its zeros."""

from __future__ import annotations

import torch

__all__ = ["entropy", "neg_entropy"]


def entropy(q: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats, ``H(q) = −Σ_s q(s) log q(s)`` (``0 log 0 = 0``).

    Shapes: ``(..., 2**n)`` → ``(...)``."""
    return -neg_entropy(q)


def neg_entropy(q: torch.Tensor) -> torch.Tensor:
    """``Σ_s q(s) log q(s)`` (``0 log 0 = 0``), differentiable in ``q`` with gradient
    ``log q(s) + 1``, and ``1`` where ``q(s) = 0`` (finite: there ``∂q/∂θ = 0`` for a circuit's
    ``q``, so a NaN or ``−∞`` would poison the chain rule for nothing).

    One logarithm per entry, kept for the backward (``torch.xlogy`` takes one in the forward
    and another in the backward). Once differentiable. Shapes: ``(..., 2**n)`` → ``(...)``.
    """
    return _NegEntropy.apply(q)


class _NegEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q):  # type: ignore[override]
        log_q = torch.where(q > 0, q, 1.0).log_()
        ctx.save_for_backward(log_q)
        return torch.linalg.vecdot(q, log_q)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        (log_q,) = ctx.saved_tensors
        return grad.unsqueeze(-1) * (log_q + 1)
