"""BayesBiNN: a mean-field Bernoulli posterior over binary weights trained by the Bayesian
learning rule (re-implemented from Meng, Bachmann & Khan, ICML 2020).

Each weight bit is ``w_i ∈ {−1, +1}`` (bit 1 ↔ ``+1``, then read through the network's alphabet)
with ``q(w_i = +1) = σ(2λ_i)``: ``λ`` are the natural parameters and ``μ = tanh(λ)`` the means.
The prior is a product Bernoulli in the same form, ``λ_0 = ½ logit(prior_p)``. The rule
minimizes ``F(λ) = E_q[(N/T)·C(w)] + KL(q ‖ p)``, the negative ELBO of our objectives, by

    λ ← (1 − α) λ + α (λ_0 − ĝ),    ĝ ≈ ∇_μ E_q[(N/T)·C(w)],

a natural-gradient step. ``ĝ`` comes from the Gumbel-softmax (concrete) relaxation with
temperature τ: ``ε ~ U(0, 1)``, ``δ = ½ log(ε / (1 − ε))``, ``w_r = tanh((λ + δ)/τ)``, and

    ĝ = (1/M) Σ_m s_m ⊙ ∇_{w_r} (N/T)·C(w_r^{(m)}),   s_m = (1 − w_r^{(m)}²) / (τ (1 − μ²)),

since ``∂w_r/∂λ = (1 − w_r²)/τ`` and ``∂μ/∂λ = 1 − μ²``; ``s`` is formed in log space so that it
stays finite when ``|λ|`` is large. At a fixed point ``λ = λ_0 − ∇_μ E_q[(N/T) C]``, which is the
stationarity condition of ``F`` over product distributions (exactly so as τ → 0).

Each step spends ``M`` (``mc_samples``) evaluations. Predictors: the product distribution itself
(mode, sample and BMA via :func:`qhn.train.evaluate.evaluate_with_support`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from qhn.baselines.common import (
    BaselineResult,
    ProductModel,
    bits_with,
    hyper_settings,
    real_loss,
    require_network,
)
from qhn.baselines.config import BaselineConfig
from qhn.data.tasks import Task

__all__ = ["log_sech2", "train_bayesbinn"]


def log_sech2(x: torch.Tensor) -> torch.Tensor:
    """``log(1 − tanh²(x)) = log sech²(x) = 2(log 2 − |x| − log(1 + e^{−2|x|}))``, exact for
    large ``|x|`` where ``1 − tanh²`` underflows."""
    a = x.abs()
    return 2 * (math.log(2.0) - a - torch.log1p(torch.exp(-2 * a)))


def bayesbinn_step(
    lam: torch.Tensor,
    lam0: float,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    weight: float,
    tau: float,
    alpha: float,
    samples: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, float]:
    """One Bayesian-learning-rule step; returns the new ``λ`` and the mean relaxed cost.

    ``loss_fn`` maps relaxed weights ``w_r (M, k)`` in ``(−1, 1)`` to costs ``(M,)``;
    ``weight`` is ``N/T``. Shapes: ``lam (k,)``.
    """
    eps = torch.rand(samples, lam.numel(), generator=generator, dtype=lam.dtype)
    eps = eps.clamp(1e-12, 1 - 1e-12)
    delta = 0.5 * torch.log(eps / (1 - eps))
    u = (lam + delta) / tau
    w = torch.tanh(u).detach().requires_grad_(True)
    costs = loss_fn(w)
    (grad,) = torch.autograd.grad(weight * costs.sum(), w)
    scale = torch.exp(log_sech2(u) - log_sech2(lam)) / tau
    g_hat = (scale * grad).mean(0)
    return (1 - alpha) * lam + alpha * (lam0 - g_hat), float(costs.detach().mean())


def train_bayesbinn(
    task: Task, config: BaselineConfig, record: Callable[[dict[str, Any]], None]
) -> BaselineResult:
    """Train ``restarts`` × (hyperparameter settings) BayesBiNN posteriors for ``steps`` each
    and keep the one whose mode has the lowest training cost (one evaluation each)."""
    network = require_network(task, "bayesbinn")
    generator = torch.Generator().manual_seed(config.seed)
    weight = task.n_train / task.temperature
    lam0 = 0.5 * math.log(config.prior_p / (1 - config.prior_p))
    settings = hyper_settings(network)
    total = config.restarts * len(settings) * config.steps
    evaluations, step = 0, 0
    best: tuple[float, torch.Tensor] | None = None
    for _ in range(config.restarts):
        for setting in settings:
            low, high = setting.alphabet
            free = list(setting.free)

            def loss_fn(w: torch.Tensor, setting=setting, low=low, high=high, free=free):
                values = torch.zeros(w.shape[0], network.n_bits, dtype=w.dtype)
                values[:, free] = low + (high - low) * (1 + w) / 2
                return real_loss(task, values, setting.activation)

            lam = config.init_scale * torch.randn(
                len(free), generator=generator, dtype=torch.float64
            )
            for _ in range(config.steps):
                lam, cost = bayesbinn_step(
                    lam,
                    lam0,
                    loss_fn,
                    weight=weight,
                    tau=config.tau,
                    alpha=config.resolved_lr,
                    samples=config.mc_samples,
                    generator=generator,
                )
                evaluations += config.mc_samples
                step += 1
                record(
                    {
                        "step": step,
                        "total": total,
                        "loss": cost,
                        "mean_abs_lambda": float(lam.abs().mean()),
                        "evaluations": evaluations,
                    }
                )
            p_free = torch.sigmoid(2 * lam)
            bits = bits_with(setting, (p_free >= 0.5)[None])
            mode_cost = float(task.cost(bits)[0])
            evaluations += 1
            if best is None or mode_cost < best[0]:
                p = bits.to(torch.float64)[0]
                p[free] = p_free
                best = (mode_cost, p)
    assert best is not None
    model = ProductModel(best[1])
    return BaselineResult(
        model, evaluations, step, {"kl": model.kl_to(config.prior_p), "mode_cost": best[0]}
    )
