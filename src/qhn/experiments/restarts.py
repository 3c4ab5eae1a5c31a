"""Restarts: train ``k`` initializations, keep the one with the lowest final training loss.

With ``restarts = k > 1`` a run trains ``k`` candidates, each from its own initial angles (the
run's ``init`` drawn with seed ``s_0 = train.seed`` for candidate 0, so candidate 0 is the run
without restarts, and ``s_r`` derived from ``(train.seed, r)`` for ``r ≥ 1``) with the run's
objective, optimizer and ``train.seed``, in memory. The candidate whose final loss (the
objective at its final angles, as ``final_loss`` in the summary) is lowest is chosen by the
training objective alone, no labels. The run then trains the chosen candidate's initial angles
again into its directory (history, checkpoints): the same computation, so it ends at the same
angles; ``evaluations`` counts the ``k`` candidates, not that replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qhn.hypernetwork import QuantumHypernetwork
from qhn.train import fit, read_checkpoint
from qhn.train.loop import evaluate_objective

if TYPE_CHECKING:
    from qhn.experiments.runner import Run

__all__ = ["choose_start", "restart_seed"]


def restart_seed(seed: int, r: int) -> int:
    """The init seed of candidate ``r``: ``seed`` itself for ``r = 0``, else 63 bits drawn from
    NumPy's ``SeedSequence((seed, r))`` (far from every plain seed a sweep would use)."""
    if r == 0:
        return seed
    words = np.random.SeedSequence((seed, r)).generate_state(2, np.uint32)
    return (int(words[0]) << 31 ^ int(words[1])) % 2**63


def choose_start(built: Run, *, state: str = "fresh", out: Path | None = None) -> dict[str, Any]:
    """Train the candidates, set ``built.model.theta`` to the chosen one's initial angles and
    return ``restart_chosen``, ``restart_losses`` and ``restart_evaluations`` (module docstring).

    ``state = "resume"``: the run continues from its checkpoint, which holds θ and these values.
    """
    from qhn.experiments.runner import training_evaluations

    if state == "resume" and out is not None:
        extra = (read_checkpoint(out) or {}).get("extra", {})
        return {key: extra[key] for key in _KEYS if key in extra}
    config = built.config
    losses, spent, starts = [], 0, []
    for r in range(config.restarts or 1):
        model = QuantumHypernetwork(
            built.circuit,
            built.model.backend.inner,
            built.model.estimator_name,
            init=config.init,
            init_scale=config.init_scale,
            generator=torch.Generator().manual_seed(restart_seed(config.train.seed, r)),
        )
        starts.append(model.theta.detach().clone())
        result = fit(model, built.objective, config.train, checkpoint_seconds=None)
        final = evaluate_objective(
            model,
            built.objective,
            config.train,
            generator=torch.Generator().manual_seed(config.train.seed + 2),
        )
        losses.append(final["loss"])
        record = result.history[-1] if result.history else {}
        spent += training_evaluations(record, built.task.n_bits, exact=config.shots is None)
    chosen = min(range(len(losses)), key=losses.__getitem__)
    with torch.no_grad():
        built.model.theta.copy_(starts[chosen])
    return {"restart_chosen": chosen, "restart_losses": losses, "restart_evaluations": spent}


_KEYS = ("restart_chosen", "restart_losses", "restart_evaluations")
