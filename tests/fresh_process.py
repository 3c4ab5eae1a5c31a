"""What a fresh interpreter imports: for tests that keep heavy modules off a path."""

from __future__ import annotations

import json
import subprocess
import sys


def imported_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` are in ``sys.modules`` after ``code`` runs in a fresh interpreter
    (the code's own failures raise ``CalledProcessError``)."""
    probe = (
        "\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code + probe], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
