"""The Qiskit adapter against qhn's exact probabilities, Qiskit's own converter and closed forms."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from chi_square import chi_square_pvalues

pytest.importorskip("qiskit")
pytest.importorskip("qiskit_aer")

from qhn.backends import StatevectorBackend
from qhn.backends.qiskit_backend import QiskitBackend, noise_model, to_qiskit
from qhn.bits import bits_to_index
from qhn.circuits.ansatz import hardware_efficient, product, qhn_reference
from qhn.circuits.ir import Circuit, Gate
from qhn.circuits.qiskit_convert import from_qiskit
from qhn.errors import ConfigError
from qhn.gradients.parameter_shift import ParameterShift

try:
    import qiskit_ibm_runtime  # noqa: F401

    HAS_RUNTIME = True
except ImportError:
    HAS_RUNTIME = False
needs_runtime = pytest.mark.skipif(
    not HAS_RUNTIME, reason="fake devices need qiskit-ibm-runtime (pip install 'qhn[qiskit]')"
)

ANSATZE = {
    "product": product(3),
    "he_ry_cz_chain": hardware_efficient(4, 2),
    "he_rx_rz_cnot_ring": hardware_efficient(3, 1, ("rx", "rz"), "cnot", "ring"),
    "he_ry_rz_cz_brick": hardware_efficient(4, 2, ("ry", "rz"), "cz", "brick"),
    "qhn_reference": qhn_reference(4, 1),
}


def random_params(circuit: Circuit, rows: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, circuit.n_params, generator=g, dtype=torch.float64) * 2 * math.pi


@pytest.mark.parametrize("target", ["aer", "statevector"])
@pytest.mark.parametrize("name", sorted(ANSATZE))
def test_noiseless_frequencies_match_exact_probabilities(target, name):
    circuit = ANSATZE[name]
    params = random_params(circuit, 3, seed=len(name))
    bits = QiskitBackend(target, seed=11).sample(circuit, params, 4000)
    assert bits.shape == (3, 4000, circuit.n_qubits) and bits.dtype == torch.uint8
    exact = StatevectorBackend().probs(circuit, params)
    # 30 rows in all are tested, so each must pass at 1e-4 (family-wise ~3e-3).
    assert min(chi_square_pvalues(bits, exact)) > 1e-4


def test_asymmetric_bits_come_back_in_our_order():
    # Qubit 0 is flipped, qubits 1 and 2 stay 0: in our order that is index 0b100 = 4.
    circuit = Circuit(3, (Gate("x", (0,)), Gate("ry", (2,), 0)))
    for target in ("aer", "statevector"):
        bits = QiskitBackend(target, seed=0).sample(circuit, torch.zeros(1), 50)
        assert bits.shape == (50, 3)
        assert bool((bits_to_index(bits) == 4).all())


def test_to_qiskit_round_trips_through_from_qiskit():
    for circuit in ANSATZE.values():
        back = from_qiskit(to_qiskit(circuit))
        assert back.gates == circuit.gates and back.n_params == circuit.n_params


def test_one_primitive_job_per_parameter_shift_step():
    circuit = qhn_reference(3, 1)
    qb = QiskitBackend("aer", seed=3)
    params = random_params(circuit, 2, seed=1).requires_grad_()
    cost = torch.arange(8, dtype=torch.float64)
    value = ParameterShift().expectation(qb, circuit, params, cost, shots=256)
    value.sum().backward()
    occurrences = len(circuit.rotations)
    assert qb.jobs == 1
    assert qb.executions == 2 * (1 + 2 * occurrences)
    assert qb.shots_taken == 256 * qb.executions
    assert params.grad is not None and params.grad.shape == params.shape


def test_transpiles_once_per_circuit():
    qb = QiskitBackend("aer", seed=3)
    circuit = hardware_efficient(3, 1)
    for _ in range(3):
        qb.sample(circuit, random_params(circuit, 2, 0), 10)
    # A structurally equal circuit (as plan_shifts rebuilds each step) hits the same entry.
    qb.sample(hardware_efficient(3, 1), random_params(circuit, 1, 0), 10)
    assert len(qb._cache) == 1 and qb.jobs == 4


@pytest.mark.parametrize("target", ["aer", "statevector"])
def test_seeds_make_runs_reproducible(target):
    circuit = hardware_efficient(3, 1)
    params = random_params(circuit, 2, seed=5)

    def draw(seed=None, generator=None):
        return QiskitBackend(target, seed=seed).sample(circuit, params, 64, generator=generator)

    assert torch.equal(draw(seed=1), draw(seed=1))
    assert not torch.equal(draw(seed=1), draw(seed=2))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(draw(generator=g1), draw(generator=g2))
    assert not torch.equal(draw(generator=g1), draw(generator=g2.manual_seed(10)))


def test_parameters_dropped_or_unused_do_not_shift_the_binding():
    # θ1 is unused and θ0 drives two gates: the binding must follow Qiskit's parameter list.
    circuit = Circuit(2, (Gate("ry", (0,), 0), Gate("ry", (1,), 2), Gate("rx", (0,), 0)), 3)
    params = torch.tensor([[math.pi / 2, 0.3, math.pi], [0.0, 2.0, 0.0]], dtype=torch.float64)
    bits = QiskitBackend("aer", seed=2).sample(circuit, params, 4000)
    exact = StatevectorBackend().probs(circuit, params)
    assert min(chi_square_pvalues(bits, exact)) > 1e-4


def test_noise_model_matches_closed_form_single_qubit():
    """One RY(θ) then depolarizing p1 (λ = 4/3·p1), then readout flips r01, r10:
    P(1) = (1 − λ) sin²(θ/2) + λ/2, read as P(1)(1 − r10) + (1 − P(1)) r01."""
    theta, p1, r01, r10 = 1.1, 0.09, 0.05, 0.12
    lam = 4 / 3 * p1
    before = (1 - lam) * math.sin(theta / 2) ** 2 + lam / 2
    expected = before * (1 - r10) + (1 - before) * r01
    qb = QiskitBackend("aer-noisy", seed=4, noise={"p1": p1, "readout01": r01, "readout10": r10})
    shots = 40000
    ones = float(qb.sample(Circuit(1, (Gate("ry", (0,), 0),)), torch.tensor([theta]), shots).sum())
    se = math.sqrt(expected * (1 - expected) / shots)
    assert abs(ones / shots - expected) < 4.5 * se


def test_noise_scale_multiplies_gate_errors_only():
    model = noise_model({"p1": 0.01, "p2": 0.02, "scale": 2.0, "readout": 0.03})
    quantum = model.to_dict()["errors"]
    one = next(e for e in quantum if "ry" in e["operations"])
    two = next(e for e in quantum if "cx" in e["operations"])
    # A depolarizing error's identity term has weight 1 − (4^k − 1)/4^k · λ = 1 − p.
    assert max(one["probabilities"]) == pytest.approx(1 - 0.02)
    assert max(two["probabilities"]) == pytest.approx(1 - 0.04)
    readout = next(e for e in quantum if e["type"] == "roerror")
    assert np.allclose(readout["probabilities"], [[0.97, 0.03], [0.03, 0.97]])


@pytest.mark.parametrize(
    ("noise", "fragment"),
    [
        ({"p3": 0.1}, "unknown noise key"),
        ({"p1": -0.1}, "p1"),
        ({"p1": 0.6, "scale": 2}, "scale·p1"),
        ({"readout": 0.1, "readout01": 0.1}, "either"),
        ({"p2": "lots"}, "p2"),
    ],
)
def test_bad_noise_tables_are_refused(noise, fragment):
    with pytest.raises(ConfigError, match=fragment):
        QiskitBackend("aer-noisy", noise=noise)


def test_noise_on_other_targets_and_unknown_targets_are_refused():
    with pytest.raises(ConfigError, match="aer-noisy only"):
        QiskitBackend("aer", noise={"p1": 0.1})
    with pytest.raises(ConfigError, match="needs a \\[noise\\] table"):
        QiskitBackend("aer-noisy")
    assert QiskitBackend("aer", noise={}).target == "aer"
    with pytest.raises(ConfigError, match="aer, aer-noisy, statevector"):
        QiskitBackend("quantum_toaster")


def test_missing_qiskit_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    with pytest.raises(ConfigError, match=r"pip install 'qhn\[qiskit\]'"):
        QiskitBackend("aer")


@needs_runtime
def test_wider_than_device_is_refused_before_compute():
    qb = QiskitBackend("fake_manila", seed=0)
    assert qb.capabilities.max_qubits == 5
    with pytest.raises(ConfigError, match="needs 6 qubits but qiskit:fake_manila has 5"):
        qb.sample(product(6), torch.zeros(6), 10)
    assert qb.jobs == 0 and qb.shots_taken == 0 and not qb._cache


@needs_runtime
def test_bit_order_survives_a_permuting_layout():
    """Through transpilation onto a device whose layout permutes qubits (and routes CNOTs over
    non-adjacent pairs), each of our qubits still reports its own bit."""
    target = [1, 0, 1, 1, 0]
    gates = [Gate("x", (q,)) for q, b in enumerate(target) if b]
    circuit = Circuit(5, (*gates, Gate("cnot", (0, 4)), Gate("cnot", (0, 4))), name="marked")
    qb = QiskitBackend("fake_manila", seed=0, initial_layout=[4, 2, 0, 3, 1])
    compiled, _ = qb.compiled(circuit)
    assert compiled.layout.final_index_layout() != list(range(5))
    bits = qb.sample(circuit, torch.zeros(0), 2000)
    marginals = bits.double().mean(0)
    # Snapshot noise (readout, two routed CNOTs) moves each marginal by a few percent at most; a
    # mixed-up order would move some by ~1.
    assert torch.allclose(marginals, torch.tensor(target, dtype=torch.float64), atol=0.15)
    assert int(torch.mode(bits_to_index(bits)).values) == int(
        bits_to_index(torch.tensor(target, dtype=torch.uint8))
    )


@needs_runtime
def test_device_noise_kept_to_touched_qubits_gives_the_same_counts():
    """The per-circuit simulator (snapshot noise on touched qubits only) reproduces Aer's
    ``from_backend`` simulator of the whole device shot for shot under the same seed."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2

    circuit = hardware_efficient(2, 1, ("ry",), "cnot")
    qb = QiskitBackend("fake_manila", seed=0)
    compiled, order = qb.compiled(circuit)
    values = random_params(circuit, 3, seed=4).numpy()[:, order]
    full = SamplerV2.from_backend(AerSimulator.from_backend(qb._device), seed=5)
    mine = SamplerV2.from_backend(qb._simulators[circuit], seed=5)
    touched = {compiled.find_bit(q).index for item in compiled.data for q in item.qubits}
    assert mine._backend.options.noise_model.noise_qubits == sorted(touched)
    assert len(touched) < qb._device.num_qubits
    counts = [s.run([(compiled, values, 3000)]).result()[0].data.meas for s in (full, mine)]
    assert counts[0] == counts[1]


@needs_runtime
def test_device_noise_is_built_for_touched_qubits_only(monkeypatch):
    """Aer's device-noise builder sees only the touched qubits' instructions (building all of
    fake_torino's cost ~5 s per run), and the errors it returns are those of the whole-device
    build on those qubits, error for error."""
    import qiskit_aer.noise.device as device

    full_builder = device.basic_device_gate_errors
    seen: list[set[int]] = []

    def spy(properties=None, *, target=None, **kwargs):
        seen.append({q for _, props in target.items() if props for qs in props for q in qs})
        return full_builder(properties, target=target, **kwargs)

    monkeypatch.setattr(device, "basic_device_gate_errors", spy)
    circuit = hardware_efficient(3, 1, ("ry",), "cnot")
    qb = QiskitBackend("fake_manila", seed=0, initial_layout=[2, 3, 4])
    compiled, _ = qb.compiled(circuit)
    touched = {compiled.find_bit(q).index for item in compiled.data for q in item.qubits}
    assert seen == [touched] and len(touched) < qb._device.num_qubits
    expected = {
        (name, tuple(qubits)): error
        for name, qubits, error in full_builder(None, target=qb._device.target)
        if set(qubits) <= touched
    }
    model = qb._simulators[circuit].options.noise_model
    got = {
        (name, tuple(qubits)): error
        for name, errors in model._local_quantum_errors.items()
        for qubits, error in errors.items()
    }
    assert expected and got == expected


NOISE = {"p1": 0.02, "p2": 0.05, "readout01": 0.03, "readout10": 0.07, "scale": 1.5}


def test_aer_noisy_frequencies_match_exact_noisy_probabilities():
    """Samples of aer-noisy against the exact noisy distribution of PennyLane's density-matrix
    simulator with the same table (another SDK's channels)."""
    pytest.importorskip("pennylane")
    from qhn.backends.pennylane_backend import PennyLaneBackend

    circuit = qhn_reference(4, 1)
    params = random_params(circuit, 3, seed=6)
    bits = QiskitBackend("aer-noisy", noise=NOISE, seed=8).sample(circuit, params, 4000)
    exact = PennyLaneBackend("default.mixed", noise=NOISE).probs(circuit, params)
    assert min(chi_square_pvalues(bits, exact)) > 1e-4
    noiseless = StatevectorBackend().probs(circuit, params)
    assert max(chi_square_pvalues(bits, noiseless)) < 1e-6


def test_parameter_shift_from_aer_noisy_shots_is_unbiased():
    """Mean over 30 seeds of the shot-based shift-rule gradient on aer-noisy vs the exact
    gradient of the noisy distribution (shift rule on default.mixed's exact probabilities)."""
    pytest.importorskip("pennylane")
    from qhn.backends.pennylane_backend import PennyLaneBackend

    circuit = hardware_efficient(2, 1, ("ry", "rz"), "cnot")
    theta = random_params(circuit, 1, seed=2)[0]
    cost = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    exact = theta.clone().requires_grad_()
    mixed = PennyLaneBackend("default.mixed", noise=NOISE)
    ParameterShift().expectation(mixed, circuit, exact, cost).backward()
    qb = QiskitBackend("aer-noisy", noise=NOISE, seed=1)
    grads = []
    for _ in range(30):
        t = theta.clone().requires_grad_()
        ParameterShift().expectation(qb, circuit, t, cost, shots=400).backward()
        grads.append(t.grad)
    grads = torch.stack(grads)
    assert qb.jobs == 30
    z = (grads.mean(0) - exact.grad) / (grads.std(0) / math.sqrt(len(grads)))
    assert float(z.abs().max()) < 4.0


def test_too_many_shots_are_refused_before_any_job():
    from qhn.errors import MemoryBudgetError

    qb = QiskitBackend("aer", seed=0)
    with pytest.raises(MemoryBudgetError, match="use fewer shots"):
        qb.sample(product(4), torch.zeros(1000, 4), 10**7)
    assert qb.jobs == 0
