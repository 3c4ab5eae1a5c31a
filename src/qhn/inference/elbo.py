"""The evidence lower bound with an exact KL (needs the explicit distribution)."""

from __future__ import annotations

import torch

from qhn.errors import ConfigError
from qhn.inference.data_term import DataTerm
from qhn.inference.objective import (
    Access,
    ObjectiveBase,
    ObjectiveResult,
    base_metrics,
    neg_entropy,
)
from qhn.inference.priors import BernoulliPrior

__all__ = ["ELBO"]


class ELBO(ObjectiveBase):
    """``E_q[ℓ(s)] − β·KL(q_θ ‖ p)`` with ``KL = Σ_s q(s)[log q(s) − log p(s)]`` exact.

    ``β = 1`` is the true ELBO (``log p(D) ≥ ELBO``); other values are tempered variants. For the
    uniform prior ``KL = n ln 2 − H(q)``, so the ELBO is MLE plus an entropy bonus.
    """

    alternative = "selbo, the sample-based surrogate ELBO"
    name = "elbo"
    requires = Access.PROBS
    stochastic = False

    def __init__(self, data_term: DataTerm, prior: BernoulliPrior, beta: float = 1.0) -> None:
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0, got {beta}")
        super().__init__(data_term)
        self.prior = prior
        self.beta = float(beta)

    def __call__(self, model, *, generator: torch.Generator | None = None) -> ObjectiveResult:
        q = model.probs()
        data = q @ self.data_term.vector
        neg = neg_entropy(q.to(torch.promote_types(q.dtype, torch.float64)))
        kl = self.prior.kl_from(q, neg_entropy=neg)
        objective = data - self.beta * self.anneal * kl
        metrics = {
            "objective": float(objective.detach()),
            **base_metrics(data, self.data_term),
            "kl": float(kl.detach()),
            "entropy": -float(neg.detach()),
            "beta": self.beta * self.anneal,
        }
        return ObjectiveResult(loss=-objective, metrics=metrics)
