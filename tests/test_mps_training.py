"""Whole-network MPS training (backend = "mps" with shots): its sampled objectives and gradients
are unbiased against the statevector's exact, enumerated ELBO / MLE (n ≤ 10), the scan
conditionals equal the sequential sweep, a short run trains, and impossible configs are refused
before compute.

Unbiasedness: R estimates with fixed seeds, z = (mean − exact) / (sd / √R) per component. Across
the ≤ 60 components of a case, |z| < 4.5 has a false-alarm rate below 1e-3 for an unbiased
estimator (Gaussian tail 7e-6 per component); a bias of a few percent gives |z| in the tens.
"""

from __future__ import annotations

import math

import pytest
import torch

from qhn.backends.mps import MPSBackend
from qhn.backends.mps_scan import scan_conditionals
from qhn.backends.statevector import StatevectorBackend
from qhn.bits import index_to_bits
from qhn.circuits import build_ansatz, hardware_efficient, qhn_reference
from qhn.data.tasks import get_task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import build_run
from qhn.inference.mps_sampled import MPSSampledObjective
from qhn.mps_hypernetwork import MPSHypernetwork, block_diagonal_circuit
from qhn.threads import torch_threads
from qhn.train.loop import TrainConfig, fit

Z_MAX = 4.5
SV = StatevectorBackend()


@pytest.fixture(autouse=True)
def _one_thread():
    # Small tensors: one thread is faster, and the same everywhere.
    with torch_threads(1):
        yield


def _z(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    r = samples.shape[0]
    z = (samples.mean(0) - exact) / (samples.std(0) / math.sqrt(r)).clamp_min(1e-12)
    print(f"R = {r}, components = {z.numel()}, max |z| = {float(z.abs().max()):.2f}")
    return z


def _exact(model, task, kind, weight, prior_p):
    """The enumerated objective on the statevector (the oracle), differentiable in θ."""
    n = model.n_qubits
    q = SV.probs(model.circuit, model.theta)
    bits = index_to_bits(torch.arange(2**n), n)
    ell = task.data_term(bits)
    if kind == "mle":
        return q @ ell
    ones = bits.sum(-1).double()
    log_p = ones * math.log(prior_p) + (n - ones) * math.log1p(-prior_p)
    return q @ ell - weight * (torch.special.xlogy(q, q) - q * log_p).sum()


@pytest.mark.parametrize(
    ("kind", "estimator", "layers", "prior_p", "repeats"),
    [
        ("elbo", "local-expectation", 2, 0.5, 400),
        ("elbo", "local-expectation", 1, 0.3, 400),
        ("elbo", "score-function", 2, 0.5, 800),
        ("mle", "score-function", 1, 0.5, 600),
        ("mle", "local-expectation", 2, 0.5, 400),
    ],
)
def test_sampled_objective_and_gradient_are_unbiased(kind, estimator, layers, prior_p, repeats):
    """Value (ELBO with the Monte Carlo KL, minibatched data term) and gradient (incl. the KL's
    score-function / local-expectation term with the exact MPS log q) vs enumeration."""
    task = get_task("teacher-tiny", seed=0, n_train=60)  # 6 bits, N = 60
    model = MPSHypernetwork(
        hardware_efficient(task.n_bits, layers),
        MPSBackend(),
        estimator,
        generator=torch.Generator().manual_seed(layers),
    )
    objective = MPSSampledObjective(
        kind, task, shots=4, batch_size=16, estimator=estimator, beta=0.7, prior_p=prior_p
    )
    exact = _exact(model, task, kind, 0.7, prior_p)
    (exact_grad,) = torch.autograd.grad(exact, model.theta)
    generator = torch.Generator().manual_seed(4)
    values, grads = [], []
    for _ in range(repeats):
        result = objective(model, generator=generator)
        values.append(result.metrics["objective"])
        grads.append(torch.autograd.grad(-result.loss, model.theta)[0])
    value_z = _z(torch.tensor(values, dtype=torch.float64)[:, None], exact.detach()[None])
    assert abs(float(value_z[0])) < Z_MAX
    assert float(_z(torch.stack(grads), exact_grad).abs().max()) < Z_MAX


def test_dropping_the_kl_score_term_is_biased_and_the_test_sees_it():
    # The KL's gradient is E_q[(log q − log p)∇log q]; an objective whose f omits log q (only
    # log p) estimates the gradient of E_q[ℓ] + β·E_q[log p], not of the ELBO: the z-test must
    # reject it, so the test above can fail. β = 30 makes the KL term weigh like the data term.
    task = get_task("teacher-tiny", seed=0, n_train=60)
    model = MPSHypernetwork(
        hardware_efficient(task.n_bits, 2),
        MPSBackend(),
        "local-expectation",
        generator=torch.Generator().manual_seed(2),
    )
    objective = MPSSampledObjective("elbo", task, shots=4, batch_size=16, beta=30.0)
    exact_grad = torch.autograd.grad(_exact(model, task, "elbo", 30.0, 0.5), model.theta)[0]
    true_log_prob = model.log_prob
    model.log_prob = lambda b: true_log_prob(b).detach() * 0.0  # the bias under test
    generator = torch.Generator().manual_seed(4)
    grads = [
        torch.autograd.grad(-objective(model, generator=generator).loss, model.theta)[0]
        for _ in range(400)
    ]
    assert float(_z(torch.stack(grads), exact_grad).abs().max()) > 10


@pytest.mark.parametrize(
    "circuit",
    [
        hardware_efficient(11, 2, ("ry", "rz"), "cz", "chain"),
        qhn_reference(8, 2),
        hardware_efficient(10, 3),
    ],
    ids=lambda c: c.name,
)
def test_scan_conditionals_equal_the_sequential_sweep_with_gradients(circuit):
    backend = MPSBackend()
    theta = torch.rand(2, circuit.n_params, generator=torch.Generator().manual_seed(0)) * 6.3
    theta = theta.double()
    state = backend.state(circuit, theta)
    bits = state.sample(40, torch.Generator().manual_seed(1))
    # The oracle: conditionals from the statevector's enumerated distribution.
    n = circuit.n_qubits
    q = SV.probs(circuit, theta)  # (2, 2^n)
    index = (bits.long() * 2 ** torch.arange(n - 1, -1, -1)).sum(-1)  # (2, 40)
    oracle = torch.empty(bits.shape, dtype=torch.float64)
    for i in range(n):
        marginal = q.reshape(2, 2**i, 2, 2 ** (n - i - 1)).sum(-1)  # (2, 2^i, 2)
        prefix = index >> (n - i)
        pair = marginal.gather(1, prefix.unsqueeze(-1).expand(-1, -1, 2))
        oracle[..., i] = pair[..., 1] / pair.sum(-1)
    scanned = scan_conditionals(state.tensors, bits.bool())
    assert torch.allclose(scanned, oracle, atol=1e-10, rtol=0)
    weights = torch.randn(bits.shape, generator=torch.Generator().manual_seed(2)).double()
    a = theta.clone().requires_grad_(True)
    b = theta.clone().requires_grad_(True)
    (g_scan,) = torch.autograd.grad(
        (scan_conditionals(backend.state(circuit, a).tensors, bits.bool()) * weights).sum(), a
    )
    (g_seq,) = torch.autograd.grad(
        (backend.state(circuit, b).conditionals(bits) * weights).sum(), b
    )
    assert torch.allclose(g_scan, g_seq, atol=1e-9, rtol=1e-9)


def test_block_diagonal_circuit_is_the_product_of_its_blocks():
    sizes = (4, 2, 3)
    circuit = block_diagonal_circuit(sizes, lambda m: build_ansatz("hardware_efficient", m, 2))
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(3)).double() * 6
    joint = MPSBackend().probs(circuit, theta)
    product, offset = torch.ones(1, dtype=torch.float64), 0
    for m in sizes:
        block = build_ansatz("hardware_efficient", m, 2)
        q = SV.probs(block, theta[offset : offset + block.n_params])
        product = (product[:, None] * q[None, :]).reshape(-1)
        offset += block.n_params
    assert torch.allclose(joint, product, atol=1e-12, rtol=0)


def test_a_short_mps_run_trains_like_the_statevector():
    """ELBO on teacher-tiny: sampled MPS training (local expectation, S = 4, B = 32) and exact
    statevector training (backprop on the enumerated ELBO) from the same initial angles. The
    exact ELBO after MPS training must have recovered most of what exact training gains."""
    base = dict(task="teacher-tiny", objective="elbo", layers=1, beta=1.0)
    train_cfg = {"steps": 150, "lr": 0.05, "seed": 0}
    mps = build_run(RunConfig(**base, backend="mps", shots=4, batch_size=32, train=train_cfg))
    sv = build_run(RunConfig(**base, train=train_cfg))
    assert torch.equal(mps.model.theta, sv.model.theta)
    task = mps.task
    start = float(_exact(mps.model, task, "elbo", 1.0, 0.5).detach())
    fit(mps.model, mps.objective, TrainConfig(**train_cfg))
    fit(sv.model, sv.objective, TrainConfig(**train_cfg))
    end_mps = float(_exact(mps.model, task, "elbo", 1.0, 0.5).detach())
    end_sv = float(_exact(sv.model, task, "elbo", 1.0, 0.5).detach())
    print(f"exact ELBO: start {start:.4f}, statevector {end_sv:.4f}, mps sampled {end_mps:.4f}")
    # The gain is tens of nats here; the sampled run's stochastic gradient leaves it a few nats
    # short at most (its final-step noise at lr 0.05): ask for 80 % of the exact gain.
    assert end_sv > start + 5
    assert end_mps - start > 0.8 * (end_sv - start)
    # Here both reach (nearly) the same point mass: their distributions agree in total variation.
    q_mps = SV.probs(mps.model.circuit, mps.model.theta.detach())
    q_sv = SV.probs(sv.model.circuit, sv.model.theta.detach())
    assert float((q_mps - q_sv).abs().sum()) / 2 < 0.05


def test_digits10_mps_builds_one_1210_qubit_circuit_without_enumerating():
    run = build_run(RunConfig(task="digits10", backend="mps", shots=4, batch_size=128, layers=1))
    assert run.circuit.n_qubits == 1210 and run.landscape is None
    assert run.model.estimator_name == "local-expectation"
    bits = run.model.sample(3, generator=torch.Generator().manual_seed(0))
    assert bits.shape == (3, 1210)
    blocks = build_run(
        RunConfig(task="digits10", backend="mps", shots=4, blocks=11, layers=2)
    )  # 110-qubit MPS blocks: above the statevector blocks' 20-qubit limit
    assert blocks.model.run_info["block_sizes"] == [110]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"estimator": "local-expectation"}, "needs shots = an integer >= 1"),
        ({"estimator": "score-function", "shots": 1}, "needs shots = an integer >= 2"),
        ({"shots": 4, "train": {"optimizer": "lbfgs"}}, 'use train.optimizer = "adam"'),
        ({"shots": 4, "init": "warm"}, 'use init = "uniform" or "small"'),
        ({"shots": 4, "batch_size": 0}, "batch_size"),
    ],
)
def test_impossible_mps_configs_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig(task="digits10", backend="mps", **options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "options",
    [{"objective": "elbo"}, {"objective": "selbo", "estimator": "parameter-shift", "shots": 4}],
)
def test_enumerating_mps_training_of_a_wide_task_is_refused_before_compute(monkeypatch, options):
    import qhn.backends.mps as mps_module

    def no_compute(*args, **kwargs):
        raise AssertionError("a refused config must not simulate anything")

    monkeypatch.setattr(mps_module.MPSBackend, "state", no_compute)
    with pytest.raises(ConfigError, match="train from sampled networks: shots = 4") as info:
        build_run(RunConfig(task="digits10", backend="mps", **options))
    assert "2^1210" in str(info.value) and "\n" not in str(info.value)
