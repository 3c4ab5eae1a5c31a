"""LLVM IR pieces of the sweep kernels (:mod:`.sweep_kernels`, :mod:`.sweep_kernels_back`), as
numba intrinsics: what numba's loops do not express or do not compile well.

- Register blocks of 32 (or 8) amplitudes for the gates on bits 0–4 (or 0–2) of a real tile:
  each gate is a lane shuffle, a multiply and a multiply-add, ``x ← d ⊙ x + o ⊙ x[i ⊕ 2^bit]``
  (:func:`low_gates_real`; the adjoint's reverse is built from the same lane helpers).
- A prefetch of one cache line (:func:`prefetch`), non-temporal copies of 64-byte blocks
  (:func:`stream_blocks`) and the fence that orders them (:func:`store_fence`), for the high
  tiles' gathers and scatters.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["apply_lanes", "data_pointer", "lane_coefficients", "low_gates_real", "partner_lanes",
           "prefetch", "store_fence", "stream_blocks"]  # fmt: skip


def data_pointer(context, builder, kind, array, pointee, index=None):
    """A ``pointee*`` to ``array[index]`` (to the data's start without ``index``); ``kind``: the
    array's numba type (LLVM IR)."""
    data = context.make_array(kind)(context, builder, array).data
    if index is not None:
        data = builder.gep(data, [index])
    return builder.bitcast(data, pointee.as_pointer())


def splat(builder: ir.IRBuilder, vector: ir.VectorType, value: ir.Value) -> ir.Value:
    """``value`` in every lane of ``vector`` (LLVM IR)."""
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                 ir.Constant(ir.IntType(32), 0))  # fmt: skip
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count)
    return builder.shuffle_vector(one, one, zeros)


def lane_coefficients(builder, vector, entries, *, transpose: bool = False) -> list[tuple]:
    """For the gates on bits ``0 … b−1`` of a block of ``2^b`` lanes (``entries``: their ``4b``
    matrix entries, row-major, as IR values), the lane vectors ``(d, o)`` with which
    ``x ← d ⊙ x + o ⊙ x[i ⊕ 2^bit]`` applies ``m`` (or ``mᵀ`` when ``transpose``): ``d`` is
    ``m00`` on lanes whose bit is 0 and ``m11`` elsewhere, ``o`` is ``m01``/``m10``
    (``m10``/``m01`` transposed)."""
    lanes, out = vector.count, []
    for bit in range(len(entries) // 4):
        m00, m01, m10, m11 = entries[4 * bit : 4 * bit + 4]
        lower_off, upper_off = (m10, m01) if transpose else (m01, m10)
        upper = ir.Constant(ir.VectorType(ir.IntType(1), lanes),
                            [(i >> bit) & 1 for i in range(lanes)])  # fmt: skip
        out.append((builder.select(upper, splat(builder, vector, m11), splat(builder, vector, m00)),
                    builder.select(upper, splat(builder, vector, upper_off),
                                   splat(builder, vector, lower_off))))  # fmt: skip
    return out


def apply_lanes(builder, d, o, x, bit):
    """``d ⊙ x + o ⊙ x[i ⊕ 2^bit]`` (LLVM IR, contracted to multiply-adds)."""
    partner = partner_lanes(builder, x, bit)
    contract = ("contract",)
    scaled = builder.fmul(d, x, flags=contract)
    mixed = builder.fmul(o, partner, flags=contract)
    return builder.fadd(scaled, mixed, flags=contract)


def partner_lanes(builder, x, bit):
    """``x[i ⊕ 2^bit]``: each lane's partner under a gate on ``bit`` (LLVM IR; for bits past one
    vector register's lanes, whole registers trade places and the shuffle compiles to nothing)."""
    lanes = x.type.count
    partners = ir.Constant(
        ir.VectorType(ir.IntType(32), lanes), [i ^ (1 << bit) for i in range(lanes)]
    )
    return builder.shuffle_vector(x, x, partners)


@intrinsic
def low_gates_real(typingctx, tile, size, entries, unit):
    """Gates on bits ``0 … b−1`` of a real ``tile`` (``size``, a multiple of ``2^b``), in
    registers: per block of ``2^b`` amplitudes one load, then for each gate ``x ← d ⊙ x + o ⊙
    x[i ⊕ 2^bit]`` (a lane shuffle, a multiply and a multiply-add), one store. ``d``, ``o``: per
    lane ``m00, m01`` where the lane's bit is 0 and ``m11, m10`` where it is 1; ``entries``: the
    ``b`` matrices' ``4b`` entries, row-major. Bit ``j`` of the integer ``unit`` says gate ``j``
    is a scaled rotation ``[[1, −t], [t, 1]]`` (``d = 1``): ``x ← x + o ⊙ x[i ⊕ 2^j]``, one
    multiply-add. The block loop is compiled once for each of the ``2^b`` masks and ``unit``
    picks one: a branch per gate inside the loop ran at 17 amplitude-gates/ns where the
    specialized loop runs at 25 (5 scaled gates, in L1). (Loops over strides 1, 2 and 4 do not
    vectorize well, and pairs at strides 8 and 16 run at half the rate of longer ones: in L1, 3
    bits in registers take about a third of the loops' time, and 5 general gates 0.6–0.7 of the
    time of 3 bits and a pair, ``benchmarks/kernel_roofline.py``.)"""
    if not isinstance(tile, types.Array) or not isinstance(tile.dtype, types.Float):
        return None
    bits = entries.count // 4
    sig = types.void(tile, size, entries, unit)

    def codegen(context, builder, signature, args):
        element = context.get_value_type(signature.args[0].dtype)
        vector = ir.VectorType(element, 1 << bits)
        entries = [builder.extract_value(args[2], k) for k in range(4 * bits)]
        coefficients = lane_coefficients(builder, vector, entries)
        blocks = builder.lshr(args[1], ir.Constant(args[1].type, bits))
        base = data_pointer(context, builder, signature.args[0], args[0], vector)
        align = context.get_abi_sizeof(element)
        contract = ("contract",)
        done = builder.append_basic_block("done")

        def block_loop(mask):
            with cgutils.for_range(builder, blocks) as loop:
                pointer = builder.gep(base, [loop.index])
                x = builder.load(pointer, align=align)
                for bit, (diagonal, off) in enumerate(coefficients):
                    if mask >> bit & 1:
                        mixed = builder.fmul(off, partner_lanes(builder, x, bit), flags=contract)
                        x = builder.fadd(x, mixed, flags=contract)
                    else:
                        x = apply_lanes(builder, diagonal, off, x, bit)
                builder.store(x, pointer, align=align)
            builder.branch(done)

        general = builder.append_basic_block("general")
        switch = builder.switch(args[3], general)
        for mask in range(1, 1 << bits):
            case = builder.append_basic_block(f"unit{mask}")
            switch.add_case(ir.Constant(args[3].type, mask), case)
            builder.position_at_end(case)
            block_loop(mask)
        builder.position_at_end(general)
        block_loop(0)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring the cache line holding ``array[index]`` into its caches (no fault,
    no effect on results)."""
    if not isinstance(array, types.Array):
        return None
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        byte, i32 = ir.IntType(8), ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte.as_pointer(), i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )  # fmt: skip
        pointer = data_pointer(context, builder, signature.args[0], args[0], byte, args[1])
        builder.call(function, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def stream_blocks(typingctx, dst, dst_index, src, src_index, blocks):
    """Copy ``blocks`` blocks of 64 bytes from ``src[src_index]`` on to ``dst[dst_index]`` on
    (64-byte aligned) with non-temporal stores: written to memory without first reading the
    lines into the caches."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array)):
        return None
    sig = types.void(dst, dst_index, src, src_index, blocks)

    def codegen(context, builder, signature, args):
        block = ir.VectorType(ir.IntType(64), 8)
        pointers = [data_pointer(context, builder, signature.args[k], args[k], block, args[k + 1])
                    for k in (0, 2)]  # fmt: skip
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, args[4]) as loop:
            x = builder.load(builder.gep(pointers[1], [loop.index]), align=4)
            store = builder.store(x, builder.gep(pointers[0], [loop.index]), align=64)
            store.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_fence(typingctx):
    """A full memory fence: non-temporal stores are weakly ordered, so a tile's streamed rows are
    made visible before another thread's next sweep reads them (``mfence`` on x86)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen
