"""``qhn predict`` and ``qhn export``: use the networks a finished run trained.

A run directory is turned back into its networks by :func:`load_trained`: the task is rebuilt
from ``config.toml`` (its fingerprint must match the one the checkpoint recorded, so the data
are those it was trained on), the hypernetwork's θ is read from ``checkpoint.pt``, and the mode
network and the BMA support are chosen exactly as the run's evaluation chose them (the exact
``q``, or the same ``shots`` drawn with the evaluation's seed ``train.seed + 1``).

Feature scaling: the ``csv`` task standardizes with the statistics of its training split, which
the run directory does not store; they are recomputed deterministically from the run's config
(the same file, options and ``data_seed`` give the same stratified split) and checked against
the rebuilt task's training data. ``qhn predict`` therefore takes runs of the ``csv`` task;
``qhn export`` takes any network task (without a recorded scaling, the exported networks expect
inputs scaled as that task's ``x_train``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from qhn.errors import ConfigError

__all__ = ["LoadedRun", "export", "load_trained", "predict", "read_prediction_table"]


@dataclass(frozen=True)
class LoadedRun:
    """A finished run's config, rebuilt task and trained networks."""

    config: Any
    task: Any
    networks: Any


def load_trained(run_dir: str | Path) -> LoadedRun:
    """Rebuild the trained networks of ``run_dir`` (see the module docstring)."""
    from qhn.backends import StatevectorBackend
    from qhn.backends.sample_only import SampleOnly
    from qhn.data.tasks import get_task
    from qhn.experiments.config import load_config
    from qhn.experiments.runner import CONFIG, build_circuit
    from qhn.export import TrainedNetworks
    from qhn.hypernetwork import QuantumHypernetwork
    from qhn.train import CHECKPOINT_FILE, read_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise ConfigError(
            f"{run_dir} is not a run directory (no {CONFIG}); give one qhn train wrote"
        )
    config = load_config(run_dir / CONFIG)
    state = read_checkpoint(run_dir)
    if state is None:
        raise ConfigError(
            f"{run_dir} has no {CHECKPOINT_FILE} (the trained θ); finish the run with "
            f"qhn train --out {run_dir} --resume"
        )
    task = get_task(
        config.task, seed=config.data_seed, temperature=config.temperature, **config.task_options
    )
    if task.network is None:
        raise ConfigError(
            f"task {config.task!r} has no network (a cost-vector task): nothing to predict"
        )
    recorded = state.get("extra", {}).get("task_fingerprint")
    if recorded is not None and recorded != task.fingerprint():
        raise ConfigError(
            f"the data of task {config.task!r} changed since {run_dir} was trained (its "
            "fingerprint differs); restore the training data file"
        )
    backend = StatevectorBackend()
    if config.backend == "sampled":
        backend = SampleOnly(backend)
    model = QuantumHypernetwork(
        build_circuit(config, task.n_bits), backend, config.resolved_estimator
    )
    model.load_state_dict(state["model"])
    scaling = _csv_scaling(config, task) if config.task == "csv" else {}
    with torch.no_grad():
        networks = TrainedNetworks.from_model(
            model,
            task.network,
            shots=config.shots,
            generator=torch.Generator().manual_seed(config.train.seed + 1),
            **scaling,
        )
    return LoadedRun(config, task, networks)


def _csv_scaling(config: Any, task: Any) -> dict[str, Any]:
    """The csv task's ``(μ, σ)`` of its training split, recomputed and checked."""
    from qhn.data.arrays import from_arrays
    from qhn.data.tabular import read_table

    options = task.options
    table = read_table(
        options["path"],
        label=options["label"],
        features=options["features"],
        header=options["header"],
    )
    again = from_arrays(
        table.x,
        table.y,
        seed=config.data_seed,
        test_fraction=options["test_fraction"],
        hidden=options["hidden"],
        activation=options["activation"],
    )
    if not torch.equal(again.x_train, task.x_train):
        raise ConfigError(
            "cannot recompute the feature scaling of the csv task (the training split differs); "
            "this is a bug, please report it"
        )
    return {
        "feature_mean": np.asarray(again.info["feature_mean"]),
        "feature_std": np.asarray(again.info["feature_std"]),
        "classes": list(task.info["class_names"]),
    }


def _training_columns(task: Any) -> tuple[list[str], str | None]:
    """The column names of the csv task's training file and its label column."""
    options = task.options
    with open(options["path"], newline="", encoding="utf-8") as handle:
        first = next((row for row in csv.reader(handle) if any(f.strip() for f in row)), [])
    first = [f.strip() for f in first]
    features = list(task.info["feature_names"])
    if all(name in first for name in features):
        names = first
    else:
        names = [str(i) for i in range(len(first))]
    label = options["label"] if options["label"] is not None else names[-1]
    return names, label


def read_prediction_table(path: Path, task: Any) -> tuple[np.ndarray, list[str] | None]:
    """Features ``(B, d)`` and, when the file has the label column, the raw labels of a CSV in
    the training file's format: with the training header (columns by name, the label optional),
    or without a header, either in the training file's column layout or the features alone."""
    from qhn.data.tabular import _is_number, feature_value

    where = repr(str(path))
    if not path.is_file():
        raise ConfigError(f"--data file not found: {where}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not a UTF-8 text file; give a CSV table") from None
    rows = [
        (n, [f.strip() for f in row])
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if any(f.strip() for f in row)
    ]
    if not rows:
        raise ConfigError(f"{where} is empty")
    features = list(task.info.get("feature_names", []))
    train_names, label = _training_columns(task) if task.name == "csv" else ([], None)
    d = task.network.layer_sizes[0]
    if not features:
        features = [str(i) for i in range(d)]
    first = rows[0][1]
    if not all(_is_number(f) for f in first):
        names, rows = first, rows[1:]
        missing = [f for f in features if f not in names]
        if missing:
            raise ConfigError(f"{where} lacks feature column(s) {', '.join(missing)}")
    elif len(first) == len(train_names):
        names = train_names
    elif len(first) == d:
        names, label = features, None
    else:
        raise ConfigError(
            f"{where} has {len(first)} columns; give the {d} features (optionally with the label "
            "column) in the training file's layout, or a header naming the columns"
        )
    columns = [names.index(f) for f in features]
    label_column = names.index(label) if label is not None and label in names else None
    x = np.empty((len(rows), d), dtype=np.float64)
    labels: list[str] | None = [] if label_column is not None else None
    for r, (number, row) in enumerate(rows):
        if len(row) != len(names):
            raise ConfigError(
                f"{where} line {number}: expected {len(names)} fields, got {len(row)}"
            )
        for c, column in enumerate(columns):
            x[r, c] = feature_value(row[column], f"{where} line {number}, column {names[column]!r}")
        if labels is not None:
            labels.append(row[label_column])
    if not len(rows):
        raise ConfigError(f"{where} has a header but no data rows")
    return x, labels


def _label_codes(labels: list[str], classes: list[str], where: str) -> np.ndarray:
    """Raw labels to class indices (numbers compare by value: ``1`` and ``1.0`` are one class)."""
    from qhn.data.tabular import _is_number

    numeric = all(_is_number(c) for c in classes)
    lookup = {(float(c) if numeric else c): k for k, c in enumerate(classes)}
    codes = []
    for i, value in enumerate(labels):
        key = float(value) if numeric and _is_number(value) else value
        if key not in lookup:
            raise ConfigError(
                f"{where} row {i + 1}: label {value!r} is not a class of the run "
                f"({', '.join(classes)})"
            )
        codes.append(lookup[key])
    return np.asarray(codes, dtype=np.int64)


def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by qhn train.")],
    data: Annotated[Path, typer.Option("--data", help="CSV in the csv task's format.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of probabilities and labels.")] = Path(
        "preds.csv"
    ),
    predictor: Annotated[str, typer.Option(help="bma | mode")] = "bma",
) -> None:
    """Predict with a trained run: class probabilities and labels for every row of --data.

    Features are scaled as in training; when the file has the label column, the accuracy is
    printed.
    """
    from qhn.export import check_predictor
    from qhn.io import atomic_write_text

    check_predictor(predictor)
    loaded = load_trained(run_dir)
    if loaded.config.task != "csv":
        raise ConfigError(
            f"qhn predict reads new data for runs of task 'csv'; task {loaded.config.task!r} "
            "scaled data it generated itself, so new rows cannot be scaled alike; use qhn export "
            "for its networks"
        )
    networks = loaded.networks
    x, labels = read_prediction_table(data, loaded.task)
    proba = networks.predict_proba(x, predictor).numpy()
    names = networks.classes or [str(k) for k in range(proba.shape[1])]
    predicted = proba.argmax(axis=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = [f"p_{name}" for name in names] + ["predicted"]
    writer.writerow([*header, "label"] if labels is not None else header)
    for i, row in enumerate(proba):
        line = [repr(float(p)) for p in row] + [names[predicted[i]]]
        writer.writerow([*line, labels[i]] if labels is not None else line)
    atomic_write_text(out, buffer.getvalue())
    if labels is not None:
        codes = _label_codes(labels, names, repr(str(data)))
        accuracy = float((predicted == codes).mean())
        typer.echo(f"accuracy ({predictor}): {accuracy:.6g} on {len(codes)} rows")
    typer.echo(f"wrote {out} ({len(x)} rows, predictor {predictor})")


def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by qhn train.")],
    format: Annotated[str, typer.Option("--format", help="npz | torch")] = "npz",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default RUN_DIR/export.npz|pt).")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="BMA networks kept (default: the whole support).")
    ] = None,
) -> None:
    """Export the mode network's weights and biases by layer, and the top-k BMA networks with
    their weights, for a plain torch.nn.Sequential (see qhn.export.to_sequential)."""
    from qhn.export import FORMATS

    if format not in FORMATS:
        raise ConfigError(f"unknown --format {format!r}; choose one of: {', '.join(FORMATS)}")
    target = (
        out if out is not None else run_dir / ("export.npz" if format == "npz" else "export.pt")
    )
    loaded = load_trained(run_dir)
    loaded.networks.save(target, format, top_k=top_k)
    kept = len(loaded.networks.bits) if top_k is None else min(top_k, len(loaded.networks.bits))
    typer.echo(f"wrote {target} (mode network and {kept} BMA network(s), format {format})")
