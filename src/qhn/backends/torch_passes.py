"""The torch path of the statevector simulator: a circuit compiled into a short program of
batched passes over the state, and its adjoint.

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

The passes' operands are planned from θ by :mod:`qhn.backends.torch_plan`.

Real circuits (RY, H, X, CZ, CNOT) run in real arithmetic; others in complex.

Gradients: :mod:`qhn.backends.torch_adjoint`. Every pass writes into a preallocated buffer.

The compiled steps (:class:`OneQubitRun`, CZ and CNOT runs) are also what the cache-blocked sweeps
(:mod:`qhn.backends.sweeps`), the MPS and trajectory backends start from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from qhn.backends.entanglers import (
    CNOTRun,
    CZRun,
    compile_cnots,
    gather_index,
    negate_pairs,
)
from qhn.circuits.ir import Circuit, Gate, gate_runs

__all__ = [
    "Block",
    "Buffers",
    "Negate",
    "OneQubitRun",
    "Product",
    "apply_cnots",
    "block_passes",
    "compile_circuit",
    "compile_gates",
    "entangler_steps",
    "factor_positions",
    "forward_pass",
    "gather_factor_entries",
    "kron_matrices",
    "kron_vectors",
    "one_qubit_run",
    "qubit_blocks",
    "run_layers",
    "run_matrices",
    "squared_modulus",
]


@dataclass(frozen=True)
class OneQubitRun:
    """Consecutive one-qubit gates, grouped for vectorized matrix building.

    ``slots[j]`` holds the ``j``-th gate of every qubit, as ``(name, qubits, params)`` groups of
    the same gate name (``params`` is None for fixed gates).
    """

    slots: tuple[tuple[tuple[str, torch.Tensor, torch.Tensor | None], ...], ...]


def one_qubit_run(per_qubit: list[list[Gate]]) -> OneQubitRun:
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
    return OneQubitRun(tuple(slots))


def entangler_steps(n: int, gates: list[Gate]) -> list[object]:
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


def compile_circuit(circuit: Circuit) -> tuple[object, ...]:
    """The circuit's program, cached by its gates alone (a renamed copy, such as the expanded
    circuit of the parameter-shift rule, shares it)."""
    return compile_gates(circuit.n_qubits, circuit.gates)


@functools.lru_cache(maxsize=64)
def compile_gates(n: int, gates: tuple[Gate, ...]) -> tuple[object, ...]:
    """Split the gate list into alternating one-qubit runs and entangler sub-runs.

    The program holds small plans only: parameter indices, wire pairs and CNOT tables of
    ``2^⌈n/2⌉`` entries, never a ``2^n`` tensor.
    """
    program: list[object] = []
    for kind, run in gate_runs(n, gates):
        if kind == "one":
            program.append(one_qubit_run(run))
        else:
            program.extend(entangler_steps(n, run))
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


def run_matrices(
    run: OneQubitRun, params: torch.Tensor, n: int, dtype: torch.dtype
) -> torch.Tensor:
    """Each qubit's gates in the run multiplied in acting order (identity where none).

    Shapes: params ``(B, P)`` → ``(B, n, 2, 2)``.
    """
    total = None
    for layer in run_layers(run, params, n, dtype):
        total = layer if total is None else layer @ total
    return total


def run_layers(
    run: OneQubitRun, params: torch.Tensor, n: int, dtype: torch.dtype
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


def kron_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """Kronecker product of per-qubit vectors, first qubit most significant.

    Shapes: ``(B, m, 2)`` → ``(B, 2^m)``.
    """
    return kron_matrices(vectors.unsqueeze(-1)).squeeze(-1)


def kron_matrices(matrices: torch.Tensor) -> torch.Tensor:
    """Kronecker products of per-qubit matrices (first qubit most significant), for any leading
    batch dimensions, e.g. several blocks at once; the matrices may be rectangular (the Pauli
    transfer path's ``4 × 2`` and ``2 × 4`` ends, :mod:`qhn.backends.pauli_transfer`).

    Shapes: ``(..., w, o, i)`` → ``(..., o^w, i^w)``; e.g. ``(B, K, w, 2, 2)`` (``K`` blocks of
    ``w`` qubits) → ``(B, K, 2^w, 2^w)``.

    Entry ``(R, C)`` is ``Π_j M_j[R_j, C_j]`` (``R_j``, ``C_j`` the base-``o`` and base-``i``
    digits of factor ``j``): up to :data:`GATHERED_ENTRIES` gathered factor entries, every entry
    of a group of factors is taken with one gather and one product over the factors; a longer
    product is the outer product of its two halves' Kronecker products. A handful of operations
    whatever ``w``, where a factor-by-factor product takes ``w − 1`` steps of several each: on
    the small circuits training runs, building the operands and carrying their gradients back
    to θ are per-operation overhead, not arithmetic.
    """
    w, o, i = matrices.shape[-3:]
    if w * (o * i) ** w > GATHERED_ENTRIES:
        half = w // 2
        left = kron_matrices(matrices[..., :half, :, :])
        right = kron_matrices(matrices[..., half:, :, :])
        product = left[..., :, None, :, None] * right[..., None, :, None, :]
        return product.reshape(*product.shape[:-4], o**w, i**w)
    factors = matrices.reshape(-1, w * o * i)
    entries = gather_factor_entries(factors, factor_positions(((0, w),), o, i, w)).prod(1)
    return entries.view(*matrices.shape[:-3], o**w, i**w)


def gather_factor_entries(factors: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[b, j, e] = f[b, index[j, e]]``, ``f`` being a row of ``factors`` followed by a 1 (at
    position ``F``: the padding of products narrower than ``J`` factors, see
    :func:`factor_positions`). Shapes: ``(B, F)``, ``(J, E)`` → ``(B, J, E)``."""
    batch = factors.shape[0]
    flat = torch.cat([factors, factors.new_ones(batch, 1)], 1)
    # gather, not index_select: along the last dimension index_select is 10x slower here.
    picked = torch.gather(flat, 1, index.to(flat.device).view(1, -1).expand(batch, -1))
    return picked.view(batch, *index.shape)


GATHERED_ENTRIES = 4096
"""The most factor entries :func:`kron_matrices` gathers at once (``w·(o·i)^w``; 4 factors of
``2 × 2`` take 1,024)."""


@functools.lru_cache(maxsize=64)
def factor_positions(
    parts: tuple[tuple[int, int], ...], rows: int, cols: int, n: int
) -> torch.Tensor:
    """Where the factors of Kronecker products sit among ``n`` flattened ``rows × cols``
    factors: one product per part (qubits ``start..stop−1``), their entries concatenated.

    ``index[j, e]`` for factor ``j`` of entry ``e = (R, C)`` of a part (row-major; ``R_j``,
    ``C_j`` the base-``rows`` and base-``cols`` digits of factor ``j``, the first most
    significant) is ``(start + j)·rows·cols + R_j·cols + C_j``, or ``n·rows·cols`` (a padding
    1) for ``j`` beyond the part's width. Shape ``(J, E)``, ``J`` the widest part. Cached: do
    not modify."""
    size = rows * cols
    depth = max(stop - start for start, stop in parts)
    pieces = []
    for start, stop in parts:
        w = stop - start
        row = torch.arange(rows**w)[:, None]
        col = torch.arange(cols**w)[None, :]
        index = torch.full((depth, rows**w * cols**w), n * size, dtype=torch.int64)
        for j in range(w):
            digit_r = (row // rows ** (w - 1 - j)) % rows
            digit_c = (col // cols ** (w - 1 - j)) % cols
            index[j] = ((start + j) * size + digit_r * cols + digit_c).reshape(-1)
        pieces.append(index)
    return torch.cat(pieces, dim=1)


def qubit_blocks(n: int, k: int) -> list[tuple[int, int]]:
    """Split qubits ``0..n−1`` into contiguous blocks of at most ``k``, as even as possible."""
    count = -(-n // k)
    edges = [round(i * n / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


@functools.lru_cache(maxsize=64)
def _block_groups(n: int, k: int) -> tuple[tuple[tuple[int, ...], torch.Tensor], ...]:
    """The blocks of :func:`qubit_blocks` grouped by width, as ``(starts, index)`` with ``index``
    ``(len(starts), width)`` the qubits of each block: one gather and one Kronecker product per
    width. Cached: do not modify."""
    blocks = qubit_blocks(n, k)
    groups = []
    for width in sorted({stop - start for start, stop in blocks}):
        starts = tuple(start for start, stop in blocks if stop - start == width)
        groups.append((starts, torch.tensor(starts)[:, None] + torch.arange(width)))
    return tuple(groups)


# ---------------------------------------------------------------------------- the pass program
@dataclass
class Product:
    """``ψ = left ⊗ right``, the first qubits' columns in halves ``(B, 2^h)``, ``(B, 2^(n−h))``.
    ``source``: the run's :class:`qhn.backends.torch_plan.Operands` they are views of, if any."""

    left: torch.Tensor
    right: torch.Tensor
    source: object | None = None


@dataclass
class Block:
    """Apply ``matrix`` ``(B, 2^w, 2^w)`` to the last ``width`` qubits, moving them to the front.
    ``source``: the run's :class:`qhn.backends.torch_plan.Operands` it is a view of, if any."""

    width: int
    matrix: torch.Tensor
    source: object | None = None


def block_passes(mats: torch.Tensor, n: int, k: int) -> list[Block]:
    """Per-row ``2 × 2`` matrices as the Kronecker-block passes of :func:`qubit_blocks`, last block
    first (each pass moves its qubits to the front, so the order is restored after all of them).
    One gather and one Kronecker product per block width. Shapes: ``(B, n, 2, 2)`` →
    passes with ``(B, 2^w, 2^w)`` matrices."""
    by_start: dict[int, torch.Tensor] = {}
    for starts, index in _block_groups(n, k):
        kron = kron_matrices(mats[:, index.to(mats.device)])
        by_start.update({start: kron[:, i] for i, start in enumerate(starts)})
    return [Block(stop - start, by_start[start]) for start, stop in reversed(qubit_blocks(n, k))]


@dataclass
class Negate:
    """CZ gates applied in place as negations of a quarter of the state each."""

    pairs: tuple[tuple[int, int], ...]


class Buffers:
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


def forward_pass(
    passes: list[object], n: int, buffers: Buffers | None, psi: torch.Tensor | None = None
) -> torch.Tensor:
    """Run the passes, from ``psi`` when the first is not a product state. With ``buffers``
    every pass writes in place (no autograd); without, each pass allocates (plain autograd can
    then differentiate through it)."""
    for op in passes:
        if isinstance(op, Product):
            left, right = op.left.unsqueeze(-1), op.right.unsqueeze(-2)
            if buffers is None:
                psi = (left * right).reshape(left.shape[0], -1)
            else:
                psi = buffers.take()
                torch.mul(left, right, out=psi.view(left.shape[0], left.shape[1], right.shape[2]))
        elif isinstance(op, Block):
            batch, w = op.matrix.shape[0], op.width
            view = psi.view(batch, 2 ** (n - w), 2**w).transpose(1, 2)
            if buffers is None:
                psi = torch.matmul(op.matrix, view).reshape(batch, -1)
            else:
                out = buffers.take(psi)
                torch.matmul(op.matrix, view, out=out.view(batch, 2**w, 2 ** (n - w)))
                psi = out
        elif isinstance(op, Negate):
            # Without buffers, negate a copy: autograd may hold the input.
            psi = negate_pairs(psi if buffers is not None else psi.clone(), n, op.pairs)
        else:
            psi = apply_cnots(psi, op, buffers)
    return psi


def apply_cnots(
    psi: torch.Tensor, run: CNOTRun, buffers: Buffers | None, *, inverse: bool = False
) -> torch.Tensor:
    """``new[i] = old[index[i]]``, or its inverse ``old[index[i]] = new[i]``."""
    index = gather_index(run, psi.device)
    if inverse:
        out = torch.empty_like(psi) if buffers is None else buffers.take(psi)
        return out.index_copy_(1, index, psi)
    if buffers is None:
        return psi.index_select(1, index)
    return torch.index_select(psi, 1, index, out=buffers.take(psi))


def squared_modulus(psi: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    if psi.is_complex():
        if out is None:
            return psi.real * psi.real + psi.imag * psi.imag
        return torch.mul(psi.real, psi.real, out=out).addcmul_(psi.imag, psi.imag)
    return psi * psi if out is None else torch.mul(psi, psi, out=out)
