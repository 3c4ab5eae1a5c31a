"""Warm start: train the product state (``layers = 0``), then embed it in the ``layers = L``
circuit so training starts from exactly its distribution.

The hardware-efficient ansatz is a rotation layer, then ``L`` times (``cz`` entanglers, a
rotation layer); its first ``P_0 = len(rotations)·n`` angles are laid out as the product
state's. With those angles set to the trained product state's and every later angle 0, the later
rotations are identities and ``cz`` is diagonal (it only multiplies amplitudes by ±1), so
``q_θ(s)`` equals the trained product state's ``q(s)`` for every ``s``; training then moves on
from there. The product state is trained with the run's own objective, optimizer and seed for
``warm_steps`` steps (default ``train.steps``) from the ``uniform`` init, exactly as
``qhn train --set layers=0 init=uniform steps=warm_steps`` would, and its network-loss
evaluations count towards the run's ``evaluations``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from qhn.train import fit, read_checkpoint

if TYPE_CHECKING:
    from qhn.experiments.config import RunConfig
    from qhn.experiments.runner import Run

__all__ = ["product_config", "warm_start"]


def product_config(config: RunConfig) -> RunConfig:
    """The ``layers = 0`` run a warm start of ``config`` trains first."""
    steps = config.warm_steps if config.warm_steps is not None else config.train.steps
    train = dataclasses.replace(config.train, steps=steps, checkpoint_every=0)
    return dataclasses.replace(config, layers=0, init="uniform", warm_steps=None, train=train)


def warm_start(
    built: Run,
    *,
    cache_dir: str | Path | None = None,
    state: str = "fresh",
    out: Path | None = None,
) -> int:
    """Train the product state and set ``built.model.theta`` to its embedding (module
    docstring). Returns the network-loss evaluations the product state's training spent.

    ``state = "resume"``: the run continues from its checkpoint, which holds θ; nothing is
    trained again and the evaluations recorded in the checkpoint are returned.
    """
    from qhn.experiments.runner import build_run, training_evaluations

    if state == "resume" and out is not None:
        saved = read_checkpoint(out) or {}
        return int(saved.get("extra", {}).get("warm_evaluations", 0))
    config = product_config(built.config)
    product = build_run(config, cache_dir=cache_dir, task=built.task)
    result = fit(product.model, product.objective, config.train, checkpoint_seconds=None)
    angles = product.model.theta.detach()
    with torch.no_grad():
        built.model.theta.zero_()
        built.model.theta[: angles.numel()] = angles
    record = result.history[-1] if result.history else {}
    return training_evaluations(record, built.task.n_bits, exact=config.shots is None)
