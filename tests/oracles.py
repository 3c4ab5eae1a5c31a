"""Independent simulators for tests: our circuit IR run on PennyLane and on Qiskit.

Both oracles return Born probabilities in *our* index order (qubit 0 = most significant bit,
``index = Σ_q b_q 2^(n−1−q)``), as float64 NumPy arrays.

- PennyLane orders ``qml.probs`` with the first wire most significant, like us, so our qubit ``q``
  is PennyLane wire ``q``.
- Qiskit is little-endian (its qubit ``k`` weighs ``2^k``). :func:`qiskit_wire` maps our qubit
  ``q`` to Qiskit qubit ``n − 1 − q``, which weighs ``2^(n−1−q)``: exactly our place value, so
  Qiskit's probability vector then needs no reordering. That map is the one place where the two
  orders meet.

Rotations are ``exp(−iθG/2)`` in all three libraries (``qml.RY/RX/RZ``, Qiskit ``ry/rx/rz``);
``cnot`` wires are (control, target).

Shapes: ``params`` ``(P,)`` → ``(2**n,)``; ``(B, P)`` → ``(B, 2**n)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from hypothesis import strategies as st

from qhn.circuits import Circuit, Gate
from qhn.circuits.ir import GATE_ARITY, ROTATION_GATES


def _as_numpy(params: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(params, torch.Tensor):
        params = params.detach().cpu().numpy()
    return np.asarray(params, dtype=np.float64)


# ------------------------------------------------------------------------------------ PennyLane
@functools.cache
def pennylane_device():
    import pennylane as qml

    return qml.device("default.qubit")


def _apply_pennylane_gates(circuit: Circuit, theta) -> None:
    """Queue our gates as PennyLane operations inside a QNode (wire ``q`` = our qubit ``q``)."""
    import pennylane as qml

    ops = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ, "h": qml.Hadamard, "x": qml.PauliX}
    two = {"cz": qml.CZ, "cnot": qml.CNOT}
    for gate in circuit.gates:
        if gate.name in two:
            two[gate.name](wires=list(gate.wires))
        elif gate.param is None:
            ops[gate.name](wires=gate.wires[0])
        else:
            ops[gate.name](theta[..., gate.param], wires=gate.wires[0])


@functools.cache
def _pennylane_qnode():
    """One QNode for every circuit: the circuit is a plain (non-trainable) argument."""
    import pennylane as qml

    @qml.qnode(pennylane_device(), interface="numpy")
    def run(theta, circuit):
        _apply_pennylane_gates(circuit, theta)
        return qml.probs(wires=range(circuit.n_qubits))

    return run


def pennylane_probs(circuit: Circuit, params: torch.Tensor | np.ndarray) -> np.ndarray:
    """Probabilities from PennyLane ``default.qubit`` (a batch runs as one broadcast execution).

    Shapes: ``(P,)`` → ``(2**n,)``; ``(B, P)`` → ``(B, 2**n)``.
    """
    theta = _as_numpy(params)
    probs = np.asarray(_pennylane_qnode()(theta, circuit), dtype=np.float64)
    if theta.ndim == 2 and probs.ndim == 1:
        # A circuit without rotations is not broadcast: every row gives the same vector.
        probs = np.broadcast_to(probs, (theta.shape[0], probs.shape[0])).copy()
    return probs


# ------------------------------------------------------------------------------------ Qiskit
def qiskit_wire(n_qubits: int, qubit: int) -> int:
    """Our qubit ``q`` (weight ``2^(n−1−q)``) as the Qiskit qubit of the same weight."""
    return n_qubits - 1 - qubit


def qiskit_circuit(circuit: Circuit, params: torch.Tensor | np.ndarray):
    """Our circuit with numeric angles as a Qiskit ``QuantumCircuit``. Shapes: params ``(P,)``."""
    from qiskit import QuantumCircuit

    theta = _as_numpy(params)
    if theta.shape != (circuit.n_params,):
        raise ValueError(f"expected params of shape ({circuit.n_params},), got {theta.shape}")
    n = circuit.n_qubits
    qc = QuantumCircuit(n)
    for gate in circuit.gates:
        wires = [qiskit_wire(n, q) for q in gate.wires]
        if gate.name == "cnot":
            qc.cx(*wires)
        elif gate.name in ("cz", "h", "x"):
            getattr(qc, gate.name)(*wires)
        else:
            getattr(qc, gate.name)(float(theta[gate.param]), *wires)
    return qc


def qiskit_probs(circuit: Circuit, params: torch.Tensor | np.ndarray) -> np.ndarray:
    """Probabilities from ``qiskit.quantum_info.Statevector``, in our index order.

    Shapes: ``(P,)`` → ``(2**n,)``; ``(B, P)`` → ``(B, 2**n)``.
    """
    from qiskit.quantum_info import Statevector

    theta = _as_numpy(params)
    if theta.ndim == 2:
        return np.stack([qiskit_probs(circuit, row) for row in theta])
    return np.asarray(Statevector(qiskit_circuit(circuit, theta)).probabilities(), dtype=np.float64)


def qiskit_trajectory_probs(
    circuit: Circuit, theta: torch.Tensor, pattern: list[int]
) -> np.ndarray:
    """Born probabilities of the circuit with the Paulis of one error pattern inserted after
    their gates (code digits base 4, first wire most significant: I, X, Y, Z), by Qiskit's
    ``Statevector``; the wire map of :func:`oracles.qiskit_circuit` gives our index order."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    n = circuit.n_qubits
    qc = QuantumCircuit(n)
    for gate, code in zip(circuit.gates, pattern, strict=True):
        qc.compose(qiskit_circuit(Circuit(n, (gate,), circuit.n_params), theta), inplace=True)
        digits = [(code >> 2 * (len(gate.wires) - 1 - i)) & 3 for i in range(len(gate.wires))]
        for wire, digit in zip(gate.wires, digits, strict=True):
            if digit:
                getattr(qc, "ixyz"[digit])(qiskit_wire(n, wire))
    return np.asarray(Statevector(qc).probabilities(), dtype=np.float64)


def qiskit_finite_difference(
    circuit: Circuit, theta: torch.Tensor, cost: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Central differences of ``Σ_s c(s) q_θ(s)`` from Qiskit; error O(h²) ≈ 1e-10 at the
    default step. Shapes: theta ``(P,)``, cost ``(2**n,)`` → ``(P,)``."""
    grad = np.zeros(theta.numel())
    for p in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[p] = h
        up = qiskit_probs(circuit, theta + step) @ cost
        down = qiskit_probs(circuit, theta - step) @ cost
        grad[p] = (up - down) / (2 * h)
    return grad


@functools.cache
def _pennylane_state_qnode():
    import pennylane as qml

    @qml.qnode(pennylane_device(), interface="numpy")
    def run(theta, circuit):
        _apply_pennylane_gates(circuit, theta)
        qml.Identity(wires=range(circuit.n_qubits))
        return qml.state()

    return run


def pennylane_state(circuit: Circuit, params: torch.Tensor | np.ndarray) -> np.ndarray:
    """The complex state vector from PennyLane ``default.qubit``. Shapes: ``(P,)`` → ``(2**n,)``."""
    return np.asarray(_pennylane_state_qnode()(_as_numpy(params), circuit), dtype=np.complex128)


@st.composite
def random_circuits(draw, max_qubits: int = 5, max_gates: int = 14, max_params: int = 4):
    """Random gate lists from the whole IR on 1..``max_qubits`` wires; rotations draw from a few
    shared parameters (so one parameter often drives several gates)."""
    n = draw(st.integers(1, max_qubits))
    n_params = draw(st.integers(1, max_params))
    names = sorted(name for name, arity in GATE_ARITY.items() if arity <= n)
    gates = []
    for _ in range(draw(st.integers(0, max_gates))):
        name = draw(st.sampled_from(names))
        wires = tuple(draw(st.permutations(range(n)))[: GATE_ARITY[name]])
        param = draw(st.integers(0, n_params - 1)) if name in ROTATION_GATES else None
        gates.append(Gate(name, wires, param))
    return Circuit(n, tuple(gates), n_params)
