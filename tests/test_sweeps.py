"""Cache-blocked sweeps (qhn.backends.sweeps) against Qiskit and PennyLane.

Small widths force every tile shape on small circuits: several high groups, tile rows shorter
than the bits below the group, CZ pairs inside one group, across two and outside the swept one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("numba", reason="the sweeps need numba (the fast extra)")

from oracles import pennylane_state, qiskit_finite_difference, qiskit_probs
from qhn.backends import StatevectorBackend, sweep_kernels, sweep_schedule, sweeps
from qhn.backends import statevector as sv
from qhn.circuits import Circuit, Gate, hardware_efficient, qhn_reference
from qhn.errors import ConfigError

#: (low width, high width, row bytes, sub-chunk width): one group; low + 2-bit groups with
#: 2-amplitude rows; uneven groups with 1-amplitude rows; sub-chunks of 2, 3 and 1 bits; the
#: defaults.
WIDTHS = [(16, 10, 512, 16), (3, 2, 16, 2), (2, 3, 8, 2), (4, 1, 32, 3), (6, 2, 16, 1), None]


def random_circuit(n: int, seed: int, gates: int = 40, complex_gates: bool = True) -> Circuit:
    """One-qubit gates of every kind and CZs on random (also distant) pairs; no CNOT."""
    rng = np.random.default_rng(seed)
    names = ["ry", "rx", "rz", "h", "x", "cz"] if complex_gates else ["ry", "h", "x", "cz"]
    out, n_params = [], 0
    for _ in range(gates):
        name = str(rng.choice(names))
        if name == "cz":
            out.append(Gate("cz", tuple(int(q) for q in rng.choice(n, 2, replace=False))))
        elif name in ("h", "x"):
            out.append(Gate(name, (int(rng.integers(n)),)))
        else:
            out.append(Gate(name, (int(rng.integers(n)),), n_params))
            n_params += 1
    return Circuit(n, tuple(out), max(n_params, 1), name=f"random(n={n}, seed={seed})")


def angles(count: int, seed: int, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (
        (torch.rand(batch, count, generator=generator, dtype=torch.float64) * 2 - 1) * 2 * math.pi
    )


def run(circuit, theta, dtype=torch.float64, widths=None, keep_state=False):
    itemsize = (dtype if circuit.is_real else dtype.to_complex()).itemsize
    plan = sweep_schedule.schedule(circuit, itemsize, keep_final_diagonal=keep_state, widths=widths)
    assert plan is not None
    state_dtype = dtype if circuit.is_real else dtype.to_complex()
    return sweeps.sweep_probs(plan, theta.to(dtype), state_dtype, keep_state=keep_state)


@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize("n, seed", [(3, 0), (5, 1), (6, 2), (7, 3), (9, 4)])
def test_probabilities_equal_qiskit(n, seed, widths):
    circuit = random_circuit(n, seed)
    theta = angles(circuit.n_params, seed)
    probs, _ = run(circuit, theta, widths=widths)
    for row in range(theta.shape[0]):
        expected = qiskit_probs(circuit, theta[row])
        np.testing.assert_allclose(probs[row].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize("n, seed", [(4, 5), (7, 6)])
def test_state_equals_pennylane_amplitudes(n, seed, widths):
    """Amplitudes with their phases (a conjugated state has the same probabilities), and the
    final CZ run kept when the state is wanted."""
    gates = (*random_circuit(n, seed).gates, Gate("cz", (0, n - 1)))
    circuit = Circuit(n, gates, max(1, sum(g.param is not None for g in gates)))
    theta = angles(circuit.n_params, seed, batch=1)
    probs, state = run(circuit, theta, widths=widths, keep_state=True)
    expected = pennylane_state(circuit, theta[0])
    np.testing.assert_allclose(state[0].numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probs[0].numpy(), np.abs(expected) ** 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("widths", WIDTHS[1:5])
@pytest.mark.parametrize("layers", [0, 1, 3])
@pytest.mark.parametrize("rotations", [("ry",), ("rx", "ry", "rz")])
def test_ansatz_circuits_equal_qiskit(rotations, layers, widths):
    circuit = hardware_efficient(8, layers, rotations=rotations)
    theta = angles(circuit.n_params, layers)
    probs, _ = run(circuit, theta, widths=widths)
    for row in range(theta.shape[0]):
        np.testing.assert_allclose(
            probs[row].numpy(), qiskit_probs(circuit, theta[row]), atol=1e-12
        )


def test_cnot_circuits_are_left_to_the_torch_passes():
    circuit = qhn_reference(16, 1)
    assert sweep_schedule.schedule(circuit, 8, keep_final_diagonal=False) is None
    assert StatevectorBackend(sweeps=True)._sweep_schedule(circuit, keep_state=False) is None


@pytest.mark.parametrize(
    "first, row_bits, cb", [(3, 3, 2), (2, 4, 2), (0, 3, 0), (4, 2, 4), (1, 5, 1)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_sign_tables_give_every_cz_parity(first, row_bits, cb, seed):
    """Row-by-row signs against the brute-force ``(−1)^{Σ i_a·i_b}`` at every index of 9 bits:
    pairs of every kind (column, row and fixed bits), every tile and every sub-range of rows."""
    from qhn.backends import sweep_kernels
    from qhn.backends.sweep_signs import diagonal_tables

    n, rng = 9, np.random.default_rng(seed)
    pairs = tuple(tuple(int(b) for b in rng.choice(n, 2, replace=False)) for _ in range(12))
    tables = diagonal_tables([(first, row_bits, cb, pairs)]).arrays(np.float64)
    _, row_bases, row_masks, parity, signs, cross, _, column_cross, _, fixed, _ = tables
    tile_bits = set(range(cb)) | set(range(first, first + row_bits))
    fixed_bits = [b for b in range(n) if b not in tile_bits]
    index = np.arange(2**n)
    expected = np.ones(2**n)
    for a, b in pairs:
        expected *= 1 - 2 * ((index >> a) & (index >> b) & 1)
    for pattern in range(2 ** len(fixed_bits)):
        fixed_index = sum(((pattern >> k) & 1) << bit for k, bit in enumerate(fixed_bits))
        for r0, rows in [(0, 2**row_bits), (2**row_bits // 2, 2**row_bits // 2)]:
            tile = np.ones(rows << cb)
            sweep_kernels.diagonal(tile, tile.size, fixed_index, r0, cb, row_bases, row_masks,
                                   parity, signs, cross, column_cross, fixed)  # fmt: skip
            r, c = np.divmod(np.arange(tile.size), 2**cb)
            at = fixed_index | ((r0 + r) << first) | c
            np.testing.assert_array_equal(tile, expected[at])


@pytest.mark.parametrize("widths", WIDTHS[1:])
def test_float32_within_its_rounding(widths):
    """float32 against the float64 oracle: each of ~G gates rounds each amplitude by at most
    a few ε, so |Δp| ≤ 2·|ψ|·|Δψ| stays below 8·G·ε."""
    circuit = random_circuit(7, 11, gates=40, complex_gates=True)
    theta = angles(circuit.n_params, 11)
    probs, _ = run(circuit, theta, dtype=torch.float32, widths=widths)
    assert probs.dtype == torch.float32
    tol = 8 * len(circuit.gates) * torch.finfo(torch.float32).eps
    for row in range(theta.shape[0]):
        expected = qiskit_probs(circuit, theta[row])
        np.testing.assert_allclose(probs[row].double().numpy(), expected, rtol=0, atol=tol)


#: RY angles at the forms' edges: θ = 0 (t = 0), ±π (c = 0: the unit anti-diagonal with k = 0),
#: ±π/2 (|c| = |s|, t = ±1), then random ones of either form.
EDGE_ANGLES = [0.0, math.pi, -math.pi, math.pi / 2, -math.pi / 2, 3 * math.pi / 2]


@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scaled_rotations_equal_qiskit(widths, dtype):
    """RY layers run as scaled rotations (both forms, single and paired, in every group), each
    sweep's first gate carrying the others' scalars, against Qiskit; float32 within 8·G·ε."""
    circuit = hardware_efficient(9, 3)
    theta = angles(circuit.n_params, 21)
    theta[0, : len(EDGE_ANGLES)] = torch.tensor(EDGE_ANGLES, dtype=torch.float64)
    theta[1, -len(EDGE_ANGLES) :] = torch.tensor(EDGE_ANGLES, dtype=torch.float64)
    probs, _ = run(circuit, theta, dtype=dtype, widths=widths)
    tol = 1e-12 if dtype == torch.float64 else 8 * len(circuit.gates) * torch.finfo(dtype).eps
    for row in range(theta.shape[0]):
        expected = qiskit_probs(circuit, theta[row])
        np.testing.assert_allclose(probs[row].double().numpy(), expected, rtol=0, atol=tol)


def test_scaled_rotations_choose_the_form_by_the_larger_entry():
    """Forms and scalars against their definition: ``m = c·[[1, −t], [t, 1]]`` where ``|c| ≥ |s|``,
    ``s·[[k, −1], [1, k]]`` otherwise; a non-rotation stays general; each sweep's first gate
    takes the product of the other gates' scalars."""
    from qhn.backends.sweep_kernels import GENERAL, UNIT_ANTIDIAGONAL, UNIT_DIAGONAL
    from qhn.backends.sweep_rotations import scaled_rotations

    phi = np.array([0.3, 2.8, -1.2, math.pi, 0.0, 1.0])  # half-angles
    c, s = np.cos(phi), np.sin(phi)
    mats = np.stack([np.array([[ci, -si], [si, ci]]) for ci, si in zip(c, s, strict=True)])
    mats[5] = [[0.6, 0.8], [0.8, -0.6]]  # a reflection: not a rotation
    mats = mats[:, None]  # (G, B = 1, 2, 2)
    sweeps = np.array([[0, 3, 0, 2, 1, 0], [3, 3, 2, 4, 0, 1]])
    ops = np.array([[0, 0, 0, 0, 0], [2, 1, 1, 2, 2], [2, 0, 3, 1, 4], [0, 2, 5, 0, 0]])
    scaled, forms = scaled_rotations(sweeps, ops, mats)
    diagonal = np.abs(c) >= np.abs(s)
    scale = np.where(diagonal, c, s)
    for g in (1, 2, 4):  # not the sweeps' first gates (0 and 3), not the reflection (5)
        assert forms[g, 0] == (UNIT_DIAGONAL if diagonal[g] else UNIT_ANTIDIAGONAL)
        np.testing.assert_allclose(scale[g] * scaled[g, 0], mats[g, 0], rtol=0, atol=1e-15)
        assert abs(scaled[g, 0, 0, 0] if diagonal[g] else scaled[g, 0, 1, 0]) == 1
    assert forms[5, 0] == GENERAL
    np.testing.assert_array_equal(scaled[5], mats[5])
    assert forms[0, 0] == forms[3, 0] == GENERAL
    np.testing.assert_allclose(scaled[0, 0], mats[0, 0] * scale[1] * scale[2], atol=1e-15)
    np.testing.assert_allclose(scaled[3, 0], mats[3, 0] * scale[4], atol=1e-15)


def test_many_float32_layers_stay_normalized():
    """Sweeps stay norm-preserving with scaled rotations: 60 RY layers in float32 (unscaled, the
    scalars alone would shrink the state by up to 2^(−G/2)) sum to 1 and match Qiskit."""
    circuit = hardware_efficient(8, 60)
    theta = angles(circuit.n_params, 5, batch=1)
    probs, _ = run(circuit, theta, dtype=torch.float32)
    tol = 8 * len(circuit.gates) * torch.finfo(torch.float32).eps
    assert abs(float(probs.double().sum()) - 1) < tol
    np.testing.assert_allclose(
        probs[0].double().numpy(), qiskit_probs(circuit, theta[0]), rtol=0, atol=tol
    )


def test_hardware_efficient_takes_one_sweep_per_layer_and_one_more():
    """Two groups: the product state and the first layer's low half share a sweep, and every
    later sweep finishes one layer's half and starts the next: L + 1 sweeps, vs ⌈n/4⌉ + 1
    torch passes per layer."""
    for layers in (1, 2, 6):
        plan = sweep_schedule.schedule(hardware_efficient(24, layers), 8, keep_final_diagonal=False)
        groups = {(gs, w) for gs, w, *_ in plan.sweeps.tolist()}
        assert len(groups) == 2 and sum(w for _, w in groups) == 24
        assert plan.sweeps.shape[0] == layers + 1


def layered_ry_cz(n: int, layers: int, skip: int | None = None) -> Circuit:
    """RY on every qubit but ``skip``, then a CZ chain, ``layers + 1`` times (no CZ at the end)."""
    gates: list[Gate] = []
    rotations = [q for q in range(n) if q != skip]
    for layer in range(layers + 1):
        gates += [Gate("ry", (q,), layer * len(rotations) + k) for k, q in enumerate(rotations)]
        if layer < layers:
            gates += [Gate("cz", (q, q + 1)) for q in range(n - 1)]
    return Circuit(n, tuple(gates))


@pytest.mark.parametrize(("skip", "together"), [(None, 5), (12 - 1 - 3, 3), (12 - 1 - 1, 0)])
def test_a_layer_s_gates_on_the_lowest_bits_go_in_registers_together(skip, together):
    """Bits 0–4 in one register operation when the layer has a gate on each (qubit q is bit
    n − 1 − q), else bits 0–2, else none; its matrices are that layer's gates on bits 0, 1, …"""
    n = 12
    plan = sweep_schedule.schedule(layered_ry_cz(n, 2, skip), 8, keep_final_diagonal=False)
    low = [op for op in plan.ops.tolist() if op[0] == sweep_kernels.LOW_GATES]
    assert [op[1] for op in low] == ([together] * 2 if together else [])
    for _, bits, first, _, _ in low:
        gates = plan.gates[first : first + bits].tolist()
        assert len({run for run, _ in gates}) == 1
        assert [q for _, q in gates] == [n - 1 - b for b in range(bits)]


def test_backend_uses_sweeps_and_agrees_with_torch_passes():
    circuit = random_circuit(9, 21, gates=60)
    theta = angles(circuit.n_params, 21, batch=3)
    fast, plain = StatevectorBackend(sweeps=True), StatevectorBackend(sweeps=False)
    assert fast._sweep_schedule(circuit, keep_state=False) is not None
    np.testing.assert_allclose(fast.probs(circuit, theta), plain.probs(circuit, theta), atol=1e-13)
    # The adjoint backward walks the torch passes back from the state the sweeps computed.
    cost = torch.linspace(-1, 1, 2**9, dtype=torch.float64)
    grads = []
    for backend in (fast, plain):
        t = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad((backend.probs(circuit, t) @ cost).sum(), t)
        grads.append(grad)
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-12)


def test_sweeps_true_without_numba_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(sv, "numba_available", lambda: False)
    with pytest.raises(ConfigError, match=r"numba.*pip install 'qhn\[fast\]'"):
        StatevectorBackend(sweeps=True)
    assert StatevectorBackend().sweeps is False
    assert StatevectorBackend()._sweep_schedule(hardware_efficient(20, 1), keep_state=False) is None


def test_sweeps_option_is_checked():
    with pytest.raises(ConfigError, match=r"sweeps must be None, True or False, got 'yes'"):
        StatevectorBackend(sweeps="yes")


@pytest.mark.parametrize("widths", WIDTHS[1:5])
def test_tiles_split_across_threads_give_the_same_probabilities(monkeypatch, widths):
    """Each sweep's tiles in contiguous blocks, one per thread (uneven when the tile count is
    not a multiple), against Qiskit."""
    monkeypatch.setattr(sweeps, "PARALLEL_MIN_QUBITS", 0)
    circuit = random_circuit(8, 31, gates=50)
    theta = angles(circuit.n_params, 31)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert sweeps._threads(circuit.n_qubits) == min(3, sweeps.numba.config.NUMBA_NUM_THREADS)
        probs, _ = run(circuit, theta, widths=widths)
    finally:
        torch.set_num_threads(previous)
    for row in range(theta.shape[0]):
        np.testing.assert_allclose(
            probs[row].numpy(), qiskit_probs(circuit, theta[row]), atol=1e-12
        )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("widths", WIDTHS[1:5])
def test_adjoint_by_sweeps_equals_finite_differences(monkeypatch, widths, threads):
    """The backward sweeps (every tile shape, one or two threads' partial sums) against central
    differences of Qiskit's probabilities: errors O(step²) ≈ 1e-10 plus rounding ≈ 1e-11."""
    if threads > 1:
        monkeypatch.setattr(sweeps, "PARALLEL_MIN_QUBITS", 0)
    circuit = random_circuit(6, 41 + threads, gates=30)
    theta = angles(circuit.n_params, 41, batch=1)[0]
    cost = np.random.default_rng(5).normal(size=2**6)
    plan = sweep_schedule.schedule(circuit, 16, keep_final_diagonal=True, widths=widths)
    params = theta[None].clone().requires_grad_(True)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        probs = sweeps.SweepAdjointProbs.apply(params, plan, torch.complex128)
        (grad,) = torch.autograd.grad(probs[0] @ torch.from_numpy(cost), params)
    finally:
        torch.set_num_threads(previous)
    expected = qiskit_finite_difference(circuit, theta, cost)
    np.testing.assert_allclose(grad[0].numpy(), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("widths", WIDTHS[1:5])
@pytest.mark.parametrize("kind", ["ry", "mixed"])
def test_adjoint_by_sweeps_on_a_batch_of_real_circuits(monkeypatch, kind, widths, threads):
    """A batch of real rows, each row's gradient by finite differences: RY + CZ layers (every
    gate a rotation, taking the one-accumulator backward, at the forms' edge angles too), and
    RY mixed with H and X (reflections and other general real matrices)."""
    if threads > 1:
        monkeypatch.setattr(sweeps, "PARALLEL_MIN_QUBITS", 0)
    if kind == "ry":
        circuit = hardware_efficient(7, 3)
    else:
        circuit = random_circuit(7, 44, gates=60, complex_gates=False)
    theta = angles(circuit.n_params, 43, batch=2)
    edges = EDGE_ANGLES[: circuit.n_params]
    theta[0, : len(edges)] = torch.tensor(edges, dtype=torch.float64)
    cost = np.random.default_rng(6).normal(size=2**7)
    plan = sweep_schedule.schedule(circuit, 8, keep_final_diagonal=True, widths=widths)
    params = theta.clone().requires_grad_(True)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        probs = sweeps.SweepAdjointProbs.apply(params, plan, torch.float64)
        (grad,) = torch.autograd.grad((probs @ torch.from_numpy(cost)).sum(), params)
    finally:
        torch.set_num_threads(previous)
    for row in range(2):
        expected = qiskit_finite_difference(circuit, theta[row], cost)
        np.testing.assert_allclose(grad[row].numpy(), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("widths", WIDTHS[1:4])
@pytest.mark.parametrize("name", ["ry", "rx", "rz"])
def test_adjoint_by_sweeps_of_shared_angles(name, widths):
    """Every run one slot of rotations (and fixed gates), so the backward computes the angle
    gradients itself (:mod:`qhn.backends.rotation_grads`): angles shared by several gates, in
    the product state and later runs, against Qiskit's central differences."""
    n = 7
    gates = [Gate("h", (q,)) for q in range(n)] + [Gate("cz", (0, 1))] if name == "rz" else []
    gates += [Gate(name, (q,), q % 3) for q in range(n)]
    gates += [Gate("cz", (q, q + 1)) for q in range(n - 1)]
    gates += [Gate(name, (q,), 3 + q % 2) for q in range(n)]
    gates += [Gate("cz", (0, n - 1))]
    gates += [Gate(name, (q,), 5) if q % 2 else Gate("x", (q,)) for q in range(n)]
    circuit = Circuit(n, tuple(gates), 6)
    theta = angles(circuit.n_params, 47, batch=2)
    cost = np.random.default_rng(7).normal(size=2**n)
    itemsize = 8 if circuit.is_real else 16
    plan = sweep_schedule.schedule(circuit, itemsize, keep_final_diagonal=True, widths=widths)
    assert all(sweeps.is_one_slot(run) for run in plan.runs)
    params = theta.clone().requires_grad_(True)
    dtype = torch.float64 if circuit.is_real else torch.complex128
    probs = sweeps.SweepAdjointProbs.apply(params, plan, dtype)
    (grad,) = torch.autograd.grad((probs @ torch.from_numpy(cost)).sum(), params)
    for row in range(2):
        expected = qiskit_finite_difference(circuit, theta[row], cost)
        np.testing.assert_allclose(grad[row].numpy(), expected, rtol=0, atol=1e-7)


def test_backward_scratch_is_reused_without_carrying_anything_over():
    """The backward keeps its ψ and λ buffers for the next call: calls on two circuits of
    different sizes, interleaved, and a second backward of the same graph give the gradients
    of fresh buffers, each against finite differences of Qiskit's probabilities."""
    grads = {}
    for n, seed in ((6, 1), (7, 2), (6, 1), (7, 2)):
        circuit = random_circuit(n, 60 + seed, gates=30, complex_gates=False)
        theta = angles(circuit.n_params, 60 + seed, batch=1)[0]
        cost = torch.from_numpy(np.random.default_rng(seed).normal(size=2**n))
        plan = sweep_schedule.schedule(circuit, 8, keep_final_diagonal=True, widths=WIDTHS[1])
        params = theta[None].clone().requires_grad_(True)
        loss = sweeps.SweepAdjointProbs.apply(params, plan, torch.float64)[0] @ cost
        (first,) = torch.autograd.grad(loss, params, retain_graph=True)
        (second,) = torch.autograd.grad(loss, params)
        assert torch.equal(first, second)
        if n in grads:
            assert torch.equal(first, grads[n])
        grads[n] = first
        expected = qiskit_finite_difference(circuit, theta, cost.numpy())
        np.testing.assert_allclose(first[0].numpy(), expected, rtol=0, atol=1e-7)


def test_float32_state_writes_float64_probabilities_directly():
    """A float32 simulation asked for float64 probabilities (θ in float64) writes them from the
    last sweep: the same values as squaring in float32 and converting, within float32 of Qiskit."""
    circuit = random_circuit(8, 51, gates=40, complex_gates=False)
    theta = angles(circuit.n_params, 51)
    backend = StatevectorBackend(dtype=torch.float32, sweeps=True)
    probs = backend.probs(circuit, theta)
    assert probs.dtype == torch.float64
    squared_in_float32, _ = run(circuit, theta, dtype=torch.float32)
    assert torch.equal(probs, squared_in_float32.double())
    tol = 8 * len(circuit.gates) * torch.finfo(torch.float32).eps
    for row in range(theta.shape[0]):
        expected = qiskit_probs(circuit, theta[row])
        np.testing.assert_allclose(probs[row].numpy(), expected, rtol=0, atol=tol)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1001, 4096])
def test_widen_in_place_equals_torchs_conversion(size):
    """Values stored as float32 at the start of a float64 buffer, widened in place: torch's own
    float32 → float64 conversion of the same values (odd sizes included)."""
    values = torch.randn(size, generator=torch.Generator().manual_seed(size)) * 1e3
    row = torch.full((size,), float("nan"), dtype=torch.float64)
    row.view(torch.float32)[:size] = values
    sweeps.widen_in_place(row, size, torch.float32)
    assert torch.equal(row, values.double())


@pytest.mark.parametrize("widths", [(3, 2, 16, 2), None])
def test_float32_state_in_the_probabilities_buffer_gives_the_same_bits(monkeypatch, widths):
    """A float32 state kept in the first half of its float64 probabilities' buffer (forced at any
    size) gives the bits of a separate state, for every row of a batch, within float32 of
    Qiskit."""
    circuit = random_circuit(9, 52, gates=50, complex_gates=False)
    theta = angles(circuit.n_params, 52, batch=3)
    plan = sweep_schedule.schedule(circuit, 4, keep_final_diagonal=False, widths=widths)
    separate, _ = sweeps.sweep_probs(plan, theta.float(), torch.float32, out_dtype=torch.float64)
    monkeypatch.setattr(sweeps, "WIDEN_IN_PLACE_BYTES", 1)
    shared, _ = sweeps.sweep_probs(plan, theta.float(), torch.float32, out_dtype=torch.float64)
    assert shared.dtype == torch.float64 and shared.shape == (3, 2**9)
    assert torch.equal(shared, separate)
    tol = 8 * len(circuit.gates) * torch.finfo(torch.float32).eps
    for row in range(theta.shape[0]):
        expected = qiskit_probs(circuit, theta[row])
        np.testing.assert_allclose(shared[row].numpy(), expected, rtol=0, atol=tol)


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_streamed_rows_of_a_large_state_equal_qiskit(two_threads):
    """From ``STREAM_BYTES`` of state the high tiles are written back with non-temporal stores
    (and a fence per tile, since two threads share the sweeps): probabilities against Qiskit, and
    the adjoint against Qiskit's parameter-shift derivatives for a few angles."""
    from qhn.backends import sweep_kernels

    n = 21
    assert 2**n * 8 >= sweep_kernels.STREAM_BYTES  # the streamed path is the one tested
    circuit = hardware_efficient(n, 2)
    theta = angles(circuit.n_params, 61, batch=1)[0]
    backend = StatevectorBackend()
    with torch.no_grad():
        probs = backend.probs(circuit, theta)
    expected = qiskit_probs(circuit, theta)
    np.testing.assert_allclose(probs.numpy(), expected, rtol=0, atol=1e-13)
    cost = torch.rand(2**n, dtype=torch.float64, generator=torch.Generator().manual_seed(61))
    params = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(backend.probs(circuit, params) @ cost, params)
    for k in (0, circuit.n_params - 1):
        step = torch.zeros_like(theta)
        step[k] = math.pi / 2
        shifted = qiskit_probs(circuit, torch.stack([theta + step, theta - step])) @ cost.numpy()
        assert abs(grad[k].item() - (shifted[0] - shifted[1]) / 2) < 1e-10
