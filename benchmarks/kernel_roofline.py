"""How fast the sweeps' gate kernels apply gates with the state in L1, and the floor that sets.

A sweep's operations run on tiles in cache, so past the memory traffic a circuit's time is its
gate count times the kernels' rate. This times each kernel of :mod:`qhn.backends.sweep_kernels`
on one 32 KiB float64 tile (L1) applied many times over, in amplitude-gates per nanosecond and
per cycle of the nominal clock (``/proc/cpuinfo``), against the arithmetic peak of one core: a
scaled rotation is one multiply-add per amplitude, so two 256-bit FMA units give 8 per cycle.
It then prints the time ``G · 2^n / rate`` that the ``G`` scheduled gates of the RY + CZ chain
take (its first layer is the product state) at the peak and at the best measured rate, in ms and
in state copies (read + write of float64 ``2^n``, measured): no gate-by-gate kernel, whatever its
memory traffic, goes below it.

Run: ``.venv/bin/python benchmarks/kernel_roofline.py [--n 24 26] [--layers 2 6]``.
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
import torch

from qhn.backends import sweep_kernels as kernels
from qhn.backends.sweep_schedule import schedule
from qhn.circuits import hardware_efficient
from simulator_probs import median_time

#: Amplitudes in the tile: 32 KiB of float64.
TILE = 4096
#: Multiply-adds per cycle of one core at its peak (two 256-bit FMA units, float64).
PEAK_PER_CYCLE = 8


@numba.njit(nogil=True)
def _pairs(tile, sj, sk, repeats):
    for _ in range(repeats):
        kernels.rotation_pair(tile, sj, sk, kernels.UNIT_DIAGONAL, 1e-3,
                              kernels.UNIT_DIAGONAL, -1e-3, tile.size)  # fmt: skip


@numba.njit(nogil=True)
def _rows(tile, stride, repeats):
    for _ in range(repeats):
        kernels.rotation_rows(tile, stride, kernels.UNIT_DIAGONAL, 1e-3, tile.size)


@numba.njit(nogil=True)
def _low(tile, mats, forms, count, repeats):
    for _ in range(repeats):
        kernels.low_gates(tile, mats, forms, 0, count, 0, tile.size)


def nominal_hz() -> float | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) * 1e6
    except OSError:
        pass
    return None


def rate(run, gates: int, repeats: int) -> float:
    """Amplitude-gates per second, median of 5 after a warm-up."""
    return TILE * gates * repeats / median_time(lambda: run(repeats), 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[24, 26])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--repeats", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tile = np.random.default_rng(0).random(TILE)
    general = np.tile(np.array([[0.6, -0.8], [0.8, 0.6]]), (5, 1, 1, 1))  # (gate, row, 2, 2)
    # A sweep's usual: its first gate general, the others rotations scaled to [[1, -t], [t, 1]].
    scaled = np.tile(np.array([[1.0, -1e-3], [1e-3, 1.0]]), (5, 1, 1, 1))
    scaled[0] = general[0]
    forms = np.full((5, 1), kernels.UNIT_DIAGONAL)
    forms[0] = kernels.GENERAL
    as_general = np.full((5, 1), kernels.GENERAL)
    cases = [
        (
            "register kernel, bits 0-2 (3 general gates)",
            3,
            lambda r: _low(tile, general, as_general, 3, r),
        ),
        (
            "register kernel, bits 0-4 (5 general gates)",
            5,
            lambda r: _low(tile, general, as_general, 5, r),
        ),
        (
            "register kernel, bits 0-4 (1 general, 4 scaled)",
            5,
            lambda r: _low(tile, scaled, forms, 5, r),
        ),
        ("rotation pair, strides 8 and 16", 2, lambda r: _pairs(tile, 8, 16, r)),
        ("rotation pair, strides 16 and 32", 2, lambda r: _pairs(tile, 16, 32, r)),
        ("rotation pair, strides 64 and 512", 2, lambda r: _pairs(tile, 64, 512, r)),
        ("one rotation, stride 8", 1, lambda r: _rows(tile, 8, r)),
        ("one rotation, stride 256", 1, lambda r: _rows(tile, 256, r)),
    ]
    hz = nominal_hz()
    print(f"nominal clock: {hz / 1e9:.2f} GHz" if hz else "nominal clock: unknown")
    best = 0.0
    for name, gates, run in cases:
        per_second = rate(run, gates, args.repeats)
        best = max(best, per_second)
        cycles = f"{per_second / hz:5.2f} per cycle" if hz else ""
        print(f"  {name:46s} {per_second / 1e9:6.2f} amplitude-gates/ns {cycles}")
    print(f"arithmetic peak: {PEAK_PER_CYCLE} per cycle"
          + (f" = {PEAK_PER_CYCLE * hz / 1e9:.1f}/ns" if hz else ""))  # fmt: skip
    for n in args.n:
        state = torch.rand(2**n, dtype=torch.float64)
        copy = torch.empty_like(state)
        one_copy = median_time(lambda s=state, c=copy: c.copy_(s), 5)
        for layers in args.layers:
            plan = schedule(hardware_efficient(n, layers), 8, keep_final_diagonal=False)
            gates = len(plan.gates)  # the first layer is the product state: no gate pass
            work = gates * 2**n
            line = f"n={n} L={layers}: {gates} gates, one copy {one_copy * 1e3:.1f} ms; gates alone"
            if hz:
                at_peak = work / (PEAK_PER_CYCLE * hz)
                line += f" {at_peak * 1e3:.0f} ms ({at_peak / one_copy:.1f} copies) at the peak,"
            at_best = work / best
            line += f" {at_best * 1e3:.0f} ms ({at_best / one_copy:.1f} copies) at the best rate"
            print(line)


if __name__ == "__main__":
    main()
