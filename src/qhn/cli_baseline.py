"""``qhn baseline METHOD``: a classical baseline in the same run directory as ``qhn train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qhn.baselines.config import METHODS
from qhn.cli_help import baseline_default
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
    ("evaluations", "network-loss evaluations"),
    ("train_seconds", "training time [s]"),
)


def baseline(
    method: Annotated[str, typer.Argument(help=f"Method: {', '.join(METHODS)}.")],
    task: Annotated[str | None, typer.Option(help=f"Task: {', '.join(TASKS)}.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory to write.")] = Path("runs/baseline"),
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of initialization and sampling.", show_default=baseline_default("seed")
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Steps (see qhn.baselines.config).", show_default=baseline_default("steps")
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A baseline TOML; flags and --set override it.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value (tau=0.5, budget=4096, task_options.n_train=50); repeatable. "
            "Keys and defaults: qhn config keys --baseline.",
        ),
    ] = None,
) -> None:
    """Train a classical baseline (bayesbinn, ste, anneal, random, exhaustive, float) on a task
    and write config.toml, history.jsonl and summary.json; `evaluations` counts network-loss
    evaluations over the training set."""
    from rich.console import Console

    from qhn.baselines import (
        BaselineConfig,
        apply_baseline_overrides,
        load_baseline_config,
        run_baseline,
    )
    from qhn.cli_errors import describe, exit_code, fail
    from qhn.cli_progress import print_summary, step_progress
    from qhn.errors import QHNError

    console = Console(stderr=True)
    try:
        if config is not None:
            base = load_baseline_config(config)
            given = [f"method={_literal(method)}"]
        elif task is None:
            raise typer.BadParameter("give --task or --config", param_hint="--task")
        else:
            base = BaselineConfig(method=method, task=task)
            given = []
        flags = {"task": task, "seed": seed, "steps": steps}
        given += [f"{key}={_literal(value)}" for key, value in flags.items() if value is not None]
        run_config = apply_baseline_overrides(base, [*given, *(overrides or [])])
        with step_progress(console, f"{run_config.method} on {run_config.task}") as progress:
            summary = run_baseline(run_config, out, progress=progress)
    except (QHNError, OSError, MemoryError) as error:
        fail(describe(error), exit_code(error))
    print_summary(f"{run_config.task} · baseline {run_config.method}", summary, SHOWN)
    typer.echo(f"wrote {out}/config.toml, history.jsonl, summary.json")


def _literal(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
