"""The PennyLane adapter against qhn's exact probabilities, Qiskit Aer and closed forms."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from chi_square import chi_square_pvalues

pytest.importorskip("pennylane")

from qhn.backends import StatevectorBackend
from qhn.backends.base import require_exact
from qhn.backends.pennylane_backend import PennyLaneBackend
from qhn.bits import bits_to_index
from qhn.circuits.ansatz import hardware_efficient, product, qhn_reference
from qhn.circuits.ir import Circuit, Gate
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.gradients.parameter_shift import ParameterShift

ANSATZE = {
    "product": product(3),
    "he_ry_cz_chain": hardware_efficient(4, 2),
    "he_rx_rz_cnot_ring": hardware_efficient(3, 1, ("rx", "rz"), "cnot", "ring"),
    "he_ry_rz_cz_brick": hardware_efficient(4, 2, ("ry", "rz"), "cz", "brick"),
    "qhn_reference": qhn_reference(4, 1),
}
NOISE = {"p1": 0.02, "p2": 0.05, "readout01": 0.03, "readout10": 0.07, "scale": 1.5}


def random_params(circuit: Circuit, rows: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, circuit.n_params, generator=g, dtype=torch.float64) * 2 * math.pi


@pytest.mark.parametrize("name", sorted(ANSATZE))
def test_default_qubit_frequencies_match_exact_probabilities(name):
    circuit = ANSATZE[name]
    params = random_params(circuit, 3, seed=len(name))
    pl = PennyLaneBackend("default.qubit", seed=11)
    bits = pl.sample(circuit, params, 4000)
    assert bits.shape == (3, 4000, circuit.n_qubits) and bits.dtype == torch.uint8
    assert pl.jobs == 1 and pl.executions == 3 and pl.shots_taken == 12000
    exact = StatevectorBackend().probs(circuit, params)
    assert min(chi_square_pvalues(bits, exact)) > 1e-4


@pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit", "default.mixed"])
def test_analytic_devices_serve_exact_probabilities(device):
    circuit = ANSATZE["qhn_reference"]
    params = random_params(circuit, 4, seed=3)
    pl = PennyLaneBackend(device)
    assert require_exact(pl, "test") is pl
    ours = StatevectorBackend().probs(circuit, params)
    assert torch.allclose(pl.probs(circuit, params), ours, atol=1e-12)
    assert torch.allclose(pl.probs(circuit, params[1]), ours[1], atol=1e-12)


def test_asymmetric_bits_come_back_in_our_order():
    circuit = Circuit(3, (Gate("x", (0,)), Gate("ry", (2,), 0)))
    bits = PennyLaneBackend("default.qubit", seed=0).sample(circuit, torch.zeros(1), 50)
    assert bits.shape == (50, 3) and bool((bits_to_index(bits) == 4).all())


def test_circuit_without_rotations_gives_independent_rows():
    circuit = Circuit(2, (Gate("h", (0,)), Gate("cnot", (0, 1))))
    pl = PennyLaneBackend("default.qubit", seed=0)
    bits = pl.sample(circuit, torch.zeros(3, 0), 500)
    assert bits.shape == (3, 500, 2)
    assert bool((bits[..., 0] == bits[..., 1]).all())
    assert not torch.equal(bits[0], bits[1])
    assert pl.probs(circuit, torch.zeros(2, 0)).shape == (2, 4)


def test_seeds_make_runs_reproducible():
    circuit = hardware_efficient(3, 1)
    params = random_params(circuit, 2, seed=5)

    def draw(seed=None, generator=None):
        pl = PennyLaneBackend("default.qubit", seed=seed)
        return pl.sample(circuit, params, 64, generator=generator)

    assert torch.equal(draw(seed=1), draw(seed=1))
    assert not torch.equal(draw(seed=1), draw(seed=2))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(draw(generator=g1), draw(generator=g2))


def test_one_execution_per_parameter_shift_step():
    circuit = qhn_reference(3, 1)
    pl = PennyLaneBackend("default.qubit", seed=3)
    params = random_params(circuit, 2, seed=1).requires_grad_()
    value = ParameterShift().expectation(
        pl, circuit, params, torch.arange(8, dtype=torch.float64), shots=128
    )
    value.sum().backward()
    assert pl.jobs == 1 and pl.executions == 2 * (1 + 2 * len(circuit.rotations))


def test_mixed_noise_matches_closed_form_single_qubit():
    """RY(θ), Pauli channel p1 (λ = 4/3·p1 depolarizing), readout r01/r10:
    P(1) = (1 − λ) sin²(θ/2) + λ/2, read as P(1)(1 − r10) + (1 − P(1)) r01."""
    theta, p1, r01, r10 = 1.1, 0.09, 0.05, 0.12
    lam = 4 / 3 * p1
    before = (1 - lam) * math.sin(theta / 2) ** 2 + lam / 2
    after = before * (1 - r10) + (1 - before) * r01
    pl = PennyLaneBackend("default.mixed", noise={"p1": p1, "readout01": r01, "readout10": r10})
    probs = pl.probs(Circuit(1, (Gate("ry", (0,), 0),)), torch.tensor([theta]))
    assert torch.allclose(probs, torch.tensor([1 - after, after], dtype=torch.float64))


def test_two_qubit_pauli_channel_closed_form():
    """X⊗I prepares |10⟩; the 2-qubit Pauli channel moves mass p2/15 onto each Pauli's image.
    Of the 15 non-identity Paulis, 3 (IZ, ZI, ZZ) keep |10⟩, and each other basis state is
    reached by 4 Paulis: P(10) = 1 − p2 + 3 p2/15, others 4 p2/15."""
    p2 = 0.3
    circuit = Circuit(2, (Gate("x", (0,)), Gate("cz", (0, 1))))
    probs = PennyLaneBackend("default.mixed", noise={"p2": p2}).probs(circuit, torch.zeros(0))
    other = 4 * p2 / 15
    expected = torch.tensor([other, other, 1 - 3 * other, other], dtype=torch.float64)
    assert torch.allclose(probs, expected)


def test_mixed_noise_equals_aer_density_matrix():
    """Exact noisy probabilities of default.mixed equal Qiskit Aer's density-matrix simulation
    with the adapter's noise model (an independent simulator and channel library)."""
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator

    from qhn.backends.qiskit_backend import noise_model, to_qiskit
    from qhn.bits import from_little_endian

    circuit = qhn_reference(3, 1)
    params = random_params(circuit, 2, seed=8)
    ours = PennyLaneBackend("default.mixed", noise=NOISE).probs(circuit, params)
    simulator = AerSimulator(method="density_matrix", noise_model=noise_model(NOISE))
    qc = to_qiskit(circuit)
    qc.remove_final_measurements()
    qc.save_probabilities()
    order = [p.index for p in qc.parameters]
    for row, theta in zip(ours, params, strict=True):
        bound = qc.assign_parameters(theta[order].tolist())
        theirs = simulator.run(bound).result().data()["probabilities"]
        # Aer's saved probabilities exclude readout: apply the confusion matrix per qubit.
        theirs = torch.as_tensor(np.asarray(theirs), dtype=torch.float64).reshape([2] * 3)
        r01, r10 = NOISE["readout01"], NOISE["readout10"]
        confusion = torch.tensor([[1 - r01, r10], [r01, 1 - r10]], dtype=torch.float64)
        for axis in range(3):
            theirs = torch.movedim(torch.tensordot(confusion, theirs, dims=([1], [axis])), 0, axis)
        assert torch.allclose(row, from_little_endian(theirs.reshape(-1)), atol=1e-10)


def test_parameter_shift_from_shots_is_unbiased_under_noise():
    """Mean over seeds of the shot-based shift-rule gradient on noisy default.mixed vs the exact
    gradient of the noisy distribution (shift rule on exact probabilities): z-scores."""
    circuit = hardware_efficient(2, 1, ("ry", "rz"), "cnot")
    theta = random_params(circuit, 1, seed=2)[0]
    cost = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    pl = PennyLaneBackend("default.mixed", noise=NOISE, seed=1)
    exact_theta = theta.clone().requires_grad_()
    ParameterShift().expectation(pl, circuit, exact_theta, cost).backward()
    # Cross-check the exact noisy gradient by central finite differences.
    eps = 1e-5
    fd = torch.stack(
        [
            (pl.probs(circuit, theta + eps * e) @ cost - pl.probs(circuit, theta - eps * e) @ cost)
            / (2 * eps)
            for e in torch.eye(circuit.n_params, dtype=torch.float64)
        ]
    )
    assert torch.allclose(exact_theta.grad, fd, atol=1e-7)
    grads = []
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        t = theta.clone().requires_grad_()
        ParameterShift().expectation(pl, circuit, t, cost, shots=400, generator=g).backward()
        grads.append(t.grad)
    grads = torch.stack(grads)
    z = (grads.mean(0) - exact_theta.grad) / (grads.std(0) / math.sqrt(len(grads)))
    assert float(z.abs().max()) < 4.0


def test_bad_requests_are_refused_with_one_line():
    with pytest.raises(ConfigError, match="not available"):
        PennyLaneBackend("no.such.device")
    with pytest.raises(ConfigError, match="density-matrix device"):
        PennyLaneBackend("default.qubit", noise={"p1": 0.1})
    with pytest.raises(ConfigError, match="unknown noise key"):
        PennyLaneBackend("default.mixed", noise={"p9": 0.1})
    with pytest.raises(ConfigError, match="scale·p1"):
        PennyLaneBackend("default.mixed", noise={"p1": 0.6, "scale": 2})
    with pytest.raises(MemoryBudgetError):
        PennyLaneBackend("default.mixed", memory_budget=2**10).probs(product(6), torch.zeros(6))


def test_missing_pennylane_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pennylane", None)
    with pytest.raises(ConfigError, match=r"pip install 'qhn\[pennylane\]'"):
        PennyLaneBackend("default.qubit")
