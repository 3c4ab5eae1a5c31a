"""A small frozen, hashable circuit IR.

A :class:`Circuit` is a tuple of :class:`Gate` on ``n_qubits`` wires, started in ``|0…0⟩`` and
measured in the computational basis. Rotation gates point at an index of the parameter vector θ;
one parameter may drive several gates.

Gate conventions (all ``exp(−iθG/2)`` with ``G² = I``, so the parameter-shift rule holds):

- ``ry(θ) = [[cos θ/2, −sin θ/2], [sin θ/2, cos θ/2]]``
- ``rx(θ) = [[cos θ/2, −i sin θ/2], [−i sin θ/2, cos θ/2]]``
- ``rz(θ) = diag(e^{−iθ/2}, e^{iθ/2})``
- ``h``, ``x``: fixed one-qubit gates; ``cz``, ``cnot`` (wires = control, target): two-qubit.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

from qhn.errors import ConfigError, choices

__all__ = [
    "ENTANGLING_GATES",
    "FIXED_GATES",
    "GATE_ARITY",
    "REAL_GATES",
    "ROTATION_GATES",
    "Circuit",
    "Gate",
    "gate_runs",
]

ROTATION_GATES = frozenset({"ry", "rx", "rz"})
FIXED_GATES = frozenset({"h", "x", "cz", "cnot"})
ENTANGLING_GATES = frozenset({"cz", "cnot"})
#: Gates whose matrices are real for every parameter: circuits of these alone keep a real state.
REAL_GATES = frozenset({"ry", "h", "x", "cz", "cnot"})
GATE_ARITY = {"ry": 1, "rx": 1, "rz": 1, "h": 1, "x": 1, "cz": 2, "cnot": 2}


def _as_indices(gate: str, what: str, values: object) -> tuple[int, ...]:
    """Integers (Python or NumPy) as a tuple; floats are refused, never silently truncated."""
    try:
        return tuple(operator.index(v) for v in values)  # type: ignore[attr-defined]
    except TypeError:
        raise ConfigError(f"gate {gate!r}: {what} must be integers, got {values!r}") from None


@dataclass(frozen=True)
class Gate:
    """One gate: a name, the wires it acts on, and (rotations only) a parameter index."""

    name: str
    wires: tuple[int, ...]
    param: int | None = None

    def __post_init__(self) -> None:
        if self.name not in GATE_ARITY:
            raise ConfigError(
                f"unknown gate {self.name!r}; choose one of: {choices(sorted(GATE_ARITY))}"
            )
        object.__setattr__(self, "wires", _as_indices(self.name, "wires", self.wires))
        arity = GATE_ARITY[self.name]
        if len(self.wires) != arity:
            raise ConfigError(f"gate {self.name!r} acts on {arity} wire(s), got wires {self.wires}")
        if len(set(self.wires)) != len(self.wires):
            raise ConfigError(f"gate {self.name!r} needs distinct wires, got {self.wires}")
        if self.name in ROTATION_GATES:
            param = None if self.param is None else _as_indices(self.name, "param", [self.param])
            if param is None or param[0] < 0:
                raise ConfigError(
                    f"rotation {self.name!r} on wires {self.wires} needs a parameter index >= 0, "
                    f"got {self.param!r}"
                )
            object.__setattr__(self, "param", param[0])
        elif self.param is not None:
            raise ConfigError(f"gate {self.name!r} takes no parameter, got {self.param!r}")


@dataclass(frozen=True)
class Circuit:
    """A parameterized circuit on ``n_qubits`` wires with ``n_params`` parameters.

    ``n_params`` defaults to one more than the largest parameter index; it may be larger
    (unused parameters then get zero gradient).
    """

    n_qubits: int
    gates: tuple[Gate, ...]
    n_params: int = field(default=-1)
    name: str = "circuit"

    def __post_init__(self) -> None:
        if not isinstance(self.n_qubits, int) or self.n_qubits < 1:
            raise ConfigError(f"n_qubits must be a positive integer, got {self.n_qubits!r}")
        gates = tuple(self.gates)
        for gate in gates:
            if not isinstance(gate, Gate):
                raise ConfigError(f"a circuit holds Gate objects, got {gate!r}")
            bad = [w for w in gate.wires if not 0 <= w < self.n_qubits]
            if bad:
                raise ConfigError(
                    f"gate {gate.name!r} on wire(s) {bad}: out of range for "
                    f"{self.n_qubits} qubits (valid 0..{self.n_qubits - 1})"
                )
        object.__setattr__(self, "gates", gates)
        used = [g.param for g in gates if g.param is not None]
        needed = max(used) + 1 if used else 0
        n_params = needed if self.n_params == -1 else int(self.n_params)
        if n_params < needed:
            raise ConfigError(f"gates use parameter index {needed - 1} but n_params is {n_params}")
        object.__setattr__(self, "n_params", n_params)

    @functools.cached_property
    def is_real(self) -> bool:
        """True when every gate is real, so the state stays real (the fast path). Computed once:
        simulators ask on every call."""
        return all(g.name in REAL_GATES for g in self.gates)

    @property
    def rotations(self) -> tuple[Gate, ...]:
        """The parameterized gates, in circuit order (one entry per occurrence)."""
        return tuple(g for g in self.gates if g.param is not None)

    def expanded(self) -> tuple[Circuit, tuple[int, ...]]:
        """The same circuit with a fresh parameter for every rotation occurrence.

        Returns ``(circuit, origin)`` where ``origin[k]`` is the original parameter index of
        occurrence ``k``; expanded parameters are ``θ[origin]``. Used by the parameter-shift rule,
        which shifts one occurrence at a time.
        """
        gates: list[Gate] = []
        origin: list[int] = []
        for gate in self.gates:
            if gate.param is None:
                gates.append(gate)
            else:
                gates.append(Gate(gate.name, gate.wires, len(origin)))
                origin.append(gate.param)
        expanded = Circuit(self.n_qubits, tuple(gates), len(origin), name=f"{self.name}/expanded")
        return expanded, tuple(origin)

    def __repr__(self) -> str:
        return (
            f"Circuit(name={self.name!r}, n_qubits={self.n_qubits}, gates={len(self.gates)}, "
            f"n_params={self.n_params})"
        )


def gate_runs(
    n_qubits: int, gates: tuple[Gate, ...]
) -> list[tuple[str, list[list[Gate]] | list[Gate]]]:
    """The gate list as alternating maximal runs, in order, for simulators that fuse them:
    ``("one", per_qubit)`` — the one-qubit gates between two entanglers, ``per_qubit[q]`` the
    gates on qubit ``q`` in order — and ``("entangling", gates)`` — consecutive two-qubit gates.
    Gates on different qubits commute, so a one-qubit run may be applied qubit by qubit."""
    runs: list[tuple[str, list[list[Gate]] | list[Gate]]] = []
    one: list[list[Gate]] = [[] for _ in range(n_qubits)]
    entangling: list[Gate] = []
    for gate in gates:
        if gate.name in ENTANGLING_GATES:
            if any(one):
                runs.append(("one", one))
                one = [[] for _ in range(n_qubits)]
            entangling.append(gate)
        else:
            if entangling:
                runs.append(("entangling", entangling))
                entangling = []
            one[gate.wires[0]].append(gate)
    if any(one):
        runs.append(("one", one))
    if entangling:
        runs.append(("entangling", entangling))
    return runs
