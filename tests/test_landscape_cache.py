"""The user's landscape cache: where it lives, that ``qhn train`` reads it instead of
enumerating again, that it never costs a run, and that it stays within its size."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

import qhn.landscape
from qhn.cli import app
from qhn.data import get_task
from qhn.landscape import cache_path, compute_landscape
from qhn.landscape_cache import CACHE_ENV, chosen_cache_dir, prune, user_cache_dir


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_ENV, "off")
    assert user_cache_dir() is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "qhn" / "landscapes"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "qhn" / "landscapes"
    assert chosen_cache_dir("OFF") is None
    assert chosen_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert chosen_cache_dir(None) == user_cache_dir()


def test_prune_deletes_the_least_recently_used_until_within_the_budget(tmp_path):
    sizes = [300, 100, 200, 50, 120]  # written in this order: index = age rank, oldest first
    for i, size in enumerate(sizes):
        path = tmp_path / f"landscape-task{i}-0123.npz"
        path.write_bytes(b"x" * size)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    other = tmp_path / "notes.txt"
    other.write_bytes(b"y" * 10_000)
    deleted = prune(tmp_path, max_bytes=400)
    # Brute force: drop the oldest until the rest fit.
    kept = list(range(len(sizes)))
    while sum(sizes[i] for i in kept) > 400:
        kept.pop(0)
    assert sorted(p.name for p in deleted) == [
        f"landscape-task{i}-0123.npz" for i in range(len(sizes)) if i not in kept
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [other.name, *(f"landscape-task{i}-0123.npz" for i in kept)]
    )


def test_reading_the_cache_marks_the_file_as_used(tmp_path):
    task = get_task("teacher-tiny")
    compute_landscape(task, cache_dir=tmp_path)
    path = cache_path(task, tmp_path)
    os.utime(path, (1_000_000, 1_000_000))
    assert compute_landscape(task, cache_dir=tmp_path).from_cache
    assert path.stat().st_mtime > 1_000_000 + 3600


def _train(out: Path, *extra: str):
    args = ["train", "--task", "teacher-tiny", "--steps", "5", "--no-plots", "--out", str(out)]
    return CliRunner().invoke(app, [*args, *extra])


def test_a_second_train_reads_the_landscape_instead_of_enumerating(tmp_path, monkeypatch):
    calls = []
    enumerate_split = qhn.landscape._enumerate

    def counted(task, split):
        calls.append(split)
        return enumerate_split(task, split)

    monkeypatch.setattr(qhn.landscape, "_enumerate", counted)
    cache = tmp_path / "cache"
    first = _train(tmp_path / "a", "--landscape-cache", str(cache))
    assert first.exit_code == 0, first.output
    assert sorted(calls) == ["test", "train"]
    assert [p.name for p in cache.iterdir()] == [cache_path(get_task("teacher-tiny"), cache).name]
    calls.clear()
    second = _train(tmp_path / "b", "--landscape-cache", str(cache))
    assert second.exit_code == 0, second.output
    assert calls == []
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab"]
    for key in ("optimum_value", "optimum_degeneracy", "expected_cost", "expected_test_cost"):
        assert summaries[0][key] == summaries[1][key]
    calls.clear()
    off = _train(tmp_path / "c", "--landscape-cache", "off")
    assert off.exit_code == 0, off.output
    assert sorted(calls) == ["test", "train"]


def test_an_unwritable_cache_does_not_cost_the_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _train(tmp_path / "run", "--landscape-cache", str(blocker / "cache"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "summary.json").is_file()
