"""The whole cost landscape of a task: ``C(s)`` for all ``2**n`` networks, and what it tells.

:func:`compute_landscape` enumerates every bitstring of a task (up to
:data:`MAX_LANDSCAPE_BITS` bits, within a memory budget checked before anything is allocated),
caches the cost vectors on disk keyed by :meth:`Task.fingerprint`, and summarizes them in a
:class:`Landscape`:

- the optimum ``C* = min_s C(s)`` and the **optimal set** ``{s : C(s) ≤ C* + tol + rtol·|C*|}``.
  Exact symmetries (e.g. the ``h!`` permutations of hidden units) give the same ``C`` up to float
  rounding of a reordered sum, ~1e-16 relative, so the default ``tol = rtol = 1e-9`` counts them as
  one degenerate optimum while keeping apart genuinely different networks, whose costs differ by far
  more (e.g. ~2e-7 between the near-optimal MNIST bitstrings of METHOD.md §6);
- the train/test accuracy of the optimum (the first optimal index) and their range over the optimal
  set (evaluated on at most :data:`MAX_ACCURACY_NETWORKS` optimal networks);
- the same numbers for the median network (rank ``⌊(2^n − 1)/2⌋`` of a stable sort) and for one
  random network (seeded), as references;
- quantiles of ``C``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qhn.bits import bitstring, index_to_bits
from qhn.data.tasks import Task
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.io import atomic_write_bytes

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RTOL",
    "DEFAULT_TOL",
    "ENUMERATION_SCRATCH_BYTES",
    "MAX_LANDSCAPE_BITS",
    "QUANTILE_LEVELS",
    "Landscape",
    "NetworkSummary",
    "cache_path",
    "check_landscape_budget",
    "compute_landscape",
    "landscape_bytes",
]

logger = logging.getLogger(__name__)

MAX_LANDSCAPE_BITS = 26
#: Default memory budget of one landscape: cost vectors, sorting and enumeration scratch (bytes).
DEFAULT_MAX_BYTES = 4 * 2**30
#: Scratch granted to ``enumerate_costs`` beyond the vector it returns (its own default budget).
ENUMERATION_SCRATCH_BYTES = 2**28
DEFAULT_TOL = 1e-9
DEFAULT_RTOL = 1e-9
QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
MAX_ACCURACY_NETWORKS = 4096
#: Float64 vectors of length ``2**n`` alive at the peak besides the cost vectors: the stable
#: argsort's int64 order and the sorted copy used for quantiles.
_SCRATCH_VECTORS = 2
CACHE_VERSION = 1


@dataclass(frozen=True)
class NetworkSummary:
    """One network of the landscape: its index, bits (qubit 0 first), costs and accuracies
    (accuracies and test cost are None where the task has no data for them)."""

    index: int
    bitstring: str
    train_cost: float
    test_cost: float | None
    train_accuracy: float | None
    test_accuracy: float | None


@dataclass(frozen=True, eq=False)
class Landscape:
    """Every network's cost on one task, and its summary (see the module docstring).

    Shapes: ``train_costs`` ``(2**n,)`` float64; ``test_costs`` ``(2**n,)`` or None;
    ``optimal_indices`` ``(k,)`` int64, ascending.
    """

    task_name: str
    fingerprint: str
    n_bits: int
    train_costs: torch.Tensor
    test_costs: torch.Tensor | None
    tol: float
    rtol: float
    optimal_indices: torch.Tensor
    optimum: NetworkSummary
    median: NetworkSummary
    random: NetworkSummary
    optimum_accuracy_range: dict[str, tuple[float, float] | None]
    quantiles: dict[float, float]
    seconds: float
    from_cache: bool
    cache_file: Path | None = field(default=None)

    @property
    def optimum_value(self) -> float:
        """``C* = min_s C(s)`` on the training data."""
        return self.optimum.train_cost

    @property
    def degeneracy(self) -> int:
        """Number of networks in the optimal set."""
        return int(self.optimal_indices.numel())

    def optimal_mask(self) -> torch.Tensor:
        """True on the optimal set. Shapes: ``(2**n,)`` bool."""
        mask = torch.zeros(2**self.n_bits, dtype=torch.bool)
        mask[self.optimal_indices] = True
        return mask

    def mass_on_optimum(self, probs: torch.Tensor) -> torch.Tensor:
        """Probability a distribution over bitstrings puts on the optimal set.

        Shapes: ``(..., 2**n)`` → ``(...)``.
        """
        probs = torch.as_tensor(probs)
        if probs.shape[-1] != 2**self.n_bits:
            raise ConfigError(
                f"probabilities must have last dimension {2**self.n_bits}, got {tuple(probs.shape)}"
            )
        return probs[..., self.optimal_indices].sum(-1)

    def summary(self, max_listed: int = 8) -> dict[str, Any]:
        """A JSON-ready summary (the first ``max_listed`` optimal bitstrings are listed)."""
        listed = self.optimal_indices[:max_listed].tolist()
        return {
            "task": self.task_name,
            "fingerprint": self.fingerprint,
            "n_bits": self.n_bits,
            "optimum_value": self.optimum_value,
            "degeneracy": self.degeneracy,
            "tol": self.tol,
            "rtol": self.rtol,
            "optimal_bitstrings": [bitstring(i, self.n_bits) for i in listed],
            "optimum": asdict(self.optimum),
            "optimum_accuracy_range": self.optimum_accuracy_range,
            "median": asdict(self.median),
            "random": asdict(self.random),
            "quantiles": {str(level): value for level, value in self.quantiles.items()},
            "seconds": self.seconds,
            "from_cache": self.from_cache,
        }


def landscape_bytes(n_bits: int, with_test: bool) -> int:
    """Peak bytes of :func:`compute_landscape` for ``n_bits``: cost vectors, sort scratch and the
    enumeration's own scratch."""
    vectors = (2 if with_test else 1) + _SCRATCH_VECTORS
    return 8 * 2**n_bits * vectors + ENUMERATION_SCRATCH_BYTES


def check_landscape_budget(
    n_bits: int, *, with_test: bool, max_bytes: int = DEFAULT_MAX_BYTES
) -> None:
    """Raise :class:`MemoryBudgetError` if the landscape of ``n_bits`` is too large."""
    if n_bits > MAX_LANDSCAPE_BITS:
        raise MemoryBudgetError(
            f"enumerating 2**{n_bits} networks is refused: at most {MAX_LANDSCAPE_BITS} bits "
            "(use sampled costs instead)"
        )
    needed = landscape_bytes(n_bits, with_test)
    if needed > max_bytes:
        raise MemoryBudgetError(
            f"the landscape of {n_bits} bits needs about {needed:,} bytes, over the budget of "
            f"{max_bytes:,} bytes"
        )


def cache_path(task: Task, cache_dir: str | Path) -> Path:
    """Where the landscape of ``task`` is cached inside ``cache_dir``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", task.name)
    return Path(cache_dir) / f"landscape-{safe}-{task.fingerprint()[:16]}.npz"


def compute_landscape(
    task: Task,
    *,
    cache_dir: str | Path | None = None,
    tol: float = DEFAULT_TOL,
    rtol: float = DEFAULT_RTOL,
    with_test: bool = True,
    seed: int = 0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Landscape:
    """Enumerate ``C(s)`` for all ``2**n`` networks of ``task`` and summarize it.

    Network tasks use :func:`qhn.models.enumerate.enumerate_costs` (or the task's precomputed cost
    vector for training); cost-vector tasks use their vector. Test costs are enumerated too when
    ``with_test`` and the task has test data. With ``cache_dir``, cost vectors are read from /
    written to ``cache_path(task, cache_dir)`` (atomically: temporary file, then rename); the
    summary is recomputed, so ``tol`` can change without re-enumerating. ``seed`` picks the random
    reference network. Refused with :class:`MemoryBudgetError` before any work when ``n`` exceeds
    :data:`MAX_LANDSCAPE_BITS` or the estimate exceeds ``max_bytes``.
    """
    if not (tol >= 0 and rtol >= 0):
        raise ConfigError(f"tol and rtol must be non-negative, got tol={tol!r}, rtol={rtol!r}")
    with_test = with_test and task.has_test
    check_landscape_budget(task.n_bits, with_test=with_test, max_bytes=max_bytes)
    start = time.perf_counter()
    fingerprint = task.fingerprint()
    path = cache_path(task, cache_dir) if cache_dir is not None else None
    cached = _read_cache(path, fingerprint, task.n_bits) if path is not None else None
    if cached is not None and (cached[1] is not None or not with_test):
        train_costs, test_costs = cached[0], cached[1] if with_test else None
        from_cache = True
        logger.info("landscape of %s read from %s", task.name, path)
        _refresh(path)
    else:
        train_costs = _enumerate(task, "train")
        test_costs = _enumerate(task, "test") if with_test else None
        from_cache = False
        if path is not None:
            try:
                _write_cache(path, task, fingerprint, train_costs, test_costs)
            except OSError as error:  # a cache is optional: never lose the run over it
                logger.warning("could not cache the landscape at %s (%s); continuing", path, error)
    landscape = _summarize(
        task,
        fingerprint,
        train_costs,
        test_costs,
        tol=tol,
        rtol=rtol,
        seed=seed,
        seconds=time.perf_counter() - start,
        from_cache=from_cache,
        cache_file=path,
    )
    logger.info(
        "landscape of %s: C* = %.9g, degeneracy %d, %.2f s",
        task.name,
        landscape.optimum_value,
        landscape.degeneracy,
        landscape.seconds,
    )
    return landscape


def _enumerate(task: Task, split: str) -> torch.Tensor:
    if split == "train" and task.cost_vector is not None:
        return task.cost_vector.to(torch.float64)
    from qhn.models.enumerate import enumerate_costs

    assert task.network is not None
    x, y = (task.x_train, task.y_train) if split == "train" else (task.x_test, task.y_test)
    budget = 8 * 2**task.n_bits + ENUMERATION_SCRATCH_BYTES
    costs = enumerate_costs(task.network, x, y, task.loss, max_bytes=budget)
    return torch.as_tensor(costs, dtype=torch.float64)


def _summarize(
    task: Task,
    fingerprint: str,
    train_costs: torch.Tensor,
    test_costs: torch.Tensor | None,
    *,
    tol: float,
    rtol: float,
    seed: int,
    seconds: float,
    from_cache: bool,
    cache_file: Path | None,
) -> Landscape:
    n_bits = task.n_bits
    costs = train_costs.numpy()
    minimum = float(costs.min())
    threshold = minimum + tol + rtol * abs(minimum)
    optimal = torch.from_numpy(np.flatnonzero(costs <= threshold).astype(np.int64))
    order = np.argsort(costs, kind="stable")
    median_index = int(order[(len(costs) - 1) // 2])
    del order
    quantiles = dict(
        zip(QUANTILE_LEVELS, np.quantile(costs, QUANTILE_LEVELS).tolist(), strict=True)
    )
    generator = torch.Generator().manual_seed(seed)
    random_index = int(torch.randint(2**n_bits, (1,), generator=generator))

    def describe(index: int) -> NetworkSummary:
        bits = index_to_bits(torch.tensor([index]), n_bits)
        has_data = task.network is not None
        return NetworkSummary(
            index=index,
            bitstring=bitstring(index, n_bits),
            train_cost=float(train_costs[index]),
            test_cost=None if test_costs is None else float(test_costs[index]),
            train_accuracy=float(task.accuracy(bits, "train")[0]) if has_data else None,
            test_accuracy=float(task.accuracy(bits, "test")[0]) if task.has_test else None,
        )

    ranges: dict[str, tuple[float, float] | None] = {"train": None, "test": None}
    if task.network is not None:
        evaluated = index_to_bits(optimal[:MAX_ACCURACY_NETWORKS], n_bits)
        for split in ("train", "test") if task.has_test else ("train",):
            accuracy = task.accuracy(evaluated, split)
            ranges[split] = (float(accuracy.min()), float(accuracy.max()))
    return Landscape(
        task_name=task.name,
        fingerprint=fingerprint,
        n_bits=n_bits,
        train_costs=train_costs,
        test_costs=test_costs,
        tol=tol,
        rtol=rtol,
        optimal_indices=optimal,
        optimum=describe(int(optimal[0])),
        median=describe(median_index),
        random=describe(random_index),
        optimum_accuracy_range=ranges,
        quantiles=quantiles,
        seconds=seconds,
        from_cache=from_cache,
        cache_file=cache_file,
    )


def _read_cache(
    path: Path, fingerprint: str, n_bits: int
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The cached ``(train, test)`` costs, or None if absent, unreadable or for another task."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if (
                int(stored["version"]) != CACHE_VERSION
                or str(stored["fingerprint"]) != fingerprint
                or stored["train_costs"].shape != (2**n_bits,)
            ):
                logger.warning("ignoring landscape cache %s: it belongs to another task", path)
                return None
            train = torch.from_numpy(stored["train_costs"].astype(np.float64))
            test = torch.from_numpy(stored["test_costs"]) if bool(stored["has_test"]) else None
    except (OSError, ValueError, KeyError) as error:
        logger.warning("ignoring unreadable landscape cache %s: %s", path, error)
        return None
    return train, test


def _refresh(path: Path) -> None:
    """Mark a cache file as just used (the user cache prunes the least recently used)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _write_cache(
    path: Path,
    task: Task,
    fingerprint: str,
    train_costs: torch.Tensor,
    test_costs: torch.Tensor | None,
) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        version=np.array(CACHE_VERSION),
        fingerprint=np.array(fingerprint),
        task_name=np.array(task.name),
        n_bits=np.array(task.n_bits),
        train_costs=train_costs.numpy(),
        has_test=np.array(test_costs is not None),
        test_costs=(test_costs if test_costs is not None else torch.empty(0)).numpy(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
