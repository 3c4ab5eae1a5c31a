"""The no-hidden-layer enumeration (outer sums of two bit halves) against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qhn.bits import all_bits
from qhn.errors import MemoryBudgetError
from qhn.models import LOSSES, BinaryNetwork, enumerate_costs, enumerate_costs_naive
from qhn.models.batched import ScaledBinaryNetwork

LINEAR = [
    {"layer_sizes": (5, 1)},  # symmetric alphabet: the complement shortcut for cross-entropy
    {"layer_sizes": (4, 1), "bias": False},
    {"layer_sizes": (3, 1), "alphabet_bits": True},  # one symmetric alphabet of four
    {"layer_sizes": (4, 1), "alphabet": (0.5, 2.0)},
    {"layer_sizes": (4, 1), "alphabet": (-2.0, 2.0)},
    {"layer_sizes": (2, 3)},  # softmax
    {"layer_sizes": (1, 2), "alphabet_bits": True, "bias": False},
    {"layer_sizes": (1, 1), "bias": False},  # a single bit
]


def _data(net, n_examples, seed, scale=1.5):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(scale=scale, size=(n_examples, net.layer_sizes[0])))
    y = torch.from_numpy(rng.integers(0, net.n_classes, size=n_examples))
    return x, y


def _ids(cfg):
    return "x".join(map(str, cfg["layer_sizes"])) + "".join(
        f"-{k}={v}" for k, v in cfg.items() if k != "layer_sizes"
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 16])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cfg", LINEAR, ids=_ids)
def test_equals_the_per_network_loop(cfg, loss, chunk_size):
    net = BinaryNetwork(**cfg)
    x, y = _data(net, 23, seed=net.n_bits)
    costs = enumerate_costs(net, x, y, loss, chunk_size=chunk_size)
    assert costs.shape == (2**net.n_bits,) and costs.dtype == torch.float64
    naive = enumerate_costs_naive(net, x, y, loss).numpy()
    np.testing.assert_allclose(costs.numpy(), naive, rtol=1e-12, atol=1e-14)


def test_complement_shortcut_stays_accurate_at_large_logits():
    # Logits up to ~100: C(s̄) = C(s) − mean(u) cancels, so its error is ~ε·(C(s) + |mean u|),
    # i.e. ~ 64 · 2.2e-16 · 100 ≈ 1.4e-12 absolute with a margin of 64 ulps for the sums.
    net = BinaryNetwork((6, 1))
    x, _ = _data(net, 31, seed=3, scale=15.0)
    teacher = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    y = (x @ teacher > 0).long()  # the teacher costs ~0 and its complement ~100
    costs = enumerate_costs(net, x, y, "cross_entropy", chunk_size=8).numpy()
    naive = enumerate_costs_naive(net, x, y, "cross_entropy").numpy()
    bound = 64 * np.finfo(np.float64).eps * (naive.max() + 1.0)
    assert naive.max() > 20.0 and naive.min() < 0.1  # both tails are exercised
    np.testing.assert_allclose(costs, naive, rtol=0, atol=bound)


def test_float32_within_its_epsilon():
    # float32 sums of d + 1 terms of size |x|·|w| ≤ ~6, then a loss of that size: a few hundred
    # float32 ulps of the largest cost bound the difference to the float64 loop.
    net = BinaryNetwork((5, 1), alphabet_bits=True)
    x, y = _data(net, 40, seed=4)
    costs = enumerate_costs(net, x.float(), y, "cross_entropy")
    assert costs.dtype == torch.float32
    naive = enumerate_costs_naive(net, x, y, "cross_entropy").numpy()
    bound = 256 * np.finfo(np.float32).eps * naive.max()
    np.testing.assert_allclose(costs.double().numpy(), naive, rtol=0, atol=bound)


def test_output_scale_is_applied():
    net = ScaledBinaryNetwork((3, 2), output_scale=0.25)
    x, y = _data(net, 19, seed=5)
    expected = net.mean_loss(all_bits(net.n_bits), x, y, "cross_entropy")
    costs = enumerate_costs(net, x, y, "cross_entropy", chunk_size=5)
    np.testing.assert_allclose(costs.numpy(), expected.numpy(), rtol=1e-12)
    plain = enumerate_costs(BinaryNetwork((3, 2)), x, y, "cross_entropy")
    assert not torch.allclose(costs, plain)


def test_output_scale_is_applied_with_a_hidden_layer_and_by_the_naive_loop():
    """The hidden-layer fast path and the per-network loop scale the logits as the network's own
    forward pass does (``ScaledBinaryNetwork``)."""
    net = ScaledBinaryNetwork((2, 2, 2), output_scale=0.3)
    x, y = _data(net, 23, seed=8)
    expected = net.mean_loss(all_bits(net.n_bits), x, y, "cross_entropy").numpy()
    np.testing.assert_allclose(
        enumerate_costs(net, x, y, "cross_entropy").numpy(), expected, rtol=1e-12
    )
    np.testing.assert_allclose(
        enumerate_costs_naive(net, x, y, "cross_entropy").numpy(), expected, rtol=1e-12
    )


def test_a_budget_without_room_for_one_network_is_refused_before_computing(monkeypatch):
    import qhn.models.enumerate_linear as linear

    def fail(*args, **kwargs):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr(linear, "_contributions", fail)
    net = BinaryNetwork((4, 1))
    x, y = _data(net, 1000, seed=6)
    with pytest.raises(MemoryBudgetError, match="bytes of scratch"):
        enumerate_costs(net, x, y, "cross_entropy", max_bytes=2**net.n_bits * 8 + 1000)
