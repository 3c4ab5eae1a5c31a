"""The compiled program of the statevector simulator: structured entanglers against Qiskit, the
structure-keyed compile cache, small cached plans, and float32 error bounds from its epsilon."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from oracles import qiskit_circuit, qiskit_finite_difference, qiskit_probs
from qhn.backends import StatevectorBackend, torch_passes, torch_plan
from qhn.circuits import Circuit, Gate, hardware_efficient, qhn_reference
from qhn.gradients import ParameterShift

ORACLE_TOL = 1e-10


def random_entangled(n: int, layers: int, seed: int, names=("cz", "cnot")) -> Circuit:
    """RY/RZ layers between runs of CZ/CNOT on random (often far apart) wire pairs."""
    rng = random.Random(seed)
    gates: list[Gate] = []
    p = 0
    for layer in range(layers + 1):
        for q in range(n):
            gates.append(Gate(rng.choice(("ry", "rz")), (q,), p))
            p += 1
        if layer < layers:
            for _ in range(rng.randint(1, 2 * n)):
                a, b = rng.sample(range(n), 2)
                gates.append(Gate(rng.choice(names), (a, b)))
    return Circuit(n, tuple(gates), p, name=f"random_entangled({n}, {layers}, {seed})")


def angles(count: int, seed: int, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, count, generator=generator, dtype=torch.float64) * 4 * math.pi


@pytest.mark.parametrize("block_qubits", [2, 3, 4, 9])  # 9: one block, too wide to gather
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("names", [("cz",), ("cnot",), ("cz", "cnot")])
def test_far_apart_entanglers_match_qiskit(block_qubits, seed, names):
    # Pairs inside a block are folded into its matrix, pairs across blocks negated in place,
    # CNOT runs gathered through split tables: all three against Qiskit's Statevector.
    circuit = random_entangled(9, 3, seed, names)
    theta = angles(circuit.n_params, seed)
    ours = StatevectorBackend(block_qubits=block_qubits).probs(circuit, theta)
    np.testing.assert_allclose(ours.numpy(), qiskit_probs(circuit, theta), atol=ORACLE_TOL)


def test_entanglers_before_any_rotation_and_at_the_end():
    gates = (
        Gate("cz", (0, 4)),
        Gate("cnot", (2, 1)),
        Gate("ry", (1,), 0),
        Gate("h", (3,)),
        Gate("cz", (1, 3)),
        Gate("cnot", (3, 0)),
        Gate("cz", (0, 1)),
    )
    circuit = Circuit(5, gates, 1)
    theta = angles(1, 3)
    ours = StatevectorBackend().probs(circuit, theta)
    np.testing.assert_allclose(ours.numpy(), qiskit_probs(circuit, theta), atol=ORACLE_TOL)


@pytest.mark.parametrize("block_qubits", [3, 6])  # 6: one block, too wide to gather
@pytest.mark.parametrize("adjoint", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_gradient_through_negations_and_gathers_matches_finite_differences(
    adjoint, seed, block_qubits
):
    # The circuit ends in entanglers, so the adjoint pass starts by un-applying a negation on
    # the saved state (it works on a copy of it).
    circuit = random_entangled(6, 2, seed)
    circuit = Circuit(6, (*circuit.gates, Gate("cz", (0, 5)), Gate("cz", (2, 3))), circuit.n_params)
    theta = angles(circuit.n_params, seed, batch=1)[0]
    cost = np.random.default_rng(seed).normal(size=2**6)
    backend = StatevectorBackend(adjoint=adjoint, block_qubits=block_qubits)
    t = theta.clone().requires_grad_(True)
    value = backend.probs(circuit, t) @ torch.from_numpy(cost)
    (grad,) = torch.autograd.grad(value, t)
    np.testing.assert_allclose(
        grad.numpy(), qiskit_finite_difference(circuit, theta, cost), atol=1e-7
    )


@pytest.mark.parametrize("name", ["ry", "rx", "rz"])
def test_adjoint_of_shared_angles_matches_finite_differences(name):
    # The adjoint computes a one-slot rotation run's angle gradients itself (no autograd):
    # angles shared by several gates of a run must add up, in the product state and in blocks,
    # with CZ signs folded in, and a run mixing rotations with fixed gates.
    n = 7
    gates = [Gate("h", (q,)) for q in range(n)] if name == "rz" else []
    gates += [Gate(name, (q,), q % 3) for q in range(n)]
    gates += [Gate("cz", (q, q + 1)) for q in range(n - 1)]
    gates += [Gate(name, (q,), 3 + q % 2) for q in range(n)]
    gates += [Gate("cz", (0, n - 1)), Gate("cz", (1, 2))]
    gates += [Gate(name, (q,), 5) if q % 2 else Gate("h", (q,)) for q in range(n)]
    circuit = Circuit(n, tuple(gates), 6)
    theta = angles(circuit.n_params, 11, batch=1)[0]
    cost = np.random.default_rng(11).normal(size=2**n)
    t = theta.clone().requires_grad_(True)
    value = StatevectorBackend(block_qubits=3).probs(circuit, t) @ torch.from_numpy(cost)
    (grad,) = torch.autograd.grad(value, t)
    np.testing.assert_allclose(
        grad.numpy(), qiskit_finite_difference(circuit, theta, cost), atol=1e-7
    )


def test_compile_cache_is_keyed_by_gates_not_name():
    circuit = hardware_efficient(7, 2)
    renamed = Circuit(circuit.n_qubits, circuit.gates, circuit.n_params, name="another name")
    torch_passes.compile_gates.cache_clear()
    assert torch_passes.compile_circuit(circuit) is torch_passes.compile_circuit(renamed)
    assert torch_passes.compile_gates.cache_info().misses == 1


@pytest.mark.parametrize("use_sweeps", [False, True])
def test_parameter_shift_copies_share_one_compile(use_sweeps):
    # hardware_efficient uses each parameter once, so the expanded circuit of the shift rule has
    # the same gates under another name: one compile for the value and the 2P shifted circuits.
    if use_sweeps:
        pytest.importorskip("numba", reason="sweeps need numba (the fast extra)")
    from qhn.backends import sweep_schedule

    circuit = hardware_efficient(6, 2)
    theta = angles(circuit.n_params, 5, batch=1)[0].requires_grad_(True)
    cache = sweep_schedule._schedule if use_sweeps else torch_plan.pass_templates
    cache.cache_clear()
    backend = StatevectorBackend(sweeps=use_sweeps)
    ParameterShift().expectation(backend, circuit, theta, lambda bits: bits.sum(-1))
    assert cache.cache_info().misses == 1
    assert cache.cache_info().hits >= 1


@pytest.mark.parametrize(
    "circuit",
    [hardware_efficient(20, 3), hardware_efficient(20, 2, entangler="cnot"), qhn_reference(20, 1)],
    ids=lambda c: c.name,
)
def test_compiled_program_holds_no_state_sized_tensor(circuit):
    # The whole plan stays within tables of 2^⌈n/2⌉ entries (2^20-long ones used to be cached).
    def tensors(value):
        if torch.is_tensor(value):
            yield value
        elif isinstance(value, tuple | list):
            for item in value:
                yield from tensors(item)
        elif hasattr(value, "__dataclass_fields__"):
            yield from tensors(list(vars(value).values()))

    n = circuit.n_qubits
    sizes = [t.numel() for t in tensors(list(torch_passes.compile_circuit(circuit)))]
    assert sizes, "the program should hold its parameter indices at least"
    assert max(sizes) <= 2 ** math.ceil(n / 2)
    # The templates add gather indices: the product's ⌈n/2⌉·(2^⌊n/2⌋ + 2^⌈n/2⌉) entries at most.
    templates = torch_plan.pass_templates(n, circuit.gates, 4)
    sizes = [t.numel() for t in tensors(list(templates))]
    assert max(sizes) <= math.ceil(n / 2) * 2 ** (math.ceil(n / 2) + 1) < 2**n // 16


# (factors, rows, columns): up to 4,096 gathered factor entries, and beyond (the halves joined)
KRON_SHAPES = [(1, 2, 2), (3, 2, 2), (4, 2, 2), (5, 2, 2), (8, 2, 2), (4, 4, 2), (3, 2, 4)]
KRON_SHAPES += [(9, 2, 1)]


@pytest.mark.parametrize("shape", KRON_SHAPES)
def test_kron_matrices_matches_torch_kron(shape):
    generator = torch.Generator().manual_seed(sum(shape))
    factors = torch.randn(3, 2, *shape, generator=generator, dtype=torch.complex128)
    ours = torch_passes.kron_matrices(factors)
    for b in range(3):
        for k in range(2):
            expected = factors[b, k, 0]
            for j in range(1, shape[0]):
                expected = torch.kron(expected, factors[b, k, j])
            torch.testing.assert_close(ours[b, k], expected, rtol=1e-13, atol=0)
    vectors = factors[..., 0][:, 0]
    torch.testing.assert_close(torch_passes.kron_vectors(vectors), ours[:, 0, :, :1].squeeze(-1))


@pytest.mark.parametrize(
    "circuit",
    [
        hardware_efficient(10, 6),
        hardware_efficient(11, 4, ("ry", "rz"), "cnot"),
        qhn_reference(9, 2),
    ],
    ids=lambda c: c.name,
)
def test_float32_error_within_epsilon_bound(circuit):
    # Worst-case rounding: a pass is a product with a 2^k × 2^k unitary (k = 4) whose entries
    # carry relative error eps, summed over 2^k terms, so each pass adds at most (2^k + 1)·eps
    # to ‖ψ32 − ψ‖ (‖ψ‖ = 1); after g passes ‖Δψ‖ ≤ g·(2^k + 1)·eps, and
    # Σ_s |Δq(s)| ≤ ‖Δψ‖·‖ |ψ32| + |ψ| ‖ ≤ 2‖Δψ‖.
    theta = angles(circuit.n_params, 17, batch=3)
    eps = torch.finfo(torch.float32).eps
    passes, _ = torch_plan.plan_passes(circuit, theta, torch.float64, torch.complex128, 4)
    bound = 2 * len(passes) * (2**4 + 1) * eps
    exact = StatevectorBackend().probs(circuit, theta)
    single = StatevectorBackend(dtype=torch.float32).probs(circuit, theta)
    gap = (single - exact).abs().sum(-1).max().item()
    assert 0 < gap <= bound, f"float32 gap {gap:.2e} over the bound {bound:.2e}"
    reference = qiskit_probs(circuit, theta)
    assert np.abs(single.double().numpy() - reference).sum(-1).max() <= bound


def test_float32_state_matches_qiskit_statevector():
    from qiskit.quantum_info import Statevector

    circuit = hardware_efficient(8, 3, ("ry", "rz"), "cz", "ring")
    theta = angles(circuit.n_params, 23, batch=1)[0]
    ours = StatevectorBackend(dtype=torch.float32).state(circuit, theta)
    assert ours.dtype == torch.complex64
    expected = Statevector(qiskit_circuit(circuit, theta)).data
    eps = torch.finfo(torch.float32).eps
    # The worst-case bound of the test above, for the state itself.
    bound = (
        len(
            torch_plan.plan_passes(circuit, theta[None].float(), torch.float32, torch.complex64, 4)[
                0
            ]
        )
        * 17
        * eps
    )
    assert np.linalg.norm(ours.numpy() - expected) <= bound


def test_budget_counts_the_adjoint_buffers_before_allocating():
    # Per amplitude of a real float64 state: the forward pass keeps 2 state buffers (16 bytes);
    # the adjoint pass six states and two real vectors (64 bytes). A budget between the two
    # admits the value and refuses the gradient, before allocating.
    from qhn.errors import MemoryBudgetError

    circuit = hardware_efficient(16, 2)
    backend = StatevectorBackend(memory_budget=40 * 2**16)
    theta = angles(circuit.n_params, 2, batch=1)[0]
    with torch.no_grad():
        backend.probs(circuit, theta)
    with pytest.raises(MemoryBudgetError, match="larger budget"):
        backend.probs(circuit, theta.requires_grad_(True))
