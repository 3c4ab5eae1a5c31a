"""Simulated annealing and parallel tempering over bitstrings on ``C(s)`` (Kirkpatrick, Gelatt &
Vecchi 1983; Swendsen & Wang 1986 / Geyer 1991 for replica exchange).

``R`` replicas start from uniform random bitstrings. A step proposes, in every replica, the flip
of one uniformly chosen bit, evaluates the ``R`` proposals and accepts each with the Metropolis
probability ``min(1, exp(−ΔC / T_r))``.

- **annealing** (default): every replica is an independent chain whose temperature falls
  geometrically from ``t_start`` to ``t_end``, ``T_t = t_start·(t_end/t_start)^{t/(K−1)}``;
- **tempering**: replica ``r`` stays at ``T_r`` of a geometric ladder from ``t_end`` (``r = 0``)
  to ``t_start``; after each step, neighbours ``(r, r+1)`` (even pairs on even steps, odd on odd)
  swap states with probability ``min(1, exp((1/T_r − 1/T_{r+1})(C_r − C_{r+1})))``, which needs no
  evaluation.

The budget is exact: ``R`` evaluations to start and ``R`` per step, ``K = ⌊budget/R⌋ − 1`` steps
(fewer replicas when the budget is below ``2R``). The best bitstring seen is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from qhn.baselines.common import BaselineResult, PointModel
from qhn.baselines.config import BaselineConfig
from qhn.data.tasks import Task

__all__ = ["anneal_bits", "train_anneal"]


def anneal_bits(
    cost: Callable[[torch.Tensor], torch.Tensor],
    n_bits: int,
    *,
    budget: int,
    replicas: int,
    t_start: float,
    t_end: float,
    tempering: bool,
    generator: torch.Generator,
    record: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[torch.Tensor, float, int, int]:
    """Minimize ``cost`` (bits ``(S, n)`` → ``(S,)``) with at most ``budget`` evaluations.

    Returns the best bits ``(n,)`` uint8, their cost, the evaluations spent and the steps.
    """
    r = max(1, min(replicas, budget // 2)) if budget >= 2 else 1
    steps = budget // r - 1
    state = torch.randint(0, 2, (r, n_bits), generator=generator, dtype=torch.uint8)
    current = cost(state).to(torch.float64)
    evaluations = r
    best_row = int(current.argmin())
    best_bits, best_cost = state[best_row].clone(), float(current[best_row])
    ladder = torch.tensor(
        [t_end * (t_start / t_end) ** (k / max(r - 1, 1)) for k in range(r)], dtype=torch.float64
    )
    rows = torch.arange(r)
    for t in range(steps):
        if tempering:
            temps = ladder
        else:
            temps = torch.full((r,), t_start * (t_end / t_start) ** (t / max(steps - 1, 1)))
        flip = torch.randint(0, n_bits, (r,), generator=generator)
        proposal = state.clone()
        proposal[rows, flip] ^= 1
        proposed = cost(proposal).to(torch.float64)
        evaluations += r
        u = torch.rand(r, generator=generator, dtype=torch.float64)
        accept = torch.log(u) < -(proposed - current) / temps
        state[accept] = proposal[accept]
        current = torch.where(accept, proposed, current)
        row = int(current.argmin())
        if float(current[row]) < best_cost:
            best_bits, best_cost = state[row].clone(), float(current[row])
        if tempering and r > 1:
            for k in range(t % 2, r - 1, 2):
                log_ratio = (1 / ladder[k] - 1 / ladder[k + 1]) * (current[k] - current[k + 1])
                u = float(torch.rand((), generator=generator, dtype=torch.float64))
                if u < math.exp(min(0.0, float(log_ratio))):
                    state[[k, k + 1]] = state[[k + 1, k]]
                    current[[k, k + 1]] = current[[k + 1, k]]
        if record is not None:
            record(
                {
                    "step": t + 1,
                    "total": steps,
                    "loss": float(current.min()),
                    "best_cost": best_cost,
                    "temperature": float(temps.min()),
                    "acceptance": float(accept.to(torch.float64).mean()),
                    "evaluations": evaluations,
                }
            )
    return best_bits, best_cost, evaluations, steps


def train_anneal(
    task: Task,
    config: BaselineConfig,
    record: Callable[[dict[str, Any]], None],
    *,
    cost: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> BaselineResult:
    """:func:`anneal_bits` on ``cost`` (default ``task.cost``) with ``config.resolved_budget``
    evaluations."""
    generator = torch.Generator().manual_seed(config.seed)
    bits, value, evaluations, steps = anneal_bits(
        cost or task.cost,
        task.n_bits,
        budget=config.resolved_budget,
        replicas=config.replicas,
        t_start=config.t_start,
        t_end=config.t_end,
        tempering=config.tempering,
        generator=generator,
        record=record,
    )
    return BaselineResult(PointModel(bits), evaluations, steps, {"mode_cost": value})
