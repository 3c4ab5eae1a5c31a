"""Does a sweep lose, duplicate or corrupt runs when it is killed?

``python benchmarks/sweep_interrupt.py [--steps 600] [--workers 2] [--dir DIR]``

Runs one 20-point sweep file twice with ``qhn sweep --workers 2`` (each time as a subprocess in
its own process group):

- uninterrupted, as the reference;
- interrupted: ``SIGKILL`` of the whole process group at three moments (each while runs are
  in training, after 3, 8 and 13 points completed), resuming in between, and ``SIGKILL`` of one
  single worker in the middle of a run once (in the third attempt); then resumed to the end.

Then, per point:

- completed: ``summary.json`` readable at the end;
- duplicated: trained twice: a summary rewritten after it existed (a complete run trained
  again), repeated step records in ``history.jsonl``, or checkpointed progress thrown away
  (the records up to a checkpoint seen at a kill differ from the final ones: ``elapsed`` is
  restored from the checkpoint, so a resumed run keeps them and a restarted one does not);
- corrupted: ``summary.json`` unreadable or different from the reference in any non-timing
  field, or ``history.jsonl`` not exactly steps 1..S, or an ``error.txt``.

Prints a table of the attempts and those counts; exits 1 when a point is missing, duplicated or
corrupted. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

QHN = Path(sys.executable).with_name("qhn")
TIMING = ("train_seconds", "wall_seconds")
SWEEP = """
seeds = 5
[base]
ansatz = "hardware_efficient"
layers = 2
[base.train]
steps = {steps}
[grid]
task = ["teacher-tiny", "xor"]
objective = ["mle", "elbo"]
"""


def read_records(path: Path) -> list[dict]:
    records = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    records.append(json.loads(line))
    except (OSError, ValueError):
        return []
    return records


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def checkpoint_step(run_dir: Path) -> int | None:
    from qhn.train import read_checkpoint

    try:
        state = read_checkpoint(run_dir)
    except Exception:  # a checkpoint torn by the kill counts as none
        return None
    return None if state is None else int(state["step"])


def summaries(out: Path) -> dict[str, tuple[int, int]]:
    """run id → (inode, mtime_ns) of its summary.json."""
    found = {}
    for path in out.glob("runs/*/summary.json"):
        stat = path.stat()
        found[path.parent.name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def in_training(out: Path, sweep_pid: int) -> list[tuple[str, int]]:
    """(run id, worker pid) of each run a worker is training now (it holds the run's lock and
    the run has steps but no summary)."""
    holders = {}
    for pid in children(sweep_pid):
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                holders[os.readlink(fd)] = pid
        except OSError:
            continue
    running = []
    for history in out.glob("runs/*/history.jsonl"):
        run_dir = history.parent
        lock = os.path.realpath(run_dir / ".lock")
        if lock in holders and not (run_dir / "summary.json").exists() and read_records(history):
            running.append((run_dir.name, holders[lock]))
    return running


def start(spec: Path, out: Path, workers: int) -> subprocess.Popen:
    command = [str(QHN), "sweep", str(spec), "--out", str(out), "--workers", str(workers)]
    command += ["--no-plots", "--no-report"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def counts_line(text: str) -> str:
    lines = [line for line in text.splitlines() if " points: " in line]
    return lines[-1].strip() if lines else ""


@dataclass
class Attempt:
    label: str
    rc: int | None
    complete: int
    seconds: float
    note: str


def without_timing(summary: dict | None) -> dict:
    return {k: v for k, v in (summary or {}).items() if k not in TIMING}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps per point")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="qhn-sweep-interrupt-"))
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "sweep.toml"
    spec.write_text(SWEEP.format(steps=args.steps))
    attempts: list[Attempt] = []

    reference = root / "reference"
    began = time.monotonic()
    process = start(spec, reference, args.workers)
    _, stderr = process.communicate()
    attempts.append(
        Attempt(
            "uninterrupted (reference)",
            process.returncode,
            len(summaries(reference)),
            time.monotonic() - began,
            counts_line(stderr),
        )
    )

    out = root / "interrupted"
    seen: dict[str, tuple[int, int]] = {}  # a summary's identity when first seen
    rewritten: set[str] = set()
    kept: dict[str, dict[int, float]] = {}  # records up to a checkpoint seen at a kill

    def observe() -> None:
        for run_id, identity in summaries(out).items():
            if seen.setdefault(run_id, identity) != identity:
                rewritten.add(run_id)

    def remember_checkpoints() -> None:
        for run_dir in (out / "runs").glob("*"):
            if (run_dir / "summary.json").exists():
                continue
            step = checkpoint_step(run_dir)
            if step:
                records = read_records(run_dir / "history.jsonl")
                kept[run_dir.name] = {r["step"]: r["elapsed"] for r in records if r["step"] <= step}

    for kill_after, kill_worker in ((3, False), (8, False), (13, True)):
        began = time.monotonic()
        process = start(spec, out, args.workers)
        note = ""
        worker_killed = False
        while process.poll() is None:
            observe()
            running = in_training(out, process.pid)
            if kill_worker and not worker_killed and running:
                run_id, pid = running[0]
                os.kill(pid, signal.SIGKILL)
                worker_killed = True
                note = f"SIGKILL worker {pid} training {run_id}; "
            elif len(summaries(out)) >= kill_after and running:
                remember_checkpoints()
                os.killpg(process.pid, signal.SIGKILL)
                note += f"SIGKILL group; runs in training: {len(running)}"
                break
            time.sleep(0.05)
        process.communicate()
        observe()
        attempts.append(
            Attempt(
                f"attempt {len(attempts)}",
                process.returncode,
                len(summaries(out)),
                time.monotonic() - began,
                note or "finished before the kill",
            )
        )

    began = time.monotonic()
    process = start(spec, out, args.workers)
    while process.poll() is None:
        observe()
        time.sleep(0.05)
    _, stderr = process.communicate()
    observe()
    attempts.append(
        Attempt(
            f"attempt {len(attempts)} (resume to the end)",
            process.returncode,
            len(summaries(out)),
            time.monotonic() - began,
            counts_line(stderr),
        )
    )

    points = sorted(p.name for p in (reference / "runs").iterdir())
    completed, duplicated, corrupted = [], [], []
    for run_id in points:
        mine, theirs = out / "runs" / run_id, reference / "runs" / run_id
        summary, expected = read_json(mine / "summary.json"), read_json(theirs / "summary.json")
        if summary is not None:
            completed.append(run_id)
        records = read_records(mine / "history.jsonl")
        steps = [r["step"] for r in records]
        final = {r["step"]: r["elapsed"] for r in records}
        if (
            run_id in rewritten
            or len(steps) != len(set(steps))
            or any(final.get(step) != elapsed for step, elapsed in kept.get(run_id, {}).items())
        ):
            duplicated.append(run_id)
        if (
            summary is None
            or without_timing(summary) != without_timing(expected)
            or steps != list(range(1, len(steps) + 1))
            or not steps
            or (mine / "error.txt").exists()
        ):
            corrupted.append(run_id)

    print(
        f"sweep_interrupt: {len(points)} points (teacher-tiny, xor × mle, elbo × 5 seeds, "
        f"{args.steps} steps), --workers {args.workers}, in {root}"
    )
    print(f"{'attempt':<34} {'exit':>5} {'complete':>9} {'seconds':>8}  note")
    for a in attempts:
        rc = "-" if a.rc is None else str(a.rc)
        print(f"{a.label:<34} {rc:>5} {a.complete:>9} {a.seconds:>8.1f}  {a.note}")
    print(
        f"completed {len(completed)}/{len(points)}, duplicated {len(duplicated)}, "
        f"corrupted {len(corrupted)}; checkpoints seen at kills: {len(kept)}"
    )
    for label, ids in (("duplicated", duplicated), ("corrupted", corrupted)):
        for run_id in ids:
            print(f"  {label}: {run_id}")
    return 0 if len(completed) == len(points) and not duplicated and not corrupted else 1


if __name__ == "__main__":
    sys.exit(main())
