"""qhn: train binary neural networks with quantum hypernetworks.

A quantum hypernetwork is a parameterized circuit whose measured bitstrings are the weights of a
binary neural network; training moves the whole distribution over networks, by maximum likelihood
(MLE) or by variational inference (ELBO, SELBO). See ``METHOD.md`` for the mathematics.
"""

from qhn.backends import StatevectorBackend
from qhn.circuits import Circuit, Gate, build_ansatz, hardware_efficient, product, qhn_reference
from qhn.errors import CapabilityError, ConfigError, MemoryBudgetError, QHNError

__version__ = "0.1.0"

__all__ = [
    "CapabilityError",
    "Circuit",
    "ConfigError",
    "Gate",
    "MemoryBudgetError",
    "QHNClassifier",
    "QHNError",
    "StatevectorBackend",
    "build_ansatz",
    "hardware_efficient",
    "product",
    "qhn_reference",
]


def __getattr__(name: str) -> object:
    # QHNClassifier needs scikit-learn, which `import qhn` must not import.
    if name == "QHNClassifier":
        from qhn.sklearn import QHNClassifier

        return QHNClassifier
    raise AttributeError(f"module 'qhn' has no attribute {name!r}")
