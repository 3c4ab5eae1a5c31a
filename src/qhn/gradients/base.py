"""The gradient-estimator protocol, the name registry, and the helpers every estimator shares.

Every circuit-dependent quantity is either the probability vector ``q_θ`` or an expectation
``E_{s∼q_θ}[f(s)]`` of a θ-independent function ``f`` of bitstrings (METHOD.md §3). An estimator
serves both:

- ``probs(backend, circuit, params)``: ``q_θ``, differentiable in ``params``;
- ``expectation(backend, circuit, params, f, *, shots=None, generator=None)``: the *honest*
  value (exact, or the mean of ``f`` over the shots) carrying the estimator's gradient,
  ``value + (surrogate − surrogate.detach())``, so ``.backward()`` yields the estimator's gradient.

``f`` is either a cost vector over all ``2**n`` basis states in our index order, or a callable
``bits (S, n) uint8 → (S,) float``. It is held constant: no gradient flows into it. A callable is
evaluated once per distinct bitstring (evaluating a network is the expensive part).

Estimators are named in one place, :data:`ESTIMATOR_NAMES`, and built by :func:`make_estimator`,
which checks before any compute that the backend can serve the estimator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from qhn.backends.base import Backend
from qhn.bits import index_to_bits, iter_bit_chunks
from qhn.circuits.ir import Circuit
from qhn.errors import CapabilityError, ConfigError, choices

__all__ = [
    "ESTIMATOR_NAMES",
    "BitFunction",
    "Estimator",
    "GradientEstimator",
    "as_cost_vector",
    "check_bit_function",
    "estimator_class",
    "exact_probs_missing",
    "honest",
    "make_estimator",
    "sampled_values",
    "valid_estimators",
]

#: A θ-independent function of bitstrings: a cost vector ``(2**n,)`` or ``bits (S, n) → (S,)``.
BitFunction = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]

#: The estimator names :func:`make_estimator` accepts.
ESTIMATOR_NAMES = ("backprop", "parameter-shift", "score-function")

#: Basis states per call when a callable ``f`` is tabulated over all bitstrings.
_TABULATE_CHUNK = 2**16


@runtime_checkable
class GradientEstimator(Protocol):
    """What the hypernetwork and the objectives need from a gradient estimator."""

    name: str

    def check(self, backend: Backend, *, exact: bool = False) -> None:
        """Raise :class:`CapabilityError` if ``backend`` cannot serve this estimator
        (``exact=True``: for exact probabilities or exact expectations)."""
        ...

    def probs(self, backend: Backend, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Differentiable ``q_θ``. Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``."""
        ...

    def expectation(
        self,
        backend: Backend,
        circuit: Circuit,
        params: torch.Tensor,
        f: BitFunction,
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Honest ``E_q[f]`` with the estimator's gradient. Shapes: ``(B, P)`` → ``(B,)``;
        ``(P,)`` → ``()``."""
        ...


class Estimator(ABC):
    """The base of the concrete estimators: the capability check, driven by :meth:`missing`."""

    name: str = "estimator"

    @abstractmethod
    def missing(self, backend: Backend, *, exact: bool = False) -> str | None:
        """What ``backend`` lacks for this estimator, in words; ``None`` if nothing."""

    @abstractmethod
    def probs(self, backend: Backend, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Differentiable ``q_θ`` (see :class:`GradientEstimator`)."""

    @abstractmethod
    def expectation(
        self,
        backend: Backend,
        circuit: Circuit,
        params: torch.Tensor,
        f: BitFunction,
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Honest ``E_q[f]`` with the estimator's gradient (see :class:`GradientEstimator`)."""

    def check(self, backend: Backend, *, exact: bool = False) -> None:
        """Raise :class:`CapabilityError` naming the estimator, the backend and valid choices."""
        lack = self.missing(backend, exact=exact)
        if lack is None:
            return
        if exact and self.missing(backend, exact=False) is None:
            raise CapabilityError(
                f"estimator {self.name!r} cannot give exact probabilities or exact expectations "
                f"on {backend!r}: that needs {lack}; pass shots for a sample-based estimate"
            )
        valid = valid_estimators(backend)
        raise CapabilityError(
            f"estimator {self.name!r} cannot run on {backend!r}: it needs {lack}; "
            f"valid estimators for this backend: {choices(valid) if valid else 'none'}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def exact_probs_missing(backend: Backend, *, differentiable: bool) -> str | None:
    """Why ``backend`` cannot give (differentiable) exact probabilities, or ``None``."""
    caps = backend.capabilities
    exact = caps.exact_probs and hasattr(backend, "probs")
    if differentiable and not (exact and caps.backprop):
        return "exact probabilities differentiable by autograd (a simulator with backprop)"
    if not exact:
        return "exact probabilities (a simulator)"
    return None


def estimator_class(name: str) -> type[Estimator]:
    """The estimator class registered under ``name`` (one of :data:`ESTIMATOR_NAMES`)."""
    from qhn.gradients.backprop import Backprop
    from qhn.gradients.parameter_shift import ParameterShift
    from qhn.gradients.score_function import ScoreFunction

    classes: dict[str, type[Estimator]] = {
        "backprop": Backprop,
        "parameter-shift": ParameterShift,
        "score-function": ScoreFunction,
    }
    if name not in classes:
        raise ConfigError(
            f"unknown gradient estimator {name!r}; choose one of: {choices(ESTIMATOR_NAMES)}"
        )
    return classes[name]


def valid_estimators(backend: Backend, *, exact: bool = False) -> tuple[str, ...]:
    """The estimator names ``backend`` can serve."""
    return tuple(
        name
        for name in ESTIMATOR_NAMES
        if estimator_class(name)().missing(backend, exact=exact) is None
    )


def make_estimator(name: str, backend: Backend | None = None) -> Estimator:
    """Build the estimator called ``name`` and, given ``backend``, check it can serve it.

    Raises :class:`ConfigError` for an unknown name and :class:`CapabilityError` when the backend
    cannot serve the estimator (e.g. ``"backprop"`` on a sample-only backend).
    """
    estimator = estimator_class(name)()
    if backend is not None:
        estimator.check(backend)
    return estimator


# ---------------------------------------------------------------------------- shared helpers
def check_bit_function(f: object, n_qubits: int) -> None:
    """Refuse, before any compute, an ``f`` that is neither a cost vector nor a callable."""
    if callable(f) and not isinstance(f, torch.Tensor):
        return
    if not isinstance(f, torch.Tensor):
        raise ConfigError(
            "f must be a cost vector tensor of shape (2**n,) or a callable bits (S, n) -> (S,), "
            f"got {type(f).__name__}"
        )
    if tuple(f.shape) != (2**n_qubits,):
        raise ConfigError(
            f"a cost vector for {n_qubits} qubits must have shape ({2**n_qubits},), "
            f"got {tuple(f.shape)}"
        )
    if f.is_complex():
        raise ConfigError(f"a cost vector must be real, got dtype {f.dtype}")


def _call(f: Callable[[torch.Tensor], torch.Tensor], bits: torch.Tensor, dtype: torch.dtype):
    values = torch.as_tensor(f(bits))
    if tuple(values.shape) != (bits.shape[0],):
        raise ConfigError(
            f"f must return one value per bitstring: expected shape ({bits.shape[0]},) "
            f"for bits of shape {tuple(bits.shape)}, got {tuple(values.shape)}"
        )
    return values.detach().to(dtype=dtype, device=bits.device)


def as_cost_vector(
    f: BitFunction, n_qubits: int, dtype: torch.dtype, device: torch.device | str | None = None
) -> torch.Tensor:
    """``f`` over every basis state in index order (a callable is tabulated in chunks).

    Shapes: returns ``(2**n,)`` of ``dtype``, detached.
    """
    check_bit_function(f, n_qubits)
    if isinstance(f, torch.Tensor):
        return f.detach().to(dtype=dtype, device=device)
    out = torch.empty(2**n_qubits, dtype=dtype, device=device)
    for first, bits in iter_bit_chunks(n_qubits, _TABULATE_CHUNK):
        out[first : first + bits.shape[0]] = _call(f, bits.to(device), dtype)
    return out


def sampled_values(f: BitFunction, indices: torch.Tensor, n_qubits: int, dtype: torch.dtype):
    """``f`` at sampled basis indices; a callable sees each distinct bitstring once.

    Shapes: indices ``(...)`` int64 → ``(...)`` of ``dtype``, detached.
    """
    check_bit_function(f, n_qubits)
    if isinstance(f, torch.Tensor):
        return f.detach().to(dtype=dtype, device=indices.device)[indices]
    unique, inverse = torch.unique(indices, return_inverse=True)
    return _call(f, index_to_bits(unique, n_qubits), dtype)[inverse]


def honest(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``value + (surrogate − surrogate.detach())``: the value of ``value``, the gradient of
    ``surrogate``."""
    return value + (surrogate - surrogate.detach())
