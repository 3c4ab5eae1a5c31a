"""Ansatz builders: the circuit families a hypernetwork can use.

Each builder returns a :class:`~qhn.circuits.ir.Circuit`. :func:`build_ansatz` resolves a name
(``"hardware_efficient"``, ``"product"``, ``"qhn_reference"``) in one place for configs and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qhn.circuits.ir import ENTANGLING_GATES, Circuit, Gate
from qhn.errors import ConfigError, choices

__all__ = [
    "ANSATZE",
    "TOPOLOGIES",
    "build_ansatz",
    "entangler_pairs",
    "hardware_efficient",
    "product",
    "qhn_reference",
    "reference_params_from_row",
]

TOPOLOGIES = ("chain", "ring", "brick")
_ROTATIONS = ("ry", "rx", "rz")


def _check_layers(layers: int) -> None:
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 0:
        raise ConfigError(f"layers must be an integer >= 0, got {layers!r}")


def entangler_pairs(n_qubits: int, topology: str, layer: int = 0) -> list[tuple[int, int]]:
    """The (control, target) pairs of one entangling layer.

    ``chain``: ``(q, q+1)``; ``ring``: the chain closed by ``(n−1, 0)`` (for ``n > 2``);
    ``brick``: pairs starting at qubit 0 in even layers and at qubit 1 in odd layers.
    """
    if topology not in TOPOLOGIES:
        raise ConfigError(f"unknown topology {topology!r}; choose one of: {choices(TOPOLOGIES)}")
    if topology == "brick":
        return [(q, q + 1) for q in range(layer % 2, n_qubits - 1, 2)]
    pairs = [(q, q + 1) for q in range(n_qubits - 1)]
    if topology == "ring" and n_qubits > 2:
        pairs.append((n_qubits - 1, 0))
    return pairs


def _rotation_layer(n_qubits: int, rotations: Sequence[str], first_param: int) -> list[Gate]:
    gates = []
    for r, name in enumerate(rotations):
        for q in range(n_qubits):
            gates.append(Gate(name, (q,), first_param + r * n_qubits + q))
    return gates


def hardware_efficient(
    n_qubits: int,
    layers: int,
    rotations: Sequence[str] = ("ry",),
    entangler: str = "cz",
    topology: str = "chain",
) -> Circuit:
    """A rotation layer, then ``layers`` times (an entangling layer, a rotation layer).

    A rotation layer applies each gate of ``rotations`` to every qubit, each with its own
    parameter; parameters are numbered layer by layer, rotation by rotation, qubit by qubit, so
    ``P = (layers + 1) · len(rotations) · n``. ``layers = 0`` is a product state.
    """
    _check_layers(layers)
    rotations = tuple(rotations)
    if not rotations or any(r not in _ROTATIONS for r in rotations):
        raise ConfigError(
            f"rotations must be a non-empty sequence of {choices(_ROTATIONS)}, got {rotations!r}"
        )
    if entangler not in ENTANGLING_GATES:
        raise ConfigError(
            f"unknown entangler {entangler!r}; choose one of: {choices(sorted(ENTANGLING_GATES))}"
        )
    if topology not in TOPOLOGIES:
        raise ConfigError(f"unknown topology {topology!r}; choose one of: {choices(TOPOLOGIES)}")
    per_layer = len(rotations) * n_qubits
    gates = _rotation_layer(n_qubits, rotations, 0)
    for layer in range(layers):
        gates += [Gate(entangler, pair) for pair in entangler_pairs(n_qubits, topology, layer)]
        gates += _rotation_layer(n_qubits, rotations, (layer + 1) * per_layer)
    name = f"hardware_efficient(n={n_qubits}, layers={layers}, {'+'.join(rotations)}, "
    name += f"{entangler}, {topology})"
    return Circuit(n_qubits, tuple(gates), (layers + 1) * per_layer, name=name)


def product(n_qubits: int) -> Circuit:
    """One RY per qubit: independent bits with ``P(s_q = 1) = sin²(θ_q / 2)`` (mean field)."""
    circuit = hardware_efficient(n_qubits, 0)
    return Circuit(n_qubits, circuit.gates, circuit.n_params, name=f"product(n={n_qubits})")


def qhn_reference(n_qubits: int, layers: int) -> Circuit:
    """The reference QHN circuit of Carrasquilla et al. (METHOD.md §5), in our bit order.

    One paper layer is two sub-layers; sub-layer ``d = 1..2L`` is: CNOTs with (file numbering,
    qubit ``j`` is our qubit ``n − j``) control ``j``, target ``j + 1`` for
    ``j = 1 + (d mod 2), 3 + (d mod 2), … ≤ n − 1``; then RY on every qubit; then RZ on every qubit.

    Our parameter layout: RY of sub-layer ``d`` on our qubit ``q`` is ``θ[(d−1)·n + q]``; RZ is
    ``θ[2L·n + (d−1)·n + q]``; ``P = 4·L·n``. ``layers = 0`` gives no gates at all, so use
    :func:`product` for the mean-field baseline.
    """
    _check_layers(layers)
    if n_qubits < 1:
        raise ConfigError(f"n_qubits must be a positive integer, got {n_qubits!r}")
    n = n_qubits
    sublayers = 2 * layers
    gates: list[Gate] = []
    for d in range(1, sublayers + 1):
        for j in range(1 + d % 2, n, 2):
            gates.append(Gate("cnot", (n - j, n - j - 1)))
        gates += [Gate("ry", (q,), (d - 1) * n + q) for q in range(n)]
        gates += [Gate("rz", (q,), sublayers * n + (d - 1) * n + q) for q in range(n)]
    return Circuit(
        n, tuple(gates), 2 * sublayers * n, name=f"qhn_reference(n={n}, layers={layers})"
    )


def reference_params_from_row(
    row: Sequence[float] | torch.Tensor, n_qubits: int, layers: int
) -> torch.Tensor:
    """Convert one row of a reference parameter file into our parameter vector.

    The file stores the RY angles ``[d, j]`` (sub-layer ``d``, file qubit ``j``, row-major), then
    the RZ angles likewise, optionally followed by extra columns (the final loss), which are
    ignored. File qubit ``j`` (1-based, least significant first) is our qubit ``n − j``.

    Shapes: ``(≥ 4·L·n,)`` → ``(4·L·n,)`` float64, the layout of :func:`qhn_reference`.
    """
    _check_layers(layers)
    n = n_qubits
    sublayers = 2 * layers
    values = torch.as_tensor(row, dtype=torch.float64).flatten()
    need = 2 * sublayers * n
    if values.numel() < need:
        raise ConfigError(
            f"a reference row for n={n}, layers={layers} needs at least {need} values, "
            f"got {values.numel()}"
        )
    angles = values[:need].reshape(2, sublayers, n)
    return angles.flip(-1).reshape(-1).clone()


_HARDWARE_EFFICIENT_OPTIONS = ("rotations", "entangler", "topology")

ANSATZE = {
    "hardware_efficient": hardware_efficient,
    "product": lambda n_qubits, layers=0, **_: product(n_qubits),
    "qhn_reference": lambda n_qubits, layers, **_: qhn_reference(n_qubits, layers),
}


def build_ansatz(name: str, n_qubits: int, layers: int = 1, **options: object) -> Circuit:
    """Build an ansatz by name: one of :data:`ANSATZE`."""
    if name not in ANSATZE:
        raise ConfigError(f"unknown ansatz {name!r}; choose one of: {choices(ANSATZE)}")
    if name != "hardware_efficient" and options:
        raise ConfigError(f"ansatz {name!r} takes no options, got {sorted(options)}")
    unknown = sorted(set(options) - set(_HARDWARE_EFFICIENT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for ansatz {name!r}; "
            f"choose from: {choices(_HARDWARE_EFFICIENT_OPTIONS)}"
        )
    return ANSATZE[name](n_qubits, layers, **options)
