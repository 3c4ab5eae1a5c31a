"""from_qiskit: random parametrized Qiskit circuits give Qiskit's Statevector probabilities
(reordered to our bit order) on our statevector backend; unsupported input is one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qhn.backends import StatevectorBackend
from qhn.bits import bitstring
from qhn.circuits import from_qiskit, parameter_values, qiskit_order
from qhn.errors import ConfigError

qiskit = pytest.importorskip("qiskit")
from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import Parameter  # noqa: E402
from qiskit.quantum_info import Statevector  # noqa: E402


def random_circuit(n: int, depth: int, n_params: int, rng: np.random.Generator):
    params = [Parameter(f"t{j:02d}") for j in range(n_params)]
    qc = QuantumCircuit(n)
    for _ in range(depth):
        kind = rng.choice(["ry", "rx", "rz", "h", "x", "cz", "cx"])
        if kind in ("cz", "cx"):
            a, b = rng.choice(n, size=2, replace=False)
            getattr(qc, kind)(int(a), int(b))
        elif kind in ("h", "x"):
            getattr(qc, kind)(int(rng.integers(n)))
        else:
            getattr(qc, kind)(params[int(rng.integers(n_params))], int(rng.integers(n)))
    qc.barrier()
    qc.measure_all()
    return qc


@pytest.mark.parametrize("seed", range(6))
def test_random_circuits_match_qiskit_statevector(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    qc = random_circuit(n, depth=int(rng.integers(4, 25)), n_params=4, rng=rng)
    circuit = from_qiskit(qc)
    assert circuit.n_qubits == n and circuit.n_params == len(qc.parameters)
    binding = {
        p: float(v)
        for p, v in zip(qc.parameters, rng.uniform(0, 2 * np.pi, len(qc.parameters)), strict=True)
    }
    theta = parameter_values(qc, binding)
    ours = StatevectorBackend().probs(circuit, theta)
    bound = qc.remove_final_measurements(inplace=False).assign_parameters(binding)
    theirs = torch.from_numpy(Statevector(bound).probabilities())
    assert torch.allclose(ours, qiskit_order(theirs), rtol=0, atol=1e-12)


def test_bit_order_qiskit_qubit_k_is_our_bit_k():
    qc = QuantumCircuit(3)
    qc.x(0)  # Qiskit's index 1 ('001' in its little-endian string)
    ours = StatevectorBackend().probs(from_qiskit(qc), torch.zeros(0, dtype=torch.float64))
    assert bitstring(int(ours.argmax()), 3) == "100"  # our qubit 0 first
    assert int(torch.from_numpy(Statevector(qc).probabilities()).argmax()) == 1


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda qc, t: qc.ry(2 * t, 0), "not a single Parameter"),
        (lambda qc, t: qc.ry(0.3, 0), "not a single Parameter"),
        (lambda qc, t: qc.u(t, 0.1, 0.2, 0), "gate 'u' is not supported"),
    ],
)
def test_unsupported_input_is_one_clear_error(build, match):
    qc = QuantumCircuit(2)
    build(qc, Parameter("t"))
    with pytest.raises(ConfigError, match=match):
        from_qiskit(qc)
    with pytest.raises(ConfigError, match="QuantumCircuit"):
        from_qiskit("not a circuit")


def test_a_converted_circuit_trains_like_our_own():
    from qhn.circuits import hardware_efficient
    from qhn.sklearn import QHNClassifier

    ours = hardware_efficient(3, 1)
    params = [Parameter(f"p{j:03d}") for j in range(ours.n_params)]
    qc = QuantumCircuit(3)
    for gate in ours.gates:
        name = "cx" if gate.name == "cnot" else gate.name
        args = [] if gate.param is None else [params[gate.param]]
        getattr(qc, name)(*args, *gate.wires)
    converted = from_qiskit(qc)
    assert converted.gates == ours.gates and converted.n_params == ours.n_params
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    kwargs = {"steps": 15, "random_state": 2, "layers": 1}
    mine = QHNClassifier(circuit=converted, **kwargs).fit(x, y)
    default = QHNClassifier(**kwargs).fit(x, y)
    assert np.array_equal(mine.q_, default.q_)
    with pytest.raises(ConfigError, match="4 qubits but the task has 3 bits"):
        QHNClassifier(circuit=hardware_efficient(4, 1), steps=1).fit(x, y)
