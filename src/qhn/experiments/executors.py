"""Running a sweep: one run directory per point, executed in a local process pool or on Ray.

:func:`run_sweep` expands and validates a sweep (:mod:`qhn.experiments.sweep`), then writes

- ``DIR/sweep.toml``: a copy of the sweep file;
- ``DIR/runs/<id>/``: one run directory per point (see :mod:`qhn.experiments.runner`), plus
  ``error.txt`` (the traceback) when the run failed;
- ``DIR/landscapes/``: the landscape cache the runs share.

It is resumable at any moment, ``kill -9`` included: a point whose ``summary.json`` exists (the
runner writes it atomically, last) is skipped; a point with a checkpoint but no summary resumes
from it; any other point starts afresh. A run holds an exclusive lock on its directory
(``.lock``, released by the OS when its process dies), so a run orphaned by a killed sweep and
the same run started by a new sweep never write the same directory at once.

Executors yield :class:`RunOutcome` as runs finish:

- :class:`LocalExecutor`: a ``concurrent.futures.ProcessPoolExecutor`` (spawn context) with
  ``workers`` processes; ``workers = 1`` runs in the calling process;
- :class:`RayExecutor`: each point a Ray remote task, on the cluster at ``address`` or on a local
  instance with ``num_cpus = workers`` (``ray`` is imported only here).

Every run uses one torch thread (workers are processes, so this avoids oversubscription), which
also makes the summaries of both executors identical for the same seeds, timing fields aside.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qhn.errors import ConfigError, choices
from qhn.experiments.config import RunConfig, save_config
from qhn.experiments.sweep import SweepPoint, SweepSpec, check_tasks, expand, load_sweep
from qhn.io import atomic_write_text

__all__ = [
    "CHECKPOINT",
    "ERROR",
    "EXECUTORS",
    "SUMMARY",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
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


@dataclass(frozen=True)
class RunJob:
    """What a worker needs to run one point (picklable)."""

    id: str
    config: RunConfig
    run_dir: str
    cache_dir: str
    plots: bool = True


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended: ``status`` is ``completed``, ``failed``, ``skipped`` (already complete)
    or ``busy`` (another process holds its directory); ``resumed``: continued from a checkpoint;
    ``summary``: the run's summary when completed; ``error``: the message when failed."""

    id: str
    status: str
    resumed: bool = False
    summary: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class SweepStatus:
    """Counts passed to a progress callback after every finished run (``last``: that run;
    None on the first call, made before any run starts). ``skipped``: points this sweep does
    not run, complete already or busy in another process."""

    total: int
    skipped: int
    completed: int
    failed: int
    last: RunOutcome | None = None

    @property
    def done(self) -> int:
        """Points finished so far, skipped ones included."""
        return self.skipped + self.completed + self.failed


@dataclass
class SweepResult:
    """What a sweep did: every point, and the ids skipped, completed and failed (id → error)."""

    out_dir: Path
    points: list[SweepPoint]
    skipped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every point has a complete run."""
        return not self.failed and not self.pending


# --- one run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _directory_lock(run_dir: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking lock on ``run_dir``; yields False when another process
    holds it. The OS releases it when the holder dies, so a killed run leaves no stale lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process guard
        yield True
        return
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def execute_run(job: RunJob) -> RunOutcome:
    """Run one point in its directory (the worker function of every executor).

    Skips a complete run, resumes from a checkpoint, writes ``error.txt`` atomically when the run
    raises (and removes a stale one when it succeeds). Exceptions other than :class:`Exception`
    (``KeyboardInterrupt``) propagate.
    """
    from qhn.experiments import runner

    started = time.perf_counter()
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _directory_lock(run_dir) as locked:
        if not locked:
            return RunOutcome(job.id, "busy", error=f"{run_dir} is locked by another process")
        if (run_dir / SUMMARY).exists():
            return RunOutcome(job.id, "skipped", summary=_read_summary(run_dir))
        resumed = (run_dir / CHECKPOINT).exists()
        try:
            with _one_torch_thread():
                summary = runner.run(
                    job.config,
                    run_dir,
                    resume=resumed,
                    cache_dir=job.cache_dir,
                    plots=job.plots,
                )
        except Exception as error:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            atomic_write_text(run_dir / ERROR, text)
            message = f"{type(error).__name__}: {error}"
            return RunOutcome(
                job.id, "failed", resumed, error=message, seconds=time.perf_counter() - started
            )
        with contextlib.suppress(FileNotFoundError):
            (run_dir / ERROR).unlink()
        return RunOutcome(
            job.id, "completed", resumed, summary=summary, seconds=time.perf_counter() - started
        )


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _record_failure(job: RunJob, message: str) -> RunOutcome:
    """A failure the worker could not record itself (its process died, Ray lost the task)."""
    with contextlib.suppress(OSError):
        atomic_write_text(Path(job.run_dir) / ERROR, message + "\n")
    return RunOutcome(job.id, "failed", error=message)


# --- executors --------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they finish (in any order)."""

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]: ...


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class LocalExecutor:
    """A local process pool of ``workers`` spawned processes; 1 worker runs in this process."""

    def __init__(self, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]:
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:
                yield execute_run(job)
            return
        context = multiprocessing.get_context("spawn")
        pool = futures.ProcessPoolExecutor(
            max_workers=min(self.workers, len(jobs)),
            mp_context=context,
            initializer=_init_worker,
        )
        try:
            pending = {pool.submit(execute_run, job): job for job in jobs}
            for future in futures.as_completed(pending):
                job = pending[future]
                try:
                    yield future.result()
                except BrokenProcessPool as error:
                    yield _record_failure(job, f"worker process died: {error}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Each job a Ray remote task (one CPU each) on the cluster at ``address``, or on a local
    instance with ``num_cpus = workers`` when ``address`` is None. Ray is shut down afterwards
    only when this executor started it."""

    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(
                "executor 'ray' needs the ray package: pip install 'qhn[ray]' (or use "
                "--executor local)"
            ) from None
        self.workers = workers
        self.address = address

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]:
        if not jobs:
            return
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1, max_retries=0)(execute_run)
        pending = {}
        try:
            pending = {remote.remote(job): job for job in jobs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as error:
                        yield _record_failure(job, f"ray task failed: {error}")
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


def make_executor(name: str, workers: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address is not None:
            raise ConfigError("--address is for executor 'ray'; the local executor has none")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, address)
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
    status = SweepStatus(len(points), len(result.skipped), 0, 0)
    if progress is not None:
        progress(status)
    for outcome in executor.map(jobs):
        unfinished.discard(outcome.id)
        if outcome.status in ("completed", "skipped"):
            result.completed.append(outcome.id)
            if outcome.resumed:
                result.resumed.append(outcome.id)
        elif outcome.status == "failed":
            result.failed[outcome.id] = outcome.error or "failed"
            logger.warning("run %s failed: %s", outcome.id, outcome.error)
        else:
            result.pending.append(outcome.id)
            logger.warning("run %s not run: %s", outcome.id, outcome.error)
        status = SweepStatus(
            len(points),
            len(result.skipped) + len(result.pending),
            len(result.completed),
            len(result.failed),
            outcome,
        )
        if progress is not None:
            progress(status)
    result.pending.extend(sorted(unfinished))
    return result
