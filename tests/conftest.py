"""Shared test fixtures: paths to the reference data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MNIST01 = SHARED_DATA / "binncode-mnist01"


@pytest.fixture(scope="session")
def mnist01_dir() -> Path:
    """The reference QHN data folder; tests using it skip when it is absent."""
    if not (MNIST01 / "Cop_4x4.txt").exists():
        pytest.skip(f"reference data not found at {MNIST01} (needs ../shared/data beside the repo)")
    return MNIST01
