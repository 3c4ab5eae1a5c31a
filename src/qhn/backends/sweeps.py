"""Run a circuit's sweeps (:mod:`.sweep_schedule`) with the kernels (:mod:`.sweep_kernels`):
the operands from θ, the state buffers, threads, the float32 state widened in place to float64
probabilities, and the adjoint as an autograd function (:mod:`.sweep_kernels_back`).
"""

from __future__ import annotations

import os
import threading

import numba
import numpy as np
import torch

from qhn.backends import sweep_kernels, sweep_kernels_back, torch_passes
from qhn.backends.huge_pages import empty_on_huge_pages
from qhn.backends.rotation_grads import (
    HALF_GENERATORS,
    add_rotation_grads,
    is_one_slot,
    kron_vector_grads,
)
from qhn.backends.sweep_rotations import scaled_rotations, scaled_rotations_back
from qhn.backends.sweep_schedule import SweepSchedule
from qhn.backends.torch_adjoint import carry_to_theta

__all__ = ["as_arrays", "run_operands", "run_sweeps", "sweep_probs"]

if "NUMBA_THREADING_LAYER" not in os.environ:
    # workqueue needs no OpenMP or TBB runtime beside torch's, and is fork-safe.
    numba.config.THREADING_LAYER = "workqueue"


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


def gate_matrices(
    plan: SweepSchedule,
    params: torch.Tensor,
    dtype: torch.dtype,
    runs: list[torch.Tensor] | None = None,
):
    """The scheduled gates' matrices (gate ``g`` is ``plan.gates[g]``), unscaled, from the
    runs' matrices (``runs``: those of ``plan.runs[1:]`` if already built).
    Shapes: params ``(B, P)`` → ``(G, B, 2, 2)`` (one zero matrix, never read, when ``G = 0``)."""
    if not len(plan.gates):
        return torch.zeros(1, params.shape[0], 2, 2, dtype=dtype)
    if runs is None:
        runs = [torch_passes.run_matrices(run, params, plan.n, dtype) for run in plan.runs[1:]]
    runs = torch.stack(runs)
    # One gather (and one scatter in the backward) for every gate, not a select each.
    index = torch.from_numpy(plan.gates).to(params.device)
    return runs[index[:, 0] - 1, :, index[:, 1]]


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
        return empty_on_huge_pages(*shape, dtype), empty_on_huge_pages(*shape, dtype)
    kept = getattr(_scratch, "buffers", None)
    if kept is None or kept[0].shape != shape or kept[0].dtype != dtype:
        kept = _scratch.buffers = (
            empty_on_huge_pages(*shape, dtype),
            empty_on_huge_pages(*shape, dtype),
        )
    return kept


def as_arrays(*tensors: torch.Tensor) -> tuple[np.ndarray, ...]:
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


def run_operands(plan: SweepSchedule, sweeps: np.ndarray, operands, state, probs) -> None:
    """:func:`run_sweeps` from the operands as torch tensors ``(lo, hi, mats)``
    (:func:`_operands`), the rotations scaled per sweep of the plan."""
    lo, hi, mats = as_arrays(*operands)
    mats, forms = scaled_rotations(plan.sweeps, plan.ops, mats)
    run_sweeps(plan, sweeps, (mats, forms, lo, hi), state, probs)


def _run(plan: SweepSchedule, operands, state, probs, keep_state: bool) -> None:
    run_operands(plan, ending_with(plan.sweeps, 2) if keep_state else plan.sweeps, operands,
                 state, probs)  # fmt: skip


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
            probs = empty_on_huge_pages(batch, size, out_dtype)
            state = probs.view(dtype)  # (B, 2·2^n): each row's state in its first half
            _run(plan, operands, state.numpy(), state.numpy(), keep_state)
            for row in probs:
                widen_in_place(row, size, dtype)
            return probs, None
        state = empty_on_huge_pages(batch, size, dtype)
        in_place = out_dtype == dtype and not keep_state
        probs = state if in_place else empty_on_huge_pages(batch, size, out_dtype)
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
        """Probabilities by sweeps; keeps the final state and the operands' graph to θ (or,
        when every run is one slot of rotations, the first run's matrices, from which
        :func:`_rotation_theta_grad` computes the gradient without autograd)."""
        columns = None
        if all(is_one_slot(run) for run in plan.runs):
            theta = params.detach()
            with torch.no_grad():
                runs = [torch_passes.run_matrices(r, theta, plan.n, dtype) for r in plan.runs]
                columns = runs[0]
                operands = (*product_halves(plan, columns[..., 0]),
                            gate_matrices(plan, theta, dtype, runs[1:]))  # fmt: skip
        else:
            with torch.enable_grad():
                theta = params.detach().requires_grad_(True)
                operands = _operands(plan, theta, dtype)
        batch, size = params.shape[0], 2**plan.n
        state = empty_on_huge_pages(batch, size, dtype)
        probs = empty_on_huge_pages(batch, size, params.dtype)
        with torch.no_grad():
            _run(plan, operands, state.numpy(), probs.numpy(), keep_state=True)
        ctx.save_for_backward(state)
        ctx.theta, ctx.operands, ctx.plan, ctx.dtype = theta, operands, plan, dtype
        ctx.columns = columns
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
            lo, hi, mats = as_arrays(*operands)
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
            if ctx.columns is not None:
                grad = _rotation_theta_grad(plan, theta, ctx.columns, operands[2], sums)
                return grad, None, None
        return carry_to_theta(theta, list(operands), sums), None, None


def _rotation_theta_grad(
    plan: SweepSchedule,
    theta: torch.Tensor,
    columns: torch.Tensor,
    mats: torch.Tensor,
    sums: list[torch.Tensor],
) -> torch.Tensor:
    """``dL/dθ`` ``(B, P)`` from the gradients of the product halves and of the gate matrices,
    every run being one slot of rotations (:mod:`qhn.backends.rotation_grads`). Shapes:
    ``columns`` (the first run's matrices) ``(B, n, 2, 2)``, ``mats`` ``(G, B, 2, 2)``; ``sums``
    like the operands."""
    glo, ghi, gmats = sums
    out = torch.zeros_like(theta)
    split = plan.n - plan.first_width
    per_qubit = kron_vector_grads(columns[:, split:, :, 0], glo)
    if split:
        per_qubit = torch.cat([kron_vector_grads(columns[:, :split, :, 0], ghi), per_qubit], 1)
    per_qubit = per_qubit.unsqueeze(-1)
    add_rotation_grads(plan.runs[0], columns, torch.cat([per_qubit, 0 * per_qubit], -1), out)
    if len(plan.gates):
        half, params = _gate_generators(plan)
        half = (half if mats.is_complex() else half.real).to(mats.dtype)
        value = ((half.unsqueeze(1) @ mats) * gmats.conj()).sum((-2, -1)).real
        rotations = params >= 0
        out.index_add_(1, params[rotations], value[rotations].T.to(out.dtype))
    return out


def _gate_generators(plan: SweepSchedule) -> tuple[torch.Tensor, torch.Tensor]:
    """Each scheduled gate's ``−(i/2)·G`` ``(G, 2, 2)`` (zero for a fixed gate) and angle index
    ``(G,)`` (−1 for a fixed gate); remembered on the plan."""
    memo = plan.__dict__.get("_gate_generators")
    if memo is None:
        half, params = [], []
        for run, qubit in plan.gates.reshape(-1, 2).tolist():
            ((slot,),) = (plan.runs[run].slots,)
            for name, qubits, index in slot:
                where = (qubits == qubit).nonzero()
                if where.numel():
                    rotation = index is not None
                    half.append(HALF_GENERATORS[name] if rotation else ((0, 0), (0, 0)))
                    params.append(int(index[where[0, 0]]) if rotation else -1)
                    break
        memo = (torch.tensor(half, dtype=torch.complex128), torch.tensor(params))
        plan.__dict__["_gate_generators"] = memo
    return memo
