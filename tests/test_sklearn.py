"""QHNClassifier: scikit-learn's estimator checks, the CLI's result from arrays, clear errors;
from_arrays against the csv task, a torch Dataset and a custom cost function."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator
from typer.testing import CliRunner

from qhn.bits import index_to_bits
from qhn.cli import app
from qhn.data import from_arrays, from_cost_function, get_task
from qhn.data.arrays import scale_features
from qhn.errors import ConfigError
from qhn.sklearn import QHNClassifier

#: Checks QHNClassifier is expected to fail, and why (passed to check_estimator).
EXPECTED_FAILED = {
    "check_dtype_object": (
        "bit budget: 10 features and 4 classes make a 44-bit network (one qubit per weight), "
        "over the 22 bits of exact training and beyond any statevector"
    ),
}


def blobs(n_per_class: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs in 2-D around the vertices of a regular polygon."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = 2.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), 2)) + np.array([3.0, -1.0])
    return x, y


def test_check_estimator_passes_all_but_the_documented_bit_budget_check():
    estimator = QHNClassifier(steps=40, lr=0.2, layers=1, random_state=0)
    results = check_estimator(estimator, expected_failed_checks=EXPECTED_FAILED, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(EXPECTED_FAILED)
    passed = sum(r["status"] == "passed" for r in results)
    assert passed >= 45, [(r["check_name"], r["status"]) for r in results]


def test_classifier_reproduces_the_cli_run_on_the_same_data_and_seed(tmp_path):
    x, y = blobs(30, 3, seed=11)
    path = tmp_path / "blobs.csv"
    rows = [
        "x0,x1,label",
        *(f"{float(a)!r},{float(b)!r},{c}" for (a, b), c in zip(x, y, strict=True)),
    ]
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "--task", "csv", "--objective", "elbo", "--layers", "1", "--steps", "25"]
    args += ["--seed", "7", "--no-plots", "--out", str(out), "--set", f"task_options.path={path}"]
    args += ["--set", "task_options.test_fraction=0.3", "--set", "data_seed=7"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())

    clf = QHNClassifier(layers=1, steps=25, test_fraction=0.3, random_state=7).fit(x, y)
    for key in ("expected_cost", "entropy", "acc_bma_test", "acc_mode_test", "nll_bma_test"):
        assert clf.metrics_[key] == summary[key], key
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in clf.history_] == [r["loss"] for r in history]
    # The held-out accuracy, recounted from the classifier's own predictions.
    task = clf.task_
    proba = clf.networks_.proba_scaled(task.x_test, "bma")
    recount = float((proba.argmax(1) == task.y_test).double().mean())
    assert recount == summary["acc_bma_test"]
    assert summary["acc_bma_test"] > 0.8
    assert clf.q_.shape == (2**task.n_bits,) and np.isclose(clf.q_.sum(), 1.0)


def test_string_labels_clone_and_params():
    x, y = blobs(15, 2, seed=3)
    labels = np.array(["cat", "dog"])[y]
    clf = QHNClassifier(layers=1, steps=30, lr=0.2, predictor="mode", random_state=1)
    clf.fit(x, labels)
    assert list(clf.classes_) == ["cat", "dog"]
    assert set(clf.predict(x)) <= {"cat", "dog"}
    # With test_fraction = 0 every row trains; predict agrees with the run's own evaluation.
    assert clf.score(x, labels) == clf.metrics_["acc_mode_train"]
    twin = clone(clf).set_params(steps=5)
    assert twin.get_params()["steps"] == 5 and twin.get_params()["predictor"] == "mode"
    assert not hasattr(twin, "q_")
    again = clone(clf).fit(x, labels)
    assert np.array_equal(again.q_, clf.q_)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]], [0, 1, 0], r"NaN.*row 1, column 0"),
        ([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]], [1, 1, 1], "1 class"),
        ([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]], [0, 1], "3 examples but y has 2 labels"),
        ([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]], None, "requires y"),
    ],
)
def test_invalid_data_is_one_clear_error(x, y, match):
    with pytest.raises(ConfigError, match=match):
        QHNClassifier(steps=1).fit(x, y)


def test_too_many_bits_for_exact_training_names_the_fix():
    x = np.random.default_rng(0).normal(size=(40, 12))
    y = np.arange(40) % 3
    with pytest.raises(ConfigError, match=r"39 bits.*shots"):
        QHNClassifier(steps=1).fit(x, y)


def test_from_arrays_is_the_csv_task_and_a_dataset_gives_the_same_task(tmp_path):
    x, y = blobs(12, 3, seed=5)
    path = tmp_path / "t.csv"
    path.write_text(
        "".join(f"{float(a)!r},{float(b)!r},{c}\n" for (a, b), c in zip(x, y, strict=True))
    )
    csv = get_task("csv", seed=4, path=str(path), hidden=2)
    mine = from_arrays(x, y, seed=4, test_fraction=0.3, hidden=2)
    assert mine.network == csv.network
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(mine, name), getattr(csv, name)), name
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    assert from_arrays(dataset, seed=4, test_fraction=0.3, hidden=2).fingerprint() == (
        mine.fingerprint()
    )
    whole = from_arrays(x, y)
    assert np.allclose(whole.info["feature_mean"], x.mean(0), rtol=0, atol=1e-12)
    assert np.allclose(whole.info["feature_std"], x.std(0), rtol=0, atol=1e-12)
    assert torch.equal(scale_features(whole, x), whole.x_train)


def test_from_cost_function_tabulates_in_bit_order():
    def cost(bits: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
        return (bits.double() * weights).sum(-1)

    task = from_cost_function(cost, 4, n_examples=3)
    for index in range(16):
        bits = [int(b) for b in format(index, "04b")]
        assert float(task.cost_vector[index]) == sum(
            b * w for b, w in zip(bits, [1.0, -2.0, 0.5, 3.0], strict=True)
        )
    assert torch.equal(task.cost(index_to_bits(torch.arange(16), 4)), task.cost_vector)
    assert task.n_train == 3
    with pytest.raises(ConfigError, match="one value per bitstring"):
        from_cost_function(lambda bits: torch.zeros(1), 3)


def test_train_task_on_a_custom_cost_finds_the_brute_force_optimum():
    from qhn.experiments.config import RunConfig
    from qhn.experiments.in_memory import train_task

    weights = torch.tensor([0.7, -1.2, 0.4, -0.3, 0.9], dtype=torch.float64)

    def cost(bits: torch.Tensor) -> torch.Tensor:
        return (bits.double() * weights).sum(-1) + 0.5 * bits[:, 0].double() * bits[:, 1].double()

    task = from_cost_function(cost, 5, n_examples=10)
    brute = min(range(32), key=lambda i: float(cost(index_to_bits(torch.tensor([i]), 5))[0]))
    config = RunConfig(task=task.name, objective="mle", layers=1, train={"steps": 150, "lr": 0.1})
    trained = train_task(task, config)
    assert trained.metrics["mode_index"] == brute
    assert trained.metrics["mass_optimal"] > 0.9
    assert len(trained.history) == 150
