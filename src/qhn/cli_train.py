"""``qhn train``: one run from flags, a TOML config, or both (flags and ``--set`` win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qhn.data.tasks import TASKS

#: Summary keys shown after a run, in order, with their labels.
SHOWN = (
    ("expected_cost", "E_q[C] (train)"),
    ("optimum_value", "optimum C*"),
    ("mass_optimal", "mass on optimal set"),
    ("acc_mode_test", "test accuracy (mode)"),
    ("acc_bma_test", "test accuracy (BMA)"),
    ("nll_bma_test", "test NLL (BMA)"),
    ("entropy", "entropy H(q)"),
    ("kl", "KL(q‖p)"),
    ("mmd2", "MMD²(q,p)"),
    ("circuit_executions", "circuit executions"),
    ("shots", "shots"),
    ("train_seconds", "training time [s]"),
)


def train(
    task: Annotated[str | None, typer.Option(help=f"Task: {', '.join(TASKS)}.")] = None,
    objective: Annotated[str | None, typer.Option(help="mle | elbo | selbo")] = None,
    ansatz: Annotated[
        str | None, typer.Option(help="hardware_efficient | product | qhn_reference")
    ] = None,
    layers: Annotated[int | None, typer.Option(help="Entangling layers (0: product).")] = None,
    backend: Annotated[str | None, typer.Option(help="statevector | sampled")] = None,
    shots: Annotated[int | None, typer.Option(help="Shots per circuit (unset: exact).")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimization steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of initialization and shots.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory to write.")] = Path("runs/latest"),
    config: Annotated[
        Path | None, typer.Option("--config", help="A run.toml; flags and --set override it.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value override; repeatable.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT's checkpoint.")] = False,
) -> None:
    """Train a quantum hypernetwork on a task and write config, history, summary and figures."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from qhn.errors import QHNError
    from qhn.experiments.config import RunConfig, apply_overrides, load_config
    from qhn.experiments.runner import run

    console = Console(stderr=True)
    flags = {
        "task": task,
        "objective": objective,
        "ansatz": ansatz,
        "layers": layers,
        "backend": backend,
        "shots": shots,
        "train.steps": steps,
        "train.lr": lr,
        "train.seed": seed,
    }
    given = [f"{key}={_literal(value)}" for key, value in flags.items() if value is not None]
    try:
        if config is not None:
            run_config = load_config(config)
        elif task is None:
            raise typer.BadParameter("give --task or --config", param_hint="--task")
        else:
            run_config = RunConfig(task=task)
        run_config = apply_overrides(run_config, [*given, *(overrides or [])])
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            job = bar.add_task(
                f"{run_config.objective} on {run_config.task}",
                total=run_config.train.steps,
                loss="…",
            )

            def progress(step: int, total: int, record: dict[str, Any]) -> None:
                bar.update(job, completed=step, loss=f"{record.get('loss', float('nan')):.6g}")

            summary = run(run_config, out, resume=resume, progress=progress)
    except QHNError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    table = Table(title=f"{run_config.task} · {run_config.objective} · {summary['ansatz']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in SHOWN:
        if summary.get(key) is not None:
            value = summary[key]
            table.add_row(label, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)
    typer.echo(f"wrote {out}/config.toml, history.jsonl, summary.json and figures")


def _literal(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
