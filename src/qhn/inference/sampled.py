"""Objectives without enumeration, for block-factorized hypernetworks (METHOD.md §8 "Large n").

When ``2^n`` networks cannot be enumerated, each step draws ``S`` networks ``s^(j) ∼ q`` and a
minibatch ``M`` of ``B`` training examples (without replacement), and estimates

    ``ℓ̂(s) = −(N/T) · (1/B) Σ_{i∈M} c(x_i, y_i; s)``,  ``E[ℓ̂(s)] = ℓ(s) = −N·C(s)/T``,

so ``(1/S) Σ_j ℓ̂(s^(j))`` is an unbiased estimate of ``E_q[ℓ]`` (``B = N`` gives the full data).
Its gradient is the local-expectation or score-function rule of
:mod:`qhn.gradients.block_estimators`. The other terms:

- **ELBO**: ``KL(q‖p) = Σ_b KL(q_b‖p_b)`` exactly (block distributions), gradient by autograd;
- **SELBO**: ``MMD²(q, p)`` from the ``S`` shots (U-statistic, prior terms in closed form) with
  the Hamming kernel whose bandwidths follow the **median heuristic**: ``σ_j = r_j · h̃ / 4``,
  ``h̃`` the median Hamming distance between the step's shots (at least 1) and ``r_j`` the
  configured ``kernel_bandwidths`` (default ``(0.5, 1, 2, 4)``, so ``k`` at ``h = h̃`` is
  ``e^{−4}, e^{−2}, e^{−1}, e^{−1/2}``). A fixed ``σ ≤ 4`` would vanish at Hamming distances of
  hundreds. The gradient uses the witness ``w(s)`` from a second, independent batch of ``S``
  shots: ``∇MMD² = 2 ∇E_q[w]`` (METHOD.md §3), folded into ``f = ℓ̂ − 2λ·w``;
- **MLE**: the data term alone.

Values are honest estimates; gradients are the estimator's (``value + (sur − sur.detach())``).
Each step also records ``acc_minibatch``, the mean accuracy of (the first 16 of) the ``S`` sampled
networks on the step's minibatch (a cheap training curve).
"""

from __future__ import annotations

import torch

from qhn.errors import ConfigError, choices
from qhn.gradients.block_estimators import (
    BLOCK_ESTIMATORS,
    local_expectation_surrogate,
    score_function_surrogate,
)
from qhn.inference.kernels import HammingKernel, hamming_distances
from qhn.inference.objective import honest
from qhn.inference.priors import BernoulliPrior
from qhn.models.batched import minibatch_cost

__all__ = ["SAMPLED_OBJECTIVES", "SampledObjective", "median_bandwidths"]

SAMPLED_OBJECTIVES = ("mle", "elbo", "selbo")
#: Networks evaluated at once (bounded scratch memory, cache-sized blocks).
CHUNK = 512
#: Sampled networks whose minibatch accuracy is recorded each step (a cheap training curve).
ACCURACY_NETWORKS = 16


def median_bandwidths(shots: torch.Tensor, ratios: tuple[float, ...]) -> tuple[float, ...]:
    """``σ_j = r_j · h̃ / 4`` with ``h̃`` the median pairwise Hamming distance of ``shots (S, n)``
    (distinct pairs; at least 1)."""
    distances = hamming_distances(shots, shots).to(torch.float64)
    upper = distances[torch.triu_indices(*distances.shape, offset=1).unbind()]
    median = max(1.0, float(upper.median())) if upper.numel() else 1.0
    return tuple(r * median / 4.0 for r in ratios)


class SampledObjective:
    """MLE, ELBO or SELBO from ``shots`` sampled networks × minibatches of ``batch_size``.

    Args:
        kind: ``"mle"``, ``"elbo"`` or ``"selbo"``.
        task: a network task (its data, loss, ``N`` and ``T``).
        shots: ``S`` networks per step (≥ 2).
        batch_size: ``B`` examples per step (None: all ``N``).
        estimator: ``"local-expectation"`` or ``"score-function"``.
        beta, lam, prior_p, kernel_ratios: as the exact objectives; ``kernel_ratios`` are the
            ``r_j`` of the median heuristic.
    """

    requires = None
    stochastic = True

    def __init__(
        self,
        kind: str,
        task,
        *,
        shots: int,
        batch_size: int | None = None,
        estimator: str = "local-expectation",
        beta: float = 1.0,
        lam: float = 1.0,
        prior_p: float = 0.5,
        kernel_ratios: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
    ) -> None:
        if kind not in SAMPLED_OBJECTIVES:
            raise ConfigError(
                f"unknown objective {kind!r}; choose one of: {choices(SAMPLED_OBJECTIVES)}"
            )
        if estimator not in BLOCK_ESTIMATORS:
            raise ConfigError(
                f"estimator {estimator!r} cannot train a block-factorized hypernetwork from "
                f"samples; choose one of: {choices(BLOCK_ESTIMATORS)}"
            )
        if task.network is None:
            raise ConfigError(f"task {task.name!r} has no network to evaluate on minibatches")
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 2:
            raise ConfigError(f"shots must be an integer >= 2 (networks per step), got {shots!r}")
        if batch_size is not None and batch_size > task.n_train:
            batch_size = None
        self.name = kind
        self.task = task
        self.shots = shots
        self.batch_size = batch_size
        self.estimator = estimator
        self.beta, self.lam, self.prior_p = float(beta), float(lam), float(prior_p)
        self.kernel_ratios = tuple(float(r) for r in kernel_ratios)
        self.anneal = 1.0
        self.evaluations = 0
        self.last_bandwidths: tuple[float, ...] | None = None

    @property
    def scale(self) -> float:
        """``N / T``."""
        return self.task.n_train / self.task.temperature

    def check(self, model) -> None:
        """Nothing to refuse beyond what the model checked when it was built."""

    def state_dict(self) -> dict[str, object]:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.evaluations = int(state.get("evaluations", 0))  # type: ignore[arg-type]

    def minibatch(self, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``B`` training examples drawn without replacement. Shapes: ``(B, d)``, ``(B,)``."""
        x, y = self.task.x_train, self.task.y_train
        if self.batch_size is None:
            return x, y
        rows = torch.randperm(x.shape[0], generator=generator)[: self.batch_size]
        return x[rows], y[rows]

    def data_function(self, x: torch.Tensor, y: torch.Tensor):
        """``ℓ̂(s) = −(N/T)·C_B(s)`` on one minibatch. Shapes: bits ``(S, n)`` → ``(S,)``."""
        network, loss, scale = self.task.network, self.task.loss, self.scale

        def f(bits: torch.Tensor) -> torch.Tensor:
            return -scale * minibatch_cost(network, bits, x, y, loss)

        return f

    def __call__(self, model, *, generator: torch.Generator | None = None):
        from qhn.inference.objective import ObjectiveResult

        probs = model.block_probs()
        bits = model.sample(self.shots, generator=generator, probs=probs)
        x, y = self.minibatch(generator)
        data_f = self.data_function(x, y)
        f = data_f
        metrics: dict[str, float] = {}
        penalty_value = torch.zeros((), dtype=torch.float64)
        penalty_surrogate = torch.zeros((), dtype=torch.float64)
        if self.name == "elbo":
            kl = model.kl(self.prior_p, probs)
            weight = self.beta * self.anneal
            penalty_value, penalty_surrogate = weight * kl.detach(), weight * kl
            metrics["kl"] = float(kl.detach())
        elif self.name == "selbo":
            bandwidths = median_bandwidths(bits, self.kernel_ratios)
            self.last_bandwidths = bandwidths
            kernel = HammingKernel(bandwidths)
            prior = BernoulliPrior(self.prior_p, model.n_qubits)
            mmd2 = kernel.mmd2_vs_prior(bits, prior)
            witness_batch = model.sample(self.shots, generator=generator, probs=probs)
            weight = self.lam * self.anneal

            def f(b: torch.Tensor) -> torch.Tensor:
                return data_f(b) - 2.0 * weight * kernel.witness(b, witness_batch, prior)

            penalty_value = weight * mmd2
            metrics["mmd2"] = float(mmd2)
            metrics["kernel_median_distance"] = 4.0 * bandwidths[0] / self.kernel_ratios[0]
        if self.estimator == "local-expectation":
            surrogate, values, spent = local_expectation_surrogate(
                model, probs, bits, f, generator=generator
            )
        else:
            values = torch.cat([f(bits[i : i + CHUNK]) for i in range(0, bits.shape[0], CHUNK)])
            spent = bits.shape[0]
            surrogate = score_function_surrogate(model.log_prob(bits, probs), values)
        self.evaluations += spent
        data_values = values if f is data_f else data_f(bits)
        data_value = data_values.detach().mean()
        objective = data_value - penalty_value
        loss = -honest(objective, surrogate - penalty_surrogate)
        with torch.no_grad():
            shown = bits[:ACCURACY_NETWORKS]
            predicted = self.task.network.predict_proba(shown, x).argmax(-1)
            accuracy = (predicted == y).to(torch.float64).mean()
        metrics.update(
            {
                "acc_minibatch": float(accuracy),
                "objective": float(objective),
                "data_term": float(data_value),
                "expected_cost": float(-data_value / self.scale),
                "entropy": float(model.entropy(probs).detach()),
                "network_evaluations": float(self.evaluations),
            }
        )
        return ObjectiveResult(loss=loss, metrics=metrics)
