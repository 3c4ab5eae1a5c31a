"""Maximum likelihood (the original QHN objective): maximize ``E_q[ℓ(s)]``."""

from __future__ import annotations

import torch

from qhn.inference.data_term import DataTerm
from qhn.inference.objective import (
    Access,
    ObjectiveBase,
    ObjectiveResult,
    base_metrics,
    entropy,
)

__all__ = ["MLE"]


class MLE(ObjectiveBase):
    """``E_{s∼q_θ}[ℓ(s)]``: linear in ``q``, so its optimum is a point mass on the best network.

    Exact (``q·ℓ``, needs the distribution) when ``shots`` is None, else estimated from ``shots``
    measurements per circuit with the model's estimator (samples only: runs on hardware).
    """

    alternative = "shots=<int> (sample-based MLE)"
    name = "mle"

    def __init__(self, data_term: DataTerm, shots: int | None = None) -> None:
        super().__init__(data_term)
        self.shots = shots
        self.requires = Access.PROBS if shots is None else Access.SAMPLES
        self.stochastic = shots is not None

    def __call__(self, model, *, generator: torch.Generator | None = None) -> ObjectiveResult:
        if self.shots is None:
            q = model.probs()
            data = q @ self.data_term.vector
        else:
            data = model.expectation(self.data_term, shots=self.shots, generator=generator)
        metrics = {"objective": float(data.detach()), **base_metrics(data, self.data_term)}
        if self.shots is None:
            metrics["entropy"] = float(entropy(q.detach()))
        return ObjectiveResult(loss=-data, metrics=metrics)
