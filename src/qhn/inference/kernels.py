"""A kernel on bitstrings and the Maximum Mean Discrepancy it defines (METHOD.md §2, §3).

``k(s, t) = (1/m) Σ_j exp(−h(s, t) / (2σ_j))`` with ``h`` the Hamming distance (``σ`` acts like a
variance). Since ``k`` depends on ``h`` only, everything here works with a table of ``n + 1``
kernel values, and each Gaussian factorizes over bits: ``exp(−h/(2σ)) = Π_q e^{[s_q ≠ t_q]}``
with ``e = exp(−1/(2σ))``. That gives closed-form expectations under a factorized prior and an
exact MMD² through one Walsh–Hadamard transform (``O(2^n)`` memory, no ``2^n × 2^n`` matrix).

Sample sets are compressed to their distinct bitstrings with counts, and Gram matrices are
built in row blocks of at most ``block_elements`` entries, so memory stays bounded.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from qhn.bits import distinct_rows
from qhn.errors import ConfigError, MemoryBudgetError

if TYPE_CHECKING:
    from qhn.inference.priors import BernoulliPrior

__all__ = ["HammingKernel", "hamming_distances"]

DEFAULT_BANDWIDTHS = (0.5, 1.0, 2.0, 4.0)
#: Bits per Hadamard matrix in the Walsh–Hadamard transform (a 128×128 matrix product).
_HADAMARD_GROUP_BITS = 7
#: Widths whose Walsh spectrum (2**n floats) is kept between calls; wider ones are rebuilt.
_MAX_CACHED_SPECTRUM_BITS = 20


def _check_bits(bits: torch.Tensor, name: str, *, ndim: int | None = 2) -> torch.Tensor:
    """Validate a set of bitstrings ``(S, n)`` (or ``(..., n)`` when ``ndim`` is None)."""
    bits = torch.as_tensor(bits)
    if (ndim is not None and bits.ndim != ndim) or bits.ndim == 0:
        want = "(S, n)" if ndim == 2 else "(..., n)"
        raise ConfigError(f"{name} must have shape {want}, got {tuple(bits.shape)}")
    if bits.shape[-1] < 1:
        raise ConfigError(f"{name} has no bits: shape {tuple(bits.shape)}")
    if bits.is_floating_point() or bits.is_complex():
        if bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
            raise ConfigError(f"{name} must hold 0 or 1 only")
    elif bits.numel() and (int(bits.min()) < 0 or int(bits.max()) > 1):
        raise ConfigError(f"{name} must hold 0 or 1 only")
    return bits


def _check_widths(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ConfigError(
            f"{a_name} has {a.shape[-1]} bits per row but {b_name} has {b.shape[-1]}; "
            "both must be bitstrings of the same width"
        )


def _check_not_empty(samples: torch.Tensor, name: str, min_rows: int = 1) -> None:
    if samples.shape[0] < min_rows:
        raise ConfigError(
            f"{name} has {samples.shape[0]} samples; this estimator needs at least {min_rows}"
        )


def _check_prior(prior: BernoulliPrior, n_bits: int | None, name: str) -> torch.Tensor:
    """The prior's ``π`` as float64 ``(n,)``, checked against a width (``None``: any)."""
    pi = getattr(prior, "probs", None)
    if not isinstance(pi, torch.Tensor) or pi.ndim != 1:
        raise ConfigError(f"prior must be a BernoulliPrior, got {prior!r}")
    if n_bits is not None and pi.numel() != n_bits:
        raise ConfigError(f"the prior has {pi.numel()} bits but {name} has {n_bits} bits per row")
    return pi.to(torch.float64)


def hamming_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances ``h(a_i, b_j)``. Shapes: ``(S, n), (T, n)`` → ``(S, T)`` int64."""
    a, b = _check_bits(a, "a"), _check_bits(b, "b")
    _check_widths(a, b, "a", "b")
    return _distances(a.to(torch.float64), b.to(torch.float64))


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # h = |a| + |b| − 2 a·b: small integers, so exact in float64 and exact on conversion.
    h = torch.addmm(a.sum(-1, keepdim=True) + b.sum(-1), a, b.T, alpha=-2.0)
    return h.to(torch.int64)


def _distinct(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct rows as float64, how often each occurs, and where each input row went."""
    rows, inverse, counts = distinct_rows(bits)
    return rows.to(torch.float64), counts.to(torch.float64), inverse


@functools.cache
def _hadamard(n_bits: int) -> torch.Tensor:
    """The unnormalized ``2^n × 2^n`` Hadamard matrix ``⊗ [[1, 1], [1, −1]]`` (float64)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(n_bits):
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
    return h


def _walsh_hadamard(x: torch.Tensor, n_bits: int) -> torch.Tensor:
    """``H x`` along the last axis, ``H = ⊗_{q<n} [[1, 1], [1, −1]]``, differentiable.

    The bits are split into groups of at most ``_HADAMARD_GROUP_BITS`` and each group's small
    Hadamard matrix is applied with one matrix product: a few passes over the ``2^n`` array
    instead of ``n`` butterfly passes.
    """
    lead = x.shape[:-1]
    groups = [_HADAMARD_GROUP_BITS] * (n_bits // _HADAMARD_GROUP_BITS)
    if n_bits % _HADAMARD_GROUP_BITS:
        groups.append(n_bits % _HADAMARD_GROUP_BITS)
    x = x.reshape(*lead, *(2**g for g in groups))
    for offset, g in enumerate(groups):
        axis = len(lead) + offset
        h = _hadamard(g).to(device=x.device, dtype=x.dtype)
        x = torch.tensordot(x, h, dims=([axis], [0])).movedim(-1, axis)
    return x.reshape(*lead, 2**n_bits)


class HammingKernel:
    """``k(s, t) = (1/m) Σ_j exp(−h(s, t) / (2σ_j))``, a mixture of Gaussians on Hamming distance.

    Args:
        bandwidths: the ``σ_j`` (positive, finite); one number or a sequence.
        block_elements: the most Gram-matrix entries built at once (memory bound).

    ``k(s, s) = 1`` and ``0 < k ≤ 1``; each Gaussian is a positive-definite kernel on bitstrings
    (a tensor product of 2×2 blocks ``[[1, e], [e, 1]]`` with ``0 < e < 1``), so ``MMD² ≥ 0``
    exactly, while its unbiased sample estimate can dip below 0.
    """

    def __init__(
        self,
        bandwidths: float | Sequence[float] | torch.Tensor = DEFAULT_BANDWIDTHS,
        *,
        block_elements: int = 2**20,
    ) -> None:
        if isinstance(bandwidths, torch.Tensor):
            bandwidths = bandwidths.detach()
        if hasattr(bandwidths, "tolist"):  # a tensor or a numpy array
            bandwidths = bandwidths.tolist()
        if isinstance(bandwidths, numbers.Number):
            bandwidths = (bandwidths,)
        if isinstance(bandwidths, (str, bytes)) or not isinstance(bandwidths, Sequence):
            raise ConfigError(
                f"bandwidths must be a positive number or a sequence of them, got {bandwidths!r}"
            )
        if len(bandwidths) == 0:
            raise ConfigError("bandwidths must not be empty; the default is (0.5, 1, 2, 4)")
        for sigma in bandwidths:
            if (
                isinstance(sigma, bool)
                or not isinstance(sigma, numbers.Real)
                or not math.isfinite(sigma)
                or sigma <= 0
            ):
                raise ConfigError(
                    f"every bandwidth must be a positive finite number, got {sigma!r} "
                    f"in {tuple(bandwidths)}"
                )
        if (
            isinstance(block_elements, bool)
            or not isinstance(block_elements, int)
            or (block_elements < 1)
        ):
            raise ConfigError(f"block_elements must be a positive integer, got {block_elements!r}")
        self.bandwidths: tuple[float, ...] = tuple(float(s) for s in bandwidths)
        self.block_elements = block_elements
        self._decays = torch.tensor(
            [math.exp(-0.5 / s) for s in self.bandwidths], dtype=torch.float64
        )
        self._spectra: dict[int, torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"HammingKernel(bandwidths={self.bandwidths})"

    @property
    def decays(self) -> torch.Tensor:
        """``e_j = exp(−1/(2σ_j))``: each Gaussian's factor per differing bit. Shapes: ``(m,)``."""
        return self._decays.clone()

    def profile(self, n_bits: int) -> torch.Tensor:
        """The kernel as a function of Hamming distance: ``k(h)`` for ``h = 0..n``.

        Shapes: returns ``(n + 1,)`` float64.
        """
        h = torch.arange(n_bits + 1, dtype=torch.float64)
        sigma = torch.tensor(self.bandwidths, dtype=torch.float64)
        return torch.exp(-h[:, None] / (2.0 * sigma)).mean(-1)

    def gram(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``K_ij = k(a_i, b_j)``. Shapes: ``(S, n), (T, n)`` → ``(S, T)`` float64 (not chunked)."""
        a, b = _check_bits(a, "a"), _check_bits(b, "b")
        _check_widths(a, b, "a", "b")
        table = self.profile(a.shape[-1])
        return table[_distances(a.to(torch.float64), b.to(torch.float64))]

    # ---- sums over pairs, in bounded memory -------------------------------------------------

    def _row_sums(
        self, rows: torch.Tensor, cols: torch.Tensor, col_weights: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_j w_j k(rows_i, cols_j)`` for every row, building the Gram matrix in blocks."""
        table = self.profile(rows.shape[-1]).to(rows.device)
        block = max(1, self.block_elements // max(1, cols.shape[0]))
        out = torch.empty(rows.shape[0], dtype=torch.float64, device=rows.device)
        for start in range(0, rows.shape[0], block):
            stop = min(start + block, rows.shape[0])
            out[start:stop] = table[_distances(rows[start:stop], cols)] @ col_weights
        return out

    def _within(self, distinct: tuple[torch.Tensor, torch.Tensor], unbiased: bool) -> torch.Tensor:
        """``E k(s, s')`` within one sample: U-statistic (``i ≠ j``) or V-statistic (all pairs)."""
        rows, counts = distinct
        s = float(counts.sum())
        total = counts @ self._row_sums(rows, rows, counts)
        if unbiased:
            return (total - s) / (s * (s - 1))  # k(s, s) = 1 on the excluded diagonal
        return total / (s * s)

    def _two_sample(self, x: torch.Tensor, y: torch.Tensor, unbiased: bool) -> torch.Tensor:
        xu, xc, _ = _distinct(x)
        yu, yc, _ = _distinct(y)
        cross = xc @ self._row_sums(xu, yu, yc) / (x.shape[0] * y.shape[0])
        return self._within((xu, xc), unbiased) + self._within((yu, yc), unbiased) - 2.0 * cross

    def _check_pair(self, x: torch.Tensor, y: torch.Tensor, min_rows: int):
        x, y = _check_bits(x, "x"), _check_bits(y, "y")
        _check_widths(x, y, "x", "y")
        _check_not_empty(x, "x", min_rows)
        _check_not_empty(y, "y", min_rows)
        return x, y

    def mmd2_unbiased(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Unbiased U-statistic of ``MMD²`` between the distributions behind two samples.

        ``1/(S(S−1)) Σ_{i≠i'} k(x_i, x_i') + 1/(T(T−1)) Σ_{j≠j'} k(y_j, y_j')
        − 2/(ST) Σ_{i,j} k(x_i, y_j)``. Can be negative.

        Shapes: ``(S, n), (T, n)`` with ``S, T ≥ 2`` → ``()`` float64.
        """
        x, y = self._check_pair(x, y, 2)
        return self._two_sample(x, y, unbiased=True)

    def mmd2_biased(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """V-statistic of ``MMD²`` (all pairs, diagonals included): ``≥ 0``, biased upward by
        ``(1/S)(1 − E_q k(s, s')) + (1/T)(1 − E_p k(t, t'))``.

        Shapes: ``(S, n), (T, n)`` → ``()`` float64.
        """
        x, y = self._check_pair(x, y, 1)
        return self._two_sample(x, y, unbiased=False)

    # ---- exact MMD² between two distributions -----------------------------------------------

    def _spectrum(self, n_bits: int) -> torch.Tensor:
        """Eigenvalues of ``K`` on the Walsh basis: ``(1/m) Σ_j (1+e_j)^{n−|k|} (1−e_j)^{|k|}``
        at frequency ``k`` (``|k|`` its number of set bits), divided by ``2^n``."""
        if n_bits not in self._spectra:
            weight = torch.zeros(1, dtype=torch.uint8)
            for _ in range(n_bits):  # popcount of 0..2^n−1; symmetric in the bits, so order-free
                weight = torch.cat((weight, weight + 1))
            h = torch.arange(n_bits + 1, dtype=torch.float64)[:, None]
            e = self._decays
            by_weight = ((1 + e) ** (n_bits - h) * (1 - e) ** h).mean(-1) / 2.0**n_bits
            spectrum = by_weight[weight.long()]
            if n_bits > _MAX_CACHED_SPECTRUM_BITS:
                return spectrum
            self._spectra[n_bits] = spectrum
        return self._spectra[n_bits]

    def mmd2_exact(
        self, q: torch.Tensor, p: torch.Tensor, *, max_bytes: int = 2**30
    ) -> torch.Tensor:
        """Exact ``MMD² = (q − p)ᵀ K (q − p)`` between two distributions over all bitstrings.

        ``K`` is a mean of Kronecker products ``⊗_q [[1, e_j], [e_j, 1]]``, all diagonal in the
        (unnormalized) Walsh–Hadamard basis ``H``: ``MMD² = 2^{−n} Σ_k λ_k ((H d)_k)²`` with
        ``d = q − p`` and ``λ_k = (1/m) Σ_j (1+e_j)^{n−|k|}(1−e_j)^{|k|} > 0``: never negative,
        one transform for all bandwidths, done in ``⌈n/7⌉`` passes over the ``2^n`` entries
        (each a product with a 128×128 Hadamard block). Differentiable in ``q`` and ``p``.
        Refuses, before allocating, work arrays over ``max_bytes``.

        Shapes: ``(..., 2**n)`` and ``(..., 2**n)`` (broadcast) → ``(...)``.
        """
        q, p = torch.as_tensor(q), torch.as_tensor(p)
        if q.ndim == 0 or p.ndim == 0:
            raise ConfigError("q and p must be probability vectors of shape (..., 2**n)")
        size = q.shape[-1]
        n_bits = size.bit_length() - 1
        if size < 2 or 2**n_bits != size:
            raise ConfigError(f"q must have a power-of-two length 2**n with n >= 1, got {size}")
        if p.shape[-1] != size:
            raise ConfigError(
                f"q has length {size} but p has length {p.shape[-1]}; they must match"
            )
        try:
            lead = torch.broadcast_shapes(q.shape[:-1], p.shape[:-1])
        except RuntimeError as exc:
            raise ConfigError(
                f"q of shape {tuple(q.shape)} and p of shape {tuple(p.shape)} do not broadcast"
            ) from exc
        dtype = torch.promote_types(torch.promote_types(q.dtype, p.dtype), torch.float64)
        itemsize = torch.empty((), dtype=dtype).element_size()
        needed = 4 * math.prod(lead) * size * itemsize + size * 9
        if needed > max_bytes:
            raise MemoryBudgetError(
                f"exact MMD² over {n_bits} bits (batch {tuple(lead)}) needs about {needed} "
                f"bytes, over the budget of {max_bytes} bytes; use the sample estimators"
            )
        x = _walsh_hadamard(q.to(dtype) - p.to(dtype), n_bits)
        spectrum = self._spectrum(n_bits).to(device=x.device, dtype=dtype)
        return (x.square() * spectrum).sum(-1)

    # ---- prior expectations in closed form ---------------------------------------------------

    def expected_kernel_vs_prior(self, s: torch.Tensor, prior: BernoulliPrior) -> torch.Tensor:
        """``E_{t∼p} k(s, t) = (1/m) Σ_j Π_q [a_q + (1 − a_q) e_j]``, ``a_q = P(t_q = s_q)``.

        Evaluated as ``exp`` of a sum of per-bit logs, i.e. one small matrix product.
        For the uniform prior it is the constant ``(1/m) Σ_j ((1 + e_j)/2)^n``.

        Shapes: ``(..., n)`` → ``(...)`` float64.
        """
        s = _check_bits(s, "s", ndim=None)
        pi = _check_prior(prior, s.shape[-1], "s")
        e = self._decays
        log_if_one = torch.log(pi[:, None] + (1 - pi[:, None]) * e)  # (n, m): s_q = 1
        log_if_zero = torch.log((1 - pi[:, None]) + pi[:, None] * e)  # (n, m): s_q = 0
        logs = s.to(torch.float64) @ (log_if_one - log_if_zero) + log_if_zero.sum(0)
        return logs.exp().mean(-1)

    def expected_kernel_prior_prior(self, prior: BernoulliPrior) -> torch.Tensor:
        """``E_{t,t'∼p} k(t, t') = (1/m) Σ_j Π_q [b_q + (1 − b_q) e_j]``, ``b_q = π_q² + (1−π_q)²``.

        Shapes: returns ``()`` float64.
        """
        pi = _check_prior(prior, None, "the prior")
        b = pi.square() + (1 - pi).square()
        return torch.log(b[:, None] + (1 - b[:, None]) * self._decays).sum(0).exp().mean()

    # ---- MMD² against the prior and its witness ----------------------------------------------

    def witness(
        self,
        s: torch.Tensor,
        samples_q: torch.Tensor,
        prior: BernoulliPrior | None = None,
        *,
        samples_p: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The MMD witness ``w(s) = E_{s'∼q} k(s, s') − E_{t∼p} k(s, t)`` (METHOD.md §3).

        The ``q`` term is the mean over ``samples_q``, which should be a batch drawn apart from
        ``s`` (reusing it adds the diagonal ``k(s, s) = 1`` and biases the gradient). The ``p``
        term is in closed form from ``prior``, or the mean over ``samples_p``: give exactly one.

        Shapes: ``s (..., n)``, ``samples_q (S, n)``, ``samples_p (T, n)`` → ``(...)`` float64.
        """
        s = _check_bits(s, "s", ndim=None)
        samples_q = _check_bits(samples_q, "samples_q")
        _check_widths(s, samples_q, "s", "samples_q")
        _check_not_empty(samples_q, "samples_q")
        if (prior is None) == (samples_p is None):
            raise ConfigError("give exactly one of prior (closed form) and samples_p")
        flat = s.reshape(-1, s.shape[-1])
        if flat.shape[0] == 0:
            return torch.zeros(s.shape[:-1], dtype=torch.float64)
        rows, _, where = _distinct(flat)
        qu, qc, _ = _distinct(samples_q)
        on_q = self._row_sums(rows, qu, qc) / samples_q.shape[0]
        if samples_p is not None:
            samples_p = _check_bits(samples_p, "samples_p")
            _check_widths(s, samples_p, "s", "samples_p")
            _check_not_empty(samples_p, "samples_p")
            pu, pc, _ = _distinct(samples_p)
            on_p = self._row_sums(rows, pu, pc) / samples_p.shape[0]
        else:
            on_p = self.expected_kernel_vs_prior(rows, prior)
        return (on_q - on_p)[where].reshape(s.shape[:-1])

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
        """``MMD²(q, p)`` from samples of ``q`` only.

        With ``analytic_prior``: ``Ê k(s, s') − (2/S) Σ_i E_{t∼p} k(s_i, t) + E_{t,t'∼p} k(t, t')``,
        both prior terms in closed form and ``Ê`` the U-statistic (``unbiased``, needs
        ``S ≥ 2``; the whole estimate is then unbiased) or the V-statistic. Otherwise
        ``prior_shots`` (default ``S``) draws from the prior with ``generator`` and the
        two-sample estimator.

        Shapes: ``samples_q (S, n)`` → ``()`` float64.
        """
        samples_q = _check_bits(samples_q, "samples_q")
        _check_prior(prior, samples_q.shape[-1], "samples_q")
        if not analytic_prior:
            shots = samples_q.shape[0] if prior_shots is None else prior_shots
            samples_p = prior.sample(shots, generator=generator)
            estimator = self.mmd2_unbiased if unbiased else self.mmd2_biased
            return estimator(samples_q, samples_p)
        _check_not_empty(samples_q, "samples_q", 2 if unbiased else 1)
        qu, qc, _ = _distinct(samples_q)
        cross = qc @ self.expected_kernel_vs_prior(qu, prior) / samples_q.shape[0]
        within = self._within((qu, qc), unbiased)
        return within - 2.0 * cross + self.expected_kernel_prior_prior(prior)
