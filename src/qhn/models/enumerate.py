"""The cost ``C(s)`` of every network ``s``: the full landscape of a small binary network.

``enumerate_costs`` returns ``C(s)`` for all ``2^n`` bitstrings in index order (:mod:`qhn.bits`).

**Networks with a hidden layer** (``… → F → H → K``, the last hidden layer having ``H`` units fed
by ``F`` features) take a fast path built on two facts:

1. A unit ``j`` of the last hidden layer is fully described by its *type* ``t_j``: the bits of its
   incoming weights ``W[:, j]``, its bias ``b[j]`` and its outgoing weights ``W_out[j, :]``
   (``T = 2^(F + bias + K)`` types). Its pre-activation depends only on the incoming part, so each
   activation column ``φ(f · w + b)`` is computed once per incoming combination (``2^(F+bias)``
   columns of length ``B``), and the unit's contribution to the logits is
   ``V[t] = φ(f · w_t + b_t) ⊗ W_out,t``, a ``(B, K)`` block.
2. The logits ``z = Σ_j V[t_j] + b_out`` do not depend on the order of the units, so every
   network with the same *multiset* of unit types (and the same output bias and *prefix*) has the
   same cost. There are ``C(T + H − 1, H)`` multisets instead of ``T^H`` ordered tuples: for the
   18-bit Gaussian network (``2 → 4 → 1``) 3,876 instead of 65,536.

The *prefix* is every other bit: the activation and alphabet bits and, in deeper networks, all
layers before the last hidden one. Each prefix is decoded once and its features ``f`` (the input
``x`` for one hidden layer) computed once. So the costs are computed once per (prefix, output bias,
multiset), chunked over multisets so that each block of logits stays a few MiB, and then gathered
into all ``2^n`` positions by index arithmetic: read each bitstring's unit types, sort them, and
look up the multiset. The sum over units is a matrix product (type multiplicities @ ``V``).

**Networks without a hidden layer** (logistic / softmax regression) have logits linear in the
bits: :mod:`qhn.models.enumerate_linear` sums them from two halves of the bits (an outer sum).
Networks with more than ``2^12`` prefixes fall back to chunked batched evaluation with
:meth:`BinaryNetwork.mean_loss`.

``enumerate_costs_naive`` is the plain per-network NumPy loop: the benchmark baseline and a test
oracle.

Caveat: the fast path sums the logits in a different order from the batched forward pass, so the two
agree to rounding (~1e-15 relative), not bit for bit; with the ``sign`` activation a pre-activation
that cancels to within rounding of 0 could in principle land on different sides of 0.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import torch

from qhn.bits import MAX_INDEX_BITS, bits_to_weights, index_to_bits, iter_bit_chunks
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.models.enumerate_linear import enumerate_linear_costs, rows_that_fit
from qhn.models.losses import check_loss, per_example_loss
from qhn.models.network import (
    DEFAULT_MAX_BYTES,
    HIDDEN_ACTIVATIONS,
    BinaryNetwork,
    activation_function,
)
from qhn.threads import torch_threads

__all__ = ["enumerate_costs", "enumerate_costs_naive"]

logger = logging.getLogger(__name__)

#: Target size of one block of logits (all output-bias options) in the fast path: a few MiB, so
#: that it stays in cache and yet each torch call does enough work to amortise its overhead.
_TARGET_BLOCK_BYTES = 2**22
#: Up to this many unit types the sum over hidden units is a matrix product with type counts;
#: beyond it, a gather per hidden unit does fewer flops.
_MATMUL_MAX_TYPES = 64
#: Bitstrings decoded at a time when gathering costs or falling back to batched evaluation.
_INDEX_CHUNK = 2**16
#: The fast path loops over prefixes in Python; beyond this many prefix bits batched evaluation
#: is used instead.
_MAX_PREFIX_BITS = 12


def enumerate_costs(
    network: BinaryNetwork,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    loss: str,
    *,
    chunk_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    threads: int | None = 1,
) -> torch.Tensor:
    """``C(s)`` — the mean per-example ``loss`` over ``(x, y)`` — for every bitstring ``s``.

    Equals ``network.mean_loss(all_bits(n), x, y, loss)`` (to rounding). ``chunk_size``: multisets
    of hidden units per block in the fast path, networks per block without a hidden layer,
    networks per batch in the fallback (default: sized from ``max_bytes`` and cache).
    ``max_bytes`` bounds the result plus scratch; a request whose result or smallest block does
    not fit raises :class:`MemoryBudgetError` before computing.

    ``threads``: torch intra-op threads for the fast paths (all but the fallback), set for
    the duration of the call and restored afterwards (``None``: keep the caller's setting). The
    default 1 is deliberate: that path works on cache-sized blocks, where a second thread gains at
    most 2× but, on a machine whose cores are oversubscribed, OpenMP synchronisation made it up to
    20× slower (18-bit Gaussian network on the shared 2-core development machine: 0.4-14 s with
    2 threads, 0.7-1.0 s with 1).
    Changing the thread count is process-wide, so do not call this while another Python thread
    runs torch work.

    Shapes: ``x (B, d)``, ``y (B,)`` → ``(2**n,)`` in ``x``'s floating dtype (float64 by default).
    """
    check_loss(loss)
    x = network.check_inputs(x)
    y = network.check_labels(y, x.shape[0])
    if x.shape[0] == 0:
        raise ConfigError("need at least one example")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    n_bits = network.n_bits
    if n_bits > MAX_INDEX_BITS:
        raise MemoryBudgetError(f"cannot enumerate 2^{n_bits} networks")
    result_bytes = 2**n_bits * x.element_size()
    if result_bytes > max_bytes:
        raise MemoryBudgetError(
            f"the costs of all 2^{n_bits} networks need {result_bytes:,} bytes, over the budget "
            f"of {max_bytes:,} bytes"
        )
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
    if network.n_layers == 1:
        with torch_threads(threads):
            return enumerate_linear_costs(
                network, x, y, loss, chunk_size=chunk_size, max_bytes=max_bytes - result_bytes
            )
    if network.n_layers >= 2 and _n_prefix_bits(network) <= _MAX_PREFIX_BITS:
        with torch_threads(threads):
            return _last_hidden_layer(network, x, y, loss, chunk_size, max_bytes - result_bytes)
    return _batched(network, x, y, loss, chunk_size, max_bytes - result_bytes)


def _n_prefix_bits(network: BinaryNetwork) -> int:
    """Bits outside the last hidden layer's units and the output bias (see the module docstring)."""
    sizes = network.layer_sizes
    per_unit = sizes[-3] + int(network.bias) + sizes[-1]
    return network.n_bits - sizes[-2] * per_unit - (sizes[-1] if network.bias else 0)


def _batched(network, x, y, loss, chunk_size, max_bytes) -> torch.Tensor:
    costs = torch.empty(2**network.n_bits, dtype=x.dtype)
    batch = chunk_size if chunk_size is not None else _INDEX_CHUNK
    for first, bits in iter_bit_chunks(network.n_bits, batch):
        costs[first : first + bits.shape[0]] = network.mean_loss(
            bits, x, y, loss, max_bytes=max_bytes
        )
    return costs


def _last_hidden_layer(network, x, y, loss, chunk_size, max_bytes) -> torch.Tensor:
    sizes, layout = network.layer_sizes, network.bit_layout
    last = network.n_layers - 1  # the output layer; layer last − 1 is the last hidden layer
    scale = float(getattr(network, "output_scale", 1.0))  # ScaledBinaryNetwork's logit factor
    n_features, n_hidden, n_outputs = sizes[-3], sizes[-2], sizes[-1]
    n_examples = x.shape[0]
    has_bias = layout.biases is not None
    dtype, itemsize = x.dtype, x.element_size()

    in_bits = n_features + int(has_bias)  # bits feeding one unit of the last hidden layer
    type_bits = in_bits + n_outputs
    n_types = 2**type_bits
    n_multisets = math.comb(n_types + n_hidden - 1, n_hidden)
    n_out_options = 2**n_outputs if has_bias else 1

    # Unit type t = (incoming bits, outgoing bits) read as a binary number, most significant first.
    hidden_w, out_w = layout.weights[last - 1][0], layout.weights[last][0]
    type_positions = []
    for j in range(n_hidden):
        positions = [hidden_w + i * n_hidden + j for i in range(n_features)]
        if has_bias:
            positions.append(layout.biases[last - 1][0] + j)
        positions += [out_w + j * n_outputs + k for k in range(n_outputs)]
        type_positions.append(positions)
    out_bias_positions = list(range(*layout.biases[last])) if has_bias else []
    # Everything else (earlier layers, activation and alphabet bits) is the prefix.
    taken = {p for row in type_positions for p in row} | set(out_bias_positions)
    prefix_positions = [p for p in range(network.n_bits) if p not in taken]
    assert len(prefix_positions) == _n_prefix_bits(network)
    n_prefixes = 2 ** len(prefix_positions)

    block_row_bytes = n_examples * n_outputs * itemsize
    # Per multiset: its logits, and per output-bias option a shifted copy plus loss temporaries.
    row_bytes = block_row_bytes * (1 + 4 * n_out_options) + n_types * itemsize
    fixed_bytes = (
        n_prefixes * n_out_options * n_multisets * itemsize  # the table of distinct costs
        + n_types * block_row_bytes  # the unit contributions V
        + 3 * 2**in_bits * n_examples * itemsize  # pre-activations and an activation table
        + n_multisets * (n_hidden + 1) * 8  # the multisets and their codes
        + _INDEX_CHUNK * (network.n_bits + 4 * n_hidden) * 8  # gathering scratch
    )
    rows_fit = rows_that_fit(sizes, n_examples, fixed_bytes, row_bytes, max_bytes)
    if chunk_size is None:
        chunk_size = max(1, _TARGET_BLOCK_BYTES // (n_out_options * block_row_bytes))
    rows = min(chunk_size, rows_fit, n_multisets)

    multisets = torch.tensor(
        list(itertools.combinations_with_replacement(range(n_types), n_hidden)), dtype=torch.int64
    )  # (M, H), sorted rows in lexicographic order
    radix = n_types ** torch.arange(n_hidden - 1, -1, -1, dtype=torch.int64)
    multiset_codes = multisets @ radix  # ascending
    in_patterns = index_to_bits(torch.arange(2**in_bits), in_bits)
    out_patterns = index_to_bits(torch.arange(2**n_outputs), n_outputs)
    table = torch.empty(n_prefixes, n_out_options, n_multisets, dtype=dtype)

    prefix_bits = torch.zeros(n_prefixes, network.n_bits, dtype=torch.uint8)
    if prefix_positions:
        prefix_bits[:, prefix_positions] = index_to_bits(
            torch.arange(n_prefixes), len(prefix_positions)
        )
    for p in range(n_prefixes):
        # The prefix fixes the alphabet, the activation and every layer before the last hidden one.
        decoded = network.decode(prefix_bits[p : p + 1], dtype=dtype)
        alphabet = tuple(decoded.alphabet[0].tolist())
        activation = activation_function(HIDDEN_ACTIVATIONS[int(decoded.activation[0])])
        features = x
        for layer in range(last - 1):
            features = features @ decoded.weights[layer][0]
            if has_bias:
                features = features + decoded.biases[layer][0]
            features = activation(features)
        incoming = bits_to_weights(in_patterns, alphabet, dtype=dtype)  # (C, in_bits)
        pre = features @ incoming[:, :n_features].T  # (B, C)
        if has_bias:
            pre = pre + incoming[:, n_features]
        hidden = activation(pre).T  # (C, B)
        outgoing = bits_to_weights(out_patterns, alphabet, dtype=dtype)  # (2^K, K)
        output_biases = outgoing if has_bias else torch.zeros(1, n_outputs, dtype=dtype)
        # V[t] for t = (incoming combination c, outgoing pattern o): hidden[c] ⊗ outgoing[o].
        flat = (hidden[:, None, :, None] * outgoing[None, :, None, :]).reshape(
            n_types, n_examples * n_outputs
        )
        for first in range(0, n_multisets, rows):
            stop = min(first + rows, n_multisets)
            members = multisets[first:stop]
            if n_types <= _MATMUL_MAX_TYPES:
                # Σ_j V[t_j] as (multiplicity of each type) @ V: one BLAS call per block.
                counts = torch.zeros(stop - first, n_types, dtype=dtype)
                counts.scatter_add_(1, members, torch.ones(members.shape, dtype=dtype))
                block = counts @ flat
            else:
                block = flat[members[:, 0]]
                for j in range(1, n_hidden):
                    block += flat[members[:, j]]
            block = block.view(stop - first, n_examples, n_outputs)
            shifted = block.unsqueeze(0) + output_biases[:, None, None, :]  # (O, rows, B, K)
            if scale != 1.0:
                shifted = shifted * scale
            table[p, :, first:stop] = per_example_loss(shifted, y, loss).sum(-1) / n_examples

    costs = torch.empty(2**network.n_bits, dtype=dtype)
    type_positions = torch.tensor(type_positions)  # (H, type_bits)
    type_place = 2 ** torch.arange(type_bits - 1, -1, -1)
    out_place = 2 ** torch.arange(n_outputs - 1, -1, -1)
    prefix_place = 2 ** torch.arange(len(prefix_positions) - 1, -1, -1)
    for first, bits in iter_bit_chunks(network.n_bits, _INDEX_CHUNK):
        bits = bits.long()
        types = (bits[:, type_positions] * type_place).sum(-1)  # (c, H)
        multiset = torch.searchsorted(multiset_codes, torch.sort(types, dim=1).values @ radix)
        prefix = bits[:, prefix_positions] @ prefix_place if prefix_positions else 0
        out_option = bits[:, out_bias_positions] @ out_place if has_bias else 0
        costs[first : first + bits.shape[0]] = table[prefix, out_option, multiset]
    logger.debug(
        "enumerated %d networks through %d prefixes x %d multisets of hidden units",
        2**network.n_bits,
        n_prefixes,
        n_multisets,
    )
    return costs


# --------------------------------------------------------------------------- naive baseline


def _np_activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sign":
        return np.where(z >= 0, 1.0, -1.0)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z))
    return np.tanh(z)


def _np_mean_loss(logits: np.ndarray, y: np.ndarray, loss: str) -> float:
    if logits.shape[1] == 1:
        z = logits[:, 0]
        if loss == "cross_entropy":
            return float(np.mean(np.where(y == 1, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))))
        with np.errstate(over="ignore"):
            p = 1.0 / (1.0 + np.exp(-z))
        return float(np.mean((p - y) ** 2))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    if loss == "cross_entropy":
        return float(np.mean(log_norm - shifted[np.arange(len(y)), y]))
    p = np.exp(shifted - log_norm[:, None])
    p[np.arange(len(y)), y] -= 1.0
    return float(np.mean((p**2).sum(axis=1)))


def enumerate_costs_naive(
    network: BinaryNetwork,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    loss: str,
    *,
    indices: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """``C(s)`` by a plain loop over networks, one NumPy forward pass each (slow; the baseline).

    ``indices``: evaluate only these basis indices (default: all ``2^n``, in order).

    Shapes: ``x (B, d)``, ``y (B,)`` → ``(len(indices),)`` or ``(2**n,)`` float64.
    """
    check_loss(loss)
    x_np = network.check_inputs(x).to(torch.float64).numpy()
    y_np = network.check_labels(y, x_np.shape[0]).numpy()
    if indices is None:
        indices = torch.arange(2**network.n_bits)
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    costs = np.empty(len(indices))
    scale = float(getattr(network, "output_scale", 1.0))
    for first in range(0, len(indices), 4096):
        chunk = indices[first : first + 4096]
        decoded = network.decode(index_to_bits(chunk, network.n_bits))
        weights = [w.numpy() for w in decoded.weights]
        biases = [b.numpy() for b in decoded.biases] if decoded.biases is not None else None
        names = [HIDDEN_ACTIVATIONS[k] for k in decoded.activation.tolist()]
        for s in range(len(chunk)):
            h = x_np
            for layer in range(network.n_layers):
                z = h @ weights[layer][s]
                if biases is not None:
                    z = z + biases[layer][s]
                h = _np_activation(names[s], z) if layer < network.n_layers - 1 else z * scale
            costs[first + s] = _np_mean_loss(h, y_np, loss)
    return torch.from_numpy(costs)
