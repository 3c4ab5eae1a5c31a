"""The configuration of one baseline run: a frozen, validated :class:`BaselineConfig` and its TOML.

.. code-block:: toml

    method = "bayesbinn"
    task = "teacher"
    steps = 500
    tau = 1.0
    [task_options]
    n_train = 200

Every field is checked when the config is built, before any compute; ``--set key=value``
overrides go through :func:`apply_baseline_overrides`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qhn.errors import ConfigError
from qhn.experiments.config import read_text_file
from qhn.experiments.toml_format import parse_override_value, toml_table, toml_value
from qhn.io import atomic_write_text
from qhn.validation import check_choice, check_int, check_number, unknown_key_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_LR",
    "METHODS",
    "BaselineConfig",
    "apply_baseline_overrides",
    "baseline_to_toml",
    "load_baseline_config",
    "save_baseline_config",
]

METHODS = ("bayesbinn", "ste", "anneal", "random", "exhaustive", "float")
#: Learning rate of each gradient method when ``lr`` is unset.
DEFAULT_LR = {"bayesbinn": 0.05, "ste": 0.01, "float": 0.01}


@dataclass(frozen=True)
class BaselineConfig:
    """One baseline run.

    Task: ``task``, ``task_options``, ``data_seed``, ``temperature`` (``T`` of ``ℓ = −N·C/T``;
    BayesBiNN's likelihood weight is ``N/T``). Run: ``method`` (one of :data:`METHODS`),
    ``seed``, ``steps`` (optimizer steps of the gradient methods; chain steps of ``anneal`` and
    draws of ``random`` when ``budget`` is unset), ``budget`` (evaluations of ``anneal`` /
    ``random``: set it to the QHN's to match budgets), ``restarts`` (independent runs of a
    gradient method, the best kept by training cost; a search spends its budget in one run).
    Gradient methods: ``lr`` (Adam for ste/float, the BLR step α for
    bayesbinn; unset = :data:`DEFAULT_LR`), ``init_scale`` (spread of the initial latent
    weights / natural parameters). BayesBiNN: ``tau`` (relaxation temperature τ),
    ``mc_samples`` (relaxed samples per step), ``prior_p`` (``P(bit = 1)`` of the prior).
    Anneal: ``replicas`` (chains), ``t_start`` / ``t_end`` (temperatures on ``C``),
    ``tempering`` (parallel tempering on a fixed geometric ladder instead of independent
    annealed chains). ``shots``: draws that stand for a product distribution too large to
    enumerate.
    """

    method: str
    task: str
    task_options: dict[str, Any] = field(default_factory=dict)
    data_seed: int = 0
    temperature: float = 1.0
    seed: int = 0
    steps: int = 500
    budget: int | None = None
    restarts: int = 1
    lr: float | None = None
    init_scale: float = 0.1
    tau: float = 0.1
    mc_samples: int = 4
    prior_p: float = 0.5
    replicas: int = 8
    t_start: float = 0.1
    t_end: float = 0.001
    tempering: bool = False
    shots: int = 1024

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        if not isinstance(self.task, str) or not self.task.strip():
            raise ConfigError(f"task must be a non-empty task name, got {self.task!r}")
        if not isinstance(self.task_options, dict):
            raise ConfigError(
                f"task_options must be a table of options, got {type(self.task_options).__name__}"
            )
        check_int("data_seed", self.data_seed, 0)
        check_number("temperature", self.temperature, minimum=0.0, open_min=True)
        check_int("seed", self.seed, 0)
        check_int("steps", self.steps, 1)
        if self.budget is not None:
            check_int("budget", self.budget, 1)
        check_int("restarts", self.restarts, 1)
        if self.lr is not None:
            check_number("lr", self.lr, minimum=0.0, open_min=True)
        check_number("init_scale", self.init_scale, minimum=0.0)
        check_number("tau", self.tau, minimum=0.0, open_min=True)
        check_int("mc_samples", self.mc_samples, 1)
        check_number(
            "prior_p", self.prior_p, minimum=0.0, maximum=1.0, open_min=True, open_max=True
        )
        check_int("replicas", self.replicas, 1)
        check_number("t_start", self.t_start, minimum=0.0, open_min=True)
        check_number("t_end", self.t_end, minimum=0.0, open_min=True)
        if self.t_end > self.t_start:
            raise ConfigError(
                f"t_end ({self.t_end}) must not exceed t_start ({self.t_start}); swap them"
            )
        if not isinstance(self.tempering, bool):
            raise ConfigError(f"tempering must be true or false, got {self.tempering!r}")
        check_int("shots", self.shots, 1)
        if self.method == "bayesbinn" and self.lr is not None and self.lr > 1:
            raise ConfigError(f"bayesbinn's lr is the BLR step α in (0, 1], got {self.lr}")

    @property
    def resolved_lr(self) -> float:
        """``lr``, or the method's default."""
        return self.lr if self.lr is not None else DEFAULT_LR.get(self.method, 0.0)

    @property
    def resolved_budget(self) -> int:
        """Evaluations ``anneal`` / ``random`` spend: ``budget``, else ``steps`` (random) or
        ``steps · replicas`` (anneal)."""
        if self.budget is not None:
            return self.budget
        return self.steps * (self.replicas if self.method == "anneal" else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BaselineConfig:
        """Build from a plain dict; an unknown key is one clear error."""
        valid = {f.name for f in fields(cls)}
        for key in values:
            if key not in valid:
                raise unknown_key_error(key, valid, " in the baseline config")
        for key in ("method", "task"):
            if key not in values:
                raise ConfigError(f"the baseline config needs {key} = ...")
        return cls(**values)


def baseline_to_toml(config: BaselineConfig) -> str:
    """The config as TOML (every field but ``None`` ones; ``task_options`` as a table)."""
    lines = ["# qhn baseline configuration: load it with qhn.baselines.load_baseline_config"]
    data = config.to_dict()
    for f in fields(BaselineConfig):
        value = data[f.name]
        if f.name != "task_options" and value is not None:
            lines.append(f"{f.name} = {toml_value(value)}")
    lines.append("")
    toml_table(lines, "task_options", data["task_options"])
    return "\n".join(lines) + "\n"


def save_baseline_config(config: BaselineConfig, path: str | os.PathLike[str]) -> None:
    """Write :func:`baseline_to_toml` atomically."""
    atomic_write_text(path, baseline_to_toml(config))


def load_baseline_config(path: str | os.PathLike[str]) -> BaselineConfig:
    """Read a baseline config from TOML; errors name the file."""
    path = Path(path)
    text = read_text_file(path, "baseline config")
    try:
        return BaselineConfig.from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def apply_baseline_overrides(config: BaselineConfig, overrides: Iterable[str]) -> BaselineConfig:
    """A copy with ``key=value`` overrides (``tau=0.5``, ``task_options.n_train=50``); values are
    TOML literals when they parse as one; ``none`` unsets ``lr`` or ``budget``."""
    data = config.to_dict()
    valid = {f.name for f in fields(BaselineConfig)}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. tau=0.5")
        value = parse_override_value(raw)
        if key in ("lr", "budget") and isinstance(value, str) and value.lower() == "none":
            value = None
        if key.startswith("task_options."):
            data["task_options"] = {**data["task_options"], key.split(".", 1)[1]: value}
        elif key in valid:
            data[key] = value
        else:
            raise unknown_key_error(key, valid, " for qhn baseline")
    return replace(config, **{k: v for k, v in data.items()})
