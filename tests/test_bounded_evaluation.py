"""Evaluation, predictors and run figures in bounded memory (issue 8).

A broad posterior (the uniform distribution over the 2^13 networks of ``moons``) puts 2048
networks in the support; their probabilities on the 150 × 150 decision-boundary grid would take
0.7 GB. These tests show that evaluation and every figure complete within a small scratch budget,
that chunking changes nothing but rounding (against brute force), that the figures spend nothing
on the backend beyond what the summary counted, and that one failing figure costs no other.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from qhn.bits import index_to_bits
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import build_run
from qhn.models import BinaryNetwork
from qhn.plots import training as training_plots
from qhn.plots.run import write_run_figures
from qhn.train.evaluate import evaluate, evaluate_with_support

HISTORY = [{"step": 1, "loss": 1.0, "expected_cost": 0.9}, {"step": 2, "loss": 0.8}]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = {"curves.png", "top_bitstrings.png", "decision_boundary.png"}


def _uniform_run(tmp_path, **options):
    """A moons run whose product circuit at θ = π/2 gives q(s) = 2^−13 for every network."""
    config = RunConfig.from_dict({"task": "moons", "objective": "elbo", "layers": 0, **options})
    built = build_run(config, cache_dir=tmp_path / "cache")
    assert built.circuit.n_params == built.task.n_bits == 13
    with torch.no_grad():
        built.model.theta.fill_(math.pi / 2)
    return built


# ----------------------------------------------------------------------------- brute force


def _reference_proba(network: BinaryNetwork, bits, x) -> np.ndarray:
    """``p(k | x_b, s)`` ``(S, B, C)`` from the unchunked forward pass, in numpy."""
    z = network.forward(torch.as_tensor(bits), torch.as_tensor(x)).numpy()
    if z.shape[-1] == 1:
        p1 = 1 / (1 + np.exp(-z[..., 0]))
        return np.stack([1 - p1, p1], axis=-1)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference_metrics(network, bits, weights, mode_row, x, y) -> dict[str, float]:
    """The predictors' metrics by brute force over the whole ``(K, B, C)`` tensor."""
    proba = _reference_proba(network, bits, x)
    y = np.asarray(y, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    picked = np.take_along_axis(proba, y[None, :, None], axis=2)[..., 0]
    tiny = np.finfo(np.float64).tiny
    acc_each = (proba.argmax(-1) == y).mean(-1)
    nll_each = -np.log(np.maximum(picked, tiny)).mean(-1)
    bma = np.einsum("k,kbc->bc", weights, proba)
    return {
        "acc_mode": acc_each[mode_row],
        "nll_mode": nll_each[mode_row],
        "acc_sample": weights @ acc_each,
        "nll_sample": weights @ nll_each,
        "acc_bma": (bma.argmax(-1) == y).mean(),
        "nll_bma": -np.log(np.maximum(bma[np.arange(len(y)), y], tiny)).mean(),
    }


def _spy_blocks(monkeypatch, network_class=BinaryNetwork):
    """Record ``(networks, examples)`` of every block the network evaluates."""
    blocks: list[tuple[int, int]] = []
    original = network_class._logits

    def spy(self, decoded, x):
        blocks.append((len(decoded.activation), x.shape[0]))
        return original(self, decoded, x)

    monkeypatch.setattr(network_class, "_logits", spy)
    return blocks


def _activation_bytes(network: BinaryNetwork, networks: int, examples: int) -> int:
    """A lower bound on what a block must hold: every unit's value for every pair, float64."""
    units = sum(network.layer_sizes[1:]) + network.n_classes
    return networks * examples * units * 8


# ----------------------------------------------------------------------------- the report


def test_uniform_moons_posterior_evaluates_and_plots_within_a_small_budget(tmp_path, monkeypatch):
    built = _uniform_run(tmp_path)
    task, network = built.task, built.task.network
    budget = 2**22  # 4 MiB, against 737 MB for the whole probability tensor of the figure
    metrics, support = evaluate_with_support(
        built.model, task, landscape=built.landscape, max_bytes=budget
    )
    # q is uniform: the support is capped at 2048 networks of equal weight holding 2048 / 2^13.
    assert metrics["support_size"] == 2048
    assert metrics["support_mass"] == pytest.approx(2048 / 2**13, abs=1e-12)
    np.testing.assert_allclose(support.weights.numpy(), 1 / 2048, rtol=1e-12)
    # KL(q ‖ uniform) = n ln 2 − H(q) = 0 exactly (a float32 ln 2 left 2.5e-8 here).
    assert abs(metrics["kl_uniform"]) < 1e-12
    # Predictors against brute force over the full (2048, B, 2) tensor.
    bits = index_to_bits(support.indices, task.n_bits)
    mode_row = int((support.indices == metrics["mode_index"]).nonzero()[0, 0])
    for split, x, y in (("train", task.x_train, task.y_train), ("test", task.x_test, task.y_test)):
        expected = _reference_metrics(network, bits, support.weights, mode_row, x, y)
        for key, value in expected.items():
            assert metrics[f"{key}_{split}"] == pytest.approx(value, rel=1e-12, abs=1e-12), key

    # The figure's grid: the full probability tensor is over any sane budget …
    grid = torch.zeros(150 * 150, 2, dtype=torch.float64)
    with pytest.raises(MemoryBudgetError, match="2048 networks on 22500 examples"):
        network.predict_proba(bits, grid)
    # … and the figures never ask for it: every block they evaluate fits the budget.
    blocks = _spy_blocks(monkeypatch)
    stats_before = built.model.stats.snapshot()
    written = write_run_figures(tmp_path, built, HISTORY, support=support, max_bytes=budget)
    assert {p.name for p in written} == FIGURES
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert sum(n * b for n, b in blocks) == 2048 * 150 * 150
    assert max(_activation_bytes(network, n, b) for n, b in blocks) <= budget
    # Given the evaluation's support, the figures spend nothing on the backend.
    assert built.model.stats.snapshot() == stats_before


def test_sampled_run_figures_reuse_the_evaluation_shots(tmp_path):
    built = _uniform_run(tmp_path, objective="selbo", backend="sampled", shots=256)
    metrics, support = evaluate_with_support(
        built.model,
        built.task,
        landscape=built.landscape,
        shots=256,
        generator=torch.Generator().manual_seed(1),
        max_bytes=2**20,
    )
    assert metrics["shots"] == 256 and metrics["circuit_executions"] == 1
    # 256 draws from 8192 equally likely networks: almost all distinct, each weighing 1/256.
    assert metrics["support_size"] > 240
    assert float(support.weights.sum()) == pytest.approx(1, abs=1e-12)
    assert support.probs is None
    written = write_run_figures(tmp_path, built, HISTORY, support=support, max_bytes=2**20)
    assert {p.name for p in written} == FIGURES
    assert built.model.stats.snapshot() == {
        "circuit_executions": 1,
        "shots": 256,
        "probability_vectors": 0,
    }


def test_figures_without_a_support_count_what_they_spend(tmp_path, caplog):
    built = _uniform_run(tmp_path, objective="selbo", backend="sampled", shots=64)
    with caplog.at_level(logging.INFO, logger="qhn.plots.run"):
        written = write_run_figures(tmp_path, built, HISTORY, max_bytes=2**20)
    assert {p.name for p in written} == FIGURES
    # The run's shots, once, in the model's own counters (nothing is drawn off the books).
    assert built.model.stats.snapshot() == {
        "circuit_executions": 1,
        "shots": 64,
        "probability_vectors": 0,
    }
    assert "'shots': 64" in caplog.text


def test_exact_figures_without_a_support_use_one_probability_vector(tmp_path):
    built = _uniform_run(tmp_path)
    written = write_run_figures(tmp_path, built, HISTORY)
    assert {p.name for p in written} == FIGURES
    assert built.model.stats.snapshot() == {
        "circuit_executions": 1,
        "shots": 0,
        "probability_vectors": 1,
    }


def test_a_failing_figure_is_logged_and_the_others_are_written(tmp_path, monkeypatch, caplog):
    built = _uniform_run(tmp_path)
    _, support = evaluate_with_support(built.model, built.task, landscape=built.landscape)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(training_plots, "top_bitstrings", broken)
    with caplog.at_level(logging.WARNING, logger="qhn.plots.run"):
        written = write_run_figures(tmp_path, built, [], support=support)
    # The empty history has no curves to draw; the broken figure raises; the third survives.
    assert [p.name for p in written] == ["decision_boundary.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["decision_boundary.png"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("top_bitstrings.png" in m and "renderer exploded" in m for m in warnings)
    assert any("curves.png" in m and "none of the metrics" in m for m in warnings)


# ----------------------------------------------------------------------------- chunked == whole

NETWORKS = [
    {"layer_sizes": (2, 3, 1), "hidden_activation": "relu"},
    {"layer_sizes": (3, 4, 3), "hidden_activation": "tanh"},
    {"layer_sizes": (2, 4, 1), "activation_bit": True, "layout": "qhn-gaussian"},
    {"layer_sizes": (4, 2, 2, 2), "alphabet_bits": True, "activation_bit": True},
]


def _problem(cfg, seed, n_networks=37, n_examples=53):
    network = BinaryNetwork(**cfg)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_networks, network.n_bits)).astype(np.uint8)
    x = rng.normal(scale=1.5, size=(n_examples, cfg["layer_sizes"][0]))
    y = rng.integers(0, network.n_classes, size=n_examples)
    weights = rng.random(n_networks)
    return network, bits, weights / weights.sum(), x, y


@pytest.mark.parametrize("cfg", NETWORKS, ids=lambda c: "x".join(map(str, c["layer_sizes"])))
def test_chunked_sums_match_brute_force(cfg, monkeypatch):
    network, bits, weights, x, y = _problem(cfg, seed=len(cfg))
    proba = _reference_proba(network, bits, x)
    tiny = np.finfo(np.float64).tiny
    expected_average = np.einsum("k,kbc->bc", weights, proba)
    expected_correct = (proba.argmax(-1) == y).sum(-1)
    # ±1 weights tie class logits often; rounding (e.g. 1 vs 0.9999999999999999) may break such
    # a tie either way, so a tied pair may count either way.
    top_two = np.sort(proba, -1)[..., -2:]
    tied = (top_two[..., 1] - top_two[..., 0] < 1e-12).sum(-1)
    assert tied.sum() <= 0.25 * tied.size * len(x)
    picked = np.take_along_axis(proba, y[None, :, None], axis=2)[..., 0]
    expected_nll = -np.log(np.maximum(picked, tiny)).sum(-1)
    # One network on a few examples per block; several networks per block; everything at once.
    per_pair = 8 * (3 * (sum(cfg["layer_sizes"][1:]) + network.n_classes) + 4)
    for max_bytes, chunk_size in ((per_pair * 5, None), (per_pair * 53 * 4, 3), (2**28, None)):
        blocks = _spy_blocks(monkeypatch)
        sums = network.prediction_sums(
            bits, weights, x, y, max_bytes=max_bytes, chunk_size=chunk_size
        )
        monkeypatch.undo()
        assert sum(n * b for n, b in blocks) >= len(bits) * len(x)
        assert max(_activation_bytes(network, n, b) for n, b in blocks) <= max_bytes
        np.testing.assert_allclose(sums.average.numpy(), expected_average, rtol=1e-12, atol=1e-15)
        assert np.all(np.abs(sums.correct.numpy() - expected_correct) <= tied)
        np.testing.assert_allclose(sums.nll.numpy(), expected_nll, rtol=1e-12)
        average = network.average_proba(bits, weights, x, max_bytes=max_bytes)
        np.testing.assert_allclose(average.numpy(), expected_average, rtol=1e-12, atol=1e-15)


def test_predict_proba_chunks_examples_and_refuses_only_an_oversized_result():
    network, bits, _, x, _ = _problem(NETWORKS[1], seed=5, n_networks=1, n_examples=200)
    whole = _reference_proba(network, bits, x)
    result_bytes = 1 * 200 * 3 * 8
    # The result fits, one network on all 200 examples does not: examples are chunked.
    chunked = network.predict_proba(bits, x, max_bytes=result_bytes)
    np.testing.assert_allclose(chunked.numpy(), whole, rtol=1e-12, atol=1e-15)
    with pytest.raises(MemoryBudgetError, match=r"1 networks on 200 examples need 4,800 bytes"):
        network.predict_proba(bits, x, max_bytes=result_bytes - 1)


def test_weights_must_be_one_per_network():
    network, bits, weights, x, y = _problem(NETWORKS[0], seed=6)
    with pytest.raises(ConfigError, match=r"weights must be real with shape \(37,\)"):
        network.average_proba(bits, weights[:-1], x)
    with pytest.raises(MemoryBudgetError, match="one network on one example"):
        network.prediction_sums(bits, weights, x, y, max_bytes=8)


@pytest.mark.parametrize(
    "options",
    [{}, {"objective": "selbo", "backend": "sampled", "shots": 300}],
    ids=["exact", "sampled"],
)
def test_evaluate_is_the_same_under_any_budget(tmp_path, options):
    config = RunConfig.from_dict(
        {"task": "teacher-tiny", "objective": "elbo", "layers": 1, **options}
    )
    built = build_run(config, cache_dir=tmp_path)
    shots = options.get("shots")
    results = [
        evaluate(
            built.model,
            built.task,
            landscape=built.landscape,
            shots=shots,
            generator=torch.Generator().manual_seed(7),
            max_bytes=max_bytes,
        )
        for max_bytes in (2**28, 4096)
    ]
    whole, tiny = (
        {
            k: v
            for k, v in r.items()
            if k not in ("circuit_executions", "shots", "probability_vectors")
        }
        for r in results
    )
    assert whole.keys() == tiny.keys()
    for key, value in whole.items():
        assert tiny[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
