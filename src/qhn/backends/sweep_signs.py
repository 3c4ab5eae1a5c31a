"""Sign tables that let a sweep apply a CZ run to a tile row by row (:mod:`.sweep_kernels`).

A CZ run is the diagonal ``(−1)^{P(i)}`` with ``P(i) = Σ_{(a,b)} i_a·i_b mod 2`` over its pairs
of index bits. A tile is ``R`` rows of ``C = 2^cb`` amplitudes whose column ``c`` is index bits
``0 … cb−1``; the row's local index ``r`` holds the *row bits* (the swept group's, above the
columns); every other bit is *fixed* for the whole tile (read from the tile's first index ``f``).
Sorting each pair by the kinds of its two bits splits the sign into::

    P(i) = base[r] ⊕ parity(r & mask(f)) ⊕ flip(f)             (one scalar per row)
         ⊕ colbase[c] ⊕ parity(c & (rmask[r] ⊕ cmask(f)))       (a ±1 vector over the row)

with ``base``/``rmask`` tables over the rows (pairs row–row, row–column), ``mask``/``cmask``
from the pairs row–fixed and column–fixed, ``flip`` from fixed–fixed pairs and ``colbase`` from
column–column pairs. The kernel then multiplies each row by a scalar times the ``signs`` row of
its column mask: ``signs[m, c] = (−1)^{colbase[c] ⊕ parity(c & m)}``, contiguous and vectorized,
instead of looking up two tables per amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DiagonalTables", "diagonal_tables"]


@dataclass(frozen=True)
class DiagonalTables:
    """Every CZ run of a schedule, packed for the kernel.

    ``geometry`` ``(D, 3)`` rows ``(row offset, sign offset, cb)``: diagonal ``d``'s tables are
    ``row_bases[o : o + R]`` and ``row_masks[o : o + R]`` (int64 over its rows) and
    ``signs[s : s + 4^cb]`` (a ``(2^cb, 2^cb)`` ±1 matrix, row ``m`` for column mask ``m``);
    ``cross`` rows ``(row bit, fixed bit)``, ``column_cross`` rows ``(column bit, fixed bit)`` and
    ``fixed`` rows ``(fixed bit, fixed bit)`` in their ``…_offsets[d] : …_offsets[d + 1]`` ranges;
    ``parity[x]`` the parity of ``x`` for every row index.
    """

    geometry: np.ndarray
    row_bases: np.ndarray
    row_masks: np.ndarray
    parity: np.ndarray
    signs: np.ndarray
    cross: np.ndarray
    cross_offsets: np.ndarray
    column_cross: np.ndarray
    column_cross_offsets: np.ndarray
    fixed: np.ndarray
    fixed_offsets: np.ndarray

    def arrays(self, real_dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """The kernel's tuple, with ``signs`` in the state's real dtype."""
        return (self.geometry, self.row_bases, self.row_masks, self.parity,
                self.signs.astype(real_dtype, copy=False), self.cross, self.cross_offsets,
                self.column_cross, self.column_cross_offsets, self.fixed,
                self.fixed_offsets)  # fmt: skip


def _parities(bits: int) -> np.ndarray:
    index = np.arange(1 << bits)
    parity = np.zeros(1 << bits, dtype=np.int64)
    for bit in range(bits):
        parity ^= (index >> bit) & 1
    return parity


def diagonal_tables(
    diagonals: list[tuple[int, int, int, tuple[tuple[int, int], ...]]],
) -> DiagonalTables:
    """Tables for diagonals given as ``(first row bit, row bits, cb, pairs)``: the tile's rows
    hold index bits ``first … first + row bits − 1`` and its columns bits ``0 … cb − 1``."""
    geometry, bases, masks, signs = [], [], [], []
    cross, column_cross, fixed = [], [], []
    offsets = {"cross": [0], "column": [0], "fixed": [0]}
    row_offset = sign_offset = 0
    widest = 0
    for first, row_bits, cb, pairs in diagonals:
        rows = np.arange(1 << row_bits)
        columns = np.arange(1 << cb)
        base = np.zeros(1 << row_bits, dtype=np.int64)
        mask = np.zeros(1 << row_bits, dtype=np.int64)
        column_base = np.zeros(1 << cb, dtype=np.int64)

        def kind(bit, first=first, row_bits=row_bits, cb=cb):
            if bit < cb:
                return "column"
            return "row" if first <= bit < first + row_bits else "fixed"

        for a, b in pairs:
            (ka, a), (kb, b) = sorted([(kind(a), a), (kind(b), b)])  # column < fixed < row
            if ka == kb == "column":
                column_base ^= (columns >> a) & (columns >> b) & 1
            elif ka == kb == "row":
                base ^= (rows >> (a - first)) & (rows >> (b - first)) & 1
            elif ka == kb == "fixed":
                fixed.append((a, b))
            elif (ka, kb) == ("column", "row"):
                mask ^= ((rows >> (b - first)) & 1) << a
            elif (ka, kb) == ("column", "fixed"):
                column_cross.append((a, b))
            else:  # fixed, row
                cross.append((b - first, a))
        column_masks = columns[:, None]
        odd = column_base[None, :] ^ _parities(cb)[column_masks & columns[None, :]]
        geometry.append((row_offset, sign_offset, cb))
        bases.append(base)
        masks.append(mask)
        signs.append((1 - 2 * odd).astype(np.float64).ravel())
        row_offset += 1 << row_bits
        sign_offset += 1 << (2 * cb)
        widest = max(widest, row_bits)
        offsets["cross"].append(len(cross))
        offsets["column"].append(len(column_cross))
        offsets["fixed"].append(len(fixed))

    def table(rows):
        return np.asarray(rows, dtype=np.int64).reshape(-1, 2)

    def flat(parts, dtype):
        return np.concatenate(parts) if parts else np.zeros(1, dtype=dtype)

    return DiagonalTables(
        geometry=np.asarray(geometry, dtype=np.int64).reshape(-1, 3),
        row_bases=flat(bases, np.int64),
        row_masks=flat(masks, np.int64),
        parity=_parities(widest),
        signs=flat(signs, np.float64),
        cross=table(cross),
        cross_offsets=np.asarray(offsets["cross"], dtype=np.int64),
        column_cross=table(column_cross),
        column_cross_offsets=np.asarray(offsets["column"], dtype=np.int64),
        fixed=table(fixed),
        fixed_offsets=np.asarray(offsets["fixed"], dtype=np.int64),
    )
