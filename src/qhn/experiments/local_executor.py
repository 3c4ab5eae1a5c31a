"""The local executor: a pool of spawned worker processes that survives the death of a worker.

Each worker gets one job at a time over its own pipe, so the driver always knows which point a
worker holds. When a worker dies (``SIGKILL``, out of memory), only that point is affected: it
is queued again at the front (its run resumes from its checkpoint, the dead worker's lock
having been released by the OS) and a fresh worker is spawned; the other workers go on. A point
that has killed :data:`~qhn.experiments.executors.MAX_WORKER_DEATHS` workers is recorded as
failed, with ``error.txt`` saying so (e.g. ``worker died (signal 9) twice``). A point whose
directory another process holds is put at the back of the queue and then waited for.
``workers = 1`` runs in the calling process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from typing import Any

from qhn.errors import ConfigError
from qhn.experiments.executors import (
    MAX_WORKER_DEATHS,
    RunJob,
    RunOutcome,
    execute_run,
    record_failure,
)

__all__ = ["STOP_GRACE_SECONDS", "LocalExecutor"]

logger = logging.getLogger(__name__)

#: How long an interrupted sweep lets busy workers save their runs before it sends SIGTERM.
STOP_GRACE_SECONDS = 5.0


def _worker_main(conn: Connection) -> None:
    """A pool worker: run the jobs the driver sends, one at a time, until it sends None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the driver stops the workers
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            outcome = execute_run(job)
        except KeyboardInterrupt as stop:  # SIGINT/SIGTERM: the run saved a checkpoint
            sys.exit(getattr(stop, "exit_code", 130))
        try:
            conn.send(outcome)
        except OSError:  # the driver is gone
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: RunJob | None = None


def _describe_exit(code: int | None) -> str:
    """A worker's exit code in words: killed by a signal (negative), stopped by one after its
    run saved a checkpoint (128 + signal), or another status."""
    if code is not None and code < 0:
        return f"signal {-code}"
    if code is not None and code > 128:
        return f"signal {code - 128}"
    return f"exit status {code}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class LocalExecutor:
    """``workers`` spawned processes, each given one job at a time; 1 worker runs in this
    process. A job whose worker dies is queued again (its run resumes from the checkpoint)
    until it has killed ``max_deaths`` workers, then recorded as failed."""

    def __init__(self, workers: int = 1, max_deaths: int = MAX_WORKER_DEATHS) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.max_deaths = max_deaths

    def map(self, jobs: list[RunJob]) -> Iterator[RunOutcome]:
        queue = deque(jobs)
        if self.workers == 1 or len(jobs) <= 1:
            while queue:
                job = queue.popleft()
                outcome = execute_run(job)
                if outcome.status == "busy" and not job.wait:
                    queue.append(replace(job, wait=True))
                    continue
                yield outcome
            return
        yield from self._pool(queue)

    def _pool(self, queue: deque[RunJob]) -> Iterator[RunOutcome]:
        context = multiprocessing.get_context("spawn")
        workers: list[_Worker] = []
        deaths: dict[str, int] = {}
        try:
            while queue or any(w.job is not None for w in workers):
                for worker in [w for w in workers if w.job is None and not w.process.is_alive()]:
                    workers.remove(worker)  # died while idle: it cost no job
                    self._close(worker)
                for worker in [w for w in workers if w.job is None]:
                    if queue:
                        self._assign(worker, queue.popleft())
                while queue and len(workers) < self.workers:
                    workers.append(self._spawn(context))
                    self._assign(workers[-1], queue.popleft())
                busy = [w for w in workers if w.job is not None]
                wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    job = worker.job
                    assert job is not None
                    outcome = None
                    if worker.conn.poll():
                        with contextlib.suppress(EOFError, OSError):
                            outcome = worker.conn.recv()
                    if outcome is not None:
                        worker.job = None
                        if outcome.status == "busy" and not job.wait:
                            queue.append(replace(job, wait=True))
                        else:
                            yield outcome
                    elif not worker.process.is_alive():
                        workers.remove(worker)
                        self._close(worker)
                        died = _describe_exit(worker.process.exitcode)
                        deaths[job.id] = deaths.get(job.id, 0) + 1
                        if deaths[job.id] < self.max_deaths:
                            logger.warning("run %s: worker died (%s); queued again", job.id, died)
                            queue.appendleft(job)
                        else:
                            message = f"worker died ({died}) {_times(deaths[job.id])}"
                            yield record_failure(job.id, job.run_dir, message)
        finally:
            self._stop(workers)

    @staticmethod
    def _spawn(context: Any) -> _Worker:
        parent, child = context.Pipe(duplex=True)
        process = context.Process(target=_worker_main, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    @staticmethod
    def _assign(worker: _Worker, job: RunJob) -> None:
        """Hand ``job`` to an idle worker. A worker that died since is noticed by the wait
        that follows, so the job is queued again like any other a dying worker held."""
        worker.job = job
        with contextlib.suppress(OSError):
            worker.conn.send(job)

    @staticmethod
    def _close(worker: _Worker) -> None:
        worker.conn.close()
        worker.process.join()

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        """Idle workers are told to exit. Busy ones (only when the sweep itself is interrupted)
        get :data:`STOP_GRACE_SECONDS` to finish on their own, as they do after a Ctrl-C that
        reached them too (a run saves a checkpoint on its first SIGINT; a second signal would
        stop it before), then SIGTERM: their runs resume from their checkpoints next time."""
        for worker in workers:
            if worker.job is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        busy = [w.process for w in workers if w.job is not None]
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in busy:
            process.join(timeout=max(deadline - time.monotonic(), 0.0))
        for process in busy:
            if process.is_alive():
                process.terminate()
        for worker in workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():  # pragma: no cover - a worker ignoring SIGTERM
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
