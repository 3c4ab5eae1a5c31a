"""A training step on the paper's small tasks: where per-operation overhead, not arithmetic,
sets the time.

For each task, objective and layer count: the median time of one step (objective, backward,
Adam) of ``fit`` over 120 steps, fitted three times, with the default adjoint gradient and with
plain autograd through the same passes (``StatevectorBackend(adjoint=False)``), in the same
process, and their ratio. One torch thread. The external peers (PennyLane's default.qubit and
lightning.qubit) on the same circuits' probabilities and gradients are in
``benchmarks/simulator.py``.

Run: ``.venv/bin/python benchmarks/training_step.py [--tasks teacher moons] [--layers 1 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qhn.backends import StatevectorBackend
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import build_run
from qhn.train import fit

STEPS = 120


def step_ms(config: RunConfig, adjoint: bool) -> float:
    """Median over three fits of the mean step time, in ms."""
    times = []
    for _ in range(4):  # the first fit warms caches up and is dropped
        built = build_run(config)
        if not adjoint:
            built.model.backend.inner = StatevectorBackend(adjoint=False)
        start = time.perf_counter()
        fit(built.model, built.objective, config.train)
        times.append((time.perf_counter() - start) / STEPS * 1e3)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["teacher", "moons"])
    parser.add_argument("--objectives", nargs="+", default=["mle", "elbo", "selbo"])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':>8} {'objective':>9} {'L':>2} {'bits':>4} "
          f"{'adjoint ms':>11} {'autograd ms':>12} {'ratio':>6}")  # fmt: skip
    for task in args.tasks:
        for objective in args.objectives:
            for layers in args.layers:
                config = RunConfig.from_dict(
                    {
                        "task": task,
                        "objective": objective,
                        "layers": layers,
                        "temperature": 2.0,
                        "train": {"steps": STEPS, "lr": 0.05},
                    }
                )
                bits = build_run(config).task.n_bits
                ours = step_ms(config, adjoint=True)
                plain = step_ms(config, adjoint=False)
                print(f"{task:>8} {objective:>9} {layers:2d} {bits:4d} "
                      f"{ours:11.2f} {plain:12.2f} {ours / plain:6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
