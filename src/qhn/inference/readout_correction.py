"""Readout-aware MMD: estimate the MMD² of the distribution *before* readout flips (METHOD.md §8).

Readout noise is a product channel: bit ``q`` is read through the confusion matrix
``A_q = [[1 − r01, r01], [r10, 1 − r10]]`` (row: true bit, column: read bit; the convention of
:class:`qhn.backends.noise_model.NoiseModel`), so a distribution ``q`` over true bitstrings is
observed as ``q' = Aᵀ q`` with ``A = ⊗_q A_q``. The Hamming kernel is a mixture of product
kernels, ``K = (1/m) Σ_j ⊗_q K_j`` with ``K_j = [[1, e_j], [e_j, 1]]``, ``e_j = exp(−1/(2σ_j))``.
With the per-bit tables

    pair:       K'_jq = A_q^{-1} K_j A_q^{-T}      (both arguments read through A)
    one-sided:  K"_jq = A_q^{-1} K_j               (first argument read, second exact)

one has ``q'ᵀ K' q'' = qᵀ K q₂`` and ``q'ᵀ K" p = qᵀ K p`` exactly, so the U-statistic with ``K'``
on observed shots, and ``K"`` against the exact prior, estimate the pre-readout ``MMD²(q, p)``
without bias; the witness built the same way carries an unbiased gradient. Each kernel value is a
product of ``n`` table entries, i.e. ``O(n)`` per pair; entries of ``K'`` can be negative, so
products are taken as ``sign · exp(Σ log|·|)`` with both sums as matrix products over one-hot bits.

A rate of ½ or more makes ``A_q`` singular or reverses the bit; such channels are refused.
"""

from __future__ import annotations

import math

import torch

from qhn.errors import ConfigError
from qhn.inference.kernels import (
    HammingKernel,
    _check_bits,
    _check_not_empty,
    _check_prior,
    _check_widths,
    _distinct,
)
from qhn.inference.priors import BernoulliPrior

__all__ = [
    "ReadoutCorrectedKernel",
    "check_readout_config",
    "check_readout_rates",
    "confusion_matrices",
    "correct_readout",
    "readout_confusion",
]

#: Backends whose readout rates come from the run's ``[noise]`` table.
NOISE_TABLE_BACKENDS = ("noisy", "qiskit:aer-noisy", "pennylane:default.mixed")
#: Prefixes of the backends whose readout rates come from a device: an offline snapshot, or a real
#: IBM device's current calibration.
DEVICE_PREFIXES = ("qiskit:fake_", "qiskit:ibm_")

#: log|0|, finite so that a zero table entry times a zero indicator stays 0 in the matmul.
_LOG_ZERO = -1.0e6


def check_readout_rates(r01: float, r10: float, where: str) -> None:
    """Refuse rates that make the correction ill-posed (one line naming the value)."""
    for name, rate in (("readout01", r01), ("readout10", r10)):
        if not (math.isfinite(rate) and 0.0 <= rate < 0.5):
            raise ConfigError(
                f"readout_correction needs readout rates in [0, 0.5), but {name} = {rate!r} "
                f"({where}); at 0.5 or more the confusion matrix is singular or flips the bit: "
                "set readout_correction = false"
            )


def confusion_matrices(r01: torch.Tensor | float, r10: torch.Tensor | float) -> torch.Tensor:
    """Per-bit confusion matrices ``A_q = [[1 − r01_q, r01_q], [r10_q, 1 − r10_q]]``.

    Shapes: rates ``(n,)`` or scalars → ``(n, 2, 2)`` or ``(2, 2)`` float64.
    """
    r01 = torch.as_tensor(r01, dtype=torch.float64)
    r10 = torch.as_tensor(r10, dtype=torch.float64)
    top = torch.stack((1 - r01, r01), -1)
    bottom = torch.stack((r10, 1 - r10), -1)
    return torch.stack((top, bottom), -2)


def check_readout_config(objective: str, backend: str, noise: dict) -> None:
    """Validate ``readout_correction = true`` up front (no SDK import): SELBO, and a backend
    whose readout rates are known and below ½."""
    if objective != "selbo":
        raise ConfigError(
            f"readout_correction corrects the MMD² of objective 'selbo'; objective {objective!r} "
            'has none: set objective = "selbo" or readout_correction = false'
        )
    if backend.startswith(DEVICE_PREFIXES):
        return  # the device's rates are read (and checked) when the backend is built
    if backend not in NOISE_TABLE_BACKENDS:
        raise ConfigError(
            f"readout_correction needs known readout rates, and backend {backend!r} has none: "
            f"use one of {', '.join(NOISE_TABLE_BACKENDS)} with a [noise] readout rate, or a "
            "qiskit:fake_* or qiskit:ibm_* device, or set readout_correction = false"
        )
    from qhn.backends.noise_model import NoiseModel

    model = NoiseModel.coerce(noise or None)
    if not model.has_readout:
        raise ConfigError(
            f"readout_correction = true but the [noise] table of backend {backend!r} sets no "
            "readout rate: add readout (or readout01/readout10), or set readout_correction = false"
        )
    check_readout_rates(model.readout01, model.readout10, "[noise]")


def readout_confusion(backend_spec: str, backend, noise: dict, circuit) -> torch.Tensor:
    """The readout channel a backend applies to ``circuit``'s bits: ``(2, 2)`` from the
    ``[noise]`` table, or ``(n, 2, 2)`` from a device's snapshot or calibration (the physical
    qubit each bit is measured on, through the transpiled layout)."""
    if backend_spec.startswith(DEVICE_PREFIXES):
        confusion = backend.readout_confusion(circuit)
        for q, a in enumerate(confusion):
            check_readout_rates(float(a[0, 1]), float(a[1, 0]), f"{backend_spec} bit {q}")
        return confusion
    from qhn.backends.noise_model import NoiseModel

    return NoiseModel.coerce(noise or None).confusion()


def correct_readout(objective, backend_spec: str, backend, noise: dict, circuit) -> None:
    """Give a SELBO ``objective`` the readout-corrected version of its kernel."""
    confusion = readout_confusion(backend_spec, backend, noise, circuit)
    objective.kernel = ReadoutCorrectedKernel(objective.kernel, confusion)


class ReadoutCorrectedKernel:
    """A :class:`HammingKernel` whose estimators undo a known product readout channel.

    Drop-in for the kernel of :class:`qhn.inference.selbo.SELBO`: :meth:`mmd2_vs_prior`,
    :meth:`witness` and :meth:`mmd2_exact` take *observed* (read-out) bitstrings or
    distributions and return the estimates for the pre-readout distribution.

    Args:
        kernel: the Hamming kernel to correct.
        confusion: ``(2, 2)`` (the same channel on every bit) or ``(n, 2, 2)`` confusion
            matrices, row: true bit, column: read bit; every rate must be below ½.
    """

    def __init__(self, kernel: HammingKernel, confusion: torch.Tensor) -> None:
        confusion = torch.as_tensor(confusion, dtype=torch.float64)
        if confusion.shape[-2:] != (2, 2) or confusion.ndim not in (2, 3):
            raise ConfigError(
                f"confusion must have shape (2, 2) or (n, 2, 2), got {tuple(confusion.shape)}"
            )
        if not torch.allclose(confusion.sum(-1), torch.ones(()).double(), atol=1e-12):
            raise ConfigError("every confusion matrix row (true bit) must sum to 1")
        flat = confusion.reshape(-1, 2, 2)
        for q, a in enumerate(flat):
            check_readout_rates(float(a[0, 1]), float(a[1, 0]), f"bit {q}")
        self.kernel = kernel
        self.confusion = confusion
        self.bandwidths = kernel.bandwidths
        self.block_elements = kernel.block_elements
        inverse = torch.linalg.inv(confusion)
        e = kernel.decays
        base = torch.stack(
            (torch.stack((torch.ones_like(e), e), -1), torch.stack((e, torch.ones_like(e)), -1)),
            -2,
        )  # (m, 2, 2)
        per_bit = confusion.ndim == 3
        inv = inverse.unsqueeze(0) if per_bit else inverse  # (1, n, 2, 2) or (2, 2)
        k = base[:, None] if per_bit else base  # (m, 1, 2, 2) or (m, 2, 2)
        self._one_sided = inv @ k
        self._pair = self._one_sided @ inv.transpose(-1, -2)
        self._plain = base[:, None].expand(-1, confusion.shape[0], 2, 2) if per_bit else base
        self._inverse = inverse

    def __repr__(self) -> str:
        return f"ReadoutCorrectedKernel({self.kernel!r}, confusion={self.confusion.tolist()})"

    # ---- tables ----------------------------------------------------------------------------

    def _tables(self, which: torch.Tensor, n_bits: int) -> torch.Tensor:
        """A table set as ``(m, n, 2, 2)`` for ``n_bits``, refusing a width mismatch."""
        if self.confusion.ndim == 3:
            if self.confusion.shape[0] != n_bits:
                raise ConfigError(
                    f"the readout channel has {self.confusion.shape[0]} bits but the samples "
                    f"have {n_bits} bits per row"
                )
            return which
        return which.unsqueeze(-3).expand(*which.shape[:-2], n_bits, 2, 2)

    def _prior_tables(self, prior: BernoulliPrior, n_bits: int) -> torch.Tensor:
        """``v_jq[x] = Σ_y K"_jq[x, y] p_q(y)`` as ``(m, n, 2, 2)`` (constant in the column)."""
        pi = _check_prior(prior, n_bits, "the samples")
        marginal = torch.stack((1 - pi, pi), -1)  # (n, 2)
        v = (self._tables(self._one_sided, n_bits) * marginal[None, :, None, :]).sum(-1)
        return v[..., None].expand(*v.shape, 2)

    def gram(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``K'(a_i, b_j)``, the corrected kernel between two sets of *observed* bitstrings.

        Shapes: ``(S, n), (T, n)`` → ``(S, T)`` float64 (not chunked).
        """
        a, b = _check_bits(a, "a"), _check_bits(b, "b")
        _check_widths(a, b, "a", "b")
        tables = self._tables(self._pair, a.shape[-1])
        return _product_block(a.to(torch.float64), b.to(torch.float64), tables)

    # ---- sums over pairs -------------------------------------------------------------------

    def _row_sums(
        self, rows: torch.Tensor, cols: torch.Tensor, weights: torch.Tensor, tables: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_c w_c k_T(rows_i, cols_c)`` in row blocks of at most ``block_elements`` pairs."""
        m = tables.shape[0]
        block = max(1, self.block_elements // max(1, cols.shape[0] * m))
        out = torch.empty(rows.shape[0], dtype=torch.float64)
        for start in range(0, rows.shape[0], block):
            stop = min(start + block, rows.shape[0])
            out[start:stop] = _product_block(rows[start:stop], cols, tables) @ weights
        return out

    def _against_vector(self, rows: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        """``(1/m) Σ_j Π_q T_jq[r_q, ·]`` for column-constant tables (a product vector)."""
        zero = torch.zeros(1, rows.shape[-1], dtype=torch.float64)
        return self._row_sums(rows, zero, torch.ones(1, dtype=torch.float64), tables)

    def _within(
        self, rows: torch.Tensor, counts: torch.Tensor, tables: torch.Tensor
    ) -> torch.Tensor:
        """U-statistic ``1/(S(S−1)) Σ_{i≠i'} k_T(x_i, x_i')`` from distinct rows and counts."""
        s = float(counts.sum())
        total = counts @ self._row_sums(rows, rows, counts, tables)
        diagonal = tables.diagonal(dim1=-2, dim2=-1)  # (m, n, 2): k_T(x, x) per bit
        self_pairs = counts @ self._against_vector(
            rows, diagonal[..., None].expand(*diagonal.shape, 2)
        )
        return (total - self_pairs) / (s * (s - 1))

    # ---- the estimators SELBO calls ----------------------------------------------------------

    def mmd2_vs_prior(
        self,
        samples_q: torch.Tensor,
        prior: BernoulliPrior,
        *,
        unbiased: bool = True,
        analytic_prior: bool = True,
        prior_shots: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Unbiased ``MMD²(q, p)`` of the pre-readout ``q`` from *observed* shots of ``q``.

        ``Ê_{K'} − 2·(1/S) Σ_i E_{t∼p} K"(s_i, t) + E_{t,t'∼p} k(t, t')``: the first term the
        U-statistic with the pair tables, the prior terms in closed form (``analytic_prior``) or
        from ``prior_shots`` exact prior draws (U-statistic within them, ``K"`` across).
        Only the unbiased (U-statistic) form is offered.

        Shapes: ``samples_q (S, n)``, ``S ≥ 2`` → ``()`` float64.
        """
        if not unbiased:
            raise ConfigError("the readout-corrected MMD² exists as the unbiased U-statistic only")
        samples_q = _check_bits(samples_q, "samples_q")
        n = samples_q.shape[-1]
        _check_prior(prior, n, "samples_q")
        _check_not_empty(samples_q, "samples_q", 2)
        qu, qc, _ = _distinct(samples_q)
        within = self._within(qu, qc, self._tables(self._pair, n))
        if analytic_prior:
            cross = qc @ self._against_vector(qu, self._prior_tables(prior, n)) / qc.sum()
            return within - 2.0 * cross + self.kernel.expected_kernel_prior_prior(prior)
        shots = samples_q.shape[0] if prior_shots is None else prior_shots
        samples_p = prior.sample(shots, generator=generator)
        _check_not_empty(samples_p, "prior samples", 2)
        pu, pc, _ = _distinct(samples_p)
        cross = qc @ self._row_sums(qu, pu, pc, self._tables(self._one_sided, n))
        cross = cross / (qc.sum() * pc.sum())
        return within + self._within(pu, pc, self._tables(self._plain, n)) - 2.0 * cross

    def witness(
        self,
        s: torch.Tensor,
        samples_q: torch.Tensor,
        prior: BernoulliPrior | None = None,
        *,
        samples_p: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Corrected witness ``w'(s) = E_{u∼q'} K'(s, u) − E_{t∼p} K"(s, t)`` at observed ``s``.

        ``E_{s∼q'_θ}[w'(s)]`` has the gradient ``(∇q)ᵀ K (q − p)`` of the pre-readout
        ``MMD²/2``, so parameter shift of ``ℓ − 2λw'`` carries SELBO's corrected gradient.
        ``samples_q`` (observed) should be drawn apart from ``s``; the prior term is in closed
        form from ``prior`` or the mean over exact draws ``samples_p``: give exactly one.

        Shapes: ``s (..., n)``, ``samples_q (S, n)``, ``samples_p (T, n)`` → ``(...)`` float64.
        """
        s = _check_bits(s, "s", ndim=None)
        samples_q = _check_bits(samples_q, "samples_q")
        _check_widths(s, samples_q, "s", "samples_q")
        _check_not_empty(samples_q, "samples_q")
        if (prior is None) == (samples_p is None):
            raise ConfigError("give exactly one of prior (closed form) and samples_p")
        n = s.shape[-1]
        flat = s.reshape(-1, n)
        if flat.shape[0] == 0:
            return torch.zeros(s.shape[:-1], dtype=torch.float64)
        rows, _, where = _distinct(flat)
        qu, qc, _ = _distinct(samples_q)
        on_q = self._row_sums(rows, qu, qc, self._tables(self._pair, n)) / qc.sum()
        if samples_p is not None:
            samples_p = _check_bits(samples_p, "samples_p")
            _check_widths(s, samples_p, "s", "samples_p")
            _check_not_empty(samples_p, "samples_p")
            pu, pc, _ = _distinct(samples_p)
            on_p = self._row_sums(rows, pu, pc, self._tables(self._one_sided, n)) / pc.sum()
        else:
            on_p = self._against_vector(rows, self._prior_tables(prior, n))
        return (on_q - on_p)[where].reshape(s.shape[:-1])

    def unread(self, probs: torch.Tensor) -> torch.Tensor:
        """The pre-readout distribution of an observed one: ``q = (⊗ A_q^{-T}) q'``.

        Shapes: ``(..., 2**n)`` → same. Differentiable.
        """
        from qhn.backends.noise_model import apply_matrix

        probs = torch.as_tensor(probs)
        lead, size = probs.shape[:-1], probs.shape[-1]
        n = size.bit_length() - 1
        inverse_t = self._tables(self._inverse[None], n)[0].transpose(-1, -2)  # (n, 2, 2)
        x = probs.reshape((-1,) + (2,) * n)
        for q in range(n):
            x = apply_matrix(x, inverse_t[q].to(x.dtype).unsqueeze(0), (1 + q,))
        return x.reshape(*lead, size)

    def mmd2_exact(
        self, q: torch.Tensor, p: torch.Tensor, *, max_bytes: int = 2**30
    ) -> torch.Tensor:
        """Exact pre-readout ``MMD²`` from the *observed* distribution ``q`` and an exact ``p``:
        :meth:`HammingKernel.mmd2_exact` of :meth:`unread` ``(q)`` and ``p``.

        Shapes: ``(..., 2**n)`` and ``(..., 2**n)`` → ``(...)``.
        """
        return self.kernel.mmd2_exact(self.unread(q), p, max_bytes=max_bytes)


def _product_block(rows: torch.Tensor, cols: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """``(1/m) Σ_j Π_q T_jq[r_q, c_q]`` for every pair.

    Shapes: ``rows (S, n)``, ``cols (T, n)`` float64 0/1, ``tables (m, n, 2, 2)`` → ``(S, T)``.
    Per Gaussian, ``Σ_q log|T_jq[r_q, c_q]|`` and the count of negative factors are each one
    matrix product of one-hot features ``[(1−r)·L₀₀, (1−r)·L₀₁, r·L₁₀, r·L₁₁] · [1−c, c, 1−c, c]ᵀ``.
    """
    absolute = tables.abs()
    logs = torch.where(absolute > 0, absolute.clamp_min(1e-300).log(), _LOG_ZERO)
    negative = (tables < 0).to(torch.float64)
    r0, r1 = 1 - rows, rows
    c0, c1 = 1 - cols, cols
    right = torch.cat((c0, c1, c0, c1), -1)  # (T, 4n)

    def features(values: torch.Tensor) -> torch.Tensor:  # (m, n, 2, 2) → (m, S, 4n)
        return torch.cat(
            (
                r0 * values[:, None, :, 0, 0],
                r0 * values[:, None, :, 0, 1],
                r1 * values[:, None, :, 1, 0],
                r1 * values[:, None, :, 1, 1],
            ),
            -1,
        )

    log_abs = features(logs) @ right.T  # (m, S, T)
    flips = features(negative) @ right.T
    sign = 1.0 - 2.0 * torch.remainder(flips.round(), 2.0)
    return (sign * log_abs.exp()).mean(0)
