"""One training run from a :class:`RunConfig`: build, train, evaluate, write the run directory.

A run directory holds ``config.toml`` (enough to reproduce the run), ``history.jsonl`` (one line
per step), ``checkpoint.pt`` (for ``--resume``), ``summary.json`` (final metrics, written
atomically at the end, so its presence marks a completed run) and PNG figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qhn.backends import StatevectorBackend
from qhn.backends.sample_only import SampleOnly
from qhn.circuits import build_ansatz
from qhn.circuits.ir import Circuit
from qhn.data.tasks import Task, get_task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig, save_config
from qhn.hypernetwork import QuantumHypernetwork
from qhn.inference import BernoulliPrior, HammingKernel
from qhn.inference.data_term import DataTerm
from qhn.inference.elbo import ELBO
from qhn.inference.mle import MLE
from qhn.inference.selbo import SELBO
from qhn.io import atomic_write_json
from qhn.landscape import Landscape, compute_landscape
from qhn.train import HistoryWriter, fit
from qhn.train.evaluate import evaluate

__all__ = ["MAX_EXACT_BITS", "Run", "build_run", "run"]

logger = logging.getLogger(__name__)

#: Largest task whose landscape is enumerated for exact training and metrics.
MAX_EXACT_BITS = 22
SUMMARY = "summary.json"


@dataclass
class Run:
    """Everything a configured run is made of, before training."""

    config: RunConfig
    task: Task
    landscape: Landscape | None
    data_term: DataTerm
    circuit: Circuit
    model: QuantumHypernetwork
    objective: Any


def build_circuit(config: RunConfig, n_qubits: int) -> Circuit:
    """The ansatz of ``config`` on ``n_qubits`` (layers = 0 gives the product state)."""
    if config.ansatz == "hardware_efficient":
        return build_ansatz(
            "hardware_efficient",
            n_qubits,
            config.layers,
            rotations=config.rotations,
            entangler=config.entangler,
            topology=config.topology,
        )
    if config.ansatz == "qhn_reference" and config.layers == 0:
        return build_ansatz("product", n_qubits)
    return build_ansatz(config.ansatz, n_qubits, config.layers)


def build_objective(config: RunConfig, data_term: DataTerm, n_bits: int):
    """The objective named by ``config`` with its prior, kernel and weights."""
    shots = config.shots
    if config.objective == "mle":
        return MLE(data_term, shots=shots)
    prior = BernoulliPrior(config.prior_p, n_bits)
    if config.objective == "elbo":
        return ELBO(data_term, prior, beta=config.beta)
    kernel = HammingKernel(config.kernel_bandwidths)
    return SELBO(
        data_term, prior, kernel, lam=config.lam, shots=shots, analytic_prior=config.analytic_prior
    )


def build_run(config: RunConfig, *, cache_dir: str | Path | None = None) -> Run:
    """Build task, landscape (when enumerable), data term, circuit, model and objective.

    Everything is checked here, before any training compute.
    """
    task = get_task(
        config.task, seed=config.data_seed, temperature=config.temperature, **config.task_options
    )
    landscape = None
    if task.n_bits <= MAX_EXACT_BITS:
        landscape = compute_landscape(task, cache_dir=cache_dir)
    elif config.shots is None:
        raise ConfigError(
            f"task {config.task!r} has {task.n_bits} bits; exact training enumerates all networks "
            f"and stops at {MAX_EXACT_BITS} bits: set shots = <int> to train from samples"
        )
    exact = config.shots is None
    data_term = DataTerm(
        task.n_bits,
        task.n_train,
        task.temperature,
        cost_fn=task.cost,
        cost_vector=landscape.train_costs if (exact and landscape is not None) else None,
    )
    circuit = build_circuit(config, task.n_bits)
    backend = StatevectorBackend()
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


def run(
    config: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Train one configuration and write its run directory. Returns the summary.

    ``resume`` continues from ``out_dir/checkpoint.pt`` when present; a finished run (its
    ``summary.json`` exists) is not trained again.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / SUMMARY).exists():
        raise ConfigError(
            f"{out} already holds a finished run ({SUMMARY}); choose another --out or --resume"
        )
    started = time.perf_counter()
    built = build_run(config, cache_dir=cache_dir)
    save_config(config, out / "config.toml")
    result = fit(
        built.model,
        built.objective,
        config.train,
        callbacks=[HistoryWriter(out / "history.jsonl")],
        checkpoint_dir=out,
        resume=resume,
        progress=progress,
    )
    final = evaluate(
        built.model,
        built.task,
        landscape=built.landscape,
        shots=config.shots,
        generator=torch.Generator().manual_seed(config.train.seed + 1),
    )
    last = result.final
    summary: dict[str, Any] = {
        "task": config.task,
        "objective": config.objective,
        "ansatz": built.circuit.name,
        "n_bits": built.task.n_bits,
        "n_params": built.circuit.n_params,
        "estimator": built.model.estimator_name,
        "steps": result.steps_done,
        "stop_reason": result.stop_reason,
        "final_loss": last.get("loss"),
        "final_objective": last.get("objective"),
        "final_grad_norm": last.get("grad_norm"),
        "mmd2": last.get("mmd2"),
        "kl": last.get("kl"),
        **final,
        "train_seconds": result.wall_time,
        "wall_seconds": time.perf_counter() - started,
    }
    if built.landscape is not None:
        summary["optimum_value"] = built.landscape.optimum_value
        summary["optimum_degeneracy"] = built.landscape.degeneracy
    if plots:
        from qhn.plots.run import write_run_figures

        write_run_figures(out, built, result.history)
    atomic_write_json(out / SUMMARY, summary)
    return summary
