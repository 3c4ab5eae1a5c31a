"""Block-factorized quantum hypernetworks: independent circuits on consecutive bit blocks.

The ``n`` bits are cut into consecutive blocks of sizes ``m_1 … m_K`` (``Σ m_b = n``); block
``b`` is measured from its own circuit ``U_b(θ_b)`` on ``m_b`` qubits, so

    ``q_θ(s) = Π_b q_b(s_b)``,  ``q_b(s_b) = |⟨s_b|U_b(θ_b)|0…0⟩|²``.

Each block is simulated exactly (any backend with differentiable probabilities; the statevector
by default), so per block the whole distribution ``q_b`` (``2^{m_b}`` numbers) is known, and

- ``log q(s) = Σ_b log q_b(s_b)`` exactly, for any sampled network;
- ``H(q) = Σ_b H(q_b)`` and, for a factorized prior, ``KL(q‖p) = Σ_b KL(q_b‖p_b)`` exactly;
- sampling draws each block independently;
- the mode is the product of the per-block modes.

Layers = 0 gives the mean-field product state (BayesBiNN's family) whatever the block sizes.
Blocks of equal size share one circuit and run as one batched call ``(K, P)`` → ``(K, 2^m)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from qhn.backends.base import Backend
from qhn.backends.counting import CountingBackend, ExecutionStats
from qhn.backends.sampling import sample_indices
from qhn.bits import index_to_bits
from qhn.circuits.ir import Circuit
from qhn.errors import CapabilityError, ConfigError, choices
from qhn.hypernetwork import INITS

__all__ = ["MAX_BLOCK_QUBITS", "BlockCircuits", "BlockGroup", "BlockHypernetwork", "block_sizes"]

#: Largest block: its exact distribution has ``2^m`` entries per block and step.
MAX_BLOCK_QUBITS = 20


def block_sizes(
    n_bits: int, blocks: int | Sequence[int], *, max_block: int | None = MAX_BLOCK_QUBITS
) -> tuple[int, ...]:
    """Block sizes from ``blocks``: a count ``k`` (sizes as equal as possible, larger ones
    first) or explicit sizes that must sum to ``n_bits``; every block ≤ ``max_block`` (None: no
    limit, for MPS blocks that are never enumerated)."""
    if isinstance(blocks, bool):
        raise ConfigError(f"blocks must be a positive integer or a list of sizes, got {blocks!r}")
    if isinstance(blocks, int):
        if not 1 <= blocks <= n_bits:
            raise ConfigError(f"blocks must be between 1 and {n_bits} (the bits), got {blocks}")
        base, extra = divmod(n_bits, blocks)
        sizes = tuple(base + 1 if b < extra else base for b in range(blocks))
    else:
        sizes = tuple(blocks)
        if not sizes or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in sizes):
            raise ConfigError(f"block sizes must be positive integers, got {list(sizes)!r}")
        if sum(sizes) != n_bits:
            raise ConfigError(
                f"block sizes {list(sizes)} sum to {sum(sizes)}, but the task has {n_bits} bits"
            )
    if max_block is not None and max(sizes) > max_block:
        need = math.ceil(n_bits / max_block)
        raise ConfigError(
            f"a block of {max(sizes)} qubits exceeds the limit of {max_block}; use "
            f"blocks >= {need} (e.g. blocks = {math.ceil(n_bits / 10)} for 10-qubit blocks)"
        )
    return sizes


@dataclass(frozen=True)
class BlockGroup:
    """The blocks of one size ``m``: their circuit, first bits ``starts (K,)`` and the positions
    of their angles in θ, ``param_index (K, P)``."""

    size: int
    circuit: Circuit
    starts: torch.Tensor
    param_index: torch.Tensor

    @property
    def n_blocks(self) -> int:
        return int(self.starts.numel())

    @property
    def columns(self) -> torch.Tensor:
        """Bit positions of every block, ``(K, m)`` int64."""
        return self.starts[:, None] + torch.arange(self.size)[None, :]

    @property
    def entangled(self) -> bool:
        """Whether the circuit has multi-qubit gates (else each block is a product state)."""
        return any(len(g.wires) > 1 for g in self.circuit.gates)


@dataclass(frozen=True)
class BlockCircuits:
    """What a run summary says about the circuits: a name and the total number of angles."""

    name: str
    n_params: int
    n_qubits: int


class BlockHypernetwork(torch.nn.Module):
    """``q_θ(s) = Π_b q_b(s_b)`` over consecutive blocks (see the module docstring).

    Args:
        sizes: block sizes (:func:`block_sizes`).
        circuit_for: the ansatz on ``m`` qubits, called once per distinct size.
        backend: runs every block; needs differentiable exact probabilities.
        estimator: the gradient rule of the objectives that use this model
            (``"local-expectation"`` or ``"score-function"``); recorded here.
        init: ``"uniform"`` (angles uniform in ``[0, 2π)``) or ``"small"``
            (``init_scale·N(0, 1)``), as :class:`~qhn.hypernetwork.QuantumHypernetwork`.

    Shapes: ``theta (P,)``, angles of block after block in bit order.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        circuit_for: Callable[[int], Circuit],
        backend: Backend,
        estimator: str = "local-expectation",
        *,
        init: str = "uniform",
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"unknown init {init!r}; choose one of: {choices(INITS)}")
        caps = backend.capabilities
        if not (caps.exact_probs and caps.backprop):
            raise CapabilityError(
                f"block-factorized training needs exact, differentiable block probabilities, "
                f"which backend {backend!r} does not give; use backend = 'statevector'"
            )
        self.sizes = tuple(int(m) for m in sizes)
        self.stats = ExecutionStats()
        self.backend = CountingBackend(backend, self.stats)
        self.estimator_name = estimator
        circuits = {m: circuit_for(m) for m in sorted(set(self.sizes))}
        starts = [sum(self.sizes[:b]) for b in range(len(self.sizes))]
        offsets, total = [], 0
        for m in self.sizes:
            offsets.append(total)
            total += circuits[m].n_params
        self.groups: list[BlockGroup] = []
        for m, circuit in circuits.items():
            members = [b for b, size in enumerate(self.sizes) if size == m]
            index = torch.tensor([offsets[b] for b in members])[:, None] + torch.arange(
                circuit.n_params
            )
            self.groups.append(
                BlockGroup(m, circuit, torch.tensor([starts[b] for b in members]), index)
            )
        names = sorted({c.name for c in circuits.values()})
        self.circuit = BlockCircuits(
            f"blocks({len(self.sizes)} × {'/'.join(map(str, sorted(circuits)))} qubits: "
            f"{'; '.join(names)})",
            total,
            sum(self.sizes),
        )
        if init == "uniform":
            theta = torch.rand(total, generator=generator, dtype=torch.float64) * 2 * torch.pi
        else:
            theta = init_scale * torch.randn(total, generator=generator, dtype=torch.float64)
        self.theta = torch.nn.Parameter(theta)

    # ------------------------------------------------------------------ structure
    @property
    def n_qubits(self) -> int:
        return sum(self.sizes)

    @property
    def exact(self) -> bool:
        """False: ``q`` over all ``2^n`` bitstrings is never formed (only per block)."""
        return False

    @property
    def entangled(self) -> bool:
        return any(g.entangled for g in self.groups)

    # ------------------------------------------------------------------ distributions
    def block_probs(self) -> list[torch.Tensor]:
        """``q_b`` of every block, one tensor per group, differentiable in θ.

        Shapes: ``[(K_g, 2^{m_g})]`` in the order of :attr:`groups`.
        """
        return [self.backend.probs(g.circuit, self.theta[g.param_index]) for g in self.groups]

    def _probs(self, probs: list[torch.Tensor] | None) -> list[torch.Tensor]:
        if probs is not None:
            return probs
        with torch.no_grad():
            return self.block_probs()

    def sample(
        self,
        shots: int,
        *,
        generator: torch.Generator | None = None,
        probs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``shots`` networks, every block drawn independently. Shapes: ``(shots, n)`` uint8."""
        probs = self._probs(probs)
        out = torch.empty(shots, self.n_qubits, dtype=torch.uint8)
        for group, q in zip(self.groups, probs, strict=True):
            index = sample_indices(q.detach(), shots, generator=generator)  # (K, shots)
            bits = index_to_bits(index, group.size).permute(1, 0, 2)  # (shots, K, m)
            out[:, group.columns] = bits
        self.stats.shots += shots
        return out

    def block_indices(self, bits: torch.Tensor, group: BlockGroup) -> torch.Tensor:
        """Each block's basis index in ``bits``. Shapes: ``(S, n)`` → ``(S, K_g)`` int64."""
        weights = 2 ** torch.arange(group.size - 1, -1, -1)
        return (bits[:, group.columns].long() * weights).sum(-1)

    def log_prob(self, bits: torch.Tensor, probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``log q(s) = Σ_b log q_b(s_b)``, exact (differentiable when ``probs`` is).

        Shapes: ``(S, n)`` → ``(S,)`` float64.
        """
        probs = self._probs(probs)
        total = torch.zeros(bits.shape[0], dtype=torch.float64)
        for group, q in zip(self.groups, probs, strict=True):
            index = self.block_indices(bits, group)  # (S, K)
            picked = q.gather(1, index.T)  # (K, S)
            total = total + torch.log(picked).sum(0)
        return total

    def entropy(self, probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``H(q) = Σ_b H(q_b)`` in nats, exact. Shapes: ``()``."""
        probs = self._probs(probs)
        return sum(-torch.special.xlogy(q, q).sum() for q in probs)  # type: ignore[return-value]

    def kl(self, prior_p: float, probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``KL(q ‖ p) = Σ_b Σ_{s_b} q_b log(q_b / p_b)`` for the factorized Bernoulli prior
        ``p(s_i = 1) = prior_p``, exact. Shapes: ``()``."""
        probs = self._probs(probs)
        total = torch.zeros((), dtype=torch.float64)
        log_on, log_off = math.log(prior_p), math.log1p(-prior_p)
        for group, q in zip(self.groups, probs, strict=True):
            ones = index_to_bits(torch.arange(2**group.size), group.size).sum(-1).double()
            log_p = ones * log_on + (group.size - ones) * log_off  # (2^m,)
            total = total + (torch.special.xlogy(q, q) - q * log_p).sum()
        return total

    def kl_uniform(self) -> torch.Tensor:
        """``n ln 2 − H(q)``. Shapes: ``()``."""
        return self.n_qubits * math.log(2) - self.entropy()

    def mode(self, probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The most probable network: each block's most probable bitstring. Shapes: ``(n,)``."""
        probs = self._probs(probs)
        out = torch.empty(self.n_qubits, dtype=torch.uint8)
        for group, q in zip(self.groups, probs, strict=True):
            out[group.columns] = index_to_bits(q.detach().argmax(-1), group.size)
        return out

    def full_probs(self) -> torch.Tensor:
        """``q`` over all ``2^n`` bitstrings (small ``n`` only: tests and oracles), differentiable.

        Shapes: ``(2**n,)``.
        """
        if self.n_qubits > 22:
            raise ConfigError(f"full_probs enumerates 2^{self.n_qubits} bitstrings; n <= 22 only")
        per_block: list[torch.Tensor | None] = [None] * len(self.sizes)
        starts = [sum(self.sizes[:b]) for b in range(len(self.sizes))]
        for group, q in zip(self.groups, self.block_probs(), strict=True):
            for k, start in enumerate(group.starts.tolist()):
                per_block[starts.index(start)] = q[k]
        out = torch.ones(1, dtype=torch.float64)
        for q in per_block:
            out = (out[:, None] * q[None, :]).reshape(-1)  # qubit 0 most significant
        return out
