"""Circuit executors: the backend protocol, the torch statevector simulator, sampling."""

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Backend,
    Capabilities,
    ExactBackend,
    as_param_batch,
    require_exact,
)
from qhn.backends.sampling import sample_bits, sample_indices
from qhn.backends.statevector import StatevectorBackend

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Backend",
    "Capabilities",
    "ExactBackend",
    "StatevectorBackend",
    "as_param_batch",
    "require_exact",
    "sample_bits",
    "sample_indices",
]
