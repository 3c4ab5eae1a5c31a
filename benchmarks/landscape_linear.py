"""Enumerate a no-hidden-layer landscape (``teacher``: logistic regression on Gaussian inputs).

Times, in one process and with one torch thread, for each size: the outer-sum path
(:mod:`qhn.models.enumerate_linear`, what ``enumerate_costs`` now takes), the batched
``mean_loss`` fallback it replaced, and — as the reference the issue asked to match — a task of a
similar size with a hidden layer (``moons`` with ``hidden = (bits − 1) / 4``). Prints medians of
``--repeats`` runs, wall and CPU (``time.process_time``) seconds, the ratios, and the largest
difference between the two no-hidden-layer paths.

Run: ``.venv/bin/python benchmarks/landscape_linear.py [--bits 17 21 22] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from qhn.data.tasks import get_task
from qhn.models import enumerate_costs
from qhn.models.enumerate import _batched


def timed(repeats: int, function, *args, **kwargs) -> tuple[float, float, object]:
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[17, 21, 22])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-batched", action="store_true", help="skip the old path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, 1 torch thread")
    print(f"medians of {args.repeats}; seconds as wall / CPU")
    columns = ["bits", "outer sum", "batched (before)", "before / after", "hidden-layer task"]
    print("| " + " | ".join([*columns, "after / hidden"]) + " |")
    print("|---|---|---|---|---|---|")
    for bits in args.bits:
        task = get_task("teacher", n_inputs=bits - 1)
        net, x, y = task.network, task.x_train, task.y_train
        budget = 8 * 2**bits + 2**28
        wall, cpu, fast = timed(
            args.repeats, enumerate_costs, net, x, y, task.loss, max_bytes=budget
        )
        old = "skipped"
        ratio = ""
        if not args.skip_batched:
            old_wall, old_cpu, slow = timed(
                args.repeats, _batched, net, x, y, task.loss, None, 2**28
            )
            worst = float((fast - slow).abs().max())
            old = f"{old_wall:.2f} / {old_cpu:.2f} s (max diff {worst:.1e})"
            ratio = f"{old_wall / wall:.1f}x / {old_cpu / cpu:.1f}x"
        hidden = ""
        after_hidden = ""
        if (bits - 1) % 4 == 0:
            moons = get_task("moons", hidden=(bits - 1) // 4)
            data = (moons.network, moons.x_train, moons.y_train, moons.loss)
            h_wall, h_cpu, _ = timed(args.repeats, enumerate_costs, *data, max_bytes=budget)
            hidden = f"moons {moons.n_bits} bits: {h_wall:.2f} / {h_cpu:.2f} s"
            after_hidden = f"{wall / h_wall:.2f} / {cpu / h_cpu:.2f}"
        print(
            f"| {bits} | {wall:.2f} / {cpu:.2f} s | {old} | {ratio} | {hidden} | {after_hidden} |"
        )


if __name__ == "__main__":
    main()
