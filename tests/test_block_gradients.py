"""Sampled objectives and gradients of block hypernetworks are unbiased (n ≤ 12, enumeration).

Each check repeats an estimator R times with fixed seeds and compares the mean with the exact
value from enumerating all 2^n networks: z = (mean − exact) / (sd / √R). Across the ≤ 60
components tested per case, |z| < 4.5 has a false-alarm rate below 1e-3 for an unbiased
estimator (Gaussian tail 7e-6 per component), while a bias of a few percent of the gradient
gives |z| in the tens at these R.
"""

from __future__ import annotations

import math

import pytest
import torch

from qhn.backends.registry import get_backend
from qhn.bits import bits_to_index, index_to_bits
from qhn.block_hypernetwork import BlockHypernetwork
from qhn.circuits import build_ansatz
from qhn.data.tasks import get_task
from qhn.gradients.block_estimators import (
    local_expectation_surrogate,
    score_function_surrogate,
)
from qhn.inference.kernels import HammingKernel
from qhn.inference.priors import BernoulliPrior
from qhn.inference.sampled import SampledObjective, median_bandwidths

Z_MAX = 4.5


def _model(sizes, layers, seed=0):
    return BlockHypernetwork(
        sizes,
        lambda m: build_ansatz("hardware_efficient", m, layers),
        get_backend("statevector"),
        generator=torch.Generator().manual_seed(seed),
    )


def _z(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    r = samples.shape[0]
    z = (samples.mean(0) - exact) / (samples.std(0) / math.sqrt(r)).clamp_min(1e-12)
    print(f"R = {r}, components = {z.numel()}, max |z| = {float(z.abs().max()):.2f}")
    return z


@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("estimator", ["local-expectation", "score-function"])
def test_block_estimators_unbiased_for_a_fixed_function(layers, estimator):
    model = _model((3, 4), layers, seed=layers)
    f_vec = torch.randn(2**7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f(bits):
        return f_vec[bits_to_index(bits)]

    (exact,) = torch.autograd.grad(model.full_probs() @ f_vec, model.theta)
    generator = torch.Generator().manual_seed(7)
    grads = []
    for _ in range(600):
        probs = model.block_probs()
        bits = model.sample(4, generator=generator, probs=probs)
        if estimator == "local-expectation":
            surrogate, _, spent = local_expectation_surrogate(
                model, probs, bits, f, generator=generator
            )
            assert spent == 4 * (7 + 1)
        else:
            surrogate = score_function_surrogate(model.log_prob(bits, probs), f(bits))
        grads.append(torch.autograd.grad(surrogate, model.theta)[0])
    z = _z(torch.stack(grads), exact)
    assert float(z.abs().max()) < Z_MAX


def test_local_expectation_beats_score_function_per_sample():
    """The point of the local expectation: far lower variance at the same number of samples."""
    model = _model((3, 4), 1, seed=1)
    f_vec = torch.randn(2**7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f(bits):
        return f_vec[bits_to_index(bits)]

    generator = torch.Generator().manual_seed(9)
    variances = {}
    for name in ("le", "sf"):
        grads = []
        for _ in range(300):
            probs = model.block_probs()
            bits = model.sample(4, generator=generator, probs=probs)
            if name == "le":
                surrogate = local_expectation_surrogate(model, probs, bits, f, generator=generator)[
                    0
                ]
            else:
                surrogate = score_function_surrogate(model.log_prob(bits, probs), f(bits))
            grads.append(torch.autograd.grad(surrogate, model.theta)[0])
        variances[name] = float(torch.stack(grads).var(0).sum())
    assert variances["le"] < variances["sf"] / 2


def _exact_elbo(model, task, beta, prior_p):
    n = model.n_qubits
    q = model.full_probs()
    bits = index_to_bits(torch.arange(2**n), n)
    ell = task.data_term(bits)
    ones = bits.sum(-1).double()
    log_p = ones * math.log(prior_p) + (n - ones) * math.log1p(-prior_p)
    kl = (torch.special.xlogy(q, q) - q * log_p).sum()
    return q @ ell - beta * kl, q @ ell


@pytest.mark.parametrize("estimator", ["local-expectation", "score-function"])
def test_sampled_elbo_with_minibatches_unbiased(estimator):
    """Minibatched data term (value) and ELBO gradient against the enumerated ELBO."""
    task = get_task("teacher", seed=0, n_train=60)  # 10 bits, N = 60
    model = _model((5, 5), 1, seed=2)
    objective = SampledObjective(
        "elbo", task, shots=4, batch_size=16, estimator=estimator, beta=1.0, prior_p=0.5
    )
    exact_elbo, exact_data = _exact_elbo(model, task, 1.0, 0.5)
    (exact_grad,) = torch.autograd.grad(exact_elbo, model.theta)
    generator = torch.Generator().manual_seed(4)
    values, grads = [], []
    for _ in range(500 if estimator == "local-expectation" else 800):
        result = objective(model, generator=generator)
        values.append(result.metrics["data_term"])
        grads.append(torch.autograd.grad(-result.loss, model.theta)[0])
    z_value = _z(torch.tensor(values, dtype=torch.float64)[:, None], exact_data.detach()[None])
    assert abs(float(z_value[0])) < Z_MAX
    assert float(_z(torch.stack(grads), exact_grad).abs().max()) < Z_MAX


def test_minibatch_data_term_unbiased_for_fixed_networks():
    """E over minibatches of ℓ̂(s) = ℓ(s) for every fixed network (enumerated C)."""
    task = get_task("teacher", seed=1, n_train=50)
    objective = SampledObjective("mle", task, shots=2, batch_size=7)
    bits = index_to_bits(torch.arange(0, 2**10, 37), 10)
    exact = task.data_term(bits)
    generator = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(3000):
        x, y = objective.minibatch(generator)
        assert x.shape[0] == 7 and len(set(map(tuple, x.tolist()))) == 7  # without replacement
        draws.append(objective.data_function(x, y)(bits))
    assert float(_z(torch.stack(draws), exact).abs().max()) < Z_MAX


def test_sampled_selbo_gradient_unbiased_for_fixed_bandwidths():
    """With the kernel held fixed, the witness-based gradient of λ·MMD² is unbiased."""
    torch.manual_seed(0)
    model = _model((3, 3), 1, seed=6)
    prior = BernoulliPrior(0.5, 6)
    kernel = HammingKernel((0.75, 1.5))
    q = model.full_probs()
    every = index_to_bits(torch.arange(64), 6)
    d = q - torch.full((64,), 1 / 64, dtype=torch.float64)
    exact_mmd = d @ kernel.gram(every, every) @ d  # brute force over all 2^6 bitstrings
    (exact_grad,) = torch.autograd.grad(exact_mmd, model.theta)
    generator = torch.Generator().manual_seed(8)
    grads, values = [], []
    for _ in range(800):
        probs = model.block_probs()
        bits = model.sample(4, generator=generator, probs=probs)
        witness_batch = model.sample(4, generator=generator, probs=probs)
        values.append(float(kernel.mmd2_vs_prior(bits, prior)))

        def f(b, batch=witness_batch):
            return 2.0 * kernel.witness(b, batch, prior)

        surrogate = local_expectation_surrogate(model, probs, bits, f, generator=generator)[0]
        grads.append(torch.autograd.grad(surrogate, model.theta)[0])
    assert abs(float(_z(torch.tensor(values)[:, None], exact_mmd.detach()[None])[0])) < Z_MAX
    assert float(_z(torch.stack(grads), exact_grad).abs().max()) < Z_MAX


def test_median_bandwidths_scale_with_n():
    generator = torch.Generator().manual_seed(0)
    bits = (torch.rand(64, 1210, generator=generator) < 0.5).to(torch.uint8)
    sigma = median_bandwidths(bits, (0.5, 1.0, 2.0, 4.0))
    median = 4 * sigma[1]
    assert 560 < median < 650  # Binomial(1210, 1/2): mean 605, sd 17
    kernel = HammingKernel(sigma)
    assert 0.01 < float(kernel.gram(bits[:1], bits[1:2])) < 0.5  # does not vanish at h ≈ n/2
