"""Convert a Qiskit ``QuantumCircuit`` with ``Parameter``s into our circuit IR (extra ``qiskit``).

Qubits: Qiskit qubit ``k`` becomes our qubit ``k``, so it carries network parameter ``k``
(:mod:`qhn.bits`). The two libraries index basis states differently: Qiskit is little-endian
(qubit ``k`` weighs ``2^k``), we are big-endian (qubit ``q`` weighs ``2^(n−1−q)``), so the same
state has probability vectors related by reversing the bits of the index:
``ours[index(s)] = qiskit[Σ_k s_k 2^k]`` (:func:`qiskit_order`).

Parameters: our ``θ[j]`` is Qiskit's ``circuit.parameters[j]`` (Qiskit's own, name-sorted order);
one parameter may drive several gates. Gates: ``ry``, ``rx``, ``rz`` whose angle is a single
``Parameter``; ``h``, ``x``, ``cz``, ``cx`` (control, target). Rotations are ``exp(−iθG/2)`` in
both libraries. Barriers and final measurements are dropped; anything else (parameter
expressions such as ``2·θ``, numeric rotation angles, other gates, classical control) is refused
with one line naming the gate and what to do.
"""

from __future__ import annotations

from typing import Any

import torch

from qhn.bits import from_little_endian
from qhn.circuits.ir import Circuit, Gate
from qhn.errors import ConfigError

__all__ = ["from_qiskit", "parameter_values", "qiskit_order"]

_ROTATIONS = {"ry": "ry", "rx": "rx", "rz": "rz"}
_FIXED = {"h": "h", "x": "x", "cz": "cz", "cx": "cnot"}
_DROPPED = {"barrier", "measure"}


def from_qiskit(circuit: Any, *, name: str | None = None) -> Circuit:
    """Our :class:`~qhn.circuits.ir.Circuit` for a Qiskit ``QuantumCircuit``; see the module
    docstring for the qubit, parameter and gate conventions."""
    try:
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
    except ImportError:
        raise ConfigError(
            "from_qiskit needs Qiskit: pip install 'qhn[qiskit]' (or pip install qiskit)"
        ) from None
    if not isinstance(circuit, QuantumCircuit):
        raise ConfigError(
            f"from_qiskit takes a qiskit QuantumCircuit, got {type(circuit).__name__}"
        )
    index = {parameter: j for j, parameter in enumerate(circuit.parameters)}
    gates: list[Gate] = []
    for position, instruction in enumerate(circuit.data):
        operation = instruction.operation
        kind = operation.name
        wires = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        where = f"instruction {position} ({kind} on qubits {list(wires)})"
        if kind in _DROPPED:
            continue
        if getattr(operation, "condition", None) is not None:
            raise ConfigError(
                f"{where} is classically controlled; qhn circuits have no classical bits"
            )
        if kind in _FIXED:
            gates.append(Gate(_FIXED[kind], wires))
        elif kind in _ROTATIONS:
            (angle,) = operation.params
            if not isinstance(angle, Parameter):
                raise ConfigError(
                    f"{where}: its angle {angle} is not a single Parameter; give each rotation its "
                    "own Parameter (expressions and fixed angles are not supported)"
                )
            gates.append(Gate(_ROTATIONS[kind], wires, index[angle]))
        else:
            supported = sorted({*_ROTATIONS, *_FIXED, *_DROPPED})
            raise ConfigError(
                f"{where}: gate {kind!r} is not supported; use {', '.join(supported)} "
                "(qiskit.transpile(circuit, basis_gates=['ry', 'rx', 'rz', 'h', 'x', 'cz', 'cx']) "
                "may rewrite it)"
            )
    return Circuit(
        circuit.num_qubits, tuple(gates), len(index), name=name or circuit.name or "qiskit"
    )


def parameter_values(circuit: Any, values: dict[Any, float]) -> torch.Tensor:
    """``θ`` for :func:`from_qiskit`'s circuit from a ``{Parameter: value}`` binding.

    Shapes: → ``(P,)`` float64 in ``circuit.parameters`` order; every parameter must be bound.
    """
    missing = [p.name for p in circuit.parameters if p not in values]
    if missing:
        raise ConfigError(f"no value for parameter(s) {', '.join(missing)}")
    return torch.tensor([float(values[p]) for p in circuit.parameters], dtype=torch.float64)


def qiskit_order(probs: torch.Tensor) -> torch.Tensor:
    """Qiskit's little-endian vector in our bit order (:func:`qhn.bits.from_little_endian`).

    Shapes: ``(..., 2**n)`` → ``(..., 2**n)``.
    """
    return from_little_endian(probs)
