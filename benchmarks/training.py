"""Training benchmarks of issue 4: the reference QHN reproduction and two timed runs.

1. **Reference reproduction** (METHOD.md §5–§6): the ``cost-vector`` task on
   ``../shared/data/binncode-mnist01/Cop_4x4.txt`` (17 bits, MNIST 0-vs-1 at 4×4), the
   ``qhn_reference`` ansatz with 2 layers, MLE on ``E_q[C]`` with L-BFGS (gradient tolerance 1e-6,
   up to 500 iterations: 25 steps of 20), ``--inits`` random initialisations uniform in [0, 2π).
   Printed: mean final ``E_q[C]`` and mean probability of the four near-optimal bitstrings (within
   7e-7 of the minimum), next to the reference's 310 stored runs (computed here from their files:
   0.326886 and 0.780).
2. **Exact ELBO**: the same 17-bit task, ``hardware_efficient`` 2 layers, 500 Adam steps.
3. **Sample-only SELBO**: the 10-bit ``teacher`` task behind a samples-only backend, 1024 shots,
   parameter-shift gradients, 200 Adam steps.

For the timed runs the wall time, circuit executions and shots are printed (one run each: these
are end-to-end times, so take them as indicative on a shared machine).

Usage: ``python benchmarks/training.py [--inits 10] [--skip-reference]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from qhn.backends import StatevectorBackend
from qhn.circuits import qhn_reference, reference_params_from_row
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import build_run
from qhn.train import fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binncode-mnist01"
COST_FILE = DATA / "Cop_4x4.txt"
NEAR_OPTIMAL_GAP = 7e-7


def near_optimal(costs: torch.Tensor) -> torch.Tensor:
    """Indices within 7e-7 of the minimum (METHOD.md §6: four bitstrings)."""
    return torch.nonzero(costs <= costs.min() + NEAR_OPTIMAL_GAP).flatten()


def reference_numbers(costs: torch.Tensor, near: torch.Tensor) -> tuple[float, float, int]:
    """Mean final E_q[C] and mean mass on the near-optimal set over the stored reference runs."""
    circuit = qhn_reference(17, 2)
    backend = StatevectorBackend()
    expected, mass = [], []
    for path in sorted((DATA / "params").glob("run*.txt")):
        rows = np.loadtxt(path, ndmin=2)
        params = torch.stack([reference_params_from_row(r, 17, 2) for r in rows])
        q = backend.probs(circuit, params)
        expected += (q @ costs).tolist()
        mass += q[:, near].sum(-1).tolist()
    return statistics.fmean(expected), statistics.fmean(mass), len(expected)


def timed_fit(config: RunConfig) -> tuple[float, dict, object]:
    built = build_run(config)
    start = time.perf_counter()
    result = fit(built.model, built.objective, config.train)
    return time.perf_counter() - start, result.final, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", type=int, default=10)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    if not COST_FILE.exists():
        print(f"reference data not found at {DATA}; skipping the reference reproduction")
    elif not args.skip_reference:
        costs = torch.tensor(np.loadtxt(COST_FILE), dtype=torch.float64)
        near = near_optimal(costs)
        ref_cost, ref_mass, ref_runs = reference_numbers(costs, near)
        finals, masses, seconds, iterations = [], [], [], []
        for seed in range(args.inits):
            config = RunConfig.from_dict(
                {
                    "task": "cost-vector",
                    "task_options": {"path": str(COST_FILE)},
                    "objective": "mle",
                    "ansatz": "qhn_reference",
                    "layers": 2,
                    "train": {"optimizer": "lbfgs", "lr": 1.0, "steps": 25, "seed": seed},
                }
            )
            took, _, built = timed_fit(config)
            with torch.no_grad():
                q = built.model.probs()
            finals.append(float(q @ costs))
            masses.append(float(q[near].sum()))
            seconds.append(took)
            iterations.append(built.model.stats.probability_vectors)
            print(
                f"  init {seed}: E_q[C] = {finals[-1]:.7f}, mass on the 4 near-optimal = "
                f"{masses[-1]:.3f}, {iterations[-1]} evaluations, {took:.1f} s"
            )
        print("\nReference reproduction (cost-vector Cop_4x4, qhn_reference L=2, MLE + L-BFGS)")
        print("| | runs | mean final E_q[C] | mean mass on 4 near-optimal | min E_q[C] |")
        print("|---|---|---|---|---|")
        print(
            f"| qhn | {len(finals)} | {statistics.fmean(finals):.6f} | "
            f"{statistics.fmean(masses):.3f} | {min(finals):.6f} |"
        )
        print(f"| reference (stored runs) | {ref_runs} | {ref_cost:.6f} | {ref_mass:.3f} | |")
        print("| target | | ≤ 0.32689 | ≥ 0.78 | |")
        print(f"median time per init {statistics.median(seconds):.1f} s")

    if COST_FILE.exists():
        config = RunConfig.from_dict(
            {
                "task": "cost-vector",
                "task_options": {"path": str(COST_FILE)},
                "objective": "elbo",
                "layers": 2,
                "train": {"steps": 500, "lr": 0.05},
            }
        )
        took, final, built = timed_fit(config)
        print(
            f"\nExact ELBO, 17 bits, hardware_efficient L=2, 500 Adam steps: {took:.2f} s "
            f"(target ≤ 20 s); {built.model.stats.circuit_executions} executions, 0 shots; "
            f"final ELBO {final['objective']:.5f}, E_q[C] {final['expected_cost']:.6f}"
        )

    config = RunConfig.from_dict(
        {
            "task": "teacher",
            "objective": "selbo",
            "backend": "sampled",
            "shots": 1024,
            "layers": 2,
            "train": {"steps": 200, "lr": 0.05},
        }
    )
    took, final, built = timed_fit(config)
    stats = built.model.stats
    print(
        f"Sample-only SELBO, {built.task.n_bits} bits, 1024 shots, parameter-shift, 200 Adam "
        f"steps: {took:.2f} s (target ≤ 60 s); {stats.circuit_executions} executions, "
        f"{stats.shots} shots; final E_q[C] estimate {final['expected_cost']:.5f}"
    )


if __name__ == "__main__":
    main()
