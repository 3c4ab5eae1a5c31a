"""The prior over bitstrings: a factorized Bernoulli distribution (METHOD.md §2).

``p(s) = Π_q π_q^{s_q} (1 − π_q)^{1 − s_q}`` with ``π_q = p(s_q = 1)``; uniform (``π = ½``) by
default. Every ``π_q`` must lie strictly inside ``(0, 1)``: a prior that rules a bitstring out
makes ``KL(q ‖ p)`` infinite for every ``q`` that gives it mass (a circuit almost always does), and
its gradient undefined. A deterministic bit belongs in the network, not in the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from qhn.bits import iter_bit_chunks
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.inference.entropy import neg_entropy as _neg_entropy

__all__ = ["BernoulliPrior"]

#: Bitstrings enumerated per chunk when building the log-probability vector.
_CHUNK = 2**16


class BernoulliPrior:
    """A factorized Bernoulli prior, ``p(s_q = 1) = π_q`` independently per bit.

    Args:
        probs: ``π``: one number for every bit (needs ``n_bits``), or one per bit.
            Each value strictly inside ``(0, 1)``.
        n_bits: the number of bits ``n``; optional when ``probs`` gives one value per bit
            (then it must agree).

    Shapes: ``probs`` is stored as ``(n,)`` float64.
    """

    def __init__(
        self, probs: float | Sequence[float] | torch.Tensor = 0.5, n_bits: int | None = None
    ) -> None:
        if n_bits is not None and (
            isinstance(n_bits, bool) or not isinstance(n_bits, int) or n_bits < 1
        ):
            raise ConfigError(f"n_bits must be a positive integer, got {n_bits!r}")
        try:
            pi = torch.as_tensor(probs, dtype=torch.float64).detach().cpu()
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"prior probs must be numbers in (0, 1), got {probs!r}") from exc
        if pi.ndim == 0:
            if n_bits is None:
                raise ConfigError("a single prior probability needs n_bits to say how many bits")
            pi = pi.expand(n_bits)
        elif pi.ndim != 1 or pi.numel() == 0:
            raise ConfigError(
                f"prior probs must be one number or a non-empty 1-D sequence, got shape "
                f"{tuple(pi.shape)}"
            )
        elif n_bits is not None and pi.numel() != n_bits:
            raise ConfigError(f"got {pi.numel()} prior probabilities for n_bits={n_bits}")
        bad = ~((pi > 0) & (pi < 1))
        if bool(bad.any()):
            q = int(bad.nonzero()[0, 0])
            raise ConfigError(
                f"prior probability of bit {q} is {float(pi[q])}; each must lie strictly "
                "inside (0, 1) (0 or 1 would make KL(q || p) infinite)"
            )
        self._probs = pi.clone()
        self._log_probs_vector: torch.Tensor | None = None

    @classmethod
    def uniform(cls, n_bits: int) -> BernoulliPrior:
        """The uniform prior ``p(s) = 2^{−n}`` (every ``π_q = ½``)."""
        return cls(0.5, n_bits)

    @property
    def n_bits(self) -> int:
        """The number of bits ``n``."""
        return self._probs.numel()

    @property
    def probs(self) -> torch.Tensor:
        """``π_q = p(s_q = 1)``. Shapes: ``(n,)`` float64 (a copy)."""
        return self._probs.clone()

    @property
    def is_uniform(self) -> bool:
        """Whether every ``π_q`` is exactly ½."""
        return bool((self._probs == 0.5).all())

    def __repr__(self) -> str:
        if self.is_uniform:
            return f"BernoulliPrior.uniform({self.n_bits})"
        return f"BernoulliPrior({self._probs.tolist()})"

    def _check_bits(self, bits: torch.Tensor) -> torch.Tensor:
        bits = torch.as_tensor(bits)
        if bits.ndim == 0 or bits.shape[-1] != self.n_bits:
            raise ConfigError(
                f"bits must have shape (..., {self.n_bits}) for this {self.n_bits}-bit prior, "
                f"got {tuple(bits.shape)}"
            )
        if bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
            raise ConfigError("bits must be 0 or 1")
        return bits

    def log_prob(self, bits: torch.Tensor) -> torch.Tensor:
        """``log p(s) = Σ_q [s_q log π_q + (1 − s_q) log(1 − π_q)]``.

        Shapes: ``(..., n)`` with entries in {0, 1} → ``(...)`` float64.
        """
        return self._log_prob(self._check_bits(bits))

    def _log_prob(self, bits: torch.Tensor) -> torch.Tensor:
        pi = self._probs.to(bits.device)
        log_on, log_off = torch.log(pi), torch.log1p(-pi)
        s = bits.to(torch.float64)
        return s @ (log_on - log_off) + log_off.sum()

    def sample(self, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Independent draws ``s ∼ p``. Shapes: returns ``(shots, n)`` uint8."""
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise ConfigError(f"shots must be a positive integer, got {shots!r}")
        u = torch.rand((shots, self.n_bits), generator=generator, dtype=torch.float64)
        return (u < self._probs).to(torch.uint8)

    def entropy(self) -> torch.Tensor:
        """``H(p) = −Σ_q [π_q log π_q + (1 − π_q) log(1 − π_q)]`` in nats. Shapes: ``()``."""
        pi = self._probs
        return -(pi * torch.log(pi) + (1 - pi) * torch.log1p(-pi)).sum()

    def _check_size(self, max_bytes: int) -> None:
        needed = (2**self.n_bits) * 8
        if needed > max_bytes:
            raise MemoryBudgetError(
                f"a probability vector over {self.n_bits} bits needs {needed} bytes, over the "
                f"budget of {max_bytes} bytes"
            )

    def log_probs_vector(self, *, max_bytes: int = 2**30) -> torch.Tensor:
        """``log p(s)`` for every bitstring, in basis-index order (``qhn.bits``).

        Shapes: returns ``(2**n,)`` float64. Refuses, before allocating, more than ``max_bytes``.
        Cached: the prior never changes.
        """
        self._check_size(max_bytes)
        if self._log_probs_vector is None:
            out = torch.empty(2**self.n_bits, dtype=torch.float64)
            for first, bits in iter_bit_chunks(self.n_bits, _CHUNK):
                out[first : first + bits.shape[0]] = self._log_prob(bits)
            self._log_probs_vector = out
        return self._log_probs_vector

    def probs_vector(self, *, max_bytes: int = 2**30) -> torch.Tensor:
        """``p(s)`` for every bitstring, in basis-index order (``qhn.bits``).

        Shapes: returns ``(2**n,)`` float64. Refuses, before allocating, more than ``max_bytes``.
        """
        return self.log_probs_vector(max_bytes=max_bytes).exp()

    def kl_from(self, q: torch.Tensor, *, neg_entropy: torch.Tensor | None = None) -> torch.Tensor:
        """``KL(q ‖ p) = Σ_s q(s) [log q(s) − log p(s)]``, exact, differentiable in ``q``.

        Entries with ``q(s) = 0`` contribute 0; there the gradient takes the finite
        value ``1 − log p(s)`` instead of ``−∞``, so a circuit sitting exactly on a zero of
        ``q`` (where ``∂q/∂θ = 0``) gets the correct zero gradient instead of ``NaN``.
        For the uniform prior this is ``n ln 2 · Σ_s q(s) − H(q)`` and needs no ``2**n``
        vector of its own.

        ``neg_entropy``: ``Σ_s q(s) log q(s)`` of the same ``q`` when the caller has it
        already (:func:`qhn.inference.entropy.neg_entropy`), so it is not computed twice.

        Shapes: ``(..., 2**n)`` → ``(...)``, in ``q``'s dtype promoted to at least float64.
        """
        q = torch.as_tensor(q)
        if q.ndim == 0 or q.shape[-1] != 2**self.n_bits:
            raise ConfigError(
                f"q must have shape (..., {2**self.n_bits}) for this {self.n_bits}-bit prior, "
                f"got {tuple(q.shape)}"
            )
        q = q.to(torch.promote_types(q.dtype, torch.float64))
        if neg_entropy is None:
            neg_entropy = _neg_entropy(q)
        if self.is_uniform:
            cross = -self.n_bits * math.log(2.0) * q.sum(-1)
        else:
            cross = q @ self.log_probs_vector().to(device=q.device, dtype=q.dtype)
        return neg_entropy - cross
