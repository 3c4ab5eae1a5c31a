"""Probability vector of the RY + CZ chain: qhn against qsim, lightning and Aer, in one process.

For every ``n`` and ``layers``: qhn's warm call (median) in float64 and float32, its first call in
a fresh process (compile included) and that process's peak RSS, and the peers' warm medians at
the matching precision (qsim is float32 only; lightning float64; Aer both). qhn runs its
cache-blocked sweeps (:mod:`qhn.backends.sweeps`, numba) where they apply and is also timed on
its torch passes (``sweeps=False``, the path without numba). Times are also given in units of
one state copy (read + write): the memory floor of a sweep or a pass; "sweeps" and "passes" count
them. Each peer's vector is checked against qhn's (max |Δq|). The ratio is qhn / peer: below 1,
qhn is faster. One thread everywhere (``--threads``) unless told.

``--profile`` adds, per cell, each sweep's time with its operations and with none (moving the
state alone), in ms and in state copies, then the torch passes by kind (product state, block
matrix product by width, CZ negations, CNOT gathers, the squared modulus): where the time goes.

Usage: ``python benchmarks/simulator_probs.py [--n 12 16 20 24] [--layers 2 6] [--repeats 5]
[--profile] [--peers qsim lightning aer aer32] [--dtypes float64 float32]``.
Peers that are not installed are skipped (qsim: ``pip install qsimcirq``, the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from qhn.backends import StatevectorBackend, torch_passes, torch_plan
from qhn.circuits import Circuit, hardware_efficient

#: Seconds of timed repeats per cell beyond the warm-up, at most.
CELL_BUDGET_S = 15.0

FIRST_CALL = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[4]))
from qhn.backends import StatevectorBackend
from qhn.circuits import hardware_efficient
n, layers, dtype = int(sys.argv[1]), int(sys.argv[2]), getattr(torch, sys.argv[3])
circuit = hardware_efficient(n, layers)
generator = torch.Generator().manual_seed(n)
theta = torch.rand(circuit.n_params, generator=generator, dtype=torch.float64)
backend = StatevectorBackend(dtype=dtype)
def high_water_kib():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec from the parent.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
before = high_water_kib()
with torch.no_grad():
    start = time.perf_counter()
    backend.probs(circuit, theta)
    seconds = time.perf_counter() - start
peak = high_water_kib()
print(json.dumps({"seconds": seconds, "rss_before_kib": before, "rss_peak_kib": peak}))
"""


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median of up to ``repeats`` timed calls after one warm-up (fewer for slow calls)."""
    start = time.perf_counter()
    fn()
    warm = time.perf_counter() - start
    count = max(1, min(repeats, int(CELL_BUDGET_S // max(warm, 1e-9))))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_call(n: int, layers: int, dtype: str, threads: int) -> dict[str, float]:
    """qhn's first probability call in a fresh process, and that process's peak RSS."""
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, str(n), str(layers), dtype, str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def qsim_probs(circuit: Circuit, theta: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    import cirq
    import qsimcirq

    qubits = cirq.LineQubit.range(circuit.n_qubits)  # qubit 0 most significant, as ours
    ops = []
    for gate in circuit.gates:
        if gate.name == "ry":
            ops.append(cirq.ry(float(theta[gate.param])).on(qubits[gate.wires[0]]))
        else:
            ops.append(cirq.CZ(*(qubits[w] for w in gate.wires)))
    program = cirq.Circuit(ops)
    simulator = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=threads))

    def run() -> np.ndarray:
        amplitudes = simulator.simulate(program).final_state_vector
        return amplitudes.real**2 + amplitudes.imag**2

    return run


def aer_probs(
    circuit: Circuit, theta: np.ndarray, precision: str, threads: int
) -> Callable[[], np.ndarray]:
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    n = circuit.n_qubits
    qc = QuantumCircuit(n)
    for gate in circuit.gates:
        wires = [n - 1 - w for w in gate.wires]  # Qiskit qubit of the same place value
        if gate.name == "ry":
            qc.ry(float(theta[gate.param]), *wires)
        else:
            qc.cz(*wires)
    qc.save_statevector()
    simulator = AerSimulator(
        method="statevector", precision=precision, max_parallel_threads=threads
    )
    compiled = transpile(qc, simulator, optimization_level=0)

    def run() -> np.ndarray:
        amplitudes = np.asarray(simulator.run(compiled).result().get_statevector())
        return amplitudes.real**2 + amplitudes.imag**2

    return run


def lightning_probs(circuit: Circuit, theta: np.ndarray) -> Callable[[], np.ndarray]:
    import pennylane as qml

    device = qml.device("lightning.qubit", wires=circuit.n_qubits)

    @qml.qnode(device, diff_method=None)
    def probs():
        for gate in circuit.gates:
            if gate.name == "ry":
                qml.RY(float(theta[gate.param]), wires=gate.wires[0])
            else:
                qml.CZ(wires=list(gate.wires))
        return qml.probs(wires=range(circuit.n_qubits))

    return lambda: np.asarray(probs())


PEERS = ("qsim", "lightning", "aer", "aer32")


def peers(
    circuit: Circuit, theta: np.ndarray, threads: int, chosen: tuple[str, ...] = PEERS
) -> dict[str, tuple[str, Callable]]:
    """Available peers among ``chosen`` as ``name: (precision, call)``."""
    found: dict[str, tuple[str, Callable]] = {}
    makers = {
        "qsim": ("float32", lambda: qsim_probs(circuit, theta, threads)),
        "lightning": ("float64", lambda: lightning_probs(circuit, theta)),
        "aer": ("float64", lambda: aer_probs(circuit, theta, "double", threads)),
        "aer32": ("float32", lambda: aer_probs(circuit, theta, "single", threads)),
    }
    for name, (precision, make) in makers.items():
        if name not in chosen:
            continue
        try:
            found[name] = (precision, make())
        except ImportError as error:
            print(f"# {name} skipped: {error}", file=sys.stderr)
    return found


def bench(
    n: int,
    layers: int,
    repeats: int,
    threads: int,
    chosen: tuple[str, ...],
    dtypes: tuple[str, ...] = ("float64", "float32"),
) -> list[dict]:
    circuit = hardware_efficient(n, layers)
    theta = torch.rand(
        circuit.n_params, generator=torch.Generator().manual_seed(n), dtype=torch.float64
    )
    rows = []
    reference = None
    others = peers(circuit, theta.numpy(), threads, chosen)
    for dtype in dtypes:
        backend = StatevectorBackend(dtype=getattr(torch, dtype))
        passes_only = StatevectorBackend(dtype=getattr(torch, dtype), sweeps=False)
        plan = backend._sweep_schedule(circuit, keep_state=False)
        with torch.no_grad():
            passes = len(torch_plan.plan_passes(circuit, theta[None].to(backend.dtype),
                                                  backend.dtype, backend.complex_dtype,
                                                  backend.block_qubits)[0])  # fmt: skip
            ours = backend.probs(circuit, theta)
            warm = median_time(lambda b=backend: b.probs(circuit, theta), repeats)
            torch_warm = median_time(lambda b=passes_only: b.probs(circuit, theta), repeats)
        reference = ours.double().numpy() if reference is None else reference
        state = torch.empty(2**n, dtype=backend.dtype).fill_(0.5)
        copy = torch.empty_like(state)
        one_pass = median_time(lambda s=state, c=copy: c.copy_(s), repeats)
        cold = first_call(n, layers, dtype, threads)
        row = {
            "n": n, "layers": layers, "dtype": dtype, "passes": passes, "qhn_ms": warm * 1e3,
            "copy_passes": warm / one_pass, "sweeps": 0 if plan is None else len(plan.sweeps),
            "torch_ms": torch_warm * 1e3, "torch_copies": torch_warm / one_pass,
            "first_ms": cold["seconds"] * 1e3,
            "peak_rss_gib": cold["rss_peak_kib"] / 2**20,
            "rss_before_gib": cold["rss_before_kib"] / 2**20,
            "state_gib": 2**n * (8 if dtype == "float64" else 4) / 2**30,
        }  # fmt: skip
        for name, (precision, call) in others.items():
            if precision != dtype:
                continue
            gap = float(np.abs(call() - reference).max())
            row[name] = (median_time(call, repeats) * 1e3, gap)
        rows.append(row)
        print_row(row, flush=True)
    return rows


def profile_sweeps(n: int, layers: int, dtype: torch.dtype, repeats: int) -> None:
    """Each sweep alone, with its operations and with none, on a preallocated state."""
    from qhn.backends import sweep_kernels, sweep_schedule, sweeps
    from qhn.backends.sweep_rotations import sweep_gates

    circuit = hardware_efficient(n, layers)
    plan = sweep_schedule.schedule(circuit, dtype.itemsize, keep_final_diagonal=False)
    if plan is None:
        return
    theta = torch.rand(1, circuit.n_params, generator=torch.Generator().manual_seed(n))
    lo, hi, mats = sweeps.as_arrays(*sweeps._operands(plan, theta.to(dtype), dtype))
    mats, forms = sweeps.scaled_rotations(plan.sweeps, plan.ops, mats)
    state = torch.empty(1, 2**n, dtype=dtype).fill_(0.5)
    copy = torch.empty_like(state)
    one_copy = median_time(lambda: copy.copy_(state), repeats)
    tables = sweeps._tables(plan, state.numpy())
    line = plan.line
    array = state.numpy()
    print(f"  sweeps n={n} L={layers} {str(dtype)[6:]}: one state copy {one_copy * 1e3:.2f} ms")
    totals = [0.0, 0.0]
    for s, (gs, width, o0, o1, init, final) in enumerate(plan.sweeps.tolist()):
        times = []
        for stop in (o1, o0):  # with the sweep's operations, then moving the state alone
            one = np.array([[gs, width, o0, stop, init, final]], dtype=np.int64)

            def call(one=one):
                sweep_kernels.run(array, array, n, one, plan.ops, mats, forms, lo, hi, tables, line,
                                  plan.sub_width)  # fmt: skip

            times.append(median_time(call, repeats))
        totals = [totals[0] + times[0], totals[1] + times[1]]
        kinds = plan.ops[o0:o1, 0].tolist()
        gates = len(sweep_gates(plan.ops[o0:o1]))
        print(f"    sweep {s}: bits {gs:2d}..{gs + width - 1:2d}  {gates:3d} gates "
              f"{kinds.count(sweep_kernels.DIAGONAL)} CZ runs  {times[0] * 1e3:9.2f} ms "
              f"({times[0] / one_copy:5.1f} copies), state alone {times[1] * 1e3:8.2f} ms "
              f"({times[1] / one_copy:4.1f})")  # fmt: skip
    print(f"    total {totals[0] * 1e3:9.2f} ms ({totals[0] / one_copy:5.1f} copies), moving the "
          f"state {totals[1] / one_copy:4.1f} copies, operations "
          f"{(totals[0] - totals[1]) / one_copy:5.1f} copies")  # fmt: skip


def profile_passes(n: int, layers: int, dtype: torch.dtype, repeats: int) -> None:
    """Median time of each pass of the planned program, summed by kind, and the planning itself."""
    circuit = hardware_efficient(n, layers)
    theta = torch.rand(1, circuit.n_params, generator=torch.Generator().manual_seed(n))
    backend = StatevectorBackend(dtype=dtype)
    theta = theta.to(torch.float64)
    with torch.no_grad():
        planning = median_time(lambda: backend._plan(circuit, theta.to(dtype)), repeats)
        passes, state_dtype = backend._plan(circuit, theta.to(dtype))
        buffers = torch_passes.Buffers((1, 2**n), state_dtype, theta.device)
        state = torch_passes.forward_pass(passes[:1], n, buffers)
        kinds: dict[str, list[float]] = {}
        # Each pass runs on a fresh copy of its input in a preallocated scratch state (as the
        # real call's buffers are); the copy's own time is subtracted.
        scratch = torch.empty_like(state)
        one_copy = median_time(lambda: scratch.copy_(state), repeats)
        for op in passes:
            start = state.clone()
            kind = type(op).__name__.lstrip("_")
            if isinstance(op, torch_passes.Block):
                kind += f" {op.width} qubits"

            def one(op=op, start=start):
                return torch_passes.forward_pass([op], n, buffers, scratch.copy_(start))

            kinds.setdefault(kind, []).append(median_time(one, repeats) - one_copy)
            state = torch_passes.forward_pass([op], n, buffers, start)
        squared = median_time(lambda: torch_passes.squared_modulus(state, out=scratch), repeats)
    print(f"  profile n={n} L={layers} {str(dtype)[6:]}: one state copy {one_copy * 1e3:.2f} ms; "
          f"planning {planning * 1e3:.2f} ms")  # fmt: skip
    for kind, times in sorted(kinds.items()):
        total = sum(times)
        print(f"    {kind:<18} x{len(times):3d}  {total * 1e3:9.2f} ms  "
              f"{total / len(times) / one_copy:5.1f} copies each")  # fmt: skip
    label = "squared modulus"
    print(f"    {label:<18} x  1  {squared * 1e3:9.2f} ms  {squared / one_copy:5.1f} copies")


def print_row(row: dict, flush: bool = False) -> None:
    peers_text = "  ".join(
        f"{name} {ms:9.2f} ms (qhn/{name} {row['qhn_ms'] / ms:5.2f}, max|Δq| {gap:.0e})"
        for name, value in row.items()
        if isinstance(value, tuple)
        for ms, gap in [value]
    )
    print(
        f"n={row['n']:2d} L={row['layers']} {row['dtype']}  sweeps {row['sweeps']:2d}  "
        f"qhn {row['qhn_ms']:9.2f} ms (= {row['copy_passes']:5.1f} copies)  "
        f"torch passes {row['passes']:3d}: {row['torch_ms']:9.2f} ms "
        f"(= {row['torch_copies']:5.1f} copies)  "
        f"first {row['first_ms']:9.1f} ms  "
        f"peak RSS {row['peak_rss_gib']:5.2f} GiB (before call {row['rss_before_gib']:4.2f}, "
        f"state {row['state_gib']:5.3f})  {peers_text}",
        flush=flush,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[12, 16, 20, 24])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true", help="qhn alone")
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--dtypes", nargs="+", choices=["float64", "float32"],
                        default=["float64", "float32"])  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="time each pass by kind")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# torch {torch.__version__}, {args.threads} thread(s), load average {load}; medians")
    for n in args.n:
        for layers in args.layers:
            chosen = () if args.no_peers else tuple(args.peers)
            bench(n, layers, args.repeats, args.threads, chosen, tuple(args.dtypes))
            if args.profile:
                for dtype in (torch.float64, torch.float32):
                    profile_sweeps(n, layers, dtype, args.repeats)
                    profile_passes(n, layers, dtype, args.repeats)


if __name__ == "__main__":
    main()
