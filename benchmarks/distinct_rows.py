"""``qhn.bits.distinct_rows`` against ``torch.unique(dim=0)``, which it replaces.

The sampled objectives find the distinct rows of every batch of draws (a sampled parameter-shift
step at 20 qubits with 256 shots: 122 circuits, 31,232 rows). Rows drawn from a pool of an
eighth as many, so that most repeat; one torch thread, median of 5; both give the same tensors.

Run: ``.venv/bin/python benchmarks/distinct_rows.py [--bits 20 62 124 248] [--rows 1024 31232]``.
"""

from __future__ import annotations

import argparse

import torch

from qhn.bits import distinct_rows
from simulator_probs import median_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[20, 62, 124, 248])
    parser.add_argument("--rows", type=int, nargs="+", default=[1024, 31232])
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(f"{'bits':>5} {'rows':>7} {'torch.unique ms':>16} {'distinct_rows ms':>17} {'ratio':>6}")
    for n in args.bits:
        for rows in args.rows:
            pool = torch.randint(0, 2, (max(2, rows // 8), n), dtype=torch.uint8,
                                 generator=generator)  # fmt: skip
            bits = pool[torch.randint(0, pool.shape[0], (rows,), generator=generator)]
            expected = torch.unique(bits, dim=0, return_inverse=True, return_counts=True)
            assert all(map(torch.equal, distinct_rows(bits), expected))
            peer = median_time(
                lambda b=bits: torch.unique(b, dim=0, return_inverse=True, return_counts=True), 5
            )
            ours = median_time(lambda b=bits: distinct_rows(b), 5)
            print(f"{n:5d} {rows:7d} {peer * 1e3:16.2f} {ours * 1e3:17.2f} {peer / ours:6.1f}")


if __name__ == "__main__":
    main()
