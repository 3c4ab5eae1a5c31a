"""The parameter-shift batch of one step, with and without shared leading passes.

For each ``n`` and layer count, two tables:

- *sampled*: the ``2P' + 1`` circuits of a parameter-shift step (the unshifted one and every ±
  shift, as ``ParameterShift`` sends them) sampled with 256 shots each by
  ``StatevectorBackend.sample``; checks that both paths give the same bits;
- *exact*: the exact parameter-shift gradient of ``E_q[C]`` for a random cost vector
  (``ParameterShift().expectation`` with ``shots=None``: ``Σ_s q(s) C(s)`` for every shifted
  circuit); prints the largest gradient difference between the paths.

Each once simulating every circuit from scratch in chunks (the plain path) and once sharing the
common leading passes (:mod:`qhn.backends.shared_prefix`). Medians of ``--repeats``, wall and CPU
(``time.process_time``) seconds, alternating the two paths in one process, one torch thread.

Run: ``.venv/bin/python benchmarks/shared_prefix.py [--qubits 16 20 22] [--layers 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import qhn.backends.statevector as statevector
from qhn.backends.statevector import StatevectorBackend
from qhn.circuits import build_ansatz
from qhn.gradients.parameter_shift import ParameterShift, plan_shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[16, 20, 22])
    parser.add_argument("--layers", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shots", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    threshold = statevector.SHARED_PREFIX_MIN_QUBITS
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, 1 torch thread")
    print(f"medians of {args.repeats}; {args.shots} shots per circuit")
    columns = ["n", "layers", "circuits", "plain wall / CPU s", "shared wall / CPU s"]
    print("| " + " | ".join([*columns, "CPU ratio", "bits equal"]) + " |")
    print("|---|---|---|---|---|---|---|")
    backend = StatevectorBackend()
    for n in args.qubits:
        for layers in args.layers:
            circuit = build_ansatz("hardware_efficient", n, layers)
            generator = torch.Generator().manual_seed(1)
            theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
            plan = plan_shifts(circuit, theta)
            rows = torch.cat([plan.base.unsqueeze(1), plan.shifted], 1)
            rows = rows.reshape(-1, plan.n_occurrences)
            times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            bits: dict[bool, torch.Tensor] = {}
            for _ in range(args.repeats):
                for shared in (False, True):
                    statevector.SHARED_PREFIX_MIN_QUBITS = 0 if shared else 99
                    seed = torch.Generator().manual_seed(5)
                    wall, cpu = time.perf_counter(), time.process_time()
                    bits[shared] = backend.sample(plan.expanded, rows, args.shots, generator=seed)
                    times[shared].append((time.perf_counter() - wall, time.process_time() - cpu))
            statevector.SHARED_PREFIX_MIN_QUBITS = threshold
            med = {
                k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for k, v in times.items()
            }
            print(
                f"| {n} | {layers} | {rows.shape[0]} | {med[False][0]:.2f} / {med[False][1]:.2f} "
                f"| {med[True][0]:.2f} / {med[True][1]:.2f} | {med[False][1] / med[True][1]:.2f}x "
                f"| {torch.equal(bits[False], bits[True])} |"
            )
    exact_table(args, backend, threshold)


def exact_table(args: argparse.Namespace, backend: StatevectorBackend, threshold: int) -> None:
    print("\nexact parameter-shift gradient of E_q[C]")
    print("| n | layers | shifted circuits | plain wall / CPU s | shared wall / CPU s | CPU ratio "
          "| max abs grad diff |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n in args.qubits:
        for layers in args.layers:
            circuit = build_ansatz("hardware_efficient", n, layers)
            generator = torch.Generator().manual_seed(1)
            theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
            cost = torch.rand(2**n, dtype=torch.float64, generator=generator)
            times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            grads: dict[bool, torch.Tensor] = {}
            for _ in range(args.repeats):
                for shared in (False, True):
                    statevector.SHARED_PREFIX_MIN_QUBITS = 0 if shared else 99
                    params = theta.clone().requires_grad_(True)
                    wall, cpu = time.perf_counter(), time.process_time()
                    value = ParameterShift().expectation(backend, circuit, params, cost)
                    (grads[shared],) = torch.autograd.grad(value, params)
                    times[shared].append((time.perf_counter() - wall, time.process_time() - cpu))
            statevector.SHARED_PREFIX_MIN_QUBITS = threshold
            med = {
                k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for k, v in times.items()
            }
            gap = float((grads[False] - grads[True]).abs().max())
            print(
                f"| {n} | {layers} | {2 * plan_shifts(circuit, theta).n_occurrences} "
                f"| {med[False][0]:.2f} / {med[False][1]:.2f} "
                f"| {med[True][0]:.2f} / {med[True][1]:.2f} | {med[False][1] / med[True][1]:.2f}x "
                f"| {gap:.1e} |"
            )


if __name__ == "__main__":
    main()
