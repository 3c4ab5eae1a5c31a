"""Predicting with a trained hypernetwork and measuring it (METHOD.md §4).

Three predictors: **mode** (the most probable network, or most frequent shot), **sample** (a random
draw; we report the expectation over draws), **BMA** (the Bayesian model average
``p(y|x) = E_q[p(y|x, s)]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qhn.bits import MAX_INDEX_BITS, bits_to_index, index_to_bits
from qhn.inference.objective import entropy
from qhn.models.network import DEFAULT_MAX_BYTES

__all__ = [
    "Support",
    "evaluate",
    "evaluate_with_support",
    "model_support",
    "support_from_probs",
    "support_from_samples",
]


@dataclass(frozen=True)
class Support:
    """A weighted set of networks standing for ``q``: indices ``(K,)`` and weights ``(K,)``
    summing to 1; ``covered`` is the probability mass of ``q`` they hold before renormalizing
    (1 for samples); ``probs`` is ``q`` itself ``(2**n,)`` when it is known exactly, else None."""

    indices: torch.Tensor
    weights: torch.Tensor
    covered: float
    probs: torch.Tensor | None = None

    def distribution(self, n_bits: int) -> torch.Tensor:
        """``q`` when known, else the weights spread over all ``2**n_bits`` indices.

        Shapes: ``(2**n_bits,)`` float64.
        """
        if self.probs is not None:
            return self.probs
        probs = torch.zeros(2**n_bits, dtype=torch.float64)
        probs[self.indices] = self.weights.to(torch.float64)
        return probs


def support_from_probs(
    q: torch.Tensor, mass: float = 1 - 1e-4, max_networks: int = 2048
) -> Support:
    """The fewest most-probable networks holding ``mass`` of ``q`` (at most ``max_networks``)."""
    q = q.detach()
    k = min(max_networks, q.numel())
    top, idx = torch.topk(q, k)
    cumulative = torch.cumsum(top, 0)
    keep = int(torch.searchsorted(cumulative, torch.tensor(mass, dtype=cumulative.dtype))) + 1
    keep = min(keep, k)
    covered = float(cumulative[keep - 1])
    return Support(idx[:keep], top[:keep] / top[:keep].sum(), covered, q)


def support_from_samples(bits: torch.Tensor) -> Support:
    """Empirical distribution of measured bitstrings ``(S, n)``."""
    index = bits_to_index(bits)
    unique, counts = torch.unique(index, return_counts=True)
    weights = counts.to(torch.float64) / counts.sum()
    return Support(unique, weights, 1.0)


def _predictor_metrics(
    network, bits: torch.Tensor, weights: torch.Tensor, mode_row: int, x, y, max_bytes: int
) -> dict[str, float]:
    """Mode, sample and BMA accuracy and mean NLL of the networks ``bits (K, n)`` weighted by
    ``weights (K,)`` on ``x (B, d)``, ``y (B,)``, in blocks of at most ``max_bytes`` scratch."""
    sums = network.prediction_sums(bits, weights, x, y, max_bytes=max_bytes)
    y = torch.as_tensor(y).long()
    n_examples = y.shape[0]
    acc_each = sums.correct / n_examples
    nll_each = sums.nll.to(torch.float64) / n_examples
    bma = sums.average
    bma_picked = bma.gather(1, y.view(-1, 1)).squeeze(-1)
    eps = torch.finfo(bma.dtype).tiny
    weights = weights.to(torch.float64)
    return {
        "acc_mode": float(acc_each[mode_row]),
        "nll_mode": float(nll_each[mode_row]),
        "acc_sample": float(weights @ acc_each),
        "nll_sample": float(weights @ nll_each),
        "acc_bma": float((bma.argmax(-1) == y).to(torch.float64).mean()),
        "nll_bma": float(-torch.log(bma_picked.clamp_min(eps)).mean()),
    }


def model_support(
    model,
    *,
    shots: int | None = None,
    generator: torch.Generator | None = None,
    bma_mass: float = 1 - 1e-4,
    bma_max_networks: int = 2048,
) -> tuple[Support, torch.Tensor | None]:
    """The networks standing for ``q``: its most probable ones when the model gives
    probabilities and ``shots`` is None (one probability vector), else ``shots`` (default 1024)
    measurements. Returns the support and the measured bits ``(shots, n)`` (None when exact)."""
    with torch.no_grad():
        if model.exact and shots is None:
            return support_from_probs(model.probs().detach(), bma_mass, bma_max_networks), None
        bits = model.sample(shots or 1024, generator=generator)
        return support_from_samples(bits), bits


def evaluate(
    model,
    task,
    *,
    landscape=None,
    shots: int | None = None,
    generator: torch.Generator | None = None,
    bma_mass: float = 1 - 1e-4,
    bma_max_networks: int = 2048,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, float]:
    """The metrics of :func:`evaluate_with_support` alone."""
    return evaluate_with_support(
        model,
        task,
        landscape=landscape,
        shots=shots,
        generator=generator,
        bma_mass=bma_mass,
        bma_max_networks=bma_max_networks,
        max_bytes=max_bytes,
    )[0]


def evaluate_with_support(
    model,
    task,
    *,
    landscape=None,
    shots: int | None = None,
    generator: torch.Generator | None = None,
    bma_mass: float = 1 - 1e-4,
    bma_max_networks: int = 2048,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[dict[str, float], Support]:
    """Final metrics of a trained model on a task, and the support they were computed on (pass it
    to :func:`qhn.plots.run.write_run_figures` so the figures spend nothing more on the backend).

    Exact when the model gives probabilities and ``shots`` is None; otherwise from ``shots``
    measurements. Returns: ``acc_{mode,sample,bma}_{train,test}``, ``nll_…`` likewise,
    ``expected_cost`` (``E_q[C]`` on train), ``expected_test_cost`` when known, ``entropy`` and
    ``kl_uniform`` ``= n ln 2 − H(q)`` (exact only), ``mass_optimal`` (needs ``landscape``),
    ``mode_index``, ``mode_probability``, ``support_size``, ``support_mass``, plus the model's
    executions and shots. The predictors never hold more than ``max_bytes`` of scratch at once,
    whatever the support size and the number of examples.
    """
    n = model.n_qubits
    if n > MAX_INDEX_BITS:
        from qhn.train.evaluate_samples import evaluate_from_samples

        return evaluate_from_samples(model, task, shots=shots, generator=generator), None
    out: dict[str, float] = {}
    support, sampled_bits = model_support(
        model,
        shots=shots,
        generator=generator,
        bma_mass=bma_mass,
        bma_max_networks=bma_max_networks,
    )
    with torch.no_grad():
        if sampled_bits is None:
            q = support.probs
            out["entropy"] = float(entropy(q))
            out["kl_uniform"] = n * math.log(2) - out["entropy"]
            mode_index = int(q.argmax())
            out["mode_probability"] = float(q[mode_index])
            if landscape is not None:
                out["expected_cost"] = float(q @ landscape.train_costs)
                if landscape.test_costs is not None:
                    out["expected_test_cost"] = float(q @ landscape.test_costs)
                out["mass_optimal"] = float(q[landscape.optimal_indices].sum())
        else:
            mode_index = int(support.indices[support.weights.argmax()])
            out["mode_probability"] = float(support.weights.max())
            if landscape is not None:
                sampled = bits_to_index(sampled_bits)
                out["expected_cost"] = float(landscape.train_costs[sampled].mean())
                if landscape.test_costs is not None:
                    out["expected_test_cost"] = float(landscape.test_costs[sampled].mean())
                elif task.has_test:  # a sampled run's landscape may leave the test costs out
                    out["expected_test_cost"] = float(task.test_cost(sampled_bits).mean())
                optimal = torch.zeros(2**n, dtype=torch.bool)
                optimal[landscape.optimal_indices] = True
                out["mass_optimal"] = float(optimal[sampled].to(torch.float64).mean())
        out["mode_index"] = mode_index
        out["support_size"] = int(support.indices.numel())
        out["support_mass"] = support.covered
        if "expected_cost" not in out:
            bits = index_to_bits(support.indices, n)
            out["expected_cost"] = float(support.weights @ task.cost(bits).to(torch.float64))
        if task.network is not None:
            indices = support.indices
            if not bool((indices == mode_index).any()):
                indices = torch.cat([indices, torch.tensor([mode_index])])
                weights = torch.cat([support.weights, torch.zeros(1, dtype=torch.float64)])
            else:
                weights = support.weights
            mode_row = int((indices == mode_index).nonzero()[0, 0])
            bits = index_to_bits(indices, n)
            for split, x, y in (
                ("train", task.x_train, task.y_train),
                ("test", task.x_test, task.y_test),
            ):
                if x is None:
                    continue
                metrics = _predictor_metrics(task.network, bits, weights, mode_row, x, y, max_bytes)
                out.update({f"{key}_{split}": value for key, value in metrics.items()})
    out.update(model.stats.snapshot())
    return out, support
