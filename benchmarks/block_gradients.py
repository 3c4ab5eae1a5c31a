"""Gradient variance per unit of compute at n = 1,210 (digits10), block-factorized hypernetwork.

At the initial θ of ``examples/digits10.toml`` (121 blocks of 10 qubits, 1 entangling layer), or
at the trained θ of ``--run DIR``, each estimator of ``∇θ E_q[ℓ̂]`` (the minibatched data term,
METHOD.md §8) is drawn ``--repeats`` times with independent samples and minibatches. Printed per
estimator: network evaluations per estimate, the total variance ``Σ_p Var(ĝ_p)`` and
``variance × evaluations`` (the variance of an estimate that spends one evaluation: lower is
better at equal cost), and the median seconds per estimate (the machine was shared when
measured: compare ratios, not seconds).

Estimators: ``local-expectation`` with ``S = 4`` networks (``4 × 1,211`` evaluations), the
``score-function`` with a leave-one-out baseline at ``S = 4`` and at ``S = 4,844`` (the same
evaluations as the local expectation).

Run: ``python benchmarks/block_gradients.py [--repeats 16] [--run runs/digits10]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qhn.experiments.config import load_config
from qhn.experiments.runner import build_run
from qhn.gradients.block_estimators import local_expectation_surrogate, score_function_surrogate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/digits10.toml")
    parser.add_argument("--repeats", type=int, default=16)
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
        grads, seconds = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            probs = model.block_probs()
            bits = model.sample(shots, generator=generator, probs=probs)
            f = objective.data_function(*objective.minibatch(generator))
            if name == "local-expectation":
                surrogate, _, spent = local_expectation_surrogate(
                    model, probs, bits, f, generator=generator
                )
            else:
                values = torch.cat([f(bits[i : i + 512]) for i in range(0, shots, 512)])
                surrogate = score_function_surrogate(model.log_prob(bits, probs), values)
                spent = shots
            grads.append(torch.autograd.grad(surrogate, model.theta)[0])
            seconds.append(time.perf_counter() - started)
        variance = float(torch.stack(grads).var(0).sum())
        print(
            f"| {name} | {shots} | {spent} | {variance:.4g} | {variance * spent:.4g} | "
            f"{statistics.median(seconds):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
