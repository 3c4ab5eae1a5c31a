"""Bit order, the one place it lives.

Conventions (METHOD.md §1):

- qubit ``q`` carries network parameter ``q``;
- qubit 0 is the most significant bit of the basis index:
  ``index(s) = Σ_q s_q · 2^(n−1−q)``;
- bit ``b ∈ {0, 1}`` becomes weight ``w = 2b − 1`` (``|0⟩ ↦ −1``) unless an alphabet says otherwise.

Bitstrings are ``uint8`` tensors of shape ``(..., n)``; indices are ``int64``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from qhn.errors import ConfigError, MemoryBudgetError

__all__ = [
    "MAX_INDEX_BITS",
    "all_bits",
    "bits_to_index",
    "bits_to_weights",
    "bitstring",
    "distinct_rows",
    "from_little_endian",
    "from_little_endian_bits",
    "index_to_bits",
    "iter_bit_chunks",
    "parse_bitstring",
    "place_values",
    "weights_to_bits",
]

#: Basis indices are int64, so at most 62 bits keep them positive with room to spare.
MAX_INDEX_BITS = 62


def _check_n(n_bits: int) -> None:
    if not isinstance(n_bits, int) or isinstance(n_bits, bool) or n_bits < 1:
        raise ConfigError(f"number of bits must be a positive integer, got {n_bits!r}")
    if n_bits > MAX_INDEX_BITS:
        raise ConfigError(f"at most {MAX_INDEX_BITS} bits fit in an int64 index, got {n_bits}")


def place_values(n_bits: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The weight of each bit in the basis index: ``2^(n−1−q)`` for ``q = 0..n−1``.

    Shapes: returns ``(n,)`` int64.
    """
    _check_n(n_bits)
    return 2 ** torch.arange(n_bits - 1, -1, -1, dtype=torch.int64, device=device)


def index_to_bits(index: torch.Tensor | int, n_bits: int) -> torch.Tensor:
    """Basis indices to bitstrings, qubit 0 first (most significant).

    Shapes: ``(...)`` int → ``(..., n)`` uint8.
    """
    _check_n(n_bits)
    index = torch.as_tensor(index, dtype=torch.int64)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= 2**n_bits):
        raise ConfigError(
            f"basis index out of range for {n_bits} bits: valid 0..{2**n_bits - 1}, "
            f"got values in [{int(index.min())}, {int(index.max())}]"
        )
    shifts = torch.arange(n_bits - 1, -1, -1, dtype=torch.int64, device=index.device)
    return ((index.unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


def bits_to_index(bits: torch.Tensor) -> torch.Tensor:
    """Bitstrings to basis indices: ``Σ_q s_q · 2^(n−1−q)``.

    Shapes: ``(..., n)`` with entries in {0, 1} → ``(...)`` int64.
    """
    bits = torch.as_tensor(bits)
    if bits.ndim == 0:
        raise ConfigError("bits must have a trailing bit dimension, got a scalar")
    _check_n(bits.shape[-1])
    as_int = bits.to(torch.int64)
    if as_int.numel() and (int(as_int.min()) < 0 or int(as_int.max()) > 1):
        raise ConfigError("bits must be 0 or 1")
    return (as_int * place_values(bits.shape[-1], bits.device)).sum(-1)


#: Widest rows :func:`distinct_rows` packs; wider ones go to torch's row-wise ``unique``, since
#: packing them costs as much as it saves (measured: 31,232 rows of 20 bits 11× faster packed,
#: of 130 bits 4×, of 248 bits and more no faster; ``benchmarks/distinct_rows.py``).
PACKED_ROW_BITS = 2 * MAX_INDEX_BITS


def distinct_rows(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct bitstrings among ``bits``, where each row went, and how often each occurs:
    what ``torch.unique(bits, dim=0, return_inverse=True, return_counts=True)`` gives, in the
    same order (lexicographic, qubit 0 first).

    Each row is first packed into int64 words of :data:`MAX_INDEX_BITS` bits, qubit 0 the most
    significant, and the rows are sorted by stable sorts of one word at a time, the last word
    first: a word's order is its bits' order, so this is the rows' lexicographic order, with equal
    rows in their input order. Each distinct row is its first occurrence. Rows wider than
    :data:`PACKED_ROW_BITS` go to ``torch.unique`` itself.

    Shapes: ``(S, n)`` with entries in {0, 1} → rows ``(U, n)`` (the input's dtype), inverse
    ``(S,)`` int64, counts ``(U,)`` int64.
    """
    bits = torch.as_tensor(bits)
    if bits.ndim != 2:
        raise ConfigError(f"bits must be a (rows, n) matrix, got shape {tuple(bits.shape)}")
    if bits.numel() == 0 or bits.shape[1] > PACKED_ROW_BITS:
        return torch.unique(bits, dim=0, return_inverse=True, return_counts=True)
    words = [
        bits_to_index(bits[:, start : start + MAX_INDEX_BITS])
        for start in range(0, bits.shape[1], MAX_INDEX_BITS)
    ]
    order = torch.arange(bits.shape[0], device=bits.device)
    for word in reversed(words):  # stable sorts from the last word: lexicographic, ties in order
        order = order[torch.argsort(word[order], stable=True)]
    ranked = torch.stack(words, dim=1)[order]
    starts = torch.ones(order.shape, dtype=torch.bool, device=bits.device)
    starts[1:] = (ranked[1:] != ranked[:-1]).any(dim=1)
    group = torch.cumsum(starts, 0) - 1
    inverse = torch.empty_like(order).scatter_(0, order, group)
    counts = torch.bincount(group)
    return bits[order[starts]], inverse, counts


def bits_to_weights(
    bits: torch.Tensor,
    alphabet: tuple[float, float] = (-1.0, 1.0),
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Bits to weights through an alphabet ``(w(0), w(1))``; the default gives ``w = 2b − 1``.

    Shapes: ``(..., n)`` → ``(..., n)`` of ``dtype``.
    """
    low, high = alphabet
    b = torch.as_tensor(bits).to(dtype)
    return low + (high - low) * b


def weights_to_bits(
    weights: torch.Tensor, alphabet: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Weights back to bits; every weight must be one of the two alphabet letters.

    Shapes: ``(..., n)`` → ``(..., n)`` uint8.
    """
    low, high = alphabet
    w = torch.as_tensor(weights)
    is_high = w == high
    if not bool((is_high | (w == low)).all()):
        raise ConfigError(f"weights must be {low} or {high} for this alphabet")
    return is_high.to(torch.uint8)


def bitstring(index: int, n_bits: int) -> str:
    """A basis index as a string of bits, qubit 0 first: ``bitstring(5, 4) == '0101'``."""
    return "".join(str(int(b)) for b in index_to_bits(index, n_bits).tolist())


def parse_bitstring(text: str) -> torch.Tensor:
    """A string of ``0``/``1`` characters, qubit 0 first, to bits ``(n,)`` uint8."""
    if not text or set(text) - {"0", "1"}:
        raise ConfigError(f"a bitstring is a non-empty string of 0 and 1, got {text!r}")
    return torch.tensor([int(c) for c in text], dtype=torch.uint8)


def all_bits(n_bits: int, *, max_bytes: int = 2**30) -> torch.Tensor:
    """Every bitstring of ``n`` bits in index order.

    Shapes: returns ``(2**n, n)`` uint8. Refuses, before allocating, more than ``max_bytes``.
    """
    _check_n(n_bits)
    needed = (2**n_bits) * n_bits
    if needed > max_bytes:
        raise MemoryBudgetError(
            f"all bitstrings of {n_bits} bits need {needed} bytes, over the budget of "
            f"{max_bytes} bytes; use iter_bit_chunks"
        )
    return index_to_bits(torch.arange(2**n_bits), n_bits)


def iter_bit_chunks(
    n_bits: int, chunk_size: int = 2**16, *, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Enumerate bitstrings in index order, ``chunk_size`` at a time.

    Yields ``(first_index, bits)`` with ``bits`` of shape ``(m, n)`` uint8, ``m ≤ chunk_size``.
    """
    _check_n(n_bits)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
    total = 2**n_bits
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        raise ConfigError(f"need 0 <= start <= stop <= {total}, got start={start}, stop={stop}")
    for first in range(start, stop, chunk_size):
        last = min(first + chunk_size, stop)
        yield first, index_to_bits(torch.arange(first, last), n_bits)


def from_little_endian(vector: torch.Tensor) -> torch.Tensor:
    """Reorder a probability or amplitude vector from a little-endian SDK's index order
    (Qiskit: ``Σ_q s_q 2^q``) to ours: ``ours[Σ_q s_q 2^(n−1−q)] = theirs[Σ_q s_q 2^q]``.

    Shapes: ``(..., 2**n)`` → ``(..., 2**n)``.
    """
    vector = torch.as_tensor(vector)
    size = vector.shape[-1]
    n = size.bit_length() - 1
    if size < 2 or 2**n != size:
        raise ConfigError(f"a state vector has 2**n entries, got {size}")
    ours = index_to_bits(torch.arange(size), n)
    return vector[..., bits_to_index(ours.flip(-1))]


def from_little_endian_bits(bits: torch.Tensor) -> torch.Tensor:
    """Measured bits in a little-endian SDK's order (Qiskit's bitstrings print qubit 0 last)
    to ours (bit 0 first). Shapes: ``(..., n)`` → ``(..., n)``."""
    return torch.as_tensor(bits).flip(-1)
