"""MLE, ELBO and SELBO of a whole-network MPS hypernetwork, from samples (METHOD.md §8).

The model is :class:`~qhn.mps_hypernetwork.MPSHypernetwork`: one exact MPS over all ``n`` bits,
so ``log q(s)`` and the conditionals are exact for any bitstring but ``q`` is never enumerated.
Each step draws ``S`` networks and a minibatch of ``B`` examples (as
:class:`~qhn.inference.sampled.SampledObjective`, whose data term
``ℓ̂(s) = −(N/T)·C_B(s)``, ``E[ℓ̂(s)] = ℓ(s)``, it reuses) and estimates every term as
``E_q[f]`` for one θ-independent ``f``, whose gradient is the local-expectation or score-function
estimate of :mod:`qhn.gradients.mps_estimators`:

- **MLE**: ``f = ℓ̂``.
- **ELBO** ``E_q[ℓ] − β·KL(q‖p)``, the KL by Monte Carlo with the exact ``log q`` of the MPS:
  ``KL = E_q[log q − log p]``, ``log p(s) = k(s) log π + (n − k(s)) log(1 − π)`` (``k`` the ones;
  uniform prior: ``log p = −n ln 2``). Its gradient, with ``g_θ(s) = log q_θ(s) − log p(s)``::

      ∇θ E_{q_θ}[g_θ] = Σ_s ∇q_θ(s)·g_θ(s) + Σ_s q_θ(s)·∇ log q_θ(s)
                      = ∇θ E_{q_θ}[g] |_{g fixed} + ∇θ Σ_s q_θ(s) = ∇θ E_{q_θ}[g] |_{g fixed},

  so the KL's gradient is the estimator's gradient of ``E_q[g]`` with ``g`` *held fixed* at the
  current θ (the score function: ``E_q[(log q − log p)∇ log q]``; the local expectation: ``g``
  at the sample and at each flipped branch, i.e. exact ``log q`` of the branches). One estimate
  serves the whole ELBO: ``f = ℓ̂ − β·(log q − log p)`` (``log q`` detached), and the mean of
  ``f`` over the shots is the unbiased ELBO estimate.
- **SELBO** ``E_q[ℓ] − λ·MMD²(q, p)``: a second, independent batch ``W`` of ``S`` shots gives
  the median-heuristic bandwidths (:func:`~qhn.inference.sampled.median_bandwidths`), the
  U-statistic ``MMD²`` (prior terms in closed form) and the witness ``w_W``; the gradient is
  ``∇MMD² = 2∇E_q[w]`` (METHOD.md §3), so ``f = ℓ̂ − 2λ·w_W``.

Values are honest estimates (``objective`` from the shots), gradients the estimator's.
"""

from __future__ import annotations

import math

import torch

from qhn.inference.kernels import HammingKernel
from qhn.inference.objective import ObjectiveResult, honest
from qhn.inference.priors import BernoulliPrior
from qhn.inference.sampled import ACCURACY_NETWORKS, SampledObjective, median_bandwidths

__all__ = ["MPSSampledObjective", "prior_log_prob"]


def prior_log_prob(bits: torch.Tensor, prior_p: float) -> torch.Tensor:
    """``log p(s)`` of the factorized Bernoulli prior ``p(s_i = 1) = prior_p``.

    Shapes: ``(S, n)`` → ``(S,)`` float64."""
    ones = bits.to(torch.float64).sum(-1)
    return ones * math.log(prior_p) + (bits.shape[-1] - ones) * math.log1p(-prior_p)


class MPSSampledObjective(SampledObjective):
    """The sampled objectives for :class:`~qhn.mps_hypernetwork.MPSHypernetwork` (module
    docstring); arguments as :class:`~qhn.inference.sampled.SampledObjective`. The gradient rule
    is the model's ``estimator_name``."""

    def __call__(self, model, *, generator: torch.Generator | None = None) -> ObjectiveResult:
        x, y = self.minibatch(generator)
        data_f = self.data_function(x, y)
        f = data_f
        metrics: dict[str, float] = {}
        penalty_value = torch.zeros((), dtype=torch.float64)
        weight = (self.beta if self.name == "elbo" else self.lam) * self.anneal
        if self.name == "elbo":

            def f(b: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    log_ratio = model.log_prob(b) - prior_log_prob(b, self.prior_p)
                return data_f(b) - weight * log_ratio

        elif self.name == "selbo":
            witness_batch = model.sample(self.shots, generator=generator)
            bandwidths = median_bandwidths(witness_batch, self.kernel_ratios)
            self.last_bandwidths = bandwidths
            kernel = HammingKernel(bandwidths)
            prior = BernoulliPrior(self.prior_p, model.n_qubits)
            mmd2 = kernel.mmd2_vs_prior(witness_batch, prior)

            def f(b: torch.Tensor) -> torch.Tensor:
                return data_f(b) - 2.0 * weight * kernel.witness(b, witness_batch, prior)

            penalty_value = weight * mmd2
            metrics["mmd2"] = float(mmd2)
            metrics["kernel_median_distance"] = 4.0 * bandwidths[0] / self.kernel_ratios[0]
        parts = model.estimate(f, self.shots, generator=generator)
        bits = parts.bits
        self.evaluations += parts.evaluations
        with torch.no_grad():
            data_value = (parts.values if f is data_f else data_f(bits)).mean()
            log_q = model.log_prob(bits)
            if self.name == "elbo":
                kl = (log_q - prior_log_prob(bits, self.prior_p)).mean()
                penalty_value = weight * kl
                metrics["kl"] = float(kl)
            objective = data_value - penalty_value
            predicted = self.task.network.predict_proba(bits[:ACCURACY_NETWORKS], x).argmax(-1)
            accuracy = (predicted == y).to(torch.float64).mean()
        loss = -honest(objective, parts.surrogate)
        metrics.update(
            {
                "acc_minibatch": float(accuracy),
                "objective": float(objective),
                "data_term": float(data_value),
                "expected_cost": float(-data_value / self.scale),
                "entropy_estimate": float(-log_q.mean()),
                "network_evaluations": float(self.evaluations),
            }
        )
        return ObjectiveResult(loss=loss, metrics=metrics)
