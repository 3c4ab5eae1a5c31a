"""A batch of matrix-product states and what can be read off them exactly.

An :class:`MPS` holds ``B`` states of ``n`` qubits as one zero-padded tensor ``A`` of shape
``(B, n, χ, 2, χ)``: the amplitude of a bitstring ``s`` is ``⟨0| A_0[s_0] ⋯ A_{n−1}[s_{n−1}] |0⟩``
(a row vector times ``χ × χ`` matrices; only bond index 0 is used at both ends). Bond ``b``
has ``bonds[b]`` live indices, always the first ones: the padding is exact zeros.

What is read off, and how (vectors ``v`` are kept per bitstring, all bitstrings at once):

- **sampling** (exact sequential, "perfect"): an LQ sweep makes every site right-orthonormal
  (``Σ_s A[s] A[s]† = I``); then with ``‖v‖ = 1``, ``P(s_i = s | s_<i) = ‖A_i[s]ᵀ v‖²`` and
  ``v ← A_i[s_i]ᵀ v / ‖·‖`` — per site one ``(2χ × χ) · (χ × shots)`` product for all shots. The
  exact ``log q`` of the draws comes for free;
- **log_prob**: ``v ← A_i[s_i]ᵀ v`` renormalized at every site, the log norms summed (the state is
  normalized), with an adjoint backward pass (:class:`_LogProb`);
- **conditionals** (differentiable by plain autograd, no decomposition): right environments
  ``E_n = e_0 e_0ᵀ``, ``E_i = Σ_s A_i[s] E_{i+1} A_i[s]†`` (rescaled to unit trace: only ratios
  are used) and ``H_i[s] = A_i[s] E_{i+1} A_i[s]†`` give ``P(s_i = s | s_<i) = num_s /
  (num_0 + num_1)`` with ``num_s = v H_i[s] v†``, and ``v ← v A_i[s_i] / √num_{s_i}``;
- **marginals**: left environments ``L_0 = e_0ᵀ e_0``, ``L_{i+1} = Σ_s A_i[s]† L_i A_i[s]``:
  ``P(s_i = s) ∝ Re tr(H_i[s] L_i)``;
- **amplitudes / probs** (``n ≤ 20``, oracle use): all ``2^n`` prefixes contracted site by site.

Every renormalization keeps numbers O(1) over thousands of sites. A truncated state (``max_bond``)
is described exactly: sampling, ``log_prob`` and conditionals are those of its own distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qhn.backends.base import DEFAULT_MEMORY_BUDGET, check_shots
from qhn.errors import ConfigError, MemoryBudgetError

__all__ = ["MAX_PROBS_QUBITS", "MPS"]

#: ``probs()`` enumerates ``2**n`` amplitudes; above this it is refused (oracle use only).
MAX_PROBS_QUBITS = 20


def _hermitian_sandwich(a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``a[s] e a[s]†`` for both ``s``. Shapes: a ``(..., χ, 2, χ)``, e ``(..., χ, χ)`` →
    ``(..., 2, χ, χ)``."""
    mats = a.transpose(-3, -2)  # (..., 2, χ, χ)
    return mats @ e.unsqueeze(-3) @ mats.conj().transpose(-2, -1)


def _unit_trace(m: torch.Tensor) -> torch.Tensor:
    trace = m.diagonal(dim1=-2, dim2=-1).sum(-1).real
    return m / trace.clamp_min(torch.finfo(trace.dtype).tiny)[..., None, None]


def _transfer(a: torch.Tensor) -> torch.Tensor:
    """``A[l, s, r]`` as ``(2χ, χ)`` matrices ``[(s, r), l]`` acting on column vectors:
    ``(B, n, χ, 2, χ)`` → ``(B, n, 2χ, χ)``."""
    b, n, chi = a.shape[0], a.shape[1], a.shape[2]
    return a.permute(0, 1, 3, 4, 2).reshape(b, n, 2 * chi, chi)


def _squared_norm(x: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """``Σ_χ |x|²`` over dim 1 into ``out``. Shapes: ``(B, χ, M)`` → ``(B, M)``."""
    if x.is_complex():
        torch.mul(x.real, x.real, out=scratch).addcmul_(x.imag, x.imag)
    else:
        torch.mul(x, x, out=scratch)
    return torch.sum(scratch, dim=1, out=out)


def _log_prob(a: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``log |⟨s|ψ⟩|²`` (no gradient): ``v ← A_i[s_i]ᵀ v``, renormalized at every site, the log
    norms summed. Shapes: a ``(B, n, χ, 2, χ)``, columns ``(n, B, 1, M)`` bool → ``(B, M)``."""
    batch, n, chi, count = a.shape[0], a.shape[1], a.shape[2], columns.shape[-1]
    real, kt = a.real.dtype, _transfer(a)
    v = torch.zeros(batch, chi, count, dtype=a.dtype, device=a.device)
    v[:, 0] = 1
    norms = torch.empty(n, batch, count, dtype=real, device=a.device)
    y = torch.empty(batch, 2 * chi, count, dtype=a.dtype, device=a.device)
    sq = torch.empty(batch, chi, count, dtype=real, device=a.device)
    scale = torch.empty(batch, count, dtype=real, device=a.device)
    spare = torch.empty_like(v)
    mask = torch.empty(batch, 1, count, dtype=a.dtype, device=a.device)
    pair = y.view(batch, 2, chi, count)
    for i in range(n):
        torch.matmul(kt[:, i], v, out=y)
        mask.copy_(columns[i])  # a 0/1 lerp weight: faster than a broadcast where
        torch.lerp(pair[:, 0], pair[:, 1], mask, out=spare)
        _squared_norm(spare, norms[i], sq)
        torch.rsqrt(norms[i], out=scale).nan_to_num_(posinf=1.0)
        v, spare = spare.mul_(scale.unsqueeze(1)), v
    return norms.log_().sum(0)


class _LogProb(torch.autograd.Function):
    """``log |⟨s|ψ⟩|²`` with an adjoint backward (no autograd tape over the ``n`` sites).

    With normalized left and right vectors ``L̃_i = ⟨0|A_0[s_0]⋯A_{i−1}[s_{i−1}]/‖·‖`` and
    ``R̃_{i+1}`` likewise from the right, and ``ã_i = L̃_i A_i[s_i] R̃_{i+1}``,
    ``∂ log|amp|² / ∂A_i[l, s_i, r] = L̃_i[l] R̃_{i+1}[r] / ã_i`` (the norms cancel), so torch's
    gradient (``2·conj(∂/∂A)`` for complex tensors) is ``2·conj(L̃ R̃ / ã)`` summed over the
    bitstrings with their incoming weights. One right sweep stores ``R̃``, one left sweep
    accumulates. Shapes: a ``(B, n, χ, 2, χ)``, columns ``(n, B, 1, M)`` → ``(B, M)``.
    """

    @staticmethod
    def forward(ctx, a, columns):  # type: ignore[override]
        ctx.save_for_backward(a, columns)
        return _log_prob(a, columns)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        a, columns = ctx.saved_tensors
        batch, n, chi, count = a.shape[0], a.shape[1], a.shape[2], columns.shape[-1]
        with torch.no_grad():
            rows = a.reshape(batch, n, chi * 2, chi)  # [(l, s), r]: acts on right vectors
            right = torch.empty(n, batch, chi, count, dtype=a.dtype, device=a.device)
            r = torch.zeros(batch, chi, count, dtype=a.dtype, device=a.device)
            r[:, 0] = 1
            for i in range(n - 1, -1, -1):
                right[i] = r  # R̃_{i+1}
                pair = torch.matmul(rows[:, i], r).view(batch, chi, 2, count)
                r = torch.lerp(pair[:, :, 0], pair[:, :, 1], columns[i].to(a.dtype))
                norm = (r.abs() ** 2).sum(1, keepdim=True).sqrt()
                r = r / torch.where(norm > 0, norm, torch.ones_like(norm))
            kt = _transfer(a)
            left = torch.zeros(batch, chi, count, dtype=a.dtype, device=a.device)
            left[:, 0] = 1
            grads = []
            for i in range(n):
                pair = torch.matmul(kt[:, i], left).view(batch, 2, chi, count)
                ones = columns[i].to(a.dtype)  # (B, 1, M)
                t = torch.lerp(pair[:, 0], pair[:, 1], ones)  # L̃_i A_i[s_i], (B, χ, M)
                amp = (t * right[i]).sum(1)  # ã_i, (B, M)
                weight = 2 * grad.to(a.dtype) / amp.conj()  # (B, M)
                w1 = weight.unsqueeze(1) * ones
                per_s = torch.stack([weight.unsqueeze(1) - w1, w1], 1)  # (B, 2, 1, M)
                g = torch.einsum(
                    "blm,bsrm->blsr", left.conj(), per_s * right[i].conj().unsqueeze(1)
                )
                grads.append(g)
                norm = (t.abs() ** 2).sum(1, keepdim=True).sqrt()
                left = t / torch.where(norm > 0, norm, torch.ones_like(norm))
        return torch.stack(grads, 1), None


@dataclass
class MPS:
    """``B`` matrix-product states (see the module docstring).

    Attributes:
        tensors: ``(B, n, χ, 2, χ)``, zero-padded.
        bonds: live bond dimensions, ``n + 1`` ints with ``bonds[0] = bonds[n] = 1``.
        discarded_weight: ``(B,)`` the sum over truncations of the discarded fraction of the
            squared norm ``ε_k = Σ_{discarded} σ² / Σ σ²`` (0 when exact).
        fidelity_bound: ``(B,)`` a lower bound on ``|⟨ψ_exact|ψ⟩|²``: each truncation (followed by
            renormalization) has infidelity exactly ``ε_k``, i.e. moves the state by the
            Fubini–Study angle ``arcsin √ε_k``; angles add (triangle inequality, unitaries keep
            them), so ``F ≥ cos²(min(π/2, Σ_k arcsin √ε_k))``. Total variation between the Born
            distributions is at most ``√(1 − F)``.
        batched: whether the parameters came with a batch dimension (outputs drop it if not).
    """

    tensors: torch.Tensor
    bonds: tuple[int, ...]
    discarded_weight: torch.Tensor
    fidelity_bound: torch.Tensor
    batched: bool = True
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    @property
    def n_qubits(self) -> int:
        return self.tensors.shape[1]

    @property
    def batch(self) -> int:
        return self.tensors.shape[0]

    @property
    def chi(self) -> int:
        """The padded bond dimension ``χ = max(bonds)``."""
        return self.tensors.shape[2]

    # ------------------------------------------------------------------ environments
    def _site_operators(self) -> torch.Tensor:
        """Per site ``[H[0] | H[1] | A[0] | A[1]]`` side by side: ``(B, n, χ, 4χ)``."""
        a = self.tensors
        batch, n, chi = a.shape[0], a.shape[1], a.shape[2]
        env = torch.zeros(batch, chi, chi, dtype=a.dtype, device=a.device)
        env[:, 0, 0] = 1
        envs = [env]
        for i in range(n - 1, 0, -1):
            h = _hermitian_sandwich(a[:, i], envs[-1])
            envs.append(_unit_trace(h.sum(-3)))
        right = torch.stack(envs[::-1], dim=1)  # E_{i+1} for i = 0..n−1
        h = _hermitian_sandwich(a, right)  # (B, n, 2, χ, χ)
        h = h.transpose(-3, -2).reshape(batch, n, chi, 2 * chi)
        return torch.cat([h, a.reshape(batch, n, chi, 2 * chi)], dim=-1)

    def _check_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """``(M, n)`` or ``(B, M, n)`` → ``(B, M, n)`` bool."""
        bits = torch.as_tensor(bits, device=self.tensors.device)
        n = self.n_qubits
        if bits.ndim == 2 and bits.shape[-1] == n:
            bits = bits.unsqueeze(0).expand(self.batch, -1, -1)
        if bits.ndim != 3 or bits.shape[0] != self.batch or bits.shape[-1] != n:
            raise ConfigError(
                f"bits must have shape (M, {n}) or ({self.batch}, M, {n}), got {tuple(bits.shape)}"
            )
        if bits.numel() and (int(bits.min()) < 0 or int(bits.max()) > 1):
            raise ConfigError("bits must be 0 or 1")
        return bits.to(torch.bool)

    def _check_sweep_memory(self, count: int, what: str) -> None:
        itemsize = self.tensors.element_size()
        needed = self.batch * count * (6 * self.chi * itemsize + 2 * self.n_qubits + 8)
        needed += 3 * self.tensors.numel() * itemsize
        if needed > self.memory_budget:
            raise MemoryBudgetError(
                f"{what} of {count:,} bitstrings on {self.n_qubits} qubits (batch {self.batch}, "
                f"bond dimension {self.chi}) needs ~{needed / 2**30:.2f} GiB, over the memory "
                f"budget of {self.memory_budget / 2**30:.2f} GiB; use fewer bitstrings per call"
            )

    def _conditionals(self, bits: torch.Tensor) -> torch.Tensor:
        """``P(s_i = 1 | s_<i)`` along ``bits`` ``(B, M, n)`` bool → ``(B, M, n)``, through the
        right environments (no decomposition, so plain autograd)."""
        ops = self._site_operators()
        batch, count, chi = self.batch, bits.shape[1], self.chi
        v = torch.zeros(batch, count, chi, dtype=self.tensors.dtype, device=self.tensors.device)
        v[..., 0] = 1
        conditionals = []
        for i in range(self.n_qubits):
            y = v @ ops[:, i]  # (B, M, 4χ): [v H[0] | v H[1] | v A[0] | v A[1]]
            vh = y[..., : 2 * chi].view(batch, count, 2, chi)
            num = (vh * v.conj().unsqueeze(-2)).real.sum(-1)  # (B, M, 2)
            conditionals.append(num[..., 1] / num.sum(-1))
            bit = bits[..., i]
            c = torch.where(bit, num[..., 1], num[..., 0])
            va = y[..., 2 * chi :].view(batch, count, 2, chi)
            nxt = torch.where(bit.unsqueeze(-1), va[..., 1, :], va[..., 0, :])
            alive = c > 0
            scale = torch.where(alive, c, torch.ones_like(c)).sqrt()
            v = torch.where(alive.unsqueeze(-1), nxt / scale.unsqueeze(-1), v)
        return torch.stack(conditionals, dim=-1)

    def _unbatch(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.batched else x[0]

    def _right_canonical(self) -> torch.Tensor:
        """The same states with every site right-orthonormal (``Σ_s A[s] A[s]† = I``), by an
        LQ sweep from the right; the norm is folded into site 0. ``(B, n, χ', 2, χ')``."""
        a, bonds = self.tensors, self.bonds
        batch, n = self.batch, self.n_qubits
        sites = [a[:, i, : bonds[i], :, : bonds[i + 1]] for i in range(n)]
        for i in range(n - 1, 0, -1):
            chi_l, chi_r = sites[i].shape[1], sites[i].shape[3]
            q, r = torch.linalg.qr(sites[i].reshape(batch, chi_l, 2 * chi_r).mT)
            sites[i] = q.mT.reshape(batch, q.shape[-1], 2, chi_r)
            sites[i - 1] = torch.einsum("blsr,brk->blsk", sites[i - 1], r.mT)
        sizes = [1] + [t.shape[1] for t in sites[1:]] + [1]
        chi = max(sizes)
        return torch.stack(
            [
                torch.nn.functional.pad(t, (0, chi - t.shape[3], 0, 0, 0, chi - t.shape[1]))
                for t in sites
            ],
            dim=1,
        )

    # ------------------------------------------------------------------ public API
    def sample(
        self,
        shots: int,
        generator: torch.Generator | None = None,
        *,
        return_log_prob: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Exact sequential sampling, all shots at once in right-canonical form: with ``v``
        normalized, ``P(s_i = s | s_<i) = |A_i[s]ᵀ v|²`` and ``v ← A_i[s_i]ᵀ v / ‖·‖``.

        Shapes: → bits ``(B, shots, n)`` uint8 (``(shots, n)`` if unbatched); with
        ``return_log_prob`` also the exact ``log q(bits)`` ``(B, shots)`` (no gradient).
        """
        check_shots(shots)
        self._check_sweep_memory(shots, "sampling")
        real = self.tensors.real.dtype
        u = torch.rand(
            self.n_qubits,
            self.batch,
            shots,
            generator=generator,
            dtype=real,
            device=self.tensors.device,
        )
        return self.sample_from_uniforms(u, return_log_prob=return_log_prob)

    def sample_from_uniforms(
        self,
        uniforms: torch.Tensor,
        *,
        rows: torch.Tensor | None = None,
        forced: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
        return_log_prob: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Sampling by inversion from given uniforms: ``s_i = 1`` iff ``u_i < P(s_i = 1 | s_<i)``.

        Shapes: ``uniforms`` ``(n, B, S)``; ``rows`` ``(M,)`` int64 picks the column of uniforms
        each output row uses (default: row ``m`` uses shot ``m``, ``M = S``); ``forced``
        ``(B, M, n)`` with ``start`` ``(M,)``: row ``r`` copies ``forced`` at sites
        ``< start[r]`` and samples the rest. Returns bits ``(B, M, n)`` uint8 (and ``log q``
        ``(B, M)``); unbatched states drop ``B``. Reusing one shot's uniforms for a different
        prefix samples the suffix from its exact conditional (the uniforms of sites ``> i`` are
        independent of ``s_≤i``), coupled to the original suffix — the local-expectation
        estimator's branches.
        """
        n, batch = self.n_qubits, self.batch
        count = uniforms.shape[2] if rows is None else rows.shape[0]
        if uniforms.ndim != 3 or uniforms.shape[:2] != (n, batch):
            raise ConfigError(
                f"uniforms must have shape ({n}, {batch}, S), got {tuple(uniforms.shape)}"
            )
        self._check_sweep_memory(count, "sampling")
        with torch.no_grad():
            a = self._right_canonical()
            chi = a.shape[2]
            kt = _transfer(a)
            real = a.real.dtype
            dev = a.device
            if forced is not None:
                forced = self._check_bits(forced).permute(2, 0, 1).contiguous()  # (n, B, M)
                start = torch.as_tensor(start, device=dev)
            bits = torch.empty(n, batch, count, dtype=torch.bool, device=dev)
            chosen = torch.empty(n if return_log_prob else 1, batch, count, dtype=real, device=dev)
            # Preallocated buffers written with out=: fresh ~MiB tensors per site cost page faults.
            y = torch.empty(batch, 2 * chi, count, dtype=a.dtype, device=dev)
            sq = torch.empty(batch, 2 * chi, count, dtype=real, device=dev)
            num = torch.empty(batch, 2, count, dtype=real, device=dev)
            scale = torch.empty(batch, count, dtype=real, device=dev)
            mask = torch.empty(batch, count, dtype=real, device=dev)
            vmask = torch.empty(batch, 1, count, dtype=a.dtype, device=dev)
            v = torch.zeros(batch, chi, count, dtype=a.dtype, device=dev)
            v[:, 0] = 1
            pair = y.view(batch, 2, chi, count)
            for i in range(n):
                c = chosen[i if return_log_prob else 0]
                torch.matmul(kt[:, i], v, out=y)
                if y.is_complex():
                    torch.mul(y.real, y.real, out=sq).addcmul_(y.imag, y.imag)
                else:
                    torch.mul(y, y, out=sq)
                # Right-canonical and ‖v‖ = 1: num_0 + num_1 = 1 up to rounding, so num_1 is
                # the conditional P(s_i = 1 | s_<i) itself.
                torch.sum(sq.view(batch, 2, chi, count), dim=2, out=num)
                u = uniforms[i] if rows is None else uniforms[i][:, rows]
                torch.lt(u, num[:, 1], out=bits[i])
                if forced is not None:
                    torch.where(start > i, forced[i], bits[i], out=bits[i])
                # Select with lerp by a 0/1 weight (exact at 0 and 1): much faster than a
                # broadcast torch.where on CPU.
                mask.copy_(bits[i])
                torch.lerp(num[:, 0], num[:, 1], mask, out=c)
                torch.rsqrt(c, out=scale)
                vmask.copy_(bits[i].unsqueeze(1))
                torch.lerp(pair[:, 0], pair[:, 1], vmask, out=v)
                v.mul_(scale.unsqueeze(1))
            out = self._unbatch(bits.permute(1, 2, 0).to(torch.uint8))
            if not return_log_prob:
                return out
            return out, self._unbatch(chosen.log().sum(0))

    def log_prob(self, bits: torch.Tensor) -> torch.Tensor:
        """Exact ``log q(s) = log |⟨s|ψ⟩|²``, differentiable in the tensors (the state is
        normalized: unitary gates, and truncations keep the norm). Along each bitstring
        ``v ← A_i[s_i]ᵀ v`` is renormalized at every site and the log norms are summed.

        Shapes: bits ``(M, n)`` or ``(B, M, n)`` → ``(B, M)`` (``(M,)`` if unbatched);
        ``-inf`` for a bitstring of probability 0.
        """
        bits = self._check_bits(bits)
        count = bits.shape[1]
        self._check_sweep_memory(count, "log_prob")
        if torch.is_grad_enabled() and self.tensors.requires_grad:
            # The backward pass keeps one right vector per site and bitstring.
            needed = self.batch * count * self.n_qubits * self.chi * self.tensors.element_size()
            if needed > self.memory_budget:
                raise MemoryBudgetError(
                    f"the gradient of log_prob of {count:,} bitstrings on {self.n_qubits} qubits "
                    f"(batch {self.batch}, bond dimension {self.chi}) keeps ~{needed / 2**30:.2f} "
                    f"GiB of right vectors, over the memory budget of "
                    f"{self.memory_budget / 2**30:.2f} GiB; use fewer bitstrings per call"
                )
        columns = bits.permute(2, 0, 1).unsqueeze(2).contiguous()  # (n, B, 1, M)
        if torch.is_grad_enabled() and self.tensors.requires_grad:
            return self._unbatch(_LogProb.apply(self.tensors, columns))
        with torch.no_grad():
            return self._unbatch(_log_prob(self.tensors, columns))

    def conditionals(self, bits: torch.Tensor) -> torch.Tensor:
        """``P(s_i = 1 | s_<i)`` along each bitstring, for every ``i`` (the autoregressive
        factors: ``q(s) = Π_i P(s_i | s_<i)``), differentiable.

        Shapes: bits ``(M, n)`` or ``(B, M, n)`` → ``(B, M, n)`` (``(M, n)`` if unbatched).
        """
        bits = self._check_bits(bits)
        self._check_sweep_memory(bits.shape[1], "conditionals")
        return self._unbatch(self._conditionals(bits))

    def marginals(self) -> torch.Tensor:
        """Single-bit marginals ``P(s_i = 1)``. Shapes: → ``(B, n)`` (``(n,)`` if unbatched)."""
        a = self.tensors
        ops = self._site_operators()
        batch, n, chi = self.batch, self.n_qubits, self.chi
        left = torch.zeros(batch, chi, chi, dtype=a.dtype, device=a.device)
        left[:, 0, 0] = 1
        lefts = [left]
        for i in range(n - 1):
            mats = a[:, i].transpose(-3, -2)  # (B, 2, χ, χ)
            nxt = (mats.conj().transpose(-2, -1) @ lefts[-1].unsqueeze(-3) @ mats).sum(-3)
            lefts.append(_unit_trace(nxt))
        lmat = torch.stack(lefts, dim=1)  # (B, n, χ, χ)
        h = ops[..., : 2 * chi].reshape(batch, n, chi, 2, chi).transpose(-3, -2)
        weight = (h * lmat.transpose(-2, -1).unsqueeze(2)).sum((-2, -1)).real  # tr(H L)
        return self._unbatch(weight[..., 1] / weight.sum(-1))

    def amplitudes(self) -> torch.Tensor:
        """The state vector ``⟨s|ψ⟩`` in qhn's index order (qubit 0 most significant), for
        oracle use. Shapes: → ``(B, 2**n)`` (``(2**n,)`` if unbatched). Refused above
        :data:`MAX_PROBS_QUBITS` qubits."""
        n, chi = self.n_qubits, self.chi
        if n > MAX_PROBS_QUBITS:
            raise ConfigError(
                f"probs() and amplitudes() enumerate 2**n entries and are refused for n = {n} > "
                f"{MAX_PROBS_QUBITS}; use sample(), log_prob() or marginals() instead"
            )
        needed = 3 * self.batch * 2**n * chi * self.tensors.element_size()
        if needed > self.memory_budget:
            raise MemoryBudgetError(
                f"the 2**{n} amplitudes (batch {self.batch}, bond dimension {chi}) need "
                f"~{needed / 2**30:.2f} GiB, over the memory budget; use a smaller batch"
            )
        a = self.tensors
        vecs = a[:, 0, 0]  # (B, 2, χ): the left boundary picks bond index 0
        for i in range(1, n):
            vecs = (vecs @ a[:, i].reshape(self.batch, chi, 2 * chi)).reshape(self.batch, -1, chi)
        return self._unbatch(vecs[..., 0])

    def probs(self) -> torch.Tensor:
        """The whole distribution ``|⟨s|ψ⟩|²`` in qhn's index order, for oracle use.
        Shapes: → ``(B, 2**n)`` (``(2**n,)`` if unbatched); ``n ≤`` :data:`MAX_PROBS_QUBITS`."""
        amps = self.amplitudes()
        p = amps.real**2 + amps.imag**2 if amps.is_complex() else amps**2
        return p / p.sum(-1, keepdim=True)
