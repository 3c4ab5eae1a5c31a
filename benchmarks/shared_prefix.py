"""The parameter-shift batch of one step, with and without shared leading passes.

For each ``n`` and layer count, two tables:

- *sampled*: the ``2P' + 1`` circuits of a parameter-shift step (the unshifted one and every ±
  shift, as ``ParameterShift`` sends them) sampled with 256 shots each by
  ``StatevectorBackend.sample``; checks that both paths give the same bits;
- *exact*: the exact parameter-shift gradient of ``E_q[C]`` for a random cost vector
  (``ParameterShift().expectation`` with ``shots=None``: ``Σ_s q(s) C(s)`` for every shifted
  circuit); prints the largest gradient difference between the paths.

Three paths: simulating every circuit from scratch in chunks (*plain*), sharing the common
leading sweeps or passes (*shared*: :mod:`qhn.backends.sweep_shared`,
:mod:`qhn.backends.shared_prefix`), and sharing them while each ``±π/2`` pair comes from one
π-shifted circuit (*paired*, the default: :mod:`qhn.backends.shift_pairs`). Medians of
``--repeats``, wall and CPU (``time.process_time``) seconds, alternating the paths in one
process, one torch thread. Ratios are plain CPU over the path's.

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

PATHS = ("plain", "shared", "paired")


def _backend(path: str) -> StatevectorBackend:
    """The path's backend; the caller sets the sharing threshold (plain: never shares)."""
    return StatevectorBackend(shift_pairs=path == "paired")


def _threshold(path: str, default: int) -> int:
    return 99 if path == "plain" else 0 if default < 99 else default


def _medians(times: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in times.items()
    }


def _cells(med: dict[str, tuple[float, float]]) -> str:
    cells = [f"{med[p][0]:.2f} / {med[p][1]:.2f}" for p in PATHS]
    ratios = [f"{med['plain'][1] / med[p][1]:.2f}x" for p in PATHS[1:]]
    return " | ".join(cells + ratios)


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
    print(
        "| n | layers | circuits | plain wall / CPU s | shared wall / CPU s "
        "| paired wall / CPU s | shared ratio | paired ratio | shared bits equal "
        "| paired shots differing |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for n in args.qubits:
        for layers in args.layers:
            circuit = build_ansatz("hardware_efficient", n, layers)
            generator = torch.Generator().manual_seed(1)
            theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
            plan = plan_shifts(circuit, theta)
            rows = torch.cat([plan.base.unsqueeze(1), plan.shifted], 1)
            rows = rows.reshape(-1, plan.n_occurrences)
            times: dict[str, list[tuple[float, float]]] = {p: [] for p in PATHS}
            bits: dict[str, torch.Tensor] = {}
            for _ in range(args.repeats):
                for path in PATHS:
                    statevector.SHARED_PREFIX_MIN_QUBITS = _threshold(path, threshold)
                    backend, seed = _backend(path), torch.Generator().manual_seed(5)
                    wall, cpu = time.perf_counter(), time.process_time()
                    bits[path] = backend.sample(plan.expanded, rows, args.shots, generator=seed)
                    times[path].append((time.perf_counter() - wall, time.process_time() - cpu))
            statevector.SHARED_PREFIX_MIN_QUBITS = threshold
            differing = int((bits["plain"] != bits["paired"]).any(-1).sum())
            print(
                f"| {n} | {layers} | {rows.shape[0]} | {_cells(_medians(times))} "
                f"| {torch.equal(bits['plain'], bits['shared'])} "
                f"| {differing} of {bits['plain'].shape[0] * args.shots} |"
            )
    exact_table(args, threshold)


def exact_table(args: argparse.Namespace, threshold: int) -> None:
    print("\nexact parameter-shift gradient of E_q[C]")
    print(
        "| n | layers | shifted circuits | plain wall / CPU s | shared wall / CPU s "
        "| paired wall / CPU s | shared ratio | paired ratio | max abs grad diff shared "
        "| paired |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for n in args.qubits:
        for layers in args.layers:
            circuit = build_ansatz("hardware_efficient", n, layers)
            generator = torch.Generator().manual_seed(1)
            theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
            cost = torch.rand(2**n, dtype=torch.float64, generator=generator)
            times: dict[str, list[tuple[float, float]]] = {p: [] for p in PATHS}
            grads: dict[str, torch.Tensor] = {}
            for _ in range(args.repeats):
                for path in PATHS:
                    statevector.SHARED_PREFIX_MIN_QUBITS = _threshold(path, threshold)
                    backend, params = _backend(path), theta.clone().requires_grad_(True)
                    wall, cpu = time.perf_counter(), time.process_time()
                    value = ParameterShift().expectation(backend, circuit, params, cost)
                    (grads[path],) = torch.autograd.grad(value, params)
                    times[path].append((time.perf_counter() - wall, time.process_time() - cpu))
            statevector.SHARED_PREFIX_MIN_QUBITS = threshold
            gaps = [float((grads["plain"] - grads[p]).abs().max()) for p in PATHS[1:]]
            print(
                f"| {n} | {layers} | {2 * plan_shifts(circuit, theta).n_occurrences} "
                f"| {_cells(_medians(times))} | {gaps[0]:.1e} | {gaps[1]:.1e} |"
            )


if __name__ == "__main__":
    main()
