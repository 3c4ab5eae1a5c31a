"""The training loop: minimize an objective's loss over a hypernetwork's angles.

One step evaluates the objective at the current angles ``θ_t`` (with a seeded generator, so the
whole run is reproducible bit for bit), backpropagates its loss and updates ``θ`` with Adam or
L-BFGS. The learning rate follows a closed-form schedule of the step index ``t = 0..T−1``:

- ``constant``: ``η_t = η``;
- ``cosine``:   ``η_t = η · ½ (1 + cos(π t / T))``;
- ``step``:     ``η_t = η · 0.5^⌊t / max(1, ⌊T/3⌋)⌋``.

Annealing warms the objective's prior weight up linearly: ``objective.anneal = min(1, t / A)``
for ``anneal_steps = A > 0`` (always 1 when ``A = 0``).

Each step produces one record (a flat dict of floats and ints) describing ``θ_t``, the angles
*before* that step's update: the loss, every objective metric, the gradient norm, the learning
rate, the anneal factor, the backend's execution counts so far and the elapsed seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from qhn.errors import ConfigError
from qhn.train.adam import Adam
from qhn.train.callbacks import Callback, EarlyStopping
from qhn.train.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from qhn.train.interrupts import TrainingInterrupted, deferred_interrupts
from qhn.validation import check_choice, check_int, check_number, unknown_key_error

__all__ = [
    "CHECKPOINT_SECONDS",
    "FINAL_STOP_REASONS",
    "OPTIMIZERS",
    "SCHEDULES",
    "FitResult",
    "TrainConfig",
    "anneal_factor",
    "check_choice",
    "check_int",
    "check_number",
    "evaluate_objective",
    "fit",
    "is_stochastic",
    "learning_rate",
]

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "lbfgs")
SCHEDULES = ("constant", "cosine", "step")
LBFGS_TOLERANCE_GRAD = 1e-6
#: torch's default (1e-9) on loss and step changes would end L-BFGS long before the gradient
#: tolerance on flat valleys; the reference stops on the gradient, so this only guards stalls.
LBFGS_TOLERANCE_CHANGE = 1e-12

#: Reasons after which resuming does nothing more: the run reached its natural end.
#: (``"callback"``, a stop requested by a user callback, is an interruption and resumes.)
FINAL_STOP_REASONS = ("early_stopping", "non_finite")

#: Default seconds of training between two checkpoints, so a killed run loses at most this much.
CHECKPOINT_SECONDS = 10.0


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """How to optimize: optimizer, schedule, annealing, seed, stopping and checkpoints.

    ``optimizer="lbfgs"`` is the reference reproduction: one step is one
    ``torch.optim.LBFGS.step`` of up to ``lbfgs_max_iter`` iterations with a strong-Wolfe line
    search and gradient tolerance 1e-6 (there ``lr`` is the initial step length: use ``lr = 1``).
    ``grad_clip`` clips the gradient's L2 norm (Adam only). ``early_stop_patience = p > 0`` stops
    after ``p`` steps without the loss improving by more than ``early_stop_min_delta``.
    ``checkpoint_every = K > 0`` saves a resumable checkpoint every ``K`` steps.
    """

    steps: int = 200
    lr: float = 0.05
    optimizer: str = "adam"
    lbfgs_max_iter: int = 20
    schedule: str = "constant"
    anneal_steps: int = 0
    seed: int = 0
    grad_clip: float | None = None
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_int("train.steps", self.steps, 1)
        set_(self, "lr", check_number("train.lr", self.lr, minimum=0.0, open_min=True))
        check_choice("train.optimizer", self.optimizer, OPTIMIZERS)
        check_int("train.lbfgs_max_iter", self.lbfgs_max_iter, 1)
        check_choice("train.schedule", self.schedule, SCHEDULES)
        check_int("train.anneal_steps", self.anneal_steps, 0)
        check_int("train.seed", self.seed, 0, 2**63 - 1)
        if self.grad_clip is not None:
            clip = check_number("train.grad_clip", self.grad_clip, minimum=0.0, open_min=True)
            set_(self, "grad_clip", clip)
            if self.optimizer == "lbfgs":
                raise ConfigError(
                    f"train.grad_clip = {clip:g} cannot be used with optimizer 'lbfgs' (clipping "
                    "breaks its line search); leave grad_clip unset or use optimizer 'adam'"
                )
        check_int("train.early_stop_patience", self.early_stop_patience, 0)
        delta = check_number("train.early_stop_min_delta", self.early_stop_min_delta, minimum=0.0)
        set_(self, "early_stop_min_delta", delta)
        check_int("train.checkpoint_every", self.checkpoint_every, 0)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (e.g. a TOML ``[train]`` table); unknown keys are refused."""
        valid = {f.name for f in fields(cls)}
        for key in values:
            if key not in valid:
                raise unknown_key_error(key, valid, " in [train]")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(config: TrainConfig, t: int) -> float:
    """The learning rate of step index ``t`` (0-based), in closed form (module docstring)."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * t / config.steps))
    if config.schedule == "step":
        return config.lr * 0.5 ** (t // max(1, config.steps // 3))
    return config.lr


def anneal_factor(config: TrainConfig, t: int) -> float:
    """The anneal multiplier of step index ``t``: ``min(1, t / anneal_steps)``, or 1."""
    if config.anneal_steps == 0:
        return 1.0
    return min(1.0, t / config.anneal_steps)


def is_stochastic(objective: object) -> bool:
    """Whether an objective's value is random: it says so, needs samples, or uses shots."""
    if getattr(objective, "stochastic", False):
        return True
    requires = getattr(objective, "requires", None)
    if getattr(requires, "value", requires) == "samples":
        return True
    return getattr(objective, "shots", None) is not None


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history``: one record per step (including steps restored from a checkpoint);
    ``steps_done``: completed steps; ``stop_reason``: ``"completed"``, ``"early_stopping"``,
    ``"non_finite"`` (a NaN/inf loss or gradient; that step's update was not applied) or
    ``"callback"`` (a user callback asked to stop; resumable); ``wall_time``: seconds spent in
    this call.
    """

    history: list[dict[str, Any]]
    steps_done: int
    stop_reason: str
    wall_time: float

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != "completed"

    @property
    def final(self) -> dict[str, Any]:
        """The last record (empty if no step ran)."""
        return self.history[-1] if self.history else {}


_RESERVED = ("step", "loss", "grad_norm", "lr", "anneal", "elapsed")


class _NonFiniteLoss(Exception):
    """Raised inside the L-BFGS closure to abort a step whose starting loss is not finite."""


def _trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters")
    return params


def _grad_norm(params: list[torch.nn.Parameter]) -> float:
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    if not norms:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(norms)))


def _check_setup(model: torch.nn.Module, objective: Any, config: TrainConfig) -> None:
    if hasattr(objective, "check"):
        objective.check(model)  # e.g. an exact objective on a samples-only backend
    if config.optimizer == "lbfgs" and is_stochastic(objective):
        raise ConfigError(
            f"optimizer 'lbfgs' needs a deterministic objective, but "
            f"{getattr(objective, 'name', type(objective).__name__)!r} is stochastic (it uses "
            "samples or shots); use optimizer 'adam' or an exact objective"
        )
    if config.anneal_steps > 0 and not hasattr(objective, "anneal"):
        raise ConfigError(
            f"train.anneal_steps = {config.anneal_steps} needs an objective with an 'anneal' "
            f"attribute; {type(objective).__name__} has none (set anneal_steps = 0)"
        )


def _make_optimizer(
    params: list[torch.nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer | Adam:
    if config.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            params,
            lr=config.lr,
            max_iter=config.lbfgs_max_iter,
            tolerance_grad=LBFGS_TOLERANCE_GRAD,
            tolerance_change=LBFGS_TOLERANCE_CHANGE,
            line_search_fn="strong_wolfe",
        )
    # Not torch.optim.Adam: creating it imports torch._dynamo (seconds), see qhn.train.adam.
    return Adam(params, lr=config.lr)


def _metrics(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if key in _RESERVED:
            continue
        out[key] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return out


def _stats_snapshot(model: torch.nn.Module) -> dict[str, int]:
    stats = getattr(model, "stats", None)
    return dict(stats.snapshot()) if stats is not None else {}


def fit(
    model: torch.nn.Module,
    objective: Any,
    config: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
    checkpoint_extra: dict[str, Any] | None = None,
) -> FitResult:
    """Optimize ``model``'s trainable parameters to minimize ``objective(model, generator=g).loss``.

    ``callbacks``: objects with ``on_step(record, model) -> bool`` (True asks to stop) and,
    optionally, ``on_start(history)`` (called once, with the records restored from a checkpoint,
    empty for a fresh run) and ``on_end()`` (called once, also after an error).
    ``checkpoint_dir``: where ``checkpoint.pt`` lives; a checkpoint is written after the first
    step that ends ``checkpoint_seconds`` or more after the previous one (None: never by time),
    every ``config.checkpoint_every`` steps, when the run ends or is stopped by a callback, and
    on SIGINT/SIGTERM: the step in progress finishes, the checkpoint is written and
    :class:`~qhn.train.interrupts.TrainingInterrupted` is raised (a second signal stops at once).
    ``checkpoint_extra``: plain data stored in every checkpoint (see ``save_checkpoint``).
    ``resume``: continue from that checkpoint if it exists (else start fresh); the result is
    bit-identical to an uninterrupted run with the same config. ``progress(step, total, record)``
    is called after every step (the CLI draws a progress bar with it).

    Shapes: ``model.theta`` ``(P,)``; records are flat dicts of floats and ints.
    """
    started = time.perf_counter()
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs a checkpoint_dir to resume from")
    _check_setup(model, objective, config)
    params = _trainable(model)
    optimizer = _make_optimizer(params, config)
    generator = torch.Generator().manual_seed(config.seed)

    callbacks = list(callbacks)
    if config.early_stop_patience > 0:
        callbacks.append(
            EarlyStopping(config.early_stop_patience, config.early_stop_min_delta, metric="loss")
        )

    history: list[dict[str, Any]] = []
    done = 0
    stop_reason = "completed"
    state = load_checkpoint(checkpoint_dir, config) if resume else None
    if state is not None:
        restore_checkpoint(
            state, model=model, optimizer=optimizer, generator=generator, objective=objective
        )
        history = list(state["history"])
        done = int(state["step"])
        if state["stop_reason"] in FINAL_STOP_REASONS:
            stop_reason = state["stop_reason"]
        logger.info("resumed from %s at step %d", checkpoint_dir, done)
    elapsed_before = float(history[-1]["elapsed"]) if history else 0.0

    last_saved = time.perf_counter()

    def checkpoint(reason: str | None) -> Path | None:
        nonlocal last_saved
        last_saved = time.perf_counter()
        if checkpoint_dir is not None:
            return save_checkpoint(
                checkpoint_dir,
                model=model,
                optimizer=optimizer,
                generator=generator,
                objective=objective,
                step=done,
                history=history,
                config=config,
                stop_reason=reason,
                extra=checkpoint_extra,
            )
        return None

    for callback in callbacks:
        if hasattr(callback, "on_start"):
            callback.on_start(list(history))
    with deferred_interrupts() as flag:
        try:
            while stop_reason == "completed" and done < config.steps:
                record = _one_step(model, objective, optimizer, generator, params, config, done)
                if record is None:
                    stop_reason = "non_finite"
                    logger.warning("non-finite loss or gradient at step %d; stopping", done + 1)
                    break
                done += 1
                record = {"step": done, **record}
                record.update(_stats_snapshot(model))
                record["elapsed"] = elapsed_before + time.perf_counter() - started
                history.append(record)
                logger.debug("step %d: loss %.6g", done, record["loss"])

                stops = [cb for cb in callbacks if cb.on_step(record, model)]
                if progress is not None:
                    progress(done, config.steps, record)
                if flag.signum is not None:
                    path = checkpoint(None)
                    raise TrainingInterrupted(flag.signum, done, config.steps, path)
                if stops:
                    stop_reason = getattr(stops[0], "stop_reason", "callback")
                    break
                due_by_steps = config.checkpoint_every and done % config.checkpoint_every == 0
                due_by_time = (
                    checkpoint_seconds is not None
                    and time.perf_counter() - last_saved >= checkpoint_seconds
                )
                if due_by_steps or due_by_time:
                    checkpoint(None)
            checkpoint(stop_reason)
        finally:
            for callback in callbacks:
                if hasattr(callback, "on_end"):
                    callback.on_end()

    wall = time.perf_counter() - started
    logger.info("fit ended after %d steps (%s) in %.2f s", done, stop_reason, wall)
    return FitResult(history=history, steps_done=done, stop_reason=stop_reason, wall_time=wall)


def evaluate_objective(
    model: torch.nn.Module,
    objective: Any,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    step: int | None = None,
) -> dict[str, float]:
    """The objective's loss, metrics and gradient norm at the current θ, which is left unchanged.

    History records describe θ before each update; this measures the final θ after the last
    update (``step`` sets the anneal factor, default ``config.steps``). With shots it is one
    more estimate and spends one more step's executions, which the model's counters record.
    """
    if hasattr(objective, "anneal"):
        objective.anneal = anneal_factor(config, config.steps if step is None else step)
    params = _trainable(model)
    for param in params:
        param.grad = None
    result = objective(model, generator=generator)
    result.loss.backward()
    out = {
        "loss": float(result.loss.detach()),
        **_metrics(result.metrics),
        "grad_norm": _grad_norm(params),
    }
    for param in params:
        param.grad = None
    return out


def _one_step(
    model: torch.nn.Module,
    objective: Any,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    params: list[torch.nn.Parameter],
    config: TrainConfig,
    t: int,
) -> dict[str, Any] | None:
    """Run step index ``t``; return its record (without step/stats/elapsed), or None if the loss
    or gradient at ``θ_t`` is not finite (then ``θ`` is left unchanged)."""
    lr = learning_rate(config, t)
    for group in optimizer.param_groups:
        group["lr"] = lr
    anneal = anneal_factor(config, t)
    if hasattr(objective, "anneal"):
        objective.anneal = anneal

    first: dict[str, Any] = {}

    def evaluate() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        result = objective(model, generator=generator)
        result.loss.backward()
        if not first:
            first["loss"] = float(result.loss.detach())
            first["metrics"] = _metrics(result.metrics)
            first["grad_norm"] = _grad_norm(params)
            if not (math.isfinite(first["loss"]) and math.isfinite(first["grad_norm"])):
                raise _NonFiniteLoss
        return result.loss

    try:
        if config.optimizer == "lbfgs":
            optimizer.step(evaluate)
        else:
            evaluate()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
    except _NonFiniteLoss:
        optimizer.zero_grad(set_to_none=True)
        return None
    return {
        "loss": first["loss"],
        **first["metrics"],
        "grad_norm": first["grad_norm"],
        "lr": lr,
        "anneal": anneal,
    }
