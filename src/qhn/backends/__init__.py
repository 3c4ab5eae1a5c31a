"""Circuit executors: the backend protocol, the torch statevector simulator, sampling, and the
sample-only wrapper."""

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Backend,
    Capabilities,
    ExactBackend,
    as_param_batch,
    require_exact,
)
from qhn.backends.sample_only import SampleOnly
from qhn.backends.sampling import sample_bits, sample_indices
from qhn.backends.statevector import StatevectorBackend

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Backend",
    "Capabilities",
    "ExactBackend",
    "SampleOnly",
    "StatevectorBackend",
    "as_param_batch",
    "require_exact",
    "sample_bits",
    "sample_indices",
]
