"""The Ray executor: each point a Ray task; the driver owns the sweep directory.

A task never sees the sweep directory. It trains in node-local scratch
(``$QHN_SCRATCH/qhn-scratch/<id>.<random>/``, ``$QHN_SCRATCH`` defaulting to the node's temporary
directory; ``qhn sweep --scratch DIR`` sets it for every task through the ``runtime_env``), then
returns the run's files: ``summary.json``, ``history.jsonl``, ``config.toml``, the figures and
``checkpoint.pt`` (so a finished run can be continued with more steps, as a local one), or
``error.txt`` and the checkpoint reached when the run raised. The driver writes them into
``runs/<id>/`` atomically, ``summary.json`` last, so on a multi-node cluster without a shared
filesystem nothing stays behind on the workers. A point with a checkpoint in the sweep
directory ships it out with its task and resumes from it. Landscapes are cached in each node's
scratch (``qhn-scratch/landscapes``).

The driver holds each point's directory lock (see :class:`~qhn.experiments.executors.DirectoryLock`)
while its task is in flight, and keeps at most one task per cluster CPU in flight, so a second
sweep on the same directory finds the points being run locked, not merely queued.

Data files (``task_options.path`` of ``csv`` and ``cost-vector`` tasks) are read by the task at
their absolute path: on a cluster they must be readable there on every node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.executors import (
    CHECKPOINT,
    ERROR,
    LANDSCAPES,
    MAX_WORKER_DEATHS,
    SUMMARY,
    DirectoryLock,
    RunJob,
    RunOutcome,
    error_line,
    execute_run,
    read_summary,
    record_failure,
)
from qhn.io import atomic_write_bytes

__all__ = ["SCRATCH_ENV", "RayExecutor", "RemoteJob", "RemoteResult", "run_in_scratch"]

logger = logging.getLogger(__name__)

#: The environment variable naming a worker node's scratch root.
SCRATCH_ENV = "QHN_SCRATCH"
SCRATCH = "qhn-scratch"


@dataclass(frozen=True)
class RemoteJob:
    """What a Ray task receives: the point, and its checkpoint's bytes when it resumes."""

    id: str
    config: RunConfig
    plots: bool = True
    checkpoint: bytes | None = None


@dataclass(frozen=True)
class RemoteResult:
    """What a Ray task returns: how the run ended and its files (relative path → bytes)."""

    outcome: RunOutcome
    files: dict[str, bytes]


def scratch_root() -> Path:
    """This node's scratch: ``$QHN_SCRATCH/qhn-scratch`` (default: the temporary directory).
    ``$VAR`` and ``~`` in ``QHN_SCRATCH`` are expanded on the node, so one setting can name a
    per-node place (``$TMPDIR/qhn`` under a batch scheduler)."""
    configured = os.path.expanduser(os.path.expandvars(os.environ.get(SCRATCH_ENV) or ""))
    return Path(configured or tempfile.gettempdir()) / SCRATCH


def run_in_scratch(job: RemoteJob) -> RemoteResult:
    """Run one point in a fresh scratch directory of this node and return its files (the Ray
    task). The scratch directory is removed afterwards; the landscape cache stays."""
    root = scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{job.id}.", dir=root))
    try:
        if job.checkpoint is not None:
            atomic_write_bytes(work / CHECKPOINT, job.checkpoint)
        run = RunJob(job.id, job.config, str(work), str(root / LANDSCAPES), job.plots)
        outcome = execute_run(run)
        files = {}
        for path in sorted(work.rglob("*")):
            name = path.relative_to(work).as_posix()
            if not path.is_file() or any(part.startswith(".") for part in Path(name).parts):
                continue  # the lock and temporary files
            files[name] = path.read_bytes()
        return RemoteResult(replace(outcome, summary=None), files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def deliver(run_dir: Path, result: RemoteResult) -> None:
    """Write a task's files into ``run_dir`` atomically, ``summary.json`` last; a completed run
    loses a stale ``error.txt``."""
    for name in sorted(result.files, key=lambda n: n == SUMMARY):
        target = run_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, result.files[name])
    if result.outcome.status == "completed":
        with contextlib.suppress(FileNotFoundError):
            (run_dir / ERROR).unlink()


class RayExecutor:
    """Each job a Ray task (one CPU) on the cluster at ``address``, or on a local instance with
    ``num_cpus = workers`` when ``address`` is None. ``scratch``: the tasks' scratch root on
    every node (sets ``QHN_SCRATCH`` in the ``runtime_env``, which goes to ``ray.init``). A
    task lost to a dead worker or node is retried by Ray up to ``max_deaths − 1`` times, then
    recorded as failed. Ray is shut down afterwards only when this executor started it."""

    def __init__(
        self,
        workers: int = 1,
        address: str | None = None,
        *,
        scratch: str | os.PathLike[str] | None = None,
        runtime_env: dict[str, Any] | None = None,
        max_deaths: int = MAX_WORKER_DEATHS,
    ) -> None:
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
        if scratch is not None:
            runtime_env = dict(runtime_env or {})
            env_vars = {**runtime_env.get("env_vars", {}), SCRATCH_ENV: os.fspath(scratch)}
            runtime_env["env_vars"] = env_vars
        self.runtime_env = runtime_env
        self.max_deaths = max_deaths

    def _init(self) -> bool:
        import ray

        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"log_to_driver": False, "runtime_env": self.runtime_env}
        try:
            if self.address is not None:
                ray.init(address=self.address, **options)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, **options)
        except ConnectionError as error:
            raise ConfigError(
                f"cannot reach the Ray cluster at {self.address}: {error_line(error)} "
                "(start it with `ray start --head`, or leave out --address for a local instance)"
            ) from None
        return True

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]:
        if not jobs:
            return
        import ray

        started_here = self._init()
        remote = ray.remote(num_cpus=1, max_retries=max(self.max_deaths - 1, 0))(run_in_scratch)
        capacity = max(1, int(ray.cluster_resources().get("CPU", self.workers)))
        queue = deque(jobs)
        inflight: dict[Any, tuple[RunJob, DirectoryLock]] = {}
        try:
            while queue or inflight:
                deferred: deque[RunJob] = deque()
                while queue and len(inflight) < capacity:
                    job = queue.popleft()
                    lock = DirectoryLock(job.run_dir)
                    # block only when nothing else can progress meanwhile
                    if not lock.acquire(wait=job.wait and not inflight):
                        deferred.append(replace(job, wait=True))
                        continue
                    run_dir = Path(job.run_dir)
                    if (run_dir / SUMMARY).exists():
                        lock.release()
                        yield RunOutcome(job.id, "other")
                        continue
                    checkpoint = run_dir / CHECKPOINT
                    payload = RemoteJob(
                        job.id,
                        job.config,
                        job.plots,
                        checkpoint.read_bytes() if checkpoint.exists() else None,
                    )
                    inflight[remote.remote(payload)] = (job, lock)
                queue.extend(deferred)
                if not inflight:
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0 if queue else None)
                for ref in ready:
                    job, lock = inflight.pop(ref)
                    try:
                        outcome = self._finish(ray, ref, job)
                    finally:
                        lock.release()
                    yield outcome
        finally:
            for ref, (_, lock) in inflight.items():
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                lock.release()
            if started_here:
                ray.shutdown()

    def _finish(self, ray: Any, ref: Any, job: RunJob) -> RunOutcome:
        try:
            result = ray.get(ref)
        except Exception as error:
            attempts = max(self.max_deaths, 1)
            message = f"Ray task failed ({attempts} attempts): {error_line(error)}"
            return record_failure(job.id, job.run_dir, message)
        deliver(Path(job.run_dir), result)
        outcome = result.outcome
        if outcome.status == "completed":
            outcome = replace(outcome, summary=read_summary(Path(job.run_dir)))
        return outcome
