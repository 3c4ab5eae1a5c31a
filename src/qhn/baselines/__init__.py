"""Classical baselines trained and measured in the same harness as the quantum hypernetwork.

Methods (:data:`METHODS`): ``bayesbinn`` (mean-field Bernoulli by the Bayesian learning rule),
``ste`` (BinaryConnect), ``anneal`` (simulated annealing / parallel tempering), ``random``
(random search), ``exhaustive`` (the landscape optimum) and ``float`` (real weights, an upper
reference). :func:`run_baseline` writes a run directory like ``qhn train``'s; ``evaluations``
counts network-loss evaluations over the training set (:mod:`qhn.baselines.common`).
"""

from qhn.baselines.config import (
    METHODS,
    BaselineConfig,
    apply_baseline_overrides,
    load_baseline_config,
    save_baseline_config,
)
from qhn.baselines.runner import TRAINERS, build_task, run_baseline, train_baseline

__all__ = [
    "METHODS",
    "TRAINERS",
    "BaselineConfig",
    "apply_baseline_overrides",
    "build_task",
    "load_baseline_config",
    "run_baseline",
    "save_baseline_config",
    "train_baseline",
]
