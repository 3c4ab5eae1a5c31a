"""A fast, batched PyTorch statevector simulator.

The circuit is compiled once (cached by its gates) into a short program of passes over the state:

- a run of one-qubit gates at the start becomes a **product state** built directly as a Kronecker
  product of per-qubit columns, instead of gates applied to ``|0…0⟩``;
- a later run of one-qubit gates is fused per qubit into one 2×2 matrix per qubit, and qubits are
  grouped into blocks of ``k`` whose Kronecker product (``2^k × 2^k``) is applied as one matrix
  product over the reshaped state, so a layer costs ``⌈n/k⌉`` passes instead of ``n``;
- a CZ gate inside a block (or a product-state half) just before it is folded into that block's
  matrix as ±1 rows; one across blocks negates a quarter of the state in place; a run of CNOTs is
  one gather through an index built from two tables of ``2^⌈n/2⌉`` entries
  (:mod:`qhn.backends.entanglers`). The compiled program, cached by the gate list, holds no
  ``2^n`` tensor.

Real circuits (RY, H, X, CZ, CNOT) run in real arithmetic; others in complex.

Gradients use the **adjoint method** (a custom autograd function): the forward pass keeps only the
final state; the backward pass walks the program in reverse, un-applying each unitary pass to the
state and to the adjoint vector ``λ = ∂L/∂ψ̄`` together, and contracts them into the gradient of each
small block matrix, which autograd then carries to θ. Memory stays at six state vectors whatever
the depth, and every pass writes into a preallocated buffer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_memory,
    check_sample_memory,
    check_shots,
    chunked_expectations,
)
from qhn.backends.entanglers import (
    CNOTRun,
    CZRun,
    compile_cnots,
    gather_index,
    group_sign,
    negate_pairs,
    split_pairs,
)
from qhn.backends.sampling import sample_bits
from qhn.circuits.ir import Circuit, Gate, gate_runs
from qhn.errors import ConfigError

__all__ = ["StatevectorBackend"]

#: Largest circuit we accept regardless of budget (int64 indices and sanity).
MAX_QUBITS = 30
#: From this many qubits the default backend runs cache-blocked sweeps when numba is installed
#: (:mod:`qhn.backends.sweeps`); below, a call takes about a millisecond either way, and a
#: process that never reaches this size never imports numba (~0.7 s).
SWEEPS_MIN_QUBITS = 16
#: From this many qubits a batch of circuits is sampled sharing its common leading passes
#: (:mod:`qhn.backends.shared_prefix`); below, one batched pass over all rows is cheaper.
SHARED_PREFIX_MIN_QUBITS = 16


@dataclass(frozen=True)
class _OneQubitRun:
    """Consecutive one-qubit gates, grouped for vectorized matrix building.

    ``slots[j]`` holds the ``j``-th gate of every qubit, as ``(name, qubits, params)`` groups of
    the same gate name (``params`` is None for fixed gates).
    """

    slots: tuple[tuple[tuple[str, torch.Tensor, torch.Tensor | None], ...], ...]


def _one_qubit_run(per_qubit: list[list[Gate]]) -> _OneQubitRun:
    depth = max(len(g) for g in per_qubit)
    slots = []
    for j in range(depth):
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for q, gates in enumerate(per_qubit):
            if j < len(gates):
                qubits, params = groups.setdefault(gates[j].name, ([], []))
                qubits.append(q)
                params.append(-1 if gates[j].param is None else gates[j].param)
        slots.append(
            tuple(
                (
                    name,
                    torch.tensor(qubits, dtype=torch.int64),
                    None if params[0] < 0 else torch.tensor(params, dtype=torch.int64),
                )
                for name, (qubits, params) in groups.items()
            )
        )
    return _OneQubitRun(tuple(slots))


def _entangler_steps(n: int, gates: list[Gate]) -> list[object]:
    """A run of CZ/CNOT gates as maximal sub-runs of one kind (:mod:`qhn.backends.entanglers`)."""
    steps: list[object] = []
    i = 0
    while i < len(gates):
        j = i
        while j < len(gates) and gates[j].name == gates[i].name:
            j += 1
        if gates[i].name == "cz":
            steps.append(CZRun(tuple(tuple(sorted(g.wires)) for g in gates[i:j])))
        else:
            steps.append(compile_cnots(n, tuple(g.wires for g in gates[i:j])))
        i = j
    return steps


def _compile(circuit: Circuit) -> tuple[object, ...]:
    """The circuit's program, cached by its gates alone (a renamed copy, such as the expanded
    circuit of the parameter-shift rule, shares it)."""
    return _compile_gates(circuit.n_qubits, circuit.gates)


@functools.lru_cache(maxsize=64)
def _compile_gates(n: int, gates: tuple[Gate, ...]) -> tuple[object, ...]:
    """Split the gate list into alternating one-qubit runs and entangler sub-runs.

    The program holds small plans only: parameter indices, wire pairs and CNOT tables of
    ``2^⌈n/2⌉`` entries, never a ``2^n`` tensor.
    """
    program: list[object] = []
    for kind, run in gate_runs(n, gates):
        if kind == "one":
            program.append(_one_qubit_run(run))
        else:
            program.extend(_entangler_steps(n, run))
    return tuple(program)


def _gate_matrices(
    name: str, angles: torch.Tensor | None, batch: int, count: int, dtype: torch.dtype
) -> torch.Tensor:
    """2×2 matrices of ``count`` gates of one kind. Shapes: angles ``(B, G)`` → ``(B, G, 2, 2)``."""
    if angles is None:
        value = [[1.0, 1.0], [1.0, -1.0]] if name == "h" else [[0.0, 1.0], [1.0, 0.0]]
        scale = 2**-0.5 if name == "h" else 1.0
        fixed = torch.tensor(value, dtype=torch.float64) * scale
        return fixed.to(dtype).expand(batch, count, 2, 2)
    half = angles / 2
    c, s = torch.cos(half), torch.sin(half)
    if name == "ry":
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).to(dtype)
    zero = torch.zeros_like(c)
    if name == "rx":
        cc = torch.complex(c, zero)
        ms = torch.complex(zero, -s)
        return torch.stack([torch.stack([cc, ms], -1), torch.stack([ms, cc], -1)], -2)
    # rz = diag(e^{-iθ/2}, e^{iθ/2})
    e_minus = torch.complex(c, -s)
    e_plus = torch.complex(c, s)
    z = torch.complex(zero, zero)
    return torch.stack([torch.stack([e_minus, z], -1), torch.stack([z, e_plus], -1)], -2)


def _run_matrices(
    run: _OneQubitRun, params: torch.Tensor, n: int, dtype: torch.dtype
) -> torch.Tensor:
    """Each qubit's gates in the run multiplied in acting order (identity where none).

    Shapes: params ``(B, P)`` → ``(B, n, 2, 2)``.
    """
    total = None
    for layer in _run_layers(run, params, n, dtype):
        total = layer if total is None else layer @ total
    return total


def _run_layers(
    run: _OneQubitRun, params: torch.Tensor, n: int, dtype: torch.dtype
) -> list[torch.Tensor]:
    """The run's slots as matrices: layer ``j`` holds each qubit's ``j``-th gate (identity where
    a qubit has fewer). A single rotation layer is built directly (no identity to fill), and may
    be a broadcast view: do not modify. Shapes: params ``(B, P)`` → ``depth`` tensors
    ``(B, n, 2, 2)``."""
    batch = params.shape[0]
    if len(run.slots) == 1 and len(run.slots[0]) == 1:
        name, qubits, index = run.slots[0][0]
        if qubits.numel() == n:  # one gate kind on every qubit in order (a rotation layer)
            angles = None if index is None else params[:, index.to(params.device)]
            return [_gate_matrices(name, angles, batch, n, dtype)]
    eye = torch.eye(2, dtype=dtype, device=params.device).expand(batch, n, 2, 2)
    layers = []
    for slot in run.slots:
        layer = eye.clone()
        for name, qubits, index in slot:
            qubits = qubits.to(params.device)
            angles = None if index is None else params[:, index.to(params.device)]
            layer[:, qubits] = _gate_matrices(name, angles, batch, qubits.numel(), dtype)
        layers.append(layer)
    return layers


def _kron_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """Kronecker product of per-qubit vectors, first qubit most significant.

    Shapes: ``(B, m, 2)`` → ``(B, 2^m)``.
    """
    out = vectors[:, 0]
    for i in range(1, vectors.shape[1]):
        out = (out.unsqueeze(-1) * vectors[:, i].unsqueeze(-2)).reshape(out.shape[0], -1)
    return out


def _kron_matrices(matrices: torch.Tensor) -> torch.Tensor:
    """Kronecker products of per-qubit matrices (first qubit most significant), for any leading
    batch dimensions, e.g. several blocks at once; the matrices may be rectangular (the Pauli
    transfer path's ``4 × 2`` and ``2 × 4`` ends, :mod:`qhn.backends.pauli_transfer`).

    Shapes: ``(..., w, o, i)`` → ``(..., o^w, i^w)``; e.g. ``(B, K, w, 2, 2)`` (``K`` blocks of
    ``w`` qubits) → ``(B, K, 2^w, 2^w)``.
    """
    out = matrices[..., 0, :, :]
    for j in range(1, matrices.shape[-3]):
        m = matrices[..., j, :, :]
        product = out[..., :, None, :, None] * m[..., None, :, None, :]
        out = product.reshape(*product.shape[:-4], out.shape[-2] * m.shape[-2], -1)
    return out


def _blocks(n: int, k: int) -> list[tuple[int, int]]:
    """Split qubits ``0..n−1`` into contiguous blocks of at most ``k``, as even as possible."""
    count = -(-n // k)
    edges = [round(i * n / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


@functools.lru_cache(maxsize=64)
def _block_groups(n: int, k: int) -> tuple[tuple[tuple[int, ...], torch.Tensor], ...]:
    """The blocks of :func:`_blocks` grouped by width, as ``(starts, index)`` with ``index``
    ``(len(starts), width)`` the qubits of each block: one gather and one Kronecker product per
    width. Cached: do not modify."""
    blocks = _blocks(n, k)
    groups = []
    for width in sorted({stop - start for start, stop in blocks}):
        starts = tuple(start for start, stop in blocks if stop - start == width)
        groups.append((starts, torch.tensor(starts)[:, None] + torch.arange(width)))
    return tuple(groups)


# ---------------------------------------------------------------------------- the pass program
@dataclass
class _Product:
    """``ψ = left ⊗ right``, the first qubits' columns in halves ``(B, 2^h)``, ``(B, 2^(n−h))``."""

    left: torch.Tensor
    right: torch.Tensor


@dataclass
class _Block:
    """Apply ``matrix`` ``(B, 2^w, 2^w)`` to the last ``width`` qubits, moving them to the front."""

    width: int
    matrix: torch.Tensor


def _block_passes(mats: torch.Tensor, n: int, k: int) -> list[_Block]:
    """Per-row ``2 × 2`` matrices as the Kronecker-block passes of :func:`_blocks`, last block
    first (each pass moves its qubits to the front, so the order is restored after all of them).
    One gather and one Kronecker product per block width. Shapes: ``(B, n, 2, 2)`` →
    passes with ``(B, 2^w, 2^w)`` matrices."""
    by_start: dict[int, torch.Tensor] = {}
    for starts, index in _block_groups(n, k):
        kron = _kron_matrices(mats[:, index.to(mats.device)])
        by_start.update({start: kron[:, i] for i, start in enumerate(starts)})
    return [_Block(stop - start, by_start[start]) for start, stop in reversed(_blocks(n, k))]


@dataclass
class _Negate:
    """CZ gates applied in place as negations of a quarter of the state each."""

    pairs: tuple[tuple[int, int], ...]


def _fold_cz(
    pairs: tuple[tuple[int, int], ...], passes: list[object], folds: list[tuple[int, int, int]]
) -> tuple[tuple[int, int], ...]:
    """Fold the CZ gates inside one group of ``folds`` into that group's small operand.

    ``folds`` lists ``(start, stop, where)``: qubits ``start..stop−1`` are the rows of the block
    matrix of ``passes[where]`` (or a half of the product state there), which the CZ run follows
    directly. ``diag(s)·M`` then applies both. Returns the pairs across groups, still to apply.
    """
    groups = tuple((start, stop) for start, stop, _ in folds)
    inside, across = split_pairs(pairs, groups)
    for g, group_pairs in inside.items():
        start, stop, where = folds[g]
        op = passes[where]
        if isinstance(op, _Block):
            sign = group_sign(start, stop, group_pairs, op.matrix.real.dtype, op.matrix.device)
            passes[where] = _Block(op.width, op.matrix * sign[:, None])
        elif start == 0:
            sign = group_sign(start, stop, group_pairs, op.left.real.dtype, op.left.device)
            passes[where] = _Product(op.left * sign, op.right)
        else:
            sign = group_sign(start, stop, group_pairs, op.right.real.dtype, op.right.device)
            passes[where] = _Product(op.left, op.right * sign)
    return across


def _plan(
    circuit: Circuit, params: torch.Tensor, real: torch.dtype, complex_: torch.dtype, k: int
) -> tuple[list[object], torch.dtype]:
    """Turn the compiled circuit and the angles into passes with their small operands.

    The small operands (per-block Kronecker matrices, product-state halves) are built with torch
    ops from ``params``, so autograd can carry their gradients to θ. CZ gates inside a block (or a
    product half) just before them are folded into it. Entanglers before the first one-qubit gate
    act on ``|0…0⟩``, which they leave unchanged, and are dropped. Returns the passes and the
    state dtype (complex as soon as any complex gate appears).
    """
    n = circuit.n_qubits
    batch = params.shape[0]
    dtype = real if circuit.is_real else complex_
    blocks = _blocks(n, k)
    passes: list[object] = []
    folds: list[tuple[int, int, int]] = []
    for step in _compile(circuit):
        if isinstance(step, CZRun):
            pairs = _fold_cz(step.pairs, passes, folds) if passes else ()
            if pairs:
                passes.append(_Negate(pairs))
            folds = []
            continue
        if isinstance(step, CNOTRun):
            if passes:
                passes.append(step)
            folds = []
            continue
        mats = _run_matrices(step, params, n, dtype)
        if not passes:
            columns = mats[:, :, :, 0]
            mid = max(1, n // 2)
            right = _kron_vectors(columns[:, mid:]) if n > 1 else columns.new_ones(batch, 1)
            passes.append(_Product(_kron_vectors(columns[:, :mid]), right))
            folds = [(0, mid, 0), (mid, n, 0)] if n > 1 else []
            continue
        folds = []
        for (start, stop), block in zip(reversed(blocks), _block_passes(mats, n, k), strict=True):
            folds.append((start, stop, len(passes)))
            passes.append(block)
    if not passes:
        passes.append(_zero_product(batch, n, dtype, params.device))
    return passes, dtype


def _zero_product(batch: int, n: int, dtype: torch.dtype, device: torch.device) -> _Product:
    """``|0…0⟩`` as a product pass."""
    left = torch.zeros(batch, 2, dtype=dtype, device=device)
    left[:, 0] = 1
    right = torch.zeros(batch, 2 ** (n - 1), dtype=dtype, device=device)
    right[:, 0] = 1
    return _Product(left, right)


class _Buffers:
    """Preallocated state buffers handed out in turn, so passes write in place.

    Fresh multi-MiB tensors cost page faults on every call; reusing a few buffers avoids that.
    """

    def __init__(self, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> None:
        self.shape, self.dtype, self.device = shape, dtype, device
        self.pool: list[torch.Tensor] = []

    def take(self, *avoid: torch.Tensor) -> torch.Tensor:
        for buf in self.pool:
            if all(buf.data_ptr() != a.data_ptr() for a in avoid):
                return buf
        buf = torch.empty(self.shape, dtype=self.dtype, device=self.device)
        self.pool.append(buf)
        return buf


def _forward_pass(
    passes: list[object], n: int, buffers: _Buffers | None, psi: torch.Tensor | None = None
) -> torch.Tensor:
    """Run the passes, from ``psi`` when the first is not a product state. With ``buffers``
    every pass writes in place (no autograd); without, each pass allocates (plain autograd can
    then differentiate through it)."""
    for op in passes:
        if isinstance(op, _Product):
            left, right = op.left.unsqueeze(-1), op.right.unsqueeze(-2)
            if buffers is None:
                psi = (left * right).reshape(left.shape[0], -1)
            else:
                psi = buffers.take()
                torch.mul(left, right, out=psi.view(left.shape[0], left.shape[1], right.shape[2]))
        elif isinstance(op, _Block):
            batch, w = op.matrix.shape[0], op.width
            view = psi.view(batch, 2 ** (n - w), 2**w).transpose(1, 2)
            if buffers is None:
                psi = torch.matmul(op.matrix, view).reshape(batch, -1)
            else:
                out = buffers.take(psi)
                torch.matmul(op.matrix, view, out=out.view(batch, 2**w, 2 ** (n - w)))
                psi = out
        elif isinstance(op, _Negate):
            # Without buffers, negate a copy: autograd may hold the input.
            psi = negate_pairs(psi if buffers is not None else psi.clone(), n, op.pairs)
        else:
            psi = _apply_cnots(psi, op, buffers)
    return psi


def _apply_cnots(
    psi: torch.Tensor, run: CNOTRun, buffers: _Buffers | None, *, inverse: bool = False
) -> torch.Tensor:
    """``new[i] = old[index[i]]``, or its inverse ``old[index[i]] = new[i]``."""
    index = gather_index(run, psi.device)
    if inverse:
        out = torch.empty_like(psi) if buffers is None else buffers.take(psi)
        return out.index_copy_(1, index, psi)
    if buffers is None:
        return psi.index_select(1, index)
    return torch.index_select(psi, 1, index, out=buffers.take(psi))


def _squared_modulus(psi: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    if psi.is_complex():
        if out is None:
            return psi.real * psi.real + psi.imag * psi.imag
        return torch.mul(psi.real, psi.real, out=out).addcmul_(psi.imag, psi.imag)
    return psi * psi if out is None else torch.mul(psi, psi, out=out)


class _AdjointProbs(torch.autograd.Function):
    """Probabilities with an adjoint-method backward. ``(B, P)`` → ``(B, 2**n)``."""

    @staticmethod
    def forward(ctx, params, circuit, backend):  # type: ignore[override]
        # Build the small operands once, with their graph to θ, for the backward pass to reuse.
        with torch.enable_grad():
            theta = params.detach().requires_grad_(True)
            passes, dtype = backend._plan(circuit, theta)
        with torch.no_grad():
            buffers = _Buffers((params.shape[0], 2**circuit.n_qubits), dtype, params.device)
            psi = _forward_pass(passes, circuit.n_qubits, buffers)
            probs = _squared_modulus(
                psi, out=torch.empty(psi.shape, dtype=params.dtype, device=psi.device)
            )
        ctx.save_for_backward(psi)
        ctx.theta, ctx.passes, ctx.dtype, ctx.n = theta, passes, dtype, circuit.n_qubits
        return probs

    @staticmethod
    def backward(ctx, grad_probs):  # type: ignore[override]
        (psi,) = ctx.saved_tensors
        saved = psi
        theta, passes, dtype, n = ctx.theta, ctx.passes, ctx.dtype, ctx.n
        with torch.no_grad():
            # Separate pools: a pass on ψ must never overwrite λ, and back.
            psi_pool = _Buffers(tuple(psi.shape), dtype, psi.device)
            lam_pool = _Buffers(tuple(psi.shape), dtype, psi.device)
            # torch's convention for a real loss: the gradient wrt ψ is 2·∂L/∂ψ̄ = 2·g·ψ.
            lam = (2 * grad_probs).to(dtype) * psi
            small, small_grads = [], []
            batch = psi.shape[0]
            for op in reversed(passes):
                if isinstance(op, _Block):
                    w, m = op.width, op.matrix
                    rows, cols = 2 ** (n - w), 2**w
                    # Forward: out = M·V with V = (ψ_in viewed (rows, cols))ᵀ. Un-apply the
                    # unitary: ψ_in viewed = outᵀ·conj(M); the same map carries λ back.
                    psi_in = psi_pool.take(psi)
                    torch.matmul(
                        psi.view(batch, cols, rows).transpose(1, 2),
                        m.conj(),
                        out=psi_in.view(batch, rows, cols),
                    )
                    lam_out = lam.view(batch, cols, rows)
                    small.append(m)
                    small_grads.append(torch.matmul(lam_out, psi_in.view(batch, rows, cols).conj()))
                    lam_in = lam_pool.take(lam)
                    torch.matmul(
                        lam_out.transpose(1, 2), m.conj(), out=lam_in.view(batch, rows, cols)
                    )
                    psi, lam = psi_in, lam_in
                elif isinstance(op, _Negate):
                    if psi is saved:
                        psi = psi_pool.take().copy_(psi)
                    psi = negate_pairs(psi, n, op.pairs)
                    lam = negate_pairs(lam, n, op.pairs)
                elif isinstance(op, CNOTRun):
                    psi = _apply_cnots(psi, op, psi_pool, inverse=True)
                    lam = _apply_cnots(lam, op, lam_pool, inverse=True)
                else:
                    grid = lam.view(batch, op.left.shape[1], -1)
                    small += [op.left, op.right]
                    small_grads.append(
                        torch.matmul(grid, op.right.conj().unsqueeze(-1)).squeeze(-1)
                    )
                    small_grads.append(torch.matmul(op.left.conj().unsqueeze(1), grid).squeeze(1))
        return carry_to_theta(theta, small, small_grads), None, None


def carry_to_theta(
    theta: torch.Tensor, operands: list[torch.Tensor], grads: list[torch.Tensor]
) -> torch.Tensor:
    """The adjoint's last step: autograd from the gradients of the small operands (block
    matrices, gate matrices, product halves; built from ``theta`` with their graph) to θ. Zeros
    where no operand depends on θ. The operands' graph is kept (it is small), so the caller's
    graph can be differentiated again (``retain_graph=True``). Shapes: ``grads[i]`` like
    ``operands[i]`` → like ``theta``."""
    pairs = [(t, g) for t, g in zip(operands, grads, strict=True) if t.requires_grad]
    if not pairs:
        return torch.zeros_like(theta)
    (grad,) = torch.autograd.grad(
        [t for t, _ in pairs], theta, [g for _, g in pairs], allow_unused=True, retain_graph=True
    )
    return torch.zeros_like(theta) if grad is None else grad


def numba_available() -> bool:
    """Whether numba (the ``fast`` extra, for :mod:`qhn.backends.sweeps`) is installed; found
    without importing it."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


class StatevectorBackend:
    """Exact, differentiable, batched statevector simulation in PyTorch.

    Args:
        dtype: real precision, ``torch.float64`` (default) or ``torch.float32``; complex circuits
            use the matching complex type.
        device: ``"cpu"``, ``"cuda"``; ``None`` picks CPU.
        memory_budget: bytes one call may use for state vectors; larger requests are refused
            before allocating.
        block_qubits: qubits fused into one Kronecker block (a ``2^k × 2^k`` matrix product).
        chunk_bytes: batches are processed in chunks of about this many bytes of state.
        adjoint: differentiate ``probs`` with the adjoint method (default); False uses plain
            autograd through every pass (more memory; kept as a cross-check).
        sweeps: compute states on the CPU in cache-blocked sweeps compiled with numba
            (:mod:`qhn.backends.sweeps`, the ``fast`` extra) rather than as torch passes. None
            (default): when numba is installed, from :data:`SWEEPS_MIN_QUBITS` qubits; True:
            always; False: never. Circuits with CNOTs always use torch passes.
        shift_pairs: in a parameter-shift batch run by sweeps, simulate one π-shifted circuit
            per parameter and combine it with the centre's state into both ``±π/2`` rows
            (:mod:`qhn.backends.shift_pairs`): equal to rounding, about half the circuits.
            False simulates every row (the same bits as one row at a time).
    """

    def __init__(
        self,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        block_qubits: int = 4,
        chunk_bytes: int = 32 * 2**20,
        adjoint: bool = True,
        sweeps: bool | None = None,
        shift_pairs: bool = True,
    ) -> None:
        if dtype not in (torch.float64, torch.float32):
            raise ConfigError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        device = torch.device(device or "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but CUDA is not available")
        if not 1 <= block_qubits <= 10:
            raise ConfigError(f"block_qubits must be in 1..10, got {block_qubits}")
        self.dtype = dtype
        self.complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.device = device
        self.memory_budget = int(memory_budget)
        self.block_qubits = block_qubits
        self.chunk_bytes = chunk_bytes
        self.adjoint = adjoint
        if sweeps not in (None, True, False):
            raise ConfigError(f"sweeps must be None, True or False, got {sweeps!r}")
        if sweeps and not numba_available():
            raise ConfigError(
                "sweeps=True needs numba; install it with: pip install 'qhn[fast]' "
                "(or pass sweeps=None to use it only when installed)"
            )
        self.sweeps = sweeps if sweeps is not None or numba_available() else False
        if shift_pairs not in (True, False):
            raise ConfigError(f"shift_pairs must be True or False, got {shift_pairs!r}")
        self.shift_pairs = bool(shift_pairs)
        self.capabilities = Capabilities(exact_probs=True, backprop=True, max_qubits=MAX_QUBITS)

    def __repr__(self) -> str:
        return f"StatevectorBackend(dtype={self.dtype}, device={self.device})"

    # ----------------------------------------------------------------- public API
    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``|⟨s|U(θ)|0…0⟩|²`` in our index order, simulated in this backend's
        precision and returned in the dtype of ``params`` (float64 for non-tensors), so float32
        simulation feeds float64 sums downstream.

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable in ``params``.
        """
        out_dtype = params.dtype if isinstance(params, torch.Tensor) else torch.float64
        batch, batched = self._prepare(circuit, params)
        chunk = self._chunk_size(circuit)
        parts = [
            self._probs_chunk(circuit, batch[i : i + chunk], out_dtype)
            for i in range(0, batch.shape[0], chunk)
        ]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        out = out.to(out_dtype)
        return out if batched else out[0]

    def state(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """The state vector ``U(θ)|0…0⟩`` (real dtype for real circuits, else complex).

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable (plain autograd).
        """
        batch, batched = self._prepare(circuit, params)
        passes, _ = self._plan(circuit, batch)
        out = _forward_pass(passes, circuit.n_qubits, None)
        return out if batched else out[0]

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times. Shapes: ``(B, P)`` → ``(B, shots, n)`` uint8."""
        check_shots(shots)
        batch, batched = as_param_batch(circuit, params)
        check_sample_memory(batch.shape[0], shots, circuit.n_qubits, self.memory_budget)
        chunk = self._chunk_size(circuit)
        rows = batch.to(self.dtype)  # probabilities in the simulation's precision: no copy
        if batch.shape[0] > 1 and circuit.n_qubits >= SHARED_PREFIX_MIN_QUBITS:
            bits = self._sample_shared(circuit, rows, shots, generator)
            return bits if batched else bits[0]
        with torch.no_grad():
            # Chunk by chunk, so a large batch (e.g. 2P shifted circuits) never holds all its
            # probability vectors at once.
            parts = [
                sample_bits(self.probs(circuit, rows[i : i + chunk]), shots, generator=generator)
                for i in range(0, batch.shape[0], chunk)
            ]
        bits = parts[0] if len(parts) == 1 else torch.cat(parts)
        return bits if batched else bits[0]

    def expectations(
        self, circuit: Circuit, params: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_s q_r(s) w(s)`` for every row ``r``, without autograd and without holding every
        row's probability vector. From :data:`SHARED_PREFIX_MIN_QUBITS` qubits, rows that share
        leading passes (the exact parameter-shift batch) simulate them once
        (:mod:`qhn.backends.shared_prefix`); below, rows run in chunks.

        Shapes: params ``(R, P)``, weights ``(2**n,)`` → ``(R,)`` in ``weights``' dtype.
        """
        batch, _ = as_param_batch(circuit, params)
        if tuple(weights.shape) != (2**circuit.n_qubits,):
            raise ConfigError(
                f"weights must have shape ({2**circuit.n_qubits},), one per bitstring of "
                f"{circuit.n_qubits} qubits, got {tuple(weights.shape)}"
            )
        if batch.shape[0] > 1 and circuit.n_qubits >= SHARED_PREFIX_MIN_QUBITS:
            out = torch.empty(batch.shape[0], dtype=weights.dtype, device=weights.device)
            for which, probs in self._shared_probs(circuit, batch.to(self.dtype)):
                out[which] = probs.to(weights.dtype) @ weights
            return out
        return chunked_expectations(self, circuit, batch, weights, self.chunk_bytes)

    # ----------------------------------------------------------------- internals
    def _shared_probs(self, circuit: Circuit, params: torch.Tensor) -> Iterator:
        """``(rows, probs)`` covering every row once, sharing leading sweeps where this backend
        runs them (:func:`qhn.backends.sweep_shared.shared_sweep_probs`), else leading passes
        (:func:`qhn.backends.shared_prefix.shared_prefix_probs`); at most one chunk of branching
        rows and the shared row are alive at once. The limits are checked and the passes planned
        when called, before the caller allocates anything. Shapes: params ``(R, P)``."""
        from qhn.backends.shared_prefix import shared_prefix_probs

        n, rows = circuit.n_qubits, params.shape[0]
        if n > MAX_QUBITS:
            raise ConfigError(f"{n} qubits exceed this simulator's limit of {MAX_QUBITS}")
        batch = params.to(device=self.device, dtype=self.dtype)
        chunk = min(rows, self._chunk_size(circuit))
        per_amplitude = self._bytes_per_amplitude(circuit, False)
        check_memory(n, chunk + 1, per_amplitude, 1, self.memory_budget)
        sweeps = self._sweep_schedule(circuit, keep_state=False)
        if sweeps is not None:
            from qhn.backends.shift_pairs import find_shift_pairs, paired_buffers, paired_probs
            from qhn.backends.sweep_shared import shared_sweep_probs

            dtype = self._state_dtype(circuit)
            pairs = find_shift_pairs(circuit, batch) if self.shift_pairs else None
            # Pairs hold a few more states than a chunk; where they would not fit the budget,
            # every row is simulated instead (checked above).
            paired_bytes = paired_buffers(chunk) * 2**n * dtype.itemsize
            if pairs is not None and paired_bytes <= self.memory_budget:
                return paired_probs(sweeps, batch, pairs, dtype, chunk)
            return shared_sweep_probs(sweeps, batch, dtype, chunk)
        with torch.no_grad():
            passes, dtype = self._plan(circuit, batch.detach())
        return shared_prefix_probs(passes, n, dtype, rows, chunk)

    def _sample_shared(
        self, circuit: Circuit, params: torch.Tensor, shots: int, generator
    ) -> torch.Tensor:
        """``sample`` for a batch whose rows share leading passes (parameter-shift batches):
        :meth:`_shared_probs`. The uniforms are drawn as the chunked path draws them (row order,
        one ``(rows, shots)`` block), so the bits are the same."""
        from qhn.backends.sampling import sample_indices
        from qhn.bits import index_to_bits

        n, rows = circuit.n_qubits, params.shape[0]
        probabilities = self._shared_probs(circuit, params)
        u = torch.rand(rows, shots, generator=generator, dtype=torch.float64, device=self.device)
        out = torch.empty(rows, shots, n, dtype=torch.uint8, device=self.device)
        for which, probs in probabilities:
            if probs.shape[0] == 1 and which.numel() > 1:  # one distribution for many rows
                flat = sample_indices(probs, shots * which.numel(), uniforms=u[which].view(1, -1))
                index = flat.view(which.numel(), shots)
            else:
                index = sample_indices(probs, shots, uniforms=u[which])
            out[which] = index_to_bits(index, n)
        return out

    def _state_dtype(self, circuit: Circuit) -> torch.dtype:
        return self.dtype if circuit.is_real else self.complex_dtype

    def _state_itemsize(self, circuit: Circuit) -> int:
        return self._state_dtype(circuit).itemsize

    def _sweep_schedule(self, circuit: Circuit, *, keep_state: bool):
        """The circuit's cache-blocked sweeps (:mod:`qhn.backends.sweeps`) when this backend
        runs them: on the CPU, with numba, for circuits without CNOTs; else None."""
        if self.sweeps is False or self.device.type != "cpu":
            return None
        if self.sweeps is None and circuit.n_qubits < SWEEPS_MIN_QUBITS:
            return None
        from qhn.backends.sweeps import schedule

        return schedule(circuit, self._state_itemsize(circuit), keep_final_diagonal=keep_state)

    def _bytes_per_amplitude(self, circuit: Circuit, grad: bool) -> int:
        """Peak bytes per amplitude of one circuit in a chunk.

        Forward: two state buffers (a real state's probabilities overwrite one of them; a complex
        one's take a real vector). Adjoint: the saved state, λ and two pools of two states, the
        probabilities and the gradient arriving on them. Plain autograd: every pass's output.
        Always: a float64 copy for the caller when simulating in float32, and a CNOT run's int64
        gather index.
        """
        real = torch.empty((), dtype=self.dtype).element_size()
        if grad:
            states = 6 if self.adjoint else len(circuit.gates) + 2
            extra = 2 * real
        else:
            states, extra = 2, (0 if circuit.is_real else real)
        extra += 8 if self.dtype != torch.float64 else 0
        extra += 8 if any(g.name == "cnot" for g in circuit.gates) else 0
        return states * self._state_itemsize(circuit) + extra

    def _chunk_size(self, circuit: Circuit) -> int:
        return max(1, self.chunk_bytes // ((2**circuit.n_qubits) * self._state_itemsize(circuit)))

    def _prepare(self, circuit: Circuit, params: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if circuit.n_qubits > MAX_QUBITS:
            raise ConfigError(
                f"{circuit.n_qubits} qubits exceed this simulator's limit of {MAX_QUBITS}"
            )
        batch, batched = as_param_batch(circuit, params)
        batch = batch.to(device=self.device, dtype=self.dtype)
        chunk = min(batch.shape[0], self._chunk_size(circuit))
        grad = torch.is_grad_enabled() and batch.requires_grad
        check_memory(
            circuit.n_qubits, chunk, self._bytes_per_amplitude(circuit, grad), 1, self.memory_budget
        )
        check_memory(circuit.n_qubits, batch.shape[0], batch.element_size(), 1, self.memory_budget)
        return batch, batched

    def _plan(self, circuit: Circuit, params: torch.Tensor) -> tuple[list[object], torch.dtype]:
        return _plan(circuit, params, self.dtype, self.complex_dtype, self.block_qubits)

    def _probs_chunk(
        self, circuit: Circuit, params: torch.Tensor, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Probabilities of one chunk of rows, in the simulation's real precision (or directly
        in ``out_dtype`` where the sweeps write them)."""
        if torch.is_grad_enabled() and params.requires_grad:
            if self.adjoint:
                sweeps = self._sweep_schedule(circuit, keep_state=True)
                if sweeps is not None:
                    from qhn.backends.sweeps import SweepAdjointProbs

                    return SweepAdjointProbs.apply(params, sweeps, self._state_dtype(circuit))
                return _AdjointProbs.apply(params, circuit, self)
            passes, _ = self._plan(circuit, params)
            return _squared_modulus(_forward_pass(passes, circuit.n_qubits, None))
        sweeps = self._sweep_schedule(circuit, keep_state=False)
        if sweeps is not None:
            from qhn.backends.sweeps import sweep_probs

            floating = out_dtype if out_dtype is not None and out_dtype.is_floating_point else None
            return sweep_probs(sweeps, params, self._state_dtype(circuit), out_dtype=floating)[0]
        with torch.no_grad():
            passes, dtype = self._plan(circuit, params)
            buffers = _Buffers((params.shape[0], 2**circuit.n_qubits), dtype, params.device)
            psi = _forward_pass(passes, circuit.n_qubits, buffers)
            out = psi if not psi.is_complex() else None
            return _squared_modulus(psi, out=out)
