"""Training: the fit loop, its config, callbacks and resumable checkpoints."""

from qhn.train.callbacks import Callback, EarlyStopping, HistoryWriter, read_history
from qhn.train.checkpoint import (
    CHECKPOINT_FILE,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from qhn.train.loop import (
    OPTIMIZERS,
    SCHEDULES,
    FitResult,
    TrainConfig,
    anneal_factor,
    fit,
    is_stochastic,
    learning_rate,
)

__all__ = [
    "CHECKPOINT_FILE",
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "EarlyStopping",
    "FitResult",
    "HistoryWriter",
    "TrainConfig",
    "anneal_factor",
    "fit",
    "is_stochastic",
    "learning_rate",
    "load_checkpoint",
    "read_history",
    "restore_checkpoint",
    "save_checkpoint",
]
