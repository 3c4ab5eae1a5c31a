"""Binary networks at scale: a fixed output scale and one batched pass over S networks × B examples.

A ±1 network's logits grow with its fan-ins: with ``d`` inputs in ``[0, 1]`` a hidden
pre-activation is a sum of ``d`` terms ``±x_j``, of order ``√d`` for a random network and up to
``d·x̄`` for a trained one, and the logits sum ``h`` such units; a softmax over raw logits is then
almost always saturated (one wrong example costs tens of nats) and the data term ``ℓ = −N·C`` a
near step function. :class:`ScaledBinaryNetwork` multiplies the output logits by a fixed
``output_scale`` ``a``:

    ``p(y = k | x, s) = softmax(a · z(x; s))_k``,

a temperature of the likelihood, not a trained parameter (BinaryConnect-style networks use batch
norm for the same purpose). With ReLU hidden units and biases inside every layer, scaling any
hidden layer is the same as scaling the logits, so one number suffices. The default
(:func:`default_output_scale`) is ``1/√d``: ``1/8`` for digits10's ``64 → 16 → 10``. In a
400-step pilot (seed 0, 1 entangling layer, docs/scale.md) ``a = 1/32, 1/8, 1/4`` gave BMA test
accuracy 0.770, 0.879, 0.826: ``1/32`` leaves the likelihood too flat against the KL, ``1/4``
trains slower.

:func:`minibatch_cost` evaluates ``S`` networks on a minibatch in one batched matmul per layer
(float32 by default: the ±1 weights are exact and the sums of 64 terms lose nothing that matters
for a stochastic gradient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qhn.errors import ConfigError
from qhn.models.losses import per_example_loss
from qhn.models.network import BinaryNetwork, DecodedWeights

__all__ = ["DEFAULT_OUTPUT_SCALE", "ScaledBinaryNetwork", "default_output_scale", "minibatch_cost"]

#: ``1/√64``: the default of the 64 → 16 → 10 digits10 network (module docstring).
DEFAULT_OUTPUT_SCALE = 1.0 / 8.0


def default_output_scale(layer_sizes: tuple[int, ...]) -> float:
    """``1/√d`` for ``d = layer_sizes[0]`` inputs (module docstring)."""
    return 1.0 / math.sqrt(layer_sizes[0])


@dataclass(frozen=True)
class ScaledBinaryNetwork(BinaryNetwork):
    """A :class:`BinaryNetwork` whose logits are multiplied by ``output_scale`` (> 0)."""

    output_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        scale = self.output_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            raise ConfigError(f"output_scale must be a positive number, got {scale!r}")
        if not math.isfinite(scale):
            raise ConfigError(f"output_scale must be finite, got {scale!r}")

    def _logits(self, decoded: DecodedWeights, x: torch.Tensor) -> torch.Tensor:
        return super()._logits(decoded, x) * self.output_scale


def minibatch_cost(
    network: BinaryNetwork,
    bits: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "cross_entropy",
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``C_B(s) = (1/B) Σ_{b∈batch} c(x_b, y_b; s)`` for every network, in one pass over all
    ``S × B`` pairs (no chunking; size ``S·B`` to fit memory).

    Activations are kept unit-major, ``(S, width, B)``: the first layer is one matrix product
    ``(S·h, d) @ (d, B)`` shared by all networks, later layers are batched products with ``B`` as
    the long inner dimension, and the softmax normalizer reduces over a short middle axis (several
    times faster than ``log_softmax`` over a last axis of 10 classes). Networks with hyperparameter
    bits, or other losses, take the generic path of :class:`BinaryNetwork`.

    Shapes: ``bits (S, n)`` uint8, ``x (B, d)``, ``y (B,)`` int64 → ``(S,)`` float64.
    """
    xs = x.to(dtype)
    decoded = network._decode(bits, dtype)
    generic = (
        loss != "cross_entropy"
        or network.n_outputs < 2
        or network.activation_bit
        or network.hidden_activation not in ("relu", "sign")
    )
    if generic:
        logits = network._logits(decoded, xs)
        return per_example_loss(logits, y, loss).mean(-1).to(torch.float64)
    activation = torch.relu_ if network.hidden_activation == "relu" else _sign
    n_networks, last = bits.shape[0], network.n_layers - 1
    # The output scale folds into the last layer's (small) weights and biases.
    scale = getattr(network, "output_scale", 1.0)
    h = xs.T  # (d, B)
    for layer, w in enumerate(decoded.weights):
        fan_out = w.shape[2]
        w_t = w.transpose(1, 2) * scale if layer == last else w.transpose(1, 2)
        if layer == 0:
            z = (w_t.reshape(-1, w.shape[1]) @ h).view(n_networks, fan_out, -1)
        else:
            z = torch.matmul(w_t, h)
        if decoded.biases is not None:
            bias = decoded.biases[layer][:, :, None]
            z += bias * scale if layer == last else bias
        if layer < last:
            h = activation(z)
    picked = z.gather(1, y.view(1, 1, -1).expand(n_networks, 1, -1)).squeeze(1)
    return (torch.logsumexp(z, 1) - picked).mean(-1).to(torch.float64)


def _sign(z: torch.Tensor) -> torch.Tensor:
    return (z >= 0).to(z.dtype) * 2 - 1
