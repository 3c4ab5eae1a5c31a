"""The config reference is generated from the dataclasses and FIELD_DOCS: every key has a
meaning, and no meaning names a key that no longer exists."""

from __future__ import annotations

from dataclasses import MISSING, fields

from qhn.experiments.config import RunConfig
from qhn.experiments.config_docs import FIELD_DOCS, config_keys
from qhn.train import TrainConfig


def test_every_run_config_key_has_exactly_one_meaning():
    expected = {f.name for f in fields(RunConfig)} - {"train"}
    expected |= {f"train.{f.name}" for f in fields(TrainConfig)}
    assert set(FIELD_DOCS) == expected
    assert all(text.strip() for text in FIELD_DOCS.values())


def test_config_keys_carry_the_dataclass_defaults():
    config = RunConfig(task="teacher")  # every default applied, the oracle for the table
    for key in config_keys():
        if key.key == "task":
            assert key.default is MISSING
            continue
        if key.key.startswith("train."):
            actual = getattr(config.train, key.key.removeprefix("train."))
        else:
            actual = getattr(config, key.key)
        assert key.default == actual, key.key
