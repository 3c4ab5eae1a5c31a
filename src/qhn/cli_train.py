"""``qhn train``: one run from flags, a TOML config, or both (flags and ``--set`` win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qhn.cli_help import SET_HELP, run_default
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
    ("evaluations", "network-loss evaluations"),
    ("train_seconds", "training time [s]"),
)


def train(
    task: Annotated[str | None, typer.Option(help=f"Task: {', '.join(TASKS)}.")] = None,
    objective: Annotated[
        str | None, typer.Option(help="mle | elbo | selbo", show_default=run_default("objective"))
    ] = None,
    ansatz: Annotated[
        str | None,
        typer.Option(
            help="hardware_efficient | product | qhn_reference",
            show_default=run_default("ansatz"),
        ),
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option(help="Entangling layers (0: product).", show_default=run_default("layers")),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="statevector | sampled | noisy | mps | qiskit:<target> | pennylane:<device>",
            show_default=run_default("backend"),
        ),
    ] = None,
    shots: Annotated[
        int | None,
        typer.Option(help="Shots per circuit (unset: exact).", show_default=run_default("shots")),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Optimization steps.", show_default=run_default("train.steps")),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate.", show_default=run_default("train.lr"))
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of initialization and shots.", show_default=run_default("train.seed")
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run directory to write.")] = Path("runs/latest"),
    config: Annotated[
        Path | None, typer.Option("--config", help="A run.toml; flags and --set override it.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help=SET_HELP),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue from OUT's checkpoint; without --task/--config, with OUT's config."
        ),
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write figures after the summary.")
    ] = True,
    landscape_cache: Annotated[
        str | None,
        typer.Option(
            help="Folder keeping enumerated landscapes between runs, least recently used "
            "pruned past 2 GiB; 'off': none. Default: $QHN_CACHE_DIR, else "
            "~/.cache/qhn/landscapes.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train a quantum hypernetwork on a task and write config, history, summary and figures.

    Every config key has a default (shown below for the flags; all of them: qhn config keys);
    --config FILE sets keys from a run.toml, and flags and --set override it.

    A checkpoint is written every ~10 s of training, at the end, and on Ctrl-C or SIGTERM, so
    an interrupted run continues with --resume.
    """
    from rich.console import Console

    from qhn.cli_errors import describe, exit_code, fail
    from qhn.cli_progress import print_summary, step_progress
    from qhn.errors import QHNError
    from qhn.experiments.config import RunConfig, load_config
    from qhn.experiments.overrides import apply_overrides
    from qhn.experiments.runner import CONFIG, run
    from qhn.landscape_cache import chosen_cache_dir, prune
    from qhn.train import TrainingInterrupted

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
        elif task is None and resume and (out / CONFIG).is_file():
            run_config = load_config(out / CONFIG)
        elif task is None:
            raise typer.BadParameter(
                "give --task or --config (or --resume with an --out that holds a run)",
                param_hint="--task",
            )
        else:
            run_config = RunConfig(task=task)
        run_config = apply_overrides(run_config, [*given, *(overrides or [])])
        cache_dir = chosen_cache_dir(landscape_cache)
        with step_progress(console, f"{run_config.objective} on {run_config.task}") as progress:
            summary = run(
                run_config, out, resume=resume, progress=progress, plots=plots, cache_dir=cache_dir
            )
        if cache_dir is not None and cache_dir.is_dir():
            prune(cache_dir)
    except TrainingInterrupted as stop:
        where = f"checkpoint saved to {stop.checkpoint}" if stop.checkpoint else "nothing saved"
        typer.echo(
            f"interrupted by {stop.signal_name} at step {stop.step}/{stop.total}; {where}; "
            f"continue with: qhn train --out {out} --resume",
            err=True,
        )
        raise typer.Exit(code=stop.exit_code) from None
    except (QHNError, OSError, MemoryError) as error:
        fail(describe(error), exit_code(error))
    print_summary(
        f"{run_config.task} · {run_config.method or run_config.objective} · "
        f"{summary.get('ansatz', 'baseline')}",
        summary,
        SHOWN,
    )
    figures = plots and run_config.method is None
    written = "config.toml, history.jsonl, summary.json" + (" and figures" if figures else "")
    typer.echo(f"wrote {out}/{written}")


def _literal(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
