"""Discovery: ``qhn --version`` and ``qhn tasks``."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from qhn.cli import app
from qhn.data.tasks import TASKS


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"qhn {version('qhn')}"


def test_tasks_lists_every_task_with_its_bits_and_options():
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    listed = [line.split(":")[0] for line in lines if not line.startswith(" ")]
    assert listed == list(TASKS)
    by_name = {line.split(":")[0]: line for line in lines if not line.startswith(" ")}
    # Sizes stated in METHOD.md §6 and the task docs: 2→4→1 with an activation bit is 18 bits;
    # logistic regression on 5 inputs with a bias is 6.
    assert "; 18 bits, 10000 training examples, 2 classes" in by_name["qhn-gaussian"]
    assert "; 6 bits, 200 training examples, 2 classes" in by_name["teacher-tiny"]
    assert "from the file" in by_name["csv"]
    assert any(line.strip() == "options: n_train=10000, n_test=10000" for line in lines)


def test_config_keys_lists_every_key_with_a_default_that_applies():
    from qhn.experiments.config import RunConfig
    from qhn.experiments.overrides import apply_overrides

    result = CliRunner().invoke(app, ["config", "keys"])
    assert result.exit_code == 0, result.output
    defaults = RunConfig(task="teacher")
    listed = []
    for line in result.output.splitlines():
        if " = " not in line:
            continue
        key, _, rest = line.strip().partition(" = ")
        value = rest.rsplit("  (", 1)[0]
        listed.append(key)
        value = "none" if value == "none (unset)" else value
        # Setting a key to the printed default leaves the default config unchanged.
        assert apply_overrides(defaults, [f"{key}={value}"]) == defaults, key
    flat = set(defaults.to_dict()) - {"train", "task", "task_options"}
    flat |= {f"train.{key}" for key in defaults.train.to_dict()}
    assert set(listed) == flat
