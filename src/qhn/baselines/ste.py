"""BinaryConnect with a straight-through estimator (re-implemented from Courbariaux, Bengio &
David, NeurIPS 2015).

Latent real weights ``w ∈ [−1, 1]^k`` (one per weight/bias bit) are binarized in the forward
pass, ``b = 1[w ≥ 0]`` (so the weight is ``w(b)`` of the network's alphabet, ``sign(w)`` for
``(−1, 1)``); the backward pass treats the binarization as the identity on ``[−1, 1]`` (gradient
``∂b/∂w := ½·1_{|w| ≤ 1}``). Adam updates ``w``, then ``w`` is clipped to ``[−1, 1]`` so a
weight can always flip back. The forward loss of each step is exactly ``C(b)`` of the binary
network, so the best binarized network seen is kept at no extra cost. One evaluation per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from qhn.baselines.common import (
    BaselineResult,
    PointModel,
    bits_with,
    hyper_settings,
    real_loss,
    require_network,
)
from qhn.baselines.config import BaselineConfig
from qhn.data.tasks import Task

__all__ = ["binarize_straight_through", "train_ste"]


def binarize_straight_through(w: torch.Tensor) -> torch.Tensor:
    """``1[w ≥ 0]`` forward; gradient ``½·1_{|w| ≤ 1}`` backward. Shapes: any → same."""
    hard = (w >= 0).to(w.dtype)
    soft = (w.clamp(-1, 1) + 1) / 2
    return soft + (hard - soft).detach()


def train_ste(
    task: Task, config: BaselineConfig, record: Callable[[dict[str, Any]], None]
) -> BaselineResult:
    """``restarts`` × (hyperparameter settings) BinaryConnect runs of ``steps`` Adam steps; the
    best binary network seen over all of them."""
    network = require_network(task, "ste")
    generator = torch.Generator().manual_seed(config.seed)
    settings = hyper_settings(network)
    total = config.restarts * len(settings) * config.steps
    evaluations, step = 0, 0
    best: tuple[float, torch.Tensor] | None = None
    for _ in range(config.restarts):
        for setting in settings:
            low, high = setting.alphabet
            free = list(setting.free)
            latent = config.init_scale * torch.randn(
                len(free), generator=generator, dtype=torch.float64
            )
            latent.requires_grad_(True)
            optimizer = torch.optim.Adam([latent], lr=config.resolved_lr)
            for _ in range(config.steps):
                b = binarize_straight_through(latent)
                values = torch.zeros(1, network.n_bits, dtype=torch.float64)
                values[:, free] = low + (high - low) * b
                cost = real_loss(task, values, setting.activation)[0]
                optimizer.zero_grad()
                cost.backward()
                optimizer.step()
                with torch.no_grad():
                    latent.clamp_(-1.0, 1.0)
                evaluations += 1
                step += 1
                value = float(cost.detach())
                if best is None or value < best[0]:
                    best = (value, bits_with(setting, b.detach()[None].round())[0])
                record({"step": step, "total": total, "loss": value, "evaluations": evaluations})
    assert best is not None
    return BaselineResult(PointModel(best[1]), evaluations, step, {"mode_cost": best[0]})
