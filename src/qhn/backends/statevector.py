"""The statevector backend: exact probabilities, states, samples and expectations of a circuit,
batched over parameter rows, with adjoint gradients.

Each call picks its engine. From :data:`SWEEPS_MIN_QUBITS` qubits, when numba is installed and
the circuit has no CNOT, the cache-blocked sweeps (:mod:`qhn.backends.sweeps`) apply a whole
layer per pass over memory; otherwise the program of batched torch passes
(:mod:`qhn.backends.torch_passes`) does. Batches run in chunks that fit the memory budget, and a
batch of parameter-shift rows shares its common leading passes (:mod:`qhn.backends.shared_prefix`,
:mod:`qhn.backends.sweep_shared`) and its ± pairs (:mod:`qhn.backends.shift_pairs`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_memory,
    check_sample_memory,
    check_shots,
    chunked_expectations,
)
from qhn.backends.sampling import sample_bits
from qhn.backends.torch_adjoint import AdjointProbs
from qhn.backends.torch_passes import Buffers, forward_pass, squared_modulus
from qhn.backends.torch_plan import plan_passes
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError

__all__ = ["StatevectorBackend"]

#: Largest circuit we accept regardless of budget (int64 indices and sanity).
MAX_QUBITS = 30
#: From this many qubits the default backend runs cache-blocked sweeps when numba is installed
#: (:mod:`qhn.backends.sweeps`); below, a call takes about a millisecond either way, and a
#: process that never reaches this size never imports numba (~0.7 s).
SWEEPS_MIN_QUBITS = 16
#: From this many qubits a batch of circuits is sampled sharing its common leading passes
#: (:mod:`qhn.backends.shared_prefix`); below, one batched pass over all rows is cheaper.
SHARED_PREFIX_MIN_QUBITS = 16


def numba_available() -> bool:
    """Whether numba (the ``fast`` extra, for :mod:`qhn.backends.sweeps`) is installed; found
    without importing it."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


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
        adjoint: differentiate ``probs`` with the adjoint method (default); False uses plain
            autograd through every pass (more memory; kept as a cross-check).
        sweeps: compute states on the CPU in cache-blocked sweeps compiled with numba
            (:mod:`qhn.backends.sweeps`, the ``fast`` extra) rather than as torch passes. None
            (default): when numba is installed, from :data:`SWEEPS_MIN_QUBITS` qubits; True:
            always; False: never. Circuits with CNOTs always use torch passes.
        shift_pairs: in a parameter-shift batch run by sweeps, simulate one π-shifted circuit
            per parameter and combine it with the centre's state into both ``±π/2`` rows
            (:mod:`qhn.backends.shift_pairs`): equal to rounding, about half the circuits.
            False simulates every row (the same bits as one row at a time).
    """

    def __init__(
        self,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        block_qubits: int = 4,
        chunk_bytes: int = 32 * 2**20,
        adjoint: bool = True,
        sweeps: bool | None = None,
        shift_pairs: bool = True,
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
        self.adjoint = adjoint
        if sweeps not in (None, True, False):
            raise ConfigError(f"sweeps must be None, True or False, got {sweeps!r}")
        if sweeps and not numba_available():
            raise ConfigError(
                "sweeps=True needs numba; install it with: pip install 'qhn[fast]' "
                "(or pass sweeps=None to use it only when installed)"
            )
        self.sweeps = sweeps if sweeps is not None or numba_available() else False
        if shift_pairs not in (True, False):
            raise ConfigError(f"shift_pairs must be True or False, got {shift_pairs!r}")
        self.shift_pairs = bool(shift_pairs)
        self.capabilities = Capabilities(exact_probs=True, backprop=True, max_qubits=MAX_QUBITS)

    def __repr__(self) -> str:
        return f"StatevectorBackend(dtype={self.dtype}, device={self.device})"

    # ----------------------------------------------------------------- public API
    def probs(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """Born probabilities ``|⟨s|U(θ)|0…0⟩|²`` in our index order, simulated in this backend's
        precision and returned in the dtype of ``params`` (float64 for non-tensors), so float32
        simulation feeds float64 sums downstream.

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable in ``params``.
        """
        out_dtype = params.dtype if isinstance(params, torch.Tensor) else torch.float64
        batch, batched = self._prepare(circuit, params)
        chunk = self._chunk_size(circuit)
        parts = [
            self._probs_chunk(circuit, batch[i : i + chunk], out_dtype)
            for i in range(0, batch.shape[0], chunk)
        ]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        out = out.to(out_dtype)
        return out if batched else out[0]

    def state(self, circuit: Circuit, params: torch.Tensor) -> torch.Tensor:
        """The state vector ``U(θ)|0…0⟩`` (real dtype for real circuits, else complex).

        Shapes: ``(B, P)`` → ``(B, 2**n)``; ``(P,)`` → ``(2**n,)``. Differentiable (plain autograd).
        """
        batch, batched = self._prepare(circuit, params)
        passes, _ = self._plan(circuit, batch)
        out = forward_pass(passes, circuit.n_qubits, None)
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
        check_shots(shots)
        batch, batched = as_param_batch(circuit, params)
        check_sample_memory(batch.shape[0], shots, circuit.n_qubits, self.memory_budget)
        chunk = self._chunk_size(circuit)
        rows = batch.to(self.dtype)  # probabilities in the simulation's precision: no copy
        if batch.shape[0] > 1 and circuit.n_qubits >= SHARED_PREFIX_MIN_QUBITS:
            bits = self._sample_shared(circuit, rows, shots, generator)
            return bits if batched else bits[0]
        with torch.no_grad():
            # Chunk by chunk, so a large batch (e.g. 2P shifted circuits) never holds all its
            # probability vectors at once.
            parts = [
                sample_bits(self.probs(circuit, rows[i : i + chunk]), shots, generator=generator)
                for i in range(0, batch.shape[0], chunk)
            ]
        bits = parts[0] if len(parts) == 1 else torch.cat(parts)
        return bits if batched else bits[0]

    def expectations(
        self, circuit: Circuit, params: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_s q_r(s) w(s)`` for every row ``r``, without autograd and without holding every
        row's probability vector. From :data:`SHARED_PREFIX_MIN_QUBITS` qubits, rows that share
        leading passes (the exact parameter-shift batch) simulate them once
        (:mod:`qhn.backends.shared_prefix`); below, rows run in chunks.

        Shapes: params ``(R, P)``, weights ``(2**n,)`` → ``(R,)`` in ``weights``' dtype.
        """
        batch, _ = as_param_batch(circuit, params)
        if tuple(weights.shape) != (2**circuit.n_qubits,):
            raise ConfigError(
                f"weights must have shape ({2**circuit.n_qubits},), one per bitstring of "
                f"{circuit.n_qubits} qubits, got {tuple(weights.shape)}"
            )
        if batch.shape[0] > 1 and circuit.n_qubits >= SHARED_PREFIX_MIN_QUBITS:
            out = torch.empty(batch.shape[0], dtype=weights.dtype, device=weights.device)
            for which, probs in self._shared_probs(circuit, batch.to(self.dtype)):
                out[which] = probs.to(weights.dtype) @ weights
            return out
        return chunked_expectations(self, circuit, batch, weights, self.chunk_bytes)

    # ----------------------------------------------------------------- internals
    def _shared_probs(self, circuit: Circuit, params: torch.Tensor) -> Iterator:
        """``(rows, probs)`` covering every row once, sharing leading sweeps where this backend
        runs them (:func:`qhn.backends.sweep_shared.shared_sweep_probs`), else leading passes
        (:func:`qhn.backends.shared_prefix.shared_prefix_probs`); at most one chunk of branching
        rows and the shared row are alive at once. The limits are checked and the passes planned
        when called, before the caller allocates anything. Shapes: params ``(R, P)``."""
        from qhn.backends.shared_prefix import shared_prefix_probs

        n, rows = circuit.n_qubits, params.shape[0]
        if n > MAX_QUBITS:
            raise ConfigError(f"{n} qubits exceed this simulator's limit of {MAX_QUBITS}")
        batch = params.to(device=self.device, dtype=self.dtype)
        chunk = min(rows, self._chunk_size(circuit))
        per_amplitude = self._bytes_per_amplitude(circuit, False)
        check_memory(n, chunk + 1, per_amplitude, 1, self.memory_budget)
        sweeps = self._sweep_schedule(circuit, keep_state=False)
        if sweeps is not None:
            from qhn.backends.shift_pairs import find_shift_pairs, paired_buffers, paired_probs
            from qhn.backends.sweep_shared import shared_sweep_probs

            dtype = self._state_dtype(circuit)
            pairs = find_shift_pairs(circuit, batch) if self.shift_pairs else None
            # Pairs hold a few more states than a chunk; where they would not fit the budget,
            # every row is simulated instead (checked above).
            paired_bytes = paired_buffers(chunk) * 2**n * dtype.itemsize
            if pairs is not None and paired_bytes <= self.memory_budget:
                return paired_probs(sweeps, batch, pairs, dtype, chunk)
            return shared_sweep_probs(sweeps, batch, dtype, chunk)
        with torch.no_grad():
            passes, dtype = self._plan(circuit, batch.detach())
        return shared_prefix_probs(passes, n, dtype, rows, chunk)

    def _sample_shared(
        self, circuit: Circuit, params: torch.Tensor, shots: int, generator
    ) -> torch.Tensor:
        """``sample`` for a batch whose rows share leading passes (parameter-shift batches):
        :meth:`_shared_probs`. The uniforms are drawn as the chunked path draws them (row order,
        one ``(rows, shots)`` block), so the bits are the same."""
        from qhn.backends.sampling import sample_indices
        from qhn.bits import index_to_bits

        n, rows = circuit.n_qubits, params.shape[0]
        probabilities = self._shared_probs(circuit, params)
        u = torch.rand(rows, shots, generator=generator, dtype=torch.float64, device=self.device)
        out = torch.empty(rows, shots, n, dtype=torch.uint8, device=self.device)
        for which, probs in probabilities:
            if probs.shape[0] == 1 and which.numel() > 1:  # one distribution for many rows
                flat = sample_indices(probs, shots * which.numel(), uniforms=u[which].view(1, -1))
                index = flat.view(which.numel(), shots)
            else:
                index = sample_indices(probs, shots, uniforms=u[which])
            out[which] = index_to_bits(index, n)
        return out

    def _state_dtype(self, circuit: Circuit) -> torch.dtype:
        return self.dtype if circuit.is_real else self.complex_dtype

    def _state_itemsize(self, circuit: Circuit) -> int:
        return self._state_dtype(circuit).itemsize

    def _sweep_schedule(self, circuit: Circuit, *, keep_state: bool):
        """The circuit's cache-blocked sweeps (:mod:`qhn.backends.sweeps`) when this backend
        runs them: on the CPU, with numba, for circuits without CNOTs; else None."""
        if self.sweeps is False or self.device.type != "cpu":
            return None
        if self.sweeps is None and circuit.n_qubits < SWEEPS_MIN_QUBITS:
            return None
        from qhn.backends.sweep_schedule import schedule

        return schedule(circuit, self._state_itemsize(circuit), keep_final_diagonal=keep_state)

    def _bytes_per_amplitude(self, circuit: Circuit, grad: bool) -> int:
        """Peak bytes per amplitude of one circuit in a chunk.

        Forward: two state buffers (a real state's probabilities overwrite one of them; a complex
        one's take a real vector). Adjoint: the saved state, λ and two pools of two states, the
        probabilities and the gradient arriving on them. Plain autograd: every pass's output.
        Always: a float64 copy for the caller when simulating in float32, and a CNOT run's int64
        gather index.
        """
        real = torch.empty((), dtype=self.dtype).element_size()
        if grad:
            states = 6 if self.adjoint else len(circuit.gates) + 2
            extra = 2 * real
        else:
            states, extra = 2, (0 if circuit.is_real else real)
        extra += 8 if self.dtype != torch.float64 else 0
        extra += 8 if any(g.name == "cnot" for g in circuit.gates) else 0
        return states * self._state_itemsize(circuit) + extra

    def _chunk_size(self, circuit: Circuit) -> int:
        return max(1, self.chunk_bytes // ((2**circuit.n_qubits) * self._state_itemsize(circuit)))

    def _prepare(self, circuit: Circuit, params: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if circuit.n_qubits > MAX_QUBITS:
            raise ConfigError(
                f"{circuit.n_qubits} qubits exceed this simulator's limit of {MAX_QUBITS}"
            )
        batch, batched = as_param_batch(circuit, params)
        batch = batch.to(device=self.device, dtype=self.dtype)
        chunk = min(batch.shape[0], self._chunk_size(circuit))
        grad = torch.is_grad_enabled() and batch.requires_grad
        check_memory(
            circuit.n_qubits, chunk, self._bytes_per_amplitude(circuit, grad), 1, self.memory_budget
        )
        check_memory(circuit.n_qubits, batch.shape[0], batch.element_size(), 1, self.memory_budget)
        return batch, batched

    def _plan(
        self, circuit: Circuit, params: torch.Tensor, *, adjoint: bool = False
    ) -> tuple[list[object], torch.dtype]:
        return plan_passes(
            circuit, params, self.dtype, self.complex_dtype, self.block_qubits, adjoint=adjoint
        )

    def _probs_chunk(
        self, circuit: Circuit, params: torch.Tensor, out_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Probabilities of one chunk of rows, in the simulation's real precision (or directly
        in ``out_dtype`` where the sweeps write them)."""
        if torch.is_grad_enabled() and params.requires_grad:
            if self.adjoint:
                sweeps = self._sweep_schedule(circuit, keep_state=True)
                if sweeps is not None:
                    from qhn.backends.sweeps import SweepAdjointProbs

                    return SweepAdjointProbs.apply(params, sweeps, self._state_dtype(circuit))
                return AdjointProbs.apply(params, circuit, self)
            passes, _ = self._plan(circuit, params)
            return squared_modulus(forward_pass(passes, circuit.n_qubits, None))
        sweeps = self._sweep_schedule(circuit, keep_state=False)
        if sweeps is not None:
            from qhn.backends.sweeps import sweep_probs

            floating = out_dtype if out_dtype is not None and out_dtype.is_floating_point else None
            return sweep_probs(sweeps, params, self._state_dtype(circuit), out_dtype=floating)[0]
        with torch.no_grad():
            passes, dtype = self._plan(circuit, params)
            buffers = Buffers((params.shape[0], 2**circuit.n_qubits), dtype, params.device)
            psi = forward_pass(passes, circuit.n_qubits, buffers)
            out = psi if not psi.is_complex() else None
            return squared_modulus(psi, out=out)
