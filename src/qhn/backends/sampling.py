"""Drawing measurement outcomes from a probability vector."""

from __future__ import annotations

import torch

from qhn.backends.base import check_shots, log2_exact
from qhn.bits import index_to_bits

__all__ = ["sample_bits", "sample_indices"]


#: Vectors up to this length are sampled with one full cumulative sum; longer ones in two levels.
TWO_LEVEL_MIN = 2**16


def sample_indices(
    probs: torch.Tensor,
    shots: int,
    *,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw basis indices by inverting the cumulative distribution.

    Each shot's uniform ``u`` picks the first index whose cumulative probability exceeds
    ``u·Σq``. Long vectors (over :data:`TWO_LEVEL_MIN`) do it in two levels, without a ``2^n``
    cumulative sum: rows of ``w = 2^⌈n/2⌉`` entries are summed (one read pass), ``u`` picks a
    row from the cumulative row sums, and only the picked rows (at most ``shots`` per circuit)
    are summed cumulatively to find the entry. Works for any length (``torch.multinomial`` stops
    at 2^24 categories) and is reproducible bit for bit given ``generator``. ``uniforms``
    ``(B, shots)`` float64: the uniforms to use instead of drawing them from ``generator``.

    Shapes: ``(B, 2**n)`` → ``(B, shots)`` int64.
    """
    check_shots(shots)
    probs = probs.detach()
    batch, size = probs.shape
    if uniforms is None:
        u = torch.rand(batch, shots, generator=generator, dtype=torch.float64, device=probs.device)
    else:
        u = uniforms
    if size <= TWO_LEVEL_MIN:
        cdf = torch.cumsum(probs.to(torch.float64), dim=-1)
        idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
        return idx.clamp_(max=size - 1)
    width = 2 ** -(-log2_exact(size) // 2)
    rows = size // width
    grid = probs.reshape(batch * rows, width)
    totals = grid.sum(-1, dtype=torch.float64).view(batch, rows)
    cdf = totals.cumsum(-1)
    target = u * cdf[:, -1:]
    row = torch.searchsorted(cdf, target, right=True).clamp_(max=rows - 1)
    residual = target - (cdf.gather(1, row) - totals.gather(1, row))
    flat = (row + rows * torch.arange(batch, device=probs.device)[:, None]).reshape(-1)
    picked, which = torch.unique(flat, return_inverse=True)
    # One increasing sequence over the picked rows; each shot searches from its row's start.
    within = grid[picked].to(torch.float64).reshape(-1).cumsum(0)
    starts = torch.arange(picked.numel(), device=probs.device) * width
    before = torch.cat([within.new_zeros(1), within])[starts]
    hit = torch.searchsorted(within, before[which] + residual.reshape(-1), right=True)
    offset = (hit - starts[which]).clamp_(0, width - 1)
    return (row * width + offset.view(batch, shots)).clamp_(max=size - 1)


def sample_bits(
    probs: torch.Tensor, shots: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw measured bitstrings. Shapes: ``(B, 2**n)`` → ``(B, shots, n)`` uint8."""
    n = log2_exact(probs.shape[-1])
    return index_to_bits(sample_indices(probs, shots, generator=generator), n)
