"""A quantum hypernetwork over all ``n`` bits simulated as one matrix-product state.

``q_θ(s) = |⟨s|U(θ)|0…0⟩|²`` with ``U`` one circuit on all ``n`` qubits (e.g. digits10's 1,210),
simulated exactly by the ``mps`` backend (:mod:`qhn.backends.mps`): a chain circuit of ``L``
entangling layers has bond dimension ``≤ 2^L``, so sampling, ``log q(s)`` and the autoregressive
conditionals ``q(s_i | s_<i)`` cost ``O(n·χ²)`` per bitstring and nothing enumerates ``2^n``.
The distribution is never formed: entropy and KL are estimated from samples by the objectives
(:mod:`qhn.inference.mps_sampled`), with the exact ``log q`` of each sample.

:func:`block_diagonal_circuit` puts independent block circuits side by side on disjoint wires:
the state is the product of the blocks' states (bond dimension 1 between blocks), so an MPS
block hypernetwork is this model on that circuit, with blocks of any size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from qhn.backends.counting import ExecutionStats
from qhn.backends.mps import MPSBackend
from qhn.circuits.ir import Circuit, Gate
from qhn.errors import ConfigError, choices
from qhn.gradients.mps_estimators import (
    EstimatorParts,
    local_expectation_parts,
    score_function_parts,
)
from qhn.hypernetwork import initial_angles

__all__ = ["MPS_ESTIMATORS", "MPSHypernetwork", "block_diagonal_circuit"]

MPS_ESTIMATORS = ("local-expectation", "score-function")
_PARTS = {"local-expectation": local_expectation_parts, "score-function": score_function_parts}


def block_diagonal_circuit(sizes: Sequence[int], circuit_for: Callable[[int], Circuit]) -> Circuit:
    """Independent circuits ``circuit_for(m_b)`` on consecutive wire blocks, angles block after
    block in bit order. Gates of different blocks commute, so they are interleaved by their
    position in their own circuit (gate ``k`` of every block together): equal blocks then form
    one run per layer for the MPS compiler instead of one per block."""
    circuits = {m: circuit_for(m) for m in sorted(set(sizes))}
    tagged: list[tuple[int, int, Gate]] = []
    wire, param = 0, 0
    for b, m in enumerate(sizes):
        circuit = circuits[m]
        for k, gate in enumerate(circuit.gates):
            shifted = Gate(
                gate.name,
                tuple(w + wire for w in gate.wires),
                None if gate.param is None else gate.param + param,
            )
            tagged.append((k, b, shifted))
        wire += m
        param += circuit.n_params
    tagged.sort(key=lambda t: (t[0], t[1]))
    names = "; ".join(sorted({c.name for c in circuits.values()}))
    return Circuit(
        wire,
        tuple(g for _, _, g in tagged),
        param,
        f"blocks({len(sizes)} × {'/'.join(map(str, sorted(circuits)))} qubits: {names})",
    )


class MPSHypernetwork(torch.nn.Module):
    """``q_θ(s) = |⟨s|U(θ)|0…0⟩|²`` for one circuit on all ``n`` bits, as an exact MPS.

    Args:
        circuit: the ansatz on ``n`` qubits (any of :mod:`qhn.circuits`, or
            :func:`block_diagonal_circuit`).
        backend: an exact :class:`~qhn.backends.mps.MPSBackend` (``max_bond`` unset: the
            estimators need the exact ``log q`` and conditionals).
        estimator: ``"local-expectation"`` or ``"score-function"``
            (:mod:`qhn.gradients.mps_estimators`).
        init: ``"uniform"`` (angles uniform in ``[0, 2π)``) or ``"small"`` (within
            ``±init_scale`` of the uniform product state), as
            :class:`~qhn.hypernetwork.QuantumHypernetwork`.

    Shapes: ``theta (P,)``; bits ``(S, n)`` uint8 with bit 0 = qubit 0.
    """

    def __init__(
        self,
        circuit: Circuit,
        backend: MPSBackend,
        estimator: str = "local-expectation",
        *,
        init: str = "uniform",
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backend, MPSBackend) or backend.max_bond is not None:
            raise ConfigError(
                f"whole-network MPS training needs the exact 'mps' backend, got {backend!r}; "
                "use backend = 'mps' without max_bond"
            )
        if estimator not in MPS_ESTIMATORS:
            raise ConfigError(
                f"estimator {estimator!r} cannot train an MPS hypernetwork from samples; choose "
                f"one of: {choices(MPS_ESTIMATORS)}"
            )
        if init not in ("uniform", "small"):
            raise ConfigError(
                f"init {init!r} is not available for whole-network MPS training; use "
                'init = "uniform" or "small"'
            )
        self.circuit = circuit
        self.backend = backend
        self.stats = ExecutionStats()
        self.estimator_name = estimator
        self.theta = torch.nn.Parameter(initial_angles(circuit, init, init_scale, generator))

    @property
    def n_qubits(self) -> int:
        return self.circuit.n_qubits

    @property
    def exact(self) -> bool:
        """False: ``q`` over all ``2^n`` bitstrings is never formed."""
        return False

    @property
    def entangled(self) -> bool:
        return any(len(g.wires) > 1 for g in self.circuit.gates)

    def _count(self, shots: int) -> None:
        self.stats.circuit_executions += 1
        self.stats.shots += shots

    def sample(self, shots: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``shots`` networks by exact sequential sampling. Shapes: ``(shots, n)`` uint8."""
        with torch.no_grad():
            bits = self.backend.sample(
                self.circuit, self.theta.detach(), shots, generator=generator
            )
        self._count(shots)
        return bits

    def log_prob(self, bits: torch.Tensor) -> torch.Tensor:
        """Exact ``log q_θ(s)``, differentiable when grad is enabled.

        Shapes: ``(S, n)`` → ``(S,)``."""
        return self.backend.log_prob(self.circuit, self.theta, bits)

    def mode(self) -> torch.Tensor:
        """The greedy autoregressive decoding ``s_i = [q(s_i = 1 | s_<i) > ½]``, bit after bit.

        It is the mode exactly when ``q`` is a product state (``layers = 0``, or a block-diagonal
        circuit of one-qubit blocks); with entanglement it is a cheap stand-in for the mode (the
        most probable bitstring of an MPS has no sequential formula). Shapes: ``(n,)`` uint8.
        """
        with torch.no_grad():
            state = self.backend.state(self.circuit, self.theta.detach())
            half = torch.full((self.n_qubits, 1, 1), 0.5, dtype=self.theta.dtype)
            return state.sample_from_uniforms(half)[0]

    def estimate(
        self,
        f: Callable[[torch.Tensor], torch.Tensor],
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> EstimatorParts:
        """``shots`` draws, ``f`` at them and the surrogate whose gradient estimates
        ``∇θ E_q[f]`` by :attr:`estimator_name`. Shapes: bits ``(S, n)``, values ``(S,)``,
        surrogate ``()``."""
        parts = _PARTS[self.estimator_name](
            self.backend, self.circuit, self.theta[None], f, shots=shots, generator=generator
        )
        self._count(shots)
        return EstimatorParts(parts.bits[0], parts.values[0], parts.surrogate[0], parts.evaluations)
