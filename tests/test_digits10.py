"""digits10 (1,210 bits) and the block run path: data, network, refusals, run directory, resume.

Oracles: scikit-learn's bundled digits, a plain PyTorch forward pass written here
(``torch.nn.functional``), the bit arithmetic 64·16 + 16 + 16·10 + 10 = 1210.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qhn.data.tasks import get_task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig, load_config
from qhn.experiments.runner import build_run, run
from qhn.models.batched import minibatch_cost
from qhn.train import read_history


@pytest.fixture(scope="module")
def task():
    return get_task("digits10", seed=0)


def test_digits10_data_and_bits(task):
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert task.n_bits == 64 * 16 + 16 + 16 * 10 + 10 == 1210
    assert task.x_train.shape[0] + task.x_test.shape[0] == 1797
    x_all = torch.cat([task.x_train, task.x_test]).numpy()
    assert x_all.min() == 0 and x_all.max() == 1
    # Every example is one of scikit-learn's images / 16, with its own label.
    lookup = {
        row.tobytes(): label for row, label in zip(digits.data / 16.0, digits.target, strict=True)
    }
    for x, y in zip(task.x_test.numpy(), task.y_test.numpy(), strict=True):
        assert lookup[x.tobytes()] == y
    # Stratified: every class keeps ~30 % in the test set.
    for c in range(10):
        n_c = int((digits.target == c).sum())
        assert int((task.y_test == c).sum()) == round(0.3 * n_c)
    again = get_task("digits10", seed=0)
    assert torch.equal(again.x_test, task.x_test)
    assert not torch.equal(get_task("digits10", seed=1).y_test, task.y_test)


def _reference_cost(bits, x, y, scale, activation):
    w = 2.0 * bits.double() - 1.0
    w1, b1 = w[:1024].view(64, 16), w[1024:1040]
    w2, b2 = w[1040:1200].view(16, 10), w[1200:1210]
    z1 = x @ w1 + b1
    h = F.relu(z1) if activation == "relu" else torch.where(z1 >= 0, 1.0, -1.0).double()
    return F.cross_entropy(scale * (h @ w2 + b2), y)


@pytest.mark.parametrize("activation", ["relu", "sign"])
def test_batched_cost_matches_a_plain_forward_pass(activation):
    task = get_task("digits10", seed=0, hidden_activation=activation, output_scale=0.2)
    bits = torch.randint(0, 2, (6, 1210), generator=torch.Generator().manual_seed(1))
    bits = bits.to(torch.uint8)
    x, y = task.x_train[:100], task.y_train[:100]
    expected = torch.stack([_reference_cost(b, x, y, 0.2, activation) for b in bits])
    assert torch.allclose(minibatch_cost(task.network, bits, x, y, dtype=torch.float64), expected)
    assert torch.allclose(minibatch_cost(task.network, bits, x, y), expected, atol=1e-5)
    assert torch.allclose(task.network.mean_loss(bits, x, y, "cross_entropy"), expected)


def test_default_output_scale(task):
    assert task.network.output_scale == pytest.approx(1 / 8)
    with pytest.raises(ConfigError, match="output_scale"):
        get_task("digits10", seed=0, output_scale=-1.0)


@pytest.mark.parametrize(
    "extra",
    [{}, {"shots": 8}],
    ids=["exact", "one-circuit-with-shots"],
)
def test_digits10_without_blocks_is_refused_before_compute(extra):
    config = RunConfig(task="digits10", objective="mle", **extra)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        build_run(config)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "\n" not in message and "1210 bits" in message
    assert "blocks = 121" in message and "examples/digits10.toml" in message


@pytest.mark.parametrize(
    "values,match",
    [
        ({"blocks": 2}, "needs shots"),
        ({"blocks": 2, "shots": 4, "estimator": "backprop"}, "cannot train a block"),
        ({"blocks": [3, 0], "shots": 4}, "positive"),
        ({"blocks": 2, "shots": 4, "train": {"optimizer": "lbfgs"}}, "lbfgs"),
        ({"batch_size": 16}, "needs blocks"),
        ({"blocks": 2, "shots": 4, "batch_size": 0}, "batch_size"),
    ],
)
def test_block_config_refusals(values, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(task="teacher", **values)


def test_block_sizes_must_fit_the_task():
    config = RunConfig(task="teacher", blocks=[4, 4], shots=4)
    with pytest.raises(ConfigError, match="sum to 8"):
        build_run(config)


def _tiny(tmp_path, steps, **extra):
    values = {
        "task": "teacher",
        "task_options": {"n_train": 40},
        "objective": "elbo",
        "layers": 1,
        "blocks": 2,
        "shots": 4,
        "batch_size": 16,
        "train": {"steps": steps, "lr": 0.1, "seed": 3},
        **extra,
    }
    return RunConfig.from_dict(values)


def test_block_run_writes_a_run_directory_and_resumes_bit_for_bit(tmp_path):
    whole = run(_tiny(tmp_path, 12), tmp_path / "whole", plots=False)
    for key in ("acc_bma_test", "acc_mode_test", "acc_sample_test", "entropy", "kl_uniform"):
        assert key in whole
    assert whole["estimator"] == "local-expectation" and whole["blocks"] == 2
    assert whole["n_params"] == 2 * 2 * 5  # two 5-qubit blocks, 2 RY layers each
    assert load_config(tmp_path / "whole" / "config.toml").blocks == 2
    part = tmp_path / "part"
    run(_tiny(tmp_path, 5), part, plots=False)
    grown = run(_tiny(tmp_path, 12), part, resume=True, plots=False)
    history = read_history(part / "history.jsonl")
    assert [r["step"] for r in history] == list(range(1, 13))
    reference = read_history(tmp_path / "whole" / "history.jsonl")
    assert [r["loss"] for r in history] == [r["loss"] for r in reference]
    assert grown["acc_bma_test"] == whole["acc_bma_test"]
    saved = json.loads((part / "summary.json").read_text())
    assert saved["steps"] == 12


@pytest.mark.parametrize("objective", ["mle", "selbo"])
@pytest.mark.parametrize("estimator", ["local-expectation", "score-function"])
def test_block_run_objectives_and_estimators(tmp_path, objective, estimator):
    summary = run(
        _tiny(tmp_path, 3, objective=objective, estimator=estimator),
        tmp_path / "out",
        plots=False,
    )
    assert summary["estimator"] == estimator and np.isfinite(summary["final_loss"])
    if objective == "selbo":
        assert summary["kernel_bandwidths_rule"].startswith("median heuristic")


def test_the_shipped_recipe_builds():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "digits10.toml"
    built = build_run(load_config(path))
    assert built.model.n_qubits == 1210 and built.model.sizes == (10,) * 121
    assert built.circuit.n_params == 121 * 2 * 10  # two RY layers around one CZ chain per block
    assert built.model.entangled and built.objective.estimator == "local-expectation"
