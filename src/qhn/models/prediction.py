"""Bounded-memory predictions of many binary networks on many examples.

Evaluating ``S`` networks on ``B`` examples holds ``(S, B, width)`` activations at once, which
outgrows memory quickly (2048 networks on a 150 × 150 grid: 0.7 GB of probabilities alone). The
:class:`~qhn.models.network.BinaryNetwork` methods built on this module cut the (network, example)
grid into blocks whose scratch fits ``max_bytes`` and accumulate per block:

- the class probabilities ``p(k | x_b, s)`` ``(S, B, C)`` (``predict_proba``; the result itself
  must then fit the budget too, since it scales with ``S·B``);
- the weighted model average ``p̄(k | x_b) = Σ_s w_s p(k | x_b, s)`` ``(B, C)``
  (``average_proba``);
- per network, the number of correct argmax predictions ``Σ_b [argmax_k p(k | x_b, s) = y_b]``
  and the summed negative log-likelihood ``Σ_b −log max(p(y_b | x_b, s), tiny)`` ``(S,)``,
  together with the average (``prediction_sums``).

The budget bounds the scratch of one block, never the results of the last two, which scale with
``S`` or ``B`` alone (the size of the inputs); summing blocks in another order changes results by
rounding only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qhn.errors import ConfigError, MemoryBudgetError

__all__ = ["PredictionSums", "check_chunk_size", "chunk_sizes", "class_probabilities"]

# Scratch per (network, example) pair per hidden/output unit and per class, in items:
# pre-activation, activation and a selection/temporary copy.
_COPIES_PER_UNIT = 3
#: Extra scratch items per (network, example) pair of the metrics in ``prediction_sums``: the
#: picked probability, its log, the argmax (int64) and the comparison with the label.
METRIC_ITEMS_PER_PAIR = 4


@dataclass(frozen=True)
class PredictionSums:
    """What the predictors of a weighted set of ``S`` networks need, on ``B`` examples.

    ``average`` ``(B, C)``: ``Σ_s w_s p(k | x_b, s)``. ``correct`` ``(S,)`` float64: how many
    examples each network's argmax (a tie goes to the lower class) gets right. ``nll`` ``(S,)``:
    ``Σ_b −log max(p(y_b | x_b, s), tiny)`` with ``tiny`` the dtype's smallest normal number.
    """

    average: torch.Tensor
    correct: torch.Tensor
    nll: torch.Tensor


def check_chunk_size(chunk_size: int | None) -> None:
    """Refuse a ``chunk_size`` that is not None or a positive integer."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")


def chunk_sizes(
    layer_sizes: tuple[int, ...],
    n_classes: int,
    n_examples: int,
    itemsize: int,
    chunk_size: int | None,
    max_bytes: int,
    *,
    extra_items_per_pair: int = 0,
) -> tuple[int, int]:
    """How many networks and examples to evaluate at once within ``max_bytes`` of scratch.

    Whole example sets while one network on all examples fits (as many networks as fit, at most
    ``chunk_size``); otherwise one network at a time on as many examples as fit. Refused only
    when one network on one example does not fit.
    """
    check_chunk_size(chunk_size)
    units = sum(layer_sizes[1:]) + n_classes
    per_pair = itemsize * (_COPIES_PER_UNIT * units + extra_items_per_pair)
    per_network = per_pair * max(n_examples, 1)
    if per_network <= max_bytes:
        fit = max_bytes // per_network
        return (fit if chunk_size is None else min(chunk_size, fit)), max(n_examples, 1)
    if per_pair <= max_bytes:
        return 1, max_bytes // per_pair
    raise MemoryBudgetError(
        f"one network on one example needs {per_pair:,} bytes of scratch, over the budget of "
        f"{max_bytes:,} bytes; raise max_bytes"
    )


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``[σ(−z), σ(z)]`` for one output column, else ``softmax(z)``.

    Shapes: ``(..., outputs)`` → ``(..., n_classes)``.
    """
    if logits.shape[-1] == 1:
        z = logits[..., 0]
        # σ(−z) rather than 1 − σ(z): accurate when σ(z) is close to 1.
        return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=-1)
    return torch.softmax(logits, dim=-1)
