"""Parameter-shift batches by sweeps with their common leading sweeps shared
(qhn.backends.sweep_shared), against the unshared sweeps (bit for bit) and Qiskit. The backend
tests turn shift pairs off (they are tested in test_shift_pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("numba", reason="the sweeps need numba (the fast extra)")

from oracles import qiskit_probs
from qhn.backends import StatevectorBackend, sweep_schedule, sweeps
from qhn.backends import sweep_kernels as kernels
from qhn.backends.sweep_shared import shared_sweep_probs
from qhn.circuits import build_ansatz
from qhn.gradients.parameter_shift import ParameterShift
from test_shared_prefix import sample_with_and_without_sharing, shift_rows

#: (low width, high width, row bytes, sub-chunk width), as in test_sweeps: several groups, so a
#: circuit of a few qubits takes several sweeps per layer.
WIDTHS = [(3, 2, 16, 2), (2, 3, 8, 2), (4, 1, 32, 3)]

CIRCUITS = [
    ("hardware_efficient", 7, 2, {}),
    ("hardware_efficient", 8, 3, {"rotations": ("rx", "rz")}),
    ("hardware_efficient", 7, 1, {"rotations": ("ry",), "topology": "ring"}),
]


def state_dtype(circuit, dtype=torch.float64):
    return dtype if circuit.is_real else dtype.to_complex()


@pytest.mark.parametrize("chunk", [1, 5, 1000])
@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize(("name", "n", "layers", "options"), CIRCUITS)
def test_shared_probabilities_are_the_unshared_ones_and_qiskits(
    name, n, layers, options, widths, chunk
):
    circuit, rows = shift_rows(name, n, layers, options)
    dtype = state_dtype(circuit)
    plan = sweep_schedule.schedule(
        circuit, dtype.itemsize, keep_final_diagonal=False, widths=widths
    )
    plain, _ = sweeps.sweep_probs(plan, rows, dtype)
    expected = torch.as_tensor(qiskit_probs(circuit, rows[:9]))
    torch.testing.assert_close(plain[:9], expected, rtol=0, atol=1e-12)
    covered = torch.zeros(rows.shape[0], dtype=torch.int64)
    yields = 0
    for which, probs in shared_sweep_probs(plan, rows, dtype, chunk):
        assert probs.shape[0] in (1, which.numel())
        assert torch.equal(probs.expand(which.numel(), -1), plain[which])
        covered[which] += 1
        yields += 1
    assert bool((covered == 1).all())  # every row exactly once
    assert yields > plan.sweeps.shape[0] // 2  # rows branched at several sweeps


def first_differing_sweep(plan, rows, dtype):
    """Per row, the first sweep whose operands differ from row 0's (the unshifted row), by
    direct comparison; the sweep count where none differs."""
    with torch.no_grad():
        mats = sweeps.gate_matrices(plan, rows, dtype)
        columns = sweeps.product_columns(plan, rows, dtype)
    count = plan.sweeps.shape[0]
    out = np.full(rows.shape[0], count)
    for s in reversed(range(count)):
        ops = plan.ops[plan.sweeps[s, 2] : plan.sweeps[s, 3]]
        gates = []
        for op in ops:
            if op[0] == kernels.LOW_GATES:  # (kind, bits, first matrix, 0, 0)
                gates += range(int(op[2]), int(op[2]) + int(op[1]))
            else:
                gates += [
                    int(op[c])
                    for c in {kernels.GATE: [2], kernels.GATE_PAIR: [2, 4]}.get(int(op[0]), [])
                ]
        differs = (mats[gates] != mats[gates][:, :1]).flatten(2).any(-1).any(0)
        if plan.sweeps[s, 4]:
            differs |= (columns != columns[:1]).flatten(1).any(-1)
        out[differs.numpy()] = s
    return out


def count_row_sweeps(monkeypatch) -> list[int]:
    """A list that gets, for every call of the shared sweeps' ``run_operands``, its rows ×
    sweeps."""
    run: list[int] = []
    real_run = sweeps.run_operands

    def counting(plan, sweep_rows, operands, state, probs):
        run.append(state.shape[0] * sweep_rows.shape[0])
        real_run(plan, sweep_rows, operands, state, probs)

    monkeypatch.setattr("qhn.backends.sweep_shared.run_operands", counting)
    return run


@pytest.mark.parametrize("widths", WIDTHS)
def test_a_row_shifted_in_sweep_s_runs_only_the_sweeps_from_s(monkeypatch, widths):
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    plan = sweep_schedule.schedule(circuit, 8, keep_final_diagonal=False, widths=widths)
    count = plan.sweeps.shape[0]
    branch_at = first_differing_sweep(plan, rows, torch.float64)
    assert (branch_at < count).sum() == rows.shape[0] - 1  # only the unshifted row never differs
    run = count_row_sweeps(monkeypatch)
    for _ in shared_sweep_probs(plan, rows, torch.float64, chunk=4):
        pass
    shifted = branch_at[branch_at < count]
    assert sum(run) == int((count - shifted).sum()) + count  # plus the group's own sweeps
    assert sum(run) < count * rows.shape[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backend_samples_the_same_bits_with_shared_sweeps(small_sweeps, dtype):
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    backend = StatevectorBackend(sweeps=True, dtype=dtype, shift_pairs=False)
    assert backend._sweep_schedule(circuit, keep_state=False).sweeps.shape[0] > 3
    plain, shared = sample_with_and_without_sharing(small_sweeps, backend, circuit, rows, 64, 7)
    assert torch.equal(plain, shared)


@pytest.mark.parametrize(
    ("shift_pairs", "rotations"), [(False, ("ry",)), (True, ("ry",)), (True, ("rx", "rz"))]
)
def test_parameter_shift_gradient_by_shared_sweeps_equals_autograd(
    small_sweeps, shift_pairs, rotations
):
    """Exact parameter-shift gradient by shared sweeps, with and without shift pairs
    (qhn.backends.shift_pairs), against autograd through the torch passes."""
    circuit = build_ansatz("hardware_efficient", 7, 2, rotations=rotations)
    generator = torch.Generator().manual_seed(4)
    theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
    cost = torch.rand(2**7, dtype=torch.float64, generator=generator)
    backend = StatevectorBackend(sweeps=True, shift_pairs=shift_pairs)
    params = theta.clone().requires_grad_(True)
    (shifted,) = torch.autograd.grad(
        ParameterShift().expectation(backend, circuit, params, cost), params
    )
    params = theta.clone().requires_grad_(True)
    torch_passes = StatevectorBackend(sweeps=False, adjoint=False)
    (exact,) = torch.autograd.grad(torch_passes.probs(circuit, params) @ cost, params)
    torch.testing.assert_close(shifted, exact, rtol=0, atol=1e-12)


def test_shared_sweeps_need_no_more_memory_than_one_chunk(small_sweeps):
    # The whole batch's probabilities (41 rows) exceed the budget; one chunk (2 rows) and the
    # shared row fit, as in the plain chunked path.
    circuit, rows = shift_rows("hardware_efficient", 10, 1, {})
    backend = StatevectorBackend(
        sweeps=True, memory_budget=120_000, chunk_bytes=2 * 2**10 * 8, shift_pairs=False
    )
    assert rows.shape[0] * 2**10 * 8 > backend.memory_budget
    plain, shared = sample_with_and_without_sharing(small_sweeps, backend, circuit, rows, 16, 2)
    assert torch.equal(plain, shared)
