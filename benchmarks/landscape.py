"""Enumerate the 18-bit Gaussian-mixture landscape (METHOD.md §6) and time it against a plain loop.

Prints: the time of ``enumerate_costs`` for all 2^18 networks on 10,000 points (median of 3, with
its default single torch thread and with torch's own thread count); the time of the naive
per-network NumPy loop on a random subset, extrapolated to 2^18; their ratio; the batched
``BinaryNetwork.mean_loss`` on a subset, extrapolated; and the minimum mean squared error with its
degeneracy, activation and accuracy. ``--extra`` also times two other shapes in full: logistic
regression at MNIST size (17 bits, 12,665 points; the chunked batched fallback) and a two-hidden-
layer ``2 → 3 → 2 → 1`` network (20 bits, 10,000 points).

Run: ``.venv/bin/python benchmarks/landscape.py [--points 10000] [--subset 2000] [--extra]``.
The data are generated here (not with ``qhn.data``) so that the benchmark stands on its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from qhn.bits import bitstring, index_to_bits
from qhn.models import BinaryNetwork, enumerate_costs, enumerate_costs_naive

CLASS0_MEAN = (-1.0, -2.0)
CLASS1_MEANS = ((-2.0, 1.0), (1.0, 1.0), (2.0, -2.0))
VARIANCE = 0.1


def gaussian_mixture(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """METHOD.md §6: label 0 ~ N((−1,−2), 0.1·I); label 1 ~ an equal mix of N((−2,1)), N((1,1)),
    N((2,−2)), each 0.1·I; the two classes equally likely. Shapes: ``(N, 2)`` float64, ``(N,)``."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n_points,), generator=generator)
    component = torch.randint(0, 3, (n_points,), generator=generator)
    means = torch.where(
        labels[:, None] == 0,
        torch.tensor(CLASS0_MEAN, dtype=torch.float64),
        torch.tensor(CLASS1_MEANS, dtype=torch.float64)[component],
    )
    noise = torch.randn(n_points, 2, generator=generator, dtype=torch.float64)
    return means + VARIANCE**0.5 * noise, labels


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--subset", type=int, default=2_000, help="networks in the naive loop")
    parser.add_argument("--batched", type=int, default=8_192, help="networks in the batched run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", action="store_true", help="also time two other shapes")
    args = parser.parse_args()

    net = BinaryNetwork((2, 4, 1), activation_bit=True, layout="qhn-gaussian")
    x, y = gaussian_mixture(args.points, args.seed)
    total = 2**net.n_bits
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"network {net.layer_sizes}, {net.n_bits} bits ({total:,} networks), "
        f"{args.points:,} points (seed {args.seed}), loss squared_error"
    )

    fast_s, costs = timed(lambda: enumerate_costs(net, x, y, "squared_error"), args.repeats)
    print(
        f"enumerate_costs, all {total:,} networks: {fast_s:8.2f} s "
        f"(median of {args.repeats}; 1 torch thread, the default)"
    )
    own_s, _ = timed(
        lambda: enumerate_costs(net, x, y, "squared_error", threads=None), args.repeats
    )
    print(
        f"enumerate_costs, all {total:,} networks: {own_s:8.2f} s "
        f"(median of {args.repeats}; threads=None, torch's {torch.get_num_threads()} threads)"
    )

    subset = torch.randperm(total, generator=torch.Generator().manual_seed(1))[: args.subset]
    naive_s, naive = timed(
        lambda: enumerate_costs_naive(net, x, y, "squared_error", indices=subset), 1
    )
    naive_total = naive_s * total / args.subset
    print(f"naive NumPy loop, {args.subset:,} random networks (measured): {naive_s:8.2f} s")
    print(
        f"naive NumPy loop, all {total:,} networks (EXTRAPOLATED): {naive_total:8.1f} s "
        f"= {naive_total / 60:.1f} min"
    )
    print(f"speed-up over the naive loop: {naive_total / fast_s:,.0f}x")

    batch = torch.randperm(total, generator=torch.Generator().manual_seed(2))[: args.batched]
    batch_bits = index_to_bits(batch, net.n_bits)
    batched_s, batched = timed(lambda: net.mean_loss(batch_bits, x, y, "squared_error"), 1)
    print(
        f"batched mean_loss, {args.batched:,} networks (measured): "
        f"{batched_s:.2f} s; all {total:,} (EXTRAPOLATED): {batched_s * total / args.batched:.1f} s"
    )

    worst = max(
        float((costs[subset] - naive).abs().max()), float((costs[batch] - batched).abs().max())
    )
    print(f"largest |enumerate − per-network| on the checked subsets: {worst:.1e}")

    best = float(costs.min())
    optimal = torch.nonzero(costs <= best + 1e-12).squeeze(1)
    names = net.describe_bits()
    act_bit = names.index("act")
    bits = index_to_bits(optimal, net.n_bits)
    proba = net.predict_proba(bits, x)[..., 1]
    accuracy = ((proba > 0.5).long() == y).double().mean(1)
    activations = ["sigmoid" if b else "relu" for b in bits[:, act_bit].tolist()]
    print(
        f"minimum MSE {best:.6f}, reached by {len(optimal)} networks "
        f"(within 1e-12); activations: {sorted(set(activations))}; "
        f"training accuracy {float(accuracy.min()):.4f}..{float(accuracy.max()):.4f}"
    )
    print(f"  first optimum: index {int(optimal[0])} = {bitstring(int(optimal[0]), net.n_bits)}")
    gap = float(costs[costs > best + 1e-12].min()) - best
    print(f"  next-best cost is {gap:.2e} above the minimum")
    if args.extra:
        extra_shapes(args.seed)


def extra_shapes(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logistic = BinaryNetwork((16, 1))
    x = torch.rand(12_665, 16, generator=generator, dtype=torch.float64)
    y = (x.sum(1) > 8.0).long()
    seconds, _ = timed(lambda: enumerate_costs(logistic, x, y, "cross_entropy"), 1)
    print(
        f"logistic regression 16 → 1, 17 bits, 12,665 random points, cross-entropy "
        f"(batched fallback, torch's threads): {seconds:.1f} s"
    )
    deep = BinaryNetwork((2, 3, 2, 1), hidden_activation="relu")
    x = torch.randn(10_000, 2, generator=generator, dtype=torch.float64)
    y = (x[:, 0] * x[:, 1] > 0).long()
    seconds, _ = timed(lambda: enumerate_costs(deep, x, y, "cross_entropy"), 1)
    print(
        f"two hidden layers 2 → 3 → 2 → 1, {deep.n_bits} bits, 10,000 points, cross-entropy "
        f"(fast path over the last hidden layer): {seconds:.1f} s"
    )
    subset = torch.randperm(2**deep.n_bits, generator=generator)[:2_000]
    batched_s, _ = timed(
        lambda: deep.mean_loss(index_to_bits(subset, deep.n_bits), x, y, "cross_entropy"), 1
    )
    print(
        f"  the same by batched mean_loss: 2,000 networks {batched_s:.2f} s (measured), "
        f"all (EXTRAPOLATED) {batched_s * 2**deep.n_bits / 2_000:.0f} s"
    )


if __name__ == "__main__":
    main()
