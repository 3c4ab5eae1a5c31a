"""The reference QHN of Carrasquilla et al. reproduces its published runs.

Oracles: the stored final losses in ``../shared/data/binncode-mnist01/params/run*.txt`` (computed by
the authors with PastaQ) and the cost table ``Cop_4x4.txt``; and, for other sizes, the reference
circuit written out in PennyLane straight from its description (METHOD.md §5) in the file's own
qubit numbering, independently of :func:`qhn.circuits.qhn_reference`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oracles import pennylane_device
from qhn.backends import StatevectorBackend
from qhn.bits import bitstring
from qhn.circuits import qhn_reference, reference_params_from_row

N_QUBITS, LAYERS = 17, 2
N_FILES, ROWS_PER_FILE = 31, 10
LOSS_TOL = 1e-9
BACKEND = StatevectorBackend()


@pytest.fixture(scope="module")
def cost(mnist01_dir) -> torch.Tensor:
    """``C(s)`` for all 2^17 bitstrings, our index order. Shapes: ``(2**17,)`` float64."""
    values = torch.from_numpy(np.loadtxt(mnist01_dir / "Cop_4x4.txt", dtype=np.float64))
    assert values.shape == (2**N_QUBITS,)
    return values


def load_runs(mnist01_dir, k: int) -> np.ndarray:
    rows = np.loadtxt(mnist01_dir / "params" / f"run{k}.txt", dtype=np.float64, ndmin=2)
    assert rows.shape == (ROWS_PER_FILE, 4 * LAYERS * N_QUBITS + 1), f"run{k}.txt"
    return rows


def test_the_data_holds_310_runs(mnist01_dir):
    files = sorted(p.name for p in (mnist01_dir / "params").glob("run*.txt"))
    assert files == sorted(f"run{k}.txt" for k in range(N_FILES))


def test_cost_minimum_is_where_method_says(cost):
    best = int(cost.argmin())
    assert best == 83097
    assert bitstring(best, N_QUBITS) == "10100010010011001"
    assert cost[best].item() == pytest.approx(0.3268527, abs=5e-8)


@pytest.mark.parametrize("k", range(N_FILES), ids=lambda k: f"run{k}")
def test_stored_final_losses_are_reproduced(mnist01_dir, cost, k):
    rows = load_runs(mnist01_dir, k)
    theta = torch.stack([reference_params_from_row(row, N_QUBITS, LAYERS) for row in rows])
    probs = BACKEND.probs(qhn_reference(N_QUBITS, LAYERS), theta)
    assert abs(probs.sum(-1) - 1).max().item() < 1e-12
    loss = probs @ cost
    stored = torch.from_numpy(rows[:, -1])
    worst = (loss - stored).abs().max().item()
    assert worst <= LOSS_TOL, f"run{k}.txt: largest loss difference {worst:.3g}"


def test_mean_final_loss_matches_method(mnist01_dir):
    stored = np.concatenate([load_runs(mnist01_dir, k)[:, -1] for k in range(N_FILES)])
    assert stored.shape == (N_FILES * ROWS_PER_FILE,)
    assert stored.mean() == pytest.approx(0.326886, abs=5e-7)


# ----------------------------------------------------------------------------- other sizes
def reference_circuit_as_described(row: np.ndarray, n: int, layers: int) -> np.ndarray:
    """METHOD.md §5 in the file's numbering: file qubit j = 1..n (j = 1 least significant).

    Sub-layer d = 1..2L: CNOT(control j, target j+1) for j = 1 + (d mod 2), 3 + (d mod 2), … ≤ n−1;
    RY(row[(d−1)·n + j−1]) on every j; RZ(row[2L·n + (d−1)·n + j−1]) on every j.
    PennyLane's first wire is the most significant, so file qubit j is wire n − j.
    """
    import pennylane as qml

    def wire(j: int) -> int:
        return n - j

    @qml.qnode(pennylane_device(), interface="numpy")
    def run():
        sublayers = 2 * layers
        for d in range(1, sublayers + 1):
            j = 1 + d % 2
            while j <= n - 1:
                qml.CNOT(wires=[wire(j), wire(j + 1)])
                j += 2
            for j in range(1, n + 1):
                qml.RY(row[(d - 1) * n + j - 1], wires=wire(j))
            for j in range(1, n + 1):
                qml.RZ(row[sublayers * n + (d - 1) * n + j - 1], wires=wire(j))
        return qml.probs(wires=range(n))

    return np.asarray(run(), dtype=np.float64)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_converter_and_ansatz_match_the_description(n, layers):
    generator = np.random.default_rng(100 * n + layers)
    circuit = qhn_reference(n, layers)
    for _ in range(2):
        row = generator.uniform(0, 2 * math.pi, size=4 * layers * n + 1)  # + a loss column
        ours = BACKEND.probs(circuit, reference_params_from_row(row, n, layers))
        expected = reference_circuit_as_described(row, n, layers)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-10)
