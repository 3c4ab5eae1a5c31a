"""Write the figures of one run directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qhn.bits import index_to_bits
from qhn.io import atomic_write_png
from qhn.models.network import DEFAULT_MAX_BYTES
from qhn.train.evaluate import Support, model_support

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_run_figures"]

logger = logging.getLogger(__name__)


def write_run_figures(
    out: Path,
    built,
    history: list[dict[str, Any]],
    *,
    support: Support | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Path]:
    """``curves.png`` always; ``top_bitstrings.png`` when the landscape is known;
    ``decision_boundary.png`` for tasks with 2-D inputs. Returns the paths written.

    ``support``: the networks standing for ``q``, as the evaluation computed them
    (:func:`qhn.train.evaluate.evaluate_with_support`); the figures then spend nothing on the
    backend. Without it they compute it the evaluation's way (one probability vector, or the
    run's ``shots`` with the evaluation's seed), counted in the model's stats and logged.

    Each figure stands alone: one that fails is logged as a warning and skipped, the others are
    still written. The decision boundary holds at most ``max_bytes`` of scratch at once.
    """
    from qhn.plots.training import decision_boundary, top_bitstrings, training_curves

    out = Path(out)
    config = built.config
    model = built.model
    task = built.task
    landscape = built.landscape
    title = f"{config.task} · {config.objective} · {built.circuit.name}"
    written: list[Path] = []

    def write(name: str, build: Callable[[], Figure]) -> None:
        path = out / name
        try:
            atomic_write_png(path, build())
        except Exception as error:  # one figure never costs the others
            logger.warning("%s not written: %s: %s", path, type(error).__name__, error)
            return
        written.append(path)

    resolved: list[Support] = [] if support is None else [support]

    def networks() -> Support:
        if not resolved:
            before = model.stats.snapshot()
            found, _ = model_support(
                model, shots=config.shots, generator=_evaluation_generator(config)
            )
            spent = {k: v - before[k] for k, v in model.stats.snapshot().items() if v != before[k]}
            logger.info("figures computed their own support of q, spending %s", spent)
            resolved.append(found)
        return resolved[0]

    write("curves.png", lambda: training_curves(history, title=title))
    if landscape is not None:
        write(
            "top_bitstrings.png",
            lambda: top_bitstrings(
                networks().distribution(model.n_qubits),
                landscape.train_costs,
                landscape.optimal_indices,
            ),
        )
    if task.network is not None and task.x_train is not None and task.x_train.shape[1] == 2:

        def boundary() -> Figure:
            chosen = networks()
            bits = index_to_bits(chosen.indices, model.n_qubits)
            return decision_boundary(
                task.network, bits, chosen.weights, task.x_train, task.y_train, max_bytes=max_bytes
            )

        write("decision_boundary.png", boundary)
    return written


def _evaluation_generator(config) -> torch.Generator:
    # The seed the runner evaluates with, so that the same model gives the same shots.
    return torch.Generator().manual_seed(config.train.seed + 1)
