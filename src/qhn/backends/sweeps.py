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
import os
import threading
from dataclasses import dataclass

import numba
import numpy as np
import torch

from qhn.backends import sweep_kernels, sweep_kernels_back, torch_passes
from qhn.backends.entanglers import CZRun
from qhn.backends.sweep_kernels import DIAGONAL, GATE, GATE_PAIR, LOW_GATES
from qhn.backends.sweep_rotations import scaled_rotations, scaled_rotations_back
from qhn.backends.sweep_signs import DiagonalTables, diagonal_tables
from qhn.backends.torch_adjoint import carry_to_theta
from qhn.circuits.ir import Circuit, Gate

__all__ = ["SweepSchedule", "run_sweeps", "schedule", "sweep_probs"]

if "NUMBA_THREADING_LAYER" not in os.environ:
    # workqueue needs no OpenMP or TBB runtime beside torch's, and is fork-safe.
    numba.config.THREADING_LAYER = "workqueue"

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
    0, matrix, matrix, matrix)``, see :data:`qhn.backends.sweep_kernels.GATE`); ``gates``
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


def _touched(run: torch_passes.OneQubitRun, n: int) -> list[int]:
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
    steps = list(torch_passes.compile_gates(n, gate_list))
    if any(not isinstance(s, (CZRun, torch_passes.OneQubitRun)) for s in steps):
        return None
    while steps and isinstance(steps[0], CZRun):  # entanglers on |0…0⟩ do nothing
        steps.pop(0)
    if not steps:
        return None
    if not keep_final:
        while isinstance(steps[-1], CZRun):
            steps.pop()
    runs = tuple(s for s in steps if isinstance(s, torch_passes.OneQubitRun))
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
    reach 8 amplitudes. The low group's bits 0–2 go together, in registers, when the layer has a
    gate on each (:func:`qhn.backends.sweep_kernels.low_gates`), else one by one (a pair at
    strides 4 and 8 has inner loops too short to vectorize and measured slower than two single
    gates). In the low group (``sub`` given) no pair straddles bit ``sub``, and
    the operations on bits from ``sub`` come last, so the rest of the layer runs sub-chunk by
    sub-chunk in one go.
    """
    ordered = sorted(bits)
    low = sub is not None
    single = [(bit, q) for bit, q in ordered if low and bit < 3]
    ranges = [[(bit, q) for bit, q in ordered if not (low and bit < 3) and (not low or bit < sub)]]
    if low:
        ranges.append([(bit, q) for bit, q in ordered if bit >= max(sub, 3)])
    ops = []
    if [bit for bit, _ in single] == [0, 1, 2]:
        ops.append((LOW_GATES, 0, len(gates), len(gates) + 1, len(gates) + 2))
        gates += [(run, q) for _, q in single]
        single = []
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


def _operands(plan: SweepSchedule, params: torch.Tensor, dtype: torch.dtype):
    """Per-row product halves and gate matrices from θ, as torch tensors (differentiable in
    ``params``). Shapes: params ``(B, P)`` → lo ``(B, 2^w0)``, hi ``(B, 2^(n−w0))``, mats
    ``(G, B, 2, 2)``."""
    return (*product_halves(plan, product_columns(plan, params, dtype)),
            gate_matrices(plan, params, dtype))  # fmt: skip


def product_halves(plan: SweepSchedule, columns: torch.Tensor):
    """The first sweep's product-state factors from each qubit's column: ``lo`` over the low
    group's bits, ``hi`` over the rest. Shapes: ``(B, n, 2)`` → ``(B, 2^w0)``, ``(B, 2^(n−w0))``."""
    split = plan.n - plan.first_width
    lo = torch_passes.kron_vectors(columns[:, split:])
    hi = (
        torch_passes.kron_vectors(columns[:, :split])
        if split
        else columns.new_ones(columns.shape[0], 1)
    )
    return lo, hi


def product_columns(plan: SweepSchedule, params: torch.Tensor, dtype: torch.dtype):
    """Each qubit's column of the product state (its first layer's matrix on ``|0⟩``), from
    which the first sweep's halves are built. Shapes: params ``(B, P)`` → ``(B, n, 2)``."""
    return torch_passes.run_matrices(plan.runs[0], params, plan.n, dtype)[:, :, :, 0]


def gate_matrices(plan: SweepSchedule, params: torch.Tensor, dtype: torch.dtype):
    """The scheduled gates' matrices (gate ``g`` is ``plan.gates[g]``), unscaled.
    Shapes: params ``(B, P)`` → ``(G, B, 2, 2)`` (one zero matrix, never read, when ``G = 0``)."""
    matrices = [torch_passes.run_matrices(run, params, plan.n, dtype) for run in plan.runs[1:]]
    if len(plan.gates):
        return torch.stack([matrices[r - 1][:, q] for r, q in plan.gates.tolist()])
    return torch.zeros(1, params.shape[0], 2, 2, dtype=dtype)


#: Allocations from this size ask Linux for transparent huge pages: a fresh state is written
#: once per call, and faulting it in by 2 MiB pages instead of 4 KiB ones costs about a third
#: (measured: 24 ms instead of 67 ms for 128 MiB).
HUGE_PAGE_BYTES = 4 * 2**20
_MADV_HUGEPAGE = 14


@functools.cache
def _madvise():
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc.madvise


def _empty(batch: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty((batch, size))`` on the CPU, backed by huge pages where Linux allows (an
    advice: ignored where it is not honoured)."""
    out = torch.empty(batch, size, dtype=dtype)
    nbytes = out.numel() * out.element_size()
    madvise = _madvise() if nbytes >= HUGE_PAGE_BYTES else None
    if madvise is not None:
        page = 2**21
        start = (out.data_ptr() + page - 1) & ~(page - 1)
        stop = (out.data_ptr() + nbytes) & ~(page - 1)
        if stop > start:
            madvise(start, stop - start, _MADV_HUGEPAGE)
    return out


#: The backward's two state-sized temporaries (ψ's copy and λ) up to this many bytes each are
#: kept for the next call: freed and allocated again, buffers of a few MiB are handed back to
#: the OS by glibc and page-faulted in again (measured: about 1 ms each at 18 qubits, a tenth of
#: a training step). Larger ones are huge pages, which fault in cheaply.
SCRATCH_KEEP_BYTES = 32 * 2**20
_scratch = threading.local()


def _backward_scratch(shape: torch.Size, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uninitialized ``shape`` buffers for one backward call: kept per thread (a backward
    runs start to end on one thread, and returns nothing that points into them) when small."""
    if shape.numel() * dtype.itemsize > SCRATCH_KEEP_BYTES:
        return _empty(*shape, dtype), _empty(*shape, dtype)
    kept = getattr(_scratch, "buffers", None)
    if kept is None or kept[0].shape != shape or kept[0].dtype != dtype:
        kept = _scratch.buffers = (_empty(*shape, dtype), _empty(*shape, dtype))
    return kept


def _arrays(*tensors: torch.Tensor) -> tuple[np.ndarray, ...]:
    return tuple(np.ascontiguousarray(t.detach().numpy()) for t in tensors)


def _tables(plan: SweepSchedule, state: np.ndarray) -> tuple[np.ndarray, ...]:
    if state.dtype.itemsize != plan.itemsize:
        raise ValueError(
            f"a schedule for {plan.itemsize}-byte amplitudes got a {state.dtype} state"
        )
    return plan.diagonals.arrays(np.finfo(state.dtype).dtype)


#: From this many qubits a call uses torch's thread count for its sweeps; below, one thread.
PARALLEL_MIN_QUBITS = 18
#: numba's workqueue threading layer is fork-safe but must not be entered from two threads at
#: once: calls take turns.
_PARALLEL_LOCK = threading.Lock()


def _threads(n: int) -> int:
    threads = torch.get_num_threads() if n >= PARALLEL_MIN_QUBITS else 1
    return max(1, min(threads, numba.config.NUMBA_NUM_THREADS))


def _run(plan: SweepSchedule, operands, state, probs, keep_state: bool) -> None:
    lo, hi, mats = _arrays(*operands)
    mats, forms = scaled_rotations(plan.sweeps, plan.ops, mats)
    sweeps = ending_with(plan.sweeps, 2) if keep_state else plan.sweeps
    run_sweeps(plan, sweeps, (mats, forms, lo, hi), state, probs)


def ending_with(sweeps: np.ndarray, final: int) -> np.ndarray:
    """A copy of ``sweeps`` whose last sweep writes ``final``: 0 ψ back, 1 ``|ψ|²`` only (as
    scheduled), 2 both."""
    out = sweeps.copy()
    out[-1, 5] = final
    return out


def run_sweeps(
    plan: SweepSchedule,
    sweeps: np.ndarray,
    operands: tuple[np.ndarray, ...],
    state: np.ndarray,
    probs: np.ndarray,
) -> None:
    """Run ``sweeps`` (rows of ``plan.sweeps``, in order) on every row of ``state``, on torch's
    thread count from :data:`PARALLEL_MIN_QUBITS` qubits. ``operands``: ``(mats, forms, lo,
    hi)`` as :func:`qhn.backends.sweep_rotations.scaled_rotations` and :func:`_operands` give
    them, one column (of ``mats``, ``forms``) or row (of ``lo``, ``hi``) per state row.

    Shapes: state ``(B, 2^n)``, probs ``(B, 2^n)`` real (may be ``state``).
    """
    mats, forms, lo, hi = operands
    args = (state, probs, plan.n, sweeps, plan.ops, mats, forms, lo, hi, _tables(plan, state),
            plan.line, plan.sub_width)  # fmt: skip
    threads = _threads(plan.n)
    if threads == 1:
        sweep_kernels.run(*args)
        return
    with _PARALLEL_LOCK:
        numba.set_num_threads(threads)
        sweep_kernels.run_parallel(*args, threads)


def sweep_probs(
    plan: SweepSchedule,
    params: torch.Tensor,
    dtype: torch.dtype,
    *,
    keep_state: bool = False,
    out_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``|ψ|²`` of each row by sweeps, without autograd, and ψ itself when ``keep_state`` (the
    plan must then keep its final diagonal). ``dtype``: the state's dtype; θ on the CPU.
    ``out_dtype``: the probabilities' dtype (default: ``dtype``'s real precision); the last
    sweep writes them in it directly, e.g. float64 from a float32 state, with no extra pass
    (from :data:`WIDEN_IN_PLACE_BYTES` a row, the state lives in the probabilities' buffer and
    they are widened in place: one more pass, a third less memory).

    Shapes: params ``(B, P)`` → probs ``(B, 2^n)``, ψ ``(B, 2^n)`` in ``dtype`` or None.
    """
    batch, size = params.shape[0], 2**plan.n
    out_dtype = out_dtype or (dtype.to_real() if dtype.is_complex else dtype)
    with torch.no_grad():
        operands = _operands(plan, params.detach(), dtype)
        if _widens_in_place(dtype, out_dtype, size, keep_state):
            probs = _empty(batch, size, out_dtype)
            state = probs.view(dtype)  # (B, 2·2^n): each row's state in its first half
            _run(plan, operands, state.numpy(), state.numpy(), keep_state)
            for row in probs:
                widen_in_place(row, size, dtype)
            return probs, None
        state = _empty(batch, size, dtype)
        in_place = out_dtype == dtype and not keep_state
        probs = state if in_place else _empty(batch, size, out_dtype)
        _run(plan, operands, state.numpy(), probs.numpy(), keep_state)
    return probs, (state if keep_state else None)


#: From this many bytes per row of probabilities, a real state narrower than them (float32 state,
#: float64 probabilities) lives in the first half of the probabilities' own buffer and is widened
#: in place (:func:`widen_in_place`): memory of the probabilities alone, for one more pass.
WIDEN_IN_PLACE_BYTES = 2**25


def _widens_in_place(dtype: torch.dtype, out_dtype: torch.dtype, size: int, keep: bool) -> bool:
    return (
        not keep
        and not dtype.is_complex
        and out_dtype.itemsize == 2 * dtype.itemsize
        and size * out_dtype.itemsize >= WIDEN_IN_PLACE_BYTES
    )


def widen_in_place(row: torch.Tensor, size: int, narrow: torch.dtype) -> None:
    """Convert the ``size`` values of dtype ``narrow`` stored at the start of ``row``'s bytes
    into ``row``'s own dtype, twice as wide, in place.

    Value ``i`` is written over narrow values ``2i`` and ``2i + 1``, so the values are converted
    in halves from the top: ``[size/2, size)`` goes past every narrow value, then each lower
    half ``[⌈hi/2⌉, hi)`` over the half just converted. Copies within a half never overlap, so
    each is one (threaded) ``copy_``; value 0 is read before it is written.

    Shapes: row ``(size,)`` contiguous, ``row.itemsize == 2 · narrow.itemsize``.
    """
    source = row.view(narrow)
    hi = size
    while hi > 1:
        lo = (hi + 1) // 2
        row[lo:hi].copy_(source[lo:hi])
        hi = lo
    row[0] = source[0].item()


class SweepAdjointProbs(torch.autograd.Function):
    """Probabilities by sweeps with an adjoint backward by sweeps
    (:func:`qhn.backends.sweep_kernels.run_back`): the forward keeps only the final state; the
    backward walks the sweeps in reverse with ψ and λ = ∂L/∂ψ̄, collecting the gradient of every
    gate matrix and product half, which autograd carries to θ. Memory: the saved state, ψ and λ.

    Shapes: params ``(B, P)`` → ``(B, 2^n)``. ``plan`` must keep its final diagonal.
    """

    @staticmethod
    def forward(ctx, params, plan, dtype):  # type: ignore[override]
        """Probabilities by sweeps; keeps the final state and the operands' graph to θ."""
        with torch.enable_grad():
            theta = params.detach().requires_grad_(True)
            operands = _operands(plan, theta, dtype)
        batch, size = params.shape[0], 2**plan.n
        state = _empty(batch, size, dtype)
        probs = _empty(batch, size, params.dtype)
        with torch.no_grad():
            _run(plan, operands, state.numpy(), probs.numpy(), keep_state=True)
        ctx.save_for_backward(state)
        ctx.theta, ctx.operands, ctx.plan, ctx.dtype = theta, operands, plan, dtype
        return probs

    @staticmethod
    def backward(ctx, grad_probs):  # type: ignore[override]
        """The gradient wrt θ by the backward sweeps, then autograd from the operands."""
        (saved,) = ctx.saved_tensors
        plan, theta, operands = ctx.plan, ctx.theta, ctx.operands
        with torch.no_grad():
            psi, lam = _backward_scratch(saved.shape, saved.dtype)
            psi.copy_(saved)
            # torch's convention for a real loss: the gradient wrt ψ is 2·∂L/∂ψ̄ = 2·g·ψ. The
            # sweeps run on λ = g·ψ (written into the scratch buffer, no temporary) and the sums,
            # linear in λ, are doubled at the end.
            real = ctx.dtype.to_real() if ctx.dtype.is_complex else ctx.dtype
            torch.mul(grad_probs.to(real), psi, out=lam)
            lo, hi, mats = _arrays(*operands)
            scaled, forms, factors = scaled_rotations_back(plan.sweeps, plan.ops, mats)
            threads = _threads(plan.n)
            grads = np.zeros((threads, *mats.shape), dtype=mats.dtype)
            glo = np.zeros((threads, *lo.shape), dtype=lo.dtype)
            ghi = np.zeros((threads, *hi.shape), dtype=hi.dtype)
            with _PARALLEL_LOCK:
                numba.set_num_threads(threads)
                sweep_kernels_back.run_back(
                    psi.numpy(), lam.numpy(), plan.n, plan.sweeps, plan.ops, scaled, forms, lo,
                    hi, _tables(plan, psi.numpy()), plan.line, plan.sub_width, threads, grads,
                    glo, ghi,
                )  # fmt: skip
            grads *= factors[None, :, :, None, None]
            sums = [torch.from_numpy(2 * a.sum(0)) for a in (glo, ghi, grads)]
        return carry_to_theta(theta, list(operands), sums), None, None
