"""Binary neural networks, evaluated for many weight bitstrings at once; landscape enumeration."""

from qhn.models.enumerate import enumerate_costs, enumerate_costs_naive
from qhn.models.losses import LOSSES, data_term, per_example_loss
from qhn.models.network import (
    ALPHABETS,
    HIDDEN_ACTIVATIONS,
    LAYOUTS,
    BinaryNetwork,
    DecodedWeights,
)

__all__ = [
    "ALPHABETS",
    "HIDDEN_ACTIVATIONS",
    "LAYOUTS",
    "LOSSES",
    "BinaryNetwork",
    "DecodedWeights",
    "data_term",
    "enumerate_costs",
    "enumerate_costs_naive",
    "per_example_loss",
]
