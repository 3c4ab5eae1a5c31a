"""One training run from a :class:`RunConfig`: build, train, evaluate, write the run directory.

A run directory holds ``config.toml`` (enough to reproduce the run), ``history.jsonl`` (one line
per step), ``checkpoint.pt`` (for ``--resume``), ``summary.json`` (final metrics, written
atomically at the end, so its presence marks a completed run) and PNG figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qhn.backends.base import DEFAULT_MEMORY_BUDGET, check_sample_memory
from qhn.backends.registry import get_backend
from qhn.circuits import build_ansatz
from qhn.circuits.ir import Circuit
from qhn.data.tasks import Task, get_task
from qhn.errors import ConfigError
from qhn.experiments.block_run import evaluate_block_run
from qhn.experiments.config import RunConfig, config_differences, load_config, save_config
from qhn.experiments.step_cost import check_step_cost
from qhn.hypernetwork import QuantumHypernetwork
from qhn.inference import BernoulliPrior, HammingKernel
from qhn.inference.data_term import DataTerm
from qhn.inference.elbo import ELBO
from qhn.inference.mle import MLE
from qhn.inference.selbo import SELBO
from qhn.io import atomic_write_json
from qhn.landscape import Landscape, check_landscape_budget, compute_landscape
from qhn.threads import torch_threads
from qhn.train import CHECKPOINT_FILE, CHECKPOINT_SECONDS, HistoryWriter, fit, read_checkpoint
from qhn.train.evaluate import Support, evaluate_with_support
from qhn.train.loop import evaluate_objective

__all__ = [
    "MAX_EXACT_BITS",
    "RUN_THREADS",
    "Run",
    "build_run",
    "check_out_dir",
    "check_resume",
    "read_summary",
    "run",
    "run_threads",
    "training_evaluations",
]

logger = logging.getLogger(__name__)

#: Largest task whose landscape is enumerated for exact training and metrics.
MAX_EXACT_BITS = 22
#: Widest single circuit a run simulates; wider tasks need blocks.
MAX_CIRCUIT_QUBITS = 30
SUMMARY = "summary.json"
CONFIG = "config.toml"
#: Torch threads inside every run (see :func:`run_threads`).
RUN_THREADS = 1


@dataclass
class Run:
    """Everything a configured run is made of, before training."""

    config: RunConfig
    task: Task
    _landscape: Landscape | None
    data_term: DataTerm
    circuit: Circuit
    model: QuantumHypernetwork
    objective: Any
    #: Enumerates the landscape on first use when it was deferred (see :attr:`landscape`).
    deferred_landscape: Callable[[], Landscape] | None = None

    @property
    def landscape(self) -> Landscape | None:
        """The landscape (None when not enumerable), enumerated on first use if it was
        deferred: a sampled run trains without it and needs it only to evaluate
        (``expected_cost``, ``mass_optimal``, the optimum), so :func:`build_run` leaves it to
        the first reader."""
        if self._landscape is None and self.deferred_landscape is not None:
            self._landscape = self.deferred_landscape()
            self.deferred_landscape = None
        return self._landscape


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


def build_run(
    config: RunConfig,
    *,
    cache_dir: str | Path | None = None,
    task: Task | None = None,
    circuit: Circuit | None = None,
) -> Run:
    """Build task, landscape (when enumerable), data term, circuit, model and objective.

    ``task``: a task built in Python instead of the one ``config`` names (its temperature is
    set to ``config.temperature``); ``circuit``: a circuit of one's own, one qubit per bit,
    instead of the config's ansatz. Everything is checked here, before any training compute.
    """
    if task is None:
        task = get_task(
            config.task,
            seed=config.data_seed,
            temperature=config.temperature,
            **config.task_options,
        )
    elif task.temperature != config.temperature:
        task = dataclasses.replace(task, temperature=config.temperature)
    if circuit is not None and circuit.n_qubits != task.n_bits:
        raise ConfigError(
            f"the circuit has {circuit.n_qubits} qubits but the task has {task.n_bits} bits; "
            "give one qubit per network bit"
        )
    from qhn.experiments.mps_run import build_mps_run, check_mps_width, is_mps_sampled

    if is_mps_sampled(config):
        return build_mps_run(config, task, circuit)
    check_mps_width(config, task)
    if config.blocks is not None:
        from qhn.experiments.block_run import build_block_run

        return build_block_run(config, task)
    if task.n_bits > MAX_EXACT_BITS and (config.shots is None or task.n_bits > MAX_CIRCUIT_QUBITS):
        from qhn.experiments.block_run import too_wide_message

        raise ConfigError(too_wide_message(task.name, task.n_bits))
    landscape = None
    deferred = None
    if task.n_bits <= MAX_EXACT_BITS and config.shots is None:
        landscape = compute_landscape(task, cache_dir=cache_dir)
    elif task.n_bits <= MAX_EXACT_BITS:
        # Sampled training never reads C(s) of all networks: enumerate after training, for the
        # evaluation only (checked now, so that a run is not refused after it trained). Its
        # test costs come from the sampled networks, unless the noiseless metrics of a noisy or
        # sampled backend need them for the exact distribution.
        with_test = task.has_test and config.backend != "statevector"
        check_landscape_budget(task.n_bits, with_test=with_test)
        deferred = functools.partial(
            compute_landscape, task, cache_dir=cache_dir, with_test=with_test
        )
    elif config.shots is None:
        raise ConfigError(
            f"task {task.name!r} has {task.n_bits} bits; exact training enumerates all networks "
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
    circuit = circuit if circuit is not None else build_circuit(config, task.n_bits)
    check_step_cost(config, circuit)
    if config.shots is not None:
        # The widest measurement of a step: every parameter-shifted circuit at once.
        batch = 2 * circuit.n_params if config.resolved_estimator == "parameter-shift" else 1
        check_sample_memory(max(batch, 1), config.shots, task.n_bits, DEFAULT_MEMORY_BUDGET)
    precision = {"precision": config.precision} if config.precision != "float64" else {}
    backend = get_backend(
        config.backend, seed=config.train.seed, noise=config.noise or None, **precision
    )
    model = QuantumHypernetwork(
        circuit,
        backend,
        config.resolved_estimator,
        init=config.init,
        init_scale=config.init_scale,
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    objective = build_objective(config, data_term, task.n_bits)
    if config.readout_correction:
        from qhn.inference.readout_correction import correct_readout

        correct_readout(objective, config.backend, backend, config.noise, circuit)
    objective.check(model)
    return Run(config, task, landscape, data_term, circuit, model, objective, deferred)


def training_evaluations(record: dict[str, Any], n_bits: int, *, exact: bool) -> int:
    """Network-loss evaluations over the training set a QHN run spent, as the baselines count
    them (:mod:`qhn.baselines.common`), from a history record's execution counts: an exact
    objective enumerates ``E_q[C] = Σ_s q(s) C(s)`` over all ``2^n`` networks for each
    probability vector (one per step with backprop and Adam, one per function evaluation of
    L-BFGS, ``2P + 1`` per step with parameter shift); a sampled one evaluates one network per
    shot."""
    if exact:
        return int(record.get("probability_vectors", 0)) * 2**n_bits
    return int(record.get("shots", 0))


def block_evaluations(
    record: dict[str, Any], batch_size: int | None, n_train: int
) -> tuple[int, int]:
    """``(example_evaluations, evaluations)`` of a block-factorized run from a history record: its
    steps evaluate sampled networks (``S·(n + 1)`` per step with local expectations, ``S`` with
    the score function; ``network_evaluations``, cumulative) on a minibatch of ``B`` examples,
    so it spends ``network_evaluations · B`` example evaluations, reported also in
    training-set equivalents (÷ N, rounded) to compare with the baselines' ``evaluations``."""
    batch = n_train if batch_size is None else min(batch_size, n_train)
    examples = int(record.get("network_evaluations", 0)) * batch
    return examples, round(examples / n_train)


def run_threads() -> contextlib.AbstractContextManager[None]:
    """Torch uses :data:`RUN_THREADS` threads inside a run, however the run was started (``qhn
    train``, a sweep worker, Python): the same seed must give the same bits everywhere."""
    return torch_threads(RUN_THREADS)


def check_out_dir(out: Path) -> None:
    """Refuse an output path that cannot be a run directory, before anything is written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory; choose another --out")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is a file, not a directory")


def _previous_config(out: Path, state: dict[str, Any] | None) -> RunConfig | None:
    """The config a run directory was made with: the checkpoint's copy, else config.toml."""
    saved = (state or {}).get("extra", {}).get("run_config")
    try:
        if saved is not None:
            return RunConfig.from_dict(saved)
        if (out / CONFIG).exists():
            return load_config(out / CONFIG, check_task=False)
    except ConfigError as error:
        raise ConfigError(
            f"cannot resume {out}: its recorded config is unreadable ({error}); "
            "choose another --out"
        ) from None
    return None


def check_resume(out: Path, config: RunConfig, task: Task, *, resume: bool) -> str:
    """What a run directory allows, checked before anything is written to it.

    Returns ``"fresh"`` (start from step 0), ``"resume"`` (continue from ``checkpoint.pt``) or
    ``"finished"`` (a completed run with exactly this config: nothing to do). Refuses with one
    :class:`ConfigError` a finished or unfinished run without ``resume``, and a resume whose
    config differs from the run's in any field that changes the computation (every field but
    ``train.checkpoint_every``; ``train.steps`` may grow under a constant schedule) or whose
    task data changed: its message names each field, old → new.
    """
    finished = (out / SUMMARY).exists()
    if not resume:
        if finished:
            raise ConfigError(
                f"{out} already holds a finished run ({SUMMARY}); choose another --out, or "
                "--resume to continue it with more steps"
            )
        if (out / CHECKPOINT_FILE).exists():
            raise ConfigError(
                f"{out} holds an unfinished run ({CHECKPOINT_FILE}); add --resume to continue "
                "it, or choose another --out"
            )
        return "fresh"
    if finished and read_summary(out) is None:
        raise ConfigError(
            f"{out / SUMMARY} is not a readable JSON object (damaged after it was written); "
            f"delete it and run again with --resume to rebuild it from {CHECKPOINT_FILE}"
        )
    state = read_checkpoint(out)
    previous = _previous_config(out, state)
    if previous is None:
        if finished:
            raise ConfigError(
                f"cannot resume {out}: it has {SUMMARY} but neither {CHECKPOINT_FILE} nor "
                f"{CONFIG} to check the config against; choose another --out"
            )
        return "fresh"
    done = int(state["step"]) if state is not None else int(_summary_steps(out))
    differences = config_differences(previous, config)
    differences.pop("train.checkpoint_every", None)
    grows = False
    if (
        "train.steps" in differences
        and config.train.schedule == previous.train.schedule == "constant"
        and config.train.steps >= done
    ):
        differences.pop("train.steps")
        grows = True
    if differences:
        detail = ", ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in differences.items())
        raise ConfigError(
            f"cannot resume {out}: the config differs from the run's ({detail}); resume with "
            f"the run's own config (qhn train --out {out} --resume) or choose another --out"
        )
    recorded = (state or {}).get("extra", {}).get("task_fingerprint")
    if recorded is not None and recorded != task.fingerprint():
        raise ConfigError(
            f"cannot resume {out}: the data of task {config.task!r} changed since the run "
            "started (its fingerprint differs); choose another --out"
        )
    if finished and not grows:
        return "finished"
    if state is None:
        if finished:
            raise ConfigError(
                f"cannot continue {out} with more steps: its {CHECKPOINT_FILE} is missing; "
                "choose another --out"
            )
        return "fresh"
    return "resume"


def _summary_steps(out: Path) -> int:
    summary = read_summary(out)
    steps = summary.get("steps") if summary is not None else None
    return steps if isinstance(steps, int) else 0


def read_summary(out: Path) -> dict[str, Any] | None:
    """A run directory's ``summary.json`` as a dict; None when absent or not a JSON object."""
    try:
        value = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def run(
    config: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    plots: bool = True,
    checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
) -> dict[str, Any]:
    """Train one configuration and write its run directory. Returns the summary.

    Order, so that nothing computed is lost: validate everything (config, task, directory,
    resume compatibility: :func:`check_resume`) before writing anything; write ``config.toml``;
    train with checkpoints (every ``checkpoint_seconds`` of training, at the end, and on
    SIGINT/SIGTERM); evaluate in bounded memory; write ``summary.json`` atomically; only then
    draw figures, each of which may fail with a logged warning without losing the run.
    ``resume`` continues from ``out_dir/checkpoint.pt``; a finished run with the same config is
    not trained again (its summary is returned).
    """
    out = Path(out_dir)
    check_out_dir(out)
    if config.method is not None:
        from qhn.experiments.methods import run_method

        return run_method(config, out, cache_dir=cache_dir, resume=resume)
    started = time.perf_counter()
    with run_threads():
        built = build_run(config, cache_dir=cache_dir)
        state = check_resume(out, config, built.task, resume=resume)
        if state == "finished":
            logger.info("%s is already finished; nothing to do", out)
            return read_summary(out) or {}
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / CONFIG)
        warm_evaluations = 0
        if config.init == "warm":
            from qhn.experiments.warm_start import warm_start

            warm_evaluations = warm_start(built, cache_dir=cache_dir, state=state, out=out)
        restart: dict[str, Any] = {}
        if (config.restarts or 1) > 1:
            from qhn.experiments.restarts import choose_start

            restart = choose_start(built, state=state, out=out)
        result = fit(
            built.model,
            built.objective,
            config.train,
            callbacks=[HistoryWriter(out / "history.jsonl")],
            checkpoint_dir=out,
            resume=state == "resume",
            progress=progress,
            checkpoint_seconds=checkpoint_seconds,
            checkpoint_extra={
                "run_config": config.to_dict(),
                "task_fingerprint": built.task.fingerprint(),
                "warm_evaluations": warm_evaluations,
                **restart,
            },
        )
        train_seconds = result.wall_time
        trained = result.history[-1] if result.history else {}
        evaluations = warm_evaluations + training_evaluations(
            trained, built.task.n_bits, exact=config.shots is None
        )
        if restart:  # the k candidates; the chosen one's replay above repeats one of them
            evaluations = int(restart["restart_evaluations"])
        example_evaluations = evaluations * built.task.n_train
        from qhn.experiments.mps_run import is_mps_sampled

        sampled = config.blocks is not None or is_mps_sampled(config)
        if sampled:
            example_evaluations, evaluations = block_evaluations(
                trained, config.batch_size, built.task.n_train
            )
        evaluate_run = evaluate_block_run if sampled else evaluate_with_support
        final, support = evaluate_run(
            built.model,
            built.task,
            landscape=built.landscape,
            shots=config.shots,
            generator=torch.Generator().manual_seed(config.train.seed + 1),
        )
        at_end = evaluate_objective(
            built.model,
            built.objective,
            config.train,
            generator=torch.Generator().manual_seed(config.train.seed + 2),
        )
        summary: dict[str, Any] = {
            "task": config.task,
            "objective": config.objective,
            "ansatz": built.circuit.name,
            "n_bits": built.task.n_bits,
            "n_params": built.circuit.n_params,
            "estimator": built.model.estimator_name,
            "steps": result.steps_done,
            "stop_reason": result.stop_reason,
            "final_loss": at_end.get("loss"),
            "final_objective": at_end.get("objective"),
            "final_grad_norm": at_end.get("grad_norm"),
            "mmd2": at_end.get("mmd2"),
            "kl": at_end.get("kl"),
            **final,
            **built.model.stats.snapshot(),
            "evaluations": evaluations,
            "example_evaluations": example_evaluations,
            **{k: v for k, v in restart.items() if k != "restart_evaluations"},
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - started,
        }
        if built.landscape is not None and config.backend != "statevector":
            from qhn.experiments.noiseless import noiseless_metrics

            summary.update(noiseless_metrics(built))
        if built.landscape is not None:
            summary["optimum_value"] = built.landscape.optimum_value
            summary["optimum_degeneracy"] = built.landscape.degeneracy
        atomic_write_json(out / SUMMARY, summary)
        if plots:
            write_figures_safely(out, built, result.history, support)
    return summary


def write_figures_safely(
    out: Path, built: Run, history: list[dict[str, Any]], support: Support | None = None
) -> list[Path]:
    """Draw a run's figures after its summary is safe, from the evaluation's ``support`` (so
    they spend nothing more on the backend); a failure is logged, never raised."""
    try:
        from qhn.plots.run import write_run_figures

        return write_run_figures(out, built, history, support=support)
    except Exception as error:  # figures are optional: report and keep the run
        logger.warning("figures of %s skipped: %s: %s", out, type(error).__name__, error)
        return []
