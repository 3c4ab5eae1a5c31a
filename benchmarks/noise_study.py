"""Time the reference noise study and compare it with the ``noisy`` backend's trajectory sampler.

1. The full study (default: ``run1.txt`` … ``run10.txt``, 100 rows × 11 scales) through
   :func:`qhn.noise_study.run_noise_study`: wall and CPU time, the summary table, and the visible
   anchor — the reference's exact mean ``E_q[C]`` over those 100 rows at ``x = 0.2`` is 0.33264
   (METHOD.md §8) — as a z-score, with the standard error of the mean from the spread between rows
   (which carries each row's Monte Carlo error) and, separately, the Monte Carlo error alone.
2. The peer, in the same process with the same threads: ``NoisyBackend.sample`` (Pauli
   trajectories, one shot per drawn pattern) on ``--peer-rows`` rows at ``x = 0.2`` and ``x = 2``.
   Its per-row standard error from ``shots`` is ``sd(C)/√shots``; matching the study's per-row
   standard error needs ``shots·(se_peer/se_study)²`` shots, and its time is extrapolated
   linearly in shots. The ratio printed compares the peer's time for just these two scales with
   the study's time per row for all scales (so it understates the full ratio).

Run: ``.venv/bin/python benchmarks/noise_study.py [--trajectories 192] [--threads 2]``.
Medians over ``--repeats`` for the peer; the full study runs once (it is the long part).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from qhn.backends.noisy import NoiseModel, NoisyBackend
from qhn.backends.scaled_trajectories import REFERENCE_P1, REFERENCE_P2
from qhn.bits import bits_to_index
from qhn.circuits.ansatz import qhn_reference
from qhn.heap import keep_freed_memory
from qhn.noise_study import (
    DEFAULT_TRAJECTORIES,
    HEAP_THRESHOLDS,
    NoiseStudyConfig,
    load_rows,
    run_noise_study,
    summary_table,
    write_noise_study,
)

ANCHOR_X, ANCHOR = 0.2, 0.33264
DATA = Path("../shared/data/binncode-mnist01")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=DATA / "params")
    parser.add_argument("--costs", type=Path, default=DATA / "Cop_4x4.txt")
    parser.add_argument("--trajectories", type=int, default=DEFAULT_TRAJECTORIES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--files", default=",".join(f"run{k}.txt" for k in range(1, 11)))
    parser.add_argument("--peer-rows", type=int, default=1)
    parser.add_argument("--peer-shots", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the study's files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory(*HEAP_THRESHOLDS)

    config = NoiseStudyConfig(
        params_dir=args.params,
        costs=args.costs,
        files=tuple(args.files.split(",")),
        trajectories=args.trajectories,
        threads=args.threads,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    study = run_noise_study(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = len(study.runs) // len(config.scales)
    summary = study.summary()
    if args.out is not None:
        write_noise_study(study, args.out)
    print(
        f"noise study: {rows} rows × {len(config.scales)} scales, "
        f"{config.trajectories} trajectories/row, {args.threads} threads: "
        f"wall {wall:.1f} s, CPU {cpu:.1f} s ({wall / rows:.2f} s/row)"
    )
    print(f"noiseless vs stored losses: max |Δ| = {study.stored_loss_error:.2g}")
    for line in summary_table(summary):
        print(line)
    anchor = next(s for s in summary if math.isclose(s["x"], ANCHOR_X))
    values = [float(r["expected_cost"]) for r in study.runs if math.isclose(r["x"], ANCHOR_X)]
    se_between = statistics.stdev(values) / math.sqrt(len(values))
    mean, mc_se = anchor["expected_cost_mean"], anchor["expected_cost_mc_se"]
    print(
        f"anchor x = {ANCHOR_X}: mean E_q[C] = {mean:.5f} vs reference {ANCHOR} "
        f"(Δ = {mean - ANCHOR:+.2e}); z = {(mean - ANCHOR) / se_between:+.2f} with the SE of the "
        f"mean over rows ({se_between:.1e}), z = {(mean - ANCHOR) / mc_se:+.2f} with the Monte "
        f"Carlo SE alone ({mc_se:.1e}; the reference value is rounded to 5e-6)"
    )

    # ------------------------------------------------------------------ peer: noisy backend
    n, layers = study.n_qubits, study.layers
    circuit = qhn_reference(n, layers)
    costs = torch.from_numpy(np.loadtxt(args.costs, dtype=np.float64))
    peer_rows, _ = load_rows(args.params, config.files[:1], n)
    per_row_study = wall / rows
    print(
        f"\npeer: NoisyBackend.sample (Pauli trajectories), {args.peer_shots} shots, "
        f"{args.peer_rows} rows, median of {args.repeats}"
    )
    print(f"{'x':>4}  {'peer s/row':>10}  {'peer se':>8}  {'study se':>8}  {'shots needed':>12}  "
          f"{'peer s/row same se':>18}")  # fmt: skip
    peer_total = 0.0
    for x in (0.2, 2.0):
        i = config.scales.index(x)
        times, ratios_se, study_se, needed, zs = [], [], [], [], []
        backend = NoisyBackend(NoiseModel(p1=REFERENCE_P1, p2=REFERENCE_P2, scale=x))
        for r, row in enumerate(peer_rows[: args.peer_rows]):
            repeats = []
            for rep in range(args.repeats):
                generator = torch.Generator().manual_seed(1000 * r + rep)
                start = time.perf_counter()
                bits = backend.sample(circuit, row.theta, args.peer_shots, generator=generator)
                repeats.append(time.perf_counter() - start)
            c = costs[bits_to_index(bits)]
            se_peer = float(c.std()) / math.sqrt(args.peer_shots)
            ours = study.runs[(r * len(config.scales)) + i]
            se_ours = float(ours["expected_cost_se"])
            zs.append(
                (float(c.mean()) - float(ours["expected_cost"])) / math.hypot(se_peer, se_ours)
            )
            times.append(statistics.median(repeats))
            ratios_se.append(se_peer)
            study_se.append(se_ours)
            needed.append(args.peer_shots * (se_peer / se_ours) ** 2)
        t = statistics.median(times)
        shots = statistics.median(needed)
        same = t * shots / args.peer_shots
        peer_total += same
        print(
            f"{x:4.1f}  {t:10.2f}  {statistics.median(ratios_se):8.1e}  "
            f"{statistics.median(study_se):8.1e}  {shots:12.0f}  {same:18.1f}"
            f"   (agreement z per row: {', '.join(f'{z:+.2f}' for z in zs)})"
        )
    print(
        f"per row at the same standard error: peer {peer_total:.1f} s for x = 0.2 and 2 only, "
        f"study {per_row_study:.2f} s for all {len(config.scales)} scales: "
        f"ratio {peer_total / per_row_study:.1f}× (≥ this for all scales)"
    )


if __name__ == "__main__":
    main()
