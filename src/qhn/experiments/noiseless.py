"""The trained distribution evaluated without noise or shots, for runs on any other backend.

A run on a noisy or sample-only backend reports metrics from its own measurements; to compare
what training *learned* across backends, the same angles θ are also evaluated exactly on the
ideal statevector simulator (no executions counted against the run).
"""

from __future__ import annotations

import torch

from qhn.backends.statevector import StatevectorBackend
from qhn.hypernetwork import QuantumHypernetwork
from qhn.train.evaluate import evaluate

__all__ = ["NOISELESS_KEYS", "noiseless_metrics"]

#: Summary keys written by :func:`noiseless_metrics`, and the metric each one copies.
NOISELESS_KEYS = {
    "expected_cost_noiseless": "expected_cost",
    "expected_test_cost_noiseless": "expected_test_cost",
    "mass_optimal_noiseless": "mass_optimal",
    "acc_bma_test_noiseless": "acc_bma_test",
}


def noiseless_metrics(built) -> dict[str, float]:
    """``E_q[C]`` (train and test), the mass on the optimal set and BMA test accuracy of the
    ideal ``q_θ = |⟨s|U(θ)|0⟩|²`` at the trained θ of ``built`` (a :class:`Run` whose task is
    enumerated: ``built.landscape`` is not None). Exact, from the probability vector."""
    ideal = QuantumHypernetwork(built.circuit, StatevectorBackend(), "backprop")
    with torch.no_grad():
        ideal.theta.copy_(built.model.theta.detach())
    metrics = evaluate(ideal, built.task, landscape=built.landscape)
    return {key: metrics[name] for key, name in NOISELESS_KEYS.items() if name in metrics}
