"""Export → a plain torch.nn.Sequential reproduces predict; qhn predict / qhn export on a run
directory agree with the run's own summary."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from qhn.cli import app
from qhn.export import load_export, sequential_proba, to_sequential
from qhn.models.prediction import class_probabilities
from qhn.sklearn import QHNClassifier


def two_moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    x = np.stack([np.cos(t) + y, np.sin(t) * (1 - 2 * y) + 0.5 * y], axis=1)
    return x * 3 + rng.normal(scale=0.3, size=x.shape) + 5, y


@pytest.mark.parametrize("activation", ["relu", "sign"])
def test_exported_sequential_reproduces_predict(tmp_path, activation):
    x, y = two_moons(60, seed=2)
    clf = QHNClassifier(layers=1, steps=30, lr=0.2, hidden=2, activation=activation)
    clf.set_params(random_state=3).fit(x, y)
    scaled = clf.networks_.scale(x)
    mode_bits = clf.networks_.mode_bits[None]
    with torch.no_grad():
        logits = to_sequential(clf.export())(scaled)
    # Same logits as the binary network itself, bit for bit, and so the same mode predictions.
    assert torch.equal(logits, clf.task_.network.forward(mode_bits, scaled)[0])
    assert torch.equal(class_probabilities(logits), clf.networks_.proba_scaled(scaled, "mode"))
    clf.set_params(predictor="mode")
    assert np.array_equal(clf.predict(x), clf.classes_[class_probabilities(logits).argmax(1)])
    clf.set_params(predictor="bma")
    for fmt, name in (("npz", "e.npz"), ("torch", "e.pt")):
        clf.export(tmp_path / name, fmt)
        loaded = load_export(tmp_path / name)
        assert np.array_equal(loaded["W1"], clf.export()["W1"])
        assert set(np.unique(loaded["bma_W1"])) <= {-1.0, 1.0}
        proba = sequential_proba(loaded, x, "bma").numpy()
        assert np.abs(proba - clf.predict_proba(x)).max() < 1e-12
        assert np.array_equal(proba.argmax(1), clf.predict_proba(x).argmax(1))
    top = clf.export(top_k=1)
    assert top["bma_bits"].shape[0] == 1 and top["bma_weight"][0] == 1.0


def write_csv(path, x, y, header=True):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["a", "b", "label"])
        for row, label in zip(x, y, strict=True):
            writer.writerow([repr(float(row[0])), repr(float(row[1])), ["no", "yes"][label]])


def test_cli_predict_and_export_agree_with_the_run(tmp_path):
    x, y = two_moons(50, seed=4)
    data = tmp_path / "moons.csv"
    write_csv(data, x, y)
    run_dir = tmp_path / "run"
    runner = CliRunner()
    train = ["train", "--task", "csv", "--layers", "1", "--steps", "20", "--seed", "1"]
    train += ["--no-plots", "--out", str(run_dir), "--set", f"task_options.path={data}"]
    result = runner.invoke(app, [*train, "--set", "task_options.hidden=2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())

    preds = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(data), "--out", str(preds)])
    assert result.exit_code == 0, result.output
    n_test = round(0.3 * (y == 0).sum()) + round(0.3 * (y == 1).sum())
    n_train = len(y) - n_test
    expected = (n_train * summary["acc_bma_train"] + n_test * summary["acc_bma_test"]) / len(y)
    shown = float(result.output.split("accuracy (bma): ")[1].split()[0])
    assert shown == pytest.approx(expected, abs=1e-6)
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == len(y)
    p = np.array([[float(r["p_no"]), float(r["p_yes"])] for r in rows])
    assert np.allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)
    assert [r["predicted"] for r in rows] == [["no", "yes"][k] for k in p.argmax(1)]

    # Features only, no header: the same probabilities, no accuracy.
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{float(a)!r},{float(b)!r}\n" for a, b in x))
    out2 = tmp_path / "p2.csv"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(bare), "--out", str(out2)])
    assert result.exit_code == 0 and "accuracy" not in result.output
    again = np.array([[float(v) for v in r[:2]] for r in list(csv.reader(out2.open()))[1:]])
    assert np.array_equal(again, p)

    result = runner.invoke(app, ["export", str(run_dir), "--format", "torch"])
    assert result.exit_code == 0, result.output
    exported = load_export(run_dir / "export.pt")
    assert np.abs(sequential_proba(exported, x, "bma").numpy() - p).max() < 1e-12
    mode = runner.invoke(
        app,
        ["predict", str(run_dir), "--data", str(data), "--predictor", "mode", "--out", str(preds)],
    )
    shown = float(mode.output.split("accuracy (mode): ")[1].split()[0])
    expected = (n_train * summary["acc_mode_train"] + n_test * summary["acc_mode_test"]) / len(y)
    assert shown == pytest.approx(expected, abs=1e-6)
    labels = sequential_proba(exported, x, "mode").numpy().argmax(1)
    assert [r["predicted"] for r in csv.DictReader(preds.open())] == [
        ["no", "yes"][k] for k in labels
    ]


def test_cli_predict_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tmp_path), "--data", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "is not a run directory" in result.output
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "onnx"])
    assert result.exit_code == 2 and "unknown --format 'onnx'" in result.output


def test_cli_predict_refuses_a_task_whose_scaling_it_cannot_recompute(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    args = ["train", "--task", "teacher-tiny", "--layers", "1", "--steps", "2", "--no-plots"]
    assert runner.invoke(app, [*args, "--out", str(run_dir)]).exit_code == 0
    data = tmp_path / "x.csv"
    data.write_text("1,2,3,4,5\n")
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(data)])
    assert result.exit_code == 2 and "task 'teacher-tiny'" in result.output
    assert runner.invoke(app, ["export", str(run_dir)]).exit_code == 0
    exported = load_export(run_dir / "export.npz")
    assert "feature_mean" not in exported
    assert tuple(exported["layer_sizes"]) == (5, 1)
