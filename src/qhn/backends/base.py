"""The backend protocol: what every circuit executor offers.

Every circuit-dependent number in qhn is either the probability vector (simulators) or an
expectation over measured bitstrings (any backend, hardware included). So a backend needs only two
operations: ``sample`` (all backends) and ``probs`` (exact simulators). What it can do is declared
in :class:`Capabilities` and checked before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from qhn.circuits.ir import Circuit
from qhn.errors import CapabilityError, ConfigError, MemoryBudgetError

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Backend",
    "Capabilities",
    "ExactBackend",
    "as_param_batch",
    "check_memory",
    "check_sample_memory",
    "check_shots",
    "chunked_expectations",
    "require_exact",
]

#: Default memory budget for one call's state vectors (bytes).
DEFAULT_MEMORY_BUDGET = 4 * 2**30


@dataclass(frozen=True)
class Capabilities:
    """What a backend can serve.

    ``exact_probs``: ``probs`` returns the exact Born distribution. ``backprop``: that vector is
    differentiable by autograd. ``max_qubits``: the largest circuit it accepts (None: no fixed cap).
    """

    exact_probs: bool
    backprop: bool
    max_qubits: int | None = None


@runtime_checkable
class Backend(Protocol):
    """Anything that can run a circuit and return measured bitstrings."""

    capabilities: Capabilities

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times. Shapes: params ``(B, P)`` → bits ``(B, shots, n)`` uint8
        (``(P,)`` → ``(shots, n)``)."""
        ...


@runtime_checkable
class ExactBackend(Backend, Protocol):
    """A simulator that also returns the probability vector."""

    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Born probabilities in our index order. Shapes: ``(B, P)`` → ``(B, 2**n)``
        (``(P,)`` → ``(2**n,)``)."""
        ...


def require_exact(backend: Backend, what: str) -> ExactBackend:
    """Return ``backend`` if it serves exact probabilities, else raise :class:`CapabilityError`."""
    if not backend.capabilities.exact_probs or not hasattr(backend, "probs"):
        raise CapabilityError(
            f"{what} needs exact probabilities, which {type(backend).__name__} does not give; "
            "use a sample-based alternative"
        )
    return backend  # type: ignore[return-value]


def as_param_batch(circuit: Circuit, params: torch.Tensor | object) -> tuple[torch.Tensor, bool]:
    """Validate parameters against ``circuit`` and give them a batch dimension.

    Returns ``(params (B, P), was_batched)``. Refuses a wrong shape, a non-floating dtype, and
    NaN or infinite values, naming the problem.
    """
    if not isinstance(params, torch.Tensor):
        params = torch.as_tensor(params, dtype=torch.float64)
    if not params.is_floating_point():
        raise ConfigError(f"parameters must be a floating-point tensor, got dtype {params.dtype}")
    if params.ndim not in (1, 2) or params.shape[-1] != circuit.n_params:
        raise ConfigError(
            f"parameters for {circuit.name} must have shape ({circuit.n_params},) or "
            f"(B, {circuit.n_params}), got {tuple(params.shape)}"
        )
    if not bool(torch.isfinite(params).all()):
        raise ConfigError("parameters contain NaN or infinite values")
    batched = params.ndim == 2
    return (params if batched else params.unsqueeze(0)), batched


def check_memory(n_qubits: int, batch: int, itemsize: int, copies: int, budget: int) -> int:
    """Bytes needed for ``copies`` state buffers of ``batch`` states; raise if over ``budget``."""
    needed = copies * batch * (2**n_qubits) * itemsize
    if needed > budget:
        raise MemoryBudgetError(
            f"simulating {n_qubits} qubits (batch {batch}) needs {needed:,} bytes "
            f"(~{needed / 2**30:.2f} GiB), over the memory budget of {budget:,} bytes "
            f"(~{budget / 2**30:.2f} GiB); use fewer qubits, a smaller batch or a larger budget"
        )
    return needed


def sample_bytes(batch: int, shots: int, n_qubits: int) -> int:
    """Peak bytes of measuring ``shots`` shots of ``batch`` circuits on ``n_qubits`` qubits: per
    shot a float64 uniform, an int64 index, and its bits (int64 while shifting, uint8 kept)."""
    return batch * shots * (16 + 9 * n_qubits)


def check_sample_memory(batch: int, shots: int, n_qubits: int, budget: int) -> int:
    """Refuse, before allocating, a measurement whose shots would not fit in ``budget`` bytes."""
    needed = sample_bytes(batch, shots, n_qubits)
    if needed > budget:
        raise MemoryBudgetError(
            f"{shots:,} shots of {batch} circuit(s) on {n_qubits} qubits need {needed:,} bytes "
            f"(~{needed / 2**30:.2f} GiB), over the memory budget of {budget:,} bytes "
            f"(~{budget / 2**30:.2f} GiB); use fewer shots"
        )
    return needed


def check_shots(shots: int) -> int:
    """Validate a shot count."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(f"shots must be a positive integer, got {shots!r}")
    return shots


def log2_exact(size: int) -> int:
    """``log2(size)`` for a power of two, else raise."""
    n = int(math.log2(size)) if size > 0 else -1
    if n < 0 or 2**n != size:
        raise ConfigError(f"expected a power-of-two length, got {size}")
    return n


def chunked_expectations(
    backend: ExactBackend,
    circuit: Circuit,
    rows: torch.Tensor,
    weights: torch.Tensor,
    max_bytes: int,
) -> torch.Tensor:
    """``Σ_s q_r(s) w(s)`` per row from ``backend.probs``, without autograd, holding about
    ``max_bytes`` of probabilities at a time. Shapes: rows ``(R, P)``, weights ``(2**n,)`` →
    ``(R,)`` in ``weights``' dtype."""
    chunk = max(1, max_bytes // ((2**circuit.n_qubits) * 8))
    with torch.no_grad():
        parts = [
            backend.probs(circuit, rows[i : i + chunk]).to(weights.dtype) @ weights
            for i in range(0, rows.shape[0], chunk)
        ]
    return torch.cat(parts)
