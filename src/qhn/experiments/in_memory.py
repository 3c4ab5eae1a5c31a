"""Train on an in-memory task, from Python: the ``qhn train`` code path without a run directory.

:func:`build_run_for_task` is :func:`qhn.experiments.runner.build_run` for a :class:`Task` built
in Python (:func:`qhn.data.from_arrays`, :func:`qhn.data.from_cost_function`, or any ``Task``)
and, optionally, a circuit of one's own (built with :mod:`qhn.circuits.ir`, or converted by
:func:`qhn.circuits.from_qiskit`) in place of the config's ansatz. :func:`train_task` then trains
and evaluates with the runner's seeds (initialization ``train.seed``, evaluation shots
``train.seed + 1``), so the same task, config and seed give the same bits as ``qhn train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from qhn.circuits.ir import Circuit
from qhn.data.tasks import Task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import Run, build_run, run_threads
from qhn.train.evaluate import Support

__all__ = ["TrainedRun", "build_run_for_task", "train_task"]


def build_run_for_task(config: RunConfig, task: Task, circuit: Circuit | None = None) -> Run:
    """Landscape (when enumerable), data term, circuit, model and objective for ``task``;
    ``config.task`` and its options are not looked up. ``circuit`` (default: the config's
    ansatz) must have one qubit per bit of the task."""
    if circuit is not None and not isinstance(circuit, Circuit):
        raise ConfigError(
            f"circuit must be a qhn Circuit (qhn.circuits.from_qiskit converts a Qiskit one), "
            f"got {type(circuit).__name__}"
        )
    return build_run(config, task=task, circuit=circuit)


@dataclass(frozen=True)
class TrainedRun:
    """What :func:`train_task` returns: the built run (``run.model`` is trained), the history
    (one record per step), the final metrics (as in ``summary.json``) and the support of ``q``
    they were computed on."""

    run: Run
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    support: Support


def train_task(
    task: Task, config: RunConfig | None = None, *, circuit: Circuit | None = None
) -> TrainedRun:
    """Train and evaluate on ``task`` as ``qhn train`` does (see the module docstring).

    ``config`` defaults to ``RunConfig(task=task.name)``; ``circuit`` replaces its ansatz.
    """
    from qhn.train import fit
    from qhn.train.evaluate import evaluate_with_support

    config = config if config is not None else RunConfig(task=task.name)
    with run_threads():
        built = build_run_for_task(config, task, circuit)
        result = fit(built.model, built.objective, config.train, checkpoint_seconds=None)
        metrics, support = evaluate_with_support(
            built.model,
            built.task,
            landscape=built.landscape,
            shots=config.shots,
            generator=torch.Generator().manual_seed(config.train.seed + 1),
        )
    metrics.update(steps=result.steps_done, stop_reason=result.stop_reason)
    return TrainedRun(built, result.history, metrics, support)
