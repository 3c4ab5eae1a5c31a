"""Calibrate and check the sampled-step model of :mod:`qhn.experiments.step_cost`.

For each ``n`` and layer count: the CPU and wall seconds per circuit of
``StatevectorBackend.sample`` (256 shots, a batch of 4, one torch thread, median of 3, after a
warm-up call), the model's lower bound per circuit, and their ratio (≥ 1 means the bound holds);
then whole sampled parameter-shift steps (``fit``) against the predicted step. ``c`` of the model
is at most the smallest measured seconds per amplitude per ``n`` gates (in cache and beyond).

Run: ``.venv/bin/python benchmarks/step_cost.py [--qubits 16 18 20 22] [--layers 1 2 4]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from qhn.backends.statevector import StatevectorBackend
from qhn.circuits import build_ansatz
from qhn.experiments import runner
from qhn.experiments.config import RunConfig
from qhn.experiments.step_cost import predict_step_cost
from qhn.train import fit


def per_circuit(backend, circuit, repeats: int) -> tuple[float, float]:
    generator = torch.Generator().manual_seed(0)
    params = torch.rand(4, circuit.n_params, dtype=torch.float64, generator=generator) * 6.28
    backend.sample(circuit, params[:1], 256, generator=generator)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        backend.sample(circuit, params, 256, generator=generator)
        walls.append((time.perf_counter() - wall) / 4)
        cpus.append((time.process_time() - cpu) / 4)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[16, 18, 20, 22])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-qubits", type=int, nargs="+", default=[10, 14, 18])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, 1 torch thread")
    print("| n | layers | gates | wall ms | CPU ms | bound ms | CPU / bound | c measured (ns) |")
    print("|---|---|---|---|---|---|---|---|")
    backend = StatevectorBackend()
    for n in args.qubits:
        for layers in args.layers:
            circuit = build_ansatz("hardware_efficient", n, layers)
            wall, cpu = per_circuit(backend, circuit, args.repeats)
            bound = predict_step_cost(circuit, estimator="score-function", shots=256).seconds / 2
            c = cpu / (2**n * len(circuit.gates) / n)
            print(
                f"| {n} | {layers} | {len(circuit.gates)} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} "
                f"| {bound * 1e3:.1f} | {cpu / bound:.2f} | {c * 1e9:.2f} |"
            )
    print(
        "| n | circuits per step | predicted s | measured CPU s per step | measured / predicted |"
    )
    print("|---|---|---|---|---|")
    for n in args.step_qubits:
        config = RunConfig.from_dict(
            {
                "task": "teacher",
                "task_options": {"n_inputs": n - 1},
                "layers": 2,
                "objective": "selbo",
                "shots": 256,
                "train": {"steps": 3},
            }
        )
        built = runner.build_run(config)
        cost = predict_step_cost(built.circuit, estimator="parameter-shift", shots=256)
        cpu = time.process_time()
        fit(built.model, built.objective, config.train, checkpoint_seconds=None)
        step = (time.process_time() - cpu) / 3
        print(
            f"| {n} | {cost.circuits} | {cost.seconds:.3f} | {step:.3f} "
            f"| {step / cost.seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
