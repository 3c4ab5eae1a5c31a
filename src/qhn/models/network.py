"""Binary neural networks, evaluated for many weight bitstrings at once.

A :class:`BinaryNetwork` is a fully connected network ``layer_sizes = (d, h_1, …, h_m, K)`` whose
``n`` parameters are bits (METHOD.md §1, §5). Bit ``b`` becomes the weight ``w(b)`` of an alphabet
``(w(0), w(1))``, by default ``(−1, 1)``, i.e. ``w = 2b − 1``.

Forward pass for one bitstring ``s``: ``h_0 = x``; ``z_l = h_{l−1} W_l + b_l``; hidden layers
apply the hidden activation, ``h_l = φ(z_l)``; the output layer does not. Its logits ``z`` give
``P(y = 1 | x, s) = σ(z)`` for a single output (two classes) and ``P(y = k | x, s) = softmax(z)_k``
for ``K ≥ 2`` outputs (``K`` classes).

Hidden activations: ``sign`` (``sign(0) = +1``, so every unit outputs ±1), ``relu``, ``sigmoid``,
``tanh``. Optional hyperparameter bits (reference QHN, METHOD.md §5):

- ``activation_bit``: one bit choosing the hidden activation, ``1 → sigmoid``, ``0 → relu``;
- ``alphabet_bits``: two bits ``(b_a, b_b)`` choosing the alphabet of every weight and bias bit,
  ``ALPHABETS[2·b_a + b_b]``, i.e. ``w = b``, ``2b − 1``, ``3b − 2``, ``4b − 3``. The activation
  bit is never mapped through an alphabet.

Bit layouts (the position of each parameter in the bitstring; the index order of bitstrings is
:mod:`qhn.bits`):

- ``standard``: for each layer in order, ``W_l`` (``fan_in × fan_out``, row-major) then ``b_l`` (if
  ``bias``); then the activation bit; then the two alphabet bits;
- ``qhn-gaussian``: the reference Gaussian-mixture layout — all weight matrices in layer order, then
  the biases in reverse layer order, then the hyperparameter bits. For ``2 → 4 → 1`` this is
  ``W1 (2×4), W2 (4), b2 (1), b1 (4), act (1)``. It requires ``activation_bit``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from qhn.bits import bits_to_weights
from qhn.errors import ConfigError, MemoryBudgetError, choices
from qhn.models.layout import BitLayout, bit_names, compute_bit_layout
from qhn.models.losses import check_loss, per_example_loss
from qhn.models.prediction import (
    METRIC_ITEMS_PER_PAIR,
    PredictionSums,
    check_chunk_size,
    chunk_sizes,
    class_probabilities,
)

__all__ = [
    "ALPHABETS",
    "DEFAULT_MAX_BYTES",
    "HIDDEN_ACTIVATIONS",
    "LAYOUTS",
    "BinaryNetwork",
    "DecodedWeights",
]

HIDDEN_ACTIVATIONS = ("sign", "relu", "sigmoid", "tanh")
#: The alphabets ``(w(0), w(1))`` that the two alphabet bits choose, index ``2·b_a + b_b``.
ALPHABETS = ((0.0, 1.0), (-1.0, 1.0), (-2.0, 1.0), (-3.0, 1.0))
LAYOUTS = ("standard", "qhn-gaussian")
#: Activation chosen by the activation bit: bit 0 → relu, bit 1 → sigmoid (reference QHN).
ACTIVATION_BIT_CHOICES = ("relu", "sigmoid")
#: Default bound on the scratch memory of one batched evaluation (bytes).
DEFAULT_MAX_BYTES = 2**28


def _sign(z: torch.Tensor) -> torch.Tensor:
    # sign(0) = +1 so that a hidden unit is always ±1, as a binary unit should be.
    return (z >= 0).to(z.dtype) * 2 - 1


_ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sign": _sign,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def activation_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise hidden activation called ``name`` (one of :data:`HIDDEN_ACTIVATIONS`)."""
    if name not in _ACTIVATION_FUNCTIONS:
        raise ConfigError(
            f"unknown hidden activation {name!r}; choose one of: {choices(HIDDEN_ACTIVATIONS)}"
        )
    return _ACTIVATION_FUNCTIONS[name]


@dataclass(frozen=True)
class DecodedWeights:
    """The parameters of ``S`` networks.

    Shapes: ``weights[l]`` ``(S, fan_in, fan_out)``; ``biases[l]`` ``(S, fan_out)`` (None without
    biases); ``activation`` ``(S,)`` int64, an index into :data:`HIDDEN_ACTIVATIONS`; ``alphabet``
    ``(S, 2)``, the ``(w(0), w(1))`` each network's weight bits were read with.
    """

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...] | None
    activation: torch.Tensor
    alphabet: torch.Tensor

    def select(self, rows: torch.Tensor) -> DecodedWeights:
        """The networks at positions ``rows`` (an int64 index tensor)."""
        return DecodedWeights(
            tuple(w[rows] for w in self.weights),
            None if self.biases is None else tuple(b[rows] for b in self.biases),
            self.activation[rows],
            self.alphabet[rows],
        )

    def activation_names(self) -> list[str]:
        """The hidden activation of each network by name."""
        return [HIDDEN_ACTIVATIONS[int(i)] for i in self.activation.tolist()]


@dataclass(frozen=True)
class BinaryNetwork:
    """A fully connected binary network; see the module docstring for the maths and bit layouts.

    ``layer_sizes``: ``(inputs, hidden…, outputs)``; ``outputs == 1`` is a sigmoid output (two
    classes), ``outputs ≥ 2`` a softmax over that many classes. ``hidden_activation`` is ignored
    when ``activation_bit``; ``alphabet`` is ignored when ``alphabet_bits``.
    """

    layer_sizes: tuple[int, ...]
    bias: bool = True
    hidden_activation: str = "sign"
    alphabet: tuple[float, float] = (-1.0, 1.0)
    activation_bit: bool = False
    alphabet_bits: bool = False
    layout: str = "standard"

    def __post_init__(self) -> None:
        sizes = self.layer_sizes
        if not isinstance(sizes, tuple):
            raise ConfigError(f"layer_sizes must be a tuple of ints, got {sizes!r}")
        if len(sizes) < 2 or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes
        ):
            raise ConfigError(
                f"layer_sizes must be (inputs, hidden..., outputs) with at least two positive "
                f"integers, got {sizes!r}"
            )
        if self.hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ConfigError(
                f"unknown hidden activation {self.hidden_activation!r}; "
                f"choose one of: {choices(HIDDEN_ACTIVATIONS)}"
            )
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {self.layout!r}; choose one of: {choices(LAYOUTS)}")
        if self.layout == "qhn-gaussian" and not self.activation_bit:
            raise ConfigError("layout 'qhn-gaussian' needs activation_bit=True (its last bit)")
        if self.activation_bit and len(sizes) < 3:
            raise ConfigError(
                f"activation_bit needs a hidden layer, but layer_sizes={sizes!r} has none"
            )
        if (
            not isinstance(self.alphabet, tuple)
            or len(self.alphabet) != 2
            or float(self.alphabet[0]) == float(self.alphabet[1])
        ):
            raise ConfigError(
                f"alphabet must be a pair of two different weights (w(0), w(1)), got "
                f"{self.alphabet!r}"
            )

    # ----------------------------------------------------------------- structure

    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def n_classes(self) -> int:
        """Number of classes: 2 for a single sigmoid output, else the number of outputs."""
        return 2 if self.n_outputs == 1 else self.n_outputs

    @property
    def n_bits(self) -> int:
        """Number of bits (qubits): weights, biases and hyperparameter bits."""
        return self.bit_layout.n_bits

    @functools.cached_property
    def bit_layout(self) -> BitLayout:
        """Bit positions of every parameter (see :class:`BitLayout`)."""
        return compute_bit_layout(
            self.layer_sizes,
            bias=self.bias,
            layout=self.layout,
            activation_bit=self.activation_bit,
            alphabet_bits=self.alphabet_bits,
        )

    def describe_bits(self) -> list[str]:
        """The name of every bit in bit order: ``W1[i,j]``, ``b1[j]``, ``act``, ``alphabet[0]``, …

        Layers are numbered from 1; ``W_l[i, j]`` connects unit ``i`` of layer ``l − 1`` to unit
        ``j`` of layer ``l``.
        """
        return bit_names(self.layer_sizes, self.bit_layout)

    # ----------------------------------------------------------------- validation

    def check_bits(self, bits: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate bitstrings and return them as uint8.

        Shapes: ``(S, n)`` with entries 0 or 1 → ``(S, n)`` uint8.
        """
        bits = torch.as_tensor(bits)
        if bits.ndim != 2 or bits.shape[1] != self.n_bits:
            raise ConfigError(
                f"bits must have shape (S, {self.n_bits}) for this network, got {tuple(bits.shape)}"
            )
        if bits.is_complex():
            raise ConfigError("bits must be 0 or 1, got a complex tensor")
        if bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
            raise ConfigError("bits must be 0 or 1")
        return bits.to(torch.uint8)

    def check_inputs(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate inputs; floating inputs keep their dtype, others become float64.

        Shapes: ``(B, d)`` with ``d = layer_sizes[0]``.
        """
        x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.layer_sizes[0]:
            raise ConfigError(
                f"x must have shape (B, {self.layer_sizes[0]}) for this network, got "
                f"{tuple(x.shape)}"
            )
        if x.is_complex():
            raise ConfigError("x must be real, got a complex tensor")
        if not x.is_floating_point():
            x = x.to(torch.float64)
        return x

    def check_labels(self, y: torch.Tensor | np.ndarray, n_examples: int) -> torch.Tensor:
        """Validate integer class labels in ``0..n_classes−1`` and return them as int64.

        Shapes: ``(B,)``.
        """
        y = torch.as_tensor(y)
        if y.ndim != 1 or y.shape[0] != n_examples:
            raise ConfigError(f"y must have shape ({n_examples},), got {tuple(y.shape)}")
        if y.is_complex() or (y.is_floating_point() and not bool((y == y.round()).all())):
            raise ConfigError("labels y must be integer class indices")
        labels = y.to(torch.int64)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise ConfigError(
                f"labels out of range: this network has {self.n_classes} classes "
                f"(valid 0..{self.n_classes - 1}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return labels

    # ----------------------------------------------------------------- evaluation

    def decode(
        self, bits: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64
    ) -> DecodedWeights:
        """Bitstrings to weights, biases, activation choice and alphabet (see the bit layouts).

        Shapes: ``bits (S, n)`` → see :class:`DecodedWeights`.
        """
        return self._decode(self.check_bits(bits), dtype)

    def _decode(self, bits: torch.Tensor, dtype: torch.dtype) -> DecodedWeights:
        n_networks = bits.shape[0]
        layout = self.bit_layout
        if layout.alphabet is not None:
            choice = 2 * bits[:, layout.alphabet[0]].long() + bits[:, layout.alphabet[1]].long()
            alphabet = torch.tensor(ALPHABETS, dtype=dtype)[choice]
        else:
            alphabet = torch.tensor(self.alphabet, dtype=dtype).expand(n_networks, 2)
        low, high = alphabet[:, :1], alphabet[:, 1:]
        values = bits_to_weights(bits, (low, high), dtype=dtype)
        weights = tuple(
            values[:, start:stop].reshape(n_networks, fan_in, fan_out)
            for (start, stop), fan_in, fan_out in zip(
                layout.weights, self.layer_sizes[:-1], self.layer_sizes[1:], strict=True
            )
        )
        biases = None
        if layout.biases is not None:
            biases = tuple(values[:, start:stop] for start, stop in layout.biases)
        if layout.activation is not None:
            chosen = torch.tensor(
                [HIDDEN_ACTIVATIONS.index(name) for name in ACTIVATION_BIT_CHOICES]
            )
            activation = chosen[bits[:, layout.activation].long()]
        else:
            activation = torch.full(
                (n_networks,), HIDDEN_ACTIVATIONS.index(self.hidden_activation), dtype=torch.int64
            )
        return DecodedWeights(weights, biases, activation, alphabet)

    def forward(
        self, bits: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray
    ) -> torch.Tensor:
        """Output logits (pre-sigmoid / pre-softmax) of every network on every example.

        No chunking: the whole ``(S, B, width)`` activations are held at once (see
        :meth:`predict_proba`, :meth:`average_proba`, :meth:`prediction_sums` and
        :meth:`mean_loss` for bounded memory).

        Shapes: ``bits (S, n)``, ``x (B, d)`` → ``(S, B, outputs)``.
        """
        x = self.check_inputs(x)
        return self._logits(self._decode(self.check_bits(bits), x.dtype), x)

    def _logits(self, decoded: DecodedWeights, x: torch.Tensor) -> torch.Tensor:
        if len(decoded.activation) == 0:
            return torch.empty(0, x.shape[0], self.n_outputs, dtype=x.dtype)
        kinds = torch.unique(decoded.activation)
        if self.n_layers > 1 and len(kinds) > 1:
            # One pass per activation kind beats evaluating every kind everywhere and selecting.
            out = torch.empty(len(decoded.activation), x.shape[0], self.n_outputs, dtype=x.dtype)
            for kind in kinds:
                rows = torch.nonzero(decoded.activation == kind).squeeze(1)
                out[rows] = self._logits(decoded.select(rows), x)
            return out
        activation = _ACTIVATION_FUNCTIONS[HIDDEN_ACTIVATIONS[int(kinds[0])]]
        h = x
        for layer in range(self.n_layers):
            w = decoded.weights[layer]
            z = torch.einsum("bi,sij->sbj", x, w) if layer == 0 else torch.matmul(h, w)
            if decoded.biases is not None:
                z += decoded.biases[layer][:, None, :]
            if layer == self.n_layers - 1:
                return z
            h = activation(z)
        raise AssertionError("unreachable")  # pragma: no cover

    def predict_proba(
        self,
        bits: torch.Tensor | np.ndarray,
        x: torch.Tensor | np.ndarray,
        *,
        chunk_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> torch.Tensor:
        """Class probabilities ``p(y = k | x, s)``; ``[σ(−z), σ(z)]`` for a single output.

        Evaluated in blocks of at most ``chunk_size`` networks (default: as many as fit
        ``max_bytes`` of scratch), and of fewer examples when one network on all of them does not
        fit. The result scales with ``S·B`` and must fit ``max_bytes`` too: ask
        :meth:`average_proba` or :meth:`prediction_sums` for what does not.

        Shapes: ``bits (S, n)``, ``x (B, d)`` → ``(S, B, n_classes)``.
        """
        x = self.check_inputs(x)
        bits = self.check_bits(bits)
        check_chunk_size(chunk_size)
        n_networks, n_examples = bits.shape[0], x.shape[0]
        result_bytes = n_networks * n_examples * self.n_classes * x.element_size()
        if result_bytes > max_bytes:
            raise MemoryBudgetError(
                f"probabilities of {n_networks} networks on {n_examples} examples need "
                f"{result_bytes:,} bytes, over the budget of {max_bytes:,} bytes; ask "
                f"average_proba or prediction_sums for the model average and per-network metrics"
            )
        out = torch.empty(n_networks, n_examples, self.n_classes, dtype=x.dtype)
        for rows, cols, proba in self._proba_blocks(bits, x, chunk_size, max_bytes, 0):
            out[rows, cols] = proba
        return out

    def average_proba(
        self,
        bits: torch.Tensor | np.ndarray,
        weights: torch.Tensor | np.ndarray,
        x: torch.Tensor | np.ndarray,
        *,
        chunk_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> torch.Tensor:
        """The weighted model average ``p̄(k | x) = Σ_s w_s p(k | x, s)``, never holding
        ``(S, B, C)``: blocks of networks and examples whose scratch fits ``max_bytes``.

        Shapes: ``bits (S, n)``, ``weights (S,)``, ``x (B, d)`` → ``(B, n_classes)``.
        """
        x = self.check_inputs(x)
        bits = self.check_bits(bits)
        weights = self._check_weights(weights, bits.shape[0], x.dtype)
        check_chunk_size(chunk_size)
        average = torch.zeros(x.shape[0], self.n_classes, dtype=x.dtype)
        for rows, cols, proba in self._proba_blocks(bits, x, chunk_size, max_bytes, 0):
            average[cols] += torch.einsum("s,sbc->bc", weights[rows], proba)
        return average

    def prediction_sums(
        self,
        bits: torch.Tensor | np.ndarray,
        weights: torch.Tensor | np.ndarray,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray,
        *,
        chunk_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> PredictionSums:
        """In one pass: the model average (as :meth:`average_proba`), and per network the number
        of correct argmax predictions and ``Σ_b −log max(p(y_b | x_b, s), tiny)``; see
        :class:`~qhn.models.prediction.PredictionSums`. Scratch of one block ≤ ``max_bytes``.

        Shapes: ``bits (S, n)``, ``weights (S,)``, ``x (B, d)``, ``y (B,)`` → ``(B, n_classes)``,
        ``(S,)``, ``(S,)``.
        """
        x = self.check_inputs(x)
        bits = self.check_bits(bits)
        weights = self._check_weights(weights, bits.shape[0], x.dtype)
        y = self.check_labels(y, x.shape[0])
        check_chunk_size(chunk_size)
        n_networks = bits.shape[0]
        average = torch.zeros(x.shape[0], self.n_classes, dtype=x.dtype)
        correct = torch.zeros(n_networks, dtype=torch.float64)
        nll = torch.zeros(n_networks, dtype=x.dtype)
        tiny = torch.finfo(x.dtype).tiny
        blocks = self._proba_blocks(bits, x, chunk_size, max_bytes, METRIC_ITEMS_PER_PAIR)
        for rows, cols, proba in blocks:
            labels = y[cols]
            average[cols] += torch.einsum("s,sbc->bc", weights[rows], proba)
            picked = proba.gather(2, labels.view(1, -1, 1).expand(proba.shape[0], -1, 1))
            nll[rows] -= torch.log(picked.squeeze(-1).clamp_min(tiny)).sum(-1)
            correct[rows] += (proba.argmax(-1) == labels).sum(-1).to(torch.float64)
        return PredictionSums(average, correct, nll)

    def _check_weights(self, weights, n_networks: int, dtype: torch.dtype) -> torch.Tensor:
        weights = torch.as_tensor(weights)
        if weights.shape != (n_networks,) or weights.is_complex():
            raise ConfigError(
                f"weights must be real with shape ({n_networks},), one per network, got "
                f"{tuple(weights.shape)} {weights.dtype}"
            )
        return weights.to(dtype)

    def _proba_blocks(self, bits, x, chunk_size, max_bytes, extra_items_per_pair):
        """Yield ``(network rows, example columns, probabilities)`` blocks covering ``(S, B)``
        whose scratch fits ``max_bytes``; probabilities ``(rows, columns, n_classes)``."""
        n_networks, n_examples = bits.shape[0], x.shape[0]
        network_chunk, example_chunk = chunk_sizes(
            self.layer_sizes,
            self.n_classes,
            n_examples,
            x.element_size(),
            chunk_size,
            max_bytes,
            extra_items_per_pair=extra_items_per_pair,
        )
        for first in range(0, n_networks, network_chunk):
            rows = slice(first, min(first + network_chunk, n_networks))
            decoded = self._decode(bits[rows], x.dtype)
            for start in range(0, n_examples, example_chunk):
                cols = slice(start, min(start + example_chunk, n_examples))
                yield rows, cols, class_probabilities(self._logits(decoded, x[cols]))

    def log_likelihood(
        self,
        bits: torch.Tensor | np.ndarray,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray,
        *,
        chunk_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> torch.Tensor:
        """``Σ_i log p(y_i | x_i, s)`` for every network (a sum over examples, not a mean).

        Shapes: ``bits (S, n)``, ``x (B, d)``, ``y (B,)`` → ``(S,)``.
        """
        return -self._loss_sum(bits, x, y, "cross_entropy", chunk_size, max_bytes)

    def mean_loss(
        self,
        bits: torch.Tensor | np.ndarray,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray,
        loss: str,
        *,
        chunk_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> torch.Tensor:
        """The cost ``C(s) = (1/B) Σ_i c(x_i, y_i; s)`` of every network, ``loss`` in ``LOSSES``.

        Evaluated ``chunk_size`` networks at a time (default, and at most: as many as fit
        ``max_bytes`` of scratch); when even one network on all examples does not fit, examples
        are chunked too.

        Shapes: ``bits (S, n)``, ``x (B, d)``, ``y (B,)`` → ``(S,)``.
        """
        check_loss(loss)
        x = self.check_inputs(x)
        return self._loss_sum(bits, x, y, loss, chunk_size, max_bytes) / x.shape[0]

    def _loss_sum(self, bits, x, y, loss, chunk_size, max_bytes) -> torch.Tensor:
        check_loss(loss)
        x = self.check_inputs(x)
        bits = self.check_bits(bits)
        y = self.check_labels(y, x.shape[0])
        n_networks, n_examples = bits.shape[0], x.shape[0]
        if n_examples == 0:
            raise ConfigError("need at least one example")
        network_chunk, example_chunk = chunk_sizes(
            self.layer_sizes, self.n_classes, n_examples, x.element_size(), chunk_size, max_bytes
        )
        total = torch.zeros(n_networks, dtype=x.dtype)
        for first in range(0, n_networks, network_chunk):
            last = min(first + network_chunk, n_networks)
            decoded = self._decode(bits[first:last], x.dtype)
            for start in range(0, n_examples, example_chunk):
                stop = min(start + example_chunk, n_examples)
                logits = self._logits(decoded, x[start:stop])
                total[first:last] += per_example_loss(logits, y[start:stop], loss).sum(-1)
        return total
