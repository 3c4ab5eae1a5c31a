"""Run qhn circuits on any installed PennyLane device (extra ``pennylane``).

Our qubit ``q`` is PennyLane wire ``q``; PennyLane orders ``qml.probs`` with wire 0 most
significant and ``qml.sample`` columns by wire, exactly our order, so nothing is reordered.

A ``(B, P)`` batch is one execution through parameter broadcasting (every rotation gets a
``(B,)`` angle vector); shots are set per call with ``qml.set_shots`` (the device itself is
analytic). An analytic simulator (``default.qubit``, ``lightning.qubit``, ``default.mixed``)
also serves exact probabilities; on the density-matrix device ``default.mixed`` a ``noise``
table inserts PastaQ's channels, so exact probabilities (and hence exact ELBO) include noise:

- after every one-qubit gate, ``qml.DepolarizingChannel(p1)`` (X, Y, Z each with ``p1/3``);
- after every two-qubit gate, the Pauli channel with ``p2/15`` on each of the 15 non-identity
  two-qubit Paulis;
- before measurement, a bit flip: ``readout`` (symmetric) or ``readout01 = P(read 1 | 0)``,
  ``readout10 = P(read 0 | 1)``. ``scale`` multiplies ``p1`` and ``p2``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_memory,
    check_sample_memory,
    check_shots,
)
from qhn.backends.noise_model import NoiseModel
from qhn.circuits.ir import Circuit
from qhn.errors import CapabilityError, ConfigError, choices

__all__ = ["MIXED_STATE_DEVICES", "PennyLaneBackend"]

#: Devices that hold a density matrix, so noise channels can be applied exactly.
MIXED_STATE_DEVICES = ("default.mixed",)
#: Analytic simulators whose ``qml.probs`` is the exact Born distribution.
EXACT_DEVICES = ("default.qubit", "lightning.qubit", "lightning.kokkos", "lightning.gpu")
_SEED_HIGH = 2**31 - 1


def _qml() -> Any:
    try:
        import pennylane as qml
    except ImportError:
        raise ConfigError(
            "the pennylane backend needs PennyLane: pip install 'qhn[pennylane]'"
        ) from None
    return qml


@functools.cache
def _two_qubit_pauli_kraus(p2: float) -> tuple[np.ndarray, ...]:
    """Kraus operators ``√(1−p)·I`` and ``√(p/15)·P`` for the 15 non-identity Paulis ``P``."""
    paulis = [
        np.eye(2),
        np.array([[0, 1], [1, 0]]),
        np.array([[0, -1j], [1j, 0]]),
        np.diag([1.0, -1.0]),
    ]
    ops = [np.kron(a, b).astype(complex) for a, b in itertools.product(paulis, repeat=2)]
    return (math.sqrt(1 - p2) * ops[0], *(math.sqrt(p2 / 15) * op for op in ops[1:]))


def _readout_kraus(r01: float, r10: float) -> list[np.ndarray]:
    """A classical bit flip ``0→1`` with ``r01`` and ``1→0`` with ``r10`` as Kraus operators."""
    return [
        np.array([[math.sqrt(1 - r01), 0], [0, 0]], dtype=complex),
        np.array([[0, 0], [math.sqrt(r01), 0]], dtype=complex),
        np.array([[0, 0], [0, math.sqrt(1 - r10)]], dtype=complex),
        np.array([[0, math.sqrt(r10)], [0, 0]], dtype=complex),
    ]


class PennyLaneBackend:
    """Sample (and, on analytic simulators, compute exact probabilities of) qhn circuits on a
    PennyLane device; see the module docstring.

    Args:
        device: an installed PennyLane device name (``default.qubit``, ``default.mixed``, …).
        seed: makes runs reproducible when ``sample`` gets no generator: call ``k`` uses the
            ``k``-th draw of a generator seeded with it.
        noise: a ``[noise]`` table; only on a density-matrix device (``default.mixed``).
        memory_budget: bytes one call may use for state vectors (density matrices count as
            ``2n`` qubits); larger requests are refused before any compute.
    """

    def __init__(
        self,
        device: str,
        *,
        seed: int | None = None,
        noise: NoiseModel | Mapping[str, object] | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        qml = _qml()
        self.device_name = device
        try:
            qml.device(device, wires=1)
        except Exception as error:  # PennyLane raises its own DeviceError subclasses
            raise ConfigError(
                f"PennyLane device {device!r} is not available ({error}); installed devices "
                "include default.qubit, default.mixed, lightning.qubit"
            ) from None
        self.mixed = device in MIXED_STATE_DEVICES
        if noise and not self.mixed:
            raise ConfigError(
                f"noise needs a density-matrix device ({choices(MIXED_STATE_DEVICES)}), "
                f"not {device!r}"
            )
        model = NoiseModel.coerce(noise or None)
        self.noise = (model.gate_p1, model.gate_p2, model.readout01, model.readout10)
        self.memory_budget = memory_budget
        self.jobs = 0
        self.executions = 0
        self.shots_taken = 0
        self._rng = None if seed is None else torch.Generator().manual_seed(int(seed))
        exact = self.mixed or device in EXACT_DEVICES
        self.capabilities = Capabilities(exact_probs=exact, backprop=False, max_qubits=None)

    def __repr__(self) -> str:
        return f"PennyLaneBackend({self.device_name!r})"

    def _check(self, circuit: Circuit, rows: int) -> None:
        width = 2 * circuit.n_qubits if self.mixed else circuit.n_qubits
        check_memory(width, rows, 16, 1, self.memory_budget)

    def _queue(self, circuit: Circuit, theta: np.ndarray) -> None:
        """Our gates (and noise channels) as PennyLane operations; ``theta`` is ``(B, P)``."""
        qml = _qml()
        p1, p2, r01, r10 = self.noise
        rotations = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ}
        fixed = {"h": qml.Hadamard, "x": qml.PauliX, "cz": qml.CZ, "cnot": qml.CNOT}
        for gate in circuit.gates:
            if gate.param is not None:
                rotations[gate.name](theta[:, gate.param], wires=gate.wires[0])
            else:
                fixed[gate.name](wires=list(gate.wires))
            if len(gate.wires) == 1 and p1 > 0:
                qml.DepolarizingChannel(p1, wires=gate.wires[0])
            if len(gate.wires) == 2 and p2 > 0:
                qml.QubitChannel(list(_two_qubit_pauli_kraus(p2)), wires=list(gate.wires))
        if r01 > 0 or r10 > 0:
            for q in range(circuit.n_qubits):
                qml.QubitChannel(_readout_kraus(r01, r10), wires=q)

    def _run(self, circuit: Circuit, theta: np.ndarray, measure: str, shots: int | None, seed):
        qml = _qml()
        device = qml.device(self.device_name, wires=circuit.n_qubits, seed=seed)

        def body():
            self._queue(circuit, theta)
            if measure == "sample":
                return qml.sample(wires=range(circuit.n_qubits))
            return qml.probs(wires=range(circuit.n_qubits))

        node = qml.QNode(body, device)
        if shots is not None:
            node = qml.set_shots(node, shots=shots)
        self.jobs += 1
        self.executions += theta.shape[0]
        return np.asarray(node())

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure every parameter row ``shots`` times in one broadcast execution.

        Shapes: params ``(B, P)`` → bits ``(B, shots, n)`` uint8; ``(P,)`` → ``(shots, n)``.
        """
        check_shots(shots)
        batch, batched = as_param_batch(circuit, params)
        rows, n = batch.shape[0], circuit.n_qubits
        self._check(circuit, rows)
        check_sample_memory(rows, shots, n, self.memory_budget)
        source = generator if generator is not None else self._rng
        seed = None if source is None else int(torch.randint(_SEED_HIGH, (1,), generator=source))
        theta = batch.detach().to(torch.float64).cpu().numpy()
        if not circuit.rotations:
            # Nothing to broadcast over: draw every row's shots in one execution.
            out = self._run(circuit, theta[:1], "sample", rows * shots, seed)
            self.executions += rows - 1
        else:
            out = self._run(circuit, theta, "sample", shots, seed)
        self.shots_taken += rows * shots
        bits = torch.from_numpy(out.reshape(rows, shots, n).astype(np.uint8))
        return bits if batched else bits[0]

    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Exact Born probabilities (noise included on ``default.mixed``), our index order.

        Shapes: ``(B, P)`` → ``(B, 2**n)`` float64; ``(P,)`` → ``(2**n,)``.
        """
        if not self.capabilities.exact_probs:
            raise CapabilityError(
                f"PennyLane device {self.device_name!r} is not an analytic simulator; "
                f"use one of {choices((*EXACT_DEVICES, *MIXED_STATE_DEVICES))} for probabilities"
            )
        batch, batched = as_param_batch(circuit, params)
        rows = batch.shape[0]
        self._check(circuit, rows)
        theta = batch.detach().to(torch.float64).cpu().numpy()
        if not circuit.rotations:
            out = self._run(circuit, theta[:1], "probs", None, None)
            self.executions += rows - 1
        else:
            out = self._run(circuit, theta, "probs", None, None)
        probs = torch.from_numpy(out.reshape(-1, 2**circuit.n_qubits).astype(np.float64))
        probs = probs.expand(rows, -1).contiguous()
        return probs if batched else probs[0]
