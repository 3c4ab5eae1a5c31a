"""``--help`` shows the defaults that apply and points to the keys ``--set`` accepts."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from qhn.baselines.config import BaselineConfig, apply_baseline_overrides
from qhn.cli import app
from qhn.experiments.config import RunConfig


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _shown_default(text: str, flag: str) -> str:
    match = re.search(re.escape(flag) + r" .*?\[default: \(?([^)\]]+)\)?\]", text)
    assert match, f"no default shown for {flag}"
    return match.group(1)


def test_train_help_shows_the_default_each_flag_falls_back_to():
    text = _help("train")
    defaults = RunConfig(task="teacher")  # the values a run without the flag gets
    assert _shown_default(text, "--objective") == defaults.objective
    assert _shown_default(text, "--ansatz") == defaults.ansatz
    assert _shown_default(text, "--backend") == defaults.backend
    assert int(_shown_default(text, "--layers")) == defaults.layers
    assert int(_shown_default(text, "--steps")) == defaults.train.steps
    assert float(_shown_default(text, "--lr")) == defaults.train.lr
    assert int(_shown_default(text, "--seed")) == defaults.train.seed
    assert _shown_default(text, "--shots") == "unset" and defaults.shots is None
    assert "qhn config keys" in text


def test_baseline_help_shows_defaults_and_where_its_keys_are():
    text = _help("baseline")
    defaults = BaselineConfig(method="anneal", task="teacher")
    assert int(_shown_default(text, "--steps")) == defaults.steps
    assert int(_shown_default(text, "--seed")) == defaults.seed
    assert "qhn config keys --baseline" in text


def test_sweep_help_points_to_the_config_keys():
    text = _help("sweep")
    assert "qhn config keys" in text
    assert int(_shown_default(text, "--workers")) == 1


def test_config_keys_baseline_lists_every_field_with_a_default_that_applies():
    result = CliRunner().invoke(app, ["config", "keys", "--baseline"])
    assert result.exit_code == 0, result.output
    defaults = BaselineConfig(method="anneal", task="teacher")
    listed = set()
    for line in result.output.splitlines():
        name = line.split()[0]
        listed.add(name.split(".")[0])
        if " = " in line:
            key, _, rest = line.strip().partition(" = ")
            value = rest.rsplit("  (", 1)[0]
            value = "none" if value == "none (unset)" else value
            assert apply_baseline_overrides(defaults, [f"{key}={value}"]) == defaults, key
    assert listed == {f.name for f in BaselineConfig.__dataclass_fields__.values()}
