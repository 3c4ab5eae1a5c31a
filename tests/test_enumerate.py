"""enumerate_costs against the per-network loop and against batched per-bitstring evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qhn.bits import all_bits, bits_to_index, index_to_bits
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.models import LOSSES, BinaryNetwork, enumerate_costs, enumerate_costs_naive

TINY = [
    {"layer_sizes": (2, 2, 1), "hidden_activation": "sign"},
    {"layer_sizes": (2, 2, 1), "hidden_activation": "relu", "bias": False},
    {"layer_sizes": (1, 3, 1), "hidden_activation": "tanh", "alphabet": (0.0, 1.0)},
    {"layer_sizes": (1, 2, 3), "hidden_activation": "sigmoid"},
    {"layer_sizes": (1, 2, 1), "activation_bit": True, "alphabet_bits": True},
    {"layer_sizes": (2, 2, 1), "activation_bit": True, "layout": "qhn-gaussian"},
    {"layer_sizes": (1, 1, 2), "activation_bit": True, "alphabet_bits": True, "bias": False},
    {"layer_sizes": (1, 2, 1, 2), "hidden_activation": "tanh"},  # deeper: prefix = layer 1
    {"layer_sizes": (1, 2, 1, 1, 1), "hidden_activation": "sign"},
    {
        "layer_sizes": (1, 1, 2, 1),
        "activation_bit": True,
        "alphabet_bits": True,
        "layout": "qhn-gaussian",
    },
    {"layer_sizes": (2, 2, 2, 1), "hidden_activation": "relu", "bias": False},
    {"layer_sizes": (3, 3), "alphabet_bits": True},  # logistic/softmax regression: fallback
]


def _ids(cfg):
    extras = [k for k in ("activation_bit", "alphabet_bits") if cfg.get(k)]
    if cfg.get("bias") is False:
        extras.append("nobias")
    return "-".join(
        ["x".join(map(str, cfg["layer_sizes"])), cfg.get("hidden_activation", ""), *extras]
    )


def _data(net, n_examples, seed):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(scale=1.5, size=(n_examples, net.layer_sizes[0])))
    y = torch.from_numpy(rng.integers(0, net.n_classes, size=n_examples))
    return x, y


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cfg", TINY, ids=_ids)
def test_enumeration_equals_the_naive_loop_on_tiny_networks(cfg, loss):
    net = BinaryNetwork(**cfg)
    x, y = _data(net, 17, seed=net.n_bits)
    costs = enumerate_costs(net, x, y, loss)
    assert costs.shape == (2**net.n_bits,)
    assert costs.dtype == torch.float64
    np.testing.assert_allclose(
        costs.numpy(), enumerate_costs_naive(net, x, y, loss).numpy(), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        costs.numpy(),
        net.mean_loss(all_bits(net.n_bits), x, y, loss).numpy(),
        rtol=1e-12,
        atol=1e-14,
    )


def test_gaussian_network_agrees_with_per_bitstring_evaluation():
    net = BinaryNetwork((2, 4, 1), activation_bit=True, layout="qhn-gaussian")
    x, y = _data(net, 40, seed=5)
    generator = torch.Generator().manual_seed(0)
    subset = torch.randint(0, 2**18, (400,), generator=generator)
    for loss in LOSSES:
        costs = enumerate_costs(net, x, y, loss)
        assert costs.shape == (2**18,)
        expected = net.mean_loss(index_to_bits(subset, 18), x, y, loss)
        np.testing.assert_allclose(costs[subset].numpy(), expected.numpy(), rtol=1e-12)
        naive = enumerate_costs_naive(net, x, y, loss, indices=subset[:50])
        np.testing.assert_allclose(costs[subset[:50]].numpy(), naive.numpy(), rtol=1e-12)


def test_permuting_hidden_units_leaves_the_cost_unchanged():
    # An independent symmetry check: swap hidden units 0 and 2 in the bitstring by name.
    net = BinaryNetwork((2, 4, 1), activation_bit=True, layout="qhn-gaussian")
    x, y = _data(net, 30, seed=6)
    costs = enumerate_costs(net, x, y, "squared_error")
    names = net.describe_bits()
    swap = {"0": "2", "2": "0"}

    def swapped(name):
        if name.startswith("W1"):
            i, j = name[3:-1].split(",")
            return f"W1[{i},{swap.get(j, j)}]"
        if name.startswith(("W2", "b1")):
            j, rest = name[3], name[4:]
            return f"{name[:3]}{swap.get(j, j)}{rest}"
        return name

    permutation = torch.tensor([names.index(swapped(name)) for name in names])
    bits = index_to_bits(
        torch.randint(0, 2**18, (200,), generator=torch.Generator().manual_seed(2)), 18
    )
    np.testing.assert_allclose(
        costs[bits_to_index(bits)].numpy(),
        costs[bits_to_index(bits[:, permutation])].numpy(),
        rtol=1e-12,
    )
    assert not torch.equal(bits, bits[:, permutation])


def test_alphabet_and_activation_bits_on_a_wider_network():
    net = BinaryNetwork((2, 3, 1), activation_bit=True, alphabet_bits=True)  # 16 bits
    x, y = _data(net, 9, seed=7)
    costs = enumerate_costs(net, x, y, "cross_entropy", chunk_size=5)
    subset = torch.randint(0, 2**16, (300,), generator=torch.Generator().manual_seed(1))
    expected = net.mean_loss(index_to_bits(subset, 16), x, y, "cross_entropy")
    np.testing.assert_allclose(costs[subset].numpy(), expected.numpy(), rtol=1e-12)


def test_batched_fallback_for_many_prefixes_agrees(monkeypatch):
    import qhn.models.enumerate as enumeration

    net = BinaryNetwork(**TINY[9])  # a deeper network: its prefix holds the first layer
    x, y = _data(net, 15, seed=11)
    fast = enumerate_costs(net, x, y, "cross_entropy")
    monkeypatch.setattr(enumeration, "_MAX_PREFIX_BITS", 0)
    batched = enumerate_costs(net, x, y, "cross_entropy", chunk_size=100)
    np.testing.assert_allclose(batched.numpy(), fast.numpy(), rtol=1e-12)


def test_thread_setting_is_restored_and_changes_nothing():
    net = BinaryNetwork(**TINY[4])
    x, y = _data(net, 13, seed=10)
    before = torch.get_num_threads()
    one = enumerate_costs(net, x, y, "cross_entropy")
    assert torch.get_num_threads() == before
    kept = enumerate_costs(net, x, y, "cross_entropy", threads=None)
    np.testing.assert_allclose(one.numpy(), kept.numpy(), rtol=1e-13)


@pytest.mark.parametrize(
    ("cfg", "chunk_size"), [(TINY[4], 1), (TINY[4], 3), (TINY[7], 5), (TINY[9], 2), (TINY[11], 100)]
)
def test_chunk_size_changes_nothing(cfg, chunk_size):
    net = BinaryNetwork(**cfg)
    x, y = _data(net, 13, seed=8)
    np.testing.assert_allclose(
        enumerate_costs(net, x, y, "squared_error", chunk_size=chunk_size).numpy(),
        enumerate_costs(net, x, y, "squared_error").numpy(),
        rtol=1e-13,
    )


def test_bad_requests_are_refused_before_computing():
    net = BinaryNetwork((2, 2, 1))
    x, y = _data(net, 5, seed=9)
    with pytest.raises(ConfigError, match="unknown loss 'mse'"):
        enumerate_costs(net, x, y, "mse")
    with pytest.raises(ConfigError, match="x must have shape"):
        enumerate_costs(net, x[:, :1], y, "squared_error")
    with pytest.raises(ConfigError, match="labels out of range"):
        enumerate_costs(net, x, y + 2, "squared_error")
    with pytest.raises(ConfigError, match="chunk_size"):
        enumerate_costs(net, x, y, "squared_error", chunk_size=0)
    with pytest.raises(ConfigError, match="threads"):
        enumerate_costs(net, x, y, "squared_error", threads=0)
    with pytest.raises(MemoryBudgetError, match="budget"):
        enumerate_costs(net, x, y, "squared_error", max_bytes=2**net.n_bits * 8 - 1)
    with pytest.raises(MemoryBudgetError, match="budget"):
        enumerate_costs(net, x, y, "squared_error", max_bytes=2**net.n_bits * 8 + 100)
    with pytest.raises(ConfigError, match="unknown loss"):
        enumerate_costs_naive(net, x, y, "hinge")
