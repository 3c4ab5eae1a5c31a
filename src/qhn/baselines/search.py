"""Random search and exhaustive search over bitstrings.

- **random**: ``budget`` bitstrings drawn uniformly (with replacement), each evaluated once; the
  best is kept. ``P(the optimal set of size d is missed) = (1 − d/2^n)^budget``.
- **exhaustive**: every one of the ``2^n`` bitstrings (the landscape of :mod:`qhn.landscape`,
  ``n ≤ 22``); its optimum is the reference the other methods are measured against. It spends
  ``2^n`` evaluations, even when the landscape came from the cache.

When the task's landscape is at hand (``n ≤ 22``: the run computes it anyway for the exact
metrics), the searches read ``C(s)`` from it (:func:`landscape_cost`) instead of running the
network: the same values to rounding (≤ 1e-15), at a table lookup's cost. The budget still counts
every lookup as one network-loss evaluation, so budgets and results mean what they meant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qhn.baselines.common import BaselineResult, PointModel
from qhn.baselines.config import BaselineConfig
from qhn.bits import bits_to_index, index_to_bits
from qhn.data.tasks import Task
from qhn.errors import ConfigError

__all__ = [
    "MAX_EXHAUSTIVE_BITS",
    "RANDOM_BATCH",
    "check_exhaustive",
    "landscape_cost",
    "random_search",
    "train_exhaustive",
    "train_random",
]

#: Largest task the exhaustive baseline enumerates.
MAX_EXHAUSTIVE_BITS = 22
#: Bitstrings evaluated per batch (one history line each).
RANDOM_BATCH = 256


def random_search(
    cost: Callable[[torch.Tensor], torch.Tensor],
    n_bits: int,
    budget: int,
    generator: torch.Generator,
    record: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[torch.Tensor, float]:
    """The best of ``budget`` uniform bitstrings under ``cost`` (bits ``(S, n)`` → ``(S,)``).

    Returns bits ``(n,)`` uint8 and their cost.
    """
    best_bits, best_cost = None, float("inf")
    done = 0
    total = -(-budget // RANDOM_BATCH)
    while done < budget:
        size = min(RANDOM_BATCH, budget - done)
        bits = torch.randint(0, 2, (size, n_bits), generator=generator, dtype=torch.uint8)
        values = cost(bits).to(torch.float64)
        row = int(values.argmin())
        if float(values[row]) < best_cost:
            best_bits, best_cost = bits[row].clone(), float(values[row])
        done += size
        if record is not None:
            step = -(-done // RANDOM_BATCH)
            record(
                {
                    "step": step,
                    "total": total,
                    "loss": float(values.mean()),
                    "best_cost": best_cost,
                    "evaluations": done,
                }
            )
    assert best_bits is not None
    return best_bits, best_cost


def landscape_cost(train_costs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``C(s)`` read from an enumerated landscape: bits ``(S, n)`` → ``train_costs[index(s)]``."""
    return lambda bits: train_costs[bits_to_index(bits)]


def train_random(
    task: Task,
    config: BaselineConfig,
    record: Callable[[dict[str, Any]], None],
    *,
    cost: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> BaselineResult:
    """:func:`random_search` on ``cost`` (default ``task.cost``) with ``config.resolved_budget``
    evaluations."""
    budget = config.resolved_budget
    generator = torch.Generator().manual_seed(config.seed)
    bits, value = random_search(cost or task.cost, task.n_bits, budget, generator, record)
    steps = -(-budget // RANDOM_BATCH)
    return BaselineResult(PointModel(bits), budget, steps, {"mode_cost": value})


def check_exhaustive(task: Task) -> None:
    """Refuse a task with more than :data:`MAX_EXHAUSTIVE_BITS` bits."""
    if task.n_bits > MAX_EXHAUSTIVE_BITS:
        raise ConfigError(
            f"exhaustive search enumerates 2^n networks and stops at {MAX_EXHAUSTIVE_BITS} bits; "
            f"task {task.name!r} has {task.n_bits}: use anneal or random"
        )


def train_exhaustive(
    task: Task,
    config: BaselineConfig,
    record: Callable[[dict[str, Any]], None],
    *,
    cache_dir: str | Path | None = None,
) -> BaselineResult:
    """The first optimal network of the task's landscape."""
    check_exhaustive(task)
    from qhn.landscape import compute_landscape

    landscape = compute_landscape(task, cache_dir=cache_dir)
    index = landscape.optimum.index
    bits = index_to_bits(torch.tensor([index]), task.n_bits)[0]
    evaluations = 2**task.n_bits
    record({"step": 1, "total": 1, "loss": landscape.optimum_value, "evaluations": evaluations})
    return BaselineResult(PointModel(bits), evaluations, 1, {"mode_cost": landscape.optimum_value})
