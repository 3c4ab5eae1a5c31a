"""``method`` as a run field: a :class:`RunConfig` that names a classical baseline runs it.

``method`` unset (or ``"qhn"``) is the quantum hypernetwork; a name of
:data:`qhn.baselines.METHODS` runs that baseline through :func:`qhn.baselines.run_baseline` in
the same run directory layout, so a sweep grid can vary ``method`` next to ``objective``. The
baseline takes the run's ``task``, ``task_options``, ``data_seed``, ``temperature``,
``prior_p``, ``train.seed`` (its ``seed``) and ``train.steps`` (its ``steps``); its other options
(``budget``, ``tau``, ``lr``, ``replicas``, ``restarts``, …) sit in the run's ``baseline`` table.
The run directory's ``config.toml`` is the :class:`RunConfig` (so sweep results read it like any
run); its ``summary.json`` is the baseline's, with ``method`` naming it.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qhn.errors import ConfigError

if TYPE_CHECKING:
    from qhn.baselines.config import BaselineConfig
    from qhn.experiments.config import RunConfig

__all__ = ["QHN", "baseline_config", "is_baseline", "method_name", "method_names", "run_method"]

QHN = "qhn"
#: Baseline fields that come from the run's own fields (baseline name → run key).
MAPPED = {
    "method": "method",
    "task": "task",
    "task_options": "task_options",
    "data_seed": "data_seed",
    "temperature": "temperature",
    "prior_p": "prior_p",
    "seed": "train.seed",
    "steps": "train.steps",
}


def method_names() -> tuple[str, ...]:
    """``"qhn"`` and every baseline name."""
    from qhn.baselines.config import METHODS

    return (QHN, *METHODS)


def method_name(config: RunConfig) -> str:
    """The run's method: ``"qhn"`` or a baseline name."""
    return config.method or QHN


def is_baseline(config: RunConfig) -> bool:
    return method_name(config) != QHN


def baseline_config(config: RunConfig) -> BaselineConfig:
    """The :class:`BaselineConfig` a baseline run of ``config`` runs (module docstring).

    Raises :class:`ConfigError` for a key of the ``baseline`` table that the run sets itself or
    that no baseline has, and for any invalid baseline value.
    """
    from qhn.baselines.config import BaselineConfig

    valid = {f.name for f in fields(BaselineConfig)} - set(MAPPED)
    for key in config.baseline:
        if key in MAPPED:
            raise ConfigError(
                f"baseline.{key} is taken from the run's {MAPPED[key]}; set {MAPPED[key]} "
                f"instead of baseline.{key}"
            )
        if key not in valid:
            raise ConfigError(
                f"unknown baseline option {key!r}; valid options: {', '.join(sorted(valid))}"
            )
    return BaselineConfig(
        method=method_name(config),
        task=config.task,
        task_options=dict(config.task_options),
        data_seed=config.data_seed,
        temperature=config.temperature,
        prior_p=config.prior_p,
        seed=config.train.seed,
        steps=config.train.steps,
        **config.baseline,
    )


def run_method(
    config: RunConfig,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the baseline ``config`` names in ``out_dir`` (its ``config.toml`` is ``config``).

    With ``resume``, a directory with a finished run returns its summary (without, it is
    refused); an unfinished one (baselines keep no checkpoints) starts over.
    """
    from qhn.baselines.runner import run_baseline
    from qhn.experiments.config import save_config
    from qhn.experiments.runner import SUMMARY, read_summary

    out = Path(out_dir)
    if resume and (out / SUMMARY).exists():
        return read_summary(out) or {}
    return run_baseline(
        baseline_config(config),
        out,
        cache_dir=cache_dir,
        save=lambda path: save_config(config, path),
    )
