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

__all__ = [
    "ANSATZE",
    "TOPOLOGIES",
    "Circuit",
    "Gate",
    "build_ansatz",
    "entangler_pairs",
    "hardware_efficient",
    "product",
    "qhn_reference",
    "reference_params_from_row",
]
