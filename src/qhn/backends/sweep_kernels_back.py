"""Numba kernels for the adjoint of the cache-blocked sweeps (:mod:`.sweep_kernels`).

The backward pass walks the sweeps in reverse, tile by tile, with the state ψ and the adjoint
λ = ∂L/∂ψ̄ side by side: each gate u is un-applied to both (ψ_in = u^H ψ_out, λ_in = u^H
λ_out) and contributes G_u += λ_out ψ_in^H over its pairs; a CZ run is its own inverse. Real
rotations go in scaled form and in pairs, with one accumulator each (:func:`rotation_back`);
the caller scales each gate's sum back (:func:`qhn.backends.sweep_rotations.scaled_rotations_back`).
The reductions reassociate (``reassoc``) so that they vectorize; each thread keeps its own sums.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from qhn.backends.sweep_intrinsics import (
    apply_lanes,
    data_pointer,
    lane_coefficients,
    partner_lanes,
)
from qhn.backends.sweep_kernels import (
    DIAGONAL,
    GATE_PAIR,
    GENERAL,
    LOW_GATES,
    UNIT_DIAGONAL,
    diagonal_op,
    entries_3,
    entries_5,
    gather_rows,
    is_local,
    scatter_rows,
    scratch_size,
    tile_count,
)

__all__ = ["run_back"]

adjoint_jit = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})


@adjoint_jit
def gate_back(psi, lam, stride, u, grad, size):
    """Un-apply ``u`` on pairs at ``stride`` to ``psi`` and ``lam``; add ``λ_out ψ_in^H`` to
    ``grad`` ``(2, 2)``."""
    h00, h01 = np.conj(u[0, 0]), np.conj(u[1, 0])
    h10, h11 = np.conj(u[0, 1]), np.conj(u[1, 1])
    g00 = g01 = g10 = g11 = grad[0, 0] * 0
    for base in range(0, size, 2 * stride):
        p0, p1 = psi[base : base + stride], psi[base + stride : base + 2 * stride]
        l0, l1 = lam[base : base + stride], lam[base + stride : base + 2 * stride]
        for t in range(stride):
            a, b, c, d = p0[t], p1[t], l0[t], l1[t]
            x = h00 * a + h01 * b
            y = h10 * a + h11 * b
            cx, cy = np.conj(x), np.conj(y)
            g00 += c * cx
            g01 += c * cy
            g10 += d * cx
            g11 += d * cy
            p0[t], p1[t] = x, y
            l0[t] = h00 * c + h01 * d
            l1[t] = h10 * c + h11 * d
    grad[0, 0] += g00
    grad[0, 1] += g01
    grad[1, 0] += g10
    grad[1, 1] += g11


@adjoint_jit
def rotation_back(psi, lam, stride, form, p, grad, size):
    """Un-apply a scaled rotation (``form``, ``p`` = ``t`` or ``k``, as
    :func:`qhn.backends.sweep_kernels.rotation_rows`) to ``psi`` and ``lam``, and add its
    gradient along the tangent: a real rotation ``u`` moves only along ``K·u``
    (``K = [[0, −1], [1, 0]]``) whatever angle it depends on, so ``g = Σ λ_outᵀ K ψ_out`` is
    all that is needed, and ``(g/2)·K·m`` (``m`` the scaled matrix; ``‖K·u‖² = 2``) has the
    full ``Σ λ_out ψ_inᵀ``'s projection on it, up to the scalars the caller restores.
    One accumulator instead of four, one multiply-add per output instead of two."""
    g = grad[0, 0] * 0
    for base in range(0, size, 2 * stride):
        p0, p1 = psi[base : base + stride], psi[base + stride : base + 2 * stride]
        l0, l1 = lam[base : base + stride], lam[base + stride : base + 2 * stride]
        for i in range(stride):
            a, b, x, y = p0[i], p1[i], l0[i], l1[i]
            g += y * a - x * b
            if form == UNIT_DIAGONAL:
                p0[i], p1[i] = a + p * b, b - p * a
                l0[i], l1[i] = x + p * y, y - p * x
            else:
                p0[i], p1[i] = p * a + b, p * b - a
                l0[i], l1[i] = p * x + y, p * y - x
    add_tangent(grad, form, p, g)


@adjoint_jit
def add_tangent(grad, form, p, g):
    """``grad += (g/2)·K·m`` for the scaled rotation ``m`` of ``form`` and parameter ``p``:
    ``K·[[1, −t], [t, 1]] = [[−t, −1], [1, −t]]``, ``K·[[k, −1], [1, k]] = [[−1, −k], [k, −1]]``."""
    half = g / 2
    if form == UNIT_DIAGONAL:
        grad[0, 0] -= p * half
        grad[0, 1] -= half
        grad[1, 0] += half
        grad[1, 1] -= p * half
    else:
        grad[0, 0] -= half
        grad[0, 1] -= p * half
        grad[1, 0] += p * half
        grad[1, 1] -= half


@adjoint_jit
def rotation_pair_back(psi, lam, sj, sk, fu, u, fv, v, gu, gv, size):
    """:func:`qhn.backends.sweep_kernels.rotation_pair` in reverse (``v`` on stride ``sk``
    undone first, then ``u`` on ``sj``), as two :func:`rotation_back` in one pass over ψ and
    λ."""
    hu = hv = gu[0, 0] * 0
    for base in range(0, size, 2 * sk):
        for mid in range(base, base + sk, 2 * sj):
            q0, q1 = psi[mid : mid + sj], psi[mid + sj : mid + 2 * sj]
            q2, q3 = psi[mid + sk : mid + sk + sj], psi[mid + sk + sj : mid + sk + 2 * sj]
            m0, m1 = lam[mid : mid + sj], lam[mid + sj : mid + 2 * sj]
            m2, m3 = lam[mid + sk : mid + sk + sj], lam[mid + sk + sj : mid + sk + 2 * sj]
            for i in range(sj):
                a0, a1, a2, a3 = q0[i], q1[i], q2[i], q3[i]
                x0, x1, x2, x3 = m0[i], m1[i], m2[i], m3[i]
                hv += x2 * a0 - x0 * a2 + x3 * a1 - x1 * a3
                if fv == UNIT_DIAGONAL:
                    b0, b2, b1, b3 = a0 + v * a2, a2 - v * a0, a1 + v * a3, a3 - v * a1
                    y0, y2, y1, y3 = x0 + v * x2, x2 - v * x0, x1 + v * x3, x3 - v * x1
                else:
                    b0, b2, b1, b3 = v * a0 + a2, v * a2 - a0, v * a1 + a3, v * a3 - a1
                    y0, y2, y1, y3 = v * x0 + x2, v * x2 - x0, v * x1 + x3, v * x3 - x1
                hu += y1 * b0 - y0 * b1 + y3 * b2 - y2 * b3
                if fu == UNIT_DIAGONAL:
                    q0[i], q1[i], q2[i], q3[i] = b0 + u * b1, b1 - u * b0, b2 + u * b3, b3 - u * b2
                    m0[i], m1[i], m2[i], m3[i] = y0 + u * y1, y1 - u * y0, y2 + u * y3, y3 - u * y2
                else:
                    q0[i], q1[i], q2[i], q3[i] = u * b0 + b1, u * b1 - b0, u * b2 + b3, u * b3 - b2
                    m0[i], m1[i], m2[i], m3[i] = u * y0 + y1, u * y1 - y0, u * y2 + y3, u * y3 - y2
    add_tangent(gv, fv, v, hv)
    add_tangent(gu, fu, u, hu)


@intrinsic
def _low_gates_back_real(typingctx, psi, lam, size, entries):
    """:func:`qhn.backends.sweep_intrinsics.low_gates_real` in reverse on real ψ and λ tiles:
    per block of ``2^b`` lanes, gates on bits ``b−1, …, 0`` un-applied (``mᵀ``: ``x ← d ⊙ x +
    o ⊙ x[i ⊕ 2^bit]``) to both, each adding ``λ_out ψ_inᵀ`` to two lane accumulators (a lane's
    own pair member, and its partner); returns the ``b`` gates' 2×2 sums, row-major (``4b``
    values). Every gate is taken as general here: a scaled rotation's full sum has the same
    projection on its tangent, and the same factor, as :func:`rotation_back`'s."""
    if not all(isinstance(t, types.Array) and isinstance(t.dtype, types.Float) for t in (psi, lam)):
        return None
    bits = entries.count // 4
    lanes = 1 << bits
    sig = types.UniTuple(psi.dtype, 4 * bits)(psi, lam, size, entries)

    def codegen(context, builder, signature, args):
        element = context.get_value_type(signature.args[0].dtype)
        vector = ir.VectorType(element, lanes)
        entries = [builder.extract_value(args[3], k) for k in range(4 * bits)]
        transposed = lane_coefficients(builder, vector, entries, transpose=True)
        zero = ir.Constant(vector, [0.0] * lanes)
        sums = [[cgutils.alloca_once_value(builder, zero) for _ in range(2)] for _ in range(bits)]
        bases = [data_pointer(context, builder, signature.args[k], args[k], vector)
                 for k in (0, 1)]  # fmt: skip
        align = context.get_abi_sizeof(element)
        blocks = builder.lshr(args[2], ir.Constant(args[2].type, bits))
        with cgutils.for_range(builder, blocks) as loop:
            pointers = [builder.gep(base, [loop.index]) for base in bases]
            x, y = (builder.load(pointer, align=align) for pointer in pointers)
            for bit in reversed(range(bits)):
                d, o = transposed[bit]
                x_in = apply_lanes(builder, d, o, x, bit)
                y_in = apply_lanes(builder, d, o, y, bit)
                own, partner = sums[bit]
                builder.store(builder.fadd(builder.load(own), builder.fmul(y, x_in)), own)
                cross = builder.fmul(y, partner_lanes(builder, x_in, bit))
                builder.store(builder.fadd(builder.load(partner), cross), partner)
                x, y = x_in, y_in
            for pointer, value in zip(pointers, (x, y), strict=True):
                builder.store(value, pointer, align=align)

        def total(v, members):
            acc = builder.extract_element(v, ir.Constant(ir.IntType(32), members[0]))
            for i in members[1:]:
                acc = builder.fadd(acc, builder.extract_element(v, ir.Constant(ir.IntType(32), i)))
            return acc

        out = []
        for bit in range(bits):
            own, partner = (builder.load(a) for a in sums[bit])
            low, high = ([i for i in range(lanes) if (i >> bit) & 1 == j] for j in (0, 1))
            # lanes of pair member j: own sums give G_jj, partner sums G_j(1−j)
            out += [total(own, low), total(partner, low), total(partner, high), total(own, high)]
        return context.make_tuple(builder, signature.return_type, out)

    return sig, codegen


@adjoint_jit
def add_sums(grads, first, row, sums):
    """``grads[first + k, row] += sums[4k : 4k+4]`` (row-major 2×2) for each gate ``k``."""
    for k in range(len(sums) // 4):
        g = grads[first + k, row]
        g[0, 0] += sums[4 * k]
        g[0, 1] += sums[4 * k + 1]
        g[1, 0] += sums[4 * k + 2]
        g[1, 1] += sums[4 * k + 3]


def low_gates_back(psi, lam, mats, forms, grads, first, count, row, size):
    """:func:`qhn.backends.sweep_kernels.low_gates` in reverse: gates ``mats[first + b, row]``
    (forms ``forms[first + b, row]``) on bits ``b = count−1, …, 0`` un-applied to ``psi`` and
    ``lam``, their sums added to ``grads[first + b, row]`` (2×2): in registers for real tiles
    (:func:`_low_gates_back_real`), else by :func:`one_back`. Compiled code only (typed by its
    overload)."""
    raise NotImplementedError("low_gates_back runs inside numba kernels only")


@overload(low_gates_back, jit_options={"cache": True, "nogil": True,
                                       "fastmath": {"contract", "reassoc"}})  # fmt: skip
def _low_gates_back_typed(psi, lam, mats, forms, grads, first, count, row, size):
    if isinstance(psi.dtype, types.Float):

        def in_registers(psi, lam, mats, forms, grads, first, count, row, size):
            if count == 5:
                sums5 = _low_gates_back_real(psi, lam, size, entries_5(mats, first, row))
                add_sums(grads, first, row, sums5)
            else:
                sums3 = _low_gates_back_real(psi, lam, size, entries_3(mats, first, row))
                add_sums(grads, first, row, sums3)

        return in_registers

    def one_by_one(psi, lam, mats, forms, grads, first, count, row, size):
        for bit in range(count - 1, -1, -1):
            m = first + bit
            one_back(psi, lam, 1 << bit, mats[m, row], forms[m, row], grads[m, row], size)

    return one_by_one


@adjoint_jit
def one_back(psi, lam, stride, u, form, grad, size):
    """One gate in reverse: :func:`rotation_back` for a scaled rotation, else
    :func:`gate_back`."""
    if form == GENERAL:
        gate_back(psi, lam, stride, u, grad, size)
    else:
        rotation_back(psi, lam, stride, form, u[1, 0] if form == UNIT_DIAGONAL else u[0, 0],
                      grad, size)  # fmt: skip


@adjoint_jit
def ops_back(psi, lam, row, width, b, fixed_index, g0, ops, mats, forms, grads, tables):
    """:func:`apply_ops` in reverse on a ψ tile and its λ tile, adding each gate's gradient to
    ``grads`` ``(G, B, 2, 2)``."""
    size = b << width
    for o in range(ops.shape[0] - 1, -1, -1):
        kind, arg = ops[o, 0], ops[o, 1]
        if kind == DIAGONAL:
            diagonal_op(psi, size, fixed_index, g0, arg, *tables)
            diagonal_op(lam, size, fixed_index, g0, arg, *tables)
            continue
        m = ops[o, 2]
        if kind == LOW_GATES:
            low_gates_back(psi, lam, mats, forms, grads, m, arg, row, size)
            continue
        if kind == GATE_PAIR:  # applied u (bit) then v (bit2): undo v first
            k = ops[o, 4]
            u, v, fu, fv = mats[m, row], mats[k, row], forms[m, row], forms[k, row]
            if fu != GENERAL and fv != GENERAL:
                rotation_pair_back(psi, lam, b << arg, b << ops[o, 3],
                                   fu, u[1, 0] if fu == UNIT_DIAGONAL else u[0, 0],
                                   fv, v[1, 0] if fv == UNIT_DIAGONAL else v[0, 0],
                                   grads[m, row], grads[k, row], size)  # fmt: skip
                continue
            one_back(psi, lam, b << ops[o, 3], v, fv, grads[k, row], size)
        one_back(psi, lam, b << arg, mats[m, row], forms[m, row], grads[m, row], size)


@adjoint_jit
def low_tile_back(psi, lam, start, width, sub, ops, row, mats, forms, lo, hi, grads, glo, ghi,
                  tables, init):  # fmt: skip
    """:func:`low_tile` in reverse; the first sweep's tiles also give the product halves'
    gradients ``glo[row, g] += conj(hi)·λ`` and ``ghi[row, outer] += Σ_g λ·conj(lo)``."""
    chunk, piece = 1 << width, 1 << sub
    p, q = psi[start : start + chunk], lam[start : start + chunk]
    o = ops.shape[0]
    while o > 0:
        if not is_local(ops[o - 1], sub):
            ops_back(p, q, row, width, 1, start, 0, ops[o - 1 : o], mats, forms, grads, tables)
            o -= 1
            continue
        first = o - 1
        while first > 0 and is_local(ops[first - 1], sub):
            first -= 1
        for g0 in range(0, chunk, piece):
            ops_back(p[g0 : g0 + piece], q[g0 : g0 + piece], row, sub, 1, start, g0,
                     ops[first:o], mats, forms, grads, tables)  # fmt: skip
        o = first
    if init:
        outer = start >> width
        h = np.conj(hi[row, outer])
        total = q[0] * 0
        for g in range(chunk):
            glo[row, g] += h * q[g]
            total += q[g] * np.conj(lo[row, g])
        ghi[row, outer] += total


@adjoint_jit
def high_tile_back(
    psi, lam, first, gs, width, b, ops, row, mats, forms, grads, tile, lam_tile, tables
):
    """:func:`high_tile` in reverse, on gathered ψ and λ tiles."""
    gather_rows(psi, tile, first, gs, width, b)
    gather_rows(lam, lam_tile, first, gs, width, b)
    ops_back(tile, lam_tile, row, width, b, first, 0, ops, mats, forms, grads, tables)
    scatter_rows(psi, tile, first, gs, width, b)
    scatter_rows(lam, lam_tile, first, gs, width, b)


@adjoint_jit
def sweep_tiles_back(psi, lam, n, sweep, ops, row, mats, forms, lo, hi, grads, glo, ghi, tables,
                     line, sub, scratch, a, z):  # fmt: skip
    """Tiles ``a … z − 1`` of one sweep, in reverse."""
    gs, width, init = sweep[0], sweep[1], sweep[4] != 0
    sweep_ops = ops[sweep[2] : sweep[3]]
    if gs == 0:
        for t in range(a, z):
            low_tile_back(psi, lam, t << width, width, min(sub, width), sweep_ops, row, mats,
                          forms, lo, hi, grads, glo, ghi, tables, init)  # fmt: skip
        return
    b = min(line, 1 << gs)
    columns = (1 << gs) // b
    half = scratch.shape[0] // 2
    tile, lam_tile = scratch[: b << width], scratch[half : half + (b << width)]
    for t in range(a, z):
        first = ((t // columns) << (gs + width)) | ((t % columns) * b)
        high_tile_back(psi, lam, first, gs, width, b, sweep_ops, row, mats, forms, grads, tile,
                       lam_tile, tables)  # fmt: skip


@numba.njit(cache=True, nogil=True, parallel=True)
def run_back(state, lam, n, sweeps, ops, mats, forms, lo, hi, tables, line, sub, threads, grads,
             glo, ghi):  # fmt: skip
    """The adjoint of :func:`run`: from the final ``state`` and ``lam`` ``(B, 2^n)`` (both
    overwritten, ending at the product state and its λ), the gradients of every gate matrix
    (``forms`` as :func:`qhn.backends.sweep_rotations.rotation_forms` gives them; a rotation's
    only along its tangent), ``grads`` ``(threads, G, B, 2, 2)``, and of the product halves,
    ``glo`` ``(threads, B, 2^w0)`` and ``ghi`` ``(threads, B, 2^(n−w0))``, one slice per thread
    (summed by the caller)."""
    size = 2 * scratch_size(sweeps, line)
    for row in range(state.shape[0]):
        for s in range(sweeps.shape[0] - 1, -1, -1):
            count = tile_count(n, sweeps[s], line)
            for block in numba.prange(threads):
                scratch = np.empty(size, dtype=state.dtype)
                a, z = block * count // threads, (block + 1) * count // threads
                sweep_tiles_back(state[row], lam[row], n, sweeps[s], ops, row, mats, forms, lo, hi,
                                 grads[block], glo[block], ghi[block], tables, line, sub,
                                 scratch, a, z)  # fmt: skip
