"""The documentation builds warning-free (``-W``) with every tutorial executed, as ``make docs``.

The checks on executed outputs use oracles from outside qhn where a tutorial prints one (Qiskit's
``Statevector``, PennyLane's ``default.mixed``), and the code itself for the generated references
(every command of the typer app, every config key).
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("furo")

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = (
    "index",
    "install",
    "concepts",
    "tutorials/01-first-qhn",
    "tutorials/02-own-data",
    "tutorials/03-own-circuit",
    "tutorials/04-sweeps-and-reports",
    "tutorials/05-backends",
    "tutorials/06-scale",
    "tutorials/07-baselines",
    "execution",
    "reference/cli",
    "reference/config",
    "reference/api",
    "reproduction/README",
    "noise",
    "scale",
    "trainability",
    "prior_weight",
)


def _outputs(page: Path) -> str:
    """The text of a page's executed cell outputs."""
    source = page.read_text()
    blocks = re.findall(r'<div class="cell_output[^"]*">(.*?)</div>\s*</div>', source, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", "\n".join(blocks)))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
def test_every_page_is_built(site):
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.slow
def test_tutorials_were_executed_and_agree_with_the_oracles(site):
    first = _outputs(site / "tutorials/01-first-qhn.html")
    found = re.search(r"E_q\[C\] = ([0-9.]+)\s+\(optimum C\* = ([0-9.]+)\)", first)
    assert found, first[:2000]
    assert float(found.group(1)) >= float(found.group(2)) - 1e-9  # no distribution beats C*
    assert "same E_q[C] as the run: True" in first

    circuit = _outputs(site / "tutorials/03-own-circuit.html")
    gap = re.search(r"max \|ours − Qiskit's \(reordered\)\| = (\S+)", circuit)
    assert gap and float(gap.group(1)) < 1e-10
    backends = _outputs(site / "tutorials/05-backends.html")
    gap = re.search(r"max \|ours − PennyLane default.mixed\|: (\S+)", backends)
    assert gap and float(gap.group(1)) < 1e-10

    scale = _outputs(site / "tutorials/06-scale.html")
    gap = re.search(r"max \|mps − statevector\| = (\S+)", scale)
    assert gap and float(gap.group(1)) < 1e-10
    assert re.search(r"samples: \(1000, 1210\)", scale)
    assert "1210 bits; after 40 steps" in scale

    report = _outputs(site / "tutorials/04-sweeps-and-reports.html")
    assert re.search(r"\d+ points: .* 0 failed", report)


@pytest.mark.slow
def test_references_are_generated_from_the_code(site):
    import typer.main

    from qhn.cli import app
    from qhn.experiments.config_docs import config_keys

    cli = html.unescape((site / "reference/cli.html").read_text())
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="qhn")
    for name in root.list_commands(ctx):
        assert f'id="cli-qhn-{name}"' in cli, name
    config = html.unescape((site / "reference/config.html").read_text())
    for key in config_keys():
        assert f">{key.key}<" in config, key.key
