"""The predicted cost of one sampled training step on the statevector simulator, checked up front.

A sampled step on the ``statevector`` / ``sampled`` backends simulates ``C`` circuits, each of them
a few passes over a state of ``2^n`` amplitudes, then draws the shots:

- ``C = 2P' + 2`` with the parameter-shift rule (``P'`` rotation occurrences: every shifted
  circuit, and two measurements of the unshifted one, as the backend's execution counter
  records a step), ``C = 2`` otherwise (the two measurements; a lower bound, as the
  score-function gradient adds a probability vector); from
  :data:`~qhn.backends.statevector.SHARED_PREFIX_MIN_QUBITS` qubits the shifted circuits share
  their leading passes (:mod:`qhn.backends.shared_prefix`), and a shifted circuit costs the
  passes from its shifted gate on, counted as half a circuit (a lower bound for shifts spread
  over the layers); each ``±π/2`` pair is one π-shifted circuit
  (:mod:`qhn.backends.shift_pairs`, on the sweeps), so the ``2P'`` shifted circuits count as
  ``P'/2`` circuits, plus one for the centre's state;
- seconds per circuit ``≥ c · 2^n · G / (n · T)`` for ``G`` gates on ``n`` qubits and ``T``
  torch threads, i.e. ``c`` seconds per amplitude per layer of ``n`` gates on one thread:
  ``c`` = :data:`SECONDS_PER_AMPLITUDE_LAYER` while the state fits in :data:`CACHE_BYTES`,
  :data:`SECONDS_PER_AMPLITUDE_LAYER_UNCACHED` beyond; float32 simulation counts half, and ``T``
  threads at best divide the time by ``T``.

Both ``c`` are lower bounds, measured on the shared 2-core development machine
(``benchmarks/step_cost.py``: CPU seconds of ``StatevectorBackend.sample`` with 256 shots, one
torch thread, hardware-efficient RY+CZ circuits, 1…4 layers, on the numba sweeps
(:mod:`qhn.backends.sweeps`) from 16 qubits: 1.8–3.1 ns at n = 18 and 1.4–2.1 ns at
n = 20–24, 3 December 2026), so the prediction errs on the fast side: a step refused here would
take at least that long. Whole parameter-shift steps measured 3.4–5.5× their prediction.
Memory: the states of one chunk of circuits (the backend's ``chunk_bytes``) and the shots, as
the backend itself checks them.

:func:`check_step_cost` refuses, before anything is allocated, a run whose predicted step exceeds
``max_step_seconds`` (one line, naming the estimate and the ways out).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qhn.backends.base import sample_bytes
from qhn.backends.statevector import SHARED_PREFIX_MIN_QUBITS
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError

__all__ = [
    "CACHE_BYTES",
    "DEFAULT_MAX_STEP_SECONDS",
    "SECONDS_PER_AMPLITUDE_LAYER",
    "SECONDS_PER_AMPLITUDE_LAYER_UNCACHED",
    "STEP_COST_BACKENDS",
    "StepCost",
    "check_step_cost",
    "predict_step_cost",
]

#: Lower bound of the seconds one circuit spends per amplitude per ``n`` gates (float64) on one
#: thread, while the state fits in :data:`CACHE_BYTES`, and beyond (smaller beyond: the sweeps'
#: fixed costs per call weigh less on large states).
SECONDS_PER_AMPLITUDE_LAYER = 1.6e-9
SECONDS_PER_AMPLITUDE_LAYER_UNCACHED = 1.25e-9
CACHE_BYTES = 4 * 2**20
#: Longest predicted sampled step accepted unless ``max_step_seconds`` says otherwise.
DEFAULT_MAX_STEP_SECONDS = 300.0
#: Backends whose steps this model predicts (both simulate on :class:`StatevectorBackend`).
STEP_COST_BACKENDS = ("statevector", "sampled")
#: The backend's default chunk of state per batch of circuits (``StatevectorBackend.chunk_bytes``).
_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class StepCost:
    """A predicted sampled step: ``circuits`` simulated, at least ``seconds``, about ``bytes`` of
    state and shots at the peak."""

    circuits: int
    seconds: float
    bytes: int


def predict_step_cost(
    circuit: Circuit, *, estimator: str, shots: int, precision: str = "float64"
) -> StepCost:
    """The cost of one sampled step of ``circuit`` (see the module docstring for the model)."""
    n = circuit.n_qubits
    occurrences = sum(gate.param is not None for gate in circuit.gates)
    circuits = 2 * occurrences + 2 if estimator == "parameter-shift" else 2
    equivalent = float(circuits)
    if estimator == "parameter-shift" and n >= SHARED_PREFIX_MIN_QUBITS:
        equivalent = 3 + (circuits - 2) / 4
    scale = 0.5 if precision == "float32" else 1.0
    itemsize = (4 if precision == "float32" else 8) * (1 if circuit.is_real else 2)
    state = 2**n * itemsize
    c = (
        SECONDS_PER_AMPLITUDE_LAYER
        if state <= CACHE_BYTES
        else SECONDS_PER_AMPLITUDE_LAYER_UNCACHED
    )
    threads = torch.get_num_threads()
    per_circuit = scale * c * 2**n * max(len(circuit.gates), n) / (n * threads)
    chunk = min(circuits, max(1, _CHUNK_BYTES // state))
    peak = 2 * chunk * state + sample_bytes(chunk, shots, n)  # a state and its probabilities
    return StepCost(circuits, equivalent * per_circuit, peak)


def check_step_cost(config, circuit: Circuit) -> StepCost | None:
    """Refuse a sampled run of ``config`` whose predicted step exceeds ``config.max_step_seconds``
    (:class:`ConfigError`, before any compute). Returns the prediction, or None when the run is
    exact or its backend is not one this model covers."""
    if config.shots is None or config.backend not in STEP_COST_BACKENDS:
        return None
    cost = predict_step_cost(
        circuit,
        estimator=config.resolved_estimator,
        shots=config.shots,
        precision=config.precision,
    )
    limit = config.max_step_seconds
    if cost.seconds > limit:
        raise ConfigError(
            f"one sampled step on {circuit.n_qubits} qubits simulates {cost.circuits} circuits of "
            f"2^{circuit.n_qubits} amplitudes: at least ~{cost.seconds:,.0f} s per step "
            f"(~{cost.bytes / 2**30:.1f} GiB), over max_step_seconds = {limit:g}; use fewer "
            'qubits or layers, blocks = <k>, backend = "mps", or raise max_step_seconds'
        )
    return cost
