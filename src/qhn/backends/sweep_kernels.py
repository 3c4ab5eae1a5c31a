"""Numba kernels that apply a scheduled circuit in cache-blocked sweeps over the state.

A *sweep* reads the state once, tile by tile, applies every scheduled operation to the tile
while it sits in cache, and writes it back once. A tile holds all ``2^w`` values of one *group*
of ``w`` consecutive index bits ``gs … gs+w−1``, for ``b`` consecutive values of the bits below
the group (one cache line) and one value of the bits above it:

    i = (outer << (gs + w)) | (g << gs) | (col0 + c),   g < 2^w, c < b,

stored in a scratch tile ``tile[g·b + c]`` (the group at ``gs = 0`` is a contiguous chunk and
is worked on in place). The operations a sweep can apply are

- a one-qubit gate on a bit of its group: the 2×2 matrix on every pair of rows ``g``,
  ``g ⊕ 2^j`` of the tile (``2`` multiply-adds per amplitude, vectorized over ``b·2^j``; one for a
  real rotation in scaled form, :mod:`qhn.backends.sweep_rotations`);
- a CZ run (a diagonal ``(−1)^{Σ b_p(i)·b_q(i)}``), row by row: a sign per row times a ±1
  vector over the row's columns, from tables built once per schedule
  (:mod:`qhn.backends.sweep_signs`).

The first sweep may also build a product state ``hi[i >> w] · lo[i & (2^w − 1)]`` instead of
reading the state, and the last may write ``|ψ|²`` instead of ψ. The adjoint's kernels are in
:mod:`qhn.backends.sweep_kernels_back`.

Importing this module imports numba (the ``fast`` extra); :mod:`qhn.backends.statevector`
imports it only when numba is installed. Compiled on first use per dtype and cached on disk
(``cache=True``), so later processes load the machine code instead of compiling again.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from qhn.backends.sweep_intrinsics import low_gates_real, prefetch, store_fence, stream_blocks

__all__ = ["DIAGONAL", "GATE", "GATE_PAIR", "GENERAL", "LOW_GATES", "REGISTER_BITS",
           "UNIT_ANTIDIAGONAL", "UNIT_DIAGONAL", "run", "run_parallel"]  # fmt: skip

#: Operation kinds in a sweep's operation list: ``(GATE, bit, m, 0, 0)``, ``(DIAGONAL, d, 0, 0,
#: 0)``, ``(GATE_PAIR, bit, m, bit2, m2)`` and ``(LOW_GATES, b, m, 0, 0)`` (gates ``m … m+b−1``
#: on bits ``0 … b−1`` of the low group, ``b`` one of :data:`REGISTER_BITS`, :func:`low_gates`).
GATE, DIAGONAL, GATE_PAIR, LOW_GATES = 0, 1, 2, 3
#: Bits of the low group whose gates :func:`low_gates` applies together, in blocks of ``2^b``
#: amplitudes held in registers: 5 where the layer has a gate on each of bits 0–4, else 3.
REGISTER_BITS = (5, 3)

jit = numba.njit(cache=True, nogil=True, fastmath={"contract"})

#: Rows ahead of the one being gathered whose cache lines a high tile's gather asks for: each
#: row is a separate stream the hardware prefetcher does not follow. 4 measured best of 0, 2, 4,
#: 8, 16 (``benchmarks/simulator_probs.py``, n = 22–26).
PREFETCH_ROWS = 4


@jit
def entries_3(mats, first, row):
    """Matrices ``first … first+2`` of ``mats[:, row]``: their 12 entries, row-major, as a tuple
    (the 8-lane register kernels' operand)."""
    a, b, c = mats[first, row], mats[first + 1, row], mats[first + 2, row]
    return (a[0, 0], a[0, 1], a[1, 0], a[1, 1], b[0, 0], b[0, 1], b[1, 0], b[1, 1],
            c[0, 0], c[0, 1], c[1, 0], c[1, 1])  # fmt: skip


@jit
def entries_5(mats, first, row):
    """Matrices ``first … first+4`` of ``mats[:, row]``: their 20 entries (32-lane kernels)."""
    a, b, c = mats[first, row], mats[first + 1, row], mats[first + 2, row]
    d, e = mats[first + 3, row], mats[first + 4, row]
    return (a[0, 0], a[0, 1], a[1, 0], a[1, 1], b[0, 0], b[0, 1], b[1, 0], b[1, 1],
            c[0, 0], c[0, 1], c[1, 0], c[1, 1], d[0, 0], d[0, 1], d[1, 0], d[1, 1],
            e[0, 0], e[0, 1], e[1, 0], e[1, 1])  # fmt: skip


def low_gates(tile, mats, forms, first, count, row, size):
    """Gates ``mats[first + b, row]`` (forms ``forms[first + b, row]``) on bits ``b = 0 …
    count−1`` (``count`` 3 or 5; strides 1, 2, 4, …) of ``tile[:size]``, in that order: in
    registers for a real state (:func:`qhn.backends.sweep_intrinsics.low_gates_real`, one
    multiply-add a gate for the rotations scaled to ``[[1, −t], [t, 1]]``), else one
    :func:`gate_rows` each. Compiled code only (typed by its overload)."""
    raise NotImplementedError("low_gates runs inside numba kernels only")


@overload(low_gates, jit_options={"cache": True, "nogil": True, "fastmath": {"contract"}})
def _low_gates_typed(tile, mats, forms, first, count, row, size):
    if isinstance(tile.dtype, types.Float):

        def in_registers(tile, mats, forms, first, count, row, size):
            unit = 0
            for bit in range(count):
                if forms[first + bit, row] == UNIT_DIAGONAL:
                    unit |= 1 << bit
            if count == 5:
                low_gates_real(tile, size, entries_5(mats, first, row), unit)
            else:
                low_gates_real(tile, size, entries_3(mats, first, row), unit)

        return in_registers

    def by_strides(tile, mats, forms, first, count, row, size):
        for bit in range(count):
            m = mats[first + bit, row]
            gate_rows(tile, 1 << bit, m[0, 0], m[0, 1], m[1, 0], m[1, 1], size)

    return by_strides


@jit
def pairs_1(tile, m00, m01, m10, m11, size):
    """Stride 1, written as one loop over interleaved pairs so that it vectorizes."""
    for r in range(size // 2):
        a, b = tile[2 * r], tile[2 * r + 1]
        tile[2 * r] = m00 * a + m01 * b
        tile[2 * r + 1] = m10 * a + m11 * b


@jit
def pairs_2(tile, m00, m01, m10, m11, size):
    """Stride 2, likewise."""
    for r in range(size // 4):
        a0, a1, b0, b1 = tile[4 * r], tile[4 * r + 1], tile[4 * r + 2], tile[4 * r + 3]
        tile[4 * r] = m00 * a0 + m01 * b0
        tile[4 * r + 1] = m00 * a1 + m01 * b1
        tile[4 * r + 2] = m10 * a0 + m11 * b0
        tile[4 * r + 3] = m10 * a1 + m11 * b1


@jit
def gate_rows(tile, stride, m00, m01, m10, m11, size):
    """``(tile[t], tile[t+stride]) ← M·(tile[t], tile[t+stride])`` for each pair. The two
    halves as separate slices: the inner loop then vectorizes."""
    if stride == 1:
        pairs_1(tile, m00, m01, m10, m11, size)
        return
    if stride == 2:
        pairs_2(tile, m00, m01, m10, m11, size)
        return
    for base in range(0, size, 2 * stride):
        first = tile[base : base + stride]
        second = tile[base + stride : base + 2 * stride]
        for t in range(stride):
            a, b = first[t], second[t]
            first[t] = m00 * a + m01 * b
            second[t] = m10 * a + m11 * b


@jit
def gate_pair(tile, sj, sk, u, v, size):
    """Gate ``u`` on stride ``sj`` and ``v`` on stride ``sk > sj`` in one pass over the tile:
    each quadruple is loaded and stored once for both gates."""
    u00, u01, u10, u11 = u[0, 0], u[0, 1], u[1, 0], u[1, 1]
    v00, v01, v10, v11 = v[0, 0], v[0, 1], v[1, 0], v[1, 1]
    for base in range(0, size, 2 * sk):
        for mid in range(base, base + sk, 2 * sj):
            x0 = tile[mid : mid + sj]
            x1 = tile[mid + sj : mid + 2 * sj]
            x2 = tile[mid + sk : mid + sk + sj]
            x3 = tile[mid + sk + sj : mid + sk + 2 * sj]
            for t in range(sj):
                a0, a1, a2, a3 = x0[t], x1[t], x2[t], x3[t]
                b0 = u00 * a0 + u01 * a1
                b1 = u10 * a0 + u11 * a1
                b2 = u00 * a2 + u01 * a3
                b3 = u10 * a2 + u11 * a3
                x0[t] = v00 * b0 + v01 * b2
                x1[t] = v00 * b1 + v01 * b3
                x2[t] = v10 * b0 + v11 * b2
                x3[t] = v10 * b1 + v11 * b3


#: Gate forms: a general 2×2 matrix, or a rotation scaled to ``[[1, −t], [t, 1]]`` (``t`` at
#: ``m[1, 0]``) or to ``[[k, −1], [1, k]]`` (``k`` at ``m[0, 0]``).
GENERAL, UNIT_DIAGONAL, UNIT_ANTIDIAGONAL = 0, 1, 2


@jit
def rotation_rows(tile, stride, form, p, size):
    """A scaled rotation on pairs at ``stride`` (≥ 4, so the inner loop vectorizes); ``p`` is
    ``t`` or ``k``. The form's branch is loop-invariant: the compiler hoists it out."""
    for base in range(0, size, 2 * stride):
        first = tile[base : base + stride]
        second = tile[base + stride : base + 2 * stride]
        for i in range(stride):
            a, b = first[i], second[i]
            if form == UNIT_DIAGONAL:
                first[i] = a - p * b
                second[i] = b + p * a
            else:
                first[i] = p * a - b
                second[i] = a + p * b


@jit
def rotation_pair(tile, sj, sk, fu, u, fv, v, size):
    """Scaled rotations ``u`` (form ``fu``) on stride ``sj`` and ``v`` (form ``fv``) on stride
    ``sk > sj`` in one pass, as :func:`gate_pair`."""
    for base in range(0, size, 2 * sk):
        for mid in range(base, base + sk, 2 * sj):
            x0 = tile[mid : mid + sj]
            x1 = tile[mid + sj : mid + 2 * sj]
            x2 = tile[mid + sk : mid + sk + sj]
            x3 = tile[mid + sk + sj : mid + sk + 2 * sj]
            for i in range(sj):
                a0, a1, a2, a3 = x0[i], x1[i], x2[i], x3[i]
                if fu == UNIT_DIAGONAL:
                    b0, b1 = a0 - u * a1, a1 + u * a0
                    b2, b3 = a2 - u * a3, a3 + u * a2
                else:
                    b0, b1 = u * a0 - a1, a0 + u * a1
                    b2, b3 = u * a2 - a3, a2 + u * a3
                if fv == UNIT_DIAGONAL:
                    x0[i], x2[i] = b0 - v * b2, b2 + v * b0
                    x1[i], x3[i] = b1 - v * b3, b3 + v * b1
                else:
                    x0[i], x2[i] = v * b0 - b2, b0 + v * b2
                    x1[i], x3[i] = v * b1 - b3, b1 + v * b3


@jit
def diagonal(tile, size, fixed_index, r0, cb, row_bases, row_masks, parity, signs, cross,
             column_cross, fixed_pairs):  # fmt: skip
    """Multiply the tile, ``size`` amplitudes in rows of ``2^cb`` from row ``r0`` of the
    diagonal's tables, by its CZ signs (:mod:`qhn.backends.sweep_signs`): per row a scalar from
    the row tables times the ``signs`` row of its column mask."""
    mask = column = flip = 0
    for k in range(cross.shape[0]):
        mask ^= ((fixed_index >> cross[k, 1]) & 1) << cross[k, 0]
    for k in range(column_cross.shape[0]):
        column ^= ((fixed_index >> column_cross[k, 1]) & 1) << column_cross[k, 0]
    for k in range(fixed_pairs.shape[0]):
        flip ^= (fixed_index >> fixed_pairs[k, 0]) & (fixed_index >> fixed_pairs[k, 1]) & 1
    width = 1 << cb
    for r in range(size >> cb):
        g = r0 + r
        m = row_masks[g] ^ column
        line = tile[r * width : (r + 1) * width]
        factors = signs[m * width : (m + 1) * width]
        if row_bases[g] ^ parity[g & mask] ^ flip:
            for c in range(width):
                line[c] *= -factors[c]
        else:
            for c in range(width):
                line[c] *= factors[c]


@jit
def diagonal_op(tile, size, fixed_index, g0, d, geometry, row_bases, row_masks, parity, signs,
                cross, cross_offsets, column_cross, column_offsets, fixed,
                fixed_offsets):  # fmt: skip
    """CZ run ``d`` on a tile of ``size`` amplitudes holding group values from ``g0``."""
    row_offset, sign_offset, cb = geometry[d, 0], geometry[d, 1], geometry[d, 2]
    diagonal(
        tile,
        size,
        fixed_index,
        g0 >> cb,
        cb,
        row_bases[row_offset:],
        row_masks[row_offset:],
        parity,
        signs[sign_offset : sign_offset + (1 << (2 * cb))],
        cross[cross_offsets[d] : cross_offsets[d + 1]],
        column_cross[column_offsets[d] : column_offsets[d + 1]],
        fixed[fixed_offsets[d] : fixed_offsets[d + 1]],
    )


@jit
def apply_ops(tile, row, width, b, fixed_index, g0, ops, mats, forms, tables):
    """Apply ``ops`` (rows ``(kind, bit, matrix, bit2, matrix2)``) to one tile of ``2^width``
    rows of ``b``, holding group values from ``g0``; ``tables``: the CZ runs' (see
    :func:`diagonal_op`). ``forms[m, row]``: matrix ``m``'s form
    (:mod:`qhn.backends.sweep_rotations`); scaled rotations take the one-multiply-add kernels
    where the stride reaches 4 amplitudes."""
    size = b << width
    for o in range(ops.shape[0]):
        kind, arg = ops[o, 0], ops[o, 1]
        if kind == GATE:
            m, form, stride = mats[ops[o, 2], row], forms[ops[o, 2], row], b << arg
            if form == GENERAL or stride < 4:
                gate_rows(tile, stride, m[0, 0], m[0, 1], m[1, 0], m[1, 1], size)
            else:
                rotation_rows(tile, stride, form, m[1, 0] if form == UNIT_DIAGONAL else m[0, 0],
                              size)  # fmt: skip
        elif kind == LOW_GATES:
            low_gates(tile, mats, forms, ops[o, 2], arg, row, size)
        elif kind == GATE_PAIR:
            u, v = mats[ops[o, 2], row], mats[ops[o, 4], row]
            fu, fv = forms[ops[o, 2], row], forms[ops[o, 4], row]
            if fu == GENERAL or fv == GENERAL:
                gate_pair(tile, b << arg, b << ops[o, 3], u, v, size)
            else:
                rotation_pair(tile, b << arg, b << ops[o, 3],
                              fu, u[1, 0] if fu == UNIT_DIAGONAL else u[0, 0],
                              fv, v[1, 0] if fv == UNIT_DIAGONAL else v[0, 0], size)  # fmt: skip
        else:
            diagonal_op(tile, size, fixed_index, g0, arg, *tables)


@jit
def is_local(op, sub):
    """Whether an operation acts within sub-chunks of ``2^sub`` (diagonals always do)."""
    if op[0] == GATE:
        return op[1] < sub
    if op[0] == GATE_PAIR:
        return op[3] < sub
    if op[0] == LOW_GATES:
        return sub >= op[1]
    return True


@jit
def low_tile(psi, out, start, width, sub, ops, row, mats, forms, lo, hi, tables, init, final):
    """One chunk of the group at bit 0: ``psi[start : start + 2^width]`` (in L2), in place.
    Runs of operations on bits below ``sub`` go sub-chunk by sub-chunk of ``2^sub`` (in L1);
    the others over the whole chunk."""
    chunk, piece = 1 << width, 1 << sub
    tile = psi[start : start + chunk]
    if init:
        h = hi[row, start >> width]
        for g in range(chunk):
            tile[g] = h * lo[row, g]
    o = 0
    while o < ops.shape[0]:
        if not is_local(ops[o], sub):
            apply_ops(tile, row, width, 1, start, 0, ops[o : o + 1], mats, forms, tables)
            o += 1
            continue
        stop = o + 1
        while stop < ops.shape[0] and is_local(ops[stop], sub):
            stop += 1
        for g0 in range(0, chunk, piece):
            apply_ops(tile[g0 : g0 + piece], row, sub, 1, start, g0, ops[o:stop], mats, forms,
                      tables)  # fmt: skip
        o = stop
    if final:  # 1: |ψ|² only (ψ is updated in place regardless); 2: both
        dst = out[start : start + chunk]
        for g in range(chunk):
            v = tile[g]
            dst[g] = (v * np.conj(v)).real


@jit
def gather_rows(psi, tile, first, gs, width, b):
    """``tile[g·b : (g+1)·b] = psi[first | g << gs : … + b]`` for the ``2^width`` rows ``g``,
    asking for the lines of row ``g +`` :data:`PREFETCH_ROWS` while copying row ``g``."""
    rows, line = 1 << width, max(1, 64 // psi.itemsize)
    for g in range(rows):
        if g + PREFETCH_ROWS < rows:
            ahead = first | ((g + PREFETCH_ROWS) << gs)
            for c in range(0, b, line):
                prefetch(psi, ahead + c)
        src = first | (g << gs)
        tile[g * b : (g + 1) * b] = psi[src : src + b]


#: From this many bytes of state a high tile's rows are written back with non-temporal stores:
#: the lines were evicted since the gather read them, and would be read again only to be
#: overwritten (gather + scatter alone: 2.13 → 1.67 copies at n = 24). Chosen by measurement:
#: from 16 MiB (n = 21 in float64) it helps, e.g. n = 21, L = 6 by a quarter; below it does not.
STREAM_BYTES = 16 * 2**20


@jit
def scatter_rows(psi, tile, first, gs, width, b):
    """``psi[first | g << gs : … + b] = tile[g·b : (g+1)·b]`` for the ``2^width`` rows ``g``
    (the inverse of :func:`gather_rows`), streamed past the caches when the state is at least
    :data:`STREAM_BYTES` and the rows are whole aligned 64-byte blocks."""
    rows_bytes = b * psi.itemsize
    stream = (psi.size * psi.itemsize >= STREAM_BYTES and rows_bytes % 64 == 0
              and (psi.ctypes.data + first * psi.itemsize) % 64 == 0
              and (psi.itemsize << gs) % 64 == 0)  # fmt: skip
    for g in range(1 << width):
        dst = first | (g << gs)
        if stream:
            stream_blocks(psi, dst, tile, g * b, rows_bytes // 64)
        else:
            psi[dst : dst + b] = tile[g * b : (g + 1) * b]
    if stream:
        store_fence()


@jit
def high_tile(psi, out, first, gs, width, b, ops, row, mats, forms, tile, tables, final):
    """One tile of the group at bits ``gs…gs+width−1``: ``2^width`` rows of ``b`` consecutive
    amplitudes from index ``first``, gathered into ``tile`` and scattered back."""
    gather_rows(psi, tile, first, gs, width, b)
    apply_ops(tile, row, width, b, first, 0, ops, mats, forms, tables)
    if final:
        for g in range(1 << width):
            dst = first | (g << gs)
            for c in range(b):
                v = tile[g * b + c]
                out[dst + c] = (v * np.conj(v)).real
    if final != 1:
        scatter_rows(psi, tile, first, gs, width, b)


@jit
def tile_count(n, sweep, line):
    """Tiles of one sweep: chunks of the low group, or (outer, column block) pairs."""
    gs, width = sweep[0], sweep[1]
    if gs == 0:
        return 1 << (n - width)
    return (1 << (n - gs - width)) * ((1 << gs) // min(line, 1 << gs))


@jit
def sweep_tiles(psi, out, n, sweep, ops, row, mats, forms, lo, hi, tables, line, sub, scratch, a,
                z):  # fmt: skip
    """Tiles ``a … z − 1`` of one sweep ``(gs, w, op_start, op_stop, init, final)``."""
    gs, width, init, final = sweep[0], sweep[1], sweep[4] != 0, sweep[5]
    sweep_ops = ops[sweep[2] : sweep[3]]
    if gs == 0:
        for t in range(a, z):
            low_tile(psi, out, t << width, width, min(sub, width), sweep_ops, row, mats, forms,
                     lo, hi, tables, init, final)  # fmt: skip
        return
    b = min(line, 1 << gs)
    columns = (1 << gs) // b
    for t in range(a, z):
        first = ((t // columns) << (gs + width)) | ((t % columns) * b)
        high_tile(psi, out, first, gs, width, b, sweep_ops, row, mats, forms,
                  scratch[: b << width], tables, final)  # fmt: skip


@jit
def scratch_size(sweeps, line):
    widest = 0
    for s in range(sweeps.shape[0]):
        if sweeps[s, 0] > 0:
            widest = max(widest, sweeps[s, 1])
    return line << widest


@jit
def run(state, probs, n, sweeps, ops, mats, forms, lo, hi, tables, line, sub):
    """Run every sweep on every row, on one thread. ``sweeps[s] = (gs, w, op_start, op_stop,
    init, final)`` with ``final`` 1 (write ``|ψ|²`` to ``probs``) or 2 (also ψ back to
    ``state``); ``state`` ``(B, 2^n)``, ``probs`` ``(B, 2^n)`` real (may be ``state`` when
    real); ``mats`` ``(G, B, 2, 2)`` and ``forms`` ``(G, B)`` the gate matrices and their forms
    (:func:`qhn.backends.sweep_rotations.scaled_rotations`); ``tables`` the CZ runs' sign tables
    (:meth:`qhn.backends.sweep_signs.DiagonalTables.arrays`); ``line``: amplitudes per high tile
    row; ``sub``: bits per sub-chunk of the low group."""
    scratch = np.empty(scratch_size(sweeps, line), dtype=state.dtype)
    for row in range(state.shape[0]):
        for s in range(sweeps.shape[0]):
            count = tile_count(n, sweeps[s], line)
            sweep_tiles(state[row], probs[row], n, sweeps[s], ops, row, mats, forms, lo, hi,
                        tables, line, sub, scratch, 0, count)  # fmt: skip


@numba.njit(cache=True, nogil=True, parallel=True)
def run_parallel(state, probs, n, sweeps, ops, mats, forms, lo, hi, tables, line, sub, threads):
    """:func:`run` with each sweep's tiles split into ``threads`` contiguous blocks, one per
    thread, each with its own scratch tile (the tiles of a sweep are independent)."""
    size = scratch_size(sweeps, line)
    for row in range(state.shape[0]):
        for s in range(sweeps.shape[0]):
            count = tile_count(n, sweeps[s], line)
            for block in numba.prange(threads):
                scratch = np.empty(size, dtype=state.dtype)
                a, z = block * count // threads, (block + 1) * count // threads
                sweep_tiles(state[row], probs[row], n, sweeps[s], ops, row, mats, forms, lo,
                            hi, tables, line, sub, scratch, a, z)  # fmt: skip
