"""Parameter-shift batches simulated with their common leading passes shared, against the plain
batched simulation (itself checked against Qiskit in test_statevector_oracles)."""

from __future__ import annotations

import pytest
import torch

import qhn.backends.statevector as statevector
from qhn.backends.shared_prefix import shared_prefix_probs
from qhn.backends.statevector import StatevectorBackend
from qhn.circuits import build_ansatz
from qhn.gradients.parameter_shift import plan_shifts

CIRCUITS = [
    ("hardware_efficient", 7, 2, {}),
    ("hardware_efficient", 6, 3, {"rotations": ("rx", "rz"), "entangler": "cnot"}),
    ("hardware_efficient", 8, 1, {"rotations": ("ry",), "entangler": "cz", "topology": "ring"}),
    ("qhn_reference", 6, 2, {}),
]


def shift_rows(name, n, layers, options, seed=0):
    """The expanded circuit and the ``2P' + 1`` rows of one parameter-shift step."""
    circuit = build_ansatz(name, n, layers, **options)
    generator = torch.Generator().manual_seed(seed)
    theta = torch.rand(circuit.n_params, dtype=torch.float64, generator=generator) * 6.3
    plan = plan_shifts(circuit, theta)
    rows = torch.cat([plan.base.unsqueeze(1), plan.shifted], 1).reshape(-1, plan.n_occurrences)
    return plan.expanded, rows


@pytest.mark.parametrize("chunk", [1, 5, 1000])
@pytest.mark.parametrize(("name", "n", "layers", "options"), CIRCUITS)
def test_shared_probabilities_equal_the_plain_ones(name, n, layers, options, chunk):
    circuit, rows = shift_rows(name, n, layers, options)
    backend = StatevectorBackend(block_qubits=3)
    plain = backend.probs(circuit, rows)
    passes, dtype = backend._plan(circuit, rows)
    covered = torch.zeros(rows.shape[0], dtype=torch.int64)
    groups = 0
    for which, probs in shared_prefix_probs(passes, n, dtype, rows.shape[0], chunk):
        covered[which] += 1
        groups += 1
        expected = plain[which]
        torch.testing.assert_close(probs.expand_as(expected), expected, rtol=0, atol=1e-12)
    assert bool((covered == 1).all())  # every row once
    assert groups > 2  # the rows did branch at several passes


def sample_with_and_without_sharing(monkeypatch, backend, circuit, rows, shots, seed):
    """The bits ``backend.sample`` draws for ``rows`` by the plain chunked path and by the shared
    one, from the same seed."""
    out = []
    for threshold in (99, 1):
        monkeypatch.setattr(statevector, "SHARED_PREFIX_MIN_QUBITS", threshold)
        generator = torch.Generator().manual_seed(seed)
        out.append(backend.sample(circuit, rows, shots, generator=generator))
    return out


@pytest.mark.parametrize("batch_kind", ["shift", "unrelated"])
def test_sampled_bits_are_the_same_with_and_without_sharing(monkeypatch, batch_kind):
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    if batch_kind == "unrelated":  # no common prefix: every row branches at the first pass
        rows = torch.rand(
            rows.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
        )
    backend = StatevectorBackend()
    plain, shared = sample_with_and_without_sharing(monkeypatch, backend, circuit, rows, 64, 7)
    assert torch.equal(plain, shared)


def test_float32_shared_probabilities_within_its_epsilon():
    # float32 rounding per pass, ~passes · 2^k · 1.2e-7 relative (the precision key's bound).
    circuit, rows = shift_rows("hardware_efficient", 7, 2, {})
    backend = StatevectorBackend(dtype=torch.float32)
    plain = StatevectorBackend().probs(circuit, rows)
    passes, dtype = backend._plan(circuit, rows.float())
    for which, probs in shared_prefix_probs(passes, 7, dtype, rows.shape[0], 8):
        expected = plain[which]
        bound = len(passes) * 2**4 * torch.finfo(torch.float32).eps
        torch.testing.assert_close(probs.double().expand_as(expected), expected, rtol=0, atol=bound)


def test_sharing_needs_no_more_memory_than_one_chunk(monkeypatch):
    # The whole batch's probabilities (41 rows) exceed the budget; one chunk (2 rows) and the
    # shared row fit, as in the plain chunked path.
    circuit, rows = shift_rows("hardware_efficient", 10, 1, {})
    backend = StatevectorBackend(memory_budget=120_000, chunk_bytes=2 * 2**10 * 8)
    assert rows.shape[0] * 2**10 * 8 > backend.memory_budget
    plain, shared = sample_with_and_without_sharing(monkeypatch, backend, circuit, rows, 16, 2)
    assert torch.equal(plain, shared)
