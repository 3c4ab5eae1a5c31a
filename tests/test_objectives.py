"""MLE, ELBO and SELBO against independent numpy computations (METHOD.md §2–§3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from qhn.backends import StatevectorBackend
from qhn.backends.sample_only import SampleOnly
from qhn.circuits import hardware_efficient
from qhn.errors import CapabilityError, ConfigError
from qhn.hypernetwork import QuantumHypernetwork
from qhn.inference import BernoulliPrior, HammingKernel
from qhn.inference.data_term import DataTerm
from qhn.inference.elbo import ELBO
from qhn.inference.mle import MLE
from qhn.inference.selbo import SELBO

N_BITS = 3
BANDWIDTHS = (0.5, 2.0)


def all_bitstrings(n: int) -> np.ndarray:
    """Every bitstring, qubit 0 most significant (METHOD.md §1), written out independently."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64)


def numpy_prior(pi: np.ndarray) -> np.ndarray:
    bits = all_bitstrings(len(pi))
    return np.prod(np.where(bits == 1, pi, 1 - pi), axis=1)


def numpy_mmd2(q: np.ndarray, p: np.ndarray, bandwidths) -> float:
    bits = all_bitstrings(int(np.log2(len(q))))
    hamming = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    kernel = np.mean([np.exp(-hamming / (2 * s)) for s in bandwidths], axis=0)
    diff = q - p
    return float(diff @ kernel @ diff)


def make_model(backend=None, seed: int = 1) -> QuantumHypernetwork:
    circuit = hardware_efficient(N_BITS, 1, ("ry", "rz"), "cnot")
    return QuantumHypernetwork(
        circuit, backend or StatevectorBackend(), generator=torch.Generator().manual_seed(seed)
    )


@pytest.fixture()
def costs() -> torch.Tensor:
    return torch.rand(2**N_BITS, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def finite_difference(value, theta: torch.Tensor, step: float = 1e-6) -> np.ndarray:
    grad = np.zeros(theta.numel())
    for j in range(theta.numel()):
        shift = torch.zeros_like(theta)
        shift[j] = step
        grad[j] = (value(theta + shift) - value(theta - shift)) / (2 * step)
    return grad


def model_probs(model: QuantumHypernetwork, theta: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return StatevectorBackend().probs(model.circuit, theta).numpy()


def test_data_vector_is_built_once_and_follows_its_scale(costs):
    """``ℓ = −(N/T)·C`` (closed form); the same tensor on every read until ``T`` or ``C``
    changes, then the new ``ℓ``."""
    data = DataTerm(N_BITS, 40.0, 2.0, cost_vector=costs)
    first = data.vector
    np.testing.assert_array_equal(first.numpy(), -20.0 * costs.numpy())
    assert data.vector is first
    data.temperature = 4.0
    np.testing.assert_array_equal(data.vector.numpy(), -10.0 * costs.numpy())
    data.cost_vector = costs * 3
    np.testing.assert_array_equal(data.vector.numpy(), -30.0 * costs.numpy())


def test_elbo_value_and_gradient_match_numpy(costs):
    pi = np.array([0.2, 0.5, 0.7])
    n_examples, temperature, beta = 40.0, 2.0, 0.7
    data = DataTerm(N_BITS, n_examples, temperature, cost_vector=costs)
    objective = ELBO(data, BernoulliPrior(torch.tensor(pi), N_BITS), beta=beta)
    model = make_model()

    def numpy_elbo(theta):
        q = model_probs(model, theta)
        ell = -n_examples * costs.numpy() / temperature
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.sum(np.where(q > 0, q * np.log(q / numpy_prior(pi)), 0.0))
        return q @ ell - beta * kl

    result = objective(model)
    result.loss.backward()
    theta = model.theta.detach()
    assert result.loss.item() == pytest.approx(-numpy_elbo(theta), abs=1e-10)
    assert result.metrics["data_term"] == pytest.approx(
        model_probs(model, theta) @ (-20 * costs.numpy())
    )
    np.testing.assert_allclose(
        -model.theta.grad.numpy(), finite_difference(numpy_elbo, theta), atol=1e-6
    )


def test_elbo_with_uniform_prior_is_mle_plus_entropy_bonus(costs):
    data = DataTerm(N_BITS, 10.0, cost_vector=costs)
    model = make_model()
    elbo = ELBO(data, BernoulliPrior.uniform(N_BITS)).__call__(model).metrics
    mle = MLE(data)(model).metrics
    assert elbo["objective"] == pytest.approx(
        mle["objective"] - (N_BITS * np.log(2) - mle["entropy"]), abs=1e-12
    )


def test_exact_selbo_matches_numpy_double_sum(costs):
    pi = np.array([0.3, 0.5, 0.6])
    data = DataTerm(N_BITS, 25.0, cost_vector=costs)
    lam = 3.0
    objective = SELBO(
        data, BernoulliPrior(torch.tensor(pi), N_BITS), HammingKernel(BANDWIDTHS), lam
    )
    model = make_model()

    def numpy_selbo(theta):
        q = model_probs(model, theta)
        return q @ (-25.0 * costs.numpy()) - lam * numpy_mmd2(q, numpy_prior(pi), BANDWIDTHS)

    result = objective(model)
    result.loss.backward()
    theta = model.theta.detach()
    assert result.loss.item() == pytest.approx(-numpy_selbo(theta), abs=1e-10)
    np.testing.assert_allclose(
        -model.theta.grad.numpy(), finite_difference(numpy_selbo, theta), atol=1e-6
    )


def test_sampled_selbo_gradient_is_unbiased_for_the_exact_gradient(costs):
    """Witness-based parameter-shift gradient from shots only, averaged over seeded repetitions,
    equals the exact SELBO gradient within 4 standard errors per component."""
    pi = np.array([0.5, 0.5, 0.5])
    prior = BernoulliPrior(torch.tensor(pi), N_BITS)
    lam = 4.0
    exact_model = make_model()
    exact_obj = SELBO(
        DataTerm(N_BITS, 5.0, cost_vector=costs), prior, HammingKernel(BANDWIDTHS), lam
    )
    exact_obj(exact_model).loss.backward()
    exact_grad = exact_model.theta.grad.numpy()

    index_weights = 2 ** torch.arange(N_BITS - 1, -1, -1)

    def cost_fn(bits):
        return costs[(bits.long() * index_weights).sum(-1)]

    data = DataTerm(N_BITS, 5.0, cost_fn=cost_fn)
    sampled = SELBO(data, prior, HammingKernel(BANDWIDTHS), lam, shots=64)
    model = make_model(SampleOnly(StatevectorBackend()))
    generator = torch.Generator().manual_seed(11)
    grads = []
    for _ in range(600):
        model.theta.grad = None
        sampled(model, generator=generator).loss.backward()
        grads.append(model.theta.grad.numpy().copy())
    grads = np.array(grads)
    mean = grads.mean(0)
    standard_error = grads.std(0, ddof=1) / np.sqrt(len(grads))
    assert np.all(standard_error > 0)
    assert np.all(np.abs(mean - exact_grad) <= 4 * standard_error + 1e-12), (mean, exact_grad)


def test_sampled_selbo_value_estimates_the_exact_value(costs):
    prior = BernoulliPrior.uniform(N_BITS)
    lam = 2.0
    exact = SELBO(DataTerm(N_BITS, 5.0, cost_vector=costs), prior, HammingKernel(BANDWIDTHS), lam)
    exact_value = -exact(make_model()).loss.item()
    model = make_model(SampleOnly(StatevectorBackend()))
    sampled = SELBO(
        DataTerm(N_BITS, 5.0, cost_vector=costs), prior, HammingKernel(BANDWIDTHS), lam, shots=50
    )
    generator = torch.Generator().manual_seed(2)
    values = np.array([-sampled(model, generator=generator).loss.item() for _ in range(400)])
    assert abs(values.mean() - exact_value) <= 4 * values.std(ddof=1) / np.sqrt(len(values))


def test_elbo_on_sample_only_backend_is_refused_and_suggests_selbo(costs):
    model = make_model(SampleOnly(StatevectorBackend()))
    data = DataTerm(N_BITS, 1.0, cost_vector=costs)
    with pytest.raises(CapabilityError, match="selbo"):
        ELBO(data, BernoulliPrior.uniform(N_BITS)).check(model)
    with pytest.raises(CapabilityError, match="shots"):
        MLE(data).check(model)
    MLE(data, shots=10).check(model)
    SELBO(data, BernoulliPrior.uniform(N_BITS), shots=10).check(model)
    with pytest.raises(CapabilityError, match="parameter-shift"):
        MLE(data, shots=10).check(make_model())  # backprop cannot use shots


def test_objective_options_are_validated(costs):
    data = DataTerm(N_BITS, 1.0, cost_vector=costs)
    with pytest.raises(ConfigError, match="beta"):
        ELBO(data, BernoulliPrior.uniform(N_BITS), beta=-1)
    with pytest.raises(ConfigError, match="lam"):
        SELBO(data, BernoulliPrior.uniform(N_BITS), lam=-0.1)
    with pytest.raises(ConfigError, match="shots"):
        SELBO(data, BernoulliPrior.uniform(N_BITS), shots=1)


def test_data_term_caches_sampled_networks():
    calls = []

    def cost_fn(bits):
        calls.append(bits.shape[0])
        return bits.double().sum(-1)

    data = DataTerm(4, 8.0, 2.0, cost_fn=cost_fn)
    bits = torch.tensor([[1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.uint8)
    assert data(bits).tolist() == [-8.0, -8.0, 0.0]
    assert data(bits[:1]).tolist() == [-8.0]
    assert calls == [2]
    assert data.evaluations == 2
    with pytest.raises(ConfigError, match="must have 4 bits"):
        data(torch.zeros(2, 3, dtype=torch.uint8))


def test_entropy_equals_scipy_with_zeros_and_in_batches():
    from scipy.stats import entropy as scipy_entropy

    from qhn.inference.objective import entropy

    rng = np.random.default_rng(11)
    q = rng.random((3, 16))
    q[:, ::5] = 0.0
    q /= q.sum(-1, keepdims=True)
    got = entropy(torch.tensor(q))
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), scipy_entropy(q, axis=-1), rtol=0, atol=1e-14)


def test_neg_entropy_gradient_matches_finite_differences_and_is_one_at_zeros():
    from qhn.inference.objective import neg_entropy

    rng = np.random.default_rng(12)
    q = torch.tensor(rng.random((2, 8)) + 0.05, requires_grad=True)
    assert torch.autograd.gradcheck(neg_entropy, (q,), eps=1e-7, atol=1e-8)
    zeros = torch.tensor([0.0, 0.25, 0.0, 0.75], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(neg_entropy(zeros), zeros)
    expected = [1.0, np.log(0.25) + 1, 1.0, np.log(0.75) + 1]
    np.testing.assert_allclose(grad.numpy(), expected, rtol=0, atol=1e-15)
    with pytest.raises(RuntimeError):  # once differentiable: a Hessian is refused, not wrong
        (g,) = torch.autograd.grad(neg_entropy(q).sum(), q, create_graph=True)
        g.sum().backward()
