"""Runs on noisy or sample-only backends also report their trained angles evaluated noiselessly."""

from __future__ import annotations

import pytest
import torch

from qhn.circuits import build_ansatz
from qhn.data import get_task
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import run
from qhn.landscape import compute_landscape
from qhn.train.checkpoint import read_checkpoint


def test_noisy_run_reports_the_exact_noiseless_cost_of_its_final_angles(tmp_path):
    pytest.importorskip("qiskit")
    from qiskit.quantum_info import Statevector

    from qhn.backends.qiskit_backend import to_qiskit

    config = RunConfig.from_dict(
        {
            "task": "teacher-tiny",
            "layers": 1,
            "objective": "selbo",
            "backend": "noisy",
            "shots": 64,
            "noise": {"p1": 0.01, "p2": 0.02, "readout": 0.1},
            "readout_correction": True,
            "train": {"steps": 3},
        }
    )
    summary = run(config, tmp_path / "run", plots=False)
    theta = read_checkpoint(tmp_path / "run")["theta"]
    circuit = build_ansatz("hardware_efficient", 6, 1)
    # Qiskit's exact statevector of the same circuit (measurements removed), bits reversed
    # into our order (qubit 0 most significant).
    qc = to_qiskit(circuit).remove_final_measurements(inplace=False)
    probs = Statevector(qc.assign_parameters(theta.tolist())).probabilities_dict()
    q = torch.zeros(64, dtype=torch.float64)
    for key, value in probs.items():
        q[int(key[::-1], 2)] = value
    landscape = compute_landscape(get_task("teacher-tiny"))
    assert summary["expected_cost_noiseless"] == pytest.approx(
        float(q @ landscape.train_costs), abs=1e-10
    )
    assert summary["mass_optimal_noiseless"] == pytest.approx(
        float(q[landscape.optimal_indices].sum()), abs=1e-10
    )
    # The noisy run's own estimate comes from its 64 noisy shots, not from q.
    assert summary["expected_cost"] != pytest.approx(summary["expected_cost_noiseless"], abs=1e-10)
    assert 0.0 <= summary["acc_bma_test_noiseless"] <= 1.0
