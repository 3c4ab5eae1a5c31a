"""The ``qhn`` command keeps freed blocks on the heap: measured by the page faults of a loop that
allocates and frees the same block, in fresh processes (the setting is process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

BLOCK_MIB = 40  # above glibc's largest self-adjusted threshold (32 MiB): always mapped by default
PAGES = BLOCK_MIB * 2**20 // 4096

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's"
)


def faults_per_iteration(setting: str) -> float:
    """Minor page faults per allocate-fill-free of a 40 MiB tensor, after three (the heap may
    grow once more before its freed block fits again)."""
    code = (
        "import resource, torch\n"
        f"{setting}\n"
        f"size = {BLOCK_MIB} * 2**20 // 8\n"
        "for _ in range(3):\n"
        "    torch.empty(size, dtype=torch.float64).fill_(1.0)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10):\n"
        "    torch.empty(size, dtype=torch.float64).fill_(1.0)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.splitlines()[-1])


def test_freed_blocks_are_reused_without_page_faults():
    default = faults_per_iteration("")
    kept = faults_per_iteration("from qhn.heap import keep_freed_memory; keep_freed_memory()")
    # By default every 4 KiB page of the fresh mapping faults (huge pages would fault less:
    # allow a factor 4); kept on the heap, the pages are already there.
    assert default > PAGES / 4
    assert kept < PAGES / 100


def test_the_command_sets_it_and_importing_the_library_does_not():
    library = faults_per_iteration("import qhn, qhn.cli")
    command = faults_per_iteration(
        "import sys, qhn.cli\n"
        "sys.argv = ['qhn', '--version']\n"
        "try:\n    qhn.cli.main()\nexcept SystemExit:\n    pass"
    )
    assert library > PAGES / 4
    assert command < PAGES / 100
