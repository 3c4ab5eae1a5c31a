"""Drawing measurement outcomes from a probability vector."""

from __future__ import annotations

import torch

from qhn.backends.base import check_shots, log2_exact
from qhn.bits import index_to_bits

__all__ = ["sample_bits", "sample_indices"]


def sample_indices(
    probs: torch.Tensor, shots: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw basis indices by inverting the cumulative distribution.

    Works for any length (``torch.multinomial`` stops at 2^24 categories) and is reproducible
    bit for bit given ``generator``. Shapes: ``(B, 2**n)`` → ``(B, shots)`` int64.
    """
    check_shots(shots)
    probs = probs.detach()
    cdf = torch.cumsum(probs.to(torch.float64), dim=-1)
    u = torch.rand(
        probs.shape[0], shots, generator=generator, dtype=torch.float64, device=probs.device
    )
    idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return idx.clamp_(max=probs.shape[-1] - 1)


def sample_bits(
    probs: torch.Tensor, shots: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw measured bitstrings. Shapes: ``(B, 2**n)`` → ``(B, shots, n)`` uint8."""
    n = log2_exact(probs.shape[-1])
    return index_to_bits(sample_indices(probs, shots, generator=generator), n)
