"""Variance per unit of compute of the sampled gradient estimators at scale (issue 10, item 4).

Workload: ``hardware_efficient(n, layers)`` (RY + CZ chain) on the exact ``mps`` backend at random
angles, and ``f(s) = (1/n)·(Σ_q a_q z_q + Σ_q b_q z_q z_{q+1})`` with ``z = 1 − 2s`` and ``a, b``
standard normal (a cheap stand-in for a network's loss: what is measured is the estimators).

Estimators of ``∇θ E_q[f]`` (``P = (layers + 1)·n`` parameters), each repeated ``--repeats``
times independently (one batched call):

- ``local-expectation`` with ``S`` shots: ``S·(n + 1)`` evaluations of ``f``;
- ``score-function`` (leave-one-out baseline, exact ``log q``) with as many shots as the local
  expectation's evaluations: equal compute;
- ``parameter-shift`` from shots: ``K`` shots for each of the ``2P`` shifted circuits, ``2P·K``
  evaluations (the hardware path), sampled in chunks of shifted circuits.

Columns: evaluations of ``f`` per estimate (the unit of compute), ``tr Cov`` = total variance of
one estimate (sum over parameters of the sample variance over repeats), ``tr Cov × evals`` =
the variance the estimator would have at one evaluation's compute (lower is better; equal-cost
comparison), ``‖mean‖²`` for scale, and the median wall time per estimate. The machine is shared:
times are noisy.

Usage: ``python benchmarks/gradient_variance.py [--n 1210] [--layers 2] [--repeats 8] [--shots 1]
[--ps-shots 1] [--no-parameter-shift]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from qhn.backends.mps import MPSBackend
from qhn.circuits import hardware_efficient
from qhn.gradients.mps_estimators import evaluations, local_expectation, mps_score_function
from qhn.gradients.parameter_shift import combine_shifts, plan_shifts


def ising(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    b = torch.randn(n - 1, generator=g, dtype=torch.float64)

    def f(bits: torch.Tensor) -> torch.Tensor:
        z = 1 - 2 * bits.to(torch.float64)
        return (z @ a + (z[:, :-1] * z[:, 1:]) @ b) / n

    return f


def _batched(estimator, backend, circuit, theta, f, shots, repeats, seed):
    batch = theta.expand(repeats, -1).clone().requires_grad_(True)
    start = time.perf_counter()
    value = estimator(
        backend, circuit, batch, f, shots=shots, generator=torch.Generator().manual_seed(seed)
    )
    (grads,) = torch.autograd.grad(value.sum(), batch)
    return grads, (time.perf_counter() - start) / repeats


def parameter_shift_from_shots(backend, circuit, theta, f, shots, chunk, seed):
    """One estimate: ``shots`` shots of each of the ``2P'`` shifted circuits (in chunks)."""
    plan = plan_shifts(circuit, theta)
    shifted = plan.shifted[0]
    gen = torch.Generator().manual_seed(seed)
    values = []
    with torch.no_grad():
        for i in range(0, shifted.shape[0], chunk):
            bits = backend.state(plan.expanded, shifted[i : i + chunk]).sample(shots, gen)
            values.append(f(bits.reshape(-1, circuit.n_qubits)).view(-1, shots).mean(-1))
    return combine_shifts(plan, torch.cat(values).unsqueeze(0))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1210)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--shots", type=int, default=1, help="local-expectation shots")
    parser.add_argument("--ps-shots", type=int, default=1)
    parser.add_argument("--ps-repeats", type=int, default=3)
    parser.add_argument("--no-parameter-shift", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.n
    circuit = hardware_efficient(n, args.layers)
    theta = (
        torch.rand(
            circuit.n_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        * math.pi
    )
    f = ising(n, seed=1)
    backend = MPSBackend()
    le_evals = evaluations("local-expectation", n, args.shots)
    rows = []
    grads, secs = _batched(
        local_expectation, backend, circuit, theta, f, args.shots, args.repeats, 2
    )
    rows.append(("local-expectation", f"S={args.shots}", le_evals, grads, secs))
    grads, secs = _batched(
        mps_score_function, backend, circuit, theta, f, le_evals, args.repeats, 3
    )
    rows.append(("score-function", f"S={le_evals}", le_evals, grads, secs))
    if not args.no_parameter_shift:
        estimates, times = [], []
        for r in range(args.ps_repeats):
            start = time.perf_counter()
            estimates.append(
                parameter_shift_from_shots(backend, circuit, theta, f, args.ps_shots, 256, 10 + r)
            )
            times.append(time.perf_counter() - start)
        evals = 2 * len(circuit.rotations) * args.ps_shots
        rows.append(
            (
                "parameter-shift",
                f"K={args.ps_shots}",
                evals,
                torch.stack(estimates),
                sorted(times)[len(times) // 2],
            )
        )
    print(
        f"# hardware_efficient(n={n}, layers={args.layers}), P={circuit.n_params}, exact mps; "
        f"f = random-field Ising / n; repeats {args.repeats} (parameter shift {args.ps_repeats})"
    )
    print(
        f"{'estimator':18s} {'budget':>8s} {'evals':>8s} {'tr Cov':>11s} "
        f"{'tr Cov x evals':>15s} {'|mean|^2':>10s} {'s/estimate':>10s}"
    )
    for name, budget, evals, g, secs in rows:
        var = float(g.var(0).sum())
        print(
            f"{name:18s} {budget:>8s} {evals:8d} {var:11.4e} {var * evals:15.4e} "
            f"{float(g.mean(0).pow(2).sum()):10.3e} {secs:10.2f}"
        )


if __name__ == "__main__":
    main()
