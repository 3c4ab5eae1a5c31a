"""The Ray executor on a local Ray instance: the same runs as the local executor (timing fields
aside), written by the driver while the tasks train in their own scratch directory; a resumed
point ships its checkpoint out; a run that raises comes back as error.txt in the sweep."""

from __future__ import annotations

import json
import shutil

import pytest

from qhn.experiments.executors import run_sweep
from qhn.experiments.sweep import expand, loads_sweep
from qhn.train import read_history

try:
    import ray
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


def history(run_dir, drop=("elapsed",)) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in drop}
        for r in read_history(run_dir / "history.jsonl")
    ]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A local Ray instance (2 CPUs) whose tasks use their own scratch root."""
    root = tmp_path_factory.mktemp("ray-scratch")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"QHN_SCRATCH": str(root)}},
    )
    try:
        yield root / "qhn-scratch"
    finally:
        ray.shutdown()


def test_ray_and_local_executors_give_identical_runs_written_by_the_driver(tmp_path, scratch):
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
        assert history(a) == history(b) and len(history(a)) == 15
        names = {p.name for p in b.iterdir()} - {".lock"}
        assert names == {"config.toml", "history.jsonl", "summary.json", "checkpoint.pt"}
    # the tasks computed the landscape in their scratch, which they cleaned up after each run
    assert not (tmp_path / "ray" / "landscapes").exists()
    assert {p.name for p in scratch.iterdir()} == {"landscapes"}
    assert list((scratch / "landscapes").iterdir())


def test_a_resumed_point_ships_its_checkpoint_and_is_not_trained_again(tmp_path, scratch):
    spec = loads_sweep(SPEC)
    (point, _) = expand(spec)
    first = run_sweep(spec, tmp_path / "local", plots=False)
    assert first.ok
    source = tmp_path / "local" / "runs" / point.id
    target = tmp_path / "ray" / "runs" / point.id
    shutil.copytree(source, target)
    for name in ("summary.json", "history.jsonl"):  # an interrupted run: only its checkpoint
        (target / name).unlink()
    result = run_sweep(spec, tmp_path / "ray", executor="ray", workers=2, plots=False)
    assert result.ok and result.resumed == [point.id]
    # restored from the checkpoint, the records keep their original elapsed times
    assert history(target, drop=()) == history(source, drop=())
    summary_a = json.loads((source / "summary.json").read_text())
    summary_b = json.loads((target / "summary.json").read_text())
    assert without_timing(summary_a) == without_timing(summary_b)


def test_a_run_that_raises_on_ray_leaves_error_txt_in_the_sweep(tmp_path, scratch):
    # passes validation, then the run refuses to allocate its samples
    text = SPEC.replace('objective = ["mle", "selbo"]', 'objective = ["selbo"]')
    text = text.replace('task = "teacher-tiny"', 'task = "teacher-tiny"\nbackend = "sampled"')
    spec = loads_sweep(
        text.replace("steps = 15", "steps = 2\n").replace(
            "[base]\n", "[base]\nshots = 1000000000\n"
        )
    )
    (point,) = expand(spec)
    out = tmp_path / "ray"
    result = run_sweep(spec, out, executor="ray", workers=1, plots=False)
    assert list(result.failed) == [point.id]
    message = result.failed[point.id]
    assert "memory budget" in message and "\n" not in message
    error = (out / "runs" / point.id / "error.txt").read_text()
    assert "Traceback" in error and "MemoryBudgetError" in error
    assert not (out / "runs" / point.id / "summary.json").exists()
