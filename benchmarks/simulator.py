"""qhn's statevector simulator and gradient estimators side by side with PennyLane.

(The probability vector against qsim, lightning and Aer in float64 and float32, with first-call
times, peak memory and pass counts, is ``benchmarks/simulator_probs.py``.)

The same workload runs on qhn and on PennyLane in one process: a hardware-efficient circuit of RY
rotations and a chain of CZ entanglers (``hardware_efficient(n, layers)``, ``P = (layers + 1)·n``
angles) at random angles, and four tasks:

- ``probs``: the probability vector ``q_θ`` (qhn ``StatevectorBackend.probs``; PennyLane
  ``qml.probs`` on ``default.qubit`` and ``lightning.qubit``);
- ``grad``: the exact gradient of ``E_q[c] = Σ_s q_θ(s) c(s)`` (qhn: the ``Backprop`` estimator's
  ``expectation(...).backward()``; ``default.qubit``: ``qml.probs`` with torch backprop, then
  ``probs @ c``; ``lightning.qubit``: ``diff_method="adjoint"``, which needs an observable);
- ``shots``: 1024 measured bitstrings (qhn ``sample``; PennyLane ``qml.sample()`` with
  ``shots=1024``);
- ``param-shift``: the exact parameter-shift gradient of ``E_q[c]``, ``2P`` shifted circuits
  (qhn ``ParameterShift`` with ``shots=None``, the shifted circuits batched; PennyLane
  ``diff_method="parameter-shift"`` on ``default.qubit``).

The cost. A ``2^n × 2^n`` ``qml.Hermitian`` is far too big for the adjoint method, so ``c`` is a
random Ising cost, diagonal in the computational basis:
``c(s) = Σ_q a_q z_q + Σ_q b_q z_q z_{q+1}`` with ``z_q = 1 − 2 s_q`` (``|0⟩ ↦ +1``, the
eigenvalue of Pauli Z), ``a, b`` standard normal. qhn and ``default.qubit`` backprop get ``c`` as a
cost vector over all ``2^n`` bitstrings; the adjoint and parameter-shift peers get the same
function as ``qml.expval`` of ``Σ a_q Z_q + Σ b_q Z_q Z_{q+1}`` (their most efficient form). The
gradients are checked against each other and the largest difference is printed.

Each time is the median of ``--repeats`` calls after one warm-up call; peers slower than a few
seconds a call get fewer repeats (the count is printed), and PennyLane's parameter shift is skipped
when one forward pass times ``2P`` predicts more than 60 s, or default.qubit backprop when its
autograd tape would hold more than ``--max-peer-gib``. The ratio is qhn time / peer time: below 1,
qhn is faster. Timings on a shared machine are noisy; compare ratios, not absolute numbers.

Usage: ``python benchmarks/simulator.py [--quick] [--n 12 16] [--layers 2 6] [--repeats 5]
[--threads 1]``. On a loaded machine, torch's parallel regions can wait tens of milliseconds for a
descheduled thread; ``--threads 1`` shows the single-core comparison without that noise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import torch

from qhn.backends import StatevectorBackend
from qhn.bits import iter_bit_chunks
from qhn.circuits import Circuit, hardware_efficient
from qhn.gradients import Backprop, ParameterShift

SHOTS = 1024
#: Skip PennyLane's parameter shift when its predicted time per gradient exceeds this.
PARAM_SHIFT_LIMIT_S = 60.0
#: Time spent on one cell's repeats beyond the warm-up, at most (slow peers get fewer repeats).
CELL_BUDGET_S = 20.0


@dataclass
class Timing:
    """Median seconds over ``count`` calls (``count = 0``: the warm-up call alone was timed)."""

    seconds: float
    count: int


@dataclass
class Row:
    n: int
    layers: int
    task: str
    peer: str
    qhn: Timing
    other: Timing | None
    note: str = ""


def measure(fn: Callable[[], object], repeats: int) -> Timing:
    """One warm-up call, then up to ``repeats`` timed calls within :data:`CELL_BUDGET_S`."""
    start = time.perf_counter()
    fn()
    warm = time.perf_counter() - start
    count = repeats if warm * repeats <= CELL_BUDGET_S else int(CELL_BUDGET_S // warm)
    if count < 1:
        return Timing(warm, 0)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), count)


def ising_cost(n: int, generator: torch.Generator):
    """Random Ising coefficients ``a (n,)``, ``b (n−1,)`` and the cost vector ``c (2**n,)``."""
    a = torch.randn(n, generator=generator, dtype=torch.float64)
    b = torch.randn(max(n - 1, 0), generator=generator, dtype=torch.float64)
    cost = torch.empty(2**n, dtype=torch.float64)
    for first, bits in iter_bit_chunks(n, 2**16):
        z = 1.0 - 2.0 * bits.to(torch.float64)
        cost[first : first + bits.shape[0]] = z @ a + (z[:, :-1] * z[:, 1:]) @ b
    return a, b, cost


class PennyLanePeers:
    """QNodes for one circuit on default.qubit and lightning.qubit (PennyLane imported lazily)."""

    def __init__(self, circuit: Circuit, a: torch.Tensor, b: torch.Tensor) -> None:
        import pennylane as qml

        self.qml = qml
        self.circuit = circuit
        n = circuit.n_qubits
        wires = list(range(n))
        terms = [qml.Z(q) for q in wires] + [qml.Z(q) @ qml.Z(q + 1) for q in wires[:-1]]
        self.hamiltonian = qml.dot(torch.cat([a, b]).tolist(), terms)
        default = qml.device("default.qubit", wires=wires)
        lightning = qml.device("lightning.qubit", wires=wires)

        def probs(t):
            self._gates(t)
            return qml.probs(wires=wires)

        def expval(t):
            self._gates(t)
            return qml.expval(self.hamiltonian)

        def sample(t):
            self._gates(t)
            return qml.sample(wires=wires)

        torch_qnode = {"interface": "torch"}
        self.probs = {
            "default.qubit": qml.QNode(probs, default, diff_method="backprop", **torch_qnode),
            "lightning.qubit": qml.QNode(probs, lightning, diff_method=None, **torch_qnode),
        }
        self.adjoint_expval = qml.QNode(expval, lightning, diff_method="adjoint", **torch_qnode)
        self.shift_expval = qml.QNode(expval, default, diff_method="parameter-shift", **torch_qnode)
        self.sample = {
            "default.qubit": qml.QNode(sample, default, shots=SHOTS, **torch_qnode),
            "lightning.qubit": qml.QNode(sample, lightning, shots=SHOTS, **torch_qnode),
        }

    def _gates(self, t) -> None:
        qml = self.qml
        for gate in self.circuit.gates:
            if gate.name == "ry":
                qml.RY(t[gate.param], wires=gate.wires[0])
            elif gate.name == "cz":
                qml.CZ(wires=list(gate.wires))
            else:  # pragma: no cover - the benchmark circuit has RY and CZ only
                raise ValueError(f"benchmark circuit has an unexpected gate {gate.name!r}")


def gradient_of(fn: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor) -> torch.Tensor:
    t = theta.detach().clone().requires_grad_(True)
    fn(t).backward()
    return t.grad


def bench_circuit(n: int, layers: int, repeats: int, max_peer_gib: float) -> list[Row]:
    generator = torch.Generator().manual_seed(1000 * n + layers)
    circuit = hardware_efficient(n, layers)
    theta = torch.rand(circuit.n_params, generator=generator, dtype=torch.float64) * 2 * math.pi
    a, b, cost = ising_cost(n, generator)
    backend = StatevectorBackend()
    backprop, shift = Backprop(), ParameterShift()
    peers = PennyLanePeers(circuit, a, b)
    rows: list[Row] = []

    def qhn_expectation(t):
        return backprop.expectation(backend, circuit, t, cost)

    def qhn_shift(t):
        return shift.expectation(backend, circuit, t, cost)

    def pl_probs_cost(t):
        return peers.probs["default.qubit"](t) @ cost

    # probabilities
    with torch.no_grad():
        qhn_time = measure(lambda: backend.probs(circuit, theta), repeats)
        for name, qnode in peers.probs.items():
            rows.append(
                Row(n, layers, "probs", name, qhn_time, measure(lambda q=qnode: q(theta), repeats))
            )

    # exact gradient of E_q[c]
    reference = gradient_of(qhn_expectation, theta)
    qhn_time = measure(lambda: gradient_of(qhn_expectation, theta), repeats)
    states = sum(1 for g in circuit.gates) * 2**n * 16 / 2**30
    if states > max_peer_gib:
        rows.append(
            Row(
                n,
                layers,
                "grad",
                "default.qubit backprop",
                qhn_time,
                None,
                f"skipped (autograd tape ~{states:.1f} GiB)",
            )
        )
    else:
        peer = measure(lambda: gradient_of(pl_probs_cost, theta), repeats)
        diff = (gradient_of(pl_probs_cost, theta) - reference).abs().max().item()
        rows.append(
            Row(
                n,
                layers,
                "grad",
                "default.qubit backprop",
                qhn_time,
                peer,
                f"max |Δgrad| {diff:.1e}",
            )
        )
    peer = measure(lambda: gradient_of(peers.adjoint_expval, theta), repeats)
    diff = (gradient_of(peers.adjoint_expval, theta) - reference).abs().max().item()
    rows.append(
        Row(n, layers, "grad", "lightning.qubit adjoint", qhn_time, peer, f"max |Δgrad| {diff:.1e}")
    )

    # 1024 shots
    shot_generator = torch.Generator().manual_seed(7)
    qhn_time = measure(
        lambda: backend.sample(circuit, theta, SHOTS, generator=shot_generator), repeats
    )
    for name, qnode in peers.sample.items():
        rows.append(
            Row(
                n,
                layers,
                f"{SHOTS} shots",
                name,
                qhn_time,
                measure(lambda q=qnode: q(theta), repeats),
            )
        )

    # parameter-shift gradient, 2P circuits
    ours = gradient_of(qhn_shift, theta)
    qhn_time = measure(lambda: gradient_of(qhn_shift, theta), repeats)
    gap = (ours - reference).abs().max().item()
    note = f"{2 * circuit.n_params} circuits; qhn shift vs backprop |Δgrad| {gap:.1e}"
    with torch.no_grad():
        peers.shift_expval(theta)
        start = time.perf_counter()
        peers.shift_expval(theta)
        predicted = 2 * circuit.n_params * (time.perf_counter() - start)
    if predicted > PARAM_SHIFT_LIMIT_S:
        rows.append(
            Row(
                n,
                layers,
                "param-shift",
                "default.qubit param_shift",
                qhn_time,
                None,
                f"skipped (too slow: ~{predicted:.0f} s predicted)",
            )
        )
    else:
        peer = measure(lambda: gradient_of(peers.shift_expval, theta), repeats)
        rows.append(
            Row(n, layers, "param-shift", "default.qubit param_shift", qhn_time, peer, note)
        )
    return rows


def header() -> str:
    import pennylane as qml

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    try:
        lightning = metadata.version("pennylane_lightning")
    except metadata.PackageNotFoundError:
        lightning = "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"device: {cpu} ({platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load}); torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads; pennylane {qml.__version__}, lightning {lightning}"
    )


def format_ms(timing: Timing | None) -> str:
    if timing is None:
        return "-"
    mark = "*" if timing.count == 0 else f" ({timing.count})"
    return f"{timing.seconds * 1e3:10.2f}{mark}"


def print_table(rows: list[Row]) -> None:
    columns = ("n", "layers", "task", "peer", "qhn ms (k)", "peer ms (k)", "qhn/peer", "note")
    lines = []
    for r in rows:
        ratio = "-" if r.other is None else f"{r.qhn.seconds / r.other.seconds:.2f}"
        lines.append(
            (
                str(r.n),
                str(r.layers),
                r.task,
                r.peer,
                format_ms(r.qhn).strip(),
                format_ms(r.other).strip(),
                ratio,
                r.note,
            )
        )
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    print("(k) = timed calls after one warm-up; * = only the warm-up call was timed.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n in {12, 16}, 3 repeats")
    parser.add_argument("--n", type=int, nargs="+", help="qubit counts (default 12 16 20)")
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--repeats", type=int, help="timed calls per cell (default 5)")
    parser.add_argument(
        "--max-peer-gib",
        type=float,
        default=3.0,
        help="skip default.qubit backprop above this autograd memory estimate",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="set torch's thread count and OMP_NUM_THREADS (default: leave torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        # Before PennyLane is imported, so lightning's OpenMP kernels see it too.
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    sizes = args.n or ([12, 16] if args.quick else [12, 16, 20])
    repeats = args.repeats or (3 if args.quick else 5)
    print(header())
    print(
        f"hardware_efficient RY + CZ chain; n in {sizes}, layers in {args.layers}; "
        f"median of up to {repeats} calls"
    )
    rows: list[Row] = []
    start = time.perf_counter()
    for n in sizes:
        for layers in args.layers:
            rows += bench_circuit(n, layers, repeats, args.max_peer_gib)
    print_table(rows)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
