"""Runs of CZ and CNOT gates as structured operations on the state, never as 2^n-long tables.

Qubit ``q`` is bit ``n − 1 − q`` of a basis index (the first qubit is the most significant).

- A run of **CZ** gates is diagonal: ``ψ[i] ← (−1)^{Σ_g b_a(i)·b_b(i)} ψ[i]``. The simulator folds
  the gates that act inside one group of qubits built as a small operand (a fused block matrix, a
  half of a product state) into that operand as a ±1 vector of ``2^w`` entries
  (:func:`group_sign`); each remaining gate negates, in place, the quarter of the state where both
  its bits are 1, a strided view of the reshaped state (:func:`negate_pairs`).
- A run of **CNOT** gates is a linear map over GF(2), ``new[i] = old[A·i]``, composed gate by gate
  on the ``n`` columns of ``A`` (:func:`compile_cnots`, O(n) per gate). Its gather index splits as
  ``A·i = A·(hi, 0) ⊕ A·(0, lo)``, two tables of ``2^⌈n/2⌉`` entries; the ``2^n`` index is their
  XOR broadcast, built when applied and kept in a cache bounded by :data:`INDEX_CACHE_BYTES`.

Compile memory is O(gates + 2^⌈n/2⌉); a call adds at most one ``2^n`` int64 index (CNOT runs only).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import torch

__all__ = [
    "INDEX_CACHE_BYTES",
    "CNOTRun",
    "CZRun",
    "compile_cnots",
    "gather_index",
    "group_sign",
    "negate_pairs",
    "split_pairs",
]

#: Total bytes of materialized CNOT gather indices kept between calls.
INDEX_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CZRun:
    """Consecutive CZ gates, as ``(a, b)`` wire pairs with ``a < b`` (CZ is symmetric)."""

    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CNOTRun:
    """Consecutive CNOT gates as ``new[i] = old[high[i >> low_bits] ^ low[i & (2^low_bits − 1)]]``.

    ``high`` ``(2^(n − low_bits),)`` and ``low`` ``(2^low_bits,)`` are int64 tables; ``key``
    identifies the run for the index cache.
    """

    n: int
    low_bits: int
    high: torch.Tensor
    low: torch.Tensor
    key: tuple[int, tuple[tuple[int, int], ...]]


def _span(columns: list[int], positions: range) -> torch.Tensor:
    """``XOR`` of ``columns[p]`` over the set bits ``p`` of every index of ``positions``' width.

    Built by doubling: ``2^len(positions)`` entries, each written once.
    """
    table = torch.zeros(1, dtype=torch.int64)
    for p in positions:
        table = torch.cat([table, table ^ columns[p]])
    return table


@functools.lru_cache(maxsize=256)
def compile_cnots(n: int, wires: tuple[tuple[int, int], ...]) -> CNOTRun:
    """Compose CNOTs ``(control, target)`` applied in order into one :class:`CNOTRun`.

    One gate maps ``new[i] = old[g(i)]`` with ``g(i) = i ⊕ (b_c(i) · e_t)``; the run reads
    ``old[g_1(g_2(…g_m(i)))]``. With ``A``'s column ``p`` the image of bit ``p``, composing with
    ``g`` on the right adds column ``t`` into column ``c``.
    """
    columns = [1 << p for p in range(n)]
    for control, target in wires:
        pc, pt = n - 1 - control, n - 1 - target
        columns[pc] ^= columns[pt]
    low_bits = n // 2
    low = _span(columns, range(low_bits))
    high = _span(columns, range(low_bits, n))
    return CNOTRun(n, low_bits, high, low, (n, wires))


_index_cache: OrderedDict[tuple[object, ...], torch.Tensor] = OrderedDict()


def gather_index(run: CNOTRun, device: torch.device) -> torch.Tensor:
    """The ``2^n`` int64 gather index of ``run`` on ``device`` (least recently used ones evicted
    once the cache passes :data:`INDEX_CACHE_BYTES`)."""
    key = (run.key, str(device))
    index = _index_cache.get(key)
    if index is not None:
        _index_cache.move_to_end(key)
        return index
    high, low = run.high.to(device), run.low.to(device)
    index = (high[:, None] ^ low[None, :]).reshape(-1)
    if index.numel() * 8 <= INDEX_CACHE_BYTES:
        _index_cache[key] = index
        while sum(t.numel() * 8 for t in _index_cache.values()) > INDEX_CACHE_BYTES:
            _index_cache.popitem(last=False)
    return index


@functools.lru_cache(maxsize=256)
def split_pairs(
    pairs: tuple[tuple[int, int], ...], groups: tuple[tuple[int, int], ...]
) -> tuple[dict[int, tuple[tuple[int, int], ...]], tuple[tuple[int, int], ...]]:
    """Split CZ pairs into those inside one qubit group ``[start, stop)`` (by group index) and
    those across groups. Cached: the result must not be modified."""
    inside: dict[int, list[tuple[int, int]]] = {}
    across = []
    for a, b in pairs:
        for g, (start, stop) in enumerate(groups):
            if start <= a < stop and start <= b < stop:
                inside.setdefault(g, []).append((a, b))
                break
        else:
            across.append((a, b))
    return {g: tuple(p) for g, p in inside.items()}, tuple(across)


@functools.lru_cache(maxsize=128)
def group_sign(
    start: int,
    stop: int,
    pairs: tuple[tuple[int, int], ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """``(−1)^{Σ b_a b_b}`` over the basis of qubits ``start..stop−1`` (first most significant).

    Cached (a block has at most 2^10 entries, a product half 2^⌈n/2⌉): do not modify the result.
    Shapes: ``(2^(stop − start),)``.
    """
    width = stop - start
    local = torch.arange(2**width, device=device)
    parity = torch.zeros_like(local)
    for a, b in pairs:
        parity ^= (local >> (stop - 1 - a)) & (local >> (stop - 1 - b)) & 1
    return (1 - 2 * parity).to(dtype)


def negate_pairs(psi: torch.Tensor, n: int, pairs: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Apply CZ on each pair in place: negate ``ψ`` where both bits are 1. Shapes: ``(B, 2^n)``."""
    batch = psi.shape[0]
    for a, b in pairs:
        view = psi.view(batch, 2**a, 2, 2 ** (b - a - 1), 2, 2 ** (n - 1 - b))
        view[:, :, 1, :, 1, :].neg_()
    return psi
