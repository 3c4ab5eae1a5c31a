"""Circuit IR and ansatz builders."""

from qhn.circuits.ansatz import (
    ANSATZE,
    TOPOLOGIES,
    build_ansatz,
    entangler_pairs,
    hardware_efficient,
    product,
    qhn_reference,
    reference_params_from_row,
)
from qhn.circuits.ir import Circuit, Gate

#: Names served by qhn.circuits.qiskit_convert, imported on first use (Qiskit is an extra).
_FROM_QISKIT = ("from_qiskit", "parameter_values", "qiskit_order")

__all__ = [
    "ANSATZE",
    "TOPOLOGIES",
    "Circuit",
    "Gate",
    "build_ansatz",
    "entangler_pairs",
    "from_qiskit",
    "hardware_efficient",
    "parameter_values",
    "product",
    "qhn_reference",
    "qiskit_order",
    "reference_params_from_row",
]


def __getattr__(name: str) -> object:
    if name in _FROM_QISKIT:
        from qhn.circuits import qiskit_convert

        return getattr(qiskit_convert, name)
    raise AttributeError(f"module 'qhn.circuits' has no attribute {name!r}")
