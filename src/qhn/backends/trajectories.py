"""Pauli trajectories of one parameter row, simulated through fused passes.

A trajectory is the circuit with one Pauli inserted after each noisy gate (identity for most).
Its state is evolved as the statevector simulator evolves the noiseless one
(:mod:`qhn.backends.statevector`): each run of one-qubit gates is a per-qubit ``2 × 2`` product
applied as Kronecker blocks of ``block_qubits`` qubits, one matrix product each, and each run of
CNOT/CZ gates is one gather (or in-place negations). The errors never add a pass:

- a Pauli after a one-qubit gate is multiplied into its qubit's ``2 × 2`` product at its place;
- a Pauli after a two-qubit gate is pushed through the rest of its entangler run (CNOT and CZ map
  Paulis to Paulis: ``CNOT·X_c·CNOT = X_c X_t``, ``CNOT·Z_t·CNOT = Z_c Z_t``, ``CZ·X_a·CZ =
  X_a Z_b``) and lands, as a Pauli on a few qubits, in front of the next one-qubit run's
  products (the *frame* of that run);
- a Pauli after the last gate on its qubits (or pushed past the last one-qubit run) only acts on
  the measured bits: ``X`` (and ``Y``) flips the bit, ``Z`` does nothing. It is applied to the
  drawn outcome as an XOR mask, so such shots share the error-free state.

Signs and phases picked up on the way (``Y`` is applied as ``X·Z``) are global and change no
probability. A shot's *key* is the Pauli at each (one-qubit run, slot, qubit) position, slot 0
the frame; shots with equal keys share one trajectory, whatever their XOR masks. A trajectory
equals the error-free state up to its first run with a non-identity Pauli, so trajectories are
ordered by that run and enter the batch there as a copy of the error-free row (row 0), which is
evolved alongside; every pass runs once over the rows already entered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from qhn.backends.entanglers import CZRun
from qhn.backends.torch_passes import (
    Negate,
    OneQubitRun,
    block_passes,
    entangler_steps,
    forward_pass,
    one_qubit_run,
    run_layers,
    squared_modulus,
)
from qhn.circuits.ir import ENTANGLING_GATES, Circuit, Gate

__all__ = [
    "CHUNK_BYTES",
    "TrajectoryPlan",
    "compile_plan",
    "first_runs",
    "key_bytes",
    "shot_keys",
    "trajectory_probs",
]

#: I, X, X·Z (= −iY, so real circuits stay real), Z: the Pauli codes 0..3 as matrices.
PAULIS = torch.tensor(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[1, 0], [0, -1]]], dtype=torch.float64
)
#: Trajectories are evolved in chunks of at most this many bytes of state: a chunk that stays
#: in the last-level cache between passes is swept faster than one streamed from memory.
CHUNK_BYTES = 16 * 2**20
_DIAGONAL = frozenset({"rz", "cz"})
#: Pauli code of ``(x, z)`` bits, indexed ``2·x + z``: I, Z, X, X·Z.
_CODE_OF_BITS = torch.tensor([0, 3, 1, 2], dtype=torch.int8)


@dataclass(frozen=True)
class TrajectoryPlan:
    """How the error sites of one circuit land in trajectory keys, and the passes to run.

    ``runs[r]`` is the ``r``-th one-qubit run; ``before[r]`` the entangler steps just before it
    (CNOT runs, CZ runs as negations), ``tail`` those after the last run. Keys have shape
    ``(R, D + 1, n)``:
    ``[r, 0, q]`` the frame Pauli on ``q`` before run ``r``, ``[r, 1 + j, q]`` the Pauli after
    qubit ``q``'s ``j``-th gate of run ``r``. Per error site ``s`` (in ``sites`` order):

    - ``one_site, one_pos``: one-qubit sites and their flat key positions;
    - ``flip_site, flip_wire``: one-qubit sites after their qubit's last gate (XOR masks);
    - ``two_site, two_run, two_image``: two-qubit sites and sites on dropped final diagonal
      gates (:func:`_final_diagonals`), the frame they land in (``R`` for the XOR mask) and, per
      Pauli code ``0..15``, the ``(x, z)`` bits ``(16, 2n)`` they become.
    """

    n: int
    runs: tuple[OneQubitRun, ...]
    before: tuple[tuple[object, ...], ...]
    tail: tuple[object, ...]
    depth: int
    one_site: torch.Tensor
    one_pos: torch.Tensor
    flip_site: torch.Tensor
    flip_wire: torch.Tensor
    two_site: torch.Tensor
    two_run: torch.Tensor
    two_image: torch.Tensor


def compile_plan(circuit: Circuit, sites: list[tuple[int, int, float]]) -> TrajectoryPlan:
    """The :class:`TrajectoryPlan` of ``circuit`` with errors after the gates of ``sites``
    (``(gate index, arity, p)``). Cached by the gates and the site positions."""
    return compile_circuit(circuit.n_qubits, circuit.gates, tuple(g for g, _, _ in sites))


@functools.lru_cache(maxsize=64)
def compile_circuit(n: int, gates: tuple[Gate, ...], noisy: tuple[int, ...]) -> TrajectoryPlan:
    dropped = _final_diagonals(gates)
    kept = [g for g in range(len(gates)) if g not in dropped]
    last_touch = {q: g for g in kept for q in gates[g].wires}
    segments: list[tuple[str, list[int]]] = []
    for g in kept:
        gate = gates[g]
        kind = "ent" if gate.name in ENTANGLING_GATES else "one"
        if segments and segments[-1][0] == kind:
            segments[-1][1].append(g)
        else:
            segments.append((kind, [g]))
    runs, before, pending = [], [], ()
    slot_of: dict[int, tuple[int, int]] = {}  # one-qubit gate → (run, slot)
    ent_run: dict[int, tuple[int, list[int]]] = {}  # two-qubit gate → (frame, its run's gates)
    for kind, members in segments:
        if kind == "ent":
            steps = entangler_steps(n, [gates[g] for g in members])
            # CZ runs are applied as in-place negations, CNOT runs as one gather each.
            pending = tuple(Negate(s.pairs) if isinstance(s, CZRun) else s for s in steps)
            for g in members:
                ent_run[g] = (len(runs), members)
            continue
        per_qubit: list[list[Gate]] = [[] for _ in range(n)]
        for g in members:
            q = gates[g].wires[0]
            slot_of[g] = (len(runs), len(per_qubit[q]))
            per_qubit[q].append(gates[g])
        runs.append(one_qubit_run(per_qubit))
        before.append(pending)
        pending = ()
    depth = max((len(run.slots) for run in runs), default=0)
    one_site, one_pos, flip_site, flip_wire, two_site, two_run, images = [], [], [], [], [], [], []
    for s, g in enumerate(noisy):
        gate = gates[g]
        if g in dropped:
            frame, members = len(runs), [g]
        elif len(gate.wires) == 1:
            q = gate.wires[0]
            if last_touch[q] == g:
                flip_site.append(s)
                flip_wire.append(q)
            else:
                r, j = slot_of[g]
                one_site.append(s)
                one_pos.append((r * (depth + 1) + 1 + j) * n + q)
            continue
        else:
            frame, members = ent_run[g]
        two_site.append(s)
        two_run.append(frame)
        later = [gates[h] for h in members[members.index(g) + 1 :]]
        images.append([_push(n, gate.wires, code, later) for code in range(16)])
    index = functools.partial(torch.tensor, dtype=torch.int64)
    return TrajectoryPlan(
        n=n,
        runs=tuple(runs),
        before=tuple(before),
        tail=pending,
        depth=depth,
        one_site=index(one_site),
        one_pos=index(one_pos),
        flip_site=index(flip_site),
        flip_wire=index(flip_wire),
        two_site=index(two_site),
        two_run=index(two_run),
        two_image=torch.tensor(images, dtype=torch.int8).reshape(len(images), 16, 2 * n),
    )


def _final_diagonals(gates: tuple[Gate, ...]) -> set[int]:
    """Diagonal gates (RZ, CZ) followed on their wires by diagonal gates only. They commute to
    the end, where a diagonal gate changes no probability, so they are left out; a Pauli after
    one (or after a gate followed only by them) passes them to the end as a Pauli (conjugating a
    diagonal gate by a Pauli leaves it diagonal) and only flips measured bits."""
    dropped: set[int] = set()
    blocked: set[int] = set()
    for g in range(len(gates) - 1, -1, -1):
        wires = set(gates[g].wires)
        if gates[g].name in _DIAGONAL and not wires & blocked:
            dropped.add(g)
        else:
            blocked |= wires
    return dropped


def _push(n: int, wires: tuple[int, ...], code: int, later: list[Gate]) -> list[int]:
    """The ``(x, z)`` bits ``(2n,)`` of the Pauli ``code`` on ``wires`` (base-4 digits I, X, Y,
    Z, first wire most significant) after conjugation by the gates ``later``, up to sign. Codes
    past ``4^arity − 1`` never occur."""
    x, z = [0] * n, [0] * n
    digits = (code // 4, code % 4) if len(wires) == 2 else (code,)
    for wire, digit in zip(wires, digits, strict=True):
        x[wire], z[wire] = int(digit in (1, 2)), int(digit in (2, 3))
    for gate in later:
        a, b = gate.wires
        if gate.name == "cnot":
            x[b] ^= x[a]
            z[a] ^= z[b]
        else:  # cz
            z[a] ^= x[b]
            z[b] ^= x[a]
    return x + z


def shot_keys(plan: TrajectoryPlan, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each shot's trajectory key and XOR mask. Shapes: ``codes (T, sites)`` int8 (Pauli codes
    per site, :meth:`NoisyBackend._draw_patterns`) → keys ``(T, R, D + 1, n)`` int8, masks
    ``(T,)`` int64 (qubit ``q`` is bit ``n − 1 − q``). Peak memory about :func:`key_bytes` per
    shot."""
    n, runs = plan.n, len(plan.runs)
    count = codes.shape[0]
    keys = torch.zeros((count, runs * (plan.depth + 1) * n), dtype=torch.int8)
    keys[:, plan.one_pos] = codes[:, plan.one_site]
    flips = torch.zeros((count, n), dtype=torch.int64)
    two = codes[:, plan.two_site].long()
    rows = two.ne(0).any(1).nonzero().squeeze(1)  # most shots have no two-qubit error
    two = two[rows]
    for frame in plan.two_run.unique().tolist():
        mine = (plan.two_run == frame).nonzero().squeeze(1)
        bits = plan.two_image[mine, two[:, mine]].sum(1) % 2  # (rows, 2n): XOR of the images
        if frame < runs:
            code = _CODE_OF_BITS[2 * bits[:, :n] + bits[:, n:]]
            keys.view(count, runs, plan.depth + 1, n)[rows, frame, 0] = code
        else:
            flips[rows] ^= bits[:, :n]
    if plan.flip_site.numel():
        hit = codes[:, plan.flip_site]
        flips[:, plan.flip_wire] ^= ((hit == 1) | (hit == 2)).long()
    masks = (flips << torch.arange(n - 1, -1, -1)).sum(1)
    return keys.view(count, runs, plan.depth + 1, n), masks


def key_bytes(plan: TrajectoryPlan) -> int:
    """Bytes per shot that :func:`shot_keys` and the grouping of shots by key hold: the key and
    its copies, and the images of one frame's two-qubit sites."""
    return 3 * len(plan.runs) * (plan.depth + 1) * plan.n + 2 * plan.n * plan.two_site.numel()


def first_runs(keys: torch.Tensor) -> torch.Tensor:
    """The first run whose key has a non-identity Pauli (``R`` if none). ``(T, R, D+1, n)`` →
    ``(T,)`` int64."""
    count, runs = keys.shape[:2]
    hit = (keys != 0).flatten(2).any(-1)
    first = torch.full((count,), runs, dtype=torch.int64)
    if not runs:
        return first
    return torch.where(hit.any(1), hit.to(torch.int8).argmax(1), first)


class _Prefix:
    """Two full-size state buffers handing out their first ``rows`` rows, alternately, so
    :func:`~qhn.backends.torch_passes.forward_pass` writes in place on the rows entered so far."""

    def __init__(self, rows: int, size: int, dtype: torch.dtype) -> None:
        self.full = [torch.empty((rows, size), dtype=dtype) for _ in range(2)]
        self.rows = 0

    def take(self, *avoid: torch.Tensor) -> torch.Tensor:
        for buf in self.full:
            if all(buf.data_ptr() != a.data_ptr() for a in avoid):
                return buf[: self.rows]
        raise AssertionError("both buffers in use")

    def extend(self, psi: torch.Tensor, rows: int) -> torch.Tensor:
        """``psi``'s buffer's first ``rows`` rows, the new ones copies of row 0."""
        buf = next(b for b in self.full if b.data_ptr() == psi.data_ptr())
        buf[psi.shape[0] : rows] = psi[0]
        self.rows = rows
        return buf[:rows]


def trajectory_probs(
    plan: TrajectoryPlan,
    theta: torch.Tensor,
    keys: torch.Tensor,
    dtype: torch.dtype,
    block_qubits: int = 4,
) -> torch.Tensor:
    """``|ψ|²`` of the error-free trajectory (row 0) and of the trajectories with ``keys``,
    ordered by first run (:func:`first_runs`, non-decreasing). Shapes: ``theta (P,)``,
    ``keys (C, R, D + 1, n)`` → ``(1 + C, 2**n)`` float64. XOR masks are not applied."""
    n = plan.n
    size = 2**n
    keys = torch.cat([keys.new_zeros((1, *keys.shape[1:])), keys]).long()
    first = first_runs(keys[1:])
    spawn = (1 + torch.searchsorted(first, torch.arange(len(plan.runs)), right=True)).tolist()
    buffers = _Prefix(keys.shape[0], size, dtype)
    psi = buffers.full[0][:1]
    psi.zero_()
    psi[0, 0] = 1
    paulis = PAULIS.to(dtype)
    row = theta.unsqueeze(0)
    for r, run in enumerate(plan.runs):
        buffers.rows = psi.shape[0]
        psi = forward_pass(list(plan.before[r]), n, buffers, psi)
        psi = buffers.extend(psi, spawn[r])
        rows = psi.shape[0]
        mine = keys[:rows, r]
        total = paulis[mine[:, 0]]
        for j, layer in enumerate(run_layers(run, row, n, dtype)):
            total = paulis[mine[:, 1 + j]] @ (layer @ total)
        psi = forward_pass(block_passes(total, n, block_qubits), n, buffers, psi)
    buffers.rows = psi.shape[0]
    psi = forward_pass(list(plan.tail), n, buffers, psi)
    out = buffers.extend(psi, keys.shape[0]) if psi.shape[0] < keys.shape[0] else psi
    return squared_modulus(out)
