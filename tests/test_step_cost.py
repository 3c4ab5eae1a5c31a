"""Sampled runs out of reach are refused before compute; the step model counts what a step runs."""

from __future__ import annotations

import time

import pytest
import torch

import qhn.experiments.runner as runner
from qhn.backends.statevector import StatevectorBackend
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig, to_toml
from qhn.experiments.step_cost import check_step_cost, predict_step_cost
from qhn.train import fit


def _sampled(**values) -> RunConfig:
    base = {"task": "teacher-tiny", "layers": 1, "objective": "selbo", "shots": 16}
    return RunConfig.from_dict({**base, **values})


@pytest.fixture
def two_threads():
    """The model divides by torch's thread count: fix it, so the predictions do not depend on
    the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_a_27_qubit_sampled_run_is_refused_before_any_simulation(monkeypatch, two_threads):
    def fail(*args, **kwargs):
        raise AssertionError("simulated before refusing")

    monkeypatch.setattr(StatevectorBackend, "probs", fail)
    monkeypatch.setattr(StatevectorBackend, "sample", fail)
    config = _sampled(task="teacher", task_options={"n_inputs": 26}, layers=16, shots=256)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"27 qubits .* s per step .* max_step_seconds = 300"):
        runner.build_run(config)
    assert time.perf_counter() - start < 30  # refused up front, not after a step


def test_raising_the_limit_accepts_it_and_a_small_run_passes(two_threads):
    config = _sampled(task="teacher", task_options={"n_inputs": 26}, layers=16, shots=256)
    circuit = runner.build_circuit(config, 27)
    with pytest.raises(ConfigError, match="raise max_step_seconds"):
        check_step_cost(config, circuit)
    raised = RunConfig.from_dict({**config.to_dict(), "max_step_seconds": 1e6})
    assert check_step_cost(raised, circuit).seconds > 300
    assert "max_step_seconds = 1000000.0" in to_toml(raised)
    assert "max_step_seconds" not in to_toml(config)  # the default leaves run ids unchanged
    assert check_step_cost(_sampled(), runner.build_circuit(_sampled(), 6)).seconds < 1e-3
    assert check_step_cost(RunConfig(task="teacher-tiny"), circuit) is None  # exact: no step model


def test_bad_limits_are_refused():
    for bad in (0, -1.0, float("inf"), "fast", True):
        with pytest.raises(ConfigError, match="max_step_seconds must be a finite number > 0"):
            _sampled(max_step_seconds=bad)


@pytest.mark.parametrize("estimator", ["parameter-shift", "score-function"])
def test_predicted_circuits_match_the_backend_execution_counter(estimator):
    config = _sampled(estimator=estimator, train={"steps": 3})
    built = runner.build_run(config)
    fit(built.model, built.objective, config.train, checkpoint_seconds=None)
    stats = built.model.stats.snapshot()
    per_step = (stats["circuit_executions"]) / 3
    predicted = predict_step_cost(built.circuit, estimator=estimator, shots=16).circuits
    if estimator == "parameter-shift":
        assert predicted == per_step == 2 * built.circuit.n_params + 2
    else:  # a lower bound: the score-function gradient adds probability vectors
        assert predicted <= per_step + stats["probability_vectors"] / 3
