"""Sphinx configuration of the qhn documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# The docs document this checkout's source, also when qhn is not installed (the notebooks'
# kernels inherit PYTHONPATH).
SRC = str(HERE.parent / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["TERM"] = "dumb"  # no cursor control codes from progress bars in outputs
# Tutorials call the qhn command of this environment.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

import qhn  # noqa: E402

project = "qhn"
author = "the qhn authors"
copyright = "2026, the qhn authors"
release = qhn.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "qhn_docs",
]

# noise/readout_bias.md is the output of docs/noise/readout_bias.py, quoted by noise.md.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "noise/readout_bias.md"]
html_theme = "furo"
html_title = f"qhn {release}"

# "--set" stays two hyphens in generated text (no en dashes from smart quotes).
smartquotes = False
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Tutorials are executed on every build, each in a fresh kernel and a temporary directory, and
# a cell that raises fails the build.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = 120
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

autosummary_generate = True
autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
