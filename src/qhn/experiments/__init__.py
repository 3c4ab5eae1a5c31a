"""Experiments: run configs (TOML + overrides); later the runner, sweeps and reports."""

from qhn.experiments.config import (
    BACKENDS,
    ESTIMATORS,
    INITS,
    OBJECTIVES,
    RunConfig,
    config_hash,
    load_config,
    loads_config,
    save_config,
    to_toml,
    validate_task,
)
from qhn.experiments.overrides import apply_overrides

__all__ = [
    "BACKENDS",
    "ESTIMATORS",
    "INITS",
    "OBJECTIVES",
    "RunConfig",
    "apply_overrides",
    "config_hash",
    "load_config",
    "loads_config",
    "save_config",
    "to_toml",
    "validate_task",
]
