"""The Pauli transfer representation behind ``noisy``'s exact probabilities, against Qiskit Aer's
density-matrix method, brute-force conjugation with explicit matrices, the density-matrix path's
autograd and finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from oracles import qiskit_circuit
from qhn.backends import pauli_transfer
from qhn.backends.noisy import NoiseModel, NoisyBackend
from qhn.backends.pauli_transfer import entangler_table, one_qubit_ptm, ptm_probs
from qhn.circuits import Circuit, Gate
from qhn.circuits.ansatz import qhn_reference
from qhn.circuits.ir import GATE_ARITY, ROTATION_GATES

P1, P2 = 0.04, 0.09

#: I, X, Z, Y: the digit order of the representation.
PAULIS = [
    np.eye(2),
    np.array([[0, 1], [1, 0]]),
    np.diag([1.0, -1.0]),
    np.array([[0, -1j], [1j, 0]]),
]
CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex)
CZ = np.diag([1.0, 1.0, 1.0, -1.0]).astype(complex)


def random_circuit(seed: int, n: int, n_gates: int, long_range: bool = True) -> Circuit:
    """Gates drawn from the whole IR; wires anywhere (``long_range``) or neighbours only."""
    rng = np.random.default_rng(seed)
    names = sorted(name for name, arity in GATE_ARITY.items() if arity <= n)
    gates = []
    for _ in range(n_gates):
        name = str(rng.choice(names))
        if GATE_ARITY[name] == 2 and not long_range:
            a = int(rng.integers(n - 1))
            wires = (a, a + 1) if rng.random() < 0.5 else (a + 1, a)
        else:
            wires = tuple(int(w) for w in rng.permutation(n)[: GATE_ARITY[name]])
        param = int(rng.integers(3)) if name in ROTATION_GATES else None
        gates.append(Gate(name, wires, param))
    return Circuit(n, tuple(gates), 3)


CIRCUITS = [random_circuit(s, 2 + s % 4, 10 + 3 * s, long_range=s % 2 == 0) for s in range(8)]
CIRCUITS += [
    qhn_reference(5, 2),  # entanglers before the first one-qubit gate
    Circuit(3, (Gate("cnot", (0, 2)), Gate("cz", (2, 1)), Gate("cnot", (1, 0)))),  # none at all
    Circuit(3, (Gate("rx", (1,), 0), Gate("ry", (2,), 1), Gate("h", (0,)))),  # no entangler
    Circuit(4, (Gate("ry", (0,), 0), Gate("h", (3,)), Gate("cnot", (0, 3)), Gate("cz", (1, 2)))),
]


def aer_probs(circuit: Circuit, theta: torch.Tensor, p1: float, p2: float) -> np.ndarray:
    """Aer's density-matrix probabilities under ``depolarizing_error(4/3·p1, 1)``,
    ``(16/15·p2, 2)`` (PastaQ's Pauli channels)."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel as AerNoise
    from qiskit_aer.noise import depolarizing_error

    model = AerNoise()
    if p1 > 0:
        model.add_all_qubit_quantum_error(
            depolarizing_error(4 / 3 * p1, 1), ["ry", "rx", "rz", "h", "x"]
        )
    if p2 > 0 and circuit.n_qubits > 1:
        model.add_all_qubit_quantum_error(depolarizing_error(16 / 15 * p2, 2), ["cx", "cz"])
    qc = qiskit_circuit(circuit, theta)
    qc.save_probabilities()
    sim = AerSimulator(method="density_matrix", noise_model=model if p1 or p2 else None)
    # The oracle's wire map gives Qiskit's index our place values, so no reordering is needed.
    return np.asarray(sim.run(qc).result().data(0)["probabilities"])


def thetas(circuit: Circuit, rows: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(rows, circuit.n_params, dtype=torch.float64, generator=generator) * 6


@pytest.mark.parametrize("index", range(len(CIRCUITS)))
@pytest.mark.parametrize("noisy", [True, False])
def test_probabilities_match_aer_density_matrix(index, noisy):
    circuit = CIRCUITS[index]
    p1, p2 = (P1, P2) if noisy else (0.0, 0.0)
    theta = thetas(circuit, 2, index)
    # Widths 1 (every entangler run a gather), 2 and 4 (runs folded into blocks) and the default.
    results = [ptm_probs(circuit, theta, p1, p2)]
    results += [ptm_probs(circuit, theta, p1, p2, max_width=w) for w in (1, 2, 4)]
    for b in range(2):
        expected = aer_probs(circuit, theta[b], p1, p2)
        for probs in results:
            np.testing.assert_allclose(probs[b].numpy(), expected, atol=1e-10, rtol=0)


def test_backend_probs_with_asymmetric_readout_match_aer_pushed_through_the_confusion():
    circuit = CIRCUITS[3]
    noise = NoiseModel(P1, P2, readout01=0.03, readout10=0.11)
    theta = thetas(circuit, 3, 7)
    ours = NoisyBackend(noise, chunk_bytes=1).probs(circuit, theta)  # one row per chunk
    confusion = np.array([[0.97, 0.03], [0.11, 0.89]])
    full = confusion
    for _ in range(circuit.n_qubits - 1):
        full = np.kron(full, confusion)
    for b in range(3):
        expected = full.T @ aer_probs(circuit, theta[b], P1, P2)
        np.testing.assert_allclose(ours[b].numpy(), expected, atol=1e-10, rtol=0)


def test_gradient_matches_the_density_matrix_path_and_finite_differences():
    circuit = random_circuit(11, 3, 16)  # every gate kind, complex rotations included
    noise = NoiseModel(P1, P2, readout01=0.02, readout10=0.05)
    backend = NoisyBackend(noise)
    weights = torch.linspace(-1, 2, 8, dtype=torch.float64)
    theta = thetas(circuit, 2, 3)[0].requires_grad_(True)
    (grad,) = torch.autograd.grad(backend.probs(circuit, theta) @ weights, theta)
    # The density-matrix path is an independent formulation of the same map.
    rho = backend.density_matrix(circuit, theta)
    diag = torch.diagonal(rho, dim1=-2, dim2=-1)
    diag = diag.real if diag.is_complex() else diag
    from qhn.backends.noise_model import apply_readout

    reference = apply_readout(diag.unsqueeze(0), noise)[0] @ weights
    (expected,) = torch.autograd.grad(reference, theta)
    torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0)
    eps, numeric = 1e-6, []
    for j in range(circuit.n_params):
        step = torch.zeros(circuit.n_params, dtype=torch.float64)
        step[j] = eps
        up = backend.probs(circuit, theta.detach() + step) @ weights
        down = backend.probs(circuit, theta.detach() - step) @ weights
        numeric.append((up - down) / (2 * eps))
    torch.testing.assert_close(grad, torch.stack(numeric), atol=1e-8, rtol=0)


def test_gradient_through_gathers_matches_the_density_matrix_path():
    # Width 1 fits no entangler in a block: every entangler run between layers is a gather.
    circuit = random_circuit(12, 4, 24)
    noise = NoiseModel(P1, P2)
    theta = thetas(circuit, 2, 4).requires_grad_(True)
    weights = torch.linspace(-1, 2, 16, dtype=torch.float64)
    probs = ptm_probs(circuit, theta, P1, P2, max_width=1)
    (grad,) = torch.autograd.grad((probs @ weights).sum(), theta)
    diag = torch.diagonal(NoisyBackend(noise).density_matrix(circuit, theta), dim1=-2, dim2=-1)
    diag = diag.real if diag.is_complex() else diag
    (expected,) = torch.autograd.grad((diag @ weights).sum(), theta)
    torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------ brute force
def pauli_string(digits: tuple[int, ...]) -> np.ndarray:
    out = np.eye(1)
    for d in digits:
        out = np.kron(out, PAULIS[d])
    return out


def embed(gate: np.ndarray, wires: tuple[int, int], n: int) -> np.ndarray:
    """A two-qubit matrix on ``wires`` (first most significant) of ``n`` qubits, qubit 0 first."""
    full = np.zeros((2**n, 2**n), dtype=complex)
    for col in range(2**n):
        bits = [(col >> (n - 1 - q)) & 1 for q in range(n)]
        sub = 2 * bits[wires[0]] + bits[wires[1]]
        for row_sub in range(4):
            if gate[row_sub, sub] == 0:
                continue
            out = list(bits)
            out[wires[0]], out[wires[1]] = row_sub >> 1, row_sub & 1
            row = sum(b << (n - 1 - q) for q, b in enumerate(out))
            full[row, col] += gate[row_sub, sub]
    return full


def brute_force_transfer(n: int, gates: tuple[Gate, ...], p2: float) -> np.ndarray:
    """``T[i, j] = 2^-n·Tr(P_i E(P_j))`` with each gate and its Pauli channel
    ``(1 − p)ρ + p/15·Σ_{P ≠ I} PρP`` applied as explicit ``2^n × 2^n`` matrices."""
    strings = [pauli_string(d) for d in itertools.product(range(4), repeat=n)]
    out = np.zeros((4**n, 4**n))
    for j, start in enumerate(strings):
        rho = start.astype(complex)
        for gate in gates:
            u = embed(CNOT if gate.name == "cnot" else CZ, gate.wires, n)
            rho = u @ rho @ u.conj().T
            kraus = [
                embed(np.kron(PAULIS[a], PAULIS[b]).astype(complex), gate.wires, n)
                for a, b in itertools.product(range(4), repeat=2)
            ]
            rho = (1 - p2) * rho + p2 / 15 * sum(k @ rho @ k for k in kraus[1:])
        for i, string in enumerate(strings):
            out[i, j] = np.trace(string @ rho).real / 2**n
    return out


def table_matrix(n: int, gates: tuple[Gate, ...], p2: float) -> np.ndarray:
    index, factor = entangler_table(n, gates, 16 * p2 / 15, diagonal=False)
    out = np.zeros((4**n, 4**n))
    values = np.ones(4**n) if factor is None else factor.numpy()
    out[np.arange(4**n), index.long().numpy()] = values
    return out


RUNS = [
    (2, (Gate("cnot", (0, 1)),)),
    (2, (Gate("cnot", (1, 0)),)),
    (2, (Gate("cz", (0, 1)),)),
    (3, (Gate("cnot", (2, 0)), Gate("cz", (0, 1)), Gate("cnot", (1, 2)))),
    (3, (Gate("cz", (2, 0)), Gate("cnot", (0, 2)), Gate("cnot", (2, 1)), Gate("cz", (1, 2)))),
    # Runs that split into independent halves (tables joined as Kronecker products).
    (3, (Gate("cnot", (2, 1)), Gate("cz", (1, 2)))),
    (4, (Gate("cnot", (0, 1)), Gate("cz", (3, 2)), Gate("cnot", (1, 0)), Gate("cnot", (2, 3)))),
]


@pytest.mark.parametrize(("n", "gates"), RUNS)
@pytest.mark.parametrize("p2", [0.0, 0.07])
def test_entangler_tables_match_brute_force_conjugation(n, gates, p2):
    np.testing.assert_allclose(
        table_matrix(n, gates, p2), brute_force_transfer(n, gates, p2), atol=1e-13, rtol=0
    )


@pytest.mark.parametrize(("n", "gates"), RUNS)
def test_entangler_tables_on_the_z_subspace_restrict_the_full_ones(n, gates):
    index, factor = entangler_table(n, gates, 0.05, diagonal=True)
    full_index, full_factor = entangler_table(n, gates, 0.05, diagonal=False)
    # I/Z string with z bits ``j`` is the full string with digit 2·z_q on each qubit.
    spread = [
        sum(2 * ((j >> (n - 1 - q)) & 1) * 4 ** (n - 1 - q) for q in range(n)) for j in range(2**n)
    ]
    spread = torch.tensor(spread)
    torch.testing.assert_close(spread[index.long()], full_index.long()[spread])
    torch.testing.assert_close(factor, full_factor[spread])


def test_one_qubit_transfer_matrices_match_brute_force():
    generator = torch.Generator().manual_seed(5)
    u = torch.linalg.qr(torch.randn(6, 2, 2, dtype=torch.complex128, generator=generator))[0]
    ours = one_qubit_ptm(u).numpy()
    for b in range(6):
        m = u[b].numpy()
        expected = [
            [np.trace(PAULIS[i] @ m @ PAULIS[j] @ m.conj().T).real / 2 for j in range(4)]
            for i in range(4)
        ]
        np.testing.assert_allclose(ours[b], expected, atol=1e-14)


def test_table_cache_stays_within_its_byte_bound(monkeypatch):
    monkeypatch.setattr(pauli_transfer, "TABLE_CACHE_BYTES", 3 * 4**6 * 12)
    monkeypatch.setattr(pauli_transfer, "_tables", type(pauli_transfer._tables)())
    for a in range(5):  # CNOT(0, 5) crosses every boundary: no table is split in halves
        entangler_table(6, (Gate("cnot", (0, 5)), Gate("cz", (a, a + 1))), 0.01, diagonal=False)
    tables = pauli_transfer._tables
    assert sum(pauli_transfer.table_bytes(*e) for e in tables.values()) <= 3 * 4**6 * 12
    assert len(tables) == 3
    # One table over the bound is returned, not kept.
    monkeypatch.setattr(pauli_transfer, "TABLE_CACHE_BYTES", 4**6)
    index, _ = entangler_table(6, (Gate("cz", (0, 5)),), 0.01, diagonal=False)
    assert index.shape == (4**6,) and not tables
