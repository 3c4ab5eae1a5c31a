"""Tasks from in-memory data: NumPy arrays, a torch ``Dataset``, or a cost function over bitstrings.

:func:`from_arrays` builds the same task as the ``csv`` task does from a file (METHOD.md §6): the
distinct labels, sorted, become classes ``0..K−1``; a seeded stratified split holds out
``test_fraction`` of each class (none when ``test_fraction = 0``); features are standardized with
the training statistics, ``x' = (x − μ_train) / σ_train`` (a constant column is only centred); the
network is ``d → hidden… → outputs`` with biases, one sigmoid output for two classes, ``K``
softmax outputs for ``K > 2``; cross-entropy. Given the rows of a CSV file and the same seed and
options, it gives the ``csv`` task's very data and network.

The scaling ``(μ, σ)`` and the original labels are kept in ``task.info`` (``feature_mean``,
``feature_std``, ``classes``), so new data can be scaled with :func:`scale_features`.

:func:`from_cost_function` tabulates a user cost ``C(s)`` over all ``2**n`` bitstrings (qubit 0
first, :mod:`qhn.bits`) into a cost-vector task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from qhn.bits import iter_bit_chunks
from qhn.data.splits import rng_streams, standardize, stratified_split
from qhn.data.tabular import classification_task
from qhn.data.tasks import PRECOMPUTED, Task
from qhn.errors import ConfigError
from qhn.validation import check_fraction

__all__ = [
    "MAX_TABULATED_BITS",
    "from_arrays",
    "from_cost_function",
    "hidden_sizes",
    "scale_features",
    "validate_xy",
]

#: Largest ``n`` whose cost function :func:`from_cost_function` tabulates (``2**n`` values).
MAX_TABULATED_BITS = 22


def hidden_sizes(hidden: int | Sequence[int] | None) -> tuple[int, ...]:
    """Hidden layer widths from an int (0: none) or a sequence of positive ints."""
    if hidden is None:
        return ()
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        if hidden < 0:
            raise ConfigError(f"hidden must be >= 0 (0: no hidden layer), got {hidden!r}")
        return (int(hidden),) if hidden else ()
    if isinstance(hidden, (list, tuple)) and all(
        isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in hidden
    ):
        return tuple(int(h) for h in hidden)
    raise ConfigError(
        f"hidden must be a non-negative int or a sequence of positive ints, got {hidden!r}"
    )


def _dataset_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Stack the ``(x_i, y_i)`` items of a map-style torch ``Dataset``."""
    try:
        length = len(dataset)
    except TypeError:
        raise ConfigError(
            f"expected a torch Dataset with __len__ and (x, y) items, got {type(dataset).__name__}"
        ) from None
    xs, ys = [], []
    for i in range(length):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError(f"dataset item {i} must be a pair (x, y), got {type(item).__name__}")
        xs.append(np.asarray(torch.as_tensor(item[0]), dtype=np.float64).reshape(-1))
        ys.append(np.asarray(torch.as_tensor(item[1])).reshape(()))
    if not xs:
        raise ConfigError("the dataset is empty")
    widths = {len(x) for x in xs}
    if len(widths) != 1:
        raise ConfigError(f"dataset items have different numbers of features: {sorted(widths)}")
    return np.stack(xs), np.stack(ys)


def validate_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check features and labels; return ``x`` float64 ``(B, d)``, codes int64 ``(B,)`` in
    ``0..K−1`` and the sorted distinct labels ``(K,)``.

    Refuses, with one line naming the value: a non-2-D or non-numeric ``x``, NaN or infinite
    entries (first offending row and column), ``y`` not 1-D, mismatched lengths, fewer than two
    classes.
    """
    if y is None:
        raise ConfigError("a classifier requires y to be passed, but the target y is None")
    if np.iscomplexobj(np.asarray(x)):
        raise ConfigError("features x: Complex data not supported; give real numbers")
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("features x must be numbers (a 2-D array of floats)") from None
    if x.ndim != 2:
        raise ConfigError(f"features x must be 2-D (examples × features), got shape {x.shape}")
    for axis, what in ((0, "sample"), (1, "feature")):
        if x.shape[axis] == 0:
            raise ConfigError(
                f"features x have 0 {what}(s) (shape={x.shape}) while a minimum of 1 is required."
            )
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(x[row, column]) else "infinite (inf)"
        raise ConfigError(
            f"features x hold {int(bad.sum())} NaN or inf value(s), first at row {row}, column "
            f"{column} ({kind}); remove or impute them"
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ConfigError(f"labels y must be 1-D, got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ConfigError(
            f"x has {x.shape[0]} examples but y has {y.shape[0]} labels; they must match"
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ConfigError("labels y hold NaN or inf; every example needs a class label")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ConfigError(
            f"labels y hold {len(classes)} class ({', '.join(map(str, classes))}); a classifier "
            "needs at least 2 classes"
        )
    return x, codes.astype(np.int64).reshape(-1), classes


def from_arrays(
    x: Any,
    y: Any = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.0,
    hidden: int | Sequence[int] | None = 0,
    activation: str = "relu",
    name: str = "arrays",
) -> Task:
    """A classification task from features ``x (B, d)`` and labels ``y (B,)``, or from a torch
    ``Dataset`` of ``(x_i, y_i)`` pairs passed as ``x`` with ``y=None``; see the module docstring.

    ``seed`` seeds the stratified split (``test_fraction`` in ``[0, 1)``; 0 keeps every example
    for training); ``hidden``: hidden widths (int or sequence; 0: logistic/softmax regression);
    ``activation``: the hidden activation.
    """
    if y is None:
        if isinstance(x, np.ndarray | torch.Tensor):
            raise ConfigError("labels y are missing: from_arrays(x, y), or pass a torch Dataset")
        x, y = _dataset_arrays(x)
    x, codes, classes = validate_xy(x, y)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    widths = hidden_sizes(hidden)
    if test_fraction == 0:
        train, test = np.arange(len(codes), dtype=np.int64), None
    else:
        (split_rng,) = rng_streams(int(seed), 1)
        train, test = stratified_split(
            codes, check_fraction("test_fraction", test_fraction), split_rng
        )
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaled = standardize(x[train], *(() if test is None else (x[test],)))
    return classification_task(
        name,
        x_train=scaled[0],
        y_train=codes[train],
        x_test=None if test is None else scaled[1],
        y_test=None if test is None else codes[test],
        n_classes=len(classes),
        hidden_widths=tuple(widths),
        activation=activation,
        seed=int(seed),
        options={
            "hidden": list(widths),
            "activation": activation,
            "test_fraction": float(test_fraction),
        },
        info={
            "classes": classes.tolist(),
            "feature_mean": mean.tolist(),
            "feature_std": std.tolist(),
        },
    )


def scale_features(task: Task, x: Any) -> torch.Tensor:
    """New features scaled as ``task``'s training data: ``(x − μ_train) / σ_train``.

    Shapes: ``(B, d)`` → ``(B, d)`` float64. Needs ``feature_mean``/``feature_std`` in
    ``task.info`` (tasks from :func:`from_arrays`).
    """
    if "feature_mean" not in task.info:
        raise ConfigError(
            f"task {task.name!r} does not record its feature scaling; build it with from_arrays"
        )
    mean = np.asarray(task.info["feature_mean"], dtype=np.float64)
    std = np.asarray(task.info["feature_std"], dtype=np.float64)
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("features x must be numbers (a 2-D array of floats)") from None
    if x.ndim != 2 or x.shape[1] != len(mean):
        raise ConfigError(
            f"features x must have shape (B, {len(mean)}) like the training data, got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ConfigError("features x hold NaN or inf values; remove or impute them")
    return torch.from_numpy((x - mean) / std)


def from_cost_function(
    cost: Callable[[torch.Tensor], torch.Tensor],
    n_bits: int,
    *,
    n_examples: int = 1,
    name: str = "cost-function",
    chunk_size: int = 2**16,
) -> Task:
    """A task whose cost is ``cost(bits)``: ``(m, n)`` uint8 bitstrings (qubit 0 first) →
    ``(m,)`` real costs, tabulated once over all ``2**n_bits`` bitstrings in index order.

    ``n_examples`` is ``N`` in ``ℓ(s) = −N·C(s)/T``. At most :data:`MAX_TABULATED_BITS` bits.
    """
    if isinstance(n_bits, bool) or not isinstance(n_bits, int) or n_bits < 1:
        raise ConfigError(f"n_bits must be a positive integer, got {n_bits!r}")
    if n_bits > MAX_TABULATED_BITS:
        raise ConfigError(
            f"a cost function is tabulated over all 2**n bitstrings; n_bits = {n_bits} is over "
            f"{MAX_TABULATED_BITS}"
        )
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        raise ConfigError(f"n_examples must be a positive integer, got {n_examples!r}")
    vector = torch.empty(2**n_bits, dtype=torch.float64)
    for first, bits in iter_bit_chunks(n_bits, chunk_size):
        values = torch.as_tensor(cost(bits), dtype=torch.float64).reshape(-1)
        if values.shape[0] != bits.shape[0]:
            raise ConfigError(
                f"the cost function must return one value per bitstring: got {values.shape[0]} "
                f"for {bits.shape[0]}"
            )
        if not bool(torch.isfinite(values).all()):
            raise ConfigError("the cost function returned NaN or inf for some bitstring")
        vector[first : first + bits.shape[0]] = values
    return Task(
        name=name,
        n_bits=n_bits,
        loss=PRECOMPUTED,
        network=None,
        x_train=None,
        y_train=None,
        x_test=None,
        y_test=None,
        n_classes=None,
        cost_vector=vector,
        options={"n_examples": n_examples},
    )
