"""Defaults shown in ``--help``: the flags of ``qhn train`` and ``qhn baseline`` default to
"unset" (so that a ``--config`` file wins), and their help shows the value that then applies,
read from the config dataclasses so it cannot drift from them."""

from __future__ import annotations

from dataclasses import MISSING, fields

__all__ = ["SET_HELP", "baseline_default", "run_default"]

#: The help of every ``--set`` option that takes run-config keys.
SET_HELP = "key=value override of any config key; repeatable. Keys: qhn config keys."


def _shown(cls: type, name: str) -> str:
    from qhn.experiments.toml_format import toml_value

    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                return "required"
            return "unset" if value is None else toml_value(value).strip('"')
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def run_default(key: str) -> str:
    """The default of a run-config key (``objective``, ``train.steps``) as ``--help`` shows it."""
    from qhn.experiments.config import RunConfig
    from qhn.train import TrainConfig

    if key.startswith("train."):
        return _shown(TrainConfig, key.removeprefix("train."))
    return _shown(RunConfig, key)


def baseline_default(key: str) -> str:
    """The default of a baseline-config key as ``--help`` shows it."""
    from qhn.baselines.config import BaselineConfig

    return _shown(BaselineConfig, key)
