"""Parameter-shift pairs from one π-shifted circuit each (qhn.backends.shift_pairs), against
Qiskit's probabilities of the shifted circuits themselves (the gradient against autograd is in
test_sweep_shared, with and without pairs)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("numba", reason="the sweeps need numba (the fast extra)")

from oracles import qiskit_probs
from qhn.backends import StatevectorBackend, shift_pairs, sweep_schedule
from qhn.backends.shift_pairs import find_shift_pairs, paired_probs
from qhn.backends.sweep_shared import shared_sweep_probs
from qhn.circuits import Circuit, Gate
from qhn.errors import ConfigError
from test_shared_prefix import sample_with_and_without_sharing, shift_rows
from test_sweep_shared import CIRCUITS, WIDTHS, count_row_sweeps, state_dtype


def exact_layout_rows(name, n, layers, options, seed=0):
    """The ``2P'`` rows the exact estimator sends (no unshifted row)."""
    circuit, rows = shift_rows(name, n, layers, options, seed)
    return circuit, rows[1:]


def test_pairs_are_found_in_both_estimator_layouts():
    circuit, rows = shift_rows("hardware_efficient", 6, 2, {})
    count = rows.shape[1]
    for layout, offset, others in (("sampled", 1, [0]), ("exact", 0, [])):
        batch = rows if layout == "sampled" else rows[1:]
        pairs = find_shift_pairs(circuit, batch)
        assert pairs is not None
        assert torch.equal(pairs.centre, rows[0])
        assert torch.equal(pairs.params, torch.arange(count))
        assert torch.equal(pairs.plus, torch.arange(count) + offset)
        assert torch.equal(pairs.minus, torch.arange(count) + offset + count)
        assert pairs.others.tolist() == others


def test_pairs_survive_float32_rounding_and_any_row_order():
    circuit, rows = shift_rows("hardware_efficient", 6, 2, {})
    order = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))
    pairs = find_shift_pairs(circuit, rows[order].float())
    assert pairs is not None and pairs.params.numel() == rows.shape[1]
    shuffled = rows[order].float()
    steps = shuffled[pairs.plus] - pairs.centre
    assert torch.allclose(steps.sum(1), torch.full_like(steps[:, 0], math.pi / 2), atol=1e-5)


def test_no_pairs_in_an_unrelated_batch_or_for_a_parameter_of_two_gates():
    circuit, rows = shift_rows("hardware_efficient", 6, 2, {})
    random = torch.rand(rows.shape, generator=torch.Generator().manual_seed(1), dtype=rows.dtype)
    assert find_shift_pairs(circuit, random) is None
    # Parameter 0 drives two rotations: R(θ ± π/2) ⊗ R(θ ± π/2) is no combination of R(θ + π).
    tied = Circuit(2, (Gate("ry", (0,), 0), Gate("ry", (1,), 0), Gate("cz", (0, 1)),
                       Gate("ry", (0,), 1), Gate("rx", (1,), 2)), 3)  # fmt: skip
    theta = torch.tensor([[0.3, 1.1, -0.4]], dtype=torch.float64)
    step = math.pi / 2 * torch.eye(3, dtype=torch.float64)
    batch = torch.cat([theta, theta + step, theta - step])
    pairs = find_shift_pairs(tied, batch)
    assert pairs is not None and pairs.params.tolist() == [1, 2]
    assert sorted(pairs.others.tolist()) == [0, 1, 4]


@pytest.mark.parametrize("chunk", [1, 5, 1000])
@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize(("name", "n", "layers", "options"), CIRCUITS)
def test_paired_probabilities_are_qiskits_for_every_row(name, n, layers, options, widths, chunk):
    circuit, rows = shift_rows(name, n, layers, options)
    dtype = state_dtype(circuit)
    plan = sweep_schedule.schedule(
        circuit, dtype.itemsize, keep_final_diagonal=False, widths=widths
    )
    pairs = find_shift_pairs(circuit, rows)
    assert pairs is not None
    expected = torch.as_tensor(qiskit_probs(circuit, rows))
    covered = torch.zeros(rows.shape[0], dtype=torch.int64)
    for which, probs in paired_probs(plan, rows, pairs, dtype, chunk):
        assert probs.shape[0] in (1, which.numel())
        torch.testing.assert_close(
            probs.expand(which.numel(), -1), expected[which], rtol=0, atol=1e-12
        )
        covered[which] += 1
    assert bool((covered == 1).all())


def test_pairs_simulate_about_half_the_rows(monkeypatch):
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    plan = sweep_schedule.schedule(circuit, 8, keep_final_diagonal=False, widths=WIDTHS[0])
    simulated = count_row_sweeps(monkeypatch)
    for _ in shared_sweep_probs(plan, rows, torch.float64, 8):
        pass
    unpaired = sum(simulated)
    simulated.clear()
    pairs = find_shift_pairs(circuit, rows)
    for _ in paired_probs(plan, rows, pairs, torch.float64, 8):
        pass
    # P' π-shifted rows instead of 2P' shifted ones, plus the centre once more.
    assert sum(simulated) < 0.62 * unpaired


def test_sampled_bits_from_pairs_are_the_plain_ones(small_sweeps):
    # The pairs' probabilities differ from the plain ones by rounding only (~1e-16), so shots
    # drawn with the same uniforms land in the same outcomes.
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    backend = StatevectorBackend(sweeps=True, shift_pairs=True)
    plain, paired = sample_with_and_without_sharing(small_sweeps, backend, circuit, rows, 64, 7)
    assert torch.equal(plain, paired)


def test_float32_pairs_within_its_rounding(small_sweeps):
    circuit, rows = exact_layout_rows("hardware_efficient", 7, 2, {})
    backend = StatevectorBackend(sweeps=True, dtype=torch.float32)
    expected = torch.as_tensor(qiskit_probs(circuit, rows))
    tol = 8 * len(circuit.gates) * torch.finfo(torch.float32).eps
    covered = 0
    for which, probs in backend._shared_probs(circuit, rows.float()):
        assert probs.dtype == torch.float32
        torch.testing.assert_close(
            probs.double().expand(which.numel(), -1), expected[which], rtol=0, atol=tol
        )
        covered += which.numel()
    assert covered == rows.shape[0]


@pytest.mark.parametrize(
    ("chunk_states", "budget", "paired"), [(3, 120_000, True), (1, 35_000, False)]
)
def test_pairs_run_only_within_the_memory_budget(small_sweeps, chunk_states, budget, paired):
    """The whole batch's probabilities exceed the budget. With a chunk of 3 states the pairs' 5
    buffers fit and run; with a chunk of 1 the shared path's 2 rows of 2 states fit (32,768
    bytes) but the pairs' 5 states (40,960) do not, so every row is simulated, bit for bit as
    without pairs."""
    circuit, rows = shift_rows("hardware_efficient", 10, 1, {})
    state = 2**10 * 8
    backend = StatevectorBackend(sweeps=True, memory_budget=budget,
                                 chunk_bytes=chunk_states * state)  # fmt: skip
    assert rows.shape[0] * state > budget
    calls = []
    real = shift_pairs.paired_probs
    small_sweeps.setattr(shift_pairs, "paired_probs", lambda *a: calls.append(1) or real(*a))
    expected = StatevectorBackend(sweeps=False).probs(circuit, rows)
    each_row = StatevectorBackend(sweeps=True).probs(circuit, rows)  # sweeps, row by row
    covered = 0
    for which, probs in backend._shared_probs(circuit, rows):
        got = probs.expand(which.numel(), -1)
        torch.testing.assert_close(got, expected[which], rtol=0, atol=1e-12)
        assert paired or torch.equal(got, each_row[which])
        covered += which.numel()
    assert covered == rows.shape[0]
    assert bool(calls) == paired


def test_shift_pairs_option_is_checked():
    with pytest.raises(ConfigError, match=r"shift_pairs must be True or False, got 'no'"):
        StatevectorBackend(shift_pairs="no")
