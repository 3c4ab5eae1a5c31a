"""The evidence lower bound with an exact KL (needs the explicit distribution)."""

from __future__ import annotations

import torch

from qhn.errors import ConfigError
from qhn.inference.data_term import DataTerm
from qhn.inference.objective import (
    Access,
    ObjectiveResult,
    base_metrics,
    entropy,
    require_access,
)
from qhn.inference.priors import BernoulliPrior

__all__ = ["ELBO"]


class ELBO:
    """``E_q[ℓ(s)] − β·KL(q_θ ‖ p)`` with ``KL = Σ_s q(s)[log q(s) − log p(s)]`` exact.

    ``β = 1`` is the true ELBO (``log p(D) ≥ ELBO``); other values are tempered variants. For the
    uniform prior ``KL = n ln 2 − H(q)``, so the ELBO is MLE plus an entropy bonus.
    """

    name = "elbo"
    requires = Access.PROBS
    stochastic = False

    def __init__(self, data_term: DataTerm, prior: BernoulliPrior, beta: float = 1.0) -> None:
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0, got {beta}")
        self.data_term = data_term
        self.prior = prior
        self.beta = float(beta)
        self.anneal = 1.0

    def check(self, model) -> None:
        require_access(self, model, "selbo, the sample-based surrogate ELBO")

    def __call__(self, model, *, generator: torch.Generator | None = None) -> ObjectiveResult:
        q = model.probs()
        data = q @ self.data_term.vector
        kl = self.prior.kl_from(q)
        objective = data - self.beta * self.anneal * kl
        metrics = {
            "objective": float(objective.detach()),
            **base_metrics(data, self.data_term),
            "kl": float(kl.detach()),
            "entropy": float(entropy(q.detach())),
            "beta": self.beta * self.anneal,
        }
        return ObjectiveResult(loss=-objective, metrics=metrics)
