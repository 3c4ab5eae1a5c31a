"""Readout-aware MMD (qhn.inference.readout_correction): the corrected kernel recovers the MMD² of
the pre-readout distribution from read-out shots, exactly in expectation (enumeration on tiny
cases, against dense linear algebra), statistically on shots drawn through Qiskit Aer's readout
channel, and in the SELBO gradient; configs that cannot be corrected are refused in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from qhn.backends.noise_model import NoiseModel
from qhn.backends.registry import get_backend
from qhn.circuits import build_ansatz
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig, loads_config, to_toml
from qhn.experiments.runner import build_run
from qhn.hypernetwork import QuantumHypernetwork
from qhn.inference import BernoulliPrior, HammingKernel
from qhn.inference.data_term import DataTerm
from qhn.inference.readout_correction import ReadoutCorrectedKernel, confusion_matrices
from qhn.inference.selbo import SELBO

R01 = torch.tensor([0.05, 0.2, 0.3])
R10 = torch.tensor([0.1, 0.02, 0.4])


def _all_bits(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=torch.uint8)


def _dense_channel(confusion: torch.Tensor) -> np.ndarray:
    """``⊗_q A_q`` in our index order (qubit 0 most significant), by numpy's kron."""
    out = np.ones((1, 1))
    for a in confusion.numpy():
        out = np.kron(out, a)
    return out


def _random_distribution(n: int, seed: int) -> torch.Tensor:
    q = torch.rand(2**n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return q / q.sum()


@pytest.fixture
def corrected() -> tuple[HammingKernel, ReadoutCorrectedKernel, torch.Tensor]:
    kernel = HammingKernel((0.5, 1.0, 3.0))
    confusion = confusion_matrices(R01, R10)
    return kernel, ReadoutCorrectedKernel(kernel, confusion), confusion


def test_corrected_gram_is_the_dense_inverse_sandwich(corrected):
    kernel, rk, confusion = corrected
    bits = _all_bits(3)
    dense = _dense_channel(confusion)
    inverse = np.linalg.inv(dense)
    expected = inverse @ kernel.gram(bits, bits).numpy() @ inverse.T
    assert np.abs(expected).max() > 1.0 and expected.min() < 0  # signs and sizes both exercised
    np.testing.assert_allclose(rk.gram(bits, bits).numpy(), expected, atol=1e-12)


def test_expected_corrected_kernel_under_readout_equals_the_kernel_before_it(corrected):
    kernel, rk, confusion = corrected
    bits = _all_bits(3)
    dense = torch.from_numpy(_dense_channel(confusion))
    a, b = _random_distribution(3, 0), _random_distribution(3, 1)
    read_a, read_b = dense.T @ a, dense.T @ b  # observed distributions
    k, k_corrected = kernel.gram(bits, bits), rk.gram(bits, bits)
    assert float(read_a @ k_corrected @ read_b) == pytest.approx(float(a @ k @ b), abs=1e-12)
    # The naive kernel on read-out distributions is off: the correction is needed.
    assert abs(float(read_a @ k @ read_b) - float(a @ k @ b)) > 1e-3


@pytest.mark.parametrize(("n", "shots"), [(3, 2), (2, 3)])
def test_u_statistic_is_exactly_unbiased_by_enumerating_every_shot_tuple(corrected, n, shots):
    kernel, _, _ = corrected
    confusion = confusion_matrices(R01[:n], R10[:n])
    rk = ReadoutCorrectedKernel(kernel, confusion)
    prior = BernoulliPrior(torch.tensor([0.3, 0.6, 0.5][:n]), n)
    q = _random_distribution(n, 2)
    observed = torch.from_numpy(_dense_channel(confusion)).T @ q
    bits = _all_bits(n)
    expectation = 0.0
    for tup in itertools.product(range(2**n), repeat=shots):
        weight = float(torch.prod(observed[list(tup)]))
        expectation += weight * float(rk.mmd2_vs_prior(bits[list(tup)], prior))
    truth = float(kernel.mmd2_exact(q, prior.probs_vector()))
    assert expectation == pytest.approx(truth, abs=1e-12)


def test_witness_carries_the_exact_mmd_gradient_in_every_direction(corrected):
    kernel, rk, confusion = corrected
    n = 3
    prior = BernoulliPrior(torch.tensor([0.3, 0.6, 0.5]), n)
    dense = torch.from_numpy(_dense_channel(confusion))
    q, p = _random_distribution(n, 3), prior.probs_vector()
    observed = dense.T @ q
    bits = _all_bits(n)
    k = kernel.gram(bits, bits)
    for seed in range(3):
        direction = _random_distribution(n, 10 + seed) - 1.0 / 2**n  # sums to 0
        truth = float(direction @ k @ (q - p))  # ½ d/dt MMD²(q + t·direction, p)
        # E over the witness batch (one shot, enumerated) of Σ_s (Aᵀ direction)(s) w'(s).
        total = sum(
            float(observed[u])
            * float((dense.T @ direction) @ rk.witness(bits, bits[u : u + 1], prior))
            for u in range(2**n)
        )
        assert total == pytest.approx(truth, abs=1e-12)


def test_exact_mmd_of_an_observed_distribution_is_the_pre_readout_one(corrected):
    kernel, rk, confusion = corrected
    prior = BernoulliPrior(0.3, 3)
    q = _random_distribution(3, 4)
    observed = torch.from_numpy(_dense_channel(confusion)).T @ q
    assert float(rk.mmd2_exact(observed, prior.probs_vector())) == pytest.approx(
        float(kernel.mmd2_exact(q, prior.probs_vector())), abs=1e-13
    )
    # The noisy backend's exact probabilities are the same readout map of its pre-readout ones.
    noise = NoiseModel(readout01=0.2, readout10=0.1)
    circuit = build_ansatz("hardware_efficient", 3, 1)
    theta = torch.linspace(0.3, 2.9, circuit.n_params, dtype=torch.float64)
    noisy = get_backend("noisy", noise=noise).probs(circuit, theta)
    ideal = get_backend("statevector").probs(circuit, theta)
    rk_noise = ReadoutCorrectedKernel(kernel, noise.confusion())
    assert torch.allclose(rk_noise.unread(noisy), ideal, atol=1e-12)


def test_identity_channel_gives_the_plain_kernel_estimates():
    kernel = HammingKernel()
    rk = ReadoutCorrectedKernel(kernel, torch.eye(2, dtype=torch.float64))
    prior = BernoulliPrior(0.3, 5)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 5, generator=g) < 0.4).to(torch.uint8)
    y = (torch.rand(30, 5, generator=g) < 0.6).to(torch.uint8)
    assert float(rk.mmd2_vs_prior(x, prior)) == pytest.approx(
        float(kernel.mmd2_vs_prior(x, prior)), abs=1e-12
    )
    assert torch.allclose(rk.witness(y, x, prior), kernel.witness(y, x, prior), atol=1e-12)
    assert torch.allclose(rk.witness(y, x, samples_p=x), kernel.witness(y, x, samples_p=x))
    with_samples = rk.mmd2_vs_prior(x, prior, analytic_prior=False, generator=torch.Generator())
    reference = kernel.mmd2_vs_prior(x, prior, analytic_prior=False, generator=torch.Generator())
    assert float(with_samples) == pytest.approx(float(reference), abs=1e-12)


def test_naive_mmd_is_biased_under_aer_readout_and_the_corrected_one_is_not():
    pytest.importorskip("qiskit_aer")
    n, shots, repeats = 4, 200, 300
    r01, r10 = 0.08, 0.04
    circuit = build_ansatz("hardware_efficient", n, 1)
    theta = torch.linspace(0.2, 2.8, circuit.n_params, dtype=torch.float64)
    prior = BernoulliPrior(0.5, n)
    kernel = HammingKernel()
    truth = float(
        kernel.mmd2_exact(get_backend("statevector").probs(circuit, theta), prior.probs_vector())
    )
    # Shots through Qiskit Aer's ReadoutError (an independent readout channel), one job.
    aer = get_backend("qiskit:aer-noisy", seed=3, noise={"readout01": r01, "readout10": r10})
    batches = aer.sample(circuit, theta.expand(repeats, -1), shots)
    rk = ReadoutCorrectedKernel(kernel, confusion_matrices(r01, r10))
    naive = torch.stack([kernel.mmd2_vs_prior(b, prior) for b in batches])
    fixed = torch.stack([rk.mmd2_vs_prior(b, prior) for b in batches])
    # Each mean's standard error from the spread over independent repeats (CLT, 300 repeats).
    z_naive = (naive.mean() - truth) / (naive.std() / repeats**0.5)
    z_fixed = (fixed.mean() - truth) / (fixed.std() / repeats**0.5)
    assert abs(float(z_naive)) > 5
    assert abs(float(z_fixed)) < 3


def test_corrected_selbo_gradient_from_shots_is_unbiased_for_the_noiseless_one():
    n, repeats = 3, 150
    circuit = build_ansatz("hardware_efficient", n, 1)
    prior = BernoulliPrior(0.3, n)
    zero_data = DataTerm(n, 1, 1.0, cost_vector=torch.zeros(2**n))  # isolates the MMD term
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(1)) * 6.28

    def gradient(model, objective, seed=None):
        model.theta.grad = None
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        objective(model, generator=generator).loss.backward()
        return model.theta.grad.clone()

    ideal = QuantumHypernetwork(circuit, get_backend("statevector"), "backprop")
    with torch.no_grad():
        ideal.theta.copy_(theta)
    exact = gradient(ideal, SELBO(zero_data, prior, HammingKernel(), lam=1.0))
    noise = NoiseModel(readout01=0.2, readout10=0.1)
    model = QuantumHypernetwork(circuit, get_backend("noisy", noise=noise), "parameter-shift")
    with torch.no_grad():
        model.theta.copy_(theta)
    z = {}
    for name, kernel in (
        ("naive", HammingKernel()),
        ("corrected", ReadoutCorrectedKernel(HammingKernel(), noise.confusion())),
    ):
        objective = SELBO(zero_data, prior, kernel, lam=1.0, shots=200)
        grads = torch.stack([gradient(model, objective, seed) for seed in range(repeats)])
        # z-score of each component's mean against the exact gradient (CLT over repeats).
        z[name] = (grads.mean(0) - exact) / (grads.std(0) / repeats**0.5)
    assert float(z["corrected"].abs().max()) < 4  # 6 components, |z| < 4 each
    assert float(z["naive"].abs().max()) > 6


# ---- configuration ---------------------------------------------------------------------------

NOISY = {"task": "teacher-tiny", "objective": "selbo", "backend": "noisy", "shots": 64}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**NOISY, "objective": "mle", "noise": {"readout": 0.05}}, "objective 'mle' has none"),
        ({**NOISY, "backend": "sampled"}, "backend 'sampled' has none"),
        ({**NOISY, "backend": "qiskit:aer"}, "backend 'qiskit:aer' has none"),
        ({**NOISY, "noise": {"p1": 0.01}}, "sets no readout rate"),
        ({**NOISY, "noise": {"readout": 0.5}}, "readout01 = 0.5"),
        ({**NOISY, "noise": {"readout01": 0.1, "readout10": 0.7}}, "readout10 = 0.7"),
        ({**NOISY, "noise": {"readout": 0.05}, "readout_correction": 1}, "true or false"),
    ],
)
def test_config_refuses_what_cannot_be_corrected_in_one_line(values, message):
    values = {"readout_correction": True, **values}
    with pytest.raises(ConfigError, match=message) as error:
        RunConfig.from_dict(values)
    assert "\n" not in str(error.value)


def test_config_key_round_trips_and_is_written_only_when_set():
    on = RunConfig.from_dict({**NOISY, "noise": {"readout": 0.05}, "readout_correction": True})
    assert "readout_correction = true" in to_toml(on)
    assert loads_config(to_toml(on)) == on
    off = RunConfig.from_dict({**NOISY, "noise": {"readout": 0.05}})
    assert "readout_correction" not in to_toml(off)
    assert RunConfig.from_dict(
        {**NOISY, "backend": "qiskit:fake_torino", "readout_correction": True}
    )


def test_kernel_refuses_ill_posed_channels():
    with pytest.raises(ConfigError, match=r"readout10 = 0\.5"):
        ReadoutCorrectedKernel(HammingKernel(), confusion_matrices(0.1, 0.5))
    with pytest.raises(ConfigError, match="2 bits but the samples have 3"):
        rk = ReadoutCorrectedKernel(HammingKernel(), confusion_matrices(R01[:2], R10[:2]))
        rk.mmd2_vs_prior(torch.zeros(4, 3, dtype=torch.uint8), BernoulliPrior(0.5, 3))


def test_run_builds_the_corrected_kernel_from_the_noise_table():
    config = RunConfig.from_dict(
        {**NOISY, "noise": {"readout01": 0.03, "readout10": 0.06}, "readout_correction": True}
    )
    kernel = build_run(config).objective.kernel
    assert isinstance(kernel, ReadoutCorrectedKernel)
    assert torch.equal(kernel.confusion, NoiseModel(readout01=0.03, readout10=0.06).confusion())


def test_fake_device_rates_follow_the_transpiled_layout():
    pytest.importorskip("qiskit_ibm_runtime")
    from qhn.backends.qiskit_backend import QiskitBackend

    # Non-adjacent physical qubits: routing moves the logical qubits, so where each bit is
    # finally measured is the transpiler's final layout, not the initial one.
    backend = QiskitBackend("fake_torino", initial_layout=[20, 3, 9])
    circuit = build_ansatz("hardware_efficient", 3, 2)
    confusion = backend.readout_confusion(circuit)
    compiled, _ = backend.compiled(circuit)
    final = compiled.layout.final_index_layout()
    measure = backend._device.target["measure"]
    for bit in range(3):
        props = measure[(final[bit],)]
        p01 = getattr(props, "prob_meas1_prep0", props.error)
        p10 = getattr(props, "prob_meas0_prep1", props.error)
        expected = [1 - p01, p01, p10, 1 - p10]
        assert confusion[bit].reshape(-1).tolist() == pytest.approx(expected, abs=1e-15)
    assert len({float(c[0, 1]) for c in confusion}) > 1  # distinct qubits, distinct rates
