"""The ``qhn`` command line: thin wrappers that parse, call the library and render progress."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qhn.cli_baseline import baseline
from qhn.cli_config import config_app
from qhn.cli_errors import DEBUG_META, ErrorPolicyGroup, debug_first
from qhn.cli_noise_study import noise_study
from qhn.cli_predict import export, predict
from qhn.cli_sweep import report, reproduce, sweep
from qhn.cli_train import train

if TYPE_CHECKING:
    from qhn.data import Task
    from qhn.landscape import Landscape, NetworkSummary

app = typer.Typer(
    name="qhn",
    cls=ErrorPolicyGroup,
    help="Train binary neural networks with quantum hypernetworks.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"qhn {version('qhn')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            typer.echo("qhn (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Train binary neural networks with quantum hypernetworks."""
    ctx.meta[DEBUG_META] = debug


@app.command()
def tasks() -> None:
    """List the tasks: bits, training examples, classes and options (with defaults)."""
    from qhn.data.tasks import TASKS, get_task, task_options

    for name, builder in TASKS.items():
        options = {k: v for k, v in task_options(name).items() if k != "temperature"}
        if "path" in options:
            shape = "bits and classes from the file (task_options.path)"
        else:
            task = get_task(name)
            classes = task.network.n_classes if task.network is not None else None
            shape = f"{task.n_bits} bits, {task.n_train} training examples" + (
                f", {classes} classes" if classes else ""
            )
        typer.echo(f"{name}: {builder.summary}; {shape}")
        listed = ", ".join(f"{key}={value!r}" for key, value in options.items())
        typer.echo(f"    options: {listed or 'none'}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/demo-quick"
    ),
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimization steps.")] = 100,
) -> None:
    """Train a small quantum hypernetwork in seconds (SELBO on moons) and show where its
    figures went."""
    from qhn.cli_errors import describe, exit_code, fail
    from qhn.demo import run_demo
    from qhn.errors import QHNError

    try:
        typer.echo(run_demo(out, steps=steps))
    except (QHNError, OSError) as error:
        fail(describe(error), exit_code(error))


@app.command()
def landscape(
    task: Annotated[str, typer.Argument(help="Task name, e.g. qhn-gaussian, digits01, teacher.")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the landscape file, summary and histogram.")
    ] = Path("landscapes"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the task's data splits.")] = 0,
    options: Annotated[
        list[str] | None,
        typer.Option("--set", help="A task option as key=value; repeat for several."),
    ] = None,
    tol: Annotated[
        float, typer.Option("--tol", help="Absolute tolerance of the optimal set.")
    ] = 1e-9,
    rtol: Annotated[
        float, typer.Option("--rtol", help="Relative tolerance of the optimal set.")
    ] = 1e-9,
) -> None:
    """Enumerate all 2^n networks of a task: optimum, degeneracy, accuracies and a histogram.

    The cost vectors are cached in OUT keyed by the task's fingerprint, so a second run is fast.
    """

    from qhn.data import get_task
    from qhn.errors import QHNError
    from qhn.io import atomic_write_json, atomic_write_png
    from qhn.landscape import compute_landscape
    from qhn.plots import landscape_histogram

    pairs = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        pairs[key.strip()] = value.strip()
    try:
        built = get_task(task, seed=seed, **pairs)
        result = compute_landscape(built, cache_dir=out, tol=tol, rtol=rtol, seed=seed)
    except QHNError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    assert result.cache_file is not None
    stem = result.cache_file.stem
    summary_path = out / f"{stem}.json"
    figure_path = out / f"{stem}.png"
    atomic_write_json(summary_path, result.summary())
    atomic_write_png(figure_path, landscape_histogram(result))
    for line in _landscape_report(built, result):
        typer.echo(line)
    typer.echo(f"wrote {result.cache_file}, {summary_path}, {figure_path}")


def _landscape_report(task: Task, result: Landscape) -> list[str]:
    """The lines ``qhn landscape`` prints."""
    from qhn.bits import bitstring

    def accuracy(network: NetworkSummary) -> str:
        if network.train_accuracy is None:
            return "no data (cost-vector task)"
        text = f"train {network.train_accuracy:.4f}"
        if network.test_accuracy is not None:
            text += f", test {network.test_accuracy:.4f}"
        return text

    examples = (
        f"{task.n_train} training examples"
        if task.network is not None
        else f"N = {task.n_train} (option n_examples)"
    )
    lines = [
        f"task {result.task_name}: {result.n_bits} bits, {examples}, seed {task.seed}",
        f"optimum C* = {result.optimum_value:.9g}, degeneracy {result.degeneracy} "
        f"(tol {result.tol:g} + {result.rtol:g}·|C*|)",
    ]
    shown = result.optimal_indices[:8].tolist()
    for index in shown:
        lines.append(f"  {bitstring(index, result.n_bits)}  (index {index})")
    if result.degeneracy > len(shown):
        lines.append(f"  … and {result.degeneracy - len(shown)} more")
    lines.append(f"accuracy of the optimum: {accuracy(result.optimum)}")
    ranges = result.optimum_accuracy_range
    if result.degeneracy > 1 and ranges["train"] is not None:
        spans = [f"{split} {r[0]:.4f}–{r[1]:.4f}" for split, r in ranges.items() if r is not None]
        lines.append(f"  over the optimal set: {', '.join(spans)}")
    lines.append(f"median network: C = {result.median.train_cost:.6g}, {accuracy(result.median)}")
    lines.append(f"random network: C = {result.random.train_cost:.6g}, {accuracy(result.random)}")
    source = "read from cache" if result.from_cache else "enumerated"
    lines.append(f"time {result.seconds:.2f} s ({source})")
    return lines


app.command()(train)
app.command()(sweep)
app.command()(report)
app.command()(reproduce)
app.command()(baseline)
app.command()(predict)
app.command()(export)
app.command("noise-study")(noise_study)
app.add_typer(config_app)


def main() -> None:
    """Entry point of the ``qhn`` command: one line and an exit code for every expected
    failure (see :mod:`qhn.cli_errors`); ``--debug``, anywhere, shows tracebacks. Freed
    temporaries stay on the heap for reuse (:func:`qhn.heap.keep_freed_memory`)."""
    import sys

    from qhn.heap import keep_freed_memory

    keep_freed_memory()
    app(args=debug_first(sys.argv[1:]), prog_name="qhn")


if __name__ == "__main__":
    main()
