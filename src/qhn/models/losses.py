"""Per-example losses of a network's outputs, and the data term built from their mean.

Two losses (METHOD.md §1):

- ``cross_entropy``: the exact negative log-likelihood ``−log p(y | x, s)``, computed from the
  logits with log-sigmoid / log-softmax so that it stays finite and accurate for large logits;
- ``squared_error``: the reference QHN's Gaussian pseudo-likelihood. For a single sigmoid output
  it is ``(σ(z) − y)²``; for a softmax output ``Σ_k (p_k − [y = k])²``.

The mean of the per-example loss over a data set is the cost ``C(s)``; the data term is
``ℓ(s) = −N · C(s) / T``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qhn.errors import ConfigError, choices

__all__ = ["LOSSES", "check_loss", "data_term", "per_example_loss"]

LOSSES = ("cross_entropy", "squared_error")


def check_loss(loss: str) -> str:
    """Return ``loss`` if it is one of :data:`LOSSES`, else raise :class:`ConfigError`."""
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; choose one of: {choices(LOSSES)}")
    return loss


def per_example_loss(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """The loss of each example, from pre-sigmoid / pre-softmax outputs.

    ``logits[..., i, :]`` are the outputs for example ``i``: one column means a sigmoid output
    giving ``P(y = 1) = σ(z)``; ``K ≥ 2`` columns mean a softmax over ``K`` classes. ``y`` holds
    integer class labels (int64), already validated to lie in range.

    Shapes: ``logits (..., B, K)``, ``y (B,)`` → ``(..., B)``.
    """
    check_loss(loss)
    if logits.shape[-1] == 1:
        z = logits[..., 0]
        if loss == "cross_entropy":
            # −log σ(z) = softplus(−z), −log(1 − σ(z)) = softplus(z), softplus(t) = log(e^0 + e^t):
            # logaddexp is exact in both tails (F.softplus turns linear past a threshold).
            # The sign flip is a product with ±1 (exact, and cheaper than torch.where).
            sign = 1.0 - 2.0 * y.to(z.dtype)
            return torch.logaddexp(z * sign, z.new_zeros(()))
        return (torch.sigmoid(z) - y.to(z.dtype)) ** 2
    if loss == "cross_entropy":
        log_p = torch.log_softmax(logits, dim=-1)
        index = y.expand(log_p.shape[:-1]).unsqueeze(-1)
        return -torch.gather(log_p, -1, index).squeeze(-1)
    p = torch.softmax(logits, dim=-1)
    onehot = F.one_hot(y, logits.shape[-1]).to(p.dtype)
    return ((p - onehot) ** 2).sum(-1)


def data_term(
    mean_cost: torch.Tensor | float, n_examples: int, temperature: float = 1.0
) -> torch.Tensor:
    """The data term ``ℓ = −N · C / T`` (METHOD.md §1).

    Shapes: ``mean_cost (...)`` → ``(...)``.
    """
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        raise ConfigError(f"n_examples must be a positive integer, got {n_examples!r}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature!r}")
    if not isinstance(mean_cost, torch.Tensor):
        mean_cost = torch.tensor(mean_cost, dtype=torch.float64)
    return -n_examples * mean_cost / temperature
