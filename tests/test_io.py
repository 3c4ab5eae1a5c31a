"""Atomic writes: the target holds the old content or the new, never a partial file or a temp."""

from __future__ import annotations

import json
import os

import pytest
import torch

import qhn.io
from qhn.io import atomic_torch_save, atomic_write_json, atomic_write_text


def _names(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_writes_replace_the_content_with_ordinary_permissions(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"b": [1.5, float("inf")], "t": torch.tensor([1.0, 2.0])})
    assert json.loads(path.read_text()) == {"b": [1.5, float("inf")], "t": [1.0, 2.0]}

    text_path = tmp_path / "config.toml"
    atomic_write_text(text_path, 'x = 1\ny = "é"\n')
    assert text_path.read_text(encoding="utf-8") == 'x = 1\ny = "é"\n'

    umask = os.umask(0)
    os.umask(umask)
    assert (text_path.stat().st_mode & 0o777) == (0o666 & ~umask)

    pt = tmp_path / "state.pt"
    atomic_torch_save(pt, {"theta": torch.arange(3.0, dtype=torch.float64)})
    loaded = torch.load(pt, weights_only=True)
    assert torch.equal(loaded["theta"], torch.arange(3.0, dtype=torch.float64))
    assert _names(tmp_path) == ["config.toml", "state.pt", "summary.json"]


def test_failed_rename_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"version": 1})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(qhn.io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_json(path, {"version": 2})
    with pytest.raises(OSError, match="simulated"):
        atomic_write_text(path, "new text")
    with pytest.raises(OSError, match="simulated"):
        atomic_torch_save(path, {"x": torch.zeros(2)})
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["summary.json"]


def test_failed_serialization_touches_nothing(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"version": 1})
    before = path.read_bytes()

    with pytest.raises(TypeError, match="cannot write"):
        atomic_write_json(path, {"bad": object()})

    def broken_dumps(*args, **kwargs):
        raise RuntimeError("serializer crashed (simulated)")

    monkeypatch.setattr(qhn.io.json, "dumps", broken_dumps)
    with pytest.raises(RuntimeError, match="simulated"):
        atomic_write_json(path, {"version": 2})
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["summary.json"]


def test_a_save_that_dies_half_way_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save(path, {"step": 1})

    def half_save(obj, handle):
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save(path, {"step": 2})
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert _names(tmp_path) == ["checkpoint.pt"]


def test_missing_directory_is_an_error_not_a_stray_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "absent" / "file.txt", "x")
    assert _names(tmp_path) == []


def test_atomic_write_png_writes_a_png_and_keeps_the_old_file_when_rendering_fails(tmp_path):
    from matplotlib.figure import Figure

    from qhn.io import atomic_write_png

    path = tmp_path / "figure.png"
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    atomic_write_png(path, figure)
    first = path.read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n")

    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        atomic_write_png(path, Broken())
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]
