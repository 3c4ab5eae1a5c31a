"""The ``mps`` backend against oracles: our statevector simulator (itself checked against Qiskit
and PennyLane), Qiskit's ``Statevector`` and Aer's ``matrix_product_state`` method, brute-force
enumeration, scipy's chi-square test, and the theory of SVD truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from oracles import qiskit_circuit, qiskit_probs, random_circuits
from qhn.backends.mps import MPSBackend
from qhn.backends.statevector import StatevectorBackend
from qhn.bits import all_bits, bits_to_index
from qhn.circuits import Circuit, Gate, hardware_efficient, product, qhn_reference
from qhn.errors import ConfigError, MemoryBudgetError

SV = StatevectorBackend()
MPS = MPSBackend()

CIRCUITS = [
    product(1),
    product(9),
    hardware_efficient(2, 1),
    hardware_efficient(5, 3, ("rx", "ry"), "cz", "ring"),
    hardware_efficient(6, 2, ("ry", "rz"), "cnot", "chain"),
    hardware_efficient(7, 4, ("ry",), "cz", "brick"),
    hardware_efficient(9, 2, ("rz", "rx", "ry"), "cnot", "brick"),
    hardware_efficient(12, 2, ("ry",), "cnot", "ring"),
    hardware_efficient(16, 2),
    hardware_efficient(16, 3, ("ry", "rz"), "cz", "brick"),
    qhn_reference(4, 3),
    qhn_reference(11, 1),
    qhn_reference(16, 2),
]


def _params(circuit: Circuit, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (
        (torch.rand(batch, circuit.n_params, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    )


def _random_bits(n: int, count: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (count, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("circuit", CIRCUITS, ids=lambda c: c.name)
def test_probabilities_and_log_prob_match_the_statevector(circuit):
    params = _params(circuit, 3, seed=circuit.n_qubits)
    exact = SV.probs(circuit, params)
    state = MPS.state(circuit, params)
    assert torch.allclose(state.probs(), exact, rtol=0, atol=1e-12)
    bits = _random_bits(circuit.n_qubits, 64, seed=1)
    expected = torch.log(exact[:, bits_to_index(bits)])
    assert torch.allclose(state.log_prob(bits), expected, rtol=0, atol=1e-10)
    # A generous max_bond never binds: same numbers, nothing discarded.
    wide = MPSBackend(max_bond=2**10).state(circuit, params)
    assert torch.allclose(wide.probs(), exact, rtol=0, atol=1e-12)
    assert float(wide.discarded_weight.max()) < 1e-14


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_circuits(max_qubits=6, max_gates=16))
def test_any_gate_list_matches_the_statevector(circuit):
    # Long-range CZ/CNOT in either wire order, H, X, shared parameters, repeated gates.
    params = _params(circuit, 2, seed=7)
    assert torch.allclose(MPS.probs(circuit, params), SV.probs(circuit, params), atol=1e-12)


def test_the_chain_bond_dimension_is_two_to_the_layers():
    # Theory: L entangling chain layers give Schmidt rank <= 2^L on every cut.
    for layers in (1, 2, 3):
        state = MPS.state(
            hardware_efficient(40, layers), _params(hardware_efficient(40, layers), 1, 0)
        )
        assert max(state.bonds) == 2**layers


def test_qiskit_statevector_agrees_on_a_small_complex_circuit():
    circuit = qhn_reference(6, 2)
    params = _params(circuit, 1, seed=3)[0]
    ours = MPS.probs(circuit, params).numpy()
    np.testing.assert_allclose(ours, qiskit_probs(circuit, params), rtol=0, atol=1e-12)


def test_aer_matrix_product_state_amplitudes_agree_beyond_statevector_size():
    from qiskit_aer import AerSimulator

    circuit = hardware_efficient(40, 2, ("ry", "rz"), "cz", "chain")
    params = _params(circuit, 1, seed=5)[0]
    state = MPS.state(circuit, params)
    bits = state.sample(12, torch.Generator().manual_seed(0))
    qc = qiskit_circuit(circuit, params)
    # Qiskit's qubit n−1−q carries our qubit q, so its integer index is ours.
    indices = [int(i) for i in bits_to_index(bits)]
    qc.save_amplitudes(indices)
    result = AerSimulator(method="matrix_product_state").run(qc).result()
    aer = np.abs(np.asarray(result.data()["amplitudes"])) ** 2
    np.testing.assert_allclose(state.log_prob(bits).exp().numpy(), aer, rtol=1e-8, atol=0)


def _chi_square_pvalue(counts: np.ndarray, probs: np.ndarray, shots: int) -> float:
    """Pearson's test with outcomes of expected count < 5 pooled into one bin (the textbook
    validity condition)."""
    from scipy.stats import chisquare

    expected = probs * shots
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


@pytest.mark.parametrize(
    "circuit",
    [
        hardware_efficient(7, 2),
        qhn_reference(6, 1),
        hardware_efficient(5, 2, ("rx",), "cnot", "ring"),
    ],
    ids=lambda c: c.name,
)
def test_sampling_frequencies_pass_a_chi_square_test(circuit):
    # Fixed seeds: under H0 the p-value is uniform, so a 1e-3 threshold is a deterministic check
    # that a wrong sampler (off by more than ~ sqrt(p/shots) somewhere) would fail.
    shots = 40_000
    params = _params(circuit, 2, seed=11)
    exact = SV.probs(circuit, params).numpy()
    bits, log_q = MPS.state(circuit, params).sample(
        shots, torch.Generator().manual_seed(2), return_log_prob=True
    )
    assert bits.shape == (2, shots, circuit.n_qubits) and bits.dtype == torch.uint8
    index = bits_to_index(bits)
    for b in range(2):
        counts = np.bincount(index[b].numpy(), minlength=exact.shape[1])
        assert _chi_square_pvalue(counts, exact[b], shots) > 1e-3
    # The log q returned with the samples is the exact one.
    assert torch.allclose(log_q, torch.log(torch.from_numpy(exact)).gather(1, index), atol=1e-10)


def test_sampling_is_reproducible_and_unbatched_params_drop_the_batch():
    circuit = hardware_efficient(8, 2)
    params = _params(circuit, 1, seed=1)[0]
    one = MPS.sample(circuit, params, 50, generator=torch.Generator().manual_seed(4))
    two = MPS.sample(circuit, params, 50, generator=torch.Generator().manual_seed(4))
    assert one.shape == (50, 8) and torch.equal(one, two)


def test_log_prob_gradients_match_statevector_autograd():
    for circuit in (hardware_efficient(8, 2, ("ry", "rz"), "cnot", "chain"), qhn_reference(7, 1)):
        params = _params(circuit, 2, seed=2).requires_grad_(True)
        bits = _random_bits(circuit.n_qubits, 30, seed=3)
        weights = torch.randn(
            2, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        (grad_mps,) = torch.autograd.grad(
            (weights * MPS.log_prob(circuit, params, bits)).sum(), params
        )
        probs = SV.probs(circuit, params)
        (grad_sv,) = torch.autograd.grad(
            (weights * probs[:, bits_to_index(bits)].log()).sum(), params
        )
        assert torch.allclose(grad_mps, grad_sv, rtol=1e-8, atol=1e-10)


def test_conditionals_and_marginals_match_enumeration():
    # Chain, 2 layers: χ = 4 <= 2^⌊7/2⌋, so no compression sweep: the SVD-free, differentiable path.
    circuit = hardware_efficient(7, 2, ("ry", "rx"), "cnot", "chain")
    params = _params(circuit, 2, seed=9).requires_grad_(True)
    probs = SV.probs(circuit, params)
    n = circuit.n_qubits
    every = all_bits(n)
    bits = _random_bits(n, 25, seed=4)
    cond = MPS.conditionals(circuit, params, bits)
    expected = torch.empty_like(cond)
    for m, row in enumerate(bits):
        for i in range(n):
            prefix = (every[:, :i] == row[:i]).all(-1)
            both = probs[:, prefix].sum(-1)
            ones = probs[:, prefix & (every[:, i] == 1)].sum(-1)
            expected[:, m, i] = ones / both
    assert torch.allclose(cond, expected, atol=1e-12)
    (g1,) = torch.autograd.grad(cond[:, :, 3].sum(), params)
    (g2,) = torch.autograd.grad(expected[:, :, 3].sum(), params)
    assert torch.allclose(g1, g2, atol=1e-10)
    marginals = MPS.marginals(circuit, params.detach())
    assert torch.allclose(marginals, probs.detach() @ every.double(), atol=1e-12)


def _fidelity(exact: torch.Tensor, approx: torch.Tensor) -> torch.Tensor:
    approx = approx / approx.norm(dim=-1, keepdim=True)
    return (exact.conj() * approx).sum(-1).abs() ** 2


def test_one_truncation_loses_exactly_the_discarded_weight():
    # n = 4, two chain layers: only the middle bond has Schmidt rank 4 > max_bond = 2 (the outer
    # bonds are at most 2 physically), so exactly one truncation happens.
    # A projection onto the kept Schmidt vectors then renormalization has infidelity exactly ε.
    circuit = hardware_efficient(4, 2)
    params = _params(circuit, 3, seed=6)
    state = MPSBackend(max_bond=2).state(circuit, params)
    assert state.bonds == (1, 2, 2, 2, 1)
    infidelity = 1 - _fidelity(SV.state(circuit, params), state.amplitudes())
    assert float(state.discarded_weight.max()) > 1e-3
    assert torch.allclose(infidelity, state.discarded_weight, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize(
    "circuit", [hardware_efficient(12, 4), qhn_reference(10, 3)], ids=lambda c: c.name
)
def test_repeated_truncations_respect_the_reported_fidelity_bound(circuit):
    params = _params(circuit, 4, seed=8)
    state = MPSBackend(max_bond=3).state(circuit, params)
    assert max(state.bonds) == 3 and float(state.discarded_weight.min()) > 1e-6
    exact_state = SV.state(circuit, params)
    infidelity = 1 - _fidelity(exact_state, state.amplitudes())
    assert bool((infidelity <= 1 - state.fidelity_bound + 1e-12).all())
    # Total variation between Born distributions <= trace distance sqrt(1 − F).
    tv = 0.5 * (state.probs() - SV.probs(circuit, params)).abs().sum(-1)
    assert bool((tv <= (1 - state.fidelity_bound).sqrt() + 1e-12).all())
    # Sampling and log_prob describe the truncated distribution itself.
    bits = _random_bits(circuit.n_qubits, 40, seed=2)
    assert torch.allclose(
        state.log_prob(bits), state.probs()[:, bits_to_index(bits)].log(), atol=1e-10
    )


def test_refusals_are_one_line_and_before_compute():
    big = hardware_efficient(30, 2)
    with pytest.raises(ConfigError, match="refused for n = 30 > 20"):
        MPS.probs(big, torch.zeros(big.n_params))
    deep = hardware_efficient(200, 12)
    with pytest.raises(MemoryBudgetError, match=r"bond dimension 4096.*set max_bond"):
        MPSBackend(memory_budget=2**30).state(deep, torch.zeros(deep.n_params))
    with pytest.raises(ConfigError, match="max_bond must be a positive integer"):
        MPSBackend(max_bond=0)
    with pytest.raises(ConfigError, match=r"bits must have shape \(M, 4\)"):
        MPS.log_prob(hardware_efficient(4, 1), torch.zeros(8), torch.zeros(3, 5))


def test_a_long_range_gate_alone_is_exact():
    circuit = Circuit(5, (Gate("h", (0,)), Gate("cnot", (0, 4)), Gate("ry", (2,), 0)), 1)
    params = torch.tensor([0.7], dtype=torch.float64)
    assert torch.allclose(MPS.probs(circuit, params), SV.probs(circuit, params), atol=1e-14)


def test_deep_small_circuits_compress_losslessly_and_differentiate_without_svd():
    # n = 4, three ring layers: the MPO bonds reach 4^3 = 64 > 2^⌊4/2⌋. Without gradients the
    # state is compressed (losslessly: same probabilities); with gradients it is left
    # uncompressed, so the backward pass never meets a complex SVD.
    circuit = hardware_efficient(4, 3, ("ry", "rz"), "cz", "ring")
    params = _params(circuit, 2, seed=12)
    compressed = MPS.state(circuit, params)
    assert max(compressed.bonds) <= 4
    assert torch.allclose(compressed.probs(), SV.probs(circuit, params), atol=1e-12)
    theta = params.clone().requires_grad_(True)
    cost = torch.randn(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (ours,) = torch.autograd.grad((MPS.probs(circuit, theta) @ cost).sum(), theta)
    (exact,) = torch.autograd.grad((SV.probs(circuit, theta) @ cost).sum(), theta)
    assert torch.allclose(ours, exact, atol=1e-10)
