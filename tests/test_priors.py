"""The factorized Bernoulli prior against brute-force sums written here with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qhn.errors import ConfigError, MemoryBudgetError
from qhn.inference.priors import BernoulliPrior


def every_bitstring(n: int) -> np.ndarray:
    """All bitstrings in basis-index order, qubit 0 the most significant bit (METHOD.md §1)."""
    return (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1


def brute_probs(pi: np.ndarray) -> np.ndarray:
    bits = every_bitstring(len(pi))
    return np.prod(np.where(bits == 1, pi, 1 - pi), axis=1)


def brute_kl(q: np.ndarray, p: np.ndarray) -> float:
    on = q > 0
    return float(np.sum(q[on] * (np.log(q[on]) - np.log(p[on]))))


def entropy(q: np.ndarray) -> float:
    on = q > 0
    return float(-np.sum(q[on] * np.log(q[on])))


def random_distribution(rng: np.random.Generator, size: int, zeros: int = 0) -> np.ndarray:
    q = rng.dirichlet(np.full(size, 0.7))
    if zeros:
        q[rng.choice(size, zeros, replace=False)] = 0.0
        q /= q.sum()
    return q


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("zeros", [0, 1])
def test_kl_to_uniform_is_n_ln2_minus_entropy(n, zeros):
    rng = np.random.default_rng(100 + n)
    prior = BernoulliPrior.uniform(n)
    for _ in range(5):
        q = random_distribution(rng, 2**n, zeros=zeros)
        kl = prior.kl_from(torch.tensor(q))
        assert kl.dtype == torch.float64
        assert float(kl) == pytest.approx(n * math.log(2) - entropy(q), abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_kl_to_nonuniform_prior_matches_brute_force(n):
    rng = np.random.default_rng(200 + n)
    pi = rng.uniform(0.05, 0.95, size=n)
    prior = BernoulliPrior(pi.tolist())
    p = brute_probs(pi)
    for zeros in (0, 2**n // 3):
        q = random_distribution(rng, 2**n, zeros=zeros)
        assert float(prior.kl_from(torch.tensor(q))) == pytest.approx(brute_kl(q, p), abs=1e-12)


def test_kl_of_the_prior_itself_is_zero_and_batches():
    pi = np.array([0.2, 0.6, 0.9])
    prior = BernoulliPrior(pi)
    rng = np.random.default_rng(3)
    qs = np.stack([brute_probs(pi), random_distribution(rng, 8), random_distribution(rng, 8)])
    kl = prior.kl_from(torch.tensor(qs))
    assert kl.shape == (3,)
    assert abs(float(kl[0])) < 1e-14
    for row in range(1, 3):
        assert float(kl[row]) == pytest.approx(brute_kl(qs[row], brute_probs(pi)), abs=1e-12)
        assert float(kl[row]) > 0


def test_kl_gradient_in_q_is_log_q_plus_one_minus_log_p_and_finite_at_zeros():
    pi = np.array([0.3, 0.8, 0.55])
    prior = BernoulliPrior(pi)
    rng = np.random.default_rng(4)
    q_np = random_distribution(rng, 8, zeros=3)
    q = torch.tensor(q_np, requires_grad=True)
    prior.kl_from(q).backward()
    log_p = np.log(brute_probs(pi))
    on = q_np > 0
    expected = np.where(on, np.log(np.where(on, q_np, 1.0)) + 1.0, 1.0) - log_p
    assert torch.isfinite(q.grad).all()
    np.testing.assert_allclose(q.grad.numpy(), expected, atol=1e-12)


def test_kl_gradient_through_a_product_state_sitting_on_a_zero_of_q():
    # q_θ of two independent bits with P(s_q = 1) = sin²(θ_q/2). At θ_0 = 0 half of q is exactly
    # 0, yet KL(θ) is smooth there with ∂KL/∂θ_0 = 0: autograd must not return NaN.
    pi = [0.3, 0.6]
    prior = BernoulliPrior(pi)

    def kl_of(theta: torch.Tensor) -> torch.Tensor:
        one = torch.sin(theta / 2) ** 2
        marg = torch.stack((1 - one, one), dim=-1)
        q = (marg[0][:, None] * marg[1][None, :]).reshape(-1)
        return prior.kl_from(q)

    theta = torch.tensor([0.0, 1.1], dtype=torch.float64, requires_grad=True)
    kl_of(theta).backward()
    assert torch.isfinite(theta.grad).all()
    assert abs(float(theta.grad[0])) < 1e-12
    eps = 1e-6
    with torch.no_grad():
        up = kl_of(torch.tensor([0.0, 1.1 + eps], dtype=torch.float64))
        down = kl_of(torch.tensor([0.0, 1.1 - eps], dtype=torch.float64))
    assert float(theta.grad[1]) == pytest.approx(float(up - down) / (2 * eps), abs=1e-7)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_log_prob_matches_brute_force(n):
    rng = np.random.default_rng(300 + n)
    pi = rng.uniform(0.02, 0.98, size=n)
    bits = rng.integers(0, 2, size=(50, n))
    expected = np.sum(np.where(bits == 1, np.log(pi), np.log1p(-pi)), axis=1)
    got = BernoulliPrior(pi).log_prob(torch.tensor(bits, dtype=torch.uint8))
    assert got.shape == (50,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13, atol=1e-13)
    got_bool = BernoulliPrior(pi).log_prob(torch.tensor(bits.reshape(5, 10, n), dtype=torch.bool))
    np.testing.assert_allclose(got_bool.numpy(), expected.reshape(5, 10), rtol=1e-13)


@pytest.mark.parametrize("n", [1, 4, 8])
def test_probs_vector_is_in_index_order_and_normalized(n):
    rng = np.random.default_rng(400 + n)
    pi = rng.uniform(0.05, 0.95, size=n)
    vec = BernoulliPrior(pi).probs_vector()
    assert vec.shape == (2**n,) and vec.dtype == torch.float64
    np.testing.assert_allclose(vec.numpy(), brute_probs(pi), rtol=1e-13, atol=0)
    assert abs(float(vec.sum()) - 1.0) < 1e-12


def test_probs_vector_refuses_large_n_before_allocating():
    with pytest.raises(MemoryBudgetError, match="40 bits"):
        BernoulliPrior.uniform(40).probs_vector()
    with pytest.raises(MemoryBudgetError, match="budget of 100 bytes"):
        BernoulliPrior.uniform(5).probs_vector(max_bytes=100)


@pytest.mark.parametrize("pi", [[0.5] * 4, [0.1, 0.5, 0.93], [0.001, 0.999]])
def test_entropy_matches_brute_force(pi):
    prior = BernoulliPrior(pi)
    assert float(prior.entropy()) == pytest.approx(entropy(brute_probs(np.array(pi))), abs=1e-12)


def test_uniform_prior_and_scalar_probability():
    uniform = BernoulliPrior.uniform(5)
    assert uniform.is_uniform and uniform.n_bits == 5
    assert torch.equal(uniform.probs, torch.full((5,), 0.5, dtype=torch.float64))
    assert torch.equal(BernoulliPrior(0.3, 4).probs, torch.full((4,), 0.3, dtype=torch.float64))
    assert not BernoulliPrior([0.5, 0.4]).is_uniform
    assert float(uniform.entropy()) == pytest.approx(5 * math.log(2), abs=1e-14)


def test_probs_is_a_copy():
    prior = BernoulliPrior([0.2, 0.7])
    prior.probs[0] = 0.9
    assert float(prior.probs[0]) == 0.2


def test_sample_frequencies_match_pi_within_four_sigma():
    pi = np.array([0.1, 0.5, 0.8, 0.97, 0.3])
    prior = BernoulliPrior(pi)
    shots = 40_000
    bits = prior.sample(shots, generator=torch.Generator().manual_seed(11))
    assert bits.shape == (shots, 5) and bits.dtype == torch.uint8
    freq = bits.double().mean(0).numpy()
    assert np.all(np.abs(freq - pi) < 4 * np.sqrt(pi * (1 - pi) / shots))
    # independence between bits: P(s_0 = 1, s_2 = 1) = π_0 π_2
    joint = float((bits[:, 0] & bits[:, 2]).double().mean())
    target = pi[0] * pi[2]
    assert abs(joint - target) < 4 * math.sqrt(target * (1 - target) / shots)


def test_sample_is_reproducible_with_a_seed():
    prior = BernoulliPrior([0.4, 0.6, 0.5])
    a = prior.sample(100, generator=torch.Generator().manual_seed(5))
    b = prior.sample(100, generator=torch.Generator().manual_seed(5))
    c = prior.sample(100, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    ("probs", "n_bits", "message"),
    [
        (1.2, 3, "strictly inside"),
        (-0.1, 3, "strictly inside"),
        (0.0, 3, "strictly inside"),
        (1.0, 2, "strictly inside"),
        (float("nan"), 2, "strictly inside"),
        ([0.5, 1.5], None, "bit 1 is 1.5"),
        ([0.5, 0.5], 3, "2 prior probabilities for n_bits=3"),
        ([[0.5, 0.5]], None, "1-D"),
        ([], None, "non-empty"),
        (0.5, None, "needs n_bits"),
        (0.5, 0, "positive integer"),
        (0.5, True, "positive integer"),
        ("abc", 2, "numbers"),
    ],
)
def test_bad_prior_configs_raise(probs, n_bits, message):
    with pytest.raises(ConfigError, match=message):
        BernoulliPrior(probs, n_bits)


def test_bad_inputs_to_methods_raise():
    prior = BernoulliPrior.uniform(3)
    with pytest.raises(ConfigError, match=r"\(\.\.\., 3\)"):
        prior.log_prob(torch.zeros(4, 2, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="0 or 1"):
        prior.log_prob(torch.tensor([[0, 2, 1]]))
    with pytest.raises(ConfigError, match=r"\(\.\.\., 8\)"):
        prior.kl_from(torch.full((4,), 0.25, dtype=torch.float64))
    with pytest.raises(ConfigError, match="shots"):
        prior.sample(0)
