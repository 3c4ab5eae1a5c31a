"""Tasks given by a precomputed cost ``C(s)`` over all ``2**n`` bitstrings (METHOD.md §1, §6).

The file holds one value per bitstring in our index order (qubit 0 = most significant bit): a text
file with one number per line, or a NumPy ``.npy`` array. ``n = log2(length)``; other lengths are
refused. Such a task has no data, so no test cost or accuracy.

``N`` in the data term ``ℓ(s) = −N·C(s)/T`` cannot be read from the file: it is the option
``n_examples`` (default 1, i.e. ``ℓ = −C/T``). For the MNIST reference ``Cop_4x4.txt``, the mean
over 12,665 training images, pass ``n_examples=12665`` to get the true log-likelihood scale.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from qhn.data.tasks import PRECOMPUTED, Task
from qhn.errors import ConfigError

__all__ = ["build_cost_vector", "load_cost_vector"]


def load_cost_vector(path: str | Path) -> torch.Tensor:
    """Read ``C(s)`` for every bitstring from a text (one value a line) or ``.npy`` file.

    Shapes: returns ``(2**n,)`` float64.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"cost-vector file not found: {str(path)!r}")
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ConfigError(f"cannot read {str(path)!r} as a .npy array: {error}") from None
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise ConfigError(
                f"{str(path)!r} must hold a 1-D numeric array, got {values.dtype} {values.shape}"
            )
        values = values.astype(np.float64)
    else:
        values = _read_text(path)
    length = len(values)
    if length < 2 or 2 ** int(math.log2(length)) != length:
        raise ConfigError(
            f"{str(path)!r} holds {length} values; a cost vector needs a power of two (2**n, n ≥ 1)"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ConfigError(f"{str(path)!r}: value at index {int(bad[0])} is not finite")
    return torch.from_numpy(values)


def _read_text(path: Path) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").rstrip().splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"{str(path)!r} is not a text file of numbers (not UTF-8)") from None
    values = np.empty(len(lines), dtype=np.float64)
    for number, line in enumerate(lines):
        try:
            values[number] = float(line)
        except ValueError:
            raise ConfigError(
                f"{str(path)!r} line {number + 1}: expected one number, got {line.strip()!r}"
            ) from None
    return values


def build_cost_vector(*, seed: int, path: str | None = None, n_examples: int = 1) -> Task:
    """A training-only task whose ``C(s)`` is read from ``path``; ``N = n_examples``."""
    if path is None:
        raise ConfigError("task 'cost-vector' needs option path (a text or .npy file of C(s))")
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        raise ConfigError(f"n_examples must be a positive integer, got {n_examples!r}")
    resolved = Path(path).expanduser().resolve()
    costs = load_cost_vector(resolved)
    return Task(
        name="cost-vector",
        n_bits=int(math.log2(len(costs))),
        loss=PRECOMPUTED,
        network=None,
        x_train=None,
        y_train=None,
        x_test=None,
        y_test=None,
        n_classes=None,
        cost_vector=costs,
        options={"path": str(resolved), "n_examples": n_examples},
        seed=seed,
    )
