"""A run keeps what it computed (issue: runs never lose results).

Regression tests for each way a run used to lose or mislabel work: broad posteriors that crashed
the evaluation after training, resumes that relabelled runs, runs without checkpoints, signals,
markup that ate text, and ordinary mistakes that ended in tracebacks. Each is checked where the
user meets it: the ``qhn`` command (in process with typer's runner, or as a subprocess where a
real signal is needed) and the files it leaves behind.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from qhn.cli import app
from qhn.experiments.config import RunConfig, load_config
from qhn.experiments.runner import build_run, run
from qhn.train import TrainingInterrupted, fit, load_checkpoint, read_history

QHN = [sys.executable, "-c", "from qhn.cli import main; main()"]
TINY = ["--task", "teacher-tiny", "--layers", "1", "--no-plots"]
TIMING = ("train_seconds", "wall_seconds")


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def same_results(a: dict, b: dict) -> bool:
    keys = (a.keys() | b.keys()) - set(TIMING)
    return all(a.get(k) == b.get(k) for k in keys)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --- 1. broad posteriors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--objective", "elbo", "--steps", "1"],
        ["--objective", "selbo", "--backend", "sampled", "--shots", "256", "--steps", "2"],
    ],
    ids=["exact-elbo", "sampled-selbo"],
)
def test_a_broad_posterior_on_moons_keeps_its_summary_and_figures(tmp_path, extra):
    # After one step from the uniform initialization q is broad: its support reaches the
    # 2048-network cap and the 150×150 decision-boundary grid used to exceed the budget.
    out = tmp_path / "run"
    result = invoke("train", "--task", "moons", *extra, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == int(extra[-1])
    if "--shots" not in extra:
        assert summary["support_size"] == 2048  # broad indeed: the cap, not the mass, bound it
    for key in ("acc_bma_test", "acc_mode_test", "acc_sample_test"):
        assert 0.0 <= summary[key] <= 1.0
    for figure in ("curves.png", "top_bitstrings.png", "decision_boundary.png"):
        assert (out / figure).stat().st_size > 0


def test_a_failing_figure_is_skipped_and_the_summary_is_kept(tmp_path, monkeypatch, caplog):
    import qhn.plots.run

    def broken(*args, **kwargs):
        raise RuntimeError("figure backend exploded")

    monkeypatch.setattr(qhn.plots.run, "write_run_figures", broken)
    config = RunConfig.from_dict({"task": "teacher-tiny", "layers": 1, "train": {"steps": 3}})
    summary = run(config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3
    assert summary["steps"] == 3
    assert "figure backend exploded" in caplog.text


def test_no_plots_writes_no_figures(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "--steps", "3", "--out", out).exit_code == 0
    assert (out / "summary.json").exists()
    assert not list(out.glob("*.png"))


# --- 2. strict resume -------------------------------------------------------------------------


def test_resume_with_another_objective_is_refused_naming_each_field(tmp_path):
    out = tmp_path / "run"
    assert (
        invoke("train", *TINY, "--objective", "mle", "--steps", "20", "--out", out).exit_code == 0
    )
    before = snapshot(out)
    result = invoke(
        "train",
        *TINY,
        "--objective",
        "selbo",
        "--steps",
        "40",
        "--set",
        "lam=10",
        "--out",
        out,
        "--resume",
    )
    assert result.exit_code == 2
    (line,) = error_lines(result.output)
    assert "objective: 'mle' → 'selbo'" in line and "lam: 1.0 → 10.0" in line
    assert snapshot(out) == before  # nothing written before the check, config.toml included


def test_resume_cannot_shrink_a_finished_run(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "--steps", "40", "--out", out).exit_code == 0
    before = snapshot(out)
    result = invoke("train", "--out", out, "--resume", "--steps", "20")
    assert result.exit_code == 2 and "train.steps: 40 → 20" in result.output
    assert snapshot(out) == before
    assert load_config(out / "config.toml").train.steps == 40


def test_resume_of_a_finished_run_changes_nothing_and_more_steps_continue_it(tmp_path):
    out, whole = tmp_path / "run", tmp_path / "whole"
    assert invoke("train", *TINY, "--steps", "10", "--out", out).exit_code == 0
    before = snapshot(out)
    assert invoke("train", "--out", out, "--resume").exit_code == 0
    assert snapshot(out) == before
    # A constant schedule may grow: 10 + 15 steps equal 25 uninterrupted ones, bit for bit.
    assert invoke("train", "--out", out, "--resume", "--steps", "25").exit_code == 0
    assert invoke("train", *TINY, "--steps", "25", "--out", whole).exit_code == 0
    grown = json.loads((out / "summary.json").read_text())
    assert same_results(grown, json.loads((whole / "summary.json").read_text()))
    assert load_config(out / "config.toml").train.steps == grown["steps"] == 25
    assert [r["step"] for r in read_history(out / "history.jsonl")] == list(range(1, 26))


def test_resume_refuses_changed_data(tmp_path):
    data = tmp_path / "data.csv"
    rows = [f"{x:.3f},{(x * 7) % 1:.3f},{int(x > 0.5)}" for x in torch.rand(60).tolist()]
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "--task", "csv", "--set", f"task_options.path={data}", "--no-plots"]
    assert invoke(*args, "--steps", "5", "--out", out).exit_code == 0
    (out / "summary.json").unlink()  # as if killed before the end
    data.write_text(data.read_text().replace(",1\n", ",0\n", 3))
    result = invoke(*args, "--steps", "5", "--out", out, "--resume")
    assert result.exit_code == 2 and "changed since the run started" in result.output


def test_a_fresh_run_never_overwrites_an_unfinished_one(tmp_path):
    out = tmp_path / "run"
    config = RunConfig.from_dict({"task": "teacher-tiny", "layers": 1, "train": {"steps": 30}})

    def stop_at_12(step, total, record):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(config, out, plots=False, progress=stop_at_12, checkpoint_seconds=0.0)
    before = snapshot(out)
    result = invoke("train", *TINY, "--steps", "30", "--out", out)
    assert result.exit_code == 2 and "--resume" in result.output
    assert snapshot(out) == before


# --- 3. checkpoints by default and on signals -------------------------------------------------


def test_time_based_checkpoints_lose_at_most_one_interval(tmp_path):
    config = RunConfig.from_dict({"task": "teacher-tiny", "layers": 1, "train": {"steps": 30}})
    built = build_run(config)

    def killed_at_9(step, total, record):
        if step == 9:
            raise SystemExit  # like SIGKILL: no chance to save anything more

    with pytest.raises(SystemExit):
        fit(
            built.model,
            built.objective,
            config.train,
            checkpoint_dir=tmp_path,
            progress=killed_at_9,
            checkpoint_seconds=0.0,
        )
    # With a zero interval every completed step but the one in flight was saved.
    assert load_checkpoint(tmp_path)["step"] == 8


def _start(args: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*QHN, *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_steps(process: subprocess.Popen, history: Path, steps: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if history.exists() and history.read_text().count("\n") >= steps:
            return
        if process.poll() is not None:
            pytest.fail(f"run ended early: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail("the run made no progress in 120 s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_and_resume_finishes_the_same_run(tmp_path, signum):
    args = [*TINY, "--objective", "selbo", "--steps", "4000"]
    out = tmp_path / "cut"
    process = _start(["train", *args], out)
    _wait_for_steps(process, out / "history.jsonl", 20)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    last = stderr.strip().splitlines()[-1]
    assert f"interrupted by {signal.Signals(signum).name} at step" in last
    assert f"qhn train --out {out} --resume" in last
    assert "Traceback" not in stderr
    saved = load_checkpoint(out)
    assert saved["step"] >= 20 and saved["stop_reason"] is None
    assert len(read_history(out / "history.jsonl")) >= saved["step"]
    # Resume to the end and compare with a run that was never interrupted.
    short = ["train", *TINY, "--objective", "selbo", "--steps", str(saved["step"] + 5)]
    assert (
        invoke("train", "--out", out, "--resume", "--steps", str(saved["step"] + 5)).exit_code == 0
    )
    assert invoke(*short, "--out", tmp_path / "whole").exit_code == 0
    cut = json.loads((out / "summary.json").read_text())
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert same_results(cut, whole)


def test_interrupted_fit_raises_after_saving(tmp_path):
    config = RunConfig.from_dict({"task": "teacher-tiny", "layers": 1, "train": {"steps": 50}})
    built = build_run(config)

    def ctrl_c_at_7(step, total, record):
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # ignored when started with nohup or in background
    with pytest.raises(TrainingInterrupted) as stop:
        fit(
            built.model,
            built.objective,
            config.train,
            checkpoint_dir=tmp_path,
            progress=ctrl_c_at_7,
        )
    assert stop.value.step == 7 and stop.value.checkpoint == tmp_path / "checkpoint.pt"
    assert load_checkpoint(tmp_path)["step"] == 7
    assert signal.getsignal(signal.SIGINT) == before  # handlers restored


# --- 4. literal messages ----------------------------------------------------------------------


def test_messages_print_brackets_literally(tmp_path):
    result = invoke("train", *TINY, "--set", "train.learning_rate=1", "--out", tmp_path / "x")
    assert result.exit_code == 2
    (line,) = error_lines(result.output)
    assert "in [train]" in line
    out = tmp_path / "p[/x]" / "[red]run"
    result = invoke("train", *TINY, "--steps", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").exists()
    assert "training time [s]" in result.output


# --- 5. ordinary mistakes: one line, no traceback ---------------------------------------------


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(p.read_bytes()[:3000]),
        lambda p: p.write_bytes(os.urandom(4096)),
        _flip_a_byte,
        lambda p: p.write_text(json.dumps({"format": 1})),
    ],
    ids=["empty", "truncated", "garbage", "flipped-byte", "not-a-zip"],
)
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "--steps", "5", "--out", out).exit_code == 0
    (out / "summary.json").unlink()
    damage(out / "checkpoint.pt")
    result = invoke("train", "--out", out, "--resume")
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.output)
    assert str(out / "checkpoint.pt") in line and "delete it" in line
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _out_is_a_file(d: Path) -> list:
    (d / "f").write_text("x")
    return ["--out", d / "f"]


def _binary_config(d: Path) -> list:
    (d / "b.toml").write_bytes(b"\xff\xfe\x00")
    return ["--config", d / "b.toml"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (_out_is_a_file, "is a file"),
        (lambda d: ["--config", d], "is a directory"),
        (_binary_config, "not a UTF-8 text file"),
        (lambda d: ["--shots", "10000000000", "--objective", "selbo"], "use fewer shots"),
        (lambda d: ["--config", d / "missing.toml"], "not found"),
    ],
    ids=["out-is-a-file", "config-is-a-dir", "config-is-binary", "huge-shots", "no-config"],
)
def test_ordinary_mistakes_are_one_line_with_exit_2(tmp_path, setup, expected):
    args = setup(tmp_path)
    if "--out" not in args:
        args = [*args, "--out", tmp_path / "run"]
    result = invoke("train", *TINY, *args)
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.output)
    assert line.startswith("error: ") and expected in line


def test_a_full_disk_is_one_line_with_exit_1(tmp_path, monkeypatch):
    import qhn.io

    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith("summary.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(qhn.io.os, "replace", full)
    result = invoke("train", *TINY, "--steps", "3", "--out", tmp_path / "run")
    assert result.exit_code == 1
    # The progress bar of the training that ran comes first, then exactly one error line.
    (line,) = [x for x in error_lines(result.output) if "error" in x]
    assert line.startswith("error: ") and "Traceback" not in result.output
    assert "No space left on device" in line and "summary.json" in line
    # What was computed before the failure is still there to resume from.
    assert load_checkpoint(tmp_path / "run")["step"] == 3


def test_debug_shows_the_traceback_of_an_unexpected_error(tmp_path, monkeypatch):
    import qhn.experiments.runner

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(qhn.experiments.runner, "run", broken)
    result = invoke("train", *TINY, "--out", tmp_path / "run")
    assert result.exit_code == 1
    (line,) = error_lines(result.output)
    assert "internal error RuntimeError: unexpected" in line and "--debug" in line
    result = invoke("--debug", "train", *TINY, "--out", tmp_path / "run")
    assert isinstance(result.exception, RuntimeError)


# --- 8. same seed, same bits; data paths --------------------------------------------------------


def test_the_thread_count_outside_a_run_does_not_change_its_results(tmp_path):
    config = RunConfig.from_dict({"task": "moons", "layers": 1, "train": {"steps": 15}})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(config, tmp_path / "one", plots=False)
        torch.set_num_threads(2)
        two = run(config, tmp_path / "two", plots=False)
        assert torch.get_num_threads() == 2  # restored after the run
    finally:
        torch.set_num_threads(before)
    assert same_results(one, two)


def test_final_metrics_describe_the_final_angles(tmp_path):
    config = RunConfig.from_dict(
        {"task": "teacher-tiny", "layers": 1, "objective": "elbo", "train": {"steps": 10}}
    )
    summary = run(config, tmp_path / "run", plots=False)
    last = read_history(tmp_path / "run" / "history.jsonl")[-1]
    # Uniform prior: KL(q‖p) = n ln 2 − H(q), both at the angles after the last update.
    assert summary["kl"] == pytest.approx(6 * math.log(2) - summary["entropy"], abs=1e-12)
    assert summary["kl"] != last["kl"]  # the history's last record is from before it
    assert summary["final_objective"] == pytest.approx(-summary["final_loss"], abs=1e-12)


def test_config_files_store_data_paths_that_work_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "table.csv"
    rows = [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(40)]
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    config_file = tmp_path / "data" / "run.toml"
    config_file.write_text('task = "csv"\n[task_options]\npath = "table.csv"\n[train]\nsteps = 2\n')
    monkeypatch.chdir(tmp_path)  # the config's relative path is relative to the config file
    assert load_config(config_file).task_options["path"] == str(data)
    result = invoke("train", "--config", config_file, "--no-plots", "--out", "run")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "data")
    assert load_config(tmp_path / "run" / "config.toml").task_options["path"] == str(data)
    overridden = invoke(
        "train",
        "--task",
        "csv",
        "--set",
        "task_options.path=table.csv",
        "--steps",
        "2",
        "--no-plots",
        "--out",
        tmp_path / "run2",
    )
    assert overridden.exit_code == 0, overridden.output
    assert load_config(tmp_path / "run2" / "config.toml").task_options["path"] == str(data)
