"""The sampled MPS gradient estimators are unbiased: the mean over many independent estimates
matches the exact gradient (autograd through the statevector simulator) within its standard
error, and an estimator with a known bias fails the same test."""

from __future__ import annotations

import math

import pytest
import torch

from qhn.backends.mps import MPSBackend
from qhn.backends.statevector import StatevectorBackend
from qhn.bits import bits_to_index
from qhn.circuits import hardware_efficient, product, qhn_reference
from qhn.errors import ConfigError
from qhn.gradients.mps_estimators import evaluations, local_expectation, mps_score_function

MPS = MPSBackend()
REPEATS = 400
#: |z| bound per gradient component. Over ~100 components in this file a standard normal
#: exceeds 4.5 with probability ~1e-3 in total; the seeds are fixed, so the test is deterministic.
Z_MAX = 4.5


def _problem(circuit, seed):
    """Angles, a random cost over all bitstrings, and the exact gradient of ``E_q[cost]``.

    Angles are redrawn until every outcome has ``q(s) ≥ 1e-4``: near ``q(s) → 0`` the score
    ``∇ log q ~ q^(−1/2)`` makes the score-function estimate heavy-tailed (unbiased, but a rarely
    drawn outcome carries a large share of the gradient), and a z-test on 3,200 draws would not
    see it."""
    g = torch.Generator().manual_seed(seed)
    while True:
        theta = (torch.rand(circuit.n_params, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
        if float(StatevectorBackend().probs(circuit, theta).min()) >= 1e-4:
            break
    cost = torch.randn(2**circuit.n_qubits, generator=g, dtype=torch.float64)
    t = theta.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(StatevectorBackend().probs(circuit, t) @ cost, t)
    return theta, cost, exact


def _estimates(estimator, circuit, theta, f, shots, seed):
    """REPEATS independent estimates in one batched call: every row samples on its own."""
    batch = theta.expand(REPEATS, -1).clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    value = estimator(MPS, circuit, batch, f, shots=shots, generator=gen)
    (grads,) = torch.autograd.grad(value.sum(), batch)
    return grads


def _max_z(grads, exact):
    mean, sem = grads.mean(0), grads.std(0) / math.sqrt(grads.shape[0])
    # Parameters the distribution does not depend on (e.g. a final RZ) have exact gradient 0
    # and estimates that are 0 up to rounding.
    flat = sem < 1e-9
    assert float((mean - exact)[flat].abs().sum()) < 1e-12
    return float(((mean - exact)[~flat] / sem[~flat]).abs().max())


@pytest.mark.parametrize("estimator", [local_expectation, mps_score_function])
@pytest.mark.parametrize(
    "circuit",
    [product(6), hardware_efficient(6, 2, ("ry", "rz"), "cz", "chain"), qhn_reference(5, 1)],
    ids=lambda c: getattr(c, "name", str(c)),
)
def test_the_estimators_are_unbiased(estimator, circuit):
    theta, cost, exact = _problem(circuit, seed=circuit.n_params)
    grads = _estimates(estimator, circuit, theta, lambda b: cost[bits_to_index(b)], 8, seed=1)
    assert _max_z(grads, exact) < Z_MAX


def test_keeping_the_suffix_after_a_flip_is_biased_and_the_test_sees_it():
    # The mean-field two-point difference applied to an entangled MPS: flipping s_i without
    # re-sampling the suffix. Its mean is not the gradient; the same z-test must reject it.
    circuit = hardware_efficient(6, 2)
    theta, cost, exact = _problem(circuit, seed=3)
    n = circuit.n_qubits
    batch = theta.expand(REPEATS, -1).clone().requires_grad_(True)
    with torch.no_grad():
        bits = MPS.state(circuit, batch).sample(8, torch.Generator().manual_seed(1))
    flips = bits.unsqueeze(-2) ^ torch.eye(n, dtype=torch.uint8)  # (B, S, n, n)
    f = cost[bits_to_index(bits)].unsqueeze(-1)
    g = cost[bits_to_index(flips)]
    delta = torch.where(bits.bool(), f - g, g - f)
    surrogate = (MPS.state(circuit, batch).conditionals(bits) * delta).sum(-1).mean(-1)
    (grads,) = torch.autograd.grad(surrogate.sum(), batch)
    assert _max_z(grads, exact) > 10


def test_the_value_is_the_honest_sample_mean_and_bad_inputs_are_refused():
    circuit = hardware_efficient(4, 1)
    theta, cost, _ = _problem(circuit, seed=0)
    value = local_expectation(
        MPS,
        circuit,
        theta,
        lambda b: cost[bits_to_index(b)],
        shots=5,
        generator=torch.Generator().manual_seed(0),
    )
    bits = MPS.state(circuit, theta).sample_from_uniforms(
        torch.rand(4, 1, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    assert torch.allclose(value, cost[bits_to_index(bits)].mean())
    assert evaluations("local-expectation", 1210, 10) == 12_110
    with pytest.raises(ConfigError, match="shots >= 2"):
        mps_score_function(MPS, circuit, theta, lambda b: b.sum(-1), shots=1)
    with pytest.raises(ConfigError, match="needs the 'mps' backend"):
        local_expectation(StatevectorBackend(), circuit, theta, lambda b: b.sum(-1), shots=4)
