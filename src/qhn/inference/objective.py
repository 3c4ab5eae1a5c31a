"""What every training objective shares: the access it needs and the result it returns.

All three objectives are maximized (METHOD.md §2); ``ObjectiveResult.loss`` is the negative, to
minimize. Its value is honest (the objective's estimate) while its gradient is the estimator's:
``value + (surrogate − surrogate.detach())``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

from qhn.errors import CapabilityError
from qhn.inference.entropy import entropy, neg_entropy

if TYPE_CHECKING:
    from qhn.hypernetwork import QuantumHypernetwork
    from qhn.inference.data_term import DataTerm

__all__ = [
    "Access",
    "Objective",
    "ObjectiveBase",
    "ObjectiveResult",
    "entropy",
    "honest",
    "neg_entropy",
]


class Access(enum.Enum):
    """What an objective needs from the backend."""

    PROBS = "probs"  # the explicit distribution: simulators only
    SAMPLES = "samples"  # measured bitstrings: any backend, hardware included


@dataclass
class ObjectiveResult:
    """A scalar ``loss`` to minimize and detached metrics (floats)."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    """A training objective. ``anneal`` in [0, 1] multiplies β or λ (set by the train loop)."""

    name: str
    requires: Access
    stochastic: bool
    anneal: float

    def check(self, model: QuantumHypernetwork) -> None: ...

    def __call__(
        self, model: QuantumHypernetwork, *, generator: torch.Generator | None = None
    ) -> ObjectiveResult: ...


class ObjectiveBase:
    """Shared plumbing: the annealing factor, the capability check, and the state a checkpoint
    keeps (the data term's evaluation cache)."""

    name: str
    requires: Access
    #: What to suggest when the backend cannot serve :attr:`requires`.
    alternative: str
    data_term: DataTerm

    def __init__(self, data_term: DataTerm) -> None:
        self.data_term = data_term
        self.anneal = 1.0

    def check(self, model: QuantumHypernetwork) -> None:
        """Refuse, before any compute, an objective the model's backend cannot serve."""
        if self.requires is Access.PROBS and not model.exact:
            raise CapabilityError(
                f"{self.name} needs the explicit distribution q(s), but the backend "
                f"{model.backend.inner!r} only gives samples; use {self.alternative}"
            )
        shots = getattr(self, "shots", None)
        if shots is not None and model.estimator_name == "backprop":
            raise CapabilityError(
                f"{self.name} with shots = {shots} estimates from samples, which the 'backprop' "
                "estimator cannot differentiate; build the model with estimator "
                "'parameter-shift' or 'score-function'"
            )

    def state_dict(self) -> dict[str, object]:
        return {"data_term": self.data_term.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.data_term.load_state_dict(state["data_term"])  # type: ignore[arg-type]


def honest(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``value`` carrying the gradient of ``surrogate``: ``value + (sur − sur.detach())``."""
    return value.detach() + (surrogate - surrogate.detach())


def base_metrics(data_value: torch.Tensor, data_term) -> dict[str, float]:
    """The metrics every objective reports: ``E_q[ℓ]`` and ``E_q[C]``."""
    value = float(data_value.detach())
    return {"data_term": value, "expected_cost": float(data_term.cost_of(value))}
