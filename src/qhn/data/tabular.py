"""Classification tables from CSV files.

Reading rules:

- ``header``: ``"auto"`` (default) treats the first row as column names when it contains a
  non-numeric field above a numeric one in the second row, or when every field of it is
  non-numeric; ``"yes"`` / ``"no"`` force it. Without a header, columns are named ``"0"``,
  ``"1"``, …
- ``label``: the label column's name (default: the last column). Labels may be numbers or text;
  the distinct values, sorted (numerically when all are numbers), become classes ``0..K−1``.
- ``features``: comma-separated column names (default: every other column); they must be numbers.
- Blank lines are skipped. Every row must have as many fields as the first.

The task: a seeded stratified split (``test_fraction`` of each class held out), features
standardized with the training statistics, and a binary network ``d → hidden → outputs`` with biases
(``hidden = 0``: logistic / softmax regression), one sigmoid output for two classes, ``K`` softmax
outputs for ``K > 2``; cross-entropy.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qhn.data.splits import as_tensors, rng_streams, standardize, stratified_split
from qhn.data.tasks import Task
from qhn.errors import ConfigError, choices
from qhn.validation import check_fraction

__all__ = [
    "HEADER_CHOICES",
    "Table",
    "build_csv",
    "classification_task",
    "feature_value",
    "read_table",
]

HEADER_CHOICES = ("auto", "yes", "no")


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed classification table.

    Shapes: ``x`` ``(B, d)`` float64, ``y`` ``(B,)`` int64 in ``0..K−1``; ``classes`` the original
    label of each class, ``feature_names`` the ``d`` column names.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    feature_names: list[str]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def feature_value(text: str, where: str) -> float:
    """A feature field as a finite float; ``where`` names the file, line and column in errors."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: not finite: {text!r}")
    return value


def read_table(
    path: str | Path,
    *,
    label: str | None = None,
    features: tuple[str, ...] | None = None,
    header: str = "auto",
) -> Table:
    """Parse a CSV classification table; see the module docstring for the rules.

    Every malformed input raises :class:`ConfigError` naming the file and the line or column.
    """
    path = Path(path)
    where = repr(str(path))
    if header not in HEADER_CHOICES:
        raise ConfigError(f"unknown header {header!r}; choose one of: {choices(HEADER_CHOICES)}")
    if not path.is_file():
        raise ConfigError(f"CSV file not found: {where}")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [
                (number, [field.strip() for field in row])
                for number, row in enumerate(csv.reader(handle), start=1)
                if any(field.strip() for field in row)
            ]
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not a UTF-8 text file; give a CSV table") from None
    except (csv.Error, OSError) as error:
        raise ConfigError(f"cannot read {where} as CSV: {error}") from None
    if not rows:
        raise ConfigError(f"{where} is empty")
    width = len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise ConfigError(
                f"{where} line {number}: expected {width} fields like the first row, got {len(row)}"
            )
    if width < 2:
        raise ConfigError(f"{where} has {width} column; need at least one feature and a label")

    first = rows[0][1]
    if header == "auto":
        second = rows[1][1] if len(rows) > 1 else None
        has_header = all(not _is_number(f) for f in first) or (
            second is not None
            and any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=True))
        )
    else:
        has_header = header == "yes"
    if has_header:
        names = first
        if len(set(names)) != len(names):
            raise ConfigError(f"{where} line {rows[0][0]}: repeated column names in {names}")
        rows = rows[1:]
    else:
        names = [str(i) for i in range(width)]
    if not rows:
        raise ConfigError(f"{where} has a header but no data rows")

    label = names[-1] if label is None else label
    if label not in names:
        raise ConfigError(f"label column {label!r} not in {where}; columns: {choices(names)}")
    if features is None:
        features = tuple(name for name in names if name != label)
    features = tuple(features)
    missing = [name for name in features if name not in names]
    if missing:
        raise ConfigError(
            f"feature column(s) {choices(missing)} not in {where}; columns: {choices(names)}"
        )
    if label in features:
        raise ConfigError(f"column {label!r} cannot be both the label and a feature")
    if not features:
        raise ConfigError(f"{where}: no feature columns")

    columns = [names.index(name) for name in features]
    x = np.empty((len(rows), len(columns)), dtype=np.float64)
    for r, (number, row) in enumerate(rows):
        for c, column in enumerate(columns):
            x[r, c] = feature_value(row[column], f"{where} line {number}, column {names[column]!r}")

    raw_labels = [row[names.index(label)] for _, row in rows]
    for number, value in zip((n for n, _ in rows), raw_labels, strict=True):
        if value == "":
            raise ConfigError(f"{where} line {number}, column {label!r}: empty label")
    if all(_is_number(v) for v in raw_labels):
        distinct = sorted(set(raw_labels), key=float)
    else:
        distinct = sorted(set(raw_labels))
    if len(distinct) < 2:
        raise ConfigError(
            f"{where}: label column {label!r} has {len(distinct)} class ({choices(distinct)}); "
            "need at least 2"
        )
    code = {value: k for k, value in enumerate(distinct)}
    y = np.array([code[v] for v in raw_labels], dtype=np.int64)
    return Table(x, y, list(distinct), list(features))


def classification_task(
    name: str,
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    n_classes: int,
    hidden_widths: tuple[int, ...],
    activation: str,
    seed: int,
    options: dict[str, Any],
    info: dict[str, Any],
) -> Task:
    """A cross-entropy task of the binary network ``d → hidden_widths… → outputs`` with biases
    (one sigmoid output for two classes, ``K`` softmax outputs for ``K > 2``) on prepared
    (split, scaled) data; ``x_test`` None: no test split.

    Shapes: ``x_train (B, d)``, ``y_train (B,)`` class indices; likewise the test split.
    """
    from qhn.models.network import BinaryNetwork

    outputs = 1 if n_classes == 2 else n_classes
    network = BinaryNetwork(
        (x_train.shape[1], *hidden_widths, outputs), bias=True, hidden_activation=activation
    )
    x_train_t, y_train_t = as_tensors(x_train, y_train)
    x_test_t = y_test_t = None
    if x_test is not None:
        x_test_t, y_test_t = as_tensors(x_test, y_test)
    return Task(
        name=name,
        n_bits=network.n_bits,
        loss="cross_entropy",
        network=network,
        x_train=x_train_t,
        y_train=y_train_t,
        x_test=x_test_t,
        y_test=y_test_t,
        n_classes=n_classes,
        options=options,
        seed=int(seed),
        info=info,
    )


def build_csv(
    *,
    seed: int,
    path: str | None = None,
    label: str | None = None,
    features: tuple[str, ...] | None = None,
    header: str = "auto",
    hidden: int = 0,
    activation: str = "relu",
    test_fraction: float = 0.3,
) -> Task:
    """A classification task from a CSV file; see the module docstring."""

    if path is None:
        raise ConfigError("task 'csv' needs option path (a CSV file)")
    if isinstance(features, str):
        features = tuple(f.strip() for f in features.split(",") if f.strip())
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ConfigError(f"hidden must be a non-negative integer, got {hidden!r}")
    test_fraction = check_fraction("test_fraction", test_fraction)
    resolved = Path(path).expanduser().resolve()
    table = read_table(resolved, label=label, features=features, header=header)
    (split_rng,) = rng_streams(seed, 1)
    train, test = stratified_split(table.y, test_fraction, split_rng)
    x_train, x_test = standardize(table.x[train], table.x[test])
    return classification_task(
        "csv",
        x_train=x_train,
        y_train=table.y[train],
        x_test=x_test,
        y_test=table.y[test],
        n_classes=len(table.classes),
        hidden_widths=(hidden,) if hidden else (),
        activation=activation,
        seed=seed,
        options={
            "path": str(resolved),
            "label": label,
            "features": None if features is None else tuple(features),
            "header": header,
            "hidden": hidden,
            "activation": activation,
            "test_fraction": test_fraction,
        },
        info={"class_names": table.classes, "feature_names": table.feature_names},
    )
