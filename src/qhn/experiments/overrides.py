"""``key=value`` overrides of a run config (``qhn train --set``, sweep grids)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from qhn.errors import ConfigError
from qhn.experiments.config import (
    RunConfig,
    run_keys,
    train_keys,
    unknown_run_key,
    validate_task,
)
from qhn.experiments.toml_format import parse_override_value
from qhn.train.loop import TrainConfig
from qhn.validation import unknown_key_error

__all__ = ["apply_overrides"]


def _optional_fields() -> set[str]:
    return {f.name for f in fields(RunConfig) if f.default is None} | {
        f.name for f in fields(TrainConfig) if f.default is None
    }


def apply_overrides(
    config: RunConfig, overrides: Iterable[str], *, check_task: bool = True
) -> RunConfig:
    """A copy of ``config`` with ``key=value`` overrides applied, then validated as a whole.

    Keys: a run field (``objective=selbo``), a training field (``train.steps=10`` or
    ``steps=10``) or a task option (``task_options.n_train=50``, nested with more dots).
    Values are TOML literals when they parse as one, else strings; ``none`` unsets an optional
    field (``shots=none``). ``check_task``: as in :func:`load_config`.
    """
    data = config.to_dict()
    known_run, known_train, optional = run_keys(), train_keys(), _optional_fields()
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. train.steps=10")
        path = key.split(".")
        if len(path) == 1 and path[0] in known_train:
            path = ["train", path[0]]
        value = parse_override_value(raw)
        if path[-1] in optional and isinstance(value, str) and value.lower() in ("none", "null"):
            value = None
        head = path[0]
        if head in ("task_options", "noise", "baseline"):
            _set_nested(data, path, value, key)
        elif head == "train" and len(path) == 2:
            if path[1] not in known_train:
                raise unknown_key_error(path[1], known_train, " in [train]")
            data["train"][path[1]] = value
        elif head in known_run and len(path) == 1:
            data[head] = value
        elif head in known_run:
            parent = ".".join(path[:-1])
            raise ConfigError(f"{key!r} is not a valid key: {parent!r} is not a table")
        else:
            raise unknown_run_key(key)
    result = RunConfig.from_dict(data)
    if check_task:
        validate_task(result)
    return result


def _set_nested(data: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    if len(path) == 1:
        if not isinstance(value, dict):
            example = (
                "task_options={n_train = 50}" if path[0] == "task_options" else "noise={p1 = 0.001}"
            )
            raise ConfigError(f"{path[0]} must be a table, e.g. {path[0]}={example}, got {value!r}")
        data[path[0]] = value
        return
    table = data
    for part in path[:-1]:
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} holds {child!r}, not a table")
        table = child
    table[path[-1]] = value
