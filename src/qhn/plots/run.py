"""Write the figures of one run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from qhn.bits import index_to_bits
from qhn.io import atomic_write_png
from qhn.train.evaluate import support_from_probs, support_from_samples

__all__ = ["write_run_figures"]


def write_run_figures(out: Path, built, history: list[dict[str, Any]]) -> list[Path]:
    """``curves.png`` always; ``top_bitstrings.png`` when the landscape is known;
    ``decision_boundary.png`` for tasks with 2-D inputs. Returns the paths written."""
    from qhn.plots.training import decision_boundary, top_bitstrings, training_curves

    written = []
    config = built.config
    title = f"{config.task} · {config.objective} · {built.circuit.name}"
    path = out / "curves.png"
    atomic_write_png(path, training_curves(history, title=title))
    written.append(path)
    model = built.model
    with torch.no_grad():
        if model.exact:
            probs = model.probs().detach()
            support = support_from_probs(probs)
        else:
            bits = model.sample(4096, generator=torch.Generator().manual_seed(0))
            support = support_from_samples(bits)
            probs = torch.zeros(2**model.n_qubits, dtype=torch.float64)
            probs[support.indices] = support.weights
    if built.landscape is not None:
        path = out / "top_bitstrings.png"
        landscape = built.landscape
        atomic_write_png(
            path, top_bitstrings(probs, landscape.train_costs, landscape.optimal_indices)
        )
        written.append(path)
    task = built.task
    if task.network is not None and task.x_train is not None and task.x_train.shape[1] == 2:
        path = out / "decision_boundary.png"
        bits = index_to_bits(support.indices, model.n_qubits)
        figure = decision_boundary(task.network, bits, support.weights, task.x_train, task.y_train)
        atomic_write_png(path, figure)
        written.append(path)
    return written
