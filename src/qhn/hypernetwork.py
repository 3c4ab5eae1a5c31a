"""The quantum hypernetwork: angles θ, a circuit, a backend and a gradient estimator."""

from __future__ import annotations

from collections.abc import Callable

import torch

from qhn.backends.base import Backend
from qhn.backends.counting import CountingBackend, ExecutionStats
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError, choices
from qhn.gradients import make_estimator

__all__ = ["INITS", "QuantumHypernetwork", "initial_angles", "product_center"]

INITS = ("uniform", "small", "warm")
#: The rotations that move ``|0⟩`` off the Z axis (``rz`` only adds a phase).
_TILTING = ("rx", "ry")


def product_center(circuit: Circuit) -> torch.Tensor:
    """Angles at which ``circuit`` prepares the uniform product state ``|+⟩^n`` (up to phases):
    the first ``rx``/``ry`` on each qubit is ``π/2``, every other angle 0. Shapes: ``(P,)``.

    This holds for the ansätze of :mod:`qhn.circuits`, which tilt every qubit before any
    entangler acts on a tilted one: entanglers on ``|0…0⟩`` do nothing, ``R_y(π/2)|0⟩ = |+⟩``
    (``R_x(π/2)`` gives the same measured distribution), zero angles are identities, ``cz`` adds
    only phases and ``cnot`` maps ``|+⟩|+⟩`` to itself.
    """
    center = torch.zeros(circuit.n_params, dtype=torch.float64)
    tilted: set[int] = set()
    for gate in circuit.gates:
        if gate.name in _TILTING and gate.param is not None and gate.wires[0] not in tilted:
            tilted.add(gate.wires[0])
            center[gate.param] = torch.pi / 2
    return center


def initial_angles(
    circuit: Circuit,
    init: str,
    init_scale: float,
    generator: torch.Generator | None,
    center: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """The starting ``θ`` ``(P,)`` float64: ``"uniform"`` in ``[0, 2π)``; otherwise ``center``
    (default :func:`product_center`), plus, for ``"small"``, noise uniform in
    ``±init_scale``."""
    shape = (circuit.n_params,)
    if init == "uniform":
        return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 * torch.pi
    center = product_center(circuit) if center is None else center
    theta = torch.as_tensor(center, dtype=torch.float64).expand(shape).clone()
    if init == "small":
        noise = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
        theta = theta + init_scale * noise
    return theta


class QuantumHypernetwork(torch.nn.Module):
    """A parameterized circuit whose measured bitstrings are binary-network weights.

    ``q_θ(s) = |⟨s|U(θ)|0…0⟩|²``. Every circuit-dependent number goes through the estimator:
    :meth:`probs` (simulators) or :meth:`expectation` ``E_{s∼q_θ}[f(s)]`` (any backend).

    Args:
        circuit: the ansatz.
        backend: runs the circuit; wrapped so executions and shots are counted in :attr:`stats`.
        estimator: ``"auto"`` (backprop when the backend can, else parameter-shift; objectives
            that take shots need ``"parameter-shift"`` or ``"score-function"``), ``"backprop"``,
            ``"parameter-shift"`` or ``"score-function"``.
        init: ``"uniform"``: θ uniform in ``[0, 2π)`` (the reference QHN); ``"small"``:
            ``init_center + init_scale·U(−1, 1)``, so every angle is within ``init_scale`` of
            its centre; ``"warm"``: ``init_center`` exactly (the caller embeds a trained product
            state, :mod:`qhn.experiments.warm_start`).
        init_center: the centre of ``"small"`` / ``"warm"``; None: :func:`product_center`, the
            uniform product state ``|+⟩^n``.
        generator: randomness of the initialisation.
    """

    def __init__(
        self,
        circuit: Circuit,
        backend: Backend,
        estimator: str = "auto",
        *,
        init: str = "uniform",
        init_scale: float = 0.1,
        init_center: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"unknown init {init!r}; choose one of: {choices(INITS)}")
        self.circuit = circuit
        self.stats = ExecutionStats()
        self.backend = CountingBackend(backend, self.stats)
        if estimator == "auto":
            estimator = "backprop" if backend.capabilities.backprop else "parameter-shift"
        self.estimator_name = estimator
        self.estimator = make_estimator(estimator, self.backend)
        theta = initial_angles(circuit, init, init_scale, generator, init_center)
        self.theta = torch.nn.Parameter(theta)

    @property
    def n_qubits(self) -> int:
        return self.circuit.n_qubits

    @property
    def exact(self) -> bool:
        """True when the backend gives the explicit distribution."""
        return self.backend.capabilities.exact_probs

    def probs(self) -> torch.Tensor:
        """``q_θ`` over all bitstrings, differentiable by the estimator. Shapes: ``(2**n,)``."""
        return self.estimator.probs(self.backend, self.circuit, self.theta)

    def sample(self, shots: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Measured bitstrings (no gradient). Shapes: ``(shots, n)`` uint8."""
        with torch.no_grad():
            return self.backend.sample(
                self.circuit, self.theta.detach(), shots, generator=generator
            )

    def expectation(
        self,
        f: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``E_{s∼q_θ}[f(s)]``: honest value, estimator gradient. ``f`` is a vector over all
        bitstrings ``(2**n,)`` or a function bits ``(S, n)`` → ``(S,)``."""
        return self.estimator.expectation(
            self.backend, self.circuit, self.theta, f, shots=shots, generator=generator
        )
