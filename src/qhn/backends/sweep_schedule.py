"""Schedule a circuit as a few cache-blocked sweeps over the state (:mod:`.sweep_kernels`).

The index bits are split into *groups* of at most ``max_width`` consecutive bits. A one-qubit
layer ``U = ⊗_q u_q`` factors into commuting parts, one per group, and a CZ run is diagonal, so
a sweep over group ``G`` may apply: ``U``'s part on ``G``; then, once every part of ``U`` is
applied, the CZ run after it; then the next layer's part on ``G``; and so on until it reaches a
layer whose part on ``G`` follows a CZ run still waiting on another group. The next sweep takes
the group that layer waits on. With two groups an RY + CZ circuit of ``L`` entangling layers is
``L + 1`` sweeps (the first writes the product state instead of reading, the last writes
``|ψ|²``): about one pass over memory per layer, against ``⌈n/k⌉ + 1`` passes per layer for
Kronecker blocks of ``k`` qubits.

Qubit ``q`` is index bit ``n − 1 − q``. Circuits with CNOT gates are not scheduled here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from qhn.backends.entanglers import CZRun
from qhn.backends.sweep_kernels import DIAGONAL, GATE, GATE_PAIR, LOW_GATES, REGISTER_BITS
from qhn.backends.sweep_signs import DiagonalTables, diagonal_tables
from qhn.backends.torch_passes import OneQubitRun, compile_gates
from qhn.circuits.ir import Circuit, Gate

__all__ = ["HIGH_WIDTH", "LOW_WIDTH", "ROW_BYTES", "SUB_WIDTH", "SweepSchedule", "schedule"]

#: Widest low group (contiguous chunks, worked on in place), by bytes per amplitude: chunks of
#: 256–512 KiB, within the L2 cache. Chosen by measurement (``benchmarks/simulator_probs.py``).
LOW_WIDTH = {4: 16, 8: 16, 16: 15}
#: Widest higher group. Its tile holds ``2^w`` rows of :data:`ROW_BYTES` each (512 KiB): rows of
#: half a KiB keep the strided reads long enough for the prefetcher and few pages for the TLB.
HIGH_WIDTH = 10
ROW_BYTES = 512
#: Bits of a low-group sub-chunk (32 KiB, an L1 cache): runs of operations on bits below it go
#: sub-chunk by sub-chunk.
SUB_WIDTH = {4: 13, 8: 12, 16: 11}


@dataclass(frozen=True)
class SweepSchedule:
    """Static plan of a circuit's sweeps (independent of θ).

    ``sweeps`` ``(S, 6)`` int64 rows ``(gs, w, op_start, op_stop, init, final)``; ``ops``
    ``(O, 5)`` rows ``(kind, bit or diagonal, matrix, bit2, matrix2)`` (``LOW_GATES``: ``(kind,
    bits, first matrix, 0, 0)``, see :data:`qhn.backends.sweep_kernels.GATE`); ``gates``
    ``(G, 2)`` rows ``(run, qubit)``: gate matrix ``m`` is qubit ``qubit``'s product in one-qubit
    run ``run`` (``runs[0]`` is the product state's). ``row_bytes``: a high tile's row length in
    bytes; ``sub_width``: bits of a low-group sub-chunk; ``itemsize``: bytes per amplitude the
    plan is for; ``diagonals``: the CZ runs' sign tables (operation ``(DIAGONAL, d, …)`` is run
    ``d``).
    """

    n: int
    first_width: int
    row_bytes: int
    sub_width: int
    itemsize: int
    runs: tuple[object, ...]
    sweeps: np.ndarray
    ops: np.ndarray
    gates: np.ndarray
    diagonals: DiagonalTables

    @property
    def line(self) -> int:
        """Amplitudes per row of a high group's tile (a power of two)."""
        return _line(self.row_bytes, self.itemsize)


def _line(row_bytes: int, itemsize: int) -> int:
    line = max(1, row_bytes // itemsize)
    if line & (line - 1):
        raise ValueError(f"row_bytes / itemsize = {line} must be a power of two")
    return line


def _groups(n: int, low_width: int, high_width: int) -> list[tuple[int, int]]:
    """Index bits ``0..n−1`` as ``(start, width)`` groups: all in one when ``n ≤ low_width``;
    else a low group of at most ``low_width`` bits (and at least half of them when one high group
    takes the rest, so that group is not left narrow), the rest in even groups of at most
    ``high_width``."""
    low = n if n <= low_width else min(low_width, max(n - high_width, n - n // 2))
    rest = n - low
    count = -(-rest // high_width)
    edges = [low + round(i * rest / count) for i in range(count + 1)] if count else [low]
    return [(0, low)] + [(edges[i], edges[i + 1] - edges[i]) for i in range(count)]


def _touched(run: OneQubitRun, n: int) -> list[int]:
    qubits: set[int] = set()
    for slot in run.slots:
        for _, wires, _ in slot:
            qubits.update(int(q) for q in wires)
    return sorted(q for q in qubits if q < n)


def schedule(
    circuit: Circuit,
    itemsize: int,
    *,
    keep_final_diagonal: bool,
    widths: tuple[int, int, int, int] | None = None,
) -> SweepSchedule | None:
    """The circuit's sweeps, or None for what sweeps do not cover (CNOTs, no one-qubit gate).

    A CZ run after the last one-qubit layer changes no probability and is dropped unless
    ``keep_final_diagonal`` (the state is wanted). ``itemsize``: bytes per amplitude.
    ``widths``: ``(low width, high width, row bytes, sub-chunk width)``, by default
    :data:`LOW_WIDTH`, :data:`HIGH_WIDTH`, :data:`ROW_BYTES`, :data:`SUB_WIDTH` (tests use small
    ones to exercise every tile shape).
    """
    widths = widths or (LOW_WIDTH[itemsize], HIGH_WIDTH, ROW_BYTES, SUB_WIDTH[itemsize])
    return _schedule(circuit.n_qubits, circuit.gates, itemsize, *widths, keep_final_diagonal)


@functools.lru_cache(maxsize=64)
def _schedule(
    n: int,
    gate_list: tuple[Gate, ...],
    itemsize: int,
    low_width: int,
    high_width: int,
    row_bytes: int,
    sub_width: int,
    keep_final: bool,
) -> SweepSchedule | None:
    steps = list(compile_gates(n, gate_list))
    if any(not isinstance(s, (CZRun, OneQubitRun)) for s in steps):
        return None
    while steps and isinstance(steps[0], CZRun):  # entanglers on |0…0⟩ do nothing
        steps.pop(0)
    if not steps:
        return None
    if not keep_final:
        while isinstance(steps[-1], CZRun):
            steps.pop()
    runs = tuple(s for s in steps if isinstance(s, OneQubitRun))
    groups = _groups(n, low_width, high_width)
    group_of_bit = {bit: g for g, (gs, w) in enumerate(groups) for bit in range(gs, gs + w)}

    # Items after the product state: ("U", run index, {group: [(local bit, qubit)]}), ("D", pairs).
    items: list[tuple] = []
    run_index = 0
    for step in steps[1:]:
        if isinstance(step, CZRun):
            pairs = tuple((n - 1 - a, n - 1 - b) for a, b in step.pairs)
            if items and items[-1][0] == "D":
                items[-1] = ("D", items[-1][1] + pairs)
            else:
                items.append(("D", pairs))
            continue
        run_index += 1
        parts: dict[int, list[tuple[int, int]]] = {}
        for q in _touched(step, n):
            g = group_of_bit[n - 1 - q]
            parts.setdefault(g, []).append((n - 1 - q - groups[g][0], q))
        items.append(("U", run_index, parts))

    sweeps, ops, gates = [], [], []
    diagonals: list[tuple[int, tuple[tuple[int, int], ...]]] = []
    group, position, init = 0, 0, True
    while True:
        start = len(ops)
        while position < len(items):
            item = items[position]
            if item[0] == "D":
                ops.append((DIAGONAL, len(diagonals), 0, 0, 0))
                diagonals.append((group, item[1]))
                position += 1
                continue
            _, run, parts = item
            if group in parts:
                ops += _gate_ops(parts.pop(group), run, gates, sub_width if group == 0 else None)
            if parts:
                break
            position += 1
        done = position == len(items)
        gs, w = groups[group]
        sweeps.append((gs, w, start, len(ops), int(init), int(done)))
        init = False
        if done:
            break
        pending = items[position][2]
        group = min(pending, key=lambda g: (g - group) % len(groups) or len(groups))
    return _pack(n, groups, (row_bytes, sub_width, itemsize), runs, sweeps, ops, gates, diagonals)


def _gate_ops(
    bits: list[tuple[int, int]], run: int, gates: list[tuple[int, int]], sub: int | None
) -> list[tuple[int, int, int, int, int]]:
    """One layer's gates on a group as operations ``(kind, bit, matrix, bit2, matrix2)``,
    recording each gate's ``(run, qubit)`` in ``gates``.

    Gates go in pairs (a pair reads and writes the tile once for two gates) where both strides
    reach 8 amplitudes. The low group's bits 0–4 (or 0–2) go together, in registers, when the
    layer has a gate on each (:func:`qhn.backends.sweep_kernels.low_gates`); else bits 0–2 go one
    by one (a pair at strides 4 and 8 has inner loops too short to vectorize and measured slower
    than two single gates). In the low group (``sub`` given) no pair straddles bit ``sub``, and
    the operations on bits from ``sub`` come last, so the rest of the layer runs sub-chunk by
    sub-chunk in one go.
    """
    ordered = sorted(bits)
    low = sub is not None
    together = (
        next((b for b in REGISTER_BITS if [bit for bit, _ in ordered[:b]] == list(range(b))), 0)
        if low
        else 0
    )
    paired_from = max(together, 3) if low else 0
    single = [(bit, q) for bit, q in ordered if together <= bit < paired_from]
    ranges = [[(bit, q) for bit, q in ordered if paired_from <= bit and (not low or bit < sub)]]
    if low:
        ranges.append([(bit, q) for bit, q in ordered if bit >= max(sub, paired_from)])
    ops = []
    if together:
        ops.append((LOW_GATES, together, len(gates), 0, 0))
        gates += [(run, q) for _, q in ordered[:together]]
    for bit, q in single:
        ops.append((GATE, bit, len(gates), 0, 0))
        gates.append((run, q))
    for wide in ranges:
        for (j, qj), (k, qk) in zip(wide[0::2], wide[1::2], strict=False):
            ops.append((GATE_PAIR, j, len(gates), k, len(gates) + 1))
            gates += [(run, qj), (run, qk)]
        if len(wide) % 2:
            bit, q = wide[-1]
            ops.append((GATE, bit, len(gates), 0, 0))
            gates.append((run, q))
    return ops


def _pack(n, groups, sizes, runs, sweeps, ops, gates, diagonals) -> SweepSchedule:
    """Arrays for the kernel. A diagonal's tile has columns of the bits below ``cb``: a high
    group's row (``min(line, 2^gs)`` amplitudes) or, in the low group, ``line`` amplitudes of a
    sub-chunk (rows are then the group's bits from ``cb``)."""
    row_bytes, sub_width, itemsize = sizes
    line_bits = _line(row_bytes, itemsize).bit_length() - 1
    geometry = []
    for g, pairs in diagonals:
        gs, w = groups[g]
        if gs:
            cb = min(line_bits, gs)
            geometry.append((gs, w, cb, pairs))
        else:
            cb = min(line_bits, sub_width, w)
            geometry.append((cb, w - cb, cb, pairs))

    def table(rows, width):
        return np.asarray(rows, dtype=np.int64).reshape(-1, width)

    return SweepSchedule(
        n=n,
        first_width=groups[0][1],
        row_bytes=row_bytes,
        sub_width=sub_width,
        itemsize=itemsize,
        runs=runs,
        sweeps=table(sweeps, 6),
        ops=table(ops, 5),
        gates=table(gates, 2),
        diagonals=diagonal_tables(geometry),
    )
