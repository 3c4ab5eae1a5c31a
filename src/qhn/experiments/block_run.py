"""The run path of block-factorized hypernetworks trained from sampled networks.

``blocks = k`` (or explicit sizes) in a run config replaces the one ``n``-qubit circuit by
independent circuits on consecutive bit blocks (:mod:`qhn.block_hypernetwork`) and the exact
objectives by their sampled counterparts (:mod:`qhn.inference.sampled`): ``shots`` networks and a
minibatch of ``batch_size`` examples per step, the gradient by ``estimator`` =
``local-expectation`` (default) or ``score-function``. This is how a network of thousands of
bits (``digits10``: 1,210) trains: nothing enumerates ``2^n``.

:func:`build_block_run` is called by :func:`qhn.experiments.runner.build_run`; the rest of the
run path (training loop, checkpoints, resume, ``summary.json``) is shared.
:func:`evaluate_block_run` measures the trained model from :data:`EVAL_SHOTS` draws.
"""

from __future__ import annotations

from typing import Any

import torch

from qhn.backends.registry import get_backend
from qhn.block_hypernetwork import BlockHypernetwork, block_sizes
from qhn.errors import ConfigError
from qhn.gradients.block_estimators import BLOCK_ESTIMATORS
from qhn.inference.data_term import DataTerm
from qhn.inference.sampled import SampledObjective
from qhn.train.evaluate_samples import evaluate_from_samples
from qhn.validation import check_int

__all__ = [
    "EVAL_SHOTS",
    "build_block_run",
    "check_block_config",
    "check_blocks_and_batch",
    "evaluate_block_run",
    "too_wide_message",
]

#: Draws of ``q`` behind the final metrics (BMA, sample and mode accuracy) of a block run.
EVAL_SHOTS = 1000
#: Bits per block that ``too_wide_message`` suggests.
SUGGESTED_BLOCK = 10


def too_wide_message(task_name: str, n_bits: int) -> str:
    """The one-line refusal of an exact (or single-circuit) run on a task of ``n_bits`` bits."""
    blocks = -(-n_bits // SUGGESTED_BLOCK)
    return (
        f"task {task_name!r} has {n_bits} bits: exact training would enumerate 2^{n_bits} "
        f"networks and one circuit would need 2^{n_bits} amplitudes; train it block-factorized "
        f"from sampled networks: blocks = {blocks}, shots = 8, batch_size = 256 (e.g. qhn train "
        "--config examples/digits10.toml)"
    )


def check_block_config(config) -> None:
    """Validate the keys of a block run (``blocks`` set) before any compute; normalizes
    ``blocks`` (an int, or a tuple of sizes)."""
    blocks = config.blocks
    check_blocks_and_batch(config)
    if config.shots is None or config.shots < 2:
        raise ConfigError(
            f"blocks = {blocks!r} trains from sampled networks and needs shots = an integer >= 2 "
            f"(networks per step, e.g. shots = 8), got shots = {config.shots!r}"
        )
    if config.estimator not in ("auto", *BLOCK_ESTIMATORS):
        raise ConfigError(
            f"estimator {config.estimator!r} cannot train a block-factorized hypernetwork; "
            "choose one of: auto, local-expectation, score-function"
        )
    if config.noise:
        raise ConfigError("a [noise] table cannot be used with blocks; remove [noise]")
    if config.train.optimizer == "lbfgs":
        raise ConfigError(
            "optimizer 'lbfgs' needs a deterministic objective, but blocks train from samples; "
            'use train.optimizer = "adam"'
        )


def check_blocks_and_batch(config) -> None:
    """Check ``blocks`` (when set; normalized to an int or a tuple of sizes) and ``batch_size``."""
    blocks = config.blocks
    if isinstance(blocks, list | tuple):
        sizes = tuple(blocks)
        if not sizes or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in sizes):
            raise ConfigError(
                f"blocks must be a positive integer or an array of positive sizes, got {blocks!r}"
            )
        object.__setattr__(config, "blocks", sizes)
    elif blocks is not None:
        check_int("blocks", blocks, 1)
    if config.batch_size is not None:
        check_int("batch_size", config.batch_size, 1)


def build_block_run(config, task):
    """Data term, block hypernetwork and sampled objective of ``config`` on ``task``.

    Returns a :class:`qhn.experiments.runner.Run` (no landscape).
    """
    from qhn.experiments.runner import Run, build_circuit

    if task.network is None:
        raise ConfigError(
            f"blocks need a task with a network evaluated on minibatches; task {task.name!r} "
            "is a cost vector (leave blocks unset)"
        )
    sizes = block_sizes(task.n_bits, config.blocks)
    backend = get_backend(config.backend, seed=config.train.seed)
    estimator = config.resolved_estimator
    model = BlockHypernetwork(
        sizes,
        lambda m: build_circuit(config, m),
        backend,
        estimator,
        init=config.init,
        init_scale=config.init_scale,
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    objective = SampledObjective(
        config.objective,
        task,
        shots=config.shots,
        batch_size=config.batch_size,
        estimator=estimator,
        beta=config.beta,
        lam=config.lam,
        prior_p=config.prior_p,
        kernel_ratios=config.kernel_bandwidths,
    )
    model.run_info = {
        "blocks": len(sizes),
        "block_sizes": sorted(set(sizes)),
        "batch_size": objective.batch_size or task.n_train,
        "eval_shots": EVAL_SHOTS,
    }
    if config.objective == "selbo":
        model.run_info["kernel_bandwidths_rule"] = (
            "median heuristic: sigma_j = r_j * median Hamming distance / 4, r = "
            f"{list(config.kernel_bandwidths)}"
        )
    data_term = DataTerm(task.n_bits, task.n_train, task.temperature, cost_fn=task.cost)
    return Run(config, task, None, data_term, model.circuit, model, objective)


def evaluate_block_run(
    model, task, *, landscape=None, shots=None, generator=None
) -> tuple[dict[str, Any], None]:
    """Final metrics of a block run from :data:`EVAL_SHOTS` draws
    (:func:`~qhn.train.evaluate_samples.evaluate_from_samples`), with the run's block facts."""
    out = evaluate_from_samples(model, task, shots=EVAL_SHOTS, generator=generator)
    out.update(getattr(model, "run_info", {}))
    return out, None
