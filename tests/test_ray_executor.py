"""The Ray executor: a 2-point grid on a local Ray instance gives the same runs as the local
executor (timing fields aside)."""

from __future__ import annotations

import json

import pytest

from qhn.experiments.executors import run_sweep
from qhn.experiments.sweep import expand, loads_sweep
from qhn.train import read_history

try:
    import ray  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip(
        "ray is not installed (pip install 'qhn[ray]'); the Ray executor cannot be tested",
        allow_module_level=True,
    )

SPEC = """
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 60
n_test = 60
[base.train]
steps = 15
[grid]
objective = ["mle", "selbo"]
layers = [1]
"""
TIMING = {"train_seconds", "wall_seconds"}


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING}


def test_ray_and_local_executors_give_identical_runs(tmp_path):
    spec = loads_sweep(SPEC)
    points = expand(spec)
    local = run_sweep(spec, tmp_path / "local", executor="local", workers=1, plots=False)
    remote = run_sweep(spec, tmp_path / "ray", executor="ray", workers=2, plots=False)
    assert local.ok and remote.ok
    assert sorted(remote.completed) == sorted(p.id for p in points)
    for point in points:
        a, b = (tmp_path / name / "runs" / point.id for name in ("local", "ray"))
        summary_a = json.loads((a / "summary.json").read_text())
        summary_b = json.loads((b / "summary.json").read_text())
        assert without_timing(summary_a) == without_timing(summary_b)
        history_a = [
            {k: v for k, v in r.items() if k != "elapsed"}
            for r in read_history(a / "history.jsonl")
        ]
        history_b = [
            {k: v for k, v in r.items() if k != "elapsed"}
            for r in read_history(b / "history.jsonl")
        ]
        assert history_a == history_b and len(history_a) == 15
