"""``QHNClassifier``: a quantum hypernetwork as a scikit-learn classifier.

``fit(X, y)`` builds a task from the arrays (:func:`qhn.data.from_arrays`: classes from the sorted
distinct labels, features standardized with the training statistics, a binary network
``d → hidden… → outputs``), a :class:`~qhn.experiments.config.RunConfig` from the
hyperparameters, and trains exactly as ``qhn train`` does
(:func:`qhn.experiments.in_memory.train_task`: the runner's pieces, the same
:func:`qhn.train.fit`, the same evaluation with the same seeds), so the same data, options and
seed give the same bits as the CLI run.

Predictions use the networks the evaluation used (:class:`qhn.export.TrainedNetworks`):
``predictor="bma"`` averages ``p(y | x, s)`` over the support of ``q`` (exact ``q`` when
``shots`` is None), ``"mode"`` uses its most probable network.

Bit budget: the network has ``Σ_l (fan_in_l + 1)·fan_out_l`` bits, one qubit each; exact training
(``shots=None``) enumerates all ``2**n`` networks and stops at
:data:`~qhn.experiments.runner.MAX_EXACT_BITS` (22) bits, so wide inputs or many classes need
``shots``. scikit-learn is imported only with this module.

``sklearn.utils.estimator_checks.check_estimator`` (scikit-learn 1.9, ``steps=40``): 52 checks
pass; ``check_dtype_object`` is an expected failure by the bit budget (its 10 features and 4
classes make a 44-bit network); two are skipped by scikit-learn itself without pandas or
``SCIPY_ARRAY_API`` (tests/test_sklearn.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from qhn.circuits.ir import Circuit
from qhn.data.arrays import from_arrays
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.in_memory import train_task
from qhn.experiments.runner import MAX_EXACT_BITS
from qhn.export import TrainedNetworks, check_predictor, to_sequential

__all__ = ["QHNClassifier"]


class QHNClassifier(ClassifierMixin, BaseEstimator):
    """A binary neural network trained by a quantum hypernetwork, as a scikit-learn classifier.

    Hyperparameters are those of a run config (see :class:`~qhn.experiments.config.RunConfig`):
    ``objective`` (mle | elbo | selbo), ``beta``, ``lam``, ``prior_p``, ``temperature``;
    ``ansatz``, ``layers``, ``init``, or ``circuit``: a :class:`~qhn.circuits.ir.Circuit` of
    one's own (e.g. from :func:`qhn.circuits.from_qiskit`) with one qubit per network bit, in
    place of the ansatz; ``backend`` (statevector | sampled), ``estimator``,
    ``shots`` (None: exact); ``steps``, ``lr``, ``optimizer``; the network: ``hidden`` (int or
    tuple of widths, 0: logistic/softmax regression) and ``activation``; ``predictor``
    (bma | mode); ``test_fraction`` (held out of ``X`` by a stratified split for
    :attr:`metrics_`, 0: train on everything); ``random_state`` (int, or None for a fresh seed;
    seeds the initialization, the shots and the split).

    Fitted attributes: ``classes_``, ``n_features_in_``, ``q_`` (``(2**n,)`` the trained
    distribution: exact, or the empirical one of the evaluation shots; over 22 bits a dict
    ``{index: probability}`` of the sampled support), ``mode_network_`` (the
    mode network as a ``torch.nn.Sequential`` on standardized inputs, returning logits),
    ``history_`` (one record per step), ``metrics_`` (the run summary's metrics), ``networks_``
    (:class:`~qhn.export.TrainedNetworks`), ``model_`` (the hypernetwork), ``task_``,
    ``run_config_``.
    """

    def __init__(
        self,
        objective: str = "elbo",
        *,
        layers: int = 2,
        ansatz: str = "hardware_efficient",
        backend: str = "statevector",
        estimator: str = "auto",
        shots: int | None = None,
        steps: int = 200,
        lr: float = 0.05,
        optimizer: str = "adam",
        beta: float = 1.0,
        lam: float = 1.0,
        prior_p: float = 0.5,
        temperature: float = 1.0,
        init: str = "uniform",
        hidden: int | Sequence[int] = 0,
        activation: str = "relu",
        predictor: str = "bma",
        test_fraction: float = 0.0,
        random_state: int | None = None,
        circuit: Circuit | None = None,
    ) -> None:
        self.objective = objective
        self.layers = layers
        self.ansatz = ansatz
        self.backend = backend
        self.estimator = estimator
        self.shots = shots
        self.steps = steps
        self.lr = lr
        self.optimizer = optimizer
        self.beta = beta
        self.lam = lam
        self.prior_p = prior_p
        self.temperature = temperature
        self.init = init
        self.hidden = hidden
        self.activation = activation
        self.predictor = predictor
        self.test_fraction = test_fraction
        self.random_state = random_state
        self.circuit = circuit

    # ------------------------------------------------------------------ config
    def _seed(self) -> int:
        state = self.random_state
        if isinstance(state, (int, np.integer)) and not isinstance(state, bool) and state >= 0:
            return int(state)
        return int(check_random_state(state).randint(2**31 - 1))

    def run_config(self, seed: int = 0) -> RunConfig:
        """The :class:`RunConfig` these hyperparameters stand for (task ``"arrays"``)."""
        return RunConfig(
            task="arrays",
            data_seed=seed,
            objective=self.objective,
            beta=self.beta,
            lam=self.lam,
            prior_p=self.prior_p,
            temperature=self.temperature,
            ansatz=self.ansatz,
            layers=self.layers,
            init=self.init,
            backend=self.backend,
            estimator=self.estimator,
            shots=self.shots,
            train={"steps": self.steps, "lr": self.lr, "optimizer": self.optimizer, "seed": seed},
        )

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> QHNClassifier:
        """Train on features ``X (B, d)`` and labels ``y (B,)`` (any hashable, sortable labels)."""
        from scipy import sparse

        from qhn.data.arrays import validate_xy

        if sparse.issparse(X):
            raise ConfigError("QHNClassifier does not take sparse X; pass X.toarray()")
        check_predictor(self.predictor)
        validate_xy(X, y)
        X, y = validate_data(self, X, y, ensure_all_finite=True)
        check_classification_targets(y)
        seed = self._seed()
        config = self.run_config(seed)
        task = from_arrays(
            X,
            y,
            seed=seed,
            test_fraction=self.test_fraction,
            hidden=self.hidden,
            activation=self.activation,
        )
        trained = train_task(task, config, circuit=self.circuit)
        support = trained.support
        info = task.info
        self.classes_ = np.asarray(info["classes"])
        self.networks_ = TrainedNetworks.from_support(
            task.network,
            support,
            feature_mean=np.asarray(info["feature_mean"]),
            feature_std=np.asarray(info["feature_std"]),
            classes=list(info["classes"]),
        )
        if task.n_bits <= MAX_EXACT_BITS:
            self.q_ = support.distribution(task.n_bits).numpy()
        else:  # 2**n floats would not fit: the sampled support only
            self.q_ = dict(zip(support.indices.tolist(), support.weights.tolist(), strict=True))
        self.mode_network_ = to_sequential(self.networks_.to_arrays(top_k=1))
        self.history_ = trained.history
        self.metrics_ = trained.metrics
        self.model_ = trained.run.model
        self.task_ = task
        self.run_config_ = config
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(B, K)``, columns in the order of ``classes_``."""
        check_is_fitted(self, "networks_")
        X = validate_data(self, X, reset=False, ensure_all_finite=True)
        return self.networks_.predict_proba(X, check_predictor(self.predictor)).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (a tie goes to the earlier class)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def export(
        self, path: str | Path | None = None, format: str = "npz", *, top_k: int | None = None
    ) -> dict[str, Any]:
        """The trained networks as arrays (see :mod:`qhn.export`); written to ``path`` too."""
        check_is_fitted(self, "networks_")
        if path is not None:
            self.networks_.save(path, format, top_k=top_k)
        return self.networks_.to_arrays(top_k)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
