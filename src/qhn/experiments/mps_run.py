"""The run path of MPS hypernetworks trained from sampled networks (no enumeration).

A run with ``backend = "mps"``, ``shots`` set and ``estimator`` = ``auto``, ``local-expectation``
or ``score-function`` trains **one circuit over all** ``n`` **bits**
(e.g. digits10's 1,210 qubits) simulated as an exact MPS (:mod:`qhn.mps_hypernetwork`), from
``shots`` sampled networks × minibatches of ``batch_size`` examples per step
(:mod:`qhn.inference.mps_sampled`), with the gradient by ``estimator`` = ``local-expectation``
(the default for ``auto``) or ``score-function`` (:mod:`qhn.gradients.mps_estimators`). ELBO's KL
is a Monte Carlo estimate with the exact ``log q``; SELBO uses the median-heuristic kernel.

With ``blocks`` as well, the same model runs on
:func:`~qhn.mps_hypernetwork.block_diagonal_circuit`: independent circuits per block with no
limit on a block's size (``blocks = 11`` gives 110-qubit blocks on digits10). A block's entropy
and KL are then Monte Carlo estimates like the whole network's (they are never enumerated; the
statevector blocks of :mod:`qhn.experiments.block_run` keep the exact per-block KL).

The enumerating MPS paths (``shots`` unset: ``probs`` of all ``2^n`` networks and backprop; or
parameter shift) stay for ``n ≤ 20``; :func:`mps_wide_message` is their refusal above that.
"""

from __future__ import annotations

import torch

from qhn.backends.mps_state import MAX_PROBS_QUBITS
from qhn.backends.registry import get_backend
from qhn.block_hypernetwork import block_sizes
from qhn.errors import ConfigError
from qhn.experiments.block_run import EVAL_SHOTS, check_blocks_and_batch
from qhn.inference.data_term import DataTerm
from qhn.inference.mps_sampled import MPSSampledObjective
from qhn.mps_hypernetwork import MPS_ESTIMATORS, MPSHypernetwork, block_diagonal_circuit

__all__ = [
    "build_mps_run",
    "check_mps_config",
    "check_mps_width",
    "is_mps_sampled",
    "mps_wide_message",
]


def is_mps_sampled(config) -> bool:
    """Whether ``config`` trains an MPS hypernetwork from samples (this module's path)."""
    if config.backend != "mps" or config.estimator not in ("auto", *MPS_ESTIMATORS):
        return False
    return config.shots is not None or config.estimator == "local-expectation"


def mps_wide_message(task_name: str, n_bits: int, estimator: str) -> str:
    """The one-line refusal of enumerating MPS training on a task of ``n_bits`` bits."""
    return (
        f"task {task_name!r} has {n_bits} bits: estimator {estimator!r} on backend 'mps' works "
        f"on all 2^{n_bits} probabilities (or 2P circuits per step) and stops at "
        f"{MAX_PROBS_QUBITS} bits; train from sampled networks: shots = 4, batch_size = 128, "
        'estimator = "local-expectation" (e.g. qhn train --config examples/digits10_mps.toml)'
    )


def check_mps_width(config, task) -> None:
    """Refuse enumerating training on backend ``mps`` (exact objectives, backprop, parameter
    shift) above ``MAX_PROBS_QUBITS`` bits, before compute."""
    if config.backend == "mps" and config.blocks is None and task.n_bits > MAX_PROBS_QUBITS:
        raise ConfigError(mps_wide_message(task.name, task.n_bits, config.resolved_estimator))


def check_mps_config(config) -> None:
    """Validate a sampled MPS run (:func:`is_mps_sampled`) before any compute; normalizes
    ``blocks`` like :func:`~qhn.experiments.block_run.check_block_config`."""
    estimator = config.resolved_estimator
    if estimator not in MPS_ESTIMATORS:
        raise ConfigError(
            f"estimator {config.estimator!r} cannot train an MPS hypernetwork from samples "
            "(backprop and parameter-shift need all 2^n probabilities or 2P circuits per step); "
            'use estimator = "local-expectation" or "score-function"'
        )
    least = 2 if estimator == "score-function" else 1
    if config.shots is None or config.shots < least:
        raise ConfigError(
            f"estimator {estimator!r} on backend 'mps' trains from sampled networks and needs "
            f"shots = an integer >= {least} (networks per step, e.g. shots = 4), got "
            f"shots = {config.shots!r}"
        )
    check_blocks_and_batch(config)
    if config.noise:
        raise ConfigError("a [noise] table cannot be used with backend 'mps'; remove [noise]")
    if config.readout_correction:
        raise ConfigError("readout_correction has no use on the noiseless 'mps' backend; remove it")
    if config.init not in ("uniform", "small") or (config.restarts or 1) > 1:
        raise ConfigError(
            f"init = {config.init!r} / restarts = {config.restarts!r} are not available for "
            'sampled MPS training; use init = "uniform" or "small" and leave restarts unset'
        )
    if config.train.optimizer == "lbfgs":
        raise ConfigError(
            "optimizer 'lbfgs' needs a deterministic objective, but sampled MPS training is "
            'stochastic; use train.optimizer = "adam"'
        )


def build_mps_run(config, task, circuit=None):
    """Data term, MPS hypernetwork and sampled objective of ``config`` on ``task``; ``circuit``:
    one's own circuit on all ``n`` bits instead of the config's ansatz.

    Returns a :class:`qhn.experiments.runner.Run` (no landscape).
    """
    from qhn.experiments.runner import Run, build_circuit

    if task.network is None:
        raise ConfigError(
            f"sampled MPS training needs a task with a network evaluated on minibatches; task "
            f"{task.name!r} is a cost vector: leave shots unset (exact training on 'mps')"
        )
    if circuit is not None or config.blocks is None:
        sizes = None
        circuit = circuit if circuit is not None else build_circuit(config, task.n_bits)
    else:
        sizes = block_sizes(task.n_bits, config.blocks, max_block=None)
        circuit = block_diagonal_circuit(sizes, lambda m: build_circuit(config, m))
    backend = get_backend(config.backend, seed=config.train.seed)
    backend.check_memory(circuit, 1, differentiable=True)
    estimator = config.resolved_estimator
    model = MPSHypernetwork(
        circuit,
        backend,
        estimator,
        init=config.init,
        init_scale=config.init_scale,
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    objective = MPSSampledObjective(
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
        "mps": "whole network" if sizes is None else f"{len(sizes)} blocks",
        "batch_size": objective.batch_size or task.n_train,
        "eval_shots": EVAL_SHOTS,
        "mode_rule": "greedy autoregressive decoding (exact mode only for a product state)",
    }
    if sizes is not None:
        model.run_info.update({"blocks": len(sizes), "block_sizes": sorted(set(sizes))})
    if config.objective == "elbo":
        model.run_info["kl_rule"] = "Monte Carlo E_q[log q - log p] with the exact MPS log q"
    if config.objective == "selbo":
        model.run_info["kernel_bandwidths_rule"] = (
            "median heuristic: sigma_j = r_j * median Hamming distance / 4, r = "
            f"{list(config.kernel_bandwidths)}"
        )
    data_term = DataTerm(task.n_bits, task.n_train, task.temperature, cost_fn=task.cost)
    return Run(config, task, None, data_term, circuit, model, objective)
