"""Sweeps as a user meets them when things go wrong: a pool worker killed mid-run, two sweeps on
one directory, a data file edited between runs, relative data paths, a run that raises.

The oracles are the file system (summaries, histories, error files), the exit status and the
counts line ``N points: A already complete, B ran (C resumed), D done by another process, E
failed``, which must add up to N."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from qhn.cli import app
from qhn.experiments import runner
from qhn.experiments.config import load_config
from qhn.experiments.sweep import expand, load_sweep, loads_sweep
from qhn.train import read_history

QHN = Path(sys.executable).with_name("qhn")
TIMING = ("train_seconds", "wall_seconds")
COUNTS = re.compile(
    r"(\d+) points: (\d+) already complete, (\d+) ran \((\d+) resumed\), "
    r"(\d+) done by another process, (\d+) failed"
)

SPEC = """
seeds = 2
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 60
n_test = 60
[base.train]
steps = {steps}
[grid]
objective = ["mle", "elbo"]
layers = [2]
"""


def counts(text: str) -> dict[str, int]:
    """The counts line of ``qhn sweep``'s output, checked to add up."""
    (match,) = COUNTS.findall(text)
    total, already, ran, resumed, others, failed = map(int, match)
    assert already + ran + others + failed == total, text
    assert resumed <= ran
    return {"already": already, "ran": ran, "resumed": resumed, "others": others, "failed": failed}


def history_steps(run_dir: Path) -> list[int]:
    return [record["step"] for record in read_history(run_dir / "history.jsonl")]


def steps_without_time(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "elapsed"}
        for r in read_history(run_dir / "history.jsonl")
    ]


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING}


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def lock_holder(run_dir: Path, pids: list[int]) -> int | None:
    """The process among ``pids`` with ``run_dir/.lock`` open (held while it runs the point)."""
    target = os.path.realpath(run_dir / ".lock")
    for pid in pids:
        with_fds = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in with_fds.iterdir()]
        except OSError:
            continue
        if target in links:
            return pid
    return None


def training_point(
    out: Path, sweep_pid: int, *, skip: set[int], min_steps: int = 3, run_id: str = "*"
):
    """(run id, worker pid) of a point in training (``run_id``, or the first of any): a worker
    other than ``skip`` holds its lock and its history has ``min_steps`` records; None when
    there is none right now."""
    workers = [pid for pid in children(sweep_pid) if pid not in skip]
    for history in sorted((out / "runs").glob(f"{run_id}/history.jsonl")):
        run_dir = history.parent
        if (run_dir / "summary.json").exists():
            continue
        try:
            steps = len(read_history(history))
        except (OSError, ValueError):
            continue
        if steps >= min_steps:
            pid = lock_holder(run_dir, workers)
            if pid is not None:
                return run_dir.name, pid
    return None


def wait_for(condition, process: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            raise AssertionError(f"the sweep ended first: {process.communicate()}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the sweep")


def sweep_command(spec: Path, out: Path, workers: int) -> list[str]:
    return [str(QHN), "sweep", str(spec), "--out", str(out), "--workers", str(workers)]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds workers through /proc")
def test_a_killed_worker_costs_only_its_point_and_a_point_killing_two_fails(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(steps=200).replace("seeds = 2", "seeds = 4"))
    out = tmp_path / "out"
    command = [*sweep_command(spec, out, 2), "--no-plots", "--no-report"]
    # The sweep and its workers run at a lower priority: on a loaded machine (the full suite on
    # two cores) this test's polling must not be starved past the short life of a re-queued
    # point, or the sweep ends before the point is seen training again.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: os.nice(10),
    )
    try:
        # the same point twice: its first and its second worker; then another point once
        twice, first = wait_for(lambda: training_point(out, process.pid, skip=set()), process)
        os.kill(first, signal.SIGKILL)

        # Only that point's directory: while the other worker trains a point that sorts first,
        # the first training point found is that one, and the re-queued run's life can pass
        # unseen (half the runs failed so).
        second = wait_for(
            lambda: training_point(out, process.pid, skip={first}, min_steps=1, run_id=twice),
            process,
        )[1]
        os.kill(second, signal.SIGKILL)
        once, third = wait_for(
            lambda: training_point(out, process.pid, skip={first, second}), process
        )
        assert once != twice
        os.kill(third, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = stdout + stderr
    assert process.returncode == 1, text
    done = counts(text)
    assert (done["already"], done["ran"], done["others"], done["failed"]) == (0, 7, 0, 1)
    assert f"{twice}: worker died (signal 9) twice" in " ".join(text.split())
    points = {p.id for p in expand(load_sweep(spec))}
    assert {p.parent.name for p in out.glob("runs/*/error.txt")} == {twice}
    assert (out / "runs" / twice / "error.txt").read_text().strip() == (
        "worker died (signal 9) twice"
    )
    assert {p.parent.name for p in out.glob("runs/*/summary.json")} == points - {twice}
    for run_id in points - {twice}:
        assert history_steps(out / "runs" / run_id) == list(range(1, 201))

    rerun = subprocess.run(
        [*sweep_command(spec, out, 2), "--no-plots", "--no-report"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    done = counts(rerun.stdout + rerun.stderr)
    assert (done["already"], done["ran"], done["others"], done["failed"]) == (7, 1, 0, 0)
    assert not list(out.glob("runs/*/error.txt"))
    # the points whose workers died end exactly as uninterrupted runs of the same configs
    by_id = {p.id: p for p in expand(load_sweep(spec))}
    for run_id in (twice, once):
        reference = runner.run(by_id[run_id].config, tmp_path / "ref" / run_id, plots=False)
        summary = json.loads((out / "runs" / run_id / "summary.json").read_text())
        assert without_timing(summary) == without_timing(reference)
        assert history_steps(out / "runs" / run_id) == list(range(1, 201))


def test_two_sweeps_on_one_directory_train_each_point_once_and_both_succeed(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(steps=60).replace("seeds = 2", "seeds = 3"))
    out = tmp_path / "out"
    command = [*sweep_command(spec, out, 1), "--no-plots", "--no-report"]
    both = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=180) for process in both]
    texts = [stdout + stderr for stdout, stderr in outputs]
    assert [process.returncode for process in both] == [0, 0], texts
    a, b = (counts(text) for text in texts)
    assert a["failed"] == b["failed"] == 0
    assert a["ran"] + b["ran"] == 6  # every point trained once, by one of them
    assert a["ran"] >= 1 and b["ran"] >= 1, texts  # they did overlap
    assert a["others"] + b["others"] >= 1, texts
    points = expand(load_sweep(spec))
    assert {p.parent.name for p in out.glob("runs/*/summary.json")} == {p.id for p in points}
    assert not list(out.glob("runs/*/error.txt"))
    for point in points:
        assert history_steps(out / "runs" / point.id) == list(range(1, 61))


CSV_SPEC = """
[base]
task = "csv"
[base.task_options]
path = "data/table.csv"
[base.train]
steps = 5
[grid]
objective = ["mle", "elbo"]
"""


def write_table(path: Path, flip: bool = False) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    if flip:
        y[:5] = 1 - y[:5]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "a,b,label\n" + "".join(f"{u:.6f},{v:.6f},{c}\n" for (u, v), c in zip(x, y, strict=True))
    )


def invoke(*args: str):
    return CliRunner().invoke(app, ["sweep", *args, "--no-plots", "--no-report"])


def test_editing_the_data_file_gives_new_runs_and_relative_paths_follow_the_sweep_file(
    tmp_path, monkeypatch
):
    project = tmp_path / "project"
    table = project / "data" / "table.csv"
    write_table(table)
    spec = project / "sweep.toml"
    spec.write_text(CSV_SPEC)
    elsewhere = tmp_path / "elsewhere"  # the working directory has no data/table.csv
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"

    first = invoke(str(spec), "--out", str(out))
    assert first.exit_code == 0, first.output
    assert counts(first.output)["ran"] == 2
    before = {p.parent.name for p in out.glob("runs/*/summary.json")}
    for run_id in before:
        stored = load_config(out / "runs" / run_id / "config.toml", check_task=False)
        assert stored.task_options["path"] == str(table.resolve())

    again = invoke(str(spec), "--out", str(out))
    assert counts(again.output)["already"] == 2 and again.exit_code == 0

    write_table(table, flip=True)  # same path, other content
    edited = invoke(str(spec), "--out", str(out))
    assert edited.exit_code == 0, edited.output
    assert counts(edited.output) == {
        "already": 0,
        "ran": 2,
        "resumed": 0,
        "others": 0,
        "failed": 0,
    }
    after = {p.id for p in expand(load_sweep(spec))}
    assert after.isdisjoint(before)
    assert {p.parent.name for p in out.glob("runs/*/summary.json")} == before | after


def test_point_ids_follow_the_bytes_of_a_cost_vector_not_its_path_or_time(tmp_path):
    costs = tmp_path / "costs.txt"
    text = f'[base]\ntask = "cost-vector"\n[base.task_options]\npath = "{costs}"\n'
    text += "[grid]\nlayers = [0, 1]\n"
    costs.write_text("\n".join(str(v) for v in (3.0, 1.0, 2.0, 0.5)) + "\n")
    original = [p.id for p in expand(loads_sweep(text))]
    costs.write_text("\n".join(str(v) for v in (3.0, 1.0, 2.0, 0.25)) + "\n")
    changed = [p.id for p in expand(loads_sweep(text))]
    costs.write_text("\n".join(str(v) for v in (3.0, 1.0, 2.0, 0.5)) + "\n")  # back, newer mtime
    restored = [p.id for p in expand(loads_sweep(text))]
    assert len(set(original)) == 2
    assert set(changed).isdisjoint(original)
    assert restored == original


def test_a_run_that_raises_is_one_line_and_its_traceback_is_in_error_txt(tmp_path, monkeypatch):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(steps=5))
    points = expand(load_sweep(spec))
    bad = points[2].id
    real = runner.run

    def flaky(config, out_dir, **kwargs):
        if Path(out_dir).name == bad:
            raise RuntimeError("the simulator broke\nwhile computing step 3")
        return real(config, out_dir, **kwargs)

    monkeypatch.setattr(runner, "run", flaky)
    out = tmp_path / "out"
    result = invoke(str(spec), "--out", str(out))
    assert result.exit_code == 1
    assert counts(result.output) == {
        "already": 0,
        "ran": 3,
        "resumed": 0,
        "others": 0,
        "failed": 1,
    }
    (line,) = [line for line in result.output.splitlines() if bad in line]
    assert line == (
        f"failed {bad}: RuntimeError: the simulator broke while computing step 3 "
        f"(see {out / 'runs' / bad / 'error.txt'})"
    )
    error = (out / "runs" / bad / "error.txt").read_text()
    assert "Traceback" in error and "while computing step 3" in error
    assert [p.parent.name for p in out.glob("runs/*/error.txt")] == [bad]


def test_a_pool_worker_and_qhn_train_config_give_the_same_run(tmp_path):
    """The same point, trained by a spawned pool worker and by ``qhn train --config`` on the
    run's own config.toml in this process, whose torch thread count is set otherwise: same
    bits."""
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(steps=20).replace("seeds = 2", "seeds = 1"))
    out = tmp_path / "out"
    swept = invoke(str(spec), "--out", str(out), "--workers", "2")
    assert swept.exit_code == 0, swept.output
    assert counts(swept.output)["ran"] == 2
    for point in expand(load_sweep(spec)):
        run_dir = out / "runs" / point.id
        alone = tmp_path / "alone" / point.id
        before = torch.get_num_threads()
        torch.set_num_threads(3)
        try:
            config = str(run_dir / "config.toml")
            trained = CliRunner().invoke(
                app, ["train", "--config", config, "--out", str(alone), "--no-plots"]
            )
        finally:
            torch.set_num_threads(before)
        assert trained.exit_code == 0, trained.output
        a = json.loads((run_dir / "summary.json").read_text())
        b = json.loads((alone / "summary.json").read_text())
        assert without_timing(a) == without_timing(b)
        assert steps_without_time(run_dir) == steps_without_time(alone)
