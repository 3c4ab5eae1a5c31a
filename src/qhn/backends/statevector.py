"""A fast, batched PyTorch statevector simulator.

The circuit is compiled once (cached per circuit) into a short program of passes over the state:

- a run of one-qubit gates at the start becomes a **product state** built directly as a Kronecker
  product of per-qubit columns, instead of gates applied to ``|0…0⟩``;
- a later run of one-qubit gates is fused per qubit into one 2×2 matrix per qubit, and qubits are
  grouped into blocks of ``k`` whose Kronecker product (``2^k × 2^k``) is applied as one matrix
  product over the reshaped state, so a layer costs ``⌈n/k⌉`` passes instead of ``n``;
- a run of CZ gates becomes one precomputed ±1 vector; a run containing CNOTs becomes one signed
  permutation (a gather and a sign).

Real circuits (RY, H, X, CZ, CNOT) run in real arithmetic; others in complex. Everything is plain
torch, so autograd differentiates through it (the backprop estimator).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_memory,
)
from qhn.backends.sampling import sample_bits
from qhn.circuits.ir import ENTANGLING_GATES, Circuit, Gate
from qhn.errors import ConfigError

__all__ = ["StatevectorBackend"]

#: Largest circuit we accept regardless of budget (int64 indices and sanity).
MAX_QUBITS = 30


@dataclass(frozen=True)
class _OneQubitRun:
    """Consecutive one-qubit gates: per qubit, the gates in the order they act."""

    per_qubit: tuple[tuple[Gate, ...], ...]


@dataclass(frozen=True)
class _EntanglerRun:
    """Consecutive CZ/CNOT gates as ``new[i] = sign[i] · old[perm[i]]`` (perm None: identity)."""

    sign: torch.Tensor | None
    perm: torch.Tensor | None


def _entangler_run(n: int, gates: list[Gate]) -> _EntanglerRun:
    index = torch.arange(2**n, dtype=torch.int64)
    # Track, for each output position, which input it reads and the accumulated sign.
    src = index.clone()
    sign = torch.ones(2**n, dtype=torch.int8)
    has_perm = False
    for gate in gates:
        a, b = gate.wires
        bit_a = (index >> (n - 1 - a)) & 1
        bit_b = (index >> (n - 1 - b)) & 1
        if gate.name == "cz":
            # A diagonal acting after the permutation so far: multiplies output i directly.
            sign = torch.where((bit_a & bit_b) == 1, -sign, sign)
        else:
            # new[i] = old[i ^ (bit_control(i) << target)]: compose with what came before.
            flip = bit_a << (n - 1 - b)
            partner = index ^ flip
            src = src[partner]
            sign = sign[partner]
            has_perm = True
    any_sign = bool((sign < 0).any())
    return _EntanglerRun(
        sign=sign.to(torch.float64) if any_sign else None,
        perm=src if has_perm else None,
    )


@functools.lru_cache(maxsize=64)
def _compile(circuit: Circuit) -> tuple[object, ...]:
    """Split the gate list into alternating one-qubit runs and entangler runs."""
    n = circuit.n_qubits
    program: list[object] = []
    one: list[list[Gate]] = [[] for _ in range(n)]
    ent: list[Gate] = []

    def flush_one() -> None:
        if any(one):
            program.append(_OneQubitRun(tuple(tuple(g) for g in one)))
            for g in one:
                g.clear()

    def flush_ent() -> None:
        if ent:
            program.append(_entangler_run(n, ent))
            ent.clear()

    for gate in circuit.gates:
        if gate.name in ENTANGLING_GATES:
            flush_one()
            ent.append(gate)
        else:
            flush_ent()
            one[gate.wires[0]].append(gate)
    flush_one()
    flush_ent()
    return tuple(program)


def _gate_matrices(gate: Gate, params: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The 2×2 matrix of a one-qubit gate for each batch row. Shapes: ``(B, P)`` → ``(B, 2, 2)``."""
    batch = params.shape[0]
    real = params.real.dtype if params.is_complex() else params.dtype
    if gate.name == "h":
        h = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=real) / 2**0.5
        return h.to(dtype).expand(batch, 2, 2)
    if gate.name == "x":
        return torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=dtype).expand(batch, 2, 2)
    half = params[:, gate.param] / 2
    c, s = torch.cos(half), torch.sin(half)
    if gate.name == "ry":
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).to(dtype)
    zero = torch.zeros_like(c)
    if gate.name == "rx":
        cc = torch.complex(c, zero)
        ms = torch.complex(zero, -s)
        return torch.stack([torch.stack([cc, ms], -1), torch.stack([ms, cc], -1)], -2)
    # rz = diag(e^{-iθ/2}, e^{iθ/2})
    e_minus = torch.complex(c, -s)
    e_plus = torch.complex(c, s)
    z = torch.complex(zero, zero)
    return torch.stack([torch.stack([e_minus, z], -1), torch.stack([z, e_plus], -1)], -2)


def _fused(gates: tuple[Gate, ...], params: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """Product of a qubit's gates in acting order (later gates on the left). ``(B, 2, 2)``."""
    matrix = None
    for gate in gates:
        g = _gate_matrices(gate, params, dtype)
        matrix = g if matrix is None else g @ matrix
    return matrix


def _kron_vectors(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Kronecker product of per-qubit vectors, qubit 0 most significant. ``[(B, 2)] → (B, 2^m)``.

    Split in halves so the large outer product is written once.
    """
    if len(vectors) == 1:
        return vectors[0]
    mid = len(vectors) // 2
    left = _kron_vectors(vectors[:mid])
    right = _kron_vectors(vectors[mid:])
    return (left.unsqueeze(-1) * right.unsqueeze(-2)).reshape(left.shape[0], -1)


def _kron_matrices(matrices: list[torch.Tensor]) -> torch.Tensor:
    """Kronecker product of per-qubit matrices. ``[(B, 2, 2)] → (B, 2^m, 2^m)``."""
    out = matrices[0]
    for m in matrices[1:]:
        b, r = out.shape[0], out.shape[-1]
        out = (out[:, :, None, :, None] * m[:, None, :, None, :]).reshape(b, 2 * r, 2 * r)
    return out


class StatevectorBackend:
    """Exact, differentiable, batched statevector simulation in PyTorch.

    Args:
        dtype: real precision, ``torch.float64`` (default) or ``torch.float32``; complex circuits
            use the matching complex type.
        device: ``"cpu"``, ``"cuda"``; ``None`` picks CPU.
        memory_budget: bytes one call may use for state vectors; larger requests are refused
            before allocating.
        block_qubits: qubits fused into one Kronecker block (a ``2^k × 2^k`` matrix product).
        chunk_bytes: batches are processed in chunks of about this many bytes of state.
    """

    def __init__(
        self,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        block_qubits: int = 4,
        chunk_bytes: int = 32 * 2**20,
    ) -> None:
        if dtype not in (torch.float64, torch.float32):
            raise ConfigError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        device = torch.device(device or "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but CUDA is not available")
        if not 1 <= block_qubits <= 10:
            raise ConfigError(f"block_qubits must be in 1..10, got {block_qubits}")
        self.dtype = dtype
        self.complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.device = device
        self.memory_budget = int(memory_budget)
        self.block_qubits = block_qubits
        self.chunk_bytes = chunk_bytes
        self.capabilities = Capabilities(exact_probs=True, backprop=True, max_qubits=MAX_QUBITS)

    def __repr__(self) -> str:
        return f"StatevectorBackend(dtype={self.dtype}, device={self.device})"

    # ----------------------------------------------------------------- public API
    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``|⟨s|U(θ)|0…0⟩|²`` in our index order.

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable in ``params``.
        """
        batch, batched = self._prepare(circuit, params)
        state_dtype = self.dtype if circuit.is_real else self.complex_dtype
        per_state = (2**circuit.n_qubits) * torch.empty((), dtype=state_dtype).element_size()
        chunk = max(1, self.chunk_bytes // per_state)
        parts = [
            self._probs_chunk(circuit, batch[i : i + chunk], state_dtype)
            for i in range(0, batch.shape[0], chunk)
        ]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return out if batched else out[0]

    def state(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """The state vector ``U(θ)|0…0⟩`` (real dtype for real circuits, else complex).

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``.
        """
        batch, batched = self._prepare(circuit, params)
        state_dtype = self.dtype if circuit.is_real else self.complex_dtype
        out = self._run(circuit, batch, state_dtype)
        return out if batched else out[0]

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure ``shots`` times. Shapes: ``(B, P)`` → ``(B, shots, n)`` uint8."""
        with torch.no_grad():
            probs = self.probs(circuit, params)
        batched = probs.ndim == 2
        bits = sample_bits(probs if batched else probs[None], shots, generator=generator)
        return bits if batched else bits[0]

    # ----------------------------------------------------------------- internals
    def _prepare(self, circuit: Circuit, params: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if circuit.n_qubits > MAX_QUBITS:
            raise ConfigError(
                f"{circuit.n_qubits} qubits exceed this simulator's limit of {MAX_QUBITS}"
            )
        batch, batched = as_param_batch(circuit, params)
        batch = batch.to(device=self.device, dtype=self.dtype)
        itemsize = torch.empty((), dtype=self.dtype if circuit.is_real else self.complex_dtype)
        # Two live state buffers per circuit (input and output of a pass), within one chunk.
        per_state = (2**circuit.n_qubits) * itemsize.element_size()
        chunk = max(1, min(batch.shape[0], self.chunk_bytes // per_state))
        check_memory(circuit.n_qubits, chunk, itemsize.element_size(), 2, self.memory_budget)
        check_memory(circuit.n_qubits, batch.shape[0], 8, 1, self.memory_budget)
        return batch, batched

    def _probs_chunk(self, circuit: Circuit, params: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        psi = self._run(circuit, params, dtype)
        if psi.is_complex():
            return torch.view_as_real(psi).square().sum(-1)
        return psi.square()

    def _run(self, circuit: Circuit, params: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        n = circuit.n_qubits
        batch = params.shape[0]
        program = _compile(circuit)
        psi: torch.Tensor | None = None
        for step in program:
            if isinstance(step, _OneQubitRun):
                mats = [_fused(g, params, dtype) for g in step.per_qubit]
                if psi is None:
                    psi = self._product_state(mats, batch, dtype)
                else:
                    psi = self._apply_one_qubit_layer(psi, mats, n)
            else:
                if psi is None:
                    psi = self._zero_state(n, batch, dtype)
                psi = self._apply_entanglers(psi, step)
        if psi is None:
            psi = self._zero_state(n, batch, dtype)
        return psi

    def _zero_state(self, n: int, batch: int, dtype: torch.dtype) -> torch.Tensor:
        psi = torch.zeros(batch, 2**n, dtype=dtype, device=self.device)
        psi[:, 0] = 1
        return psi

    def _product_state(
        self, mats: list[torch.Tensor | None], batch: int, dtype: torch.dtype
    ) -> torch.Tensor:
        e0 = torch.tensor([1.0, 0.0], dtype=dtype, device=self.device).expand(batch, 2)
        columns = [e0 if m is None else m[:, :, 0] for m in mats]
        return _kron_vectors(columns)

    def _apply_one_qubit_layer(
        self, psi: torch.Tensor, mats: list[torch.Tensor | None], n: int
    ) -> torch.Tensor:
        if not psi.is_complex() and any(m is not None and m.is_complex() for m in mats):
            psi = psi.to(self.complex_dtype)
        batch = psi.shape[0]
        k = self.block_qubits
        start = 0
        while start < n:
            stop = min(start + k, n)
            block = mats[start:stop]
            if any(m is not None for m in block):
                eye = torch.eye(2, dtype=psi.dtype, device=self.device).expand(batch, 2, 2)
                full = [eye if m is None else m.to(psi.dtype) for m in block]
                big = _kron_matrices(full)
                width = stop - start
                view = psi.reshape(batch, 2**start, 2**width, 2 ** (n - stop))
                psi = torch.matmul(big.unsqueeze(1), view).reshape(batch, -1)
            start = stop
        return psi

    def _apply_entanglers(self, psi: torch.Tensor, step: _EntanglerRun) -> torch.Tensor:
        if step.perm is not None:
            psi = psi[:, step.perm.to(self.device)]
        if step.sign is not None:
            psi = psi * step.sign.to(device=self.device, dtype=psi.real.dtype)
        return psi
