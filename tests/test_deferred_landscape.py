"""A sampled run trains without the landscape and enumerates it only to evaluate."""

from __future__ import annotations

import pytest
import torch

import qhn.experiments.runner as runner
from qhn.bits import bits_to_index
from qhn.data.tasks import get_task
from qhn.experiments.config import RunConfig
from qhn.landscape import compute_landscape
from qhn.models import enumerate_costs_naive
from qhn.train.evaluate import evaluate_with_support


def _record_order(monkeypatch) -> list[str]:
    events: list[str] = []
    compute, fit = runner.compute_landscape, runner.fit

    def compute_landscape(*args, **kwargs):
        events.append("landscape")
        return compute(*args, **kwargs)

    def recorded_fit(*args, **kwargs):
        events.append("fit")
        return fit(*args, **kwargs)

    monkeypatch.setattr(runner, "compute_landscape", compute_landscape)
    monkeypatch.setattr(runner, "fit", recorded_fit)
    return events


def test_sampled_run_enumerates_after_training_with_the_same_summary_keys(tmp_path, monkeypatch):
    events = _record_order(monkeypatch)
    values = {"task": "teacher-tiny", "layers": 1, "train": {"steps": 2}}
    config = RunConfig.from_dict({**values, "objective": "selbo", "shots": 64})
    built = runner.build_run(config)
    assert events == []
    assert built.landscape is not None and events == ["landscape"]  # enumerated when read
    events.clear()
    summary = runner.run(config, tmp_path / "sampled", plots=False)
    assert events == ["fit", "landscape"]

    task = get_task("teacher-tiny")
    train = enumerate_costs_naive(task.network, task.x_train, task.y_train, task.loss)
    optimal = train <= train.min() + 1e-9 + 1e-9 * train.min().abs()
    assert summary["optimum_value"] == pytest.approx(float(train.min()), rel=1e-12)
    assert summary["optimum_degeneracy"] == int(optimal.sum())
    for key in ("expected_cost", "expected_test_cost", "mass_optimal"):
        assert key in summary

    events.clear()
    exact = runner.run(RunConfig.from_dict(values), tmp_path / "exact", plots=False)
    assert events == ["landscape", "fit"]  # exact training reads C(s) of every network
    # Same keys as an exact run but for the two that need the whole distribution.
    assert set(exact) ^ set(summary) == {"entropy", "kl_uniform"}
    assert {"optimum_value", "mass_optimal", "expected_test_cost"} <= set(summary) & set(exact)


def test_sampled_expected_test_cost_without_test_landscape_matches_the_per_network_loop():
    config = RunConfig.from_dict(
        {"task": "teacher-tiny", "layers": 1, "objective": "selbo", "shots": 64}
    )
    built = runner.build_run(config)
    task = built.task
    train_only = compute_landscape(task, with_test=False)
    assert train_only.test_costs is None
    metrics, _ = evaluate_with_support(
        built.model,
        task,
        landscape=train_only,
        shots=64,
        generator=torch.Generator().manual_seed(3),
    )
    bits = built.model.sample(64, generator=torch.Generator().manual_seed(3))
    test = enumerate_costs_naive(
        task.network, task.x_test, task.y_test, task.loss, indices=bits_to_index(bits)
    )
    assert metrics["expected_test_cost"] == pytest.approx(float(test.mean()), rel=1e-12)
