"""One baseline run from a :class:`BaselineConfig`: build the task, train, evaluate, write the
run directory.

The directory matches ``qhn train``'s: ``config.toml`` (the baseline config), ``history.jsonl``
(one line per step) and ``summary.json`` (written atomically at the end, so its presence marks a
finished run). Distributions over bitstrings are measured by
:func:`qhn.train.evaluate.evaluate_with_support`, so their summary keys (``acc_*``, ``nll_*``,
``expected_cost``, ``mass_optimal``, …) are those of a QHN run; ``evaluations`` and
``example_evaluations`` count the training spend as defined in :mod:`qhn.baselines.common`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qhn.baselines.anneal import train_anneal
from qhn.baselines.bayesbinn import train_bayesbinn
from qhn.baselines.common import BaselineResult, require_network
from qhn.baselines.config import BaselineConfig, save_baseline_config
from qhn.baselines.floatnet import FloatNetwork, float_metrics, train_float
from qhn.baselines.search import (
    check_exhaustive,
    landscape_cost,
    train_exhaustive,
    train_random,
)
from qhn.baselines.ste import train_ste
from qhn.data.tasks import Task, get_task
from qhn.errors import ConfigError
from qhn.experiments.runner import CONFIG, MAX_EXACT_BITS, SUMMARY, check_out_dir, run_threads
from qhn.io import atomic_write_json
from qhn.train import HistoryWriter
from qhn.train.evaluate import evaluate_with_support

if TYPE_CHECKING:
    from qhn.landscape import Landscape

__all__ = [
    "GRADIENT_METHODS",
    "SEARCH_METHODS",
    "TRAINERS",
    "build_task",
    "check_method",
    "run_baseline",
    "train_baseline",
]

logger = logging.getLogger(__name__)

Trainer = Callable[[Task, BaselineConfig, Callable[[dict[str, Any]], None]], BaselineResult]

#: Methods that train network weights by gradients (they need a task with a network).
GRADIENT_METHODS = ("bayesbinn", "ste", "float")
#: Methods that only search over bitstrings (they read ``C(s)`` from a landscape when given one).
SEARCH_METHODS = ("anneal", "random")
#: The training function of each method.
TRAINERS: dict[str, Trainer] = {
    "bayesbinn": train_bayesbinn,
    "ste": train_ste,
    "anneal": train_anneal,
    "random": train_random,
    "exhaustive": train_exhaustive,
    "float": train_float,
}


def build_task(config: BaselineConfig) -> Task:
    """The task of ``config`` (its name, options, data seed and temperature)."""
    return get_task(
        config.task, seed=config.data_seed, temperature=config.temperature, **config.task_options
    )


def check_method(config: BaselineConfig, task: Task) -> None:
    """Refuse a method the task cannot serve, before anything is computed or written."""
    if config.method in GRADIENT_METHODS:
        require_network(task, config.method)
    if config.method == "exhaustive":
        check_exhaustive(task)


def train_baseline(
    config: BaselineConfig,
    task: Task,
    record: Callable[[dict[str, Any]], None] = lambda _: None,
    *,
    cache_dir: str | Path | None = None,
    landscape: Landscape | None = None,
) -> BaselineResult:
    """Train ``config.method`` on ``task``; ``record`` receives each step's history line.

    With ``landscape`` (the task's), the searches read ``C(s)`` from it
    (:func:`qhn.baselines.search.landscape_cost`).
    """
    trainer = TRAINERS[config.method]
    if config.method == "exhaustive":
        trainer = functools.partial(train_exhaustive, cache_dir=cache_dir)
    elif config.method in SEARCH_METHODS and landscape is not None:
        trainer = functools.partial(trainer, cost=landscape_cost(landscape.train_costs))
    return trainer(task, config, record)


def run_baseline(
    config: BaselineConfig,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    save: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Run one baseline and write its run directory; returns the summary.

    ``save(path)`` writes ``config.toml`` (default: the baseline config; a sweep point writes
    its run config, :mod:`qhn.experiments.methods`).

    Everything is validated (config, task, directory) before anything is written. A directory
    that already holds a finished run is refused.
    """
    out = Path(out_dir)
    check_out_dir(out)
    if (out / SUMMARY).exists():
        raise ConfigError(f"{out} already holds a finished run ({SUMMARY}); choose another --out")
    started = time.perf_counter()
    with run_threads():
        task = build_task(config)
        check_method(config, task)
        landscape = None
        if task.n_bits <= MAX_EXACT_BITS:
            from qhn.landscape import compute_landscape

            landscape = compute_landscape(task, cache_dir=cache_dir)
        out.mkdir(parents=True, exist_ok=True)
        if save is None:
            save_baseline_config(config, out / CONFIG)
        else:
            save(out / CONFIG)
        writer = HistoryWriter(out / "history.jsonl")
        writer.on_start([])

        def record(line: dict[str, Any]) -> None:
            writer.on_step(line, None)
            if progress is not None:
                progress(int(line["step"]), int(line.get("total", line["step"])), line)

        try:
            train_started = time.perf_counter()
            result = train_baseline(config, task, record, cache_dir=cache_dir, landscape=landscape)
            train_seconds = time.perf_counter() - train_started
        finally:
            writer.on_end()
        if isinstance(result.model, FloatNetwork):
            metrics = float_metrics(task, result.model)
        else:
            metrics, _ = evaluate_with_support(
                result.model,
                task,
                landscape=landscape,
                shots=None if result.model.exact else config.shots,
                generator=torch.Generator().manual_seed(config.seed + 1),
            )
        summary: dict[str, Any] = {
            "method": config.method,
            "task": config.task,
            "n_bits": task.n_bits,
            "steps": result.steps,
            "evaluations": result.evaluations,
            "example_evaluations": result.evaluations * task.n_train,
            **metrics,
            **result.extra,
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - started,
        }
        if config.method == "bayesbinn" and "expected_cost" in metrics:
            weight = task.n_train / task.temperature
            summary["free_energy"] = weight * metrics["expected_cost"] + result.extra["kl"]
        if landscape is not None:
            summary["optimum_value"] = landscape.optimum_value
            summary["optimum_degeneracy"] = landscape.degeneracy
        atomic_write_json(out / SUMMARY, summary)
    logger.info("baseline %s on %s: %s", config.method, config.task, out)
    return summary
