"""The ``qhn`` command line: thin wrappers that parse, call the library and render progress."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="qhn",
    help="Train binary neural networks with quantum hypernetworks.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Train binary neural networks with quantum hypernetworks."""


@app.command()
def demo() -> None:
    """A small showcase: build a circuit, print its top bitstrings and a gradient."""
    from qhn.demo import run_demo

    typer.echo(run_demo())


def main() -> None:
    """Entry point of the ``qhn`` command."""
    app()


if __name__ == "__main__":
    main()
