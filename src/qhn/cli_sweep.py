"""``qhn sweep`` and ``qhn report``: run a grid of configurations, then summarize it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer


def sweep(
    spec: Annotated[Path, typer.Argument(help="The sweep file (sweep.toml).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Sweep directory (default: sweeps/<name of the file>)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Runs at once (processes or Ray CPUs).")
    ] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local | ray")] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="Ray cluster address HOST:PORT (default: a local Ray instance)."
        ),
    ] = None,
    scratch: Annotated[
        str | None,
        typer.Option(
            "--scratch",
            help="Ray: where tasks train on each node before returning the run's files "
            "(default: the node's temporary directory).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and list the points; run nothing.")
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write each run's own figures.")
    ] = True,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write results.csv and report.md at the end."),
    ] = True,
) -> None:
    """Run every point of a sweep file, then write results.csv and report.md.

    The file: its base table is a run config (every key and its default: qhn config keys), its
    grid table maps keys to arrays of values, seeds = k repeats each point over train.seed
    0..k-1, and include, exclude and group tables refine the grid (the docs' tutorial 4, or the
    docstring of qhn.experiments.sweep).

    Resumable: complete runs are skipped, checkpointed runs resume, failed runs run again. A
    point another process is running (a second sweep on the same directory) is waited for and
    counted as done by that process. Exit status 0 when every point is complete (by whoever ran
    it), 1 when a point failed (its runs/<id>/error.txt says why) or is unfinished, 2 for an
    invalid sweep, 128 + signal when interrupted (run the same command again to resume).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from qhn.cli_errors import describe, exit_code, fail
    from qhn.errors import QHNError
    from qhn.experiments.executors import SweepStatus, make_executor, plan_sweep, run_sweep

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    out_dir = out if out is not None else Path("sweeps") / spec.stem
    # the sweep's warnings (a worker died, its point is queued again) above the progress bar
    warnings = _ConsoleWarnings(console)
    logging.getLogger("qhn.experiments").addHandler(warnings)
    try:
        if dry_run:
            points, plan = plan_sweep(spec, out_dir)
            table = Table(title=escape(f"{len(points)} points → {out_dir}"))
            for column in ("id", "group", "state", "overrides"):
                table.add_column(column, overflow="fold")
            for point in points:
                cells = (point.id, point.group, plan[point.id], " ".join(point.overrides))
                table.add_row(*(escape(cell) for cell in cells))
            Console().print(table)
            return
        bar = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("[green]{task.fields[ok]} done[/green] [red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[last]}", markup=False),
            TimeElapsedColumn(),
            console=console,
        )
        jobs: list[Any] = []

        def progress(status: SweepStatus) -> None:
            # Started on the first call, after validation, so an invalid sweep prints its
            # error line alone.
            if not jobs:
                bar.start()
                jobs.append(bar.add_task("sweep", total=None, ok=0, failed=0, last=""))
            bar.update(
                jobs[0],
                total=status.total,
                completed=status.done,
                ok=status.completed + status.skipped + status.others,
                failed=status.failed,
                last=status.last.id if status.last is not None else "",
            )

        try:
            result = run_sweep(
                spec,
                out_dir,
                executor=make_executor(executor, workers, address, scratch=scratch),
                plots=plots,
                progress=progress,
            )
        finally:
            if jobs:
                bar.stop()
        counts = (
            f"{len(result.points)} points: {len(result.skipped)} already complete, "
            f"{len(result.completed)} ran ({len(result.resumed)} resumed), "
            f"{len(result.others)} done by another process, {len(result.failed)} failed"
        )
        if result.pending:
            counts += f", {len(result.pending)} unfinished"
        console.print(escape(counts))
        for run_id, message in result.failed.items():
            where = out_dir / "runs" / run_id / "error.txt"
            console.print(f"[red]failed[/red] {escape(f'{run_id}: {message} (see {where})')}")
        for run_id in result.pending:
            console.print(f"[yellow]unfinished[/yellow] {escape(run_id)}: run the sweep again")
        if report:
            from qhn.experiments.report import write_report

            written = write_report(out_dir)
            for warning in getattr(written, "warnings", ()):
                console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
            console.print(
                escape(
                    f"wrote {written.results.path if written.results else ''}, "
                    f"{written.path} and {len(written.figures)} figures"
                )
            )
    except KeyboardInterrupt as stop:
        typer.echo(
            f"sweep interrupted; the runs in progress saved checkpoints: run the same command "
            f"again to resume ({out_dir})",
            err=True,
        )
        raise typer.Exit(code=getattr(stop, "exit_code", 130)) from None
    except (QHNError, OSError, MemoryError) as error:
        fail(describe(error), exit_code(error))
    finally:
        logging.getLogger("qhn.experiments").removeHandler(warnings)
    if not result.ok:
        raise typer.Exit(code=1)


class _ConsoleWarnings(logging.Handler):
    """Warnings printed as one literal line on the console (which keeps the progress bar
    below them)."""

    def __init__(self, console: Any) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        if record.name.startswith("qhn.experiments.results"):
            return  # they come back in the written report's warnings, printed once

        text = " ".join(record.getMessage().split())
        self.console.print(f"[yellow]warning:[/yellow] {escape(text)}")


def report(
    sweep_dir: Annotated[Path, typer.Argument(help="A sweep directory (with runs/).")],
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write figures/*.png.")
    ] = True,
    all_runs: Annotated[
        bool,
        typer.Option(
            "--all-runs",
            help="Also use run directories that are not points of the directory's sweep.toml "
            "(left there by another sweep file).",
        ),
    ] = False,
) -> None:
    """Rebuild results.csv, report.md and its figures from a sweep's run directories.

    Uses the complete runs that are points of the directory's sweep.toml; warns about (and
    leaves out) unreadable runs and runs of another sweep file. Exit code 2 for a directory that
    is not a sweep, 1 when a file cannot be read or written.
    """
    import logging

    from rich.console import Console
    from rich.markup import escape

    from qhn.errors import QHNError
    from qhn.experiments.report import write_report

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def fail(message: str, code: int) -> typer.Exit:
        console.print(f"[red]error:[/red] {escape(message)}")
        return typer.Exit(code=code)

    if not (sweep_dir / "runs").is_dir():
        raise fail(f"{sweep_dir} has no runs/ folder; is it a sweep directory?", 2)
    # the scan's warnings come back in the report and are printed below; the handler keeps
    # logging's last-resort stderr output from printing them twice
    quiet = logging.getLogger("qhn.experiments.results")
    handler = logging.NullHandler()
    quiet.addHandler(handler)
    try:
        written = write_report(sweep_dir, figures=figures, all_runs=all_runs)
    except QHNError as error:
        raise fail(str(error), 2) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        raise fail(f"{where}{error.strerror or error}", 1) from None
    finally:
        quiet.removeHandler(handler)
    for warning in written.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    rows = len(written.results.rows) if written.results else 0
    typer.echo(
        f"wrote {sweep_dir / 'results.csv'} ({rows} runs, one row each), "
        f"{sweep_dir / 'comparisons.csv'}, {written.path} and {len(written.figures)} figures"
    )
    typer.echo(_conclusion(written.text))


def reproduce(
    out: Annotated[Path, typer.Option("--out", help="Sweep directory.")] = Path("runs/reproduce"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Two small tasks, 3 seeds, fewer steps (minutes).")
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Runs at once.")] = 2,
    executor: Annotated[str, typer.Option("--executor", help="local | ray")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address.")] = None,
    n_eff: Annotated[
        float,
        typer.Option("--n-eff", min=1e-9, help="Evidence per task, in examples (T = N/N_eff)."),
    ] = 100.0,
    lam: Annotated[float, typer.Option("--lam", min=0.0, help="SELBO's λ.")] = 10.0,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            help="Seeds per point (default 10, quick 3; the digits10 rows keep at most 3). "
            "The report says how many a family of its size needs.",
        ),
    ] = None,
    cost_vector: Annotated[
        Path, typer.Option("--cost-vector", help="Reference MNIST landscape (skipped if absent).")
    ] = Path("../shared/data/binncode-mnist01/Cop_4x4.txt"),
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Also write every run's own figures.")
    ] = False,
) -> None:
    """The method paper's experiment: MLE vs ELBO vs SELBO over tasks, layers and seeds.

    Writes OUT/reproduce.toml (the sweep it runs), runs it resumably, writes results.csv and
    report.md, and prints the report's conclusion.
    """
    from qhn.experiments.reproduce import reproduce_sweep
    from qhn.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    spec = out / "reproduce.toml"
    text = reproduce_sweep(quick=quick, n_eff=n_eff, lam=lam, seeds=seeds, cost_vector=cost_vector)
    atomic_write_text(spec, text)
    try:
        sweep(spec, out=out, workers=workers, executor=executor, address=address, plots=plots)
    finally:
        report_file = out / "report.md"
        if report_file.exists():
            typer.echo(_conclusion(report_file.read_text(encoding="utf-8")))


def _conclusion(report_text: str) -> str:
    """The report's title, its design-power warning if it has one, and its headline table (the
    table of the ``## Headline`` section; the whole first section for a report without one)."""
    sections = report_text.split("\n## ")
    headline = next((s for s in sections[1:] if s.startswith("Headline\n")), None)
    if headline is None:
        return "\n## ".join(sections[:2]).strip()
    lines = headline.splitlines()
    power = [line for line in lines if line.startswith("**Power of this design")]
    rows = [line for line in lines if line.startswith("|")]
    body = "\n".join(rows) if rows else headline.split("\n", 1)[-1].strip()
    body = "\n\n".join([*power, body])
    return f"{sections[0].splitlines()[0]}\n\n## Headline\n\n{body}"
