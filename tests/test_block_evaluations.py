"""The cost a block-factorized run reports: local expectations evaluate S·(n + 1) sampled networks
per step (each shot and each of its n one-bit branches) on a minibatch of B examples."""

from __future__ import annotations

import pytest

from qhn.data import get_task
from qhn.experiments.config import RunConfig
from qhn.experiments.runner import run


@pytest.mark.parametrize(
    ("estimator", "per_shot"), [("local-expectation", lambda n: n + 1), ("score-function", None)]
)
def test_evaluations_count_networks_times_minibatch(tmp_path, estimator, per_shot):
    steps, shots, batch = 3, 4, 16
    config = RunConfig(
        task="teacher",
        objective="mle",
        blocks=2,
        shots=shots,
        batch_size=batch,
        estimator=estimator,
        train={"steps": steps},
    )
    summary = run(config, tmp_path / "run", plots=False)
    task = get_task("teacher")
    networks = steps * shots * (per_shot(task.n_bits) if per_shot else 1)
    assert summary["example_evaluations"] == networks * batch
    assert summary["evaluations"] == round(networks * batch / task.n_train)
