"""Measuring a model whose bitstrings do not fit an int64 index (``n > 62``, e.g. 1,210 bits).

:func:`qhn.train.evaluate.evaluate_with_support` keys networks by their basis index; here networks
are kept as bitstrings. ``q`` is represented by ``shots`` draws (distinct rows weighted by their
counts), the **mode** is the model's own ``mode()`` when it has one (exact for a product of
blocks: the product of the per-block modes), else the most frequent draw. Entropy and KL are
reported when the model gives them exactly (``entropy()``, ``kl_uniform()``).
"""

from __future__ import annotations

import torch

from qhn.bits import distinct_rows
from qhn.models.network import DEFAULT_MAX_BYTES

__all__ = ["DEFAULT_SHOTS", "evaluate_from_samples"]

#: Draws standing for ``q`` when the caller gives none.
DEFAULT_SHOTS = 1024


def evaluate_from_samples(
    model,
    task,
    *,
    shots: int | None = None,
    generator: torch.Generator | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, float]:
    """``acc_{mode,sample,bma}_{train,test}``, ``nll_…``, ``expected_cost`` (mean ``C`` over the
    draws), ``mode_probability`` (exact when the model has ``log_prob``, else the mode's share of
    the draws), ``support_size`` (distinct draws), ``support_mass`` (1) and, when the model gives
    them, ``entropy`` and ``kl_uniform``; plus the model's executions and shots.

    Shapes: the model's ``sample(shots)`` gives ``(shots, n)`` uint8.
    """
    from qhn.train.evaluate import _predictor_metrics

    shots = shots or DEFAULT_SHOTS
    out: dict[str, float] = {}
    with torch.no_grad():
        draws = model.sample(shots, generator=generator).to(torch.uint8)
        unique, _, counts = distinct_rows(draws)
        weights = counts.to(torch.float64) / counts.sum()
        if hasattr(model, "mode"):
            mode = model.mode().to(torch.uint8).reshape(1, -1)
        else:
            mode = unique[weights.argmax()].reshape(1, -1)
        match = (unique == mode).all(-1)
        if bool(match.any()):
            mode_row = int(match.nonzero()[0, 0])
        else:
            unique = torch.cat([unique, mode])
            weights = torch.cat([weights, torch.zeros(1, dtype=torch.float64)])
            mode_row = unique.shape[0] - 1
        if hasattr(model, "log_prob"):
            out["mode_probability"] = float(model.log_prob(mode).exp()[0])
        else:
            out["mode_probability"] = float(weights[mode_row])
        for name in ("entropy", "kl_uniform"):
            if hasattr(model, name):
                out[name] = float(getattr(model, name)())
        out["support_size"] = int(counts.numel())
        out["support_mass"] = 1.0
        out["expected_cost"] = float(weights @ task.cost(unique).to(torch.float64))
        if task.network is not None:
            for split, x, y in (
                ("train", task.x_train, task.y_train),
                ("test", task.x_test, task.y_test),
            ):
                if x is None:
                    continue
                metrics = _predictor_metrics(
                    task.network, unique, weights, mode_row, x, y, max_bytes
                )
                out.update({f"{key}_{split}": value for key, value in metrics.items()})
    out.update(model.stats.snapshot())
    return out
