"""Exact noisy outcome probabilities in the Pauli transfer (PTM) representation.

The density matrix is written over Pauli strings, ``ρ = 2^-n Σ_P c_P P``, with ``c`` a REAL vector
of ``4^n`` entries (half the bytes of a complex ``ρ``; real arithmetic even for complex gates).
Each qubit's Pauli is a base-4 digit ``d = 2z + x``: ``I = 0, X = 1, Z = 2, Y = 3``, qubit 0 most
significant. The gate noise of :mod:`qhn.backends.noise_model` acts diagonally here: a
depolarizing channel on ``k`` wires multiplies every string that is not the identity on those
wires by ``1 − λ``, ``λ = 4^k p/(4^k − 1)``.

- A run of one-qubit gates on a qubit is one ``2 × 2`` unitary ``U`` (multiplied in acting order)
  and, since the depolarizing channel commutes with unitaries on its wire, one channel with factor
  ``f = (1 − λ₁)^count``: a ``4 × 4`` real matrix ``R_ij = ½·Tr(P_i U P_j U†)·f_j`` (``f_0 = 1``).
- A CNOT or CZ maps Pauli strings to Pauli strings up to a sign (``(x|z)`` bits change
  GF(2)-linearly), and its channel is diagonal: a run of entanglers is one signed, scaled
  permutation ``c'[i] = m[i]·c[g[i]]``, compiled once per gate run and noise level
  (:func:`entangler_table`).
- A **layer** is a stretch of one-qubit runs and the entangler runs between them, on contiguous
  qubit blocks that none of those entanglers crosses: each block's map (Kronecker products of the
  ``R`` and the entanglers restricted to the block, ``4^w × 4^w``) is applied as ONE matrix product
  to the last ``w`` digits of ``c`` viewed as ``(B, rest, 4^w)``, written to the front, so a full
  cycle of blocks restores the digit order with no transposing copies. Entangler runs between
  layers are gathers. The grouping minimizes the estimated sweeps over ``c`` (:func:`_plan`); for
  a brick-wall circuit every other entangler run is folded into a layer.
- ``|0…0⟩`` has ``c_P = 1`` on the ``2^n`` strings of ``I`` and ``Z`` and ``0`` elsewhere, and
  entanglers keep that subspace: until the first one-qubit gate ``c`` is held on it only (``2^n``
  entries), and the first layer expands it with ``4 × 2`` per-qubit matrices.
- Only ``I``/``Z`` strings have a diagonal, ``p(x) = 2^-n Σ_{P ∈ {I,Z}^n} c_P (−1)^{x·z(P)}``:
  the last layer keeps just those rows (``2 × 4`` matrices, so its passes shrink ``c``),
  entanglers after it act on the subspace, and a Walsh–Hadamard transform gives ``p``.

Everything is plain torch ops (matmul, index_select, mul), so ``p`` is differentiable by autograd
in θ.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import torch

from qhn.backends.torch_passes import (
    OneQubitRun,
    kron_matrices,
    one_qubit_run,
    qubit_blocks,
    run_matrices,
)
from qhn.circuits.ir import REAL_GATES, Circuit, Gate, gate_runs

__all__ = [
    "entangler_table",
    "entries_per_row",
    "one_qubit_ptm",
    "ptm_probs",
    "table_bytes",
]

#: Widest block of a layer (``4^w × 4^w`` matrices), and how many multiply-adds per entry take as
#: long as one sweep over ``c`` (memory traffic): the planner's cost model. Chosen by timing.
MAX_BLOCK_QUBITS = 3
PASS_COST = 160.0
#: An entangler run applied as a gather (index_select and a multiply), in sweeps.
GATHER_SWEEPS = 2.3
#: Bytes of compiled entangler tables kept between calls (least recently used dropped first).
TABLE_CACHE_BYTES = 512 * 2**20

#: ``I, X, Z, Y`` (digits ``0..3``), the Hermitian Paulis.
_PAULIS = torch.tensor(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[1, 0], [0, -1]], [[0, -1j], [1j, 0]]],
    dtype=torch.complex128,
)
#: The digits of ``I`` and ``Z``: the strings with a diagonal.
_IZ = [0, 2]
#: ``p`` from the ``I``/``Z`` coefficients of one qubit: ``p(0|1) = ½(c_I ± c_Z)``.
_HALF_HADAMARD = torch.tensor([[0.5, 0.5], [0.5, -0.5]], dtype=torch.float64)

_tables: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()


def one_qubit_ptm(u: torch.Tensor) -> torch.Tensor:
    """Pauli transfer matrices ``R_ij = ½·Re Tr(P_i U P_j U†)`` (digit order ``I, X, Z, Y``).

    Shapes: ``(..., 2, 2)`` real or complex → ``(..., 4, 4)`` float64.
    """
    u = u.to(torch.complex128)
    paulis = _PAULIS.to(u.device)
    moved = u.unsqueeze(-3) @ paulis @ u.conj().transpose(-1, -2).unsqueeze(-3)
    # Tr(P_i M) = Σ_ab (P_i)_ba M_ab.
    return 0.5 * torch.einsum("iba,...jab->...ij", paulis, moved).real


# ---------------------------------------------------------------------------- entangler tables
def _clifford_action(
    i: torch.Tensor, n: int, gate: Gate, diagonal: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """For string indices ``i``: the string ``f(i)`` the gate maps onto ``i``, the sign ``s(i)``
    with ``U P_{f(i)} U† = s(i)·P_i`` (None when all +1), and whether ``i`` is non-identity on
    the gate's wires. CNOT and CZ are involutions, so ``f`` maps both ways.

    ``diagonal``: ``i`` indexes the ``I``/``Z`` strings only (bit ``n−1−q`` is ``z_q``).
    """
    a, b = gate.wires
    if diagonal:
        sa, sb = n - 1 - a, n - 1 - b
        za, zb = (i >> sa) & 1, (i >> sb) & 1
        touched = (za | zb).bool()
        if gate.name == "cz":
            return i, None, touched
        return i ^ (zb << sa), None, touched  # Z_b → Z_a Z_b
    sa, sb = 2 * (n - 1 - a), 2 * (n - 1 - b)
    xa, za = (i >> sa) & 1, (i >> (sa + 1)) & 1
    xb, zb = (i >> sb) & 1, (i >> (sb + 1)) & 1
    touched = (xa | za | xb | zb).bool()
    if gate.name == "cnot":  # X_a → X_a X_b, Z_b → Z_a Z_b (Aaronson–Gottesman phase rule)
        image = i ^ (xa << sb) ^ (zb << (sa + 1))
        negative = xa & zb & (xb ^ za ^ 1)
    else:  # cz: X_a → X_a Z_b, X_b → Z_a X_b
        image = i ^ (xb << (sa + 1)) ^ (xa << (sb + 1))
        negative = xa & xb & (za ^ zb)
    return image, 1.0 - 2.0 * negative.to(torch.float64), touched


def entangler_table(
    n: int, gates: tuple[Gate, ...], lam: float, diagonal: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run of CNOT/CZ ``gates``, each followed by a two-qubit channel of strength ``lam``, as
    ``c'[i] = m[i]·c[g[i]]``. Returns ``(g, m)``: ``g`` int32 (int64 beyond ``2^31`` strings),
    ``m`` float64 or None when every factor is 1. Shapes ``(4^n,)`` (``(2^n,)`` when
    ``diagonal``: the ``I``/``Z`` strings only). Cached (at most :data:`TABLE_CACHE_BYTES`).

    Composition: after gates ``1..g``, ``c_g[i] = d_g(i)·s_g(i)·c_{g−1}[f_g(i)]``, so
    ``g = f_1 ∘ … ∘ f_last`` and ``m = Π_g (d_g·s_g) ∘ f_{g+1} ∘ … ∘ f_last``: walking the gates
    backwards from ``j = i``, multiply by ``(d_g·s_g)(j)`` and map ``j ← f_g(j)``; elementwise bit
    operations only, no gathers.
    """
    key = (n, gates, lam, diagonal)
    if key in _tables:
        _tables.move_to_end(key)
        return _tables[key]
    size = 2**n if diagonal else 4**n
    split = _split(n, gates)
    if split is not None:
        entry = _join(
            entangler_table(split, tuple(g for g in gates if max(g.wires) < split), lam, diagonal),
            entangler_table(
                n - split,
                tuple(
                    Gate(g.name, tuple(q - split for q in g.wires))
                    for g in gates
                    if min(g.wires) >= split
                ),
                lam,
                diagonal,
            ),
        )
        return _remember(key, entry)
    # int32 strings halve the table and the temporaries of building it.
    i = torch.arange(size, dtype=torch.int32 if size <= 2**31 else torch.int64)
    index, factor = i, None
    for gate in reversed(gates):
        image, sign, touched = _clifford_action(index, n, gate, diagonal)
        # float64 values: torch.where on Python scalars would round 1 − λ to float32.
        noise = None if lam == 0 else 1.0 - lam * touched.to(torch.float64)
        for part in (sign, noise):
            if part is not None:
                factor = part if factor is None else factor.mul_(part)
        index = image
    if factor is not None and bool((factor == 1).all()):
        factor = None
    return _remember(key, (index, factor))


def _remember(
    key: tuple, entry: tuple[torch.Tensor, torch.Tensor | None]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    _tables[key] = entry
    # A table larger than the bound alone is used by this call and not kept.
    while _tables and sum(table_bytes(*e) for e in _tables.values()) > TABLE_CACHE_BYTES:
        _tables.popitem(last=False)
    return entry


def _split(n: int, gates: tuple[Gate, ...]) -> int | None:
    """The qubit boundary nearest the middle that no gate crosses (qubits ``< s`` and ``≥ s``),
    or None: the run is then a product of the two halves' runs."""
    crossed = set()
    for gate in gates:
        crossed.update(range(min(gate.wires) + 1, max(gate.wires) + 1))
    free = [s for s in range(1, n) if s not in crossed]
    return min(free, key=lambda s: abs(2 * s - n)) if free else None


def _join(
    high: tuple[torch.Tensor, torch.Tensor | None], low: tuple[torch.Tensor, torch.Tensor | None]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The table of two independent runs on the first and the last qubits: the Kronecker
    product, ``g = g_high·L + g_low`` and ``m = m_high ⊗ m_low`` (``L``: the low table's size)."""
    (hi_index, hi_factor), (lo_index, lo_factor) = high, low
    size = hi_index.numel() * lo_index.numel()
    dtype = torch.int32 if size <= 2**31 else torch.int64
    index = hi_index.to(dtype)[:, None] * lo_index.numel() + lo_index.to(dtype)[None, :]
    if hi_factor is None and lo_factor is None:
        return index.reshape(-1), None
    hi_f = torch.ones(hi_index.numel(), dtype=torch.float64) if hi_factor is None else hi_factor
    lo_f = torch.ones(lo_index.numel(), dtype=torch.float64) if lo_factor is None else lo_factor
    return index.reshape(-1), (hi_f[:, None] * lo_f[None, :]).reshape(-1)


def table_bytes(index: torch.Tensor, factor: torch.Tensor | None) -> int:
    """Bytes held by one entangler table."""
    extra = 0 if factor is None else factor.numel() * factor.element_size()
    return index.numel() * index.element_size() + extra


# ---------------------------------------------------------------------------- the program
@dataclass(frozen=True)
class _Layer:
    """Consecutive one-qubit runs and the entangler runs between them, applied as one matrix per
    block of ``partition`` (contiguous ``(start, stop)`` qubit ranges none of those entanglers
    crosses): ``K_last · E · … · E · K_first``, with ``K`` a run's Kronecker product over the block
    and ``E`` the ``4^w × 4^w`` signed permutation (with noise factors) of the entanglers after
    one-qubit run ``r`` inside the block. Blocks of one width are built together:
    ``groups[g] = (w, starts)``, and ``entanglers[r][g]`` holds their ``E`` as row gathers
    (:func:`_block_entanglers`). ``expand``: the input holds only the
    ``I``/``Z`` strings; ``shrink``: only their rows are kept; ``walsh``: the last layer (no
    entanglers after it) also applies the Walsh–Hadamard transform, giving ``p``."""

    runs: tuple[OneQubitRun, ...]
    counts: tuple[tuple[int, ...], ...]
    complex_: tuple[bool, ...]
    partition: tuple[tuple[int, int], ...]
    groups: tuple[tuple[int, tuple[int, ...]], ...]
    entanglers: tuple[tuple[tuple[torch.Tensor, torch.Tensor] | None, ...], ...]
    expand: bool
    shrink: bool
    walsh: bool


@dataclass(frozen=True)
class _Gather:
    """A run of entanglers applied as one gather (:func:`entangler_table`)."""

    gates: tuple[Gate, ...]
    diagonal: bool


def _pass_cost(width: int, pass_cost: float, ends: bool) -> float:
    """One block pass over ``4^n`` entries in units of a sweep: the sweep plus ``4^w`` multiply-adds
    per entry, ``pass_cost`` of which take as long as a sweep. On an expanding or shrinking layer
    (``ends``) the matrices have ``2^w`` columns or rows, and only ``2^w`` per entry."""
    return 1.0 + (2.0 if ends else 4.0) ** width / pass_cost


def _partition(
    n: int, gates: tuple[Gate, ...], pass_cost: float, max_width: int, ends: bool = False
) -> tuple[tuple[int, int], ...] | None:
    """Contiguous blocks covering ``0..n−1``, none splitting a gate's span, of width at most
    ``max_width``, minimizing the summed :func:`_pass_cost`. None when the gates' spans chain over
    more than ``max_width`` qubits."""
    cut = [True] * (n + 1)  # cut[q]: a block may start at q
    for gate in gates:
        lo, hi = min(gate.wires), max(gate.wires)
        if hi - lo + 1 > max_width:
            return None
        for q in range(lo + 1, hi + 1):
            cut[q] = False
    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    for stop in range(1, n + 1):
        if not cut[stop]:
            continue
        for start in range(max(0, stop - max_width), stop):
            cost = best[start] + _pass_cost(stop - start, pass_cost, ends)
            if cut[start] and cost < best[stop]:
                best[stop], back[stop] = cost, start
    if best[n] == float("inf"):  # overlapping gates chain wider than max_width
        return None
    blocks, stop = [], n
    while stop > 0:
        blocks.append((back[stop], stop))
        stop = back[stop]
    return tuple(reversed(blocks))


def _layer_cost(
    n: int, blocks: tuple[tuple[int, int], ...], expand: bool, shrink: bool, pass_cost: float
) -> float:
    """A layer's passes in sweeps of ``4^n`` entries (an expanding or shrinking pass is charged
    for the larger of its input and output)."""
    d_in, d_out = (2 if expand else 4), (2 if shrink else 4)
    size, cost = d_in**n, 0.0
    for start, stop in reversed(blocks):
        w = stop - start
        out = size // d_in**w * d_out**w
        cost += max(size, out) / 4**n + out * d_in**w / (4**n * pass_cost)
        size = out
    return cost


def _block_entanglers(
    gates: tuple[Gate, ...], width: int, starts: tuple[int, ...], lam: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The entanglers inside blocks ``start..start+width−1`` (in run order) as row gathers
    ``E·X = factor · X[index]``: ``index`` int64 and ``factor`` float64, both
    ``(len(starts), 4^w)`` (identity for a block with none); None when no gate lies in any."""
    size = 4**width
    index = torch.arange(size).repeat(len(starts), 1)
    factor = torch.ones((len(starts), size), dtype=torch.float64)
    found = False
    for k, start in enumerate(starts):
        local = tuple(
            Gate(g.name, tuple(q - start for q in g.wires))
            for g in gates
            if start <= min(g.wires) and max(g.wires) < start + width
        )
        if not local:
            continue
        found = True
        table_index, table_factor = entangler_table(width, local, lam, diagonal=False)
        index[k] = table_index.long()
        if table_factor is not None:
            factor[k] = table_factor
    return (index, factor) if found else None


@functools.lru_cache(maxsize=64)
def plan_passes(
    n: int, gates: tuple[Gate, ...], lam: float, pass_cost: float, max_width: int
) -> tuple[_Layer | _Gather, ...]:
    """The circuit as layers and gathers (constants only; θ enters in :func:`ptm_probs`).

    Entanglers before the first one-qubit gate or after the last act on the ``I``/``Z`` strings
    (``2^n``), as gathers. Between, the one-qubit runs are grouped into layers by dynamic
    programming: each entangler run is either folded into a layer's blocks (when the layer's
    entanglers fit blocks of ``max_width`` qubits) or applied as a gather between layers,
    minimizing the estimated sweeps (:func:`_layer_cost`, :data:`GATHER_SWEEPS`).
    """
    runs = gate_runs(n, gates)
    ones = [r for r, (kind, _) in enumerate(runs) if kind == "one"]
    if not ones:
        return tuple(_Gather(tuple(run), True) for _, run in runs)
    between = [tuple(runs[r + 1][1]) for r in ones[:-1]]  # runs alternate kinds
    m = len(ones)
    best, back = [0.0] + [float("inf")] * m, [0] * (m + 1)
    partitions: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}
    for j in range(1, m + 1):  # layers of one-qubit runs i..j−1
        for i in range(j - 1, -1, -1):
            ends = i == 0 or j == m
            blocks = _partition(n, sum(between[i : j - 1], ()), pass_cost, max_width, ends)
            if blocks is None:  # a longer layer only adds entanglers
                break
            partitions[i, j] = blocks
            cost = best[i] + _layer_cost(n, blocks, i == 0, j == m, pass_cost)
            cost += GATHER_SWEEPS if i > 0 else 0.0
            if cost < best[j]:
                best[j], back[j] = cost, i
    segments, j = [], m
    while j > 0:
        segments.append((back[j], j))
        j = back[j]
    plan: list[_Layer | _Gather] = []
    if ones[0] > 0:
        plan.append(_Gather(tuple(runs[0][1]), True))
    for i, j in reversed(segments):
        if i > 0:
            plan.append(_Gather(between[i - 1], False))
        blocks = partitions[i, j]
        widths = sorted({b - a for a, b in blocks})
        groups = tuple((w, tuple(a for a, b in blocks if b - a == w)) for w in widths)
        chosen = [runs[ones[t]][1] for t in range(i, j)]
        plan.append(
            _Layer(
                runs=tuple(one_qubit_run(run) for run in chosen),
                counts=tuple(tuple(len(g) for g in run) for run in chosen),
                complex_=tuple(
                    any(g.name not in REAL_GATES for per_qubit in run for g in per_qubit)
                    for run in chosen
                ),
                partition=blocks,
                groups=groups,
                entanglers=tuple(
                    tuple(_block_entanglers(between[t], w, starts, lam) for w, starts in groups)
                    for t in range(i, j - 1)
                ),
                expand=i == 0,
                shrink=j == m,
                walsh=j == m and ones[-1] == len(runs) - 1,
            )
        )
    if ones[-1] < len(runs) - 1:
        plan.append(_Gather(tuple(runs[-1][1]), True))
    return tuple(plan)


def _apply_blocks(c: torch.Tensor, blocks: list[torch.Tensor]) -> torch.Tensor:
    """Apply block matrices ``(B, o^w, i^w)`` (first qubits first) to ``c`` ``(B' ∈ {1, B}, …)``.

    Blocks are taken from the last qubits: the last ``w`` digits, viewed ``(B, rest, i^w)`` and
    transposed, are multiplied by the block's matrix and land in front, so after every block
    the digit order is restored."""
    for block in reversed(blocks):
        view = c.reshape(c.shape[0], -1, block.shape[-1]).transpose(1, 2)
        out = torch.matmul(block, view)
        c = out.reshape(out.shape[0], -1)
    return c


def _run_transfers(layer: _Layer, theta: torch.Tensor, n: int, lam: float) -> list[torch.Tensor]:
    """Per-qubit transfer matrices of the layer's one-qubit runs, each gate's channel included,
    ``I``/``Z`` columns (rows) only on an expanding (shrinking) layer's first (last) run, and the
    Walsh–Hadamard ``½·[[1, 1], [1, −1]]`` after the last on a ``walsh`` layer. Shapes:
    ``(B, n, o, i)`` per run."""
    dtype = torch.complex128 if any(layer.complex_) else torch.float64
    unitaries = [run_matrices(run, theta, n, dtype) for run in layer.runs]
    mats = one_qubit_ptm(torch.cat(unitaries, 1))  # one product for all runs
    if lam > 0:
        counts = [m for per_run in layer.counts for m in per_run]
        kept = torch.tensor([(1 - lam) ** m for m in counts], dtype=torch.float64)
        scale = torch.ones((len(counts), 1, 4), dtype=torch.float64)
        scale[:, :, 1:] = kept[:, None, None]
        mats = mats * scale.to(theta.device)
    runs = list(mats.split(n, dim=1))
    if layer.expand:
        runs[0] = runs[0][..., _IZ]
    if layer.shrink:
        runs[-1] = runs[-1][..., _IZ, :]
    if layer.walsh:
        runs[-1] = _HALF_HADAMARD.to(theta.device) @ runs[-1]
    return runs


def _layer_blocks(layer: _Layer, theta: torch.Tensor, n: int, lam: float) -> list[torch.Tensor]:
    """The layer's block matrices in ``partition`` order, built with torch ops from θ, all
    blocks of one width at once. Shapes: ``(B, o^w, i^w)``."""
    runs = _run_transfers(layer, theta, n, lam)
    by_start: dict[int, torch.Tensor] = {}
    for g, (width, starts) in enumerate(layer.groups):
        qubits = torch.tensor(starts, device=theta.device)[:, None] + torch.arange(
            width, device=theta.device
        )
        block = kron_matrices(runs[0][:, qubits])  # (B, K, o^w, i^w)
        for t in range(1, len(runs)):
            entangler = layer.entanglers[t - 1][g]
            if entangler is not None:
                index, factor = (x.to(theta.device) for x in entangler)
                rows = torch.arange(len(starts), device=theta.device)[:, None]
                block = block[:, rows, index] * factor[:, :, None]
            block = kron_matrices(runs[t][:, qubits]) @ block
        by_start.update({start: block[:, k] for k, start in enumerate(starts)})
    return [by_start[start] for start, _ in layer.partition]


def _gather(c: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    index, factor = table
    out = c.index_select(1, index.to(c.device))
    # In place: index_select's backward does not need its output.
    return out if factor is None else out.mul_(factor.to(c.device))


def entries_per_row(circuit: Circuit, p2: float, grad: bool) -> int:
    """Peak float64 tensors of ``4^n`` entries held per parameter row by :func:`ptm_probs`: a
    pass's input and output, a gather's table and the int32 temporaries of compiling it (counted
    as five), and with ``grad`` every pass's output, which autograd keeps."""
    plan = plan_passes(circuit.n_qubits, circuit.gates, 16 * p2 / 15, PASS_COST, MAX_BLOCK_QUBITS)
    gathers = sum(isinstance(step, _Gather) and not step.diagonal for step in plan)
    tables = 5 if gathers else 0
    if not grad:
        return 2 + tables
    passes = sum(len(s.partition) if isinstance(s, _Layer) else 2 for s in plan)
    return 2 + tables + passes


def ptm_probs(
    circuit: Circuit,
    theta: torch.Tensor,
    p1: float,
    p2: float,
    *,
    pass_cost: float = PASS_COST,
    max_width: int = MAX_BLOCK_QUBITS,
) -> torch.Tensor:
    """Outcome probabilities (before readout) of ``circuit`` with a depolarizing Pauli channel of
    probability ``p1`` (``p2``) after every one-qubit (two-qubit) gate.

    Shapes: ``theta (B, P)`` float64 → ``(B, 2**n)`` float64. Differentiable in ``theta``.
    """
    n, batch = circuit.n_qubits, theta.shape[0]
    lam1, lam2 = 4 * p1 / 3, 16 * p2 / 15
    c = torch.ones((1, 2**n), dtype=torch.float64, device=theta.device)
    plan = plan_passes(n, circuit.gates, lam2, pass_cost, max_width)
    for step in plan:
        if isinstance(step, _Gather):
            c = _gather(c, entangler_table(n, step.gates, lam2, step.diagonal))
        else:
            c = _apply_blocks(c, _layer_blocks(step, theta, n, lam1))
    if isinstance(plan[-1], _Layer) and plan[-1].walsh:
        probs = c
    else:
        half = _HALF_HADAMARD.to(theta.device)
        walsh = [kron_matrices(half.expand(1, b - a, 2, 2)) for a, b in qubit_blocks(n, 3)]
        probs = _apply_blocks(c, walsh)
    return probs.expand(batch, -1).contiguous() if probs.shape[0] < batch else probs
