"""Shared test fixtures: paths to the reference data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MNIST01 = SHARED_DATA / "binncode-mnist01"


@pytest.fixture(autouse=True)
def _landscape_cache_in_tmp(monkeypatch, tmp_path_factory):
    """``qhn train`` caches landscapes in the user's cache folder: tests use a fresh one."""
    monkeypatch.setenv("QHN_CACHE_DIR", str(tmp_path_factory.mktemp("qhn-cache")))


@pytest.fixture(scope="session")
def mnist01_dir() -> Path:
    """The reference QHN data folder; tests using it skip when it is absent."""
    if not (MNIST01 / "Cop_4x4.txt").exists():
        pytest.skip(f"reference data not found at {MNIST01} (needs ../shared/data beside the repo)")
    return MNIST01


@pytest.fixture
def small_sweeps(monkeypatch):
    """The statevector backend runs sweeps of narrow groups (several sweeps per layer) from 1
    qubit and shares parameter-shift rows from 1 qubit, so small circuits take every path."""
    pytest.importorskip("numba", reason="the sweeps need numba (the fast extra)")
    from qhn.backends import statevector, sweep_schedule

    monkeypatch.setattr(sweep_schedule, "LOW_WIDTH", {4: 3, 8: 3, 16: 3})
    monkeypatch.setattr(sweep_schedule, "HIGH_WIDTH", 2)
    monkeypatch.setattr(sweep_schedule, "ROW_BYTES", 16)
    monkeypatch.setattr(sweep_schedule, "SUB_WIDTH", {4: 2, 8: 2, 16: 2})
    monkeypatch.setattr(statevector, "SWEEPS_MIN_QUBITS", 1)
    monkeypatch.setattr(statevector, "SHARED_PREFIX_MIN_QUBITS", 1)
    return monkeypatch
