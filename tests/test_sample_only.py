"""SampleOnly: a simulator seen through the hardware interface."""

from __future__ import annotations

import math

import pytest
import torch

from qhn.backends import (
    Backend,
    Capabilities,
    ExactBackend,
    SampleOnly,
    StatevectorBackend,
    require_exact,
)
from qhn.circuits import hardware_efficient, qhn_reference
from qhn.errors import CapabilityError


@pytest.fixture
def inner() -> StatevectorBackend:
    return StatevectorBackend()


def test_hides_probabilities(inner):
    wrapped = SampleOnly(inner)
    assert not hasattr(wrapped, "probs")
    assert not hasattr(wrapped, "state")
    assert isinstance(wrapped, Backend)
    assert not isinstance(wrapped, ExactBackend)
    assert wrapped.capabilities == Capabilities(
        exact_probs=False, backprop=False, max_qubits=inner.capabilities.max_qubits
    )
    assert wrapped.inner is inner
    assert "SampleOnly" in repr(wrapped) and repr(inner) in repr(wrapped)


def test_require_exact_refuses(inner):
    assert require_exact(inner, "the ELBO") is inner
    with pytest.raises(CapabilityError, match="the ELBO needs exact probabilities"):
        require_exact(SampleOnly(inner), "the ELBO")


@pytest.mark.parametrize("batched", [False, True])
def test_samples_equal_the_inner_backend_for_the_same_seed(inner, batched):
    circuit = qhn_reference(5, 1)
    shape = (3, circuit.n_params) if batched else (circuit.n_params,)
    params = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = inner.sample(circuit, params, 200, generator=torch.Generator().manual_seed(42))
    got = SampleOnly(inner).sample(
        circuit, params, 200, generator=torch.Generator().manual_seed(42)
    )
    assert got.dtype == torch.uint8
    assert got.shape == ((3, 200, 5) if batched else (200, 5))
    assert torch.equal(got, expected)


def test_samples_follow_the_born_rule(inner):
    # Product state: P(s_q = 1) = sin²(θ_q / 2), a closed form independent of our simulator.
    circuit = hardware_efficient(3, 0)
    theta = torch.tensor([0.4, 1.7, 2.8], dtype=torch.float64, requires_grad=True)
    shots = 20000
    bits = SampleOnly(inner).sample(
        circuit, theta, shots, generator=torch.Generator().manual_seed(5)
    )
    assert not bits.requires_grad
    frequency = bits.to(torch.float64).mean(0)
    p = torch.sin(theta.detach() / 2) ** 2
    se = torch.sqrt(p * (1 - p) / shots)
    assert ((frequency - p).abs() <= 4 * se).all(), (frequency, p)
    assert math.isclose(float(se.max()), 0.0035, rel_tol=0.2)  # the check has teeth
