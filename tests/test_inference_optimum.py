"""The optimum of the exact objectives over all distributions (``qhn.inference.optimum``), against
enumeration with scipy: ``logsumexp`` and ``rel_entr`` for the ELBO's closed form, SLSQP over the
simplex with an explicitly built Gram matrix for the SELBO, and optimizer runs that must not beat
the optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp, rel_entr

from qhn.backends.statevector import StatevectorBackend
from qhn.bits import index_to_bits
from qhn.circuits import build_ansatz
from qhn.errors import ConfigError
from qhn.hypernetwork import QuantumHypernetwork
from qhn.inference.data_term import DataTerm
from qhn.inference.elbo import ELBO
from qhn.inference.kernels import HammingKernel
from qhn.inference.mle import MLE
from qhn.inference.optimum import (
    exact_objective,
    frank_wolfe_bound,
    free_optimum,
    kl_divergence,
    tempered_posterior,
)
from qhn.inference.priors import BernoulliPrior
from qhn.inference.selbo import SELBO

N_BITS = 4


def _data_term(seed: int, n_examples: float = 30.0, temperature: float = 1.5) -> DataTerm:
    costs = torch.rand(
        2**N_BITS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return DataTerm(N_BITS, n_examples, temperature, cost_vector=costs)


def _prior() -> BernoulliPrior:
    return BernoulliPrior([0.3, 0.5, 0.8, 0.6])


def _enumerated_log_prior(prior: BernoulliPrior) -> np.ndarray:
    """log p(s) bit by bit from π, independent of the prior's own vector."""
    pi = prior.probs.numpy()
    bits = index_to_bits(torch.arange(2**N_BITS), N_BITS).numpy()
    return np.array(
        [sum(math.log(pi[j] if b else 1 - pi[j]) for j, b in enumerate(s)) for s in bits]
    )


def _dirichlet(seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.dirichlet(np.full(2**N_BITS, 0.5)))


@pytest.mark.parametrize("beta", [1.0, 0.4, 3.0])
def test_elbo_optimum_is_beta_log_z_by_enumeration(beta):
    data_term, prior = _data_term(0), _prior()
    ell = data_term.vector.numpy()
    log_p = _enumerated_log_prior(prior)
    log_q, value = tempered_posterior(data_term.vector, prior.log_probs_vector(), beta)
    assert value == pytest.approx(beta * logsumexp(log_p + ell / beta), rel=1e-12)
    assert float(log_q.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    expected_log_q = log_p + ell / beta - logsumexp(log_p + ell / beta)
    np.testing.assert_allclose(log_q.numpy(), expected_log_q, atol=1e-10)
    # the ELBO class's own value at q* reaches the optimum
    f = exact_objective(ELBO(data_term, prior, beta))
    assert float(f(log_q.exp())) == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_elbo_gap_of_any_q_is_beta_kl_to_the_tempered_posterior(seed):
    beta = 0.7
    data_term, prior = _data_term(seed + 10), _prior()
    log_q, value = tempered_posterior(data_term.vector, prior.log_probs_vector(), beta)
    q = _dirichlet(seed)
    q[seed] = 0.0  # an exact zero: 0·log 0 = 0
    q = q / q.sum()
    elbo = float(exact_objective(ELBO(data_term, prior, beta))(q))
    kl_scipy = float(rel_entr(q.numpy(), np.exp(log_q.numpy())).sum())
    assert kl_divergence(q, log_q) == pytest.approx(kl_scipy, rel=1e-10, abs=1e-12)
    assert value - elbo == pytest.approx(beta * kl_scipy, rel=1e-9, abs=1e-10)
    assert elbo < value


def test_kl_divergence_matches_rel_entr_with_zeros():
    q = torch.tensor([0.5, 0.0, 0.25, 0.25], dtype=torch.float64)
    r = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    expected = float(rel_entr(q.numpy(), r.numpy()).sum())
    assert kl_divergence(q, r.log()) == pytest.approx(expected, rel=1e-12)


def test_scipy_over_all_distributions_reaches_but_does_not_beat_minus_log_z():
    data_term, prior = _data_term(3), _prior()
    ell, log_p = data_term.vector.numpy(), _enumerated_log_prior(prior)
    _, value = tempered_posterior(data_term.vector, prior.log_probs_vector(), 1.0)

    def free_energy(z):  # −ELBO of q = softmax(z), written out with numpy
        log_q = z - logsumexp(z)
        q = np.exp(log_q)
        return -(q @ ell - q @ (log_q - log_p))

    def gradient(z):  # ∂/∂z_k of −Σ q (ℓ − log q + log p) = −q_k (h_k − q·h)
        log_q = z - logsumexp(z)
        q = np.exp(log_q)
        h = ell - log_q + log_p
        return -q * (h - q @ h)

    found = minimize(
        free_energy, np.zeros(2**N_BITS), jac=gradient, method="BFGS", options={"gtol": 1e-12}
    )
    assert found.fun >= -value - 1e-12
    assert found.fun == pytest.approx(-value, abs=1e-7)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_trained_circuit_never_beats_minus_log_z(optimizer):
    data_term, prior = _data_term(5), _prior()
    objective = ELBO(data_term, prior, 1.0)
    _, value = tempered_posterior(data_term.vector, prior.log_probs_vector(), 1.0)
    circuit = build_ansatz("hardware_efficient", N_BITS, 2)
    model = QuantumHypernetwork(
        circuit, StatevectorBackend(), "backprop", generator=torch.Generator().manual_seed(1)
    )
    if optimizer == "adam":
        opt = torch.optim.Adam([model.theta], lr=0.05)
        steps, closure_steps = 400, None
    else:
        opt = torch.optim.LBFGS([model.theta], max_iter=20, line_search_fn="strong_wolfe")
        steps, closure_steps = 30, True
    losses = []

    def closure():
        opt.zero_grad()
        loss = objective(model).loss
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    for _ in range(steps):
        if closure_steps:
            opt.step(closure)
        else:
            closure()
            opt.step()
    # every loss ever evaluated is a free energy of some q: none may fall below −log Z
    assert min(losses) >= -value - 1e-9
    assert min(losses) < losses[0]


def test_frank_wolfe_bound_is_above_the_known_optimum():
    data_term, prior = _data_term(7), _prior()
    f = exact_objective(MLE(data_term))
    best = float(data_term.vector.max())  # a linear objective: the optimum is the best vertex
    for seed in range(5):
        assert frank_wolfe_bound(f, _dirichlet(seed)) == pytest.approx(best, abs=1e-12)
    f = exact_objective(ELBO(data_term, prior, 1.0))
    _, value = tempered_posterior(data_term.vector, prior.log_probs_vector(), 1.0)
    for seed in range(5):
        assert frank_wolfe_bound(f, _dirichlet(seed)) >= value


def _gram(kernel: HammingKernel) -> np.ndarray:
    """``k(s, t) = mean_j exp(−h(s, t)/(2σ_j))`` from its definition, pair by pair."""
    bits = index_to_bits(torch.arange(2**N_BITS), N_BITS).numpy().astype(int)
    h = np.abs(bits[:, None, :] - bits[None, :, :]).sum(-1)
    return np.mean([np.exp(-h / (2 * s)) for s in kernel.bandwidths], axis=0)


@pytest.mark.parametrize("lam", [0.5, 20.0])
def test_selbo_free_optimum_matches_slsqp_on_the_simplex(lam):
    data_term, prior, kernel = _data_term(11, n_examples=8.0), _prior(), HammingKernel()
    f = exact_objective(SELBO(data_term, prior, kernel, lam))
    ell, gram = data_term.vector.numpy(), _gram(kernel)
    p = np.exp(_enumerated_log_prior(prior))

    def negative(q):
        d = q - p
        return -(q @ ell - lam * d @ gram @ d)

    def gradient(q):
        return -(ell - 2 * lam * gram @ (q - p))

    size = 2**N_BITS
    reference = minimize(
        negative,
        np.full(size, 1 / size),
        jac=gradient,
        method="SLSQP",
        bounds=[(0, 1)] * size,
        constraints=[{"type": "eq", "fun": lambda q: q.sum() - 1, "jac": lambda q: np.ones(size)}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert reference.success
    found = free_optimum(f, size)
    # both sides of the bracket: ours reaches SLSQP's value, and its certificate bounds SLSQP
    assert found.value == pytest.approx(-reference.fun, abs=1e-6 * (1 + abs(reference.fun)))
    assert found.value <= found.upper + 1e-12
    assert -reference.fun <= found.upper + 1e-9
    assert float(f(found.q)) == pytest.approx(-negative(found.q.numpy()), abs=1e-10)


def test_refusals_are_config_errors():
    data_term, prior = _data_term(0), _prior()
    with pytest.raises(ConfigError, match="beta must be > 0"):
        tempered_posterior(data_term.vector, prior.log_probs_vector(), 0.0)
    with pytest.raises(ConfigError, match="same length"):
        tempered_posterior(data_term.vector, prior.log_probs_vector()[:-1], 1.0)
    with pytest.raises(ConfigError, match="no exact value"):
        exact_objective(SELBO(data_term, prior, lam=1.0, shots=8))
