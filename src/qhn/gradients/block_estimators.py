"""Sampled gradients of ``E_q[f]`` for block-factorized hypernetworks (exact block probabilities).

Both rules return a *surrogate* whose gradient is an unbiased estimate of ``∇θ E_q[f]``, for
``q(s) = Π_b q_b(s_b)`` (:class:`~qhn.block_hypernetwork.BlockHypernetwork`) and ``S`` networks
``s^(1..S) ∼ q`` drawn without gradient.

**Score function** with a leave-one-out baseline (METHOD.md §3):
``ĝ = (1/S) Σ_j (f_j − b_j) ∇ log q(s^(j))``, ``b_j = (Σ_k f_k − f_j)/(S − 1)``; ``log q`` is
exact (a sum over blocks). ``S`` evaluations of ``f``.

**Local expectation** (Titsias & Lázaro-Gredilla 2015; METHOD.md §8), per bit through the
autoregressive conditionals of its block. Write block ``b`` in its own order,
``q_b(s_b) = Π_i q_b(s_i | s_{<i})``, every conditional exact from the block's marginals. Then

    ``∇ E_q[f] = Σ_b Σ_i E_{s∼q}[ ∇q_b(1 | s_{<i}) · (F_1 − F_0) ]``,
    ``F_v = E[f | s_{<i}, s_i = v]``,

where each inner expectation is over the block's suffix ``s_{>i}`` given its prefix (and over the
other blocks, independent). For a sampled ``s`` the branch ``s_i`` already has such a suffix: the
sample itself; the other branch ``1 − s_i`` gets a fresh suffix drawn from
``q_b(· | s_{<i}, 1 − s_i)``, so both branches are exact draws and the estimate is unbiased.
When the block is a product state (no entangling gate) the suffix does not depend on ``s_i`` and
is kept (lower variance, still unbiased): the exact two-point difference of the mean-field case.
``S·(n + 1)`` evaluations of ``f``, all in one batched call, with the same data minibatch
(common random numbers); ``f`` is evaluated in chunks of ``chunk`` networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qhn.errors import ConfigError

__all__ = ["BLOCK_ESTIMATORS", "local_expectation_surrogate", "score_function_surrogate"]

BLOCK_ESTIMATORS = ("local-expectation", "score-function")

BitFunction = Callable[[torch.Tensor], torch.Tensor]


def score_function_surrogate(log_q: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``(1/S) Σ_j (f_j − b_j) log q(s^(j))`` with the leave-one-out baseline ``b_j``.

    Shapes: ``log_q (..., S)`` differentiable, ``values (..., S)`` → ``(...)``.
    """
    shots = values.shape[-1]
    if shots < 2:
        raise ConfigError(f"the score-function estimator needs shots >= 2, got {shots}")
    values = values.detach()
    baseline = (values.sum(-1, keepdim=True) - values) / (shots - 1)
    return ((values - baseline) * log_q).mean(-1)


def _branches(
    q: torch.Tensor, block_bits: torch.Tensor, i: int, resample: bool, generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """For bit ``i`` of every block of one group: ``q_b(1 | s_{<i})`` (differentiable) and the
    block's bits in the flipped branch (``1 − s_i``, suffix redrawn when ``resample``).

    Shapes: ``q (K, 2^m)``, ``block_bits (S, K, m)`` int64 → ``(S, K)``, ``(S, K, m)``.
    """
    shots, k, m = block_bits.shape
    rest = m - i - 1
    weights = 2 ** torch.arange(i - 1, -1, -1)
    prefix = (block_bits[..., :i] * weights).sum(-1)  # (S, K); 0 when i = 0
    marginal = q.reshape(k, 2**i, 2, 2**rest).sum(-1)  # (K, 2^i, 2)
    rows = torch.arange(k)[None, :].expand(shots, k)
    pair = marginal[rows, prefix]  # (S, K, 2)
    tiny = torch.finfo(q.dtype).tiny
    cond_one = pair[..., 1] / (pair[..., 0] + pair[..., 1]).clamp_min(tiny)
    flipped = block_bits.clone()
    flipped[..., i] = 1 - block_bits[..., i]
    if resample and rest:
        with torch.no_grad():
            suffix = q.detach().reshape(k, 2 ** (i + 1), 2**rest)
            head = prefix * 2 + flipped[..., i]
            conditional = suffix[rows, head]  # (S, K, 2^rest)
            cdf = torch.cumsum(conditional, -1)
            u = torch.rand(shots, k, 1, generator=generator, dtype=cdf.dtype) * cdf[..., -1:]
            index = torch.searchsorted(cdf, u).clamp_max(2**rest - 1).squeeze(-1)
            shifts = torch.arange(rest - 1, -1, -1)
            flipped[..., i + 1 :] = (index[..., None] >> shifts) & 1
    return cond_one, flipped


def local_expectation_surrogate(
    model,
    probs: list[torch.Tensor],
    bits: torch.Tensor,
    f: BitFunction,
    *,
    generator: torch.Generator | None = None,
    chunk: int = 512,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The local-expectation surrogate (module docstring), ``f`` at the samples, and the number
    of evaluations of ``f`` spent.

    ``model`` is a :class:`~qhn.block_hypernetwork.BlockHypernetwork`, ``probs`` its
    :meth:`block_probs` (differentiable). Shapes: ``bits (S, n)`` uint8 → ``()``, ``(S,)``, int.
    """
    shots, n = bits.shape
    flips = bits[:, None, :].expand(shots, n, n).clone()  # flips[:, q] = s with bit q's branch
    sign = torch.empty(shots, n, dtype=torch.float64)
    cond: list[tuple[torch.Tensor, torch.Tensor]] = []  # (positions (K,), q(1|prefix) (S, K))
    long_bits = bits.long()
    for group, q in zip(model.groups, probs, strict=True):
        columns = group.columns  # (K, m)
        block_bits = long_bits[:, columns]  # (S, K, m)
        resample = group.entangled
        for i in range(group.size):
            cond_one, flipped = _branches(q, block_bits, i, resample, generator)
            positions = columns[:, i]
            flips[:, positions[:, None].expand_as(columns), columns] = flipped.to(torch.uint8)
            sign[:, positions] = 2.0 * block_bits[..., i].double() - 1.0
            cond.append((positions, cond_one))
    everything = torch.cat([bits, flips.reshape(shots * n, n)])
    values = torch.cat([f(everything[j : j + chunk]) for j in range(0, everything.shape[0], chunk)])
    at_samples = values[:shots].detach()
    at_flips = values[shots:].reshape(shots, n).detach()
    # f(s_i = 1 branch) − f(s_i = 0 branch): the sample is the branch s_i, the flip the other.
    difference = sign * (at_samples[:, None] - at_flips)
    surrogate = torch.zeros((), dtype=torch.float64)
    for positions, cond_one in cond:
        surrogate = surrogate + (cond_one * difference[:, positions]).sum(-1).mean()
    return surrogate, values[:shots], int(everything.shape[0])
