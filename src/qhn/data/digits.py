"""Scaled-down handwritten digits: scikit-learn's bundled 8×8 set averaged to 4×4 (METHOD.md §6).

``sklearn.datasets.load_digits`` reads files shipped inside scikit-learn, so no network access is
needed. Each 8×8 image (values 0..16) is averaged over 2×2 blocks into 4×4 and flattened row-major
into 16 features; two classes are kept and the first becomes label 0. The task is logistic
regression with ±1 weights: 16 pixel weights (row-major) and a bias, 17 bits, or 19 with the two
alphabet bits of METHOD.md §5.

Feature scaling (option ``scaling``):

- ``"unit"`` (default): ``pixel / 16``, in ``[0, 1]``, as the MNIST reference uses raw intensities;
- ``"centred"``: ``pixel / 16`` minus its training-set mean;
- ``"standardized"``: zero mean, unit variance per pixel on the training set (a blank pixel is
  only centred).
"""

from __future__ import annotations

import numpy as np

from qhn.data.splits import as_tensors, rng_streams, standardize, stratified_split
from qhn.data.tasks import Task
from qhn.errors import ConfigError, choices
from qhn.validation import check_fraction

__all__ = ["SCALINGS", "build_digits", "digits_4x4"]

SCALINGS = ("unit", "centred", "standardized")


def digits_4x4() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 scikit-learn digits averaged to 4×4.

    Shapes: returns images ``(1797, 16)`` float64 in ``[0, 16]`` (row-major 4×4) and digits
    ``(1797,)`` int64.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    pooled = images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    return pooled.reshape(-1, 16), np.asarray(bunch.target, dtype=np.int64)


def build_digits(
    *,
    seed: int,
    classes: tuple[int, int] = (0, 1),
    alphabet_bits: bool = False,
    test_fraction: float = 0.3,
    scaling: str = "unit",
) -> Task:
    """Two digit classes at 4×4, a seeded stratified train/test split, cross-entropy.

    Label 0 is ``classes[0]``, label 1 is ``classes[1]``. ``test_fraction`` of each class goes to
    the test set.
    """
    from qhn.models.network import BinaryNetwork

    if len(classes) != 2 or len(set(classes)) != 2 or not set(classes) <= set(range(10)):
        raise ConfigError(f"classes must be two different digits 0..9, got {classes!r}")
    if scaling not in SCALINGS:
        raise ConfigError(f"unknown scaling {scaling!r}; choose one of: {choices(SCALINGS)}")
    test_fraction = check_fraction("test_fraction", test_fraction)
    images, digits = digits_4x4()
    keep = np.isin(digits, classes)
    x = images[keep] / 16.0
    y = (digits[keep] == classes[1]).astype(np.int64)
    (split_rng,) = rng_streams(seed, 1)
    train, test = stratified_split(y, test_fraction, split_rng)
    x_train, x_test = x[train], x[test]
    if scaling == "centred":
        mean = x_train.mean(axis=0)
        x_train, x_test = x_train - mean, x_test - mean
    elif scaling == "standardized":
        x_train, x_test = standardize(x_train, x_test)
    network = BinaryNetwork((16, 1), bias=True, alphabet_bits=bool(alphabet_bits))
    x_train_t, y_train_t = as_tensors(x_train, y[train])
    x_test_t, y_test_t = as_tensors(x_test, y[test])
    return Task(
        name=f"digits{classes[0]}{classes[1]}" + ("+alphabet" if alphabet_bits else ""),
        n_bits=network.n_bits,
        loss="cross_entropy",
        network=network,
        x_train=x_train_t,
        y_train=y_train_t,
        x_test=x_test_t,
        y_test=y_test_t,
        n_classes=2,
        options={
            "classes": tuple(classes),
            "alphabet_bits": bool(alphabet_bits),
            "test_fraction": test_fraction,
            "scaling": scaling,
        },
        seed=seed,
        info={"class_names": [str(c) for c in classes]},
    )
