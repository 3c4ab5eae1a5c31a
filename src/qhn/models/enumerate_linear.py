"""The cost of every network without a hidden layer (logistic / softmax regression), as outer sums.

A network ``d → K`` has logits linear in its parameter bits: with the alphabet ``(w₀, w₁)`` and
``w_q = w₀ + (w₁ − w₀) s_q``,

``z(s) = a · Σ_q w_q G_q``,  ``G_q = x[:, i] e_k`` for the weight ``W[i, k]``, ``G_q = e_k`` for
the bias ``b[k]``,

where ``a`` is the network's ``output_scale`` (1 for a plain :class:`BinaryNetwork`) and each
``G_q`` is a ``(B, K)`` block. Splitting the ``P`` parameter bits into the ``h`` most significant
(*high*) and the ``l = P − h`` least significant (*low*) ones, ``z = Z_hi[u] + Z_lo[v]`` for the
high pattern ``u`` and low pattern ``v``. ``Z_lo`` (``2^l`` blocks) is computed once and kept
cache-sized; each chunk of high patterns is one small matrix product, then one broadcast add
gives the logits of ``m · 2^l`` networks, then the loss. No bitstring is decoded, and the work is
one add and one loss evaluation per (network, example): the floor of any exact enumeration.

A sigmoid output with cross-entropy takes two more shortcuts. The label sign ``t_b = 1 − 2y_b``
is folded into ``G`` (``u_b = t_b z_b``, loss ``softplus(u_b) = log(1 + e^{u_b})``). And with a
symmetric alphabet (``w₀ = −w₁``) the complement ``s̄`` of the parameter bits negates every
logit, so, from ``softplus(−u) = softplus(u) − u``,

``C(s̄) = C(s) − (1/B) Σ_b u_b(s)``,

where the mean of ``u`` is itself an outer sum of two short vectors. Only the half of the high
patterns with a leading 0 is evaluated; the other half costs one subtraction per network. Its
rounding error is about ``ε · (C(s) + |mean u|)``, not ``ε · C(s̄)``: far below the landscape's
``1e-9`` tolerances.

Index order (:mod:`qhn.bits`): the parameter bits come first (most significant), the two
alphabet bits (when present) last, so the costs viewed as ``(2^h, 2^l, A)`` are indexed by
(high pattern, low pattern, alphabet choice).
"""

from __future__ import annotations

import math

import torch

from qhn.bits import bits_to_weights, index_to_bits
from qhn.errors import MemoryBudgetError
from qhn.models.losses import per_example_loss
from qhn.models.network import ALPHABETS, BinaryNetwork

__all__ = ["enumerate_linear_costs", "rows_that_fit"]

#: Target bytes of one block of logits: cache-sized, yet large enough to amortise each torch call.
TARGET_BLOCK_BYTES = 2**22
#: Block-sized tensors alive at once: the logits block and the loss temporaries
#: (softmax cross-entropy: log-softmax, gather, and torch's own scratch), plus ``Z_lo``.
_GENERIC_BLOCKS = 6
#: The sigmoid cross-entropy path works in place: the block and ``Z_lo``.
_SIGMOID_CE_BLOCKS = 2


def rows_that_fit(
    layer_sizes: tuple[int, ...], n_examples: int, fixed_bytes: int, row_bytes: int, max_bytes: int
) -> int:
    """How many rows of ``row_bytes`` fit in ``max_bytes`` beside ``fixed_bytes`` of scratch;
    :class:`MemoryBudgetError` (before any compute) when not even one does. Shared by both
    enumeration paths (:mod:`qhn.models.enumerate`)."""
    fit = (max_bytes - fixed_bytes) // row_bytes
    if fit < 1:
        raise MemoryBudgetError(
            f"enumerating {layer_sizes} on {n_examples} examples needs at least "
            f"{fixed_bytes + row_bytes:,} bytes of scratch, over the remaining budget of "
            f"{max_bytes:,} bytes"
        )
    return fit


def enumerate_linear_costs(
    network: BinaryNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    *,
    chunk_size: int | None,
    max_bytes: int,
) -> torch.Tensor:
    """``C(s)`` for all ``2^n`` bitstrings of a network without a hidden layer (validated inputs).

    ``chunk_size``: networks per block (default: a block of logits of about
    :data:`TARGET_BLOCK_BYTES`); ``max_bytes``: scratch beyond the returned vector, refused with
    :class:`MemoryBudgetError` before computing when not even one network fits.

    Shapes: ``x (B, d)`` floating, ``y (B,)`` int64 → ``(2**n,)`` in ``x``'s dtype.
    """
    assert network.n_layers == 1
    layout = network.bit_layout
    n_examples, n_outputs = x.shape[0], network.n_outputs
    dtype, itemsize = x.dtype, x.element_size()
    n_params = network.n_bits - (2 if layout.alphabet is not None else 0)
    sigmoid_ce = n_outputs == 1 and loss == "cross_entropy"

    network_bytes = n_examples * n_outputs * itemsize
    fixed_bytes = 2 * n_params * network_bytes  # G and one chunk of Z_hi (at most P rows each)
    per_network = network_bytes * (_SIGMOID_CE_BLOCKS if sigmoid_ce else _GENERIC_BLOCKS)
    fit = rows_that_fit(network.layer_sizes, n_examples, fixed_bytes, per_network, max_bytes)
    block = chunk_size if chunk_size is not None else max(1, TARGET_BLOCK_BYTES // network_bytes)
    block = min(block, fit)
    n_low = min(n_params - 1, int(math.log2(block)))
    rows = max(1, block >> n_low)  # high patterns per block
    n_high = n_params - n_low

    contributions = _contributions(network, x, y if sigmoid_ce else None)  # (P, B·K)
    contributions *= float(getattr(network, "output_scale", 1.0))
    alphabets = (
        [ALPHABETS[i] for i in range(4)] if layout.alphabet is not None else [network.alphabet]
    )
    costs = torch.empty(2**network.n_bits, dtype=dtype)
    view = costs.view(2**n_high, 2**n_low, len(alphabets))
    high_patterns, low_patterns = _patterns(n_high), _patterns(n_low)
    # One preallocated block: a fresh multi-MiB tensor per block would be page-faulted in each time.
    buffer = torch.empty(rows, 2**n_low, n_examples * n_outputs, dtype=dtype)
    for a, alphabet in enumerate(alphabets):
        low = bits_to_weights(low_patterns, alphabet, dtype=dtype) @ contributions[n_high:]
        high_weights = bits_to_weights(high_patterns, alphabet, dtype=dtype)
        symmetric = sigmoid_ce and float(alphabet[0]) == -float(alphabet[1])
        stop = 2 ** (n_high - 1) if symmetric else 2**n_high
        for first in range(0, stop, rows):
            last = min(first + rows, stop)
            high = high_weights[first:last] @ contributions[:n_high]  # (m, B·K)
            logits = torch.add(high[:, None, :], low[None, :, :], out=buffer[: last - first])
            if sigmoid_ce:
                torch.logaddexp(logits, logits.new_zeros(()), out=logits)
                block_costs = logits.sum(-1) / n_examples
            else:
                shaped = logits.view(last - first, 2**n_low, n_examples, n_outputs)
                block_costs = per_example_loss(shaped, y, loss).sum(-1) / n_examples
            view[first:last, :, a] = block_costs
            if symmetric:
                mean_u = high.mean(-1)[:, None] + low.mean(-1)[None, :]
                complement = (block_costs - mean_u).flip(0).flip(1)
                view[2**n_high - last : 2**n_high - first, :, a] = complement
    return costs


def _patterns(n_bits: int) -> torch.Tensor:
    """Every bitstring of ``n_bits`` (possibly 0) in index order. Shapes: → ``(2**n, n)``."""
    if n_bits == 0:
        return torch.zeros(1, 0, dtype=torch.uint8)
    return index_to_bits(torch.arange(2**n_bits), n_bits)


def _contributions(network: BinaryNetwork, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """``G_q`` of every parameter bit ``q`` flattened to ``B·K`` (times the label sign ``t_b``
    when ``y`` is given, for a sigmoid output). Shapes: → ``(P, B·K)``."""
    layout = network.bit_layout
    n_inputs, n_outputs = network.layer_sizes
    n_examples = x.shape[0]
    n_params = n_inputs * n_outputs + (n_outputs if layout.biases is not None else 0)
    blocks = torch.zeros(n_params, n_examples, n_outputs, dtype=x.dtype)
    start = layout.weights[0][0]
    for i in range(n_inputs):
        for k in range(n_outputs):
            blocks[start + i * n_outputs + k, :, k] = x[:, i]
    if layout.biases is not None:
        for k in range(n_outputs):
            blocks[layout.biases[0][0] + k, :, k] = 1.0
    if y is not None:
        blocks *= (1.0 - 2.0 * y.to(x.dtype))[None, :, None]
    return blocks.reshape(n_params, n_examples * n_outputs)
