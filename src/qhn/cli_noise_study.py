"""``qhn noise-study``: the reference QHN's stored runs re-evaluated under depolarizing noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qhn.heap import keep_freed_memory
from qhn.noise_study import (
    DEFAULT_FILES,
    DEFAULT_NEAR_TOL,
    DEFAULT_SCALES,
    DEFAULT_TRAJECTORIES,
    HEAP_THRESHOLDS,
)

__all__ = ["noise_study"]

_DATA = Path("../shared/data/binncode-mnist01")


def noise_study(
    params: Annotated[
        Path, typer.Option("--params", help="Folder of the parameter files (one run a row).")
    ] = _DATA / "params",
    costs: Annotated[
        Path, typer.Option("--costs", help="Cost C(s) of all 2^n bitstrings, one a line.")
    ] = _DATA / "Cop_4x4.txt",
    out: Annotated[
        Path, typer.Option("--out", help="Folder for runs.csv, summary.csv and the figure.")
    ] = Path("noise-study"),
    scales: Annotated[
        str, typer.Option("--scales", help="Noise scales x, comma-separated.")
    ] = ",".join(f"{x:g}" for x in DEFAULT_SCALES),
    trajectories: Annotated[
        int, typer.Option("--trajectories", help="Error patterns simulated per row.")
    ] = DEFAULT_TRAJECTORIES,
    files: Annotated[
        str, typer.Option("--files", help="Parameter files in --params, comma-separated.")
    ] = ",".join(DEFAULT_FILES),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the error patterns.")] = 0,
    near_tol: Annotated[
        float, typer.Option("--near-tol", help="Near-optimal set: C(s) <= min C + this.")
    ] = DEFAULT_NEAR_TOL,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Torch threads (unset: torch's default).")
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write the figure after the tables.")
    ] = True,
) -> None:
    """Re-evaluate stored reference runs under p1 = 0.001·x (after each RY, RZ) and
    p2 = 0.00375·x (after each CNOT): E_q[C] and the near-optimal mass at every scale x.

    Every row gets one set of error patterns, drawn at the largest x and reweighted to each x
    (unbiased, with its standard error); x = 0 is the exact noiseless value.
    """
    from qhn.noise_study import (
        NoiseStudyConfig,
        parse_scales,
        run_noise_study,
        summary_table,
        write_noise_study,
    )

    names = tuple(name.strip() for name in files.split(",") if name.strip())
    config = NoiseStudyConfig(
        params_dir=params,
        costs=costs,
        scales=parse_scales(scales),
        files=names,
        trajectories=trajectories,
        seed=seed,
        near_tol=near_tol,
        threads=threads,
    )

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            typer.echo(f"  {done}/{total} rows", err=True)

    keep_freed_memory(*HEAP_THRESHOLDS)
    study = run_noise_study(config, progress=progress)
    paths = write_noise_study(study, out, figure=plots)
    typer.echo(
        f"{len(study.runs) // len(config.scales)} runs × {len(config.scales)} scales, "
        f"n = {study.n_qubits}, {study.layers} layers, {config.trajectories} trajectories/row, "
        f"{study.seconds:.1f} s"
    )
    if study.stored_loss_error is not None:
        typer.echo(
            f"noiseless E_q[C] vs the files' stored losses: max |Δ| = {study.stored_loss_error:.2g}"
        )
    for line in summary_table(study.summary()):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
