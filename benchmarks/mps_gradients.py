"""Gradient variance per unit of compute at n = 1,210 (digits10), whole-network MPS hypernetwork.

At the initial θ of ``examples/digits10_mps.toml`` (one 1,210-qubit RY + CZ chain, 1 entangling
layer, exact MPS), or at the trained θ of ``--run DIR``, the recipe's whole training gradient
(tempered ELBO: minibatched data term and the Monte Carlo KL with the exact MPS ``log q``,
:mod:`qhn.inference.mps_sampled`) is estimated ``--repeats`` times with independent samples and
minibatches. Printed per estimator: network evaluations per estimate, the total variance
``Σ_p Var(ĝ_p)``, ``variance × evaluations`` (the variance of an estimate that spends one
evaluation: lower is better at equal cost) and the median seconds per estimate (on a shared
machine: compare ratios, not seconds).

Estimators: ``local-expectation`` with ``S = 4`` (``4 × 1,211`` evaluations), the leave-one-out
``score-function`` at ``S = 4`` and at ``S = 4,844`` (the local expectation's evaluations).

Run: ``python benchmarks/mps_gradients.py [--repeats 12] [--run runs/digits10_mps]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qhn.experiments.config import load_config
from qhn.experiments.runner import build_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/digits10_mps.toml")
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument(
        "--run", default=None, help="a finished run directory: measure at its trained angles"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    built = build_run(load_config(args.config))
    model, objective = built.model, built.objective
    if args.run is not None:
        state = torch.load(f"{args.run}/checkpoint.pt", weights_only=False)
        model.load_state_dict(state["model"])
    n = model.n_qubits
    generator = torch.Generator().manual_seed(0)
    cases = [("local-expectation", 4), ("score-function", 4), ("score-function", 4 * (n + 1))]
    print(f"n = {n} bits, {model.theta.numel()} angles, batch {objective.batch_size}")
    print("| estimator | S | evaluations | Σ Var(ĝ) | Var × evaluations | s / estimate |")
    print("|---|---|---|---|---|---|")
    for name, shots in cases:
        model.estimator_name, objective.shots = name, shots
        grads, seconds = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            before = objective.evaluations
            result = objective(model, generator=generator)
            grads.append(torch.autograd.grad(-result.loss, model.theta)[0])
            seconds.append(time.perf_counter() - started)
            spent = objective.evaluations - before
        variance = float(torch.stack(grads).var(0).sum())
        print(
            f"| {name} | {shots} | {spent} | {variance:.4g} | {variance * spent:.4g} | "
            f"{statistics.median(seconds):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
