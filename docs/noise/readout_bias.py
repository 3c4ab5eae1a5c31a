"""Bias of the naive and the readout-corrected MMD² estimates (docs/noise.md).

    python docs/noise/readout_bias.py [--repeats 200] [--shots 256]

For a fixed random circuit (hardware-efficient, one layer) on n = 6 and 9 qubits, shots come from
the ``noisy`` backend with gate noise at scale x (reference rates p1 = 0.001·x, p2 = 0.00375·x)
and readout flips; the target is the exact MMD² to the uniform prior of the *pre-readout*
distribution (the same backend's exact probabilities without readout). Each estimate is the
unbiased U-statistic from one batch of ``shots``; the table gives the mean over ``repeats``
independent batches, its standard error, and the z-score of the mean against the target.
"""

from __future__ import annotations

import argparse

import torch

from qhn.backends.registry import get_backend
from qhn.circuits import build_ansatz
from qhn.inference import BernoulliPrior, HammingKernel
from qhn.inference.readout_correction import ReadoutCorrectedKernel, confusion_matrices

CASES = [  # (n, x, readout01, readout10)
    (6, 0.0, 0.01, 0.01),
    (6, 0.0, 0.02, 0.02),
    (6, 0.0, 0.05, 0.05),
    (6, 0.0, 0.10, 0.10),
    (6, 0.0, 0.02, 0.08),
    (6, 2.0, 0.05, 0.05),
    (9, 0.0, 0.02, 0.02),
    (9, 0.0, 0.05, 0.05),
    (9, 2.0, 0.05, 0.05),
]


def row(n: int, x: float, r01: float, r10: float, repeats: int, shots: int) -> str:
    circuit = build_ansatz("hardware_efficient", n, 1)
    theta = torch.rand(
        circuit.n_params, generator=torch.Generator().manual_seed(n), dtype=torch.float64
    )
    theta = theta * 2 * torch.pi
    gates = {"p1": 0.001, "p2": 0.00375, "scale": x}
    prior, kernel = BernoulliPrior(0.5, n), HammingKernel()
    before = get_backend("noisy", noise=gates).probs(circuit, theta)
    truth = float(kernel.mmd2_exact(before, prior.probs_vector()))
    backend = get_backend("noisy", noise={**gates, "readout01": r01, "readout10": r10})
    batches = backend.sample(
        circuit, theta.expand(repeats, -1), shots, generator=torch.Generator().manual_seed(1)
    )
    corrected = ReadoutCorrectedKernel(kernel, confusion_matrices(r01, r10))
    cells = [f"| {n} | {x:g} | {r01:g} / {r10:g} | {truth:.5f} "]
    for k in (kernel, corrected):
        values = torch.stack([k.mmd2_vs_prior(b, prior) for b in batches])
        se = float(values.std()) / repeats**0.5
        z = (float(values.mean()) - truth) / se
        cells.append(f"| {float(values.mean()):.5f} ± {se:.5f} | {z:+.1f} ")
    return "".join(cells) + "|"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--shots", type=int, default=256)
    args = parser.parse_args()
    print(f"{args.repeats} batches of {args.shots} shots each; mean ± standard error of the mean")
    print()
    print("| n | x | readout01 / readout10 | MMD² before readout | naive | z | corrected | z |")
    print("|---|---|---|---|---|---|---|---|")
    for case in CASES:
        print(row(*case, args.repeats, args.shots))


if __name__ == "__main__":
    main()
