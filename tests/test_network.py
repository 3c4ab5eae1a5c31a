"""BinaryNetwork against a plain NumPy loop that decodes bits by hand from the documented layout."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from qhn.errors import ConfigError, MemoryBudgetError
from qhn.models import (
    ALPHABETS,
    HIDDEN_ACTIVATIONS,
    LOSSES,
    BinaryNetwork,
    data_term,
    per_example_loss,
)

# --------------------------------------------------------------------------- the oracle

# The alphabet bits (b_a, b_b) choose w = b, 2b − 1, 3b − 2, 4b − 3 (METHOD.md §5).
ORACLE_ALPHABETS = {
    (0, 0): (0.0, 1.0),
    (0, 1): (-1.0, 1.0),
    (1, 0): (-2.0, 1.0),
    (1, 1): (-3.0, 1.0),
}


def oracle_decode(cfg: dict, bits: list[int]):
    """Read one bitstring following the layout description in network.py / the issue."""
    sizes = cfg["layer_sizes"]
    fans = list(itertools.pairwise(sizes))
    bias = cfg.get("bias", True)
    cursor = 0

    def take(k):
        nonlocal cursor
        out = bits[cursor : cursor + k]
        cursor += k
        return out

    raw_w, raw_b = [None] * len(fans), [None] * len(fans)
    if cfg.get("layout", "standard") == "standard":
        for layer, (fi, fo) in enumerate(fans):
            raw_w[layer] = take(fi * fo)
            if bias:
                raw_b[layer] = take(fo)
    else:
        for layer, (fi, fo) in enumerate(fans):
            raw_w[layer] = take(fi * fo)
        if bias:
            for layer in reversed(range(len(fans))):
                raw_b[layer] = take(fans[layer][1])
    activation = cfg.get("hidden_activation", "sign")
    if cfg.get("activation_bit", False):
        activation = "sigmoid" if take(1)[0] == 1 else "relu"
    alphabet = cfg.get("alphabet", (-1.0, 1.0))
    if cfg.get("alphabet_bits", False):
        alphabet = ORACLE_ALPHABETS[tuple(take(2))]
    assert cursor == len(bits)
    low, high = alphabet

    def letter(b):
        return high if b == 1 else low

    weights = [
        np.array([letter(b) for b in raw], dtype=float).reshape(fi, fo)
        for raw, (fi, fo) in zip(raw_w, fans, strict=True)
    ]
    biases = [
        np.array([letter(b) for b in raw], dtype=float) if raw is not None else np.zeros(fo)
        for raw, (_, fo) in zip(raw_b, fans, strict=True)
    ]
    return weights, biases, activation


def oracle_activation(name, z):
    return {
        "sign": lambda v: np.where(v >= 0, 1.0, -1.0),
        "relu": lambda v: np.maximum(v, 0.0),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "tanh": np.tanh,
    }[name](z)


def oracle_logits(cfg, bits, x):
    weights, biases, activation = oracle_decode(cfg, bits)
    h = x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ w + b
        if layer < len(weights) - 1:
            h = oracle_activation(activation, h)
    return h


def oracle_proba(logits):
    if logits.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def oracle_mean_loss(cfg, bits, x, y, loss):
    p = oracle_proba(oracle_logits(cfg, bits, x))
    if loss == "cross_entropy":
        return float(np.mean(-np.log(p[np.arange(len(y)), y])))
    if p.shape[1] == 2 and cfg["layer_sizes"][-1] == 1:
        return float(np.mean((p[:, 1] - y) ** 2))
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(((p - onehot) ** 2).sum(axis=1)))


CONFIGS = [
    {"layer_sizes": (3, 2, 1), "hidden_activation": "sign"},
    {"layer_sizes": (3, 2, 1), "hidden_activation": "relu", "bias": False},
    {"layer_sizes": (2, 3, 3), "hidden_activation": "sigmoid"},
    {"layer_sizes": (2, 3, 2, 1), "hidden_activation": "tanh"},
    {"layer_sizes": (2, 2, 2, 3), "hidden_activation": "sign", "alphabet": (0.0, 1.0)},
    {"layer_sizes": (2, 2, 1), "activation_bit": True},
    {"layer_sizes": (2, 2, 1), "hidden_activation": "relu", "alphabet_bits": True},
    {"layer_sizes": (2, 3, 3), "activation_bit": True, "alphabet_bits": True, "bias": False},
    {"layer_sizes": (2, 4, 1), "activation_bit": True, "layout": "qhn-gaussian"},
    {
        "layer_sizes": (2, 2, 2, 3),
        "activation_bit": True,
        "alphabet_bits": True,
        "layout": "qhn-gaussian",
    },
    {"layer_sizes": (4, 1), "alphabet": (-2.0, 1.0)},
    {"layer_sizes": (3, 3), "alphabet_bits": True},
]


def _ids(cfg):
    parts = [
        "x".join(map(str, cfg["layer_sizes"])),
        cfg.get("hidden_activation", ""),
        "nobias" if cfg.get("bias", True) is False else "",
        "act" if cfg.get("activation_bit") else "",
        "alph" if cfg.get("alphabet_bits") else "",
        cfg.get("layout", ""),
    ]
    return "-".join(p for p in parts if p)


def _problem(cfg, n_networks=25, n_examples=11, seed=0):
    net = BinaryNetwork(**cfg)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_networks, net.n_bits)).astype(np.uint8)
    x = rng.normal(scale=1.5, size=(n_examples, cfg["layer_sizes"][0]))
    y = rng.integers(0, net.n_classes, size=n_examples)
    return net, bits, x, y


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_forward_and_proba_match_the_numpy_loop(cfg):
    net, bits, x, _ = _problem(cfg)
    logits = net.forward(torch.from_numpy(bits), torch.from_numpy(x))
    proba = net.predict_proba(bits, x, chunk_size=4)
    assert logits.shape == (len(bits), len(x), cfg["layer_sizes"][-1])
    assert proba.shape == (len(bits), len(x), net.n_classes)
    for s, row in enumerate(bits.tolist()):
        expected = oracle_logits(cfg, row, x)
        np.testing.assert_allclose(logits[s].numpy(), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(proba[s].numpy(), oracle_proba(expected), rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(-1).numpy(), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_mean_loss_matches_the_numpy_loop(cfg, loss):
    net, bits, x, y = _problem(cfg, seed=1)
    costs = net.mean_loss(bits, x, y, loss, chunk_size=3)
    expected = [oracle_mean_loss(cfg, row, x, y, loss) for row in bits.tolist()]
    np.testing.assert_allclose(costs.numpy(), expected, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=_ids)
def test_log_likelihood_is_minus_n_times_mean_cross_entropy(cfg):
    net, bits, x, y = _problem(cfg, seed=2)
    expected = [
        -len(y) * oracle_mean_loss(cfg, row, x, y, "cross_entropy") for row in bits.tolist()
    ]
    np.testing.assert_allclose(net.log_likelihood(bits, x, y).numpy(), expected, rtol=1e-11)
    np.testing.assert_allclose(
        net.log_likelihood(bits, x, y).numpy(),
        (-len(y) * net.mean_loss(bits, x, y, "cross_entropy")).numpy(),
        rtol=1e-13,
    )


def test_every_hidden_activation_is_covered():
    covered = {cfg.get("hidden_activation") for cfg in CONFIGS} | {"relu", "sigmoid"}
    assert set(HIDDEN_ACTIVATIONS) <= covered


def test_chunking_over_networks_and_examples_changes_nothing():
    cfg = {"layer_sizes": (3, 4, 2), "activation_bit": True}
    net, bits, x, y = _problem(cfg, n_networks=30, n_examples=50, seed=3)
    whole = net.mean_loss(bits, x, y, "cross_entropy")
    # A budget below one network on all examples forces chunks of examples as well.
    tiny = net.mean_loss(bits, x, y, "cross_entropy", max_bytes=8 * 3 * 8 * 10)
    np.testing.assert_allclose(tiny.numpy(), whole.numpy(), rtol=1e-13)
    for chunk in (1, 7, 1000):
        np.testing.assert_allclose(
            net.mean_loss(bits, x, y, "cross_entropy", chunk_size=chunk).numpy(),
            whole.numpy(),
            rtol=1e-13,
        )


def test_budget_too_small_for_one_example_is_refused():
    net, bits, x, y = _problem({"layer_sizes": (3, 4, 2)}, seed=4)
    with pytest.raises(MemoryBudgetError, match="budget"):
        net.mean_loss(bits, x, y, "squared_error", max_bytes=16)
    with pytest.raises(MemoryBudgetError, match="budget"):
        net.predict_proba(bits, x, max_bytes=100)


def test_gaussian_layout_matches_the_reference_order():
    net = BinaryNetwork((2, 4, 1), activation_bit=True, layout="qhn-gaussian")
    expected = (
        [f"W1[{i},{j}]" for i in range(2) for j in range(4)]
        + [f"W2[{j},0]" for j in range(4)]
        + ["b2[0]"]
        + [f"b1[{j}]" for j in range(4)]
        + ["act"]
    )
    assert net.n_bits == 18
    assert net.describe_bits() == expected


def test_standard_layout_names_and_decoding():
    net = BinaryNetwork((2, 1, 2), activation_bit=True, alphabet_bits=True)
    assert net.describe_bits() == [
        "W1[0,0]",
        "W1[1,0]",
        "b1[0]",
        "W2[0,0]",
        "W2[0,1]",
        "b2[0]",
        "b2[1]",
        "act",
        "alphabet[0]",
        "alphabet[1]",
    ]
    # alphabet bits 1,0 → {−2, 1}; act bit 1 → sigmoid.
    decoded = net.decode(torch.tensor([[1, 0, 0, 1, 1, 0, 1, 1, 1, 0]]))
    assert decoded.activation_names() == ["sigmoid"]
    assert decoded.weights[0].flatten().tolist() == [1.0, -2.0]
    assert decoded.biases[0].tolist() == [[-2.0]]
    assert decoded.weights[1].flatten().tolist() == [1.0, 1.0]
    assert decoded.biases[1].tolist() == [[-2.0, 1.0]]
    assert decoded.alphabet.tolist() == [[-2.0, 1.0]]
    assert ALPHABETS[2] == (-2.0, 1.0)


def test_activation_bit_is_never_mapped_through_the_alphabet():
    net = BinaryNetwork((1, 1, 1), activation_bit=True, alphabet_bits=True, bias=False)
    for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
        zero, one = net.decode(torch.tensor([[1, 1, 0, a, b], [1, 1, 1, a, b]])).activation_names()
        assert (zero, one) == ("relu", "sigmoid")


def test_sign_of_zero_is_plus_one():
    # Alphabet {0, 1} with the hidden weight bit 0 makes the pre-activation exactly 0.
    net = BinaryNetwork((1, 1, 1), bias=False, hidden_activation="sign", alphabet=(0.0, 1.0))
    logits = net.forward(torch.tensor([[0, 1]]), torch.tensor([[-3.0], [0.0], [2.5]]))
    assert logits.flatten().tolist() == [1.0, 1.0, 1.0]


def test_cross_entropy_is_stable_for_huge_logits():
    net = BinaryNetwork((1, 1), bias=False)  # logit = w·x, w = 2b − 1
    x = torch.tensor([[800.0], [800.0]])
    y = torch.tensor([0, 1])
    per_network = net.mean_loss(torch.tensor([[1]]), x, y, "cross_entropy")
    assert per_network.item() == pytest.approx(400.0, rel=1e-15)  # (800 + e^−800) / 2
    softmax = BinaryNetwork((1, 2), bias=False)  # logits (±800, ±800)
    loss = softmax.mean_loss(torch.tensor([[1, 0]]), x, y, "cross_entropy")
    assert loss.item() == pytest.approx(800.0, rel=1e-15)  # (0 + 1600) / 2


def test_per_example_loss_closed_forms():
    z = torch.tensor([[[0.0], [math.log(3.0)]]], dtype=torch.float64)  # σ = 1/2, 3/4
    y = torch.tensor([1, 0])
    ce = per_example_loss(z, y, "cross_entropy")
    np.testing.assert_allclose(ce.numpy(), [[math.log(2.0), math.log(4.0)]], rtol=1e-15)
    # Far tails: −log(1 − σ(25)) = 25 + log1p(e^−25), which a linearised softplus would round off.
    tail = per_example_loss(
        torch.tensor([[25.0], [-25.0]]).double(), torch.tensor([0, 1]), "cross_entropy"
    )
    expected_tail = 25.0 + math.log1p(math.exp(-25.0))
    np.testing.assert_allclose(tail.numpy(), [expected_tail, expected_tail], rtol=1e-15)
    se = per_example_loss(z, y, "squared_error")
    np.testing.assert_allclose(se.numpy(), [[0.25, 0.5625]], rtol=1e-15)
    logits = torch.tensor(
        [[0.0, math.log(2.0), math.log(5.0)]], dtype=torch.float64
    )  # p = 1/8, 2/8, 5/8
    se3 = per_example_loss(logits, torch.tensor([2]), "squared_error")
    assert se3.item() == pytest.approx((1 / 8) ** 2 + (2 / 8) ** 2 + (3 / 8) ** 2, rel=1e-14)


def test_data_term_is_minus_n_c_over_t():
    assert data_term(torch.tensor(0.25, dtype=torch.float64), 100, 2.0).item() == -12.5
    assert data_term(0.5, 10).item() == -5.0
    with pytest.raises(ConfigError, match="temperature"):
        data_term(0.5, 10, 0.0)
    with pytest.raises(ConfigError, match="n_examples"):
        data_term(0.5, 0)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_sizes": (2, 2, 1), "hidden_activation": "swish"}, "swish.*sign, relu"),
        ({"layer_sizes": (2, 2, 1), "layout": "weird"}, "weird.*standard, qhn-gaussian"),
        ({"layer_sizes": (2, 4, 1), "layout": "qhn-gaussian"}, "activation_bit"),
        ({"layer_sizes": (2, 1), "activation_bit": True}, "hidden layer"),
        ({"layer_sizes": (2,)}, "layer_sizes"),
        ({"layer_sizes": (2, 0, 1)}, "layer_sizes"),
        ({"layer_sizes": [2, 1]}, "tuple"),
        ({"layer_sizes": (2, 1), "alphabet": (1.0, 1.0)}, "alphabet"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BinaryNetwork(**kwargs)


def test_bad_arguments_are_refused():
    net = BinaryNetwork((3, 2, 1))
    bits = torch.zeros(4, net.n_bits, dtype=torch.uint8)
    x = torch.zeros(5, 3)
    y = torch.zeros(5, dtype=torch.int64)
    with pytest.raises(ConfigError, match="unknown loss 'hinge'; choose one of: cross_entropy"):
        net.mean_loss(bits, x, y, "hinge")
    with pytest.raises(ConfigError, match=r"x must have shape \(B, 3\).*\(5, 2\)"):
        net.forward(bits, torch.zeros(5, 2))
    with pytest.raises(ConfigError, match=rf"bits must have shape \(S, {net.n_bits}\)"):
        net.forward(torch.zeros(4, net.n_bits + 1), x)
    with pytest.raises(ConfigError, match="bits must have shape"):
        net.forward(torch.zeros(net.n_bits), x)
    with pytest.raises(ConfigError, match="bits must be 0 or 1"):
        net.forward(torch.full((4, net.n_bits), 2), x)
    with pytest.raises(ConfigError, match=r"labels out of range.*2 classes.*\[0, 2\]"):
        net.mean_loss(bits, x, torch.tensor([0, 1, 2, 0, 1]), "cross_entropy")
    with pytest.raises(ConfigError, match="labels out of range"):
        net.mean_loss(bits, x, torch.tensor([0, -1, 0, 0, 1]), "squared_error")
    with pytest.raises(ConfigError, match="integer"):
        net.mean_loss(bits, x, torch.tensor([0.5, 1, 0, 0, 1]), "squared_error")
    with pytest.raises(ConfigError, match=r"y must have shape \(5,\)"):
        net.log_likelihood(bits, x, torch.zeros(4, dtype=torch.int64))
    softmax = BinaryNetwork((3, 3))
    with pytest.raises(ConfigError, match="3 classes"):
        softmax.mean_loss(torch.zeros(1, softmax.n_bits), x, torch.full((5,), 3), "squared_error")
    with pytest.raises(ConfigError, match="chunk_size"):
        net.mean_loss(bits, x, y, "squared_error", chunk_size=0)
