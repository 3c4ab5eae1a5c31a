"""What every baseline shares: the differentiable network, the hyperparameter bits, the result.

**Evaluations.** One *evaluation* is the loss of one network over the whole training set (``N``
per-example losses): ``C(s)`` of one bitstring, or one forward (and backward) pass of a relaxed or
real-valued network in a gradient method. A run's ``evaluations`` is their total, so a search that
tests ``K`` bitstrings spends ``K`` and a gradient method with ``M`` samples per step spends ``M``
per step; ``example_evaluations = evaluations · N``.

**Differentiable network.** :func:`real_logits` runs the architecture of a :class:`BinaryNetwork`
on real values ``v (S, n)`` placed at its weight and bias positions (``W_l = v[:, layout]``
reshaped ``(S, fan_in, fan_out)``); a ``sign`` hidden activation passes its gradient straight
through, ``∂sign(z)/∂z := 1_{|z| ≤ 1}`` (Hubara et al. 2016). Binary baselines feed relaxed
weights ``w(0) + (w(1) − w(0))·b̃`` with ``b̃ ∈ [0, 1]``; at ``b̃ ∈ {0, 1}`` the logits equal
:meth:`BinaryNetwork.forward`.

**Hyperparameter bits** (activation and alphabet bits) are not weights: gradient baselines train
once per setting of them (:func:`hyper_settings`, at most 8) and keep the best.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from qhn.bits import bits_to_index
from qhn.data.tasks import Task
from qhn.errors import ConfigError
from qhn.models.losses import per_example_loss
from qhn.models.network import ACTIVATION_BIT_CHOICES, ALPHABETS, BinaryNetwork

__all__ = [
    "BaselineResult",
    "HyperSetting",
    "PointModel",
    "ProductModel",
    "hyper_settings",
    "real_logits",
    "real_loss",
    "require_network",
]


@dataclass(frozen=True)
class HyperSetting:
    """One assignment of the hyperparameter bits: ``fixed`` maps bit position → 0/1, with the
    hidden activation and alphabet ``(w(0), w(1))`` it selects; ``free`` lists the weight and
    bias bit positions, ascending."""

    fixed: dict[int, int]
    activation: str
    alphabet: tuple[float, float]
    free: tuple[int, ...]


def require_network(task: Task, method: str) -> BinaryNetwork:
    """The task's network; a cost-vector task has none for a gradient method."""
    if task.network is None:
        raise ConfigError(
            f"method {method!r} trains network weights, but task {task.name!r} is a cost vector "
            "without a network; use anneal, random or exhaustive"
        )
    return task.network


def hyper_settings(network: BinaryNetwork) -> list[HyperSetting]:
    """Every setting of the activation and alphabet bits (one setting when there are none)."""
    layout = network.bit_layout
    positions = [p for p in (layout.activation,) if p is not None]
    positions += list(layout.alphabet or ())
    free = tuple(sorted(set(range(network.n_bits)) - set(positions)))
    settings = []
    for values in itertools.product((0, 1), repeat=len(positions)):
        fixed = dict(zip(positions, values, strict=True))
        activation = network.hidden_activation
        if layout.activation is not None:
            activation = ACTIVATION_BIT_CHOICES[fixed[layout.activation]]
        alphabet = network.alphabet
        if layout.alphabet is not None:
            a, b = layout.alphabet
            alphabet = ALPHABETS[2 * fixed[a] + fixed[b]]
        settings.append(HyperSetting(fixed, activation, tuple(map(float, alphabet)), free))
    return settings


class _SignStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return (z >= 0).to(z.dtype) * 2 - 1

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (z.abs() <= 1).to(grad.dtype)


_HIDDEN = {
    "sign": _SignStraightThrough.apply,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def real_logits(
    network: BinaryNetwork, values: torch.Tensor, x: torch.Tensor, activation: str
) -> torch.Tensor:
    """Logits of the architecture with real parameters ``values`` at the bit positions (entries
    at hyperparameter positions are ignored); differentiable in ``values``.

    Shapes: ``values (S, n)``, ``x (B, d)`` → ``(S, B, outputs)``.
    """
    layout = network.bit_layout
    sizes = network.layer_sizes
    s = values.shape[0]
    h = x.to(values.dtype)
    for layer, (start, stop) in enumerate(layout.weights):
        w = values[:, start:stop].reshape(s, sizes[layer], sizes[layer + 1])
        z = torch.einsum("bi,sij->sbj", h, w) if layer == 0 else torch.matmul(h, w)
        if layout.biases is not None:
            b_start, b_stop = layout.biases[layer]
            z = z + values[:, b_start:b_stop][:, None, :]
        if layer == network.n_layers - 1:
            return z * getattr(network, "output_scale", 1.0)
        h = _HIDDEN[activation](z)
    raise AssertionError("unreachable")  # pragma: no cover


def real_loss(task: Task, values: torch.Tensor, activation: str) -> torch.Tensor:
    """``C`` of each real-valued network: the mean training loss. Shapes: ``(S, n)`` → ``(S,)``."""
    logits = real_logits(task.network, values, task.x_train, activation)
    return per_example_loss(logits, task.y_train, task.loss).mean(-1)


def bits_with(setting: HyperSetting, free_bits: torch.Tensor) -> torch.Tensor:
    """Full bitstrings from the free bits ``(S, len(free))`` and the setting's fixed bits.

    Shapes: → ``(S, n)`` uint8.
    """
    n = len(setting.free) + len(setting.fixed)
    bits = torch.zeros(free_bits.shape[0], n, dtype=torch.uint8)
    bits[:, list(setting.free)] = free_bits.to(torch.uint8)
    for position, value in setting.fixed.items():
        bits[:, position] = value
    return bits


class _NoStats:
    def snapshot(self) -> dict[str, int]:
        return {}


class PointModel:
    """A delta distribution on one bitstring ``bits (n,)``, in the interface that
    :func:`qhn.train.evaluate.evaluate_with_support` reads (exact up to ``max_exact_bits``)."""

    def __init__(self, bits: torch.Tensor, *, max_exact_bits: int = 22) -> None:
        self.bits = bits.to(torch.uint8).reshape(-1)
        self.n_qubits = int(self.bits.numel())
        self.exact = self.n_qubits <= max_exact_bits
        self.stats = _NoStats()

    def probs(self) -> torch.Tensor:
        q = torch.zeros(2**self.n_qubits, dtype=torch.float64)
        q[int(bits_to_index(self.bits[None])[0])] = 1.0
        return q

    def sample(self, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.bits.expand(shots, -1).clone()


class ProductModel:
    """The product distribution ``q(s) = Π_i p_i^{s_i} (1 − p_i)^{1 − s_i}``, ``p (n,)``, in the
    interface of :func:`qhn.train.evaluate.evaluate_with_support` (exact up to
    ``max_exact_bits``, else sampled)."""

    def __init__(self, p: torch.Tensor, *, max_exact_bits: int = 22) -> None:
        self.p = p.detach().to(torch.float64).clamp(0.0, 1.0)
        self.n_qubits = int(self.p.numel())
        self.exact = self.n_qubits <= max_exact_bits
        self.stats = _NoStats()

    def probs(self) -> torch.Tensor:
        # Kronecker products, qubit 0 most significant: O(2^n) memory, no (2^n, n) bit table.
        q = torch.ones(1, dtype=torch.float64)
        for p in self.p:
            q = (q[:, None] * torch.stack([1 - p, p])[None, :]).reshape(-1)
        return q

    def sample(self, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(shots, self.n_qubits, generator=generator, dtype=torch.float64)
        return (u < self.p).to(torch.uint8)

    def mode(self) -> torch.Tensor:
        """The most probable bitstring (ties to 1). Shapes: ``(n,)`` uint8."""
        return (self.p >= 0.5).to(torch.uint8)

    def kl_to(self, prior_p: float) -> float:
        """``KL(q ‖ Bernoulli(prior_p)^n)`` in closed form (``0 · log 0 = 0``)."""
        p = self.p
        a = torch.xlogy(p, p) - p * math.log(prior_p)
        b = torch.xlogy(1 - p, 1 - p) - (1 - p) * math.log(1 - prior_p)
        return float((a + b).sum())


@dataclass
class BaselineResult:
    """What a baseline returns: the model to evaluate (a :class:`PointModel` or
    :class:`ProductModel`), the evaluations spent, the steps taken and extra summary values."""

    model: Any
    evaluations: int
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)
