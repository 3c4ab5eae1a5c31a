"""Train on an in-memory task, from Python: the ``qhn train`` code path without a run directory.

:func:`build_run_for_task` is :func:`qhn.experiments.runner.build_run` for a :class:`Task` built
in Python (:func:`qhn.data.from_arrays`, :func:`qhn.data.from_cost_function`, or any ``Task``)
and, optionally, a circuit of one's own (built with :mod:`qhn.circuits.ir`, or converted by
:func:`qhn.circuits.from_qiskit`) in place of the config's ansatz. :func:`train_task` then trains
and evaluates with the runner's seeds (initialization ``train.seed``, evaluation shots
``train.seed + 1``), so the same task, config and seed give the same bits as ``qhn train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from qhn.circuits.ir import Circuit
from qhn.data.tasks import Task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import (
    MAX_EXACT_BITS,
    Run,
    build_circuit,
    build_objective,
    run_threads,
)
from qhn.train.evaluate import Support

__all__ = ["TrainedRun", "build_run_for_task", "train_task"]


def build_run_for_task(config: RunConfig, task: Task, circuit: Circuit | None = None) -> Run:
    """Landscape (when enumerable), data term, circuit, model and objective for ``task``;
    ``config.task`` and its options are not looked up. ``circuit`` (default: the config's
    ansatz) must have one qubit per bit of the task."""
    from qhn.backends import StatevectorBackend
    from qhn.backends.base import check_sample_memory
    from qhn.backends.sample_only import SampleOnly
    from qhn.hypernetwork import QuantumHypernetwork
    from qhn.inference.data_term import DataTerm
    from qhn.landscape import compute_landscape

    if task.temperature != config.temperature:
        task = dataclasses.replace(task, temperature=config.temperature)
    if circuit is not None:
        if not isinstance(circuit, Circuit):
            raise ConfigError(
                f"circuit must be a qhn Circuit (qhn.circuits.from_qiskit converts a Qiskit one), "
                f"got {type(circuit).__name__}"
            )
        if circuit.n_qubits != task.n_bits:
            raise ConfigError(
                f"the circuit has {circuit.n_qubits} qubits but the task has {task.n_bits} bits; "
                "give one qubit per network bit"
            )
    landscape = None
    if task.n_bits <= MAX_EXACT_BITS:
        landscape = compute_landscape(task)
    elif config.shots is None:
        raise ConfigError(
            f"this task has {task.n_bits} bits; exact training enumerates all networks and stops "
            f"at {MAX_EXACT_BITS} bits: set shots=<int> to train from samples, or use fewer "
            "features, classes or hidden units"
        )
    exact = config.shots is None
    data_term = DataTerm(
        task.n_bits,
        task.n_train,
        task.temperature,
        cost_fn=task.cost,
        cost_vector=landscape.train_costs if (exact and landscape is not None) else None,
    )
    circuit = circuit if circuit is not None else build_circuit(config, task.n_bits)
    backend = StatevectorBackend()
    if config.shots is not None:
        # The widest measurement of a step: every parameter-shifted circuit at once.
        batch = 2 * circuit.n_params if config.resolved_estimator == "parameter-shift" else 1
        check_sample_memory(max(batch, 1), config.shots, task.n_bits, backend.memory_budget)
    if config.backend == "sampled":
        backend = SampleOnly(backend)
    model = QuantumHypernetwork(
        circuit,
        backend,
        config.resolved_estimator,
        init=config.init,
        init_scale=config.init_scale,
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    objective = build_objective(config, data_term, task.n_bits)
    objective.check(model)
    return Run(config, task, landscape, data_term, circuit, model, objective)


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
