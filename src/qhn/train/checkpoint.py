"""Resumable training checkpoints.

A checkpoint holds everything a step depends on, so that resuming reproduces an uninterrupted
run bit for bit: the model's state (θ), the optimizer's state, the schedule position, the random
generator's state, the objective's state (if it has one), the execution counters, the history so
far and the training config it was made with. It is written atomically to
``<checkpoint_dir>/checkpoint.pt``.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import torch

from qhn.errors import ConfigError, QHNError
from qhn.io import atomic_torch_save

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("step", "stop_reason", "config", "model", "optimizer", "generator", "history")

#: Config fields that do not change the trajectory, so a resume may change them.
_FREE_FIELDS = ("checkpoint_every",)


class CheckpointError(QHNError):
    """A checkpoint file that cannot be read: truncated, corrupted or not a checkpoint."""


def save_checkpoint(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    step: int,
    history: list[dict[str, Any]],
    config: Any,
    stop_reason: str | None,
    objective: object = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the training state after ``step`` completed steps; return the file's path.

    ``stop_reason``: None while the run is in progress, else why it ended (see ``FitResult``).
    ``extra``: plain data stored beside the state (the runner keeps the whole run config and
    the task's fingerprint there, to refuse a resume that would change the computation).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "step": int(step),
        "stop_reason": stop_reason,
        "config": config.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"schedule": config.schedule, "base_lr": config.lr, "step": int(step)},
        "generator": generator.get_state(),
        "history": list(history),
        "extra": dict(extra or {}),
    }
    theta = getattr(model, "theta", None)
    if isinstance(theta, torch.Tensor):
        state["theta"] = theta.detach().clone()
    stats = getattr(model, "stats", None)
    if stats is not None:
        state["stats"] = dict(stats.snapshot())
    if objective is not None and hasattr(objective, "state_dict"):
        state["objective"] = objective.state_dict()
    path = directory / CHECKPOINT_FILE
    atomic_torch_save(path, state)
    logger.debug("checkpoint at step %d written to %s", step, path)
    return path


def read_checkpoint(directory: str | Path) -> dict[str, Any] | None:
    """Read ``<directory>/checkpoint.pt`` without checking it against a config; None if absent.

    The file is a zip archive (``torch.save``'s format); its structure and CRCs are verified
    before ``torch.load`` sees it, because torch may abort the process on some corrupted
    archives. Raises :class:`CheckpointError` naming the file for anything unreadable.
    """
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    fix = (
        "delete it to start the run again from step 0, or restore an intact copy "
        "(checkpoints are written atomically, so this one was damaged after it was written)"
    )
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; remove it or choose another --out")
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{path} ({size:,} bytes) is not a checkpoint (truncated or not written by qhn); {fix}"
        ) from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}; {fix}") from None
    if damaged is not None:
        raise CheckpointError(f"{path} is corrupted (member {damaged!r} fails its CRC); {fix}")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many types for a bad archive; all mean the same
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} cannot be loaded ({reason}); {fix}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} has checkpoint format {found!r}; this version reads format "
            f"{FORMAT_VERSION}; {fix}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; {fix}")
    return state


def load_checkpoint(directory: str | Path, config: Any = None) -> dict[str, Any] | None:
    """Read ``<directory>/checkpoint.pt`` (see :func:`read_checkpoint`); None if there is none.

    With ``config``, refuse a checkpoint made with a different training config (other than
    ``checkpoint_every``, and ``steps`` under a constant schedule, which may grow): resuming it
    would not reproduce either run.
    """
    state = read_checkpoint(directory)
    if state is not None and config is not None:
        path = Path(directory) / CHECKPOINT_FILE
        _check_compatible(path, state["config"], config)
        if config.steps < int(state["step"]):
            raise ConfigError(
                f"cannot resume from {path} with steps = {config.steps}: it has "
                f"{int(state['step'])} steps done already; give steps >= {int(state['step'])}"
            )
    return state


def _check_compatible(path: Path, saved: dict[str, Any], config: Any) -> None:
    current = config.to_dict()
    free = set(_FREE_FIELDS)
    if current.get("schedule") == "constant" == saved.get("schedule"):
        free.add("steps")
    changed = sorted(
        k for k in current.keys() | saved.keys() if k not in free and current.get(k) != saved.get(k)
    )
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise ConfigError(
            f"cannot resume from {path}: the training config changed ({detail}); "
            "use the original config or a fresh checkpoint directory"
        )


def restore_checkpoint(
    state: dict[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    objective: object = None,
) -> None:
    """Load a checkpoint's state into freshly built training objects (in place)."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise ConfigError(
            f"the checkpoint does not match this model or optimizer: {error}"
        ) from error
    generator.set_state(state["generator"])
    stats = getattr(model, "stats", None)
    if stats is not None and "stats" in state:
        if hasattr(stats, "load"):
            stats.load(state["stats"])
        else:
            for key, value in state["stats"].items():
                setattr(stats, key, value)
    if "objective" in state and objective is not None and hasattr(objective, "load_state_dict"):
        objective.load_state_dict(state["objective"])
