"""Malformed inputs of every kind end in one clear line, never a traceback, and lose nothing.

Each case writes one malformed file (a run config, a sweep file, a CSV, a cost vector, a
checkpoint or a summary), runs the ``qhn`` command a user would, and checks the contract of the
issue: a non-zero exit, exactly one non-empty output line (``error: …``), no traceback, no file
outside ``--out`` created or changed, and every file already in ``--out`` still there, unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qhn.cli import app

REBUILD = "summary.json is not a readable JSON object"
GOOD_CSV = "a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))


@dataclass(frozen=True)
class Case:
    """A malformed input: ``make(workspace) -> arguments`` writes it and says how to run it."""

    name: str
    make: Callable[[Path], list[str]]
    expect: str  # a fragment the error line must contain


def _config(text: str | bytes) -> Callable[[Path], list[str]]:
    def make(ws: Path) -> list[str]:
        path = ws / "inputs" / "run.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["train", "--config", str(path), "--out", str(ws / "out" / "run")]

    return make


def _sweep(text: str | bytes) -> Callable[[Path], list[str]]:
    def make(ws: Path) -> list[str]:
        path = ws / "inputs" / "sweep.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["sweep", str(path), "--out", str(ws / "out" / "sweep")]

    return make


def _data(task: str, content: str | bytes, suffix: str) -> Callable[[Path], list[str]]:
    def make(ws: Path) -> list[str]:
        path = ws / "inputs" / f"data{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return [
            "train", "--task", task, "--set", f"task_options.path={path}", "--steps", "2",
            "--out", str(ws / "out" / "run"),
        ]  # fmt: skip

    return make


def _finished_run(ws: Path) -> Path:
    """A finished 3-step run in ``out/run`` (made once per test)."""
    run = ws / "out" / "run"
    result = CliRunner().invoke(
        app,
        ["train", "--task", "teacher-tiny", "--layers", "1", "--steps", "3", "--no-plots",
         "--out", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def _checkpoint(damage: Callable[[bytes], bytes]) -> Callable[[Path], list[str]]:
    def make(ws: Path) -> list[str]:
        run = _finished_run(ws)
        (run / "summary.json").unlink()
        path = run / "checkpoint.pt"
        path.write_bytes(damage(path.read_bytes()))
        return ["train", "--out", str(run), "--resume"]

    return make


def _summary(content: bytes) -> Callable[[Path], list[str]]:
    def make(ws: Path) -> list[str]:
        run = _finished_run(ws)
        (run / "summary.json").write_bytes(content)
        return ["train", "--out", str(run), "--resume"]

    return make


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


CASES = [
    # run configs
    Case("config-empty", _config(""), "task is required"),
    Case("config-not-toml", _config("task = \n"), "not valid TOML"),
    Case("config-unknown-key", _config('task = "teacher"\nlearning_rte = 1\n'), "learning_rte"),
    Case("config-wrong-type", _config('task = "teacher"\nlayers = "two"\n'), "layers"),
    Case("config-bool-as-int", _config('task = "teacher"\nlayers = true\n'), "layers"),
    Case("config-negative-steps", _config('task = "teacher"\n[train]\nsteps = -1\n'), "steps"),
    Case("config-nan-lr", _config('task = "teacher"\n[train]\nlr = nan\n'), "lr"),
    Case("config-unknown-task", _config('task = "nope"\n'), "nope"),
    Case("config-unknown-objective", _config('task = "teacher"\nobjective = "elbow"\n'), "elbow"),
    Case("config-train-not-table", _config('task = "teacher"\ntrain = 3\n'), "train"),
    Case(
        "config-unknown-option",
        _config('task = "teacher"\n[task_options]\nn_trian = 5\n'),
        "n_trian",
    ),
    Case(
        "config-exact-objective-on-samples",
        _config('task = "teacher"\nobjective = "elbo"\nbackend = "sampled"\nshots = 10\n'),
        "elbo",
    ),
    Case(
        "config-shots-over-memory",
        _config('task = "teacher"\nobjective = "selbo"\nshots = 100000000000\n'),
        "use fewer shots",
    ),
    Case("config-binary", _config(b"\x89PNG\r\n\x1a\n\x00\x00\xff"), "not a UTF-8 text file"),
    # sweep files
    Case("sweep-empty", _sweep(""), "task"),
    Case("sweep-not-toml", _sweep("[grid\n"), "not valid TOML"),
    Case("sweep-grid-not-array", _sweep('[base]\ntask = "teacher"\n[grid]\nlayers = 2\n'), "grid"),
    Case(
        "sweep-grid-unknown-key",
        _sweep('[base]\ntask = "teacher"\n[grid]\nlayrs = [1, 2]\n'),
        "layrs",
    ),
    Case("sweep-bad-seeds", _sweep('seeds = -3\n[base]\ntask = "teacher"\n'), "seeds"),
    Case("sweep-unknown-table", _sweep('[bsae]\ntask = "teacher"\n'), "bsae"),
    Case(
        "sweep-invalid-point",
        _sweep('[base]\ntask = "teacher"\n[grid]\nobjective = ["mle", "elbow"]\n'),
        "elbow",
    ),
    Case("sweep-binary", _sweep(b"\x00\x01\x02\xff\xfe"), "sweep"),
    # CSV tables
    Case("csv-empty", _data("csv", "", ".csv"), "data.csv"),
    Case("csv-header-only", _data("csv", "a,b,label\n", ".csv"), "data.csv"),
    Case(
        "csv-one-class",
        _data("csv", "a,b,label\n" + "1,2,0\n3,4,0\n5,6,0\n7,8,0\n", ".csv"),
        "class",
    ),
    Case("csv-text-feature", _data("csv", GOOD_CSV.replace("3,", "x,", 1), ".csv"), "number"),
    Case("csv-ragged", _data("csv", GOOD_CSV + "1,2\n", ".csv"), "field"),
    Case("csv-nan", _data("csv", GOOD_CSV.replace("3,", "nan,", 1), ".csv"), "finite"),
    Case("csv-binary", _data("csv", b"\xff\xfe" + bytes(range(256)), ".csv"), "not a UTF-8"),
    # cost vectors
    Case("cost-not-power-of-two", _data("cost-vector", "1\n2\n3\n", ".txt"), "power of two"),
    Case("cost-not-finite", _data("cost-vector", "1\n2\ninf\n4\n", ".txt"), "not finite"),
    Case("cost-text", _data("cost-vector", "1\nabc\n3\n4\n", ".txt"), "abc"),
    Case("cost-binary", _data("cost-vector", b"\xff\xfe\x00\x01", ".txt"), "not a text file"),
    # checkpoints
    Case("checkpoint-empty", _checkpoint(lambda data: b""), "checkpoint.pt"),
    Case("checkpoint-truncated", _checkpoint(lambda data: data[:2000]), "checkpoint.pt"),
    Case("checkpoint-garbage", _checkpoint(lambda data: os.urandom(len(data))), "checkpoint.pt"),
    Case("checkpoint-flipped-byte", _checkpoint(_flip), "checkpoint.pt"),
    Case("checkpoint-json", _checkpoint(lambda data: b'{"format": 1}'), "checkpoint.pt"),
    # summaries
    Case("summary-array", _summary(b"[1, 2]"), REBUILD),
    Case("summary-truncated", _summary(b'{"task": "teacher-tiny", "ste'), REBUILD),
    Case("summary-empty", _summary(b""), REBUILD),
]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_malformed_input_is_one_line_and_loses_nothing(tmp_path, monkeypatch, case):
    ws = tmp_path / "ws"
    (ws / "inputs").mkdir(parents=True)
    (ws / "out").mkdir()
    (ws / "out" / "notes.txt").write_text("a file the user keeps in --out\n")
    monkeypatch.chdir(ws)
    args = case.make(ws)
    inputs_before = _files(ws / "inputs")
    out_before = _files(ws / "out")
    outside_before = {p for p in os.listdir(tmp_path)} | {p for p in os.listdir(ws)}

    result = CliRunner().invoke(app, args)

    assert result.exit_code != 0, result.output
    assert result.exit_code in (1, 2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _files(ws / "inputs") == inputs_before
    assert {p for p in os.listdir(tmp_path)} | {p for p in os.listdir(ws)} == outside_before
    out_after = _files(ws / "out")
    for name, content in out_before.items():
        assert out_after.get(name) == content, f"{name} was changed or lost"
