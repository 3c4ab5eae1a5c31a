"""``noisy``: our torch simulator of depolarizing gate noise and readout flips.

Up to ``max_density_qubits`` (default 12) ``probs`` is exact: it evolves the state in the Pauli
transfer representation (:mod:`qhn.backends.pauli_transfer`, a real vector of ``4^n`` Pauli
coefficients per row). ``density_matrix`` evolves the density matrix itself, batched over
parameter rows: each gate followed by its Pauli channel is one superoperator
``E_p(U ρ U†)`` (:mod:`qhn.backends.noise_model`); one-qubit ones are multiplied per qubit and
folded into the next two-qubit one, so ``ρ`` is swept once per entangler. The outcome distribution
is pushed through the readout confusion matrices. Both are written with plain torch ops, so
``probs`` is differentiable by autograd in θ and exact ELBO runs under noise.

Above the limit only ``sample`` is served, by **Pauli trajectories** (below it too, when they are
expected to be cheaper than the density matrix): every shot draws its own error pattern (a Pauli
per noisy gate, identity with probability ``1 − p``), the state vector is evolved with those Paulis
inserted, one outcome is drawn from it, and readout flips are applied. Each shot is then an
independent draw from the noisy distribution, so every estimate linear in q is unbiased. Shots that
drew equivalent patterns (at small ``p`` most draw none) share one simulated trajectory, evolved
through fused passes with the errors folded into them (:mod:`qhn.backends.trajectories`). ``Y`` is
applied as ``X·Z`` (equal up to a global phase), so real circuits stay real.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from qhn.backends import pauli_transfer
from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_memory,
    check_sample_memory,
    check_shots,
)
from qhn.backends.noise_model import (
    NoiseModel,
    apply_readout,
    apply_superop,
    superop,
    superop_pair,
)
from qhn.backends.sampling import sample_bits
from qhn.backends.trajectories import (
    CHUNK_BYTES,
    compile_plan,
    first_runs,
    key_bytes,
    shot_keys,
    trajectory_probs,
)
from qhn.bits import index_to_bits
from qhn.circuits.ir import Circuit, Gate
from qhn.errors import CapabilityError, ConfigError

__all__ = ["NoiseModel", "NoisyBackend"]

log = logging.getLogger(__name__)

#: Largest circuit the trajectory sampler accepts (int64 indices and sanity).
MAX_QUBITS = 30
#: Largest density-matrix limit one may ask for (a 4^n matrix beyond this never fits).
MAX_DENSITY_QUBITS = 16

_CNOT = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0))
_CZ = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, -1))
_H = ((2**-0.5, 2**-0.5), (2**-0.5, -(2**-0.5)))
_X = ((0, 1), (1, 0))
_FIXED = {"cnot": _CNOT, "cz": _CZ, "h": _H, "x": _X}


def gate_matrix(gate: Gate, theta: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The gate's matrix for every parameter row. Shapes: ``theta (B, P)`` → ``(B, d, d)``
    for rotations, ``(1, d, d)`` for fixed gates (``d = 2^arity``)."""
    if gate.param is None:
        return torch.tensor(_FIXED[gate.name], dtype=dtype, device=theta.device).unsqueeze(0)
    half = theta[:, gate.param] / 2
    c, s = torch.cos(half), torch.sin(half)
    if gate.name == "ry":
        rows = [torch.stack([c, -s], -1), torch.stack([s, c], -1)]
        return torch.stack(rows, -2).to(dtype)
    zero = torch.zeros_like(c)
    if gate.name == "rx":
        re = torch.stack([torch.stack([c, zero], -1), torch.stack([zero, c], -1)], -2)
        im = torch.stack([torch.stack([zero, -s], -1), torch.stack([-s, zero], -1)], -2)
    else:  # rz = diag(e^{−iθ/2}, e^{iθ/2})
        re = torch.stack([torch.stack([c, zero], -1), torch.stack([zero, c], -1)], -2)
        im = torch.stack([torch.stack([-s, zero], -1), torch.stack([zero, s], -1)], -2)
    return torch.complex(re, im).to(dtype)


class NoisyBackend:
    """Exact noisy probabilities (density matrix) up to ``max_density_qubits``, Pauli-trajectory
    sampling above it.

    Args:
        noise: a :class:`NoiseModel`, a ``[noise]`` table (keys ``p1, p2, readout, readout01,
            readout10, scale``), or None (noiseless).
        max_density_qubits: the largest circuit simulated as a density matrix (``4^n`` entries).
        seed: seeds the generator used when ``sample`` gets none.
        memory_budget: bytes one call may use; larger requests are refused before allocating.
        chunk_bytes: batches (density matrices) and trajectories are processed in chunks of about
            this many bytes of state.
    """

    def __init__(
        self,
        noise: NoiseModel | Mapping[str, object] | None = None,
        *,
        max_density_qubits: int = 12,
        seed: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        chunk_bytes: int = 64 * 2**20,
    ) -> None:
        self.noise = NoiseModel.coerce(noise)
        if (
            isinstance(max_density_qubits, bool)
            or not isinstance(max_density_qubits, int)
            or not 0 <= max_density_qubits <= MAX_DENSITY_QUBITS
        ):
            raise ConfigError(
                f"max_density_qubits must be an integer in 0..{MAX_DENSITY_QUBITS}, "
                f"got {max_density_qubits!r}"
            )
        self.max_density_qubits = max_density_qubits
        self.seed = seed
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(seed)
        self.memory_budget = int(memory_budget)
        self.chunk_bytes = int(chunk_bytes)
        self.capabilities = Capabilities(exact_probs=True, backprop=True, max_qubits=MAX_QUBITS)

    def __repr__(self) -> str:
        return f"NoisyBackend(noise={self.noise}, max_density_qubits={self.max_density_qubits})"

    def capabilities_for(self, circuit: Circuit) -> Capabilities:
        """What this backend serves for ``circuit``: exact, differentiable probabilities up to
        the density-matrix limit, samples only above it."""
        exact = circuit.n_qubits <= self.max_density_qubits
        return Capabilities(exact_probs=exact, backprop=exact, max_qubits=MAX_QUBITS)

    # ----------------------------------------------------------------- public API
    def density_matrix(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """The noisy state before readout, ``ρ(θ)``, in our index order (qubit 0 most significant).

        Shapes: ``(B, P)`` → ``(B, 2**n, 2**n)``; ``(P,)`` → ``(2**n, 2**n)``. Real dtype for real
        circuits, else complex128. Differentiable.
        """
        batch, batched = self._prepare_density(circuit, params)
        chunk = self._density_chunk(circuit)
        parts = [
            self._evolve_density(circuit, batch[i : i + chunk])
            for i in range(0, batch.shape[0], chunk)
        ]
        rho = parts[0] if len(parts) == 1 else torch.cat(parts)
        size = 2**circuit.n_qubits
        rho = rho.reshape(-1, size, size)
        return rho if batched else rho[0]

    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Noisy outcome probabilities, readout flips included, in our index order.

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable in ``params``.
        Computed in the Pauli transfer representation (:mod:`qhn.backends.pauli_transfer`), a
        real vector of ``4^n`` entries per row. Raises :class:`CapabilityError` above
        ``max_density_qubits``.
        """
        grad = torch.is_grad_enabled() and bool(getattr(params, "requires_grad", False))
        copies = pauli_transfer.entries_per_row(circuit, self.noise.gate_p2, grad)
        batch, batched = self._prepare_density(circuit, params, itemsize=8, copies=copies)
        chunk = self._density_chunk(circuit, itemsize=8)
        parts = [
            self._probs_chunk(circuit, batch[i : i + chunk]) for i in range(0, len(batch), chunk)
        ]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return out if batched else out[0]

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times under noise. Shapes: ``(B, P)`` → ``(B, shots, n)`` uint8
        (``(P,)`` → ``(shots, n)``). Reproducible given ``generator``'s state."""
        check_shots(shots)
        batch, batched = as_param_batch(circuit, params)
        n = circuit.n_qubits
        if n > MAX_QUBITS:
            raise ConfigError(f"{n} qubits exceed the noisy simulator's limit of {MAX_QUBITS}")
        check_sample_memory(batch.shape[0], shots, n, self.memory_budget)
        generator = generator if generator is not None else self._generator
        batch = batch.detach().to(torch.float64)
        with torch.no_grad():
            if self._sample_exactly(circuit, shots):
                chunk = self._density_chunk(circuit)
                parts = [
                    sample_bits(
                        self.probs(circuit, batch[i : i + chunk]), shots, generator=generator
                    )
                    for i in range(0, batch.shape[0], chunk)
                ]
            else:
                parts = [
                    self._sample_trajectories(circuit, row, shots, generator).unsqueeze(0)
                    for row in batch
                ]
        bits = parts[0] if len(parts) == 1 else torch.cat(parts)
        return bits if batched else bits[0]

    def _sample_exactly(self, circuit: Circuit, shots: int) -> bool:
        """Sample from the density matrix (cost ∝ 4^n) or from trajectories (cost ∝ distinct
        error patterns × 2^n, expected ``1 + shots·P(any error)``)? Both give independent draws
        from the same distribution; pick the cheaper."""
        n = circuit.n_qubits
        if n > self.max_density_qubits:
            return False
        clean = 1.0
        for _, _, p in self._error_sites(circuit):
            clean *= 1 - p
        return 1 + shots * (1 - clean) >= 2**n / 2

    # ----------------------------------------------------------------- density matrix
    def _dtype(self, circuit: Circuit) -> torch.dtype:
        return torch.float64 if circuit.is_real else torch.complex128

    def _density_chunk(self, circuit: Circuit, itemsize: int | None = None) -> int:
        """Rows per chunk: ``chunk_bytes`` over one row's ``4^n`` entries (of ``itemsize`` bytes;
        default: the density matrix's)."""
        item = itemsize or torch.empty((), dtype=self._dtype(circuit)).element_size()
        return max(1, self.chunk_bytes // (4**circuit.n_qubits * item))

    def _prepare_density(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        *,
        itemsize: int | None = None,
        copies: int = 3,
    ) -> tuple[torch.Tensor, bool]:
        """Check the qubit limit and that ``copies`` tensors of ``4^n`` entries per row (of
        ``itemsize`` bytes; default: the density matrix's) fit the memory budget."""
        n = circuit.n_qubits
        if n > self.max_density_qubits:
            raise CapabilityError(
                f"exact noisy probabilities of {n} qubits exceed the density-matrix limit of "
                f"{self.max_density_qubits} qubits (4^n entries); use a sample-based objective "
                "(samples come from Pauli trajectories) or raise max_density_qubits"
            )
        batch, batched = as_param_batch(circuit, params)
        item = itemsize or torch.empty((), dtype=self._dtype(circuit)).element_size()
        chunk = min(batch.shape[0], self._density_chunk(circuit, item))
        # copies: 3 for the density matrix (ρ, its moved copy, the matmul output); the Pauli
        # transfer path passes its own count (pauli_transfer.entries_per_row).
        check_memory(2 * n, chunk, item, copies, self.memory_budget)
        return batch.to(torch.float64), batched

    def _evolve_density(self, circuit: Circuit, theta: torch.Tensor) -> torch.Tensor:
        """``ρ`` after every gate and its channel, flattened. Shapes: ``(B, P)`` → ``(B, 4**n)``.

        Each gate with its channel is a superoperator (:func:`superop`). A qubit's one-qubit
        superoperators are multiplied together and held until a two-qubit gate touches the qubit,
        then folded into that gate's ``16 × 16`` superoperator; what is left at the end is applied
        two qubits at a time. Maps on different qubits commute, so this is exact, and the matrix
        is swept once per two-qubit gate instead of once per gate.
        """
        n, dtype = circuit.n_qubits, self._dtype(circuit)
        batch = theta.shape[0]
        rho = torch.zeros((batch, 4**n), dtype=dtype, device=theta.device)
        rho[:, 0] = 1
        pending: dict[int, torch.Tensor] = {}
        eye = torch.eye(4, dtype=dtype, device=theta.device).unsqueeze(0)
        for gate in circuit.gates:
            s = superop(gate_matrix(gate, theta, dtype), self.noise.gate_error(len(gate.wires)))
            if len(gate.wires) == 1:
                q = gate.wires[0]
                pending[q] = s if q not in pending else s @ pending[q]
                continue
            a, b = gate.wires
            if a in pending or b in pending:
                s = s @ superop_pair(pending.pop(a, eye), pending.pop(b, eye))
            rho = apply_superop(rho, s, gate.wires, n)
        left = sorted(pending)
        for i in range(0, len(left) - 1, 2):
            pair = superop_pair(pending[left[i]], pending[left[i + 1]])
            rho = apply_superop(rho, pair, (left[i], left[i + 1]), n)
        if len(left) % 2:
            rho = apply_superop(rho, pending[left[-1]], (left[-1],), n)
        return rho

    def _probs_chunk(self, circuit: Circuit, theta: torch.Tensor) -> torch.Tensor:
        noise = self.noise
        probs = pauli_transfer.ptm_probs(circuit, theta, noise.gate_p1, noise.gate_p2)
        return apply_readout(probs, noise)

    # ----------------------------------------------------------------- trajectories
    def _error_sites(self, circuit: Circuit) -> list[tuple[int, int, float]]:
        """``(gate index, arity, p)`` of every gate followed by a Pauli channel."""
        sites = []
        for g, gate in enumerate(circuit.gates):
            p = self.noise.gate_error(len(gate.wires))
            if p > 0:
                sites.append((g, len(gate.wires), p))
        return sites

    def _draw_patterns(
        self, sites: list[tuple[int, int, float]], shots: int, generator: torch.Generator
    ) -> torch.Tensor:
        """One Pauli code per (shot, site): 0 = no error, else ``1..4^k − 1`` uniformly, whose
        base-4 digits (first wire most significant) are I, X, Y, Z. Shape ``(shots, sites)``."""
        if not sites:
            return torch.zeros((shots, 0), dtype=torch.int8)
        p = torch.tensor([s[2] for s in sites], dtype=torch.float64)
        kinds = torch.tensor([4 ** s[1] - 1 for s in sites], dtype=torch.float64)
        hit = torch.rand((shots, len(sites)), generator=generator, dtype=torch.float64) < p
        which = torch.rand((shots, len(sites)), generator=generator, dtype=torch.float64)
        codes = 1 + torch.floor(which * kinds).clamp_(max=kinds - 1)
        return torch.where(hit, codes, 0).to(torch.int8)

    def _sample_trajectories(
        self, circuit: Circuit, theta: torch.Tensor, shots: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Shots of one parameter row by Pauli trajectories. Shapes: ``theta (P,)`` →
        ``(shots, n)`` uint8."""
        n = circuit.n_qubits
        sites = self._error_sites(circuit)
        # Error patterns cost two float64 draws and a byte per (shot, site), then their keys:
        # draw them in chunks.
        per_shot = 17 * len(sites) + key_bytes(compile_plan(circuit, sites)) + 24
        per_chunk = max(1, self.chunk_bytes // per_shot)
        indices = torch.cat(
            [
                self._trajectory_indices(
                    circuit, theta, sites, min(per_chunk, shots - start), generator
                )
                for start in range(0, shots, per_chunk)
            ]
        )
        bits = index_to_bits(indices, n)
        if self.noise.has_readout:
            flip_p = torch.where(
                bits.bool(),
                torch.tensor(self.noise.readout10, dtype=torch.float64),
                torch.tensor(self.noise.readout01, dtype=torch.float64),
            )
            flips = torch.rand(bits.shape, generator=generator, dtype=torch.float64) < flip_p
            bits = bits ^ flips.to(torch.uint8)
        return bits

    def _trajectory_indices(
        self,
        circuit: Circuit,
        theta: torch.Tensor,
        sites: list[tuple[int, int, float]],
        shots: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Basis indices of ``shots`` shots, each with its own error pattern; shots whose
        patterns give the same trajectory key (:mod:`qhn.backends.trajectories`) share one
        simulated trajectory, and errors that only flip measured bits are applied to the drawn
        index. Shape ``(shots,)`` int64."""
        n, dtype = circuit.n_qubits, self._dtype(circuit)
        item = torch.empty((), dtype=dtype).element_size()
        codes = self._draw_patterns(sites, shots, generator)
        u = torch.rand(shots, generator=generator, dtype=torch.float64)
        plan = compile_plan(circuit, sites)
        keys, masks = shot_keys(plan, codes)
        flat = keys.reshape(shots, -1)
        if flat.shape[1]:
            distinct, inverse = torch.unique(flat, dim=0, return_inverse=True)
        else:
            distinct, inverse = flat[:1], torch.zeros(shots, dtype=torch.int64)
        distinct = distinct.view(-1, *keys.shape[1:])
        first = first_runs(distinct)
        order = torch.argsort(first, stable=True)
        count = int((first < len(plan.runs)).sum())  # the others are error-free: row 0
        distinct = distinct[order[:count]]
        rank = torch.full((first.shape[0],), -1, dtype=torch.int64)
        rank[order[:count]] = torch.arange(count)
        rank = rank[inverse]
        chunk = max(1, min(self.chunk_bytes, CHUNK_BYTES) // (2**n * item) - 1)
        # Two state buffers, |ψ|² and its cumulative sums (float64).
        check_memory(n, min(chunk, count) + 1, max(item, 8), 4, self.memory_budget)
        log.debug("%d shots share %d trajectories besides the error-free one", shots, count)
        indices = torch.empty(shots, dtype=torch.int64)
        for start in range(0, max(count, 1), chunk):
            stop = min(start + chunk, count)
            probs = trajectory_probs(plan, theta, distinct[start:stop], dtype)
            mine = (rank >= start) & (rank < stop)
            if start == 0:
                mine |= rank < 0
            mine = mine.nonzero().squeeze(1)
            rows = (rank[mine] - start + 1).clamp_(min=0)
            indices[mine] = _draw(probs, rows, u[mine])
        return indices ^ masks

    def _trajectory_probs(
        self,
        circuit: Circuit,
        theta: torch.Tensor,
        sites: list[tuple[int, int, float]],
        patterns: torch.Tensor,
    ) -> torch.Tensor:
        """``|ψ_t|²`` of the trajectories with the given error patterns (bit flips applied).
        Shapes: ``theta (P,)``, ``patterns (T, sites)`` → ``(T, 2**n)`` float64."""
        n = circuit.n_qubits
        plan = compile_plan(circuit, sites)
        keys, masks = shot_keys(plan, patterns)
        first = first_runs(keys)
        order = torch.argsort(first, stable=True)
        count = int((first < len(plan.runs)).sum())
        probs = trajectory_probs(plan, theta, keys[order[:count]], self._dtype(circuit))
        row = torch.zeros(patterns.shape[0], dtype=torch.int64)
        row[order[:count]] = 1 + torch.arange(count)
        flipped = torch.arange(2**n)[None, :] ^ masks[:, None]
        return probs[row].gather(1, flipped)


def _draw(probs: torch.Tensor, rows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One index per shot from row ``rows[i]`` of ``probs`` with uniform ``u[i]``, by inverting
    the cumulative distribution. Only rows some shot uses are summed; each CDF is normalized and
    offset by its rank, so one sorted search serves all of them. Shapes: ``probs (B, 2**n)``,
    ``rows (S,)``, ``u (S,)`` → ``(S,)`` int64."""
    size = probs.shape[1]
    used, rank = torch.unique(rows, return_inverse=True)
    cdf = torch.cumsum(probs[used], 1)
    cdf.div_(cdf[:, -1:].clone()).add_(torch.arange(used.numel(), dtype=cdf.dtype)[:, None])
    flat = torch.searchsorted(cdf.reshape(-1), rank.to(torch.float64) + u, right=True)
    return (flat - rank * size).clamp_(0, size - 1)
