"""Running a sweep: one run directory per point, executed in a local process pool or on Ray.

:func:`run_sweep` expands and validates a sweep (:mod:`qhn.experiments.sweep`), then writes

- ``DIR/sweep.toml``: a copy of the sweep file;
- ``DIR/runs/<id>/``: one run directory per point (see :mod:`qhn.experiments.runner`), plus
  ``error.txt`` when the run raised (or its worker died :data:`MAX_WORKER_DEATHS` times);
- ``DIR/landscapes/``: the landscape cache the local runs share.

It is resumable at any moment, ``kill -9`` included: a point whose ``summary.json`` exists (the
runner writes it atomically, last) is complete; a point with a checkpoint but no summary resumes
from it; any other point starts afresh. Whoever runs a point holds an exclusive lock on its
directory (``.lock``, ``flock``, released by the OS when its process dies), so two sweeps on one
directory never train a point at once: a point locked by another process is put back at the end
of the queue, then waited for; one that the other process completed meanwhile counts as *done
by another process*, never as run twice or as failed.

Executors yield one :class:`RunOutcome` per job, as runs finish:

- :class:`~qhn.experiments.local_executor.LocalExecutor`: ``workers`` spawned processes, one
  job at a time each, so the driver always knows which point a worker holds. A worker that dies
  (``SIGKILL``, out of memory) costs only its own point, which is queued again (it resumes from
  its checkpoint) up to :data:`MAX_WORKER_DEATHS` times; the other workers go on.
  ``workers = 1`` runs in the calling process;
- :class:`~qhn.experiments.ray_executor.RayExecutor`: each point a Ray task that trains in
  node-local scratch and returns the run's files to the driver, which owns the sweep directory
  (``ray`` is imported only there).

Torch's thread count is set by :func:`qhn.experiments.runner.run` alone, so a point gives the
same result under every executor and under ``qhn train``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qhn.errors import ConfigError, QHNError, choices
from qhn.experiments.config import RunConfig, save_config
from qhn.experiments.sweep import SweepPoint, SweepSpec, check_tasks, expand, load_sweep
from qhn.io import atomic_write_text

__all__ = [
    "CHECKPOINT",
    "ERROR",
    "EXECUTORS",
    "MAX_WORKER_DEATHS",
    "SUMMARY",
    "DirectoryLock",
    "Executor",
    "RunJob",
    "RunOutcome",
    "SweepResult",
    "SweepStatus",
    "execute_run",
    "make_executor",
    "plan_sweep",
    "run_sweep",
]

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
ERROR = "error.txt"
LOCK = ".lock"
RUNS = "runs"
LANDSCAPES = "landscapes"
#: A point whose worker dies this many times is recorded as failed instead of queued again.
MAX_WORKER_DEATHS = 2


@dataclass(frozen=True)
class RunJob:
    """What a worker needs to run one point (picklable). ``wait``: block until another
    process holding the run's lock releases it, instead of answering ``busy``."""

    id: str
    config: RunConfig
    run_dir: str
    cache_dir: str
    plots: bool = True
    wait: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """How one job ended: ``status`` is ``completed`` (run here), ``failed``, ``other`` (found
    complete once its lock was free: done by another process) or ``busy`` (locked by another
    process); ``resumed``: continued from a checkpoint; ``summary``: the run's summary when
    complete; ``error``: a one-line message when failed."""

    id: str
    status: str
    resumed: bool = False
    summary: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class SweepStatus:
    """Counts passed to a progress callback after every finished run (``last``: that run;
    None on the first call, made before any run starts). ``skipped``: complete before the
    sweep started; ``others``: completed meanwhile by another process."""

    total: int
    skipped: int
    completed: int
    failed: int
    last: RunOutcome | None = None
    others: int = 0

    @property
    def done(self) -> int:
        """Points finished so far, by anyone."""
        return self.skipped + self.completed + self.others + self.failed


@dataclass
class SweepResult:
    """What a sweep did with each point; the lists partition the points: ``skipped`` (complete
    already), ``completed`` (ran here; ``resumed`` ⊆ ``completed`` continued a checkpoint),
    ``others`` (completed by another process meanwhile), ``failed`` (id → one-line error) and
    ``pending`` (not finished by anyone)."""

    out_dir: Path
    points: list[SweepPoint]
    skipped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every point has a complete run (by whoever ran it)."""
        return not self.failed and not self.pending


# --- one run ----------------------------------------------------------------------------------


class DirectoryLock:
    """An exclusive ``flock`` on ``run_dir/.lock``. The OS releases it when the holder dies, so
    a killed run leaves no stale lock. Without ``fcntl`` (Windows) it always succeeds."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock; False when another process holds it and ``wait`` is False."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no cross-process guard
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back (closing the descriptor releases the ``flock``)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def error_line(error: BaseException) -> str:
    """An exception as one line for the user: its message's lines joined, after its type unless
    it is one of qhn's own (whose messages already name the value and the fix)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, QHNError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def execute_run(job: RunJob) -> RunOutcome:
    """Run one point in its directory (the worker function of every executor).

    Under the directory's lock: a complete run is reported as ``other``; a checkpoint is
    resumed. A run that raises gets ``error.txt`` (its traceback, atomically); a successful one
    loses a stale ``error.txt``. Exceptions other than :class:`Exception` propagate.
    """
    from qhn.experiments import runner

    started = time.perf_counter()
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(run_dir)
    if not lock.acquire(wait=job.wait):
        return RunOutcome(job.id, "busy", error=f"{run_dir} is locked by another process")
    try:
        if (run_dir / SUMMARY).exists():
            return RunOutcome(job.id, "other", summary=read_summary(run_dir))
        resumed = (run_dir / CHECKPOINT).exists()
        try:
            summary = runner.run(
                job.config, run_dir, resume=resumed, cache_dir=job.cache_dir, plots=job.plots
            )
        except Exception as error:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            atomic_write_text(run_dir / ERROR, text)
            elapsed = time.perf_counter() - started
            return RunOutcome(job.id, "failed", resumed, error=error_line(error), seconds=elapsed)
        with contextlib.suppress(FileNotFoundError):
            (run_dir / ERROR).unlink()
        elapsed = time.perf_counter() - started
        return RunOutcome(job.id, "completed", resumed, summary=summary, seconds=elapsed)
    finally:
        lock.release()


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/summary.json``, or None when it cannot be read."""
    import json

    try:
        return json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def record_failure(job_id: str, run_dir: str | os.PathLike[str], message: str) -> RunOutcome:
    """A failure the run could not record itself (its worker died, Ray lost the task)."""
    with contextlib.suppress(OSError):
        atomic_write_text(Path(run_dir) / ERROR, message + "\n")
    return RunOutcome(job_id, "failed", error=message)


# --- executors --------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs jobs and yields one outcome per job as they finish (in any order)."""

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]: ...


def make_executor(
    name: str, workers: int = 1, address: str | None = None, **options: Any
) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``); ``options`` go to
    :class:`~qhn.experiments.ray_executor.RayExecutor` (``scratch``, ``runtime_env``)."""
    if name == "local":
        if address is not None or options.get("scratch") is not None:
            option = "--address" if address is not None else "--scratch"
            raise ConfigError(f"{option} is for executor 'ray'; the local executor has none")
        from qhn.experiments.local_executor import LocalExecutor

        return LocalExecutor(workers)
    if name == "ray":
        from qhn.experiments.ray_executor import RayExecutor

        return RayExecutor(workers, address, **options)
    raise ConfigError(f"unknown executor {name!r}; choose one of: {choices(EXECUTORS)}")


# --- the sweep --------------------------------------------------------------------------------


def plan_sweep(
    spec: SweepSpec | str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> tuple[list[SweepPoint], dict[str, str]]:
    """Expand and validate a sweep and say what each point needs: ``done`` (its summary
    exists), ``resume`` (a checkpoint, no summary) or ``new``. Writes nothing."""
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    points = expand(spec)
    check_tasks(points)
    runs = Path(out_dir) / RUNS
    plan = {}
    for point in points:
        run_dir = runs / point.id
        if (run_dir / SUMMARY).exists():
            plan[point.id] = "done"
        elif (run_dir / CHECKPOINT).exists():
            plan[point.id] = "resume"
        else:
            plan[point.id] = "new"
    return points, plan


def run_sweep(
    spec: SweepSpec | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    executor: str | Executor = "local",
    workers: int = 1,
    address: str | None = None,
    plots: bool = True,
    progress: Callable[[SweepStatus], None] | None = None,
) -> SweepResult:
    """Run every point of a sweep that has no complete run yet, in ``out_dir``.

    Everything is validated first (a :class:`ConfigError` names the bad point; nothing is
    written then). Failures are recorded in ``runs/<id>/error.txt`` and in the result; the other
    runs go on. ``plots``: write each run's figures. ``progress`` is called once before the first
    run and after each finished one.

    With the local executor and ``workers > 1`` the workers are spawned processes, which import
    the calling script's main module: call this under ``if __name__ == "__main__":`` in scripts.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    if isinstance(executor, str):
        executor = make_executor(executor, workers, address)
    points, plan = plan_sweep(spec, out_dir)
    out = Path(out_dir)
    runs = out / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.toml", spec.text)

    result = SweepResult(out, points)
    jobs = []
    for point in points:
        if plan[point.id] == "done":
            result.skipped.append(point.id)
            continue
        run_dir = runs / point.id
        run_dir.mkdir(exist_ok=True)
        if plan[point.id] == "new":
            save_config(point.config, run_dir / "config.toml")
        jobs.append(RunJob(point.id, point.config, str(run_dir), str(out / LANDSCAPES), plots))
    logger.info(
        "sweep %s: %d points, %d complete, %d to run",
        out,
        len(points),
        len(result.skipped),
        len(jobs),
    )
    unfinished = {job.id for job in jobs}

    def report(outcome: RunOutcome | None) -> None:
        if progress is not None:
            progress(
                SweepStatus(
                    len(points),
                    len(result.skipped),
                    len(result.completed),
                    len(result.failed),
                    outcome,
                    len(result.others),
                )
            )

    report(None)
    for outcome in executor.map(jobs):
        if outcome.id not in unfinished:  # pragma: no cover - an executor reporting a job twice
            continue
        unfinished.discard(outcome.id)
        if outcome.status == "completed":
            result.completed.append(outcome.id)
            if outcome.resumed:
                result.resumed.append(outcome.id)
        elif outcome.status == "other":
            result.others.append(outcome.id)
        elif outcome.status == "failed":
            result.failed[outcome.id] = outcome.error or "failed"
            logger.info("run %s failed: %s", outcome.id, outcome.error)  # in the result
        else:
            result.pending.append(outcome.id)
            logger.warning("run %s not run: %s", outcome.id, outcome.error)
        report(outcome)
    result.pending.extend(sorted(unfinished))
    return result
