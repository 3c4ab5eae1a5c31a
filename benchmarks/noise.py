"""Time the ``noisy`` backend against Qiskit Aer and PennyLane ``default.mixed`` on one noise model.

Noise: the reference study's model at scale ``x`` (p1 = 0.001·x after every one-qubit gate,
p2 = 0.00375·x after every two-qubit gate) plus a symmetric readout flip; the same model is built
in each library (Aer: ``depolarizing_error(4/3·p1, 1)``, ``(16/15·p2, 2)``, ``ReadoutError``;
PennyLane: Pauli Kraus channels after each gate, readout folded into the probabilities).

Prints a table (median of ``--repeats`` runs, one process, same threads):

- exact noisy probabilities of ``--batch`` parameter rows of ``qhn_reference(n, layers)`` at
  ``n = --exact-qubits``: ``noisy`` (Pauli transfer representation), Aer (density-matrix
  method), default.mixed;
- ``--shots`` samples of each row at ``n = --exact-qubits`` (``noisy``: exact probabilities) and at
  ``n = --trajectory-qubits`` (``noisy``: Pauli trajectories; Aer: its automatic method).

Run: ``.venv/bin/python benchmarks/noise.py [--scale 1] [--batch 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from qhn.backends.noisy import NoiseModel, NoisyBackend
from qhn.circuits.ansatz import qhn_reference
from qhn.circuits.ir import Circuit


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def qiskit_circuit(circuit: Circuit, theta: np.ndarray, measure: bool):
    """Our circuit on Qiskit, our qubit q as Qiskit qubit n−1−q (same place values)."""
    from qiskit import QuantumCircuit

    n = circuit.n_qubits
    qc = QuantumCircuit(n)
    for gate in circuit.gates:
        wires = [n - 1 - q for q in gate.wires]
        if gate.name == "cnot":
            qc.cx(*wires)
        elif gate.param is None:
            getattr(qc, gate.name)(*wires)
        else:
            getattr(qc, gate.name)(float(theta[gate.param]), *wires)
    if measure:
        qc.measure_all()
    return qc


def aer_noise(noise: NoiseModel):
    from qiskit_aer.noise import NoiseModel as AerNoise
    from qiskit_aer.noise import ReadoutError, depolarizing_error

    model = AerNoise()
    model.add_all_qubit_quantum_error(
        depolarizing_error(4 / 3 * noise.gate_p1, 1), ["ry", "rx", "rz", "h", "x"]
    )
    model.add_all_qubit_quantum_error(depolarizing_error(16 / 15 * noise.gate_p2, 2), ["cx", "cz"])
    r01, r10 = noise.readout01, noise.readout10
    model.add_all_qubit_readout_error(ReadoutError([[1 - r01, r01], [r10, 1 - r10]]))
    return model


def aer_probs(circuit: Circuit, thetas: np.ndarray, noise: NoiseModel) -> None:
    from qiskit_aer import AerSimulator

    sim = AerSimulator(method="density_matrix", noise_model=aer_noise(noise))
    circuits = []
    for theta in thetas:
        qc = qiskit_circuit(circuit, theta, measure=False)
        qc.save_probabilities()
        circuits.append(qc)
    sim.run(circuits).result()


def aer_sample(circuit: Circuit, thetas: np.ndarray, noise: NoiseModel, shots: int) -> None:
    from qiskit_aer import AerSimulator

    sim = AerSimulator(noise_model=aer_noise(noise), seed_simulator=0)
    sim.run([qiskit_circuit(circuit, t, measure=True) for t in thetas], shots=shots).result()


def pennylane_probs(circuit: Circuit, thetas: np.ndarray, noise: NoiseModel) -> None:
    import itertools

    import pennylane as qml

    paulis = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]])]
    paulis.append(np.diag([1.0, -1.0]))
    one = [np.sqrt(1 - noise.gate_p1) * paulis[0]] + [
        np.sqrt(noise.gate_p1 / 3) * p for p in paulis[1:]
    ]
    two = [np.kron(a, b) for a, b in itertools.product(paulis, paulis)]
    two = [np.sqrt(1 - noise.gate_p2) * two[0]] + [np.sqrt(noise.gate_p2 / 15) * k for k in two[1:]]
    ops = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ}

    @qml.qnode(qml.device("default.mixed", wires=circuit.n_qubits))
    def run(theta):
        for gate in circuit.gates:
            if gate.name == "cnot":
                qml.CNOT(wires=list(gate.wires))
            else:
                ops[gate.name](theta[gate.param], wires=gate.wires[0])
            qml.QubitChannel(one if len(gate.wires) == 1 else two, wires=list(gate.wires))
        return qml.probs(wires=range(circuit.n_qubits))

    for theta in thetas:
        run(theta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--readout", type=float, default=0.02)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--exact-qubits", type=int, default=10)
    parser.add_argument("--trajectory-qubits", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pennylane", action="store_true")
    args = parser.parse_args()

    noise = NoiseModel(0.001, 0.00375, args.readout, args.readout, scale=args.scale)
    rows: list[tuple[str, str, float]] = []
    rows += time_exact(args, noise)
    rows += time_sampling(args, noise, args.exact_qubits)
    rows += time_sampling(args, noise, args.trajectory_qubits)
    print(
        f"qhn_reference(layers={args.layers}), batch {args.batch}, {args.shots} shots, "
        f"x = {args.scale}, readout {args.readout}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'task':<22} {'backend':<26} {'seconds':>9} {'vs noisy':>9}")
    base: dict[str, float] = {}
    for task, name, seconds in rows:
        base.setdefault(task, seconds)
        print(f"{task:<22} {name:<26} {seconds:9.3f} {seconds / base[task]:8.1f}x")


def parameters(args: argparse.Namespace, n: int) -> tuple[Circuit, torch.Tensor]:
    circuit = qhn_reference(n, args.layers)
    gen = torch.Generator().manual_seed(0)
    theta = torch.rand(args.batch, circuit.n_params, generator=gen, dtype=torch.float64) * 6
    return circuit, theta


def time_exact(args: argparse.Namespace, noise: NoiseModel) -> list[tuple[str, str, float]]:
    circuit, theta = parameters(args, args.exact_qubits)
    thetas, task = theta.numpy(), f"probs n={args.exact_qubits}"
    backend = NoisyBackend(noise)
    backend.probs(circuit, theta[:1])  # warm-up
    rows = [
        (task, "noisy", timed(lambda: backend.probs(circuit, theta), args.repeats)),
        (
            task,
            "aer density_matrix",
            timed(lambda: aer_probs(circuit, thetas, noise), args.repeats),
        ),
    ]
    if not args.skip_pennylane:
        rows.append(
            (
                task,
                "pennylane default.mixed",
                timed(lambda: pennylane_probs(circuit, thetas, noise), 1),
            )
        )
    return rows


def time_sampling(
    args: argparse.Namespace, noise: NoiseModel, n: int
) -> list[tuple[str, str, float]]:
    circuit, theta = parameters(args, n)
    thetas, task = theta.numpy(), f"sample n={n}"
    backend = NoisyBackend(noise, seed=0)
    return [
        (task, "noisy", timed(lambda: backend.sample(circuit, theta, args.shots), args.repeats)),
        (
            task,
            "aer automatic",
            timed(lambda: aer_sample(circuit, thetas, noise, args.shots), args.repeats),
        ),
    ]


if __name__ == "__main__":
    main()
