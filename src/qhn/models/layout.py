"""Where each parameter of a :class:`~qhn.models.network.BinaryNetwork` sits in the bitstring.

Layouts (see the network module for the maths): ``standard`` — for each layer in order, ``W_l``
(``fan_in × fan_out``, row-major) then ``b_l``; ``qhn-gaussian`` — all weight matrices in layer
order, then the biases in reverse layer order. Both end with the activation bit, then the two
alphabet bits, when present.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["BitLayout", "bit_names", "compute_bit_layout"]


@dataclass(frozen=True)
class BitLayout:
    """Where each parameter sits in the bitstring.

    ``weights[l]`` / ``biases[l]``: the bit positions of ``W_{l+1}`` (row-major) / ``b_{l+1}`` as
    ``(start, stop)``; ``biases`` is None without biases. ``activation``: the activation bit's
    position or None. ``alphabet``: the two alphabet bits' positions ``(a, b)`` or None.
    """

    weights: tuple[tuple[int, int], ...]
    biases: tuple[tuple[int, int], ...] | None
    activation: int | None
    alphabet: tuple[int, int] | None
    n_bits: int


def compute_bit_layout(
    layer_sizes: tuple[int, ...],
    *,
    bias: bool,
    layout: str,
    activation_bit: bool,
    alphabet_bits: bool,
) -> BitLayout:
    """The bit positions of every parameter of a network ``layer_sizes`` in ``layout``."""
    fans = list(itertools.pairwise(layer_sizes))
    position = 0
    weights: list[tuple[int, int]] = []
    biases: list[tuple[int, int]] = []
    if layout == "standard":
        for fan_in, fan_out in fans:
            weights.append((position, position + fan_in * fan_out))
            position += fan_in * fan_out
            if bias:
                biases.append((position, position + fan_out))
                position += fan_out
    else:
        for fan_in, fan_out in fans:
            weights.append((position, position + fan_in * fan_out))
            position += fan_in * fan_out
        if bias:
            reversed_biases = []
            for _, fan_out in reversed(fans):
                reversed_biases.append((position, position + fan_out))
                position += fan_out
            biases = reversed_biases[::-1]
    activation = None
    if activation_bit:
        activation = position
        position += 1
    alphabet = None
    if alphabet_bits:
        alphabet = (position, position + 1)
        position += 2
    return BitLayout(
        weights=tuple(weights),
        biases=tuple(biases) if bias else None,
        activation=activation,
        alphabet=alphabet,
        n_bits=position,
    )


def bit_names(layer_sizes: tuple[int, ...], layout: BitLayout) -> list[str]:
    """The name of every bit in bit order: ``W1[i,j]``, ``b1[j]``, ``act``, ``alphabet[0]``, …

    Layers are numbered from 1; ``W_l[i, j]`` connects unit ``i`` of layer ``l − 1`` to unit
    ``j`` of layer ``l``.
    """
    names = [""] * layout.n_bits
    for layer, (start, _) in enumerate(layout.weights):
        fan_in, fan_out = layer_sizes[layer], layer_sizes[layer + 1]
        for i in range(fan_in):
            for j in range(fan_out):
                names[start + i * fan_out + j] = f"W{layer + 1}[{i},{j}]"
    if layout.biases is not None:
        for layer, (start, stop) in enumerate(layout.biases):
            for j in range(stop - start):
                names[start + j] = f"b{layer + 1}[{j}]"
    if layout.activation is not None:
        names[layout.activation] = "act"
    if layout.alphabet is not None:
        names[layout.alphabet[0]] = "alphabet[0]"
        names[layout.alphabet[1]] = "alphabet[1]"
    return names
