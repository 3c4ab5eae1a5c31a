"""The best distribution an exact objective can reach, against which a trained ``q_θ`` is measured.

Every exact objective ``f(q)`` is concave on the probability simplex (MLE is linear in ``q``, the
ELBO subtracts the convex ``KL(q ‖ p)``, the SELBO the convex quadratic ``MMD² = (q−p)ᵀK(q−p)``),
so its optimum over *all* distributions is a well-defined number that no circuit can beat.

- **ELBO, in closed form.** With ``q*_β(s) = p(s)·exp(ℓ(s)/β) / Z_β`` and
  ``Z_β = Σ_s p(s)·exp(ℓ(s)/β)``,

  ``E_q[ℓ] − β·KL(q ‖ p) = β·log Z_β − β·KL(q ‖ q*_β)``,

  so the optimum is ``β·log Z_β`` (``log p(D)`` at ``β = 1``: the ELBO is tight), reached only at
  the tempered posterior ``q*_β``, and the gap of any ``q`` is exactly ``β·KL(q ‖ q*_β)``.
  Its mode is the mode of ``p·exp(ℓ/β)``: for the uniform prior, an optimal network, but
  ``q*_β`` is *not* a point mass on the optimal set.
- **Any exact objective, numerically** (:func:`free_optimum`): L-BFGS over the logits of
  ``q = softmax(z)``, certified by the Frank–Wolfe bound of concavity,
  ``f* ≤ f(q) + max_s g(s) − q·g`` with ``g = ∇_q f(q)`` (:func:`frank_wolfe_bound`). The SELBO
  has no closed form; this brackets its optimum between the value reached and the bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from qhn.errors import ConfigError

__all__ = [
    "FreeOptimum",
    "exact_objective",
    "frank_wolfe_bound",
    "free_optimum",
    "kl_divergence",
    "tempered_posterior",
]


def tempered_posterior(
    data_vector: torch.Tensor, log_prior: torch.Tensor, beta: float = 1.0
) -> tuple[torch.Tensor, float]:
    """``log q*_β`` and the ELBO's optimum ``β·log Z_β`` (module docstring).

    Args:
        data_vector: ``ℓ(s)`` for every bitstring (``DataTerm.vector``), ``(2**n,)``.
        log_prior: ``log p(s)`` in the same order, ``(2**n,)``.
        beta: the KL weight ``β > 0`` (``β = 0`` is MLE, whose optimum is not unique).

    Shapes: returns ``(2**n,)`` float64 and a float.
    """
    if not beta > 0:
        raise ConfigError(f"beta must be > 0 for a tempered posterior, got {beta}")
    data_vector = torch.as_tensor(data_vector, dtype=torch.float64)
    log_prior = torch.as_tensor(log_prior, dtype=torch.float64)
    if data_vector.shape != log_prior.shape or data_vector.ndim != 1:
        raise ConfigError(
            f"data vector {tuple(data_vector.shape)} and log prior {tuple(log_prior.shape)} "
            "must be 1-D of the same length"
        )
    log_unnormalized = log_prior + data_vector / beta
    log_z = torch.logsumexp(log_unnormalized, 0)
    return log_unnormalized - log_z, float(beta * log_z)


def kl_divergence(q: torch.Tensor, log_r: torch.Tensor) -> float:
    """``KL(q ‖ r) = Σ_s q(s)·[log q(s) − log r(s)]`` with ``0·log 0 = 0``.

    Shapes: ``(2**n,)`` and ``(2**n,)`` → float.
    """
    q = torch.as_tensor(q, dtype=torch.float64)
    log_r = torch.as_tensor(log_r, dtype=torch.float64)
    return float((torch.special.xlogy(q, q) - torch.where(q > 0, q * log_r, 0.0)).sum())


class _Fixed:
    """A stand-in model whose distribution is a given vector (exact objectives read ``probs``)."""

    def __init__(self, q: torch.Tensor) -> None:
        self.q = q

    def probs(self) -> torch.Tensor:
        return self.q


def exact_objective(objective) -> Callable[[torch.Tensor], torch.Tensor]:
    """``q ↦ f(q)``, the value (to maximize) of an exact MLE/ELBO/SELBO objective at any
    distribution ``q`` — the objective's own code, differentiable in ``q``.

    Shapes: ``(2**n,)`` → ``()``.
    """
    if getattr(objective, "stochastic", False):
        raise ConfigError(f"{objective.name} from samples has no exact value at a distribution")
    return lambda q: -objective(_Fixed(q)).loss


def frank_wolfe_bound(f: Callable[[torch.Tensor], torch.Tensor], q: torch.Tensor) -> float:
    """An upper bound on ``max_q f`` over the simplex for a concave ``f``:
    ``f(q) + max_s g(s) − q·g`` with ``g = ∇_q f(q)``. Shapes: ``q`` is ``(2**n,)``."""
    q = torch.as_tensor(q, dtype=torch.float64).detach().requires_grad_(True)
    value = f(q)
    (g,) = torch.autograd.grad(value, q)
    return float(value.detach() + g.max() - q.detach() @ g)


@dataclass(frozen=True)
class FreeOptimum:
    """The best distribution found for ``f``: its value (a lower bound on ``max f``), the
    Frank–Wolfe upper bound at it, and ``q`` itself, ``(2**n,)``."""

    value: float
    upper: float
    q: torch.Tensor


def _frank_wolfe_step(f: Callable[[torch.Tensor], torch.Tensor], q: torch.Tensor) -> torch.Tensor:
    """Move ``q`` towards the vertex ``e_s`` of the largest gradient, by the best step of
    ``γ ∈ {1, 1/2, …, 2^−40}`` (``f`` is concave along the segment: within 2× of the best)."""
    q = q.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(q), q)
    q = q.detach()
    vertex = torch.zeros_like(q)
    vertex[int(torch.argmax(g))] = 1.0
    best, best_value = q, float(f(q))
    for k in range(41):
        candidate = q + 2.0**-k * (vertex - q)
        value = float(f(candidate))
        if value > best_value:
            best, best_value = candidate, value
    return best


def _lbfgs_round(
    f: Callable[[torch.Tensor], torch.Tensor], q: torch.Tensor, iterations: int
) -> torch.Tensor:
    """Up to ``iterations`` L-BFGS steps on the logits ``z = log q`` of ``softmax(z)``."""
    z = torch.log(q).requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [z], lr=1.0, max_iter=iterations, history_size=50, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = -f(torch.softmax(z, 0))
        loss.backward()
        return loss

    optimizer.step(closure)
    return torch.softmax(z.detach(), 0)


def free_optimum(
    f: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    *,
    rounds: int = 30,
    iterations: int = 50,
    tolerance: float = 1e-6,
) -> FreeOptimum:
    """Maximize a concave ``f`` over all distributions on ``size`` outcomes, from the uniform one.

    Rounds of up to ``iterations`` L-BFGS steps over the logits ``z`` of ``q = softmax(z)``, each
    followed by one Frank–Wolfe step: softmax cannot revive an outcome whose ``q(s)`` underflowed
    (its gradient ``q(s)·(g(s) − q·g)`` vanishes), the Frank–Wolfe step puts mass back on the best
    one. Stops once the Frank–Wolfe gap is below ``tolerance·(1 + |f|)``.
    """
    if rounds < 1 or iterations < 1:
        raise ConfigError(f"rounds and iterations must be >= 1, got {rounds}, {iterations}")
    q = torch.full((size,), 1.0 / size, dtype=torch.float64)
    for _ in range(rounds):
        q = _frank_wolfe_step(f, _lbfgs_round(f, q, iterations))
        value, upper = float(f(q)), frank_wolfe_bound(f, q)
        if upper - value <= tolerance * (1 + abs(value)):
            break
    return FreeOptimum(value, upper, q)
