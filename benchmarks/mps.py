"""qhn's ``mps`` backend against quimb's ``CircuitMPS`` and Aer's ``matrix_product_state`` method.

Workload (issue 10): ``hardware_efficient(n, 2)`` — RY layer, CZ chain, RY layer, CZ chain, RY
layer — at random angles, ``n = 1210`` by default (bond dimension 4, exact for all three).

Tasks, each a median of ``--repeats`` calls after one warm-up:

- ``build``: circuit → MPS (qhn ``MPSBackend.state``; quimb: applying the gates to ``CircuitMPS``);
- ``sample``: ``--shots`` exact samples from the built state (qhn ``MPS.sample``: all shots in one
  sequential sweep; quimb ``CircuitMPS.sample``; Aer: the whole circuit with ``measure_all``, so
  its time includes its own build);
- ``log_prob``: exact ``log q`` of ``--shots`` bitstrings (qhn ``MPS.log_prob``, also with autograd;
  quimb ``CircuitMPS.amplitude`` bitstring by bitstring).

The peers draw shots one at a time and would take hours for 10,000 shots at ``n = 1210``; each is
run with a few shots, chosen so that it stays within ``--peer-budget`` seconds, and its time for
``--shots`` is extrapolated linearly from two shot counts (``fixed + per_shot × shots``); such rows
say ``extrapolated``. ``--n 100`` gives a size where the peers can be timed directly with
fewer shots. The ratio is peer time / qhn time: above 1, qhn is faster. Timings on a shared
machine are noisy; compare ratios, not absolute numbers.

Usage: ``python benchmarks/mps.py [--n 1210] [--shots 10000] [--repeats 3] [--threads 1]
[--peer-budget 60] [--no-peers]``. quimb comes with ``pip install 'qhn[bench-mps]'``, Aer with
``'qhn[qiskit]'``; a missing peer is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from qhn.backends.mps import MPSBackend
from qhn.circuits import hardware_efficient


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _extrapolate(run: Callable[[int], object], shots: int, budget: float) -> tuple[float, str]:
    """Time ``run(k)`` for ``k = 1`` and a larger ``k`` that fits ``budget``; return the
    (possibly extrapolated) time for ``shots`` and a note."""
    run(1)  # warm-up
    t1 = _timed(lambda: run(1))
    k = max(2, min(shots, int(budget / max(t1, 1e-6) / 2)))
    tk = _timed(lambda: run(k))
    if k >= shots:
        return tk, f"measured ({k} shots)"
    slope = max((tk - t1) / (k - 1), 0.0)
    return t1 - slope + slope * shots, f"extrapolated from 1 and {k} shots"


def _quimb_circuit(n: int, angles: np.ndarray):
    import quimb.tensor as qtn

    circ = qtn.CircuitMPS(n)
    k = 0
    for layer in range(3):
        if layer:
            for q in range(n - 1):
                circ.apply_gate("CZ", q, q + 1)
        for q in range(n):
            circ.apply_gate("RY", float(angles[k]), q)
            k += 1
    return circ


def _aer_circuit(n: int, angles: np.ndarray):
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n)
    k = 0
    for layer in range(3):
        if layer:
            for q in range(n - 1):
                qc.cz(n - 1 - q, n - 2 - q)
        for q in range(n):
            qc.ry(float(angles[k]), n - 1 - q)
            k += 1
    qc.measure_all()
    return qc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1210)
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peer-budget", type=float, default=60.0)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, shots = args.n, args.shots
    circuit = hardware_efficient(n, 2)
    angles = np.random.default_rng(0).uniform(0, math.pi, circuit.n_params)
    params = torch.from_numpy(angles)
    backend = MPSBackend()
    print(
        f"# hardware_efficient(n={n}, layers=2, ry, cz, chain); {shots:,} shots/bitstrings; "
        f"torch threads {args.threads}; median of {args.repeats}"
    )

    state = backend.state(circuit, params)
    gen = torch.Generator().manual_seed(0)
    bits = state.sample(shots, gen)
    theta = params.clone().requires_grad_(True)

    def grad_log_prob() -> None:
        backend.log_prob(circuit, theta, bits).sum().backward()

    ours = {
        "build": _median_time(lambda: backend.state(circuit, params), args.repeats),
        "sample": _median_time(lambda: state.sample(shots, gen), args.repeats),
        "build+sample": _median_time(
            lambda: backend.sample(circuit, params, shots, generator=gen), args.repeats
        ),
        "log_prob": _median_time(lambda: state.log_prob(bits), args.repeats),
        "build+log_prob+backward": _median_time(grad_log_prob, args.repeats),
    }
    print(f"{'task':26s} {'qhn mps (s)':>12s} {'peer':>16s} {'peer (s)':>10s} {'ratio':>7s}  note")
    rows: list[tuple[str, str, float, str]] = []
    if not args.no_peers:
        if importlib.util.find_spec("quimb") is not None:
            circ = _quimb_circuit(n, angles)
            rows.append(("build", "quimb", _timed(lambda: _quimb_circuit(n, angles)), "1 call"))
            t, note = _extrapolate(lambda k: list(circ.sample(k, seed=1)), shots, args.peer_budget)
            rows.append(("sample", "quimb", t, note))
            strings = ["".join(map(str, row.tolist())) for row in bits[:200]]

            def amplitudes(k: int) -> None:
                for i in range(k):
                    circ.amplitude(strings[i % len(strings)])

            t, note = _extrapolate(amplitudes, shots, args.peer_budget)
            rows.append(("log_prob", "quimb", t, note))
        else:
            print("# quimb not installed (pip install 'qhn[bench-mps]'): its rows are skipped")
        if importlib.util.find_spec("qiskit_aer") is not None:
            from qiskit_aer import AerSimulator

            sim = AerSimulator(method="matrix_product_state")
            qc = _aer_circuit(n, angles)
            t, note = _extrapolate(
                lambda k: sim.run(qc, shots=k, seed_simulator=1).result(), shots, args.peer_budget
            )
            rows.append(("build+sample", "aer-mps", t, note))
        else:
            print("# qiskit-aer not installed: its rows are skipped")
    for task, value in ours.items():
        peers = [r for r in rows if r[0] == task]
        if not peers:
            print(f"{task:26s} {value:12.3f}")
        for _, name, t, note in peers:
            print(f"{task:26s} {value:12.3f} {name:>16s} {t:10.3f} {t / value:7.1f}  {note}")


if __name__ == "__main__":
    main()
