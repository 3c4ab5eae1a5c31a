"""Training: the fit loop, its config, callbacks and resumable checkpoints."""

from qhn.train.callbacks import Callback, EarlyStopping, HistoryWriter, read_history
from qhn.train.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from qhn.train.interrupts import TrainingInterrupted
from qhn.train.loop import (
    CHECKPOINT_SECONDS,
    OPTIMIZERS,
    SCHEDULES,
    FitResult,
    TrainConfig,
    anneal_factor,
    evaluate_objective,
    fit,
    is_stochastic,
    learning_rate,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_SECONDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "FitResult",
    "HistoryWriter",
    "TrainConfig",
    "TrainingInterrupted",
    "anneal_factor",
    "evaluate_objective",
    "fit",
    "is_stochastic",
    "learning_rate",
    "load_checkpoint",
    "read_checkpoint",
    "read_history",
    "restore_checkpoint",
    "save_checkpoint",
]
