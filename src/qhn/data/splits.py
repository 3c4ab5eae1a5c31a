"""Seeded random streams, stratified splits and feature scaling shared by the task builders.

Every builder draws its randomness from independent child streams of one seed
(``numpy.random.SeedSequence(seed).spawn``), so the training set does not change when only the
size of the test set does.
"""

from __future__ import annotations

import numpy as np
import torch

from qhn.errors import ConfigError
from qhn.validation import check_fraction

__all__ = [
    "as_tensors",
    "rng_streams",
    "standardize",
    "stratified_split",
]


def rng_streams(seed: int, count: int) -> list[np.random.Generator]:
    """``count`` independent generators derived from ``seed``."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(count)]


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale features to zero mean and unit variance using the training statistics only.

    ``x' = (x − μ_train) / σ_train`` per column; a constant column (``σ_train = 0``) is only
    centred. Shapes: ``(B, d)`` each → same shapes.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((x - mean) / std for x in (train, *others))


def stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded stratified split: within each class, ``round(test_fraction · n_c)``
    examples (at least one, and at least one left for training) go to the test set.

    Shapes: ``y`` ``(B,)`` → train indices, test indices (each sorted, int64).
    """
    check_fraction("test_fraction", test_fraction)
    test_parts = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            raise ConfigError(
                f"class {label!r} has {len(members)} example(s); a split needs at least 2 per class"
            )
        n_test = min(max(1, round(test_fraction * len(members))), len(members) - 1)
        test_parts.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train.astype(np.int64), test.astype(np.int64)


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as float64 ``(B, d)``, labels as int64 ``(B,)`` torch tensors."""
    return (
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)),
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
    )
