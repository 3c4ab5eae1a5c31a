"""The same architecture with real weights, trained by Adam: an upper reference, not a
competitor (it is not a binary network). ``sign`` hidden units pass gradients straight through
(:func:`qhn.baselines.common.real_logits`). With an activation bit, each activation is trained
and the lower training cost kept. One evaluation per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from qhn.baselines.common import BaselineResult, hyper_settings, real_logits, require_network
from qhn.baselines.config import BaselineConfig
from qhn.data.tasks import Task
from qhn.models.losses import per_example_loss
from qhn.models.prediction import class_probabilities

__all__ = ["FloatNetwork", "float_metrics", "train_float"]


class FloatNetwork:
    """Trained real parameters ``values (n,)`` (zeros at hyperparameter positions) and the hidden
    activation they run with."""

    def __init__(self, values: torch.Tensor, activation: str) -> None:
        self.values = values.detach()
        self.activation = activation


def float_metrics(task: Task, model: FloatNetwork) -> dict[str, float]:
    """Accuracy and mean NLL on train and test under the keys of the binary predictors (a single
    network is its own mode, sample and model average), and ``expected_cost`` = its ``C``."""
    out: dict[str, float] = {}
    with torch.no_grad():
        for split, x, y in (
            ("train", task.x_train, task.y_train),
            ("test", task.x_test, task.y_test),
        ):
            if x is None:
                continue
            logits = real_logits(task.network, model.values[None], x, model.activation)[0]
            proba = class_probabilities(logits)
            picked = proba.gather(1, y.view(-1, 1)).squeeze(1)
            acc = float((proba.argmax(-1) == y).to(torch.float64).mean())
            nll = float(-torch.log(picked.clamp_min(torch.finfo(picked.dtype).tiny)).mean())
            for predictor in ("mode", "sample", "bma"):
                out[f"acc_{predictor}_{split}"] = acc
                out[f"nll_{predictor}_{split}"] = nll
            cost = float(per_example_loss(logits, y, task.loss).mean())
            out["expected_cost" if split == "train" else "expected_test_cost"] = cost
    return out


def train_float(
    task: Task, config: BaselineConfig, record: Callable[[dict[str, Any]], None]
) -> BaselineResult:
    """``restarts`` × (hidden activations) Adam runs of ``steps``; the lowest final cost."""
    network = require_network(task, "float")
    generator = torch.Generator().manual_seed(config.seed)
    settings = {s.activation: s for s in hyper_settings(network)}
    total = config.restarts * len(settings) * config.steps
    evaluations, step = 0, 0
    best: tuple[float, FloatNetwork] | None = None
    for _ in range(config.restarts):
        for activation, setting in settings.items():
            free = list(setting.free)
            params = config.init_scale * torch.randn(
                len(free), generator=generator, dtype=torch.float64
            )
            params.requires_grad_(True)
            optimizer = torch.optim.Adam([params], lr=config.resolved_lr)

            def cost_of(p: torch.Tensor, free=free, activation=activation) -> torch.Tensor:
                values = torch.zeros(1, network.n_bits, dtype=torch.float64)
                values[:, free] = p
                logits = real_logits(network, values, task.x_train, activation)
                return per_example_loss(logits, task.y_train, task.loss).mean()

            for _ in range(config.steps):
                cost = cost_of(params)
                optimizer.zero_grad()
                cost.backward()
                optimizer.step()
                evaluations += 1
                step += 1
                record(
                    {
                        "step": step,
                        "total": total,
                        "loss": float(cost.detach()),
                        "evaluations": evaluations,
                    }
                )
            with torch.no_grad():
                final = float(cost_of(params))
                values = torch.zeros(network.n_bits, dtype=torch.float64)
                values[free] = params.detach()
            evaluations += 1
            if best is None or final < best[0]:
                best = (final, FloatNetwork(values, activation))
    assert best is not None
    return BaselineResult(best[1], evaluations, step, {"mode_cost": best[0]})
