"""The surrogate ELBO: a Maximum Mean Discrepancy to the prior instead of the KL.

``SELBO = E_q[ℓ(s)] − λ·MMD²_k(q_θ, p)`` needs only measured bitstrings, so it trains on hardware.
"""

from __future__ import annotations

import torch

from qhn.errors import ConfigError
from qhn.inference.data_term import DataTerm
from qhn.inference.kernels import HammingKernel
from qhn.inference.objective import (
    Access,
    ObjectiveBase,
    ObjectiveResult,
    base_metrics,
    entropy,
    honest,
)
from qhn.inference.priors import BernoulliPrior

__all__ = ["SELBO"]


class SELBO(ObjectiveBase):
    """``E_q[ℓ] − λ·MMD²(q_θ, p)`` with a Hamming-distance Gaussian-mixture kernel.

    - ``shots=None``: exact, from the probability vector (``MMD² = (q−p)ᵀK(q−p)``), by autograd.
    - ``shots=S``: from samples only. The value is ``mean ℓ`` over a batch of ``S`` shots minus
      ``λ`` times the unbiased MMD² of that batch (prior terms in closed form when
      ``analytic_prior``). The gradient is one expectation of ``ℓ(s) − 2λ·w(s)`` through the
      model's estimator, where the witness ``w(s) = E_{s'∼q}k(s,s') − E_{t∼p}k(s,t)`` is held
      fixed at the current θ and estimated from that separate batch (METHOD.md §3), since
      ``∇MMD² = 2∇E_{s∼q_θ}[w(s)]`` for a symmetric kernel.
    """

    alternative = "shots=<int> (sample-based SELBO)"
    name = "selbo"

    def __init__(
        self,
        data_term: DataTerm,
        prior: BernoulliPrior,
        kernel: HammingKernel | None = None,
        lam: float = 1.0,
        shots: int | None = None,
        analytic_prior: bool = True,
    ) -> None:
        if not lam >= 0:
            raise ConfigError(f"lam must be >= 0, got {lam}")
        if shots is not None and (isinstance(shots, bool) or shots < 2):
            raise ConfigError(f"SELBO from samples needs shots >= 2, got {shots!r}")
        super().__init__(data_term)
        self.prior = prior
        self.kernel = kernel or HammingKernel()
        self.lam = float(lam)
        self.shots = shots
        self.analytic_prior = analytic_prior
        self.requires = Access.PROBS if shots is None else Access.SAMPLES
        self.stochastic = shots is not None

    def __call__(self, model, *, generator: torch.Generator | None = None) -> ObjectiveResult:
        lam = self.lam * self.anneal
        if self.shots is None:
            q = model.probs()
            data = q @ self.data_term.vector
            mmd2 = self.kernel.mmd2_exact(q, self.prior.probs_vector())
            objective = data - lam * mmd2
            extra = {"entropy": float(entropy(q.detach()))}
            loss = -objective
        else:
            batch = model.sample(self.shots, generator=generator)
            data = self.data_term(batch).mean()
            mmd2 = self.kernel.mmd2_vs_prior(
                batch,
                self.prior,
                unbiased=True,
                analytic_prior=self.analytic_prior,
                generator=generator,
            )
            objective = data - lam * mmd2

            def shifted_target(bits: torch.Tensor) -> torch.Tensor:
                witness = self.kernel.witness(bits, batch, self.prior)
                return self.data_term(bits) - 2 * lam * witness

            surrogate = model.expectation(shifted_target, shots=self.shots, generator=generator)
            loss = honest(-objective, -surrogate)
            extra = {}
        metrics = {
            "objective": float(objective.detach()),
            **base_metrics(data, self.data_term),
            "mmd2": float(mmd2.detach()),
            "lam": lam,
            **extra,
        }
        return ObjectiveResult(loss=loss, metrics=metrics)
