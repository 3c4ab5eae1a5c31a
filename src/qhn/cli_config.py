"""``qhn config keys``: every key a run config (TOML or ``--set``) accepts, with its default."""

from __future__ import annotations

import typer

config_app = typer.Typer(
    name="config", help="Run configuration keys.", no_args_is_help=True, add_completion=False
)


@config_app.command("keys")
def keys(
    baseline: bool = typer.Option(
        False, "--baseline", help="List the keys of qhn baseline's config instead."
    ),
) -> None:
    """List every run-config key by group, with its type and default (`--set key=value`)."""
    from dataclasses import MISSING, fields

    if baseline:
        _baseline_keys()
        return

    from qhn.experiments.config import RunConfig
    from qhn.experiments.toml_format import toml_value
    from qhn.train import TrainConfig

    groups: dict[str, list[str]] = {}
    for f in fields(RunConfig):
        group = f.metadata.get("group", "other")
        if f.name == "train":
            for t in fields(TrainConfig):
                groups.setdefault(group, []).append(_line(f"train.{t.name}", t, toml_value))
        elif f.name == "task_options":
            groups.setdefault(group, []).append(
                "task_options.<option>  (per task; qhn tasks lists them with their defaults)"
            )
        elif f.default is MISSING and f.default_factory is MISSING:
            groups.setdefault(group, []).append(f"{f.name}  ({f.type}, required)")
        else:
            groups.setdefault(group, []).append(_line(f.name, f, toml_value))
    for group, lines in groups.items():
        typer.echo(f"[{group}]")
        for line in lines:
            typer.echo(f"  {line}")


def _line(key: str, f, toml_value) -> str:
    from dataclasses import MISSING

    default = f.default if f.default is not MISSING else f.default_factory()
    shown = "none (unset)" if default is None else toml_value(default)
    return f"{key} = {shown}  ({f.type})"


def _baseline_keys() -> None:
    from dataclasses import MISSING, fields

    from qhn.baselines.config import BaselineConfig
    from qhn.experiments.toml_format import toml_value

    for f in fields(BaselineConfig):
        if f.name == "task_options":
            typer.echo("  task_options.<option>  (per task; qhn tasks lists them)")
        elif f.default is MISSING and f.default_factory is MISSING:
            typer.echo(f"  {f.name}  ({f.type}, required)")
        else:
            typer.echo(f"  {_line(f.name, f, toml_value)}")
