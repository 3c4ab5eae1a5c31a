"""Pauli trajectories through fused passes (:mod:`qhn.backends.trajectories`): every trajectory
against Qiskit's statevector with its Paulis inserted, the pattern-weighted sum against the exact
density matrix by brute force, and samples against it by chi-square."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from chi_square import chi_square_pvalue
from oracles import qiskit_trajectory_probs
from qhn.backends.noisy import NoisyBackend
from qhn.backends.trajectories import (
    _final_diagonals,
    compile_plan,
    first_runs,
    shot_keys,
    trajectory_probs,
)
from qhn.circuits import Circuit, Gate
from qhn.circuits.ansatz import qhn_reference
from qhn.circuits.ir import GATE_ARITY, ROTATION_GATES

NOISE = {"p1": 0.03, "p2": 0.08}


def random_circuit(seed: int, n: int, n_gates: int) -> Circuit:
    """Gates from the whole IR, entanglers twice as likely so runs of CNOT/CZ form."""
    rng = np.random.default_rng(seed)
    names = sorted(name for name, arity in GATE_ARITY.items() if arity <= n)
    weights = np.array([2.0 if GATE_ARITY[name] == 2 else 1.0 for name in names])
    gates = []
    for _ in range(n_gates):
        name = str(rng.choice(names, p=weights / weights.sum()))
        wires = tuple(int(w) for w in rng.permutation(n)[: GATE_ARITY[name]])
        param = int(rng.integers(3)) if name in ROTATION_GATES else None
        gates.append(Gate(name, wires, param))
    return Circuit(n, tuple(gates), 3)


def g(name: str, *wires: int, param: int | None = None) -> Gate:
    return Gate(name, wires, param)


# Entanglers first (on |0…0⟩), CZ and CNOT runs, final CZ/RZ that are dropped, a final CNOT run
# whose errors become bit flips, and a qubit whose last gate comes early.
HAND = Circuit(
    4,
    (
        g("cnot", 0, 1),
        g("cz", 1, 2),
        g("h", 0),
        g("ry", 1, param=0),
        g("rx", 2, param=1),
        g("x", 3),
        g("cz", 0, 1),
        g("cnot", 1, 2),
        g("cz", 2, 3),
        g("rz", 0, param=2),
        g("ry", 2, param=0),
        g("cnot", 2, 1),
        g("cnot", 1, 0),
        g("rz", 1, param=1),
        g("cz", 0, 1),
        g("rz", 0, param=2),
    ),
    3,
)
CIRCUITS = {
    "hand": HAND,
    "reference": qhn_reference(4, 2),
    **{f"random{s}": random_circuit(s, 2 + s % 3, 16) for s in range(6)},
}


def test_final_diagonal_gates_are_the_ones_only_diagonals_follow():
    dropped = _final_diagonals(HAND.gates)
    # rz(1) at 13, cz(0,1) at 14, rz(0) at 15; rz(0) at 9 is followed by cnot(1, 0) on wire 0,
    # cz(2, 3) at 8 by ry(2).
    assert dropped == {13, 14, 15}


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_each_trajectory_equals_qiskit_with_its_paulis_inserted(name):
    """Trajectories with no error and with one to five Paulis anywhere (dropped gates, the last
    gate, entanglers on ``|0…0⟩``): Born probabilities to 1e-12."""
    circuit = CIRCUITS[name]
    theta = torch.rand(
        circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(31)
    )
    theta = theta * 6
    backend = NoisyBackend(NOISE, max_density_qubits=0)
    sites = backend._error_sites(circuit)
    n_gates = len(circuit.gates)
    rng = np.random.default_rng(32)
    patterns = np.zeros((48, n_gates), dtype=np.int8)
    for t in range(1, 48):
        for gate in rng.choice(n_gates, size=1 + t % 5, replace=False):
            patterns[t, gate] = rng.integers(1, 4 ** len(circuit.gates[gate].wires))
    for t, gate in enumerate(range(max(0, n_gates - 4), n_gates)):  # errors on the last gates
        patterns[40 + t] = 0
        patterns[40 + t, gate] = 1 + t % (4 ** len(circuit.gates[gate].wires) - 1)
    got = backend._trajectory_probs(circuit, theta, sites, torch.from_numpy(patterns))
    expected = np.stack([qiskit_trajectory_probs(circuit, theta, list(p)) for p in patterns])
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    "circuit",
    [Circuit(4, HAND.gates[7:12], 3), random_circuit(47, 3, 6), random_circuit(50, 2, 6)],
    ids=["hand", "random47", "random50"],
)
def test_all_patterns_weighted_give_the_density_matrix(circuit):
    """Brute force on a tiny case: Σ over every error pattern of P(pattern)·|ψ_pattern|² equals
    the diagonal of the exact noisy density matrix (p1, p2 large so every term counts)."""
    theta = torch.tensor([0.7, 2.1, -1.3], dtype=torch.float64)
    noise = {"p1": 0.2, "p2": 0.3}
    backend = NoisyBackend(noise, max_density_qubits=0)
    sites = backend._error_sites(circuit)
    choices = [range(4**arity) for _, arity, _ in sites]
    patterns = torch.tensor(list(itertools.product(*choices)), dtype=torch.int8)
    assert patterns.shape[0] <= 2**17
    weights = torch.ones(patterns.shape[0], dtype=torch.float64)
    for s, (_, arity, p) in enumerate(sites):
        hit = patterns[:, s] != 0
        rates = torch.tensor([1 - p, p / (4**arity - 1)], dtype=torch.float64)
        weights *= rates[hit.long()]
    probs = backend._trajectory_probs(circuit, theta, sites, patterns)
    exact = NoisyBackend(noise).probs(circuit, theta)
    torch.testing.assert_close(weights @ probs, exact, atol=1e-12, rtol=0)


def test_shots_differing_only_in_final_bit_flips_share_a_trajectory():
    circuit = qhn_reference(3, 1)
    backend = NoisyBackend(NOISE, max_density_qubits=0)
    sites = backend._error_sites(circuit)
    plan = compile_plan(circuit, sites)
    codes = torch.zeros((4, len(sites)), dtype=torch.int8)
    last_ry = [s for s, (gate, _, _) in enumerate(sites) if circuit.gates[gate].name == "ry"][-1]
    codes[1, last_ry] = 1  # X after the last RY: a flip of qubit 2's bit
    codes[2, last_ry] = 3  # Z there: nothing
    codes[3, -1] = 2  # Y after the last RZ (dropped): a flip of its qubit
    keys, masks = shot_keys(plan, codes)
    assert bool((keys == 0).all())
    qubit = circuit.gates[sites[last_ry][0]].wires[0]
    last = circuit.gates[sites[-1][0]].wires[0]
    assert masks.tolist() == [0, 1 << (2 - qubit), 0, 1 << (2 - last)]


def test_sampled_trajectories_follow_the_density_matrix():
    circuit = HAND
    noise = {"p1": 0.04, "p2": 0.12, "readout01": 0.03, "readout10": 0.06}
    theta = torch.tensor([[0.4, 1.9, -2.2], [2.5, -0.8, 1.1]], dtype=torch.float64)
    backend = NoisyBackend(noise, max_density_qubits=0, chunk_bytes=512)
    shots = 8000
    bits = backend.sample(circuit, theta, shots, generator=torch.Generator().manual_seed(33))
    exact = NoisyBackend(noise).probs(circuit, theta)
    noiseless = NoisyBackend().probs(circuit, theta)
    index = (bits.long() << torch.arange(3, -1, -1)).sum(-1)
    for b in range(2):
        assert chi_square_pvalue(bits[b], exact[b]) > 1e-3
        # Power: outcomes impossible without noise are hit as often as the noise makes them.
        impossible = noiseless[b] < 1e-12
        mass = float(exact[b][impossible].sum())
        assert mass > 0.05
        seen = float(impossible[index[b]].double().mean())
        assert abs(seen - mass) < 4 * (mass * (1 - mass) / shots) ** 0.5


@pytest.mark.parametrize("block_qubits", [1, 2, 3])
def test_several_kronecker_blocks_per_run_match_qiskit(block_qubits):
    """On 6 qubits a run is split into several blocks (each pass moves its qubits to the front):
    every trajectory still has the Born probabilities of Qiskit's circuit with its Paulis."""
    circuit = Circuit(6, qhn_reference(6, 1).gates + HAND.gates, qhn_reference(6, 1).n_params)
    theta = torch.rand(
        circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(34)
    )
    backend = NoisyBackend(NOISE, max_density_qubits=0)
    sites = backend._error_sites(circuit)
    rng = np.random.default_rng(35)
    patterns = np.zeros((12, len(circuit.gates)), dtype=np.int8)
    for t in range(12):
        for gate in rng.choice(len(circuit.gates), size=1 + t % 3, replace=False):
            patterns[t, gate] = rng.integers(1, 4 ** len(circuit.gates[gate].wires))
    plan = compile_plan(circuit, sites)
    keys, masks = shot_keys(plan, torch.from_numpy(patterns))
    order = torch.argsort(first_runs(keys), stable=True)
    probs = trajectory_probs(plan, theta, keys[order], torch.complex128, block_qubits)[1:]
    flipped = torch.arange(2**6)[None, :] ^ masks[order][:, None]
    got = probs.gather(1, flipped)
    expected = np.stack([qiskit_trajectory_probs(circuit, theta, list(patterns[t])) for t in order])
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
