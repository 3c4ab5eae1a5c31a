"""The circuit IR and the ansatz builders: structure, hashing, expansion, and bad inputs.

Structural expectations come from the definitions in the docstrings and METHOD.md §5; the
expanded-circuit check runs on Qiskit (tests/oracles.py) as well as on our backend.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles import qiskit_probs, random_circuits
from qhn.backends import StatevectorBackend
from qhn.circuits import (
    ANSATZE,
    TOPOLOGIES,
    Circuit,
    Gate,
    build_ansatz,
    entangler_pairs,
    hardware_efficient,
    product,
    qhn_reference,
    reference_params_from_row,
)
from qhn.circuits.ir import GATE_ARITY, ROTATION_GATES
from qhn.errors import ConfigError

BACKEND = StatevectorBackend()


# ----------------------------------------------------------------------------- frozen, hashable
def test_circuits_are_frozen():
    circuit = hardware_efficient(3, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        circuit.n_qubits = 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        circuit.gates[0].param = 7
    assert isinstance(circuit.gates, tuple)


def test_equal_circuits_hash_equal_and_work_as_dict_keys():
    a = hardware_efficient(3, 2, ("ry", "rz"), "cnot", "ring")
    b = hardware_efficient(3, 2, ("ry", "rz"), "cnot", "ring")
    c = hardware_efficient(3, 2, ("ry", "rz"), "cz", "ring")
    assert a == b and a is not b
    assert hash(a) == hash(b)
    assert a != c
    table = {a: "first", c: "other"}
    assert table[b] == "first"
    assert len({a, b, c}) == 2
    from_list = Circuit(2, [Gate("ry", [0], 0), Gate("cz", [0, 1])])
    from_tuple = Circuit(2, (Gate("ry", (0,), 0), Gate("cz", (0, 1))))
    assert from_list == from_tuple and hash(from_list) == hash(from_tuple)


def test_build_ansatz_resolves_names():
    assert build_ansatz("hardware_efficient", 4, 2, rotations=("ry", "rz"), topology="brick") == (
        hardware_efficient(4, 2, ("ry", "rz"), "cz", "brick")
    )
    assert build_ansatz("product", 3) == product(3)
    assert build_ansatz("qhn_reference", 5, 2) == qhn_reference(5, 2)
    assert set(ANSATZE) == {"hardware_efficient", "product", "qhn_reference"}


# ----------------------------------------------------------------------------- is_real
@pytest.mark.parametrize(
    ("names", "real"),
    [
        (("ry",), True),
        (("ry", "h", "x", "cz", "cnot"), True),
        ((), True),
        (("ry", "rz"), False),
        (("rx",), False),
        (("h", "cz", "rx"), False),
    ],
)
def test_is_real_only_for_real_gate_sets(names, real):
    gates = []
    for k, name in enumerate(names):
        wires = (0, 1) if GATE_ARITY[name] == 2 else (k % 2,)
        gates.append(Gate(name, wires, 0 if name in ROTATION_GATES else None))
    assert Circuit(2, tuple(gates)).is_real is real


def test_ansatz_realness():
    assert hardware_efficient(4, 2, ("ry",), "cnot", "ring").is_real
    assert product(3).is_real
    assert not hardware_efficient(4, 2, ("ry", "rz")).is_real
    assert not qhn_reference(3, 1).is_real


# ----------------------------------------------------------------------------- ansatz structure
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_entangler_pairs_follow_their_definition(topology, n):
    chain = [(q, q + 1) for q in range(n - 1)]
    expected = {
        "chain": (chain, chain),
        "ring": (chain + [(n - 1, 0)] * (n > 2),) * 2,
        "brick": (chain[0::2], chain[1::2]),
    }[topology]
    assert entangler_pairs(n, topology, 0) == expected[0]
    assert entangler_pairs(n, topology, 1) == expected[1]
    assert entangler_pairs(n, topology, 2) == expected[0]


@pytest.mark.parametrize("rotations", [("ry",), ("ry", "rz"), ("rx", "ry", "rz")])
@pytest.mark.parametrize("layers", [0, 1, 3])
def test_hardware_efficient_parameter_count_and_layout(rotations, layers):
    n = 4
    circuit = hardware_efficient(n, layers, rotations, "cnot", "brick")
    per_layer = len(rotations) * n
    assert circuit.n_params == (layers + 1) * per_layer
    used = [g.param for g in circuit.rotations]
    assert used == list(range(circuit.n_params))
    for gate in circuit.rotations:
        _, rest = divmod(gate.param, per_layer)
        r, q = divmod(rest, n)
        assert gate.name == rotations[r] and gate.wires == (q,)
    assert sum(g.name == "cnot" for g in circuit.gates) == sum(
        len(entangler_pairs(n, "brick", layer)) for layer in range(layers)
    )


def test_product_is_one_ry_per_qubit():
    circuit = product(5)
    assert [(g.name, g.wires, g.param) for g in circuit.gates] == [
        ("ry", (q,), q) for q in range(5)
    ]
    assert circuit.n_params == 5


@pytest.mark.parametrize(("n", "layers"), [(1, 1), (2, 1), (5, 2), (17, 2)])
def test_qhn_reference_counts(n, layers):
    circuit = qhn_reference(n, layers)
    assert circuit.n_params == 4 * layers * n
    assert len(circuit.rotations) == 4 * layers * n
    # Sub-layer d has one CNOT per file qubit j = 1 + (d mod 2), 3 + (d mod 2), … ≤ n − 1.
    cnots = sum(len(range(1 + d % 2, n, 2)) for d in range(1, 2 * layers + 1))
    assert sum(g.name == "cnot" for g in circuit.gates) == cnots
    assert qhn_reference(n, 0).gates == ()


def test_reference_row_conversion_reverses_file_qubits():
    n, layers = 3, 1
    row = torch.arange(4 * layers * n + 1, dtype=torch.float64)  # last column: a stored loss
    theta = reference_params_from_row(row, n, layers)
    # RY of sub-layer d on file qubit j (1-based) is row[(d-1)·n + j-1]; file j is our n−j.
    assert theta.tolist() == [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]


# ----------------------------------------------------------------------------- expanded
def test_expanded_gives_one_parameter_per_rotation():
    gates = (
        Gate("ry", (0,), 1),
        Gate("cz", (0, 1)),
        Gate("rz", (1,), 1),
        Gate("h", (2,)),
        Gate("rx", (2,), 0),
        Gate("ry", (0,), 1),
    )
    circuit = Circuit(3, gates, n_params=4)
    expanded, origin = circuit.expanded()
    assert origin == (1, 1, 0, 1)
    assert expanded.n_params == 4
    assert [g.param for g in expanded.rotations] == [0, 1, 2, 3]
    for old, new in zip(circuit.gates, expanded.gates, strict=True):
        assert (old.name, old.wires) == (new.name, new.wires)
        assert (old.param is None) == (new.param is None)


@settings(max_examples=30, deadline=None)
@given(
    circuit=random_circuits(max_qubits=4, max_gates=10, max_params=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_expanded_with_gathered_parameters_gives_the_same_probabilities(circuit, seed):
    generator = torch.Generator().manual_seed(seed)
    theta = (torch.rand(circuit.n_params, generator=generator, dtype=torch.float64) - 0.5) * 12
    expanded, origin = circuit.expanded()
    assert len(origin) == len(circuit.rotations)
    assert expanded.n_params == len(origin)
    gathered = theta[list(origin)]
    original = BACKEND.probs(circuit, theta).numpy()
    np.testing.assert_allclose(BACKEND.probs(expanded, gathered).numpy(), original, atol=1e-12)
    np.testing.assert_allclose(qiskit_probs(expanded, gathered), original, atol=1e-10)


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Gate("rw", (0,), 0), r"unknown gate 'rw'; choose one of: cnot, cz, h, rx, ry"),
        (lambda: Gate("cz", (0,)), r"gate 'cz' acts on 2 wire\(s\), got wires \(0,\)"),
        (lambda: Gate("h", (0, 1)), r"gate 'h' acts on 1 wire\(s\), got wires \(0, 1\)"),
        (lambda: Gate("cnot", (1, 1)), r"gate 'cnot' needs distinct wires, got \(1, 1\)"),
        (lambda: Gate("ry", (0,)), r"rotation 'ry' on wires \(0,\) needs a parameter index"),
        (lambda: Gate("rz", (0,), -2), r"needs a parameter index >= 0, got -2"),
        (lambda: Gate("ry", (0,), 1.5), r"gate 'ry': param must be integers, got \[1.5\]"),
        (lambda: Gate("rx", (0.5,), 0), r"gate 'rx': wires must be integers"),
        (lambda: Gate("h", (0,), 3), r"gate 'h' takes no parameter, got 3"),
        (
            lambda: Circuit(2, (Gate("ry", (2,), 0),)),
            r"gate 'ry' on wire\(s\) \[2\]: out of range for 2 qubits \(valid 0\.\.1\)",
        ),
        (
            lambda: Circuit(3, (Gate("cz", (-1, 0)),)),
            r"gate 'cz' on wire\(s\) \[-1\]: out of range for 3 qubits",
        ),
        (
            lambda: Circuit(2, (Gate("ry", (0,), 3),), n_params=2),
            r"gates use parameter index 3 but n_params is 2",
        ),
        (lambda: Circuit(0, ()), r"n_qubits must be a positive integer, got 0"),
        (lambda: Circuit(2, ("ry",)), r"a circuit holds Gate objects, got 'ry'"),
        (
            lambda: build_ansatz("hardware_eficient", 3),
            r"unknown ansatz 'hardware_eficient'; choose one of: hardware_efficient, product",
        ),
        (
            lambda: build_ansatz("hardware_efficient", 3, 1, topolgy="ring"),
            r"unknown option\(s\) \['topolgy'\].*choose from: rotations, entangler, topology",
        ),
        (
            lambda: build_ansatz("product", 3, entangler="cz"),
            r"ansatz 'product' takes no options, got \['entangler'\]",
        ),
        (
            lambda: hardware_efficient(3, 1, topology="star"),
            r"unknown topology 'star'; choose one of: chain, ring, brick",
        ),
        (
            lambda: hardware_efficient(3, 0, topology="star"),
            r"unknown topology 'star'; choose one of: chain, ring, brick",
        ),
        (lambda: entangler_pairs(3, "all"), r"unknown topology 'all'"),
        (
            lambda: hardware_efficient(3, 1, entangler="cy"),
            r"unknown entangler 'cy'; choose one of: cnot, cz",
        ),
        (
            lambda: hardware_efficient(3, 1, rotations=("ry", "ryy")),
            r"rotations must be a non-empty sequence of ry, rx, rz, got \('ry', 'ryy'\)",
        ),
        (lambda: hardware_efficient(3, 1, rotations=()), r"rotations must be a non-empty"),
        (lambda: hardware_efficient(3, -1), r"layers must be an integer >= 0, got -1"),
        (lambda: hardware_efficient(0, 1), r"n_qubits must be a positive integer, got 0"),
        (lambda: qhn_reference(4, 1.5), r"layers must be an integer >= 0, got 1.5"),
        (lambda: qhn_reference(0, 1), r"n_qubits must be a positive integer, got 0"),
        (
            lambda: reference_params_from_row([0.1] * 11, 3, 1),
            r"reference row for n=3, layers=1 needs at least 12 values, got 11",
        ),
    ],
)
def test_bad_circuit_inputs_name_the_problem(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
