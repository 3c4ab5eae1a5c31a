"""StatevectorBackend against PennyLane default.qubit and Qiskit Statevector, and closed forms.

Every ansatz and topology, random angles, probabilities to 1e-10; batched calls; float32; the
normalisation; hypothesis property tests over random gate lists; and sampling statistics.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles import pennylane_probs, pennylane_state, qiskit_probs, random_circuits
from qhn.backends import StatevectorBackend
from qhn.bits import all_bits, bits_to_index
from qhn.circuits import TOPOLOGIES, Circuit, Gate, hardware_efficient, product, qhn_reference

ORACLE_TOL = 1e-10
FLOAT32_TOL = 1e-5
BACKEND = StatevectorBackend()
BACKEND32 = StatevectorBackend(dtype=torch.float32)

ROTATION_SETS = [("ry",), ("ry", "rz"), ("rx", "ry", "rz")]
HARDWARE_EFFICIENT_CASES = list(
    itertools.product(ROTATION_SETS, ("cz", "cnot"), TOPOLOGIES, range(4), (1, 2, 3, 5, 7))
)


def random_angles(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Angles uniform in [−2π, 2π), float64."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * 2 * math.pi


def assert_normalised(probs: torch.Tensor, tol: float = 1e-12) -> None:
    assert bool((probs >= 0).all()), "negative probability"
    deviation = (probs.sum(-1) - 1).abs().max().item()
    assert deviation <= tol, f"probabilities sum to 1 ± {deviation:.3g}"


def assert_matches_oracles(circuit: Circuit, theta: torch.Tensor) -> None:
    ours = BACKEND.probs(circuit, theta)
    assert ours.dtype == torch.float64
    assert ours.shape == (*theta.shape[:-1], 2**circuit.n_qubits)
    assert_normalised(ours)
    for oracle in (pennylane_probs, qiskit_probs):
        message = f"{circuit.name} differs from {oracle.__name__}"
        expected = oracle(circuit, theta)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=ORACLE_TOL, err_msg=message)


# ----------------------------------------------------------------------------- oracle sanity
@pytest.mark.parametrize("oracle", [pennylane_probs, qiskit_probs])
def test_oracles_use_our_bit_order(oracle):
    """X on qubit q alone puts all mass on index 2^(n−1−q): checks the oracle mapping itself."""
    n = 4
    for q in range(n):
        probs = oracle(Circuit(n, (Gate("x", (q,)),)), torch.zeros(0))
        expected = np.zeros(2**n)
        expected[2 ** (n - 1 - q)] = 1
        np.testing.assert_allclose(probs, expected, atol=1e-15)


# ----------------------------------------------------------------------------- closed forms
def test_single_x_gate_sets_the_bit_of_its_qubit():
    n = 5
    for q in range(n):
        probs = BACKEND.probs(Circuit(n, (Gate("x", (q,)),)), torch.zeros(0))
        assert probs.argmax().item() == 2 ** (n - 1 - q)
        assert probs.max().item() == 1.0


def test_cnot_control_and_target_order():
    # |10⟩ (qubit 0 set) → CNOT(0, 1) → |11⟩; CNOT(1, 0) would leave |10⟩.
    base = (Gate("x", (0,)),)
    forward = BACKEND.probs(Circuit(2, (*base, Gate("cnot", (0, 1)))), torch.zeros(0))
    backward = BACKEND.probs(Circuit(2, (*base, Gate("cnot", (1, 0)))), torch.zeros(0))
    assert forward.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert backward.tolist() == [0.0, 0.0, 1.0, 0.0]


def test_bell_state():
    probs = BACKEND.probs(Circuit(2, (Gate("h", (0,)), Gate("cnot", (0, 1)))), torch.zeros(0))
    np.testing.assert_allclose(probs.numpy(), [0.5, 0, 0, 0.5], atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_product_is_independent_bernoulli_sin_squared(n):
    theta = random_angles((n,), seed=n)
    p_one = torch.sin(theta / 2) ** 2
    bits = all_bits(n).to(torch.float64)
    expected = torch.prod(bits * p_one + (1 - bits) * (1 - p_one), dim=-1)
    np.testing.assert_allclose(
        BACKEND.probs(product(n), theta).numpy(), expected.numpy(), atol=1e-14
    )


# ----------------------------------------------------------------------------- every ansatz
@pytest.mark.parametrize(
    ("rotations", "entangler", "topology", "layers", "n"),
    HARDWARE_EFFICIENT_CASES,
    ids=["-".join(map(str, ("+".join(c[0]), *c[1:]))) for c in HARDWARE_EFFICIENT_CASES],
)
def test_hardware_efficient_matches_oracles(rotations, entangler, topology, layers, n):
    circuit = hardware_efficient(n, layers, rotations, entangler, topology)
    seed = 1000 * layers + 10 * n + len(rotations)
    assert_matches_oracles(circuit, random_angles((2, circuit.n_params), seed))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_product_matches_oracles(n):
    assert_matches_oracles(product(n), random_angles((3, n), seed=n))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_qhn_reference_matches_oracles(n, layers):
    circuit = qhn_reference(n, layers)
    assert_matches_oracles(circuit, random_angles((2, circuit.n_params), seed=10 * n + layers))


@pytest.mark.parametrize(
    "circuit",
    [
        hardware_efficient(10, 3, ("ry",), "cz", "ring"),
        hardware_efficient(9, 2, ("rx", "ry", "rz"), "cnot", "brick"),
        qhn_reference(12, 2),
        product(14),
    ],
    ids=lambda c: c.name,
)
def test_larger_circuits_are_normalised(circuit):
    assert_normalised(BACKEND.probs(circuit, random_angles((3, circuit.n_params), seed=5)))


# ----------------------------------------------------------------------------- batching, options
BATCH_CIRCUITS = [
    hardware_efficient(5, 2, ("ry",), "cz", "chain"),
    hardware_efficient(4, 3, ("rx", "ry", "rz"), "cnot", "ring"),
    qhn_reference(6, 2),
]


@pytest.mark.parametrize("circuit", BATCH_CIRCUITS, ids=lambda c: c.name)
def test_batched_call_equals_per_row_calls(circuit):
    theta = random_angles((7, circuit.n_params), seed=3)
    batched = BACKEND.probs(circuit, theta)
    assert batched.shape == (7, 2**circuit.n_qubits)
    rows = torch.stack([BACKEND.probs(circuit, row) for row in theta])
    assert rows.shape == batched.shape
    np.testing.assert_allclose(batched.numpy(), rows.numpy(), rtol=0, atol=1e-13)
    # Tiny chunks force the batch to be split; the result must not change.
    chunked = StatevectorBackend(chunk_bytes=1).probs(circuit, theta)
    np.testing.assert_allclose(chunked.numpy(), batched.numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("block_qubits", [1, 2, 3, 5])
def test_block_size_does_not_change_probabilities(block_qubits):
    circuit = hardware_efficient(7, 2, ("ry", "rz"), "cnot", "brick")
    theta = random_angles((2, circuit.n_params), seed=block_qubits)
    probs = StatevectorBackend(block_qubits=block_qubits).probs(circuit, theta)
    np.testing.assert_allclose(probs.numpy(), qiskit_probs(circuit, theta), atol=ORACLE_TOL)


@pytest.mark.parametrize(
    "circuit",
    [*BATCH_CIRCUITS, hardware_efficient(7, 3, ("ry",), "cnot", "brick"), product(7)],
    ids=lambda c: c.name,
)
def test_float32_agrees_with_the_oracle(circuit):
    theta = random_angles((3, circuit.n_params), seed=11)
    probs = BACKEND32.probs(circuit, theta.float())
    assert probs.dtype == torch.float32
    assert BACKEND32.probs(circuit, theta).dtype == torch.float64  # the caller's dtype
    np.testing.assert_allclose(
        probs.double().numpy(), pennylane_probs(circuit, theta), rtol=0, atol=FLOAT32_TOL
    )
    assert abs(probs.double().sum(-1) - 1).max().item() < FLOAT32_TOL


# ----------------------------------------------------------------------------- random circuits
def angle_vectors(size: int):
    return st.lists(
        st.floats(-4 * math.pi, 4 * math.pi, allow_nan=False), min_size=size, max_size=size
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data(), circuit=random_circuits())
def test_random_circuits_match_oracles(data, circuit):
    theta = torch.tensor(data.draw(angle_vectors(circuit.n_params)), dtype=torch.float64)
    assert_matches_oracles(circuit, theta)


# ----------------------------------------------------------------------------- sampling
def assert_frequencies_match(bits: torch.Tensor, probs: torch.Tensor) -> None:
    """Each outcome's count within 4 binomial standard deviations (+1 for discreteness)."""
    shots, n = bits.shape
    counts = torch.bincount(bits_to_index(bits), minlength=2**n).double()
    expected = shots * probs.double()
    # clamp: a probability may exceed 1 by an ulp of rounding.
    bound = 4 * torch.sqrt(expected * (1 - probs.double()).clamp_min(0)) + 1
    worst = ((counts - expected).abs() - bound).max().item()
    assert worst <= 0, f"a count is {worst:.1f} beyond its 4-sigma bound"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data(), circuit=random_circuits(max_qubits=4, max_gates=10))
def test_sampling_is_reproducible_and_follows_probs(data, circuit):
    theta = torch.tensor(data.draw(angle_vectors(circuit.n_params)), dtype=torch.float64)
    seed = data.draw(st.integers(0, 2**32 - 1))
    shots = 4000
    first = BACKEND.sample(circuit, theta, shots, generator=torch.Generator().manual_seed(seed))
    again = BACKEND.sample(circuit, theta, shots, generator=torch.Generator().manual_seed(seed))
    assert first.shape == (shots, circuit.n_qubits)
    assert first.dtype == torch.uint8
    assert torch.equal(first, again)
    assert int(first.max()) <= 1
    assert_frequencies_match(first, BACKEND.probs(circuit, theta))


def test_batched_sampling_follows_each_row():
    circuit = hardware_efficient(3, 2, ("ry", "rz"), "cnot", "ring")
    theta = random_angles((3, circuit.n_params), seed=21)
    generator = torch.Generator().manual_seed(7)
    bits = BACKEND.sample(circuit, theta, 5000, generator=generator)
    assert bits.shape == (3, 5000, 3)
    probs = torch.as_tensor(qiskit_probs(circuit, theta))
    for row in range(3):
        assert_frequencies_match(bits[row], probs[row])
    # The generator advanced, so the next draw differs; a fresh one with the same seed repeats.
    assert not torch.equal(bits, BACKEND.sample(circuit, theta, 5000, generator=generator))
    repeat = BACKEND.sample(circuit, theta, 5000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(bits, repeat)


def test_sampling_a_basis_state_always_gives_it():
    circuit = Circuit(4, (Gate("x", (0,)), Gate("x", (3,))))
    bits = BACKEND.sample(circuit, torch.zeros(0), 50, generator=torch.Generator().manual_seed(0))
    assert bits.tolist() == [[1, 0, 0, 1]] * 50


@pytest.mark.parametrize(
    "circuit",
    [
        hardware_efficient(4, 2, ("rx", "ry", "rz"), "cnot", "ring"),
        hardware_efficient(5, 1, ("ry", "rz"), "cz", "brick"),
        qhn_reference(4, 2),
    ],
    ids=lambda c: c.name,
)
def test_state_equals_pennylane_state_not_only_probabilities(circuit):
    """Amplitudes, not just probabilities: a conjugated state (RX and RZ signs flipped
    together) has the same probabilities and would pass every probability test."""
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(7)) * 6.28
    ours = StatevectorBackend().state(circuit, theta.double()).to(torch.complex128).numpy()
    np.testing.assert_allclose(ours, pennylane_state(circuit, theta.double()), atol=1e-12)
