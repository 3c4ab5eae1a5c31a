"""The ``noisy`` backend against independent simulators: Qiskit Aer's density-matrix method and
PennyLane ``default.mixed`` with the equivalent noise, plus chi-square checks of the trajectory
sampler against the exact noisy distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chi_square import chi_square_pvalue
from oracles import qiskit_circuit, qiskit_probs, qiskit_trajectory_probs
from qhn.backends.noisy import NoiseModel, NoisyBackend
from qhn.circuits import Circuit, Gate
from qhn.circuits.ansatz import hardware_efficient, qhn_reference
from qhn.circuits.ir import GATE_ARITY, ROTATION_GATES
from qhn.errors import CapabilityError, ConfigError, MemoryBudgetError

NOISE = {"p1": 0.03, "p2": 0.08, "readout01": 0.04, "readout10": 0.09, "scale": 1.5}


def random_circuit(rng: np.random.Generator, n: int, n_gates: int) -> Circuit:
    """Gates drawn from the whole IR on ``n`` wires; a few shared parameters."""
    names = sorted(name for name, arity in GATE_ARITY.items() if arity <= n)
    gates = []
    for _ in range(n_gates):
        name = str(rng.choice(names))
        wires = tuple(int(w) for w in rng.permutation(n)[: GATE_ARITY[name]])
        param = int(rng.integers(3)) if name in ROTATION_GATES else None
        gates.append(Gate(name, wires, param))
    return Circuit(n, tuple(gates), 3)


CIRCUITS = [random_circuit(np.random.default_rng(s), 1 + s % 4, 12) for s in range(8)]
CIRCUITS.append(qhn_reference(3, 1))


def aer_density_matrix(circuit: Circuit, theta: torch.Tensor, noise: NoiseModel) -> np.ndarray:
    """Aer's density matrix under ``depolarizing_error(4/3·p1, 1)``, ``(16/15·p2, 2)``."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel as AerNoise
    from qiskit_aer.noise import depolarizing_error

    model = AerNoise()
    model.add_all_qubit_quantum_error(
        depolarizing_error(4 / 3 * noise.gate_p1, 1), ["ry", "rx", "rz", "h", "x"]
    )
    if circuit.n_qubits > 1:
        model.add_all_qubit_quantum_error(
            depolarizing_error(16 / 15 * noise.gate_p2, 2), ["cx", "cz"]
        )
    qc = qiskit_circuit(circuit, theta)
    qc.save_density_matrix()
    result = AerSimulator(method="density_matrix", noise_model=model).run(qc).result()
    # The oracle's wire map gives Qiskit's index our place values, so no reordering is needed.
    return np.asarray(result.data(0)["density_matrix"])


def pennylane_mixed_probs(circuit: Circuit, theta: torch.Tensor, noise: NoiseModel) -> np.ndarray:
    """``default.mixed`` probabilities: Pauli channels as Kraus operators after each gate, and
    readout as the Kraus channel whose diagonal action is the confusion matrix."""
    import itertools

    import pennylane as qml

    paulis = [np.eye(2), qml.matrix(qml.PauliX(0)), qml.matrix(qml.PauliY(0))]
    paulis.append(qml.matrix(qml.PauliZ(0)))
    one = [np.sqrt(1 - noise.gate_p1) * paulis[0]]
    one += [np.sqrt(noise.gate_p1 / 3) * p for p in paulis[1:]]
    two = [np.kron(a, b) for a, b in itertools.product(paulis, paulis)]
    two = [np.sqrt(1 - noise.gate_p2) * two[0]] + [np.sqrt(noise.gate_p2 / 15) * k for k in two[1:]]
    r01, r10 = noise.readout01, noise.readout10
    readout = [
        np.array([[np.sqrt(1 - r01), 0], [0, 0]]),
        np.array([[0, 0], [np.sqrt(r01), 0]]),
        np.array([[0, np.sqrt(r10)], [0, 0]]),
        np.array([[0, 0], [0, np.sqrt(1 - r10)]]),
    ]
    ops = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ, "h": qml.Hadamard, "x": qml.PauliX}
    values = theta.numpy()

    @qml.qnode(qml.device("default.mixed", wires=circuit.n_qubits))
    def run():
        for gate in circuit.gates:
            if gate.name == "cnot":
                qml.CNOT(wires=list(gate.wires))
            elif gate.name == "cz":
                qml.CZ(wires=list(gate.wires))
            elif gate.param is None:
                ops[gate.name](wires=gate.wires[0])
            else:
                ops[gate.name](values[gate.param], wires=gate.wires[0])
            kraus = one if len(gate.wires) == 1 else two
            qml.QubitChannel(kraus, wires=list(gate.wires))
        for q in range(circuit.n_qubits):
            qml.QubitChannel(readout, wires=q)
        return qml.probs(wires=range(circuit.n_qubits))

    return np.asarray(run(), dtype=np.float64)


# ------------------------------------------------------------------------------ noise model
def test_noise_table_is_validated_with_one_line_errors():
    model = NoiseModel.from_dict({"p1": 0.01, "p2": 0.02, "readout": 0.05, "scale": 2})
    assert (model.gate_p1, model.gate_p2) == (0.02, 0.04)
    assert model.readout01 == model.readout10 == 0.05
    with pytest.raises(
        ConfigError, match="valid keys: p1, p2, readout, readout01, readout10, scale"
    ):
        NoiseModel.from_dict({"p3": 0.1})
    with pytest.raises(ConfigError, match="not both"):
        NoiseModel.from_dict({"readout": 0.1, "readout01": 0.2})
    with pytest.raises(ConfigError, match=r"p1 must be a probability in \[0, 1\], got 1.5"):
        NoiseModel(p1=1.5)
    with pytest.raises(ConfigError, match="exceeds 1"):
        NoiseModel(p2=0.6, scale=2)
    with pytest.raises(ConfigError, match="scale"):
        NoiseModel(scale=-1)
    assert NoisyBackend({"p1": 0.01}).noise == NoiseModel(p1=0.01)
    with pytest.raises(ConfigError, match="max_density_qubits"):
        NoisyBackend(max_density_qubits=40)


# ------------------------------------------------------------------------------ exact path
def test_noiseless_probabilities_match_qiskit_statevector():
    backend = NoisyBackend()
    for circuit in CIRCUITS:
        theta = torch.rand(2, circuit.n_params, generator=torch.Generator().manual_seed(3)) * 6
        ours = backend.probs(circuit, theta.double())
        np.testing.assert_allclose(ours.numpy(), qiskit_probs(circuit, theta), atol=1e-12)


@pytest.mark.parametrize("index", range(len(CIRCUITS)))
def test_density_matrix_matches_aer(index):
    circuit = CIRCUITS[index]
    noise = NoiseModel.from_dict(NOISE)
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(index)) * 6
    theta = theta.double()
    rho = NoisyBackend(noise).density_matrix(circuit, theta)
    np.testing.assert_allclose(rho.numpy(), aer_density_matrix(circuit, theta, noise), atol=1e-10)


@pytest.mark.parametrize("index", [0, 3, 6, 8])
def test_probabilities_with_readout_match_pennylane_default_mixed(index):
    circuit = CIRCUITS[index]
    noise = NoiseModel.from_dict(NOISE)
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(10 + index)) * 6
    theta = theta.double()
    ours = NoisyBackend(noise).probs(circuit, theta)
    np.testing.assert_allclose(
        ours.numpy(), pennylane_mixed_probs(circuit, theta, noise), atol=1e-10
    )


def test_batched_probs_equal_row_by_row_and_shapes():
    circuit = hardware_efficient(3, 2, rotations=("ry", "rz"))
    backend = NoisyBackend(NOISE, chunk_bytes=1)  # one row per chunk: exercises chunking
    theta = torch.rand(
        5, circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    batch = backend.probs(circuit, theta)
    assert batch.shape == (5, 8)
    rows = torch.stack([NoisyBackend(NOISE).probs(circuit, t) for t in theta])
    torch.testing.assert_close(batch, rows, atol=1e-14, rtol=0)
    torch.testing.assert_close(batch.sum(1), torch.ones(5, dtype=torch.float64))


def test_gradient_matches_finite_differences():
    circuit = hardware_efficient(3, 1, rotations=("ry", "rx"))
    backend = NoisyBackend(NOISE)
    assert backend.capabilities_for(circuit).backprop
    weights = torch.linspace(-1, 1, 8, dtype=torch.float64)
    theta = torch.rand(
        circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    theta.requires_grad_(True)
    (backend.probs(circuit, theta) @ weights).backward()
    eps = 1e-6
    numeric = []
    for j in range(circuit.n_params):
        step = torch.zeros_like(theta).detach()
        step[j] = eps
        up = backend.probs(circuit, theta.detach() + step) @ weights
        down = backend.probs(circuit, theta.detach() - step) @ weights
        numeric.append((up - down) / (2 * eps))
    torch.testing.assert_close(theta.grad, torch.stack(numeric), atol=1e-8, rtol=0)


# ------------------------------------------------------------------------------ sampling
def test_exact_path_samples_follow_noisy_probabilities():
    circuit = qhn_reference(3, 1)
    backend = NoisyBackend(NOISE)
    theta = (
        torch.rand(
            2, circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
        )
        * 6
    )
    bits = backend.sample(circuit, theta, 4000, generator=torch.Generator().manual_seed(0))
    assert bits.shape == (2, 4000, 3) and bits.dtype == torch.uint8
    probs = backend.probs(circuit, theta)
    for b in range(2):
        assert chi_square_pvalue(bits[b], probs[b]) > 1e-3


def test_trajectory_sampling_agrees_with_density_matrix():
    circuit = qhn_reference(4, 1)
    noise = {"p1": 0.05, "p2": 0.15, "readout01": 0.03, "readout10": 0.07}
    exact = NoisyBackend(noise)
    trajectories = NoisyBackend(noise, max_density_qubits=2)
    assert not trajectories.capabilities_for(circuit).exact_probs
    theta = (
        torch.rand(
            2, circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
        )
        * 6
    )
    shots = 6000
    bits = trajectories.sample(circuit, theta, shots, generator=torch.Generator().manual_seed(5))
    assert bits.shape == (2, shots, 4)
    probs = exact.probs(circuit, theta)
    noiseless = NoisyBackend().probs(circuit, theta)
    for b in range(2):
        assert chi_square_pvalue(bits[b], probs[b]) > 1e-3
        # The test has power: the same shots clearly reject the noiseless distribution.
        assert chi_square_pvalue(bits[b], noiseless[b]) < 1e-6
    # Unbiased for anything linear in q: the mean of a ±1 observable within 4 standard errors.
    signs = 1.0 - 2.0 * bits[..., 0].double()
    expected = probs.reshape(2, 2, -1).sum(-1) @ torch.tensor([1.0, -1.0], dtype=torch.float64)
    stderr = torch.sqrt((1 - expected**2) / shots)
    assert bool(((signs.mean(1) - expected).abs() < 4 * stderr).all())


def test_trajectory_samples_are_reproducible_from_the_generator():
    circuit = qhn_reference(4, 1)
    backend = NoisyBackend(NOISE, max_density_qubits=2)
    theta = torch.rand(
        circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(6)
    )
    first = backend.sample(circuit, theta, 300, generator=torch.Generator().manual_seed(11))
    again = backend.sample(circuit, theta, 300, generator=torch.Generator().manual_seed(11))
    other = backend.sample(circuit, theta, 300, generator=torch.Generator().manual_seed(12))
    assert first.shape == (300, 4)
    assert torch.equal(first, again) and not torch.equal(first, other)
    seeded = [
        NoisyBackend(NOISE, max_density_qubits=2, seed=3).sample(circuit, theta, 50)
        for _ in range(2)
    ]
    assert torch.equal(seeded[0], seeded[1])


def test_probs_above_the_density_limit_name_the_limit_and_the_fix():
    circuit = hardware_efficient(5, 1)
    backend = NoisyBackend(NOISE, max_density_qubits=4)
    theta = torch.zeros(circuit.n_params, dtype=torch.float64)
    with pytest.raises(CapabilityError, match=r"limit of 4 qubits.*sample-based objective"):
        backend.probs(circuit, theta)


def test_density_matrix_over_the_memory_budget_is_refused_before_allocating():
    circuit = hardware_efficient(10, 1)
    backend = NoisyBackend(NOISE, memory_budget=2**20)
    with pytest.raises(MemoryBudgetError, match="memory budget"):
        backend.probs(circuit, torch.zeros(circuit.n_params, dtype=torch.float64))


def test_noiseless_sampling_follows_the_born_distribution():
    # Without gate noise every shot shares one trajectory, so sampling takes the trajectory path.
    circuit = qhn_reference(3, 1)
    theta = (
        torch.rand(
            circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(8)
        )
        * 6
    )
    backend = NoisyBackend()
    assert not backend._sample_exactly(circuit, 4000)
    bits = backend.sample(circuit, theta, 4000, generator=torch.Generator().manual_seed(9))
    probs = torch.as_tensor(qiskit_probs(circuit, theta))
    assert chi_square_pvalue(bits, probs) > 1e-3


def test_chunked_trajectories_follow_the_same_distribution():
    # A tiny chunk forces many shot chunks and several trajectory chunks per shot chunk.
    circuit = qhn_reference(4, 1)
    noise = {"p1": 0.05, "p2": 0.15, "readout": 0.05}
    backend = NoisyBackend(noise, max_density_qubits=2, chunk_bytes=4096)
    theta = (
        torch.rand(
            circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(13)
        )
        * 6
    )
    bits = backend.sample(circuit, theta, 3000, generator=torch.Generator().manual_seed(14))
    assert bits.shape == (3000, 4)
    assert chi_square_pvalue(bits, NoisyBackend(noise).probs(circuit, theta)) > 1e-3


@pytest.mark.parametrize("name", ["qhn_reference", "random"])
def test_each_trajectory_equals_the_circuit_with_its_paulis_inserted(name):
    """Every simulated trajectory (shared gates, errors conjugated into the pending one-qubit
    products, rows entering at their first error) has the Born probabilities of the circuit
    with exactly its Paulis inserted, to 1e-12: patterns with no error and with one to four,
    one on the last gate, with and without the error-free pattern among them."""
    circuit = qhn_reference(4, 2) if name == "qhn_reference" else CIRCUITS[7]
    n_gates = len(circuit.gates)
    theta = torch.rand(
        circuit.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(21)
    )
    backend = NoisyBackend(NOISE, max_density_qubits=0)
    sites = backend._error_sites(circuit)
    assert len(sites) == n_gates
    rng = np.random.default_rng(22)
    patterns = np.zeros((40, n_gates), dtype=np.int8)
    for t in range(1, 40):
        hits = rng.choice(n_gates, size=1 + t % 4, replace=False)
        for g in hits:
            patterns[t, g] = rng.integers(1, 4 ** len(circuit.gates[g].wires))
    patterns[5, -1] = 3
    order = rng.permutation(40)  # the error-free row anywhere, not first
    patterns = patterns[order]
    got = backend._trajectory_probs(circuit, theta, sites, torch.from_numpy(patterns))
    expected = np.stack([qiskit_trajectory_probs(circuit, theta, list(p)) for p in patterns])
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    without_clean = backend._trajectory_probs(
        circuit, theta, sites, torch.from_numpy(np.delete(patterns, order.argmin(), axis=0))
    )
    np.testing.assert_allclose(
        without_clean.numpy(), np.delete(expected, order.argmin(), axis=0), atol=1e-12
    )
