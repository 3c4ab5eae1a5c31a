"""``digits10``: scikit-learn's 8×8 digits, all ten classes, a 64 → 16 → 10 binary network.

``sklearn.datasets.load_digits`` reads files bundled with scikit-learn (no download). Features are
the 64 pixels divided by 16 (in ``[0, 1]``), labels the digits 0..9; a seeded stratified split
keeps ``test_fraction`` (default 30 %) of each class for testing (1,257 train / 540 test images).
The network has ±1 weights and biases: ``64·16 + 16 + 16·10 + 10 = 1,210`` bits, ReLU hidden units
by default (or ``sign``), a softmax output whose logits are multiplied by ``output_scale``
(:mod:`qhn.models.batched`; default ``1/√64 = 1/8``), and the cross-entropy loss.

No hypernetwork over 1,210 bits can enumerate ``2^1210`` networks: this task trains with a
block-factorized hypernetwork from sampled networks (``blocks``, ``shots``; see
``examples/digits10.toml``).
"""

from __future__ import annotations

import numpy as np

from qhn.data.splits import as_tensors, rng_streams, stratified_split
from qhn.data.tasks import Task
from qhn.errors import ConfigError, choices
from qhn.validation import check_fraction, check_int

__all__ = ["DIGITS10_ACTIVATIONS", "build_digits10"]

DIGITS10_ACTIVATIONS = ("relu", "sign")


def build_digits10(
    *,
    seed: int,
    hidden: int = 16,
    hidden_activation: str = "relu",
    output_scale: float = 0.0,
    test_fraction: float = 0.3,
) -> Task:
    """All ten digits at 8×8, pixels / 16, a seeded stratified split, cross-entropy.

    ``output_scale = 0`` (the default) means :func:`~qhn.models.batched.default_output_scale`,
    ``1/√64 = 1/8``.
    """
    from sklearn.datasets import load_digits

    from qhn.models.batched import ScaledBinaryNetwork, default_output_scale

    check_int("hidden", hidden, 1)
    if hidden_activation not in DIGITS10_ACTIVATIONS:
        raise ConfigError(
            f"unknown hidden_activation {hidden_activation!r} for digits10; choose one of: "
            f"{choices(DIGITS10_ACTIVATIONS)}"
        )
    if isinstance(output_scale, bool) or not isinstance(output_scale, int | float):
        raise ConfigError(f"output_scale must be a number >= 0, got {output_scale!r}")
    if output_scale < 0:
        raise ConfigError(
            f"output_scale must be > 0 (or 0 for the default 1/sqrt(64) = 1/8), got {output_scale}"
        )
    test_fraction = check_fraction("test_fraction", test_fraction)
    sizes = (64, hidden, 10)
    scale = float(output_scale) or default_output_scale(sizes)
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    (split_rng,) = rng_streams(seed, 1)
    train, test = stratified_split(y, test_fraction, split_rng)
    network = ScaledBinaryNetwork(
        sizes, bias=True, hidden_activation=hidden_activation, output_scale=scale
    )
    x_train, y_train = as_tensors(x[train], y[train])
    x_test, y_test = as_tensors(x[test], y[test])
    return Task(
        name="digits10",
        n_bits=network.n_bits,
        loss="cross_entropy",
        network=network,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=10,
        options={
            "hidden": hidden,
            "hidden_activation": hidden_activation,
            "output_scale": float(output_scale),
            "test_fraction": test_fraction,
        },
        seed=seed,
        info={"class_names": [str(c) for c in range(10)], "output_scale_used": scale},
    )
