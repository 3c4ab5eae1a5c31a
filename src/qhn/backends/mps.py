"""The ``mps`` backend: our circuits simulated as matrix-product states, exactly by default.

API (used by the sampled objectives and gradient estimators)::

    backend = MPSBackend(max_bond=None)          # exact; max_bond=k truncates by SVD
    state = backend.state(circuit, params)       # an MPS (qhn.backends.mps_state), reusable
    bits = state.sample(shots, generator)        # (B, shots, n) uint8, exact sequential sampling
    logq = state.log_prob(bits)                  # (B, M) exact, differentiable in params
    cond = state.conditionals(bits)              # (B, M, n): P(s_i = 1 | s_<i), differentiable
    marg = state.marginals()                     # (B, n): P(s_i = 1)
    p = state.probs()                            # (B, 2**n), n ≤ 20 (oracle use)

and the same as one-shot methods ``backend.sample(circuit, params, shots, generator=...)``,
``backend.log_prob(circuit, params, bits)``, ``backend.conditionals(…)``, ``backend.marginals(…)``,
``backend.probs(…)``. Unbatched params ``(P,)`` drop the leading ``B`` everywhere. Bit order is
qhn's (:mod:`qhn.bits`): bit 0 = qubit 0 = most significant.

How a circuit becomes an MPS (``χ`` = bond dimension):

- the state starts as ``|0…0⟩`` (``χ = 1``);
- a run of one-qubit gates is fused per qubit into one ``2 × 2`` matrix and applied to all sites
  at once (one einsum);
- a run of CZ/CNOT gates is applied as an exact matrix-product operator: each gate is
  ``Σ_k O_lo^k ⊗ O_hi^k`` (CZ: ``P_k ⊗ Z^k``; CNOT: ``P_k`` on the control, ``X^k`` on the
  target, ``P_k = |k⟩⟨k|``), whose index ``k`` rides on every bond between its wires. A layer of
  neighbour gates doubles each bond it crosses, so a chain circuit of ``L`` entangling layers
  has ``χ ≤ 2^L`` (brickwork: ``2^⌈L/2⌉``; ``qhn_reference`` with ``L`` layers: ``2^L``) — with no
  SVD, so the differentiable path is plain einsums;
- when the bond dimension would exceed the largest physical one, ``2^⌊n/2⌋`` (small ``n``, deep
  circuits), the state is compressed losslessly by a QR sweep and an SVD sweep keeping every
  singular value (bonds then respect ``2^min(b, n−b)``) — except while differentiating, where
  the bonds are left to grow (within the memory budget) so that no SVD enters the gradient;
- with ``max_bond``, bonds above it are truncated by that SVD sweep (in canonical form, so the
  squared singular values are the Schmidt weights). Each truncation's discarded fraction
  ``ε_k = Σ_discarded σ² / Σ σ²`` is accumulated in ``state.discarded_weight`` and turned into a
  fidelity bound (see :class:`~qhn.backends.mps_state.MPS`). Gradients through a truncation go
  through ``torch.linalg.qr/svd``, whose backward is ill-conditioned at degenerate singular values
  (and undefined for complex ones): differentiate the exact mode.

Memory is estimated from the compiled bond dimensions and refused before any compute.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_shots,
)
from qhn.backends.mps_state import MAX_PROBS_QUBITS, MPS
from qhn.backends.torch_passes import OneQubitRun, one_qubit_run, run_matrices
from qhn.circuits.ir import Circuit, Gate, gate_runs
from qhn.errors import ConfigError, MemoryBudgetError

__all__ = ["MPSBackend"]

#: An entangler run is split so that no bond's operator dimension exceeds this.
_MAX_MPO_DIM = 4

_I = torch.eye(2, dtype=torch.float64)
_P = (
    torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64)),
    torch.diag(torch.tensor([0.0, 1.0], dtype=torch.float64)),
)
_Z = (_I, torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)))
_X = (_I, torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))


@dataclass(frozen=True)
class _MPORun:
    """An entangler run as a padded MPO ``W`` ``(n, D, D, 2, 2)`` (``W[i, kl, kr, out, in]``) and
    its live bond dimensions ``dims`` (``n + 1`` ints, 1 at both ends)."""

    mpo: torch.Tensor
    dims: tuple[int, ...]


def _gate_factors(gate: Gate, site: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two operators gate ``Σ_k O_a^k ⊗ O_b^k`` puts on ``site`` (one of its wires)."""
    control = gate.wires[0]
    if site == control:
        return _P
    return _Z if gate.name == "cz" else _X


def _mpo_run(n: int, gates: list[Gate]) -> _MPORun:
    spans = [(min(g.wires), max(g.wires)) for g in gates]
    dims = [1] + [2 ** sum(lo <= b < hi for lo, hi in spans) for b in range(n - 1)] + [1]
    width = max(dims)
    mpo = torch.zeros(n, width, width, 2, 2, dtype=torch.float64)
    for i in range(n):
        left = [j for j, (lo, hi) in enumerate(spans) if lo < i <= hi]
        right = [j for j, (lo, hi) in enumerate(spans) if lo <= i < hi]
        acting = [j for j, g in enumerate(gates) if i in g.wires]
        for kl in range(2 ** len(left)):
            k = {j: (kl >> (len(left) - 1 - t)) & 1 for t, j in enumerate(left)}
            for kr in range(2 ** len(right)):
                kk = dict(k)
                bits_r = {j: (kr >> (len(right) - 1 - t)) & 1 for t, j in enumerate(right)}
                if any(kk.get(j, b) != b for j, b in bits_r.items()):
                    continue
                kk.update(bits_r)
                op = _I
                for j in acting:
                    op = _gate_factors(gates[j], i)[kk[j]] @ op
                mpo[i, kl, kr] = op
    return _MPORun(mpo, tuple(dims))


def _split_entanglers(n: int, gates: list[Gate]) -> list[list[Gate]]:
    """Consecutive pieces of an entangler run whose MPO bonds stay ``≤ _MAX_MPO_DIM``."""
    pieces: list[list[Gate]] = [[]]
    crossing = [0] * max(n - 1, 1)
    cap = int(math.log2(_MAX_MPO_DIM))
    for gate in gates:
        lo, hi = min(gate.wires), max(gate.wires)
        if pieces[-1] and any(crossing[b] + 1 > cap for b in range(lo, hi)):
            pieces.append([])
            crossing = [0] * max(n - 1, 1)
        pieces[-1].append(gate)
        for b in range(lo, hi):
            crossing[b] += 1
    return pieces


@functools.lru_cache(maxsize=32)
def compile_circuit(circuit: Circuit) -> tuple[object, ...]:
    """Alternating one-qubit runs and MPO runs, in gate order."""
    n = circuit.n_qubits
    program: list[object] = []
    for kind, run in gate_runs(n, circuit.gates):
        if kind == "one":
            program.append(one_qubit_run(run))
        else:
            program.extend(_mpo_run(n, piece) for piece in _split_entanglers(n, run))
    return tuple(program)


def _physical(n: int) -> list[int]:
    """The largest useful bond dimension of each bond: ``2^min(b, n−b)`` (capped to avoid
    huge integers)."""
    return [2 ** min(b, n - b, 62) for b in range(n + 1)]


def _needs_sweep(
    bonds: list[int], phys: list[int], max_bond: int | None, lossless: bool = True
) -> bool:
    """Compress when a bond exceeds ``max_bond``, or (exact mode, ``lossless`` allowed) when the
    padded ``χ`` exceeds the largest physical bond ``2^⌊n/2⌋``; a bond above its own bound near
    the ends costs no memory in the padded layout, so it is left alone. ``lossless = False``
    while differentiating: the exact path then stays SVD-free (bounded by the memory check)."""
    if max_bond is not None and max(bonds) > max_bond:
        return True
    return lossless and max(bonds) > max(phys)


def _plan_bonds(circuit: Circuit, max_bond: int | None, lossless: bool = True) -> tuple[int, int]:
    """``(peak padded χ during application, final χ)`` predicted from the compiled program."""
    n = circuit.n_qubits
    phys = _physical(n)
    bonds, peak = [1] * (n + 1), 1
    for step in compile_circuit(circuit):
        if isinstance(step, _MPORun):
            bonds = [b * d for b, d in zip(bonds, step.dims, strict=True)]
            peak = max(peak, max(bonds))
            if _needs_sweep(bonds, phys, max_bond, lossless):
                limit = [p if max_bond is None else min(p, max_bond) for p in phys]
                bonds = [min(b, c) for b, c in zip(bonds, limit, strict=True)]
    return peak, max(bonds)


# ---------------------------------------------------------------------------- building the state
def _apply_mpo(
    tensors: torch.Tensor, bonds: list[int], run: _MPORun
) -> tuple[torch.Tensor, list[int]]:
    """Contract an MPO run into the MPS, keeping live bond indices first (gathers when needed)."""
    batch, n, chi = tensors.shape[0], tensors.shape[1], tensors.shape[2]
    width = run.mpo.shape[1]
    w = run.mpo.to(device=tensors.device, dtype=tensors.dtype)
    out = torch.einsum("nxyts,bnlsr->bnlxtry", w, tensors)
    out = out.reshape(batch, n, chi * width, 2, chi * width)
    new = [b * d for b, d in zip(bonds, run.dims, strict=True)]
    size = max(new)
    if all(new[b] == chi * width for b in range(1, n)) and size == chi * width:
        return out, new
    index = []
    for b in range(n + 1):
        live = [l_ * width + k for l_ in range(bonds[b]) for k in range(run.dims[b])]
        dead = next((j for j in range(chi * width) if j not in set(live)), 0)
        index.append(live + [dead] * (size - len(live)))
    index_t = torch.tensor(index, dtype=torch.int64, device=tensors.device)
    left = index_t[:-1].view(1, n, size, 1, 1).expand(batch, n, size, 2, chi * width)
    out = out.gather(2, left)
    right = index_t[1:].view(1, n, 1, 1, size).expand(batch, n, size, 2, size)
    return out.gather(4, right), new


def _sweep(
    tensors: torch.Tensor, bonds: list[int], max_bond: int | None
) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """Left-canonicalize by QR, then sweep right to left with SVDs keeping ``≤ max_bond``
    singular values (all of them when None). Returns ``(tensors, bonds, ε (B, n−1))``."""
    n = tensors.shape[1]
    sites = [tensors[:, i, : bonds[i], :, : bonds[i + 1]] for i in range(n)]
    batch = tensors.shape[0]
    for i in range(n - 1):
        chi_l, chi_r = sites[i].shape[1], sites[i].shape[3]
        q, r = torch.linalg.qr(sites[i].reshape(batch, 2 * chi_l, chi_r))
        sites[i] = q.reshape(batch, chi_l, 2, q.shape[-1])
        sites[i + 1] = torch.einsum("bkr,brsq->bksq", r, sites[i + 1])
    eps = []
    for i in range(n - 1, 0, -1):
        chi_l, chi_r = sites[i].shape[1], sites[i].shape[3]
        u, s, vh = torch.linalg.svd(sites[i].reshape(batch, chi_l, 2 * chi_r), full_matrices=False)
        keep = s.shape[-1] if max_bond is None else min(s.shape[-1], max_bond)
        weight = s * s
        total = weight.sum(-1)
        kept = weight[:, :keep].sum(-1)
        eps.append((total - kept).clamp_min(0) / total)
        s_kept = s[:, :keep] * (total / kept).sqrt().unsqueeze(-1)
        sites[i] = vh[:, :keep].reshape(batch, keep, 2, chi_r)
        sites[i - 1] = torch.einsum("blsr,brk->blsk", sites[i - 1], u[..., :keep] * s_kept[:, None])
    new = [1] + [sites[i].shape[1] for i in range(1, n)] + [1]
    chi = max(new)
    padded = [
        torch.nn.functional.pad(t, (0, chi - t.shape[3], 0, 0, 0, chi - t.shape[1])) for t in sites
    ]
    eps_t = torch.stack(eps, -1) if eps else tensors.new_zeros(batch, 0).real
    return torch.stack(padded, dim=1), new, eps_t.detach()


class MPSBackend:
    """Matrix-product-state simulation of qhn circuits (see the module docstring).

    Args:
        max_bond: truncate bonds above this by SVD (None: exact, the default).
        dtype: real precision, ``torch.float64`` (default) or ``torch.float32``; circuits with
            RX/RZ use the matching complex type.
        device: ``"cpu"`` (default) or ``"cuda"``.
        memory_budget: bytes one call may use; larger requests are refused before computing.
    """

    def __init__(
        self,
        max_bond: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        if max_bond is not None and (
            isinstance(max_bond, bool) or not isinstance(max_bond, int) or max_bond < 1
        ):
            raise ConfigError(f"max_bond must be a positive integer or None, got {max_bond!r}")
        if dtype not in (torch.float64, torch.float32):
            raise ConfigError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        device = torch.device(device or "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but CUDA is not available")
        self.max_bond = max_bond
        self.dtype = dtype
        self.complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.device = device
        self.memory_budget = int(memory_budget)
        self.capabilities = Capabilities(
            exact_probs=max_bond is None, backprop=True, max_qubits=None
        )

    def __repr__(self) -> str:
        return f"MPSBackend(max_bond={self.max_bond}, dtype={self.dtype}, device={self.device})"

    # ------------------------------------------------------------------ building
    def check_memory(
        self, circuit: Circuit, batch: int, differentiable: bool = False
    ) -> tuple[int, int]:
        """Refuse, before computing, a circuit whose MPS would not fit the memory budget
        (``differentiable``: without lossless compression). Returns ``(peak χ, final χ)``."""
        peak, final = _plan_bonds(circuit, self.max_bond, lossless=not differentiable)
        itemsize = 8 if circuit.is_real else 16
        itemsize //= 1 if self.dtype == torch.float64 else 2
        needed = 3 * batch * circuit.n_qubits * 2 * peak * peak * itemsize
        if needed > self.memory_budget:
            raise MemoryBudgetError(
                f"the MPS of {circuit.name} (batch {batch}) reaches bond dimension {peak} and "
                f"needs ~{needed / 2**30:.2f} GiB, over the memory budget of "
                f"{self.memory_budget / 2**30:.2f} GiB; set max_bond, use fewer layers or a "
                "smaller batch"
            )
        return peak, final

    def state(self, circuit: Circuit, params: torch.Tensor) -> MPS:
        """The MPS of ``U(θ)|0…0⟩`` for each parameter vector. Shapes: params ``(B, P)`` or
        ``(P,)``. Differentiable in ``params``."""
        batch_params, batched = as_param_batch(circuit, params)
        batch_params = batch_params.to(device=self.device, dtype=self.dtype)
        batch, n = batch_params.shape[0], circuit.n_qubits
        differentiable = torch.is_grad_enabled() and batch_params.requires_grad
        self.check_memory(circuit, batch, differentiable)
        dtype = self.dtype if circuit.is_real else self.complex_dtype
        tensors = torch.zeros(batch, n, 1, 2, 1, dtype=dtype, device=self.device)
        tensors[:, :, 0, 0, 0] = 1
        bonds = [1] * (n + 1)
        phys = _physical(n)
        real = self.dtype
        discarded = torch.zeros(batch, dtype=real, device=self.device)
        angle = torch.zeros(batch, dtype=real, device=self.device)
        for step in compile_circuit(circuit):
            if isinstance(step, OneQubitRun):
                mats = run_matrices(step, batch_params, n, dtype)
                tensors = torch.einsum("bnts,bnlsr->bnltr", mats, tensors)
                continue
            tensors, bonds = _apply_mpo(tensors, bonds, step)
            if _needs_sweep(bonds, phys, self.max_bond, lossless=not differentiable):
                tensors, bonds, eps = _sweep(tensors, bonds, self.max_bond)
                discarded = discarded + eps.sum(-1)
                angle = angle + torch.asin(eps.clamp(0, 1).sqrt()).sum(-1)
        bound = torch.cos(angle.clamp(max=math.pi / 2)) ** 2
        return MPS(tensors, tuple(bonds), discarded, bound, batched, self.memory_budget)

    # ------------------------------------------------------------------ one-shot methods
    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times (exact sequential sampling). Shapes: ``(B, P)`` →
        ``(B, shots, n)`` uint8; ``(P,)`` → ``(shots, n)``."""
        check_shots(shots)
        with torch.no_grad():
            return self.state(circuit, params).sample(shots, generator)

    def log_prob(self, circuit: Circuit, params: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """Exact ``log q_θ(s)``, differentiable. Shapes: bits ``(M, n)`` or ``(B, M, n)`` →
        ``(B, M)``; unbatched params → ``(M,)``."""
        return self.state(circuit, params).log_prob(bits)

    def conditionals(
        self, circuit: Circuit, params: torch.Tensor, bits: torch.Tensor
    ) -> torch.Tensor:
        """``P(s_i = 1 | s_<i)`` along each bitstring. Shapes: as :meth:`log_prob` plus ``n``."""
        return self.state(circuit, params).conditionals(bits)

    def marginals(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """``P(s_i = 1)``. Shapes: ``(B, P)`` → ``(B, n)``; ``(P,)`` → ``(n,)``."""
        return self.state(circuit, params).marginals()

    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """The Born distribution (the truncated state's when ``max_bond`` is set), ``n ≤ 20``.
        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable."""
        if circuit.n_qubits > MAX_PROBS_QUBITS:
            raise ConfigError(
                f"probs() enumerates 2**n amplitudes and is refused for n = {circuit.n_qubits} "
                f"> {MAX_PROBS_QUBITS}; use sample(), log_prob() or marginals() instead"
            )
        return self.state(circuit, params).probs()
