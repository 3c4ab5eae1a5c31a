"""``qhn sweep --executor ray --address HOST:PORT`` on a real two-node Ray cluster on loopback:
a head and a second node, each with its own temporary directory and one CPU. The tasks train
in scratch directories the driver never reads: ``--scratch '$QHN_NODE_DIR/scratch'`` reaches
the tasks through the ``runtime_env`` and is expanded on each node, whose ``ray start`` set its
own ``QHN_NODE_DIR``. Every run directory must still end up complete in the driver's sweep
directory, identical to an in-process run of the same point (timing fields aside), and both
nodes must have trained."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from qhn.experiments import runner
from qhn.experiments.sweep import expand, load_sweep
from qhn.train import read_history

pytest.importorskip("ray", reason="ray is not installed (pip install 'qhn[ray]')")

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SPEC = """
seeds = 2
[base]
task = "teacher-tiny"
[base.task_options]
n_train = 60
n_test = 60
[base.train]
steps = 20
[grid]
objective = ["mle", "elbo"]
"""
TIMING = ("train_seconds", "wall_seconds")
# A cluster of its own: no token from ~/.ray, no usage reporting.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(args: list[str], temp_dir: str, log: Path) -> subprocess.Popen:
    """``ray start … --block`` in a session of its own, so that the node's processes can be
    stopped together (by that process group) without touching any other Ray on the machine.
    Its processes see ``QHN_NODE_DIR = temp_dir``."""
    command = [str(BIN / "ray"), "start", *args, "--num-cpus", "1", "--temp-dir", temp_dir]
    command += ["--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block"]
    env = {**ENV, "QHN_NODE_DIR": temp_dir}
    with log.open("w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def wait_until_started(node: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if node.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    pytest.skip(f"`ray start` did not start a node here: {tail[0]}")


def stop(nodes: list[subprocess.Popen]) -> None:
    """SIGKILL each node's process group (the session ``start_node`` gave it)."""
    for node in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()


@pytest.fixture
def cluster(tmp_path):
    """(address, the two nodes' directories) of a head and a second node on 127.0.0.1, torn
    down afterwards. Ray's socket paths must stay short, hence temp dirs directly under the
    system's."""
    head_dir = tempfile.mkdtemp(prefix="qhn-ray-head-")
    node_dir = tempfile.mkdtemp(prefix="qhn-ray-node-")
    port = free_port()
    nodes = []
    try:
        head_args = ["--head", "--port", str(port), "--include-dashboard", "false"]
        nodes.append(start_node(head_args, head_dir, tmp_path / "head.log"))
        wait_until_started(nodes[0], tmp_path / "head.log")
        address = f"127.0.0.1:{port}"
        nodes.append(start_node(["--address", address], node_dir, tmp_path / "node.log"))
        wait_until_started(nodes[1], tmp_path / "node.log")
        yield address, (Path(head_dir), Path(node_dir))
    finally:
        stop(nodes)
        for directory in (head_dir, node_dir):
            shutil.rmtree(directory, ignore_errors=True)


def test_a_sweep_on_a_two_node_cluster_lands_whole_in_the_drivers_directory(tmp_path, cluster):
    address, node_dirs = cluster
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    command = [str(BIN / "qhn"), "sweep", str(spec), "--out", str(out), "--executor", "ray"]
    command += ["--address", address, "--scratch", "$QHN_NODE_DIR/scratch", "--no-report"]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 points: 0 already complete, 4 ran (0 resumed), 0 done by another process" in (
        done.stderr
    )

    points = expand(load_sweep(spec))
    for point in points:
        run_dir = out / "runs" / point.id
        names = {p.name for p in run_dir.iterdir()} - {".lock"}
        assert {"config.toml", "history.jsonl", "summary.json", "checkpoint.pt"} <= names
        assert "curves.png" in names
        reference = runner.run(point.config, tmp_path / "ref" / point.id, plots=False)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert {k: v for k, v in summary.items() if k not in TIMING} == {
            k: v for k, v in reference.items() if k not in TIMING
        }
        assert [r["step"] for r in read_history(run_dir / "history.jsonl")] == list(range(1, 21))
    # both nodes trained, in their own scratch only (landscapes stay; run folders are removed)
    assert not (out / "landscapes").exists()
    for node_dir in node_dirs:
        scratch = node_dir / "scratch" / "qhn-scratch"
        assert {p.name for p in scratch.iterdir()} == {"landscapes"}, node_dir
