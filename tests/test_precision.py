"""The ``precision`` config key and backend option: validation, wiring, and float32 results
within a bound derived from float32's epsilon of the float64 ones."""

from __future__ import annotations

import math

import pytest
import torch

from qhn.backends import StatevectorBackend, torch_plan
from qhn.backends.registry import get_backend
from qhn.backends.sample_only import SampleOnly
from qhn.circuits import hardware_efficient
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig


def test_precision_defaults_to_float64_and_refuses_others():
    assert RunConfig(task="xor").precision == "float64"
    with pytest.raises(ConfigError, match="precision"):
        RunConfig(task="xor", precision="float16")
    with pytest.raises(ConfigError, match="precision = 'float32' needs backend"):
        RunConfig(task="xor", backend="noisy", precision="float32")


@pytest.mark.parametrize("spec", ["statevector", "sampled"])
def test_registry_builds_the_asked_precision(spec):
    backend = get_backend(spec, precision="float32")
    inner = backend._inner if isinstance(backend, SampleOnly) else backend
    assert isinstance(inner, StatevectorBackend) and inner.dtype == torch.float32
    with pytest.raises(ConfigError, match="precision"):
        get_backend(spec, precision="half")


def test_float32_gradient_close_to_float64():
    # Each of g passes adds at most (2^k + 1)·eps to ‖Δψ‖ (k = 4, see test_statevector_compile);
    # the adjoint walk repeats the g passes on ψ and λ, so ‖Δ∇‖ ≤ 3·g·(2^k + 1)·eps·‖c‖₂·√P
    # bounds it loosely (each partial derivative is an inner product of unit-norm vectors).
    circuit = hardware_efficient(10, 3)
    theta = torch.rand(circuit.n_params, generator=torch.Generator().manual_seed(3)) * 6
    theta = theta.double()
    cost = torch.randn(2**10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads = []
    for dtype in (torch.float64, torch.float32):
        t = theta.clone().requires_grad_(True)
        q = StatevectorBackend(dtype=dtype).probs(circuit, t)
        assert q.dtype == torch.float64
        (q @ cost).backward()
        grads.append(t.grad)
    passes = len(
        torch_plan.plan_passes(circuit, theta[None], torch.float64, torch.complex128, 4)[0]
    )
    bound = (
        3 * passes * 17 * torch.finfo(torch.float32).eps * cost.norm() * math.sqrt(theta.numel())
    )
    gap = (grads[0] - grads[1]).abs().max().item()
    assert 0 < gap <= bound.item(), f"float32 gradient gap {gap:.2e}, bound {bound.item():.2e}"
