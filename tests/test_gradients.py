"""Gradient estimators against autograd, PennyLane, closed forms and their own statistics."""

from __future__ import annotations

import math

import pytest
import torch

import qhn.backends.statevector as statevector
from fresh_process import imported_after
from qhn.backends import Capabilities, SampleOnly, StatevectorBackend
from qhn.backends.sampling import sample_indices
from qhn.bits import index_to_bits
from qhn.circuits import Circuit, Gate, hardware_efficient, qhn_reference
from qhn.errors import CapabilityError, ConfigError
from qhn.gradients import (
    ESTIMATOR_NAMES,
    Backprop,
    GradientEstimator,
    ParameterShift,
    ScoreFunction,
    combine_shifts,
    make_estimator,
    plan_shifts,
    valid_estimators,
)

F64 = torch.float64


def shared_circuit() -> Circuit:
    """Parameter 0 drives three gates, 1 and 2 two each; parameter 3 drives none."""
    gates = (
        Gate("ry", (0,), 0),
        Gate("rx", (1,), 0),
        Gate("cnot", (0, 1)),
        Gate("rz", (1,), 1),
        Gate("ry", (2,), 2),
        Gate("cz", (1, 2)),
        Gate("ry", (0,), 0),
        Gate("rx", (2,), 1),
        Gate("h", (1,)),
        Gate("ry", (1,), 2),
    )
    return Circuit(3, gates, n_params=4, name="shared")


#: The occurrences of shared_circuit's rotations, read off the gate list above by hand.
SHARED_ORIGIN = [0, 0, 1, 2, 0, 1, 2]

CIRCUITS = {
    "he_ry_cz": hardware_efficient(4, 2),
    "he_ry_rz_rx_cnot": hardware_efficient(4, 2, ("ry", "rz", "rx"), "cnot"),
    "he_rx_cz_ring": hardware_efficient(3, 1, ("rx",), "cz", "ring"),
    "qhn_reference": qhn_reference(4, 1),
    "shared": shared_circuit(),
}


def random_params(circuit: Circuit, *batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*batch, circuit.n_params, generator=g, dtype=F64) * 2 * math.pi


def random_cost(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(2**n, generator=torch.Generator().manual_seed(seed), dtype=F64)


def autograd_oracle(circuit: Circuit, params: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """∇θ Σ_s q(s) c(s) by plain torch autograd through every simulator pass."""
    theta = params.detach().clone().requires_grad_(True)
    value = (StatevectorBackend(adjoint=False).probs(circuit, theta) @ cost).sum()
    (grad,) = torch.autograd.grad(value, theta)
    return grad


def gradient(estimator, backend, circuit, params, f, **kwargs):
    theta = params.detach().clone().requires_grad_(True)
    value = estimator.expectation(backend, circuit, theta, f, **kwargs)
    (grad,) = torch.autograd.grad(value.sum(), theta)
    return value.detach(), grad


def ising_bits(bits: torch.Tensor) -> torch.Tensor:
    """A closed-form function of bitstrings, written without our bit-order helpers."""
    z = 1.0 - 2.0 * bits.to(F64)
    n = z.shape[-1]
    weights = torch.arange(1, n + 1, dtype=F64)
    return (z * weights).sum(-1) + 0.5 * (z[:, :-1] * z[:, 1:]).sum(-1)


def tabulate_independently(function, n: int) -> torch.Tensor:
    """A cost vector from Python's own binary formatting (qubit 0 = most significant bit)."""
    rows = [[int(ch) for ch in format(i, f"0{n}b")] for i in range(2**n)]
    return function(torch.tensor(rows, dtype=torch.uint8))


class Spy:
    """A backend wrapper that records every call (to check the work done and its order)."""

    def __init__(self, inner, *, expose_probs: bool = True) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.calls: list[tuple[str, Circuit, torch.Tensor, torch.Tensor]] = []
        if expose_probs:
            self.probs = self._probs

    def _probs(self, circuit, params):
        out = self.inner.probs(circuit, params)
        self.calls.append(("probs", circuit, params.detach().clone(), out.detach()))
        return out

    def sample(self, circuit, params, shots, *, generator=None):
        bits = self.inner.sample(circuit, params, shots, generator=generator)
        self.calls.append(("sample", circuit, params.detach().clone(), bits))
        return bits

    def __repr__(self) -> str:
        return f"Spy({self.inner!r})"


class ExactNoAutograd:
    """An exact simulator whose probabilities carry no autograd graph (like an external one)."""

    def __init__(self) -> None:
        self.inner = StatevectorBackend()
        self.capabilities = Capabilities(exact_probs=True, backprop=False, max_qubits=30)

    def probs(self, circuit, params):
        return self.inner.probs(circuit, params).detach()

    def sample(self, circuit, params, shots, *, generator=None):
        return self.inner.sample(circuit, params, shots, generator=generator)

    def __repr__(self) -> str:
        return "ExactNoAutograd()"


@pytest.fixture(scope="module")
def backend() -> StatevectorBackend:
    return StatevectorBackend()


# ---------------------------------------------------------------------------- exact agreement
@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_exact_parameter_shift_and_backprop_equal_autograd(backend, name):
    circuit = CIRCUITS[name]
    params = random_params(circuit, 3)
    cost = random_cost(circuit.n_qubits)
    oracle = autograd_oracle(circuit, params, cost)
    exact_value = StatevectorBackend(adjoint=False).probs(circuit, params) @ cost
    for estimator in (ParameterShift(), Backprop()):
        value, grad = gradient(estimator, backend, circuit, params, cost)
        assert grad.shape == (3, circuit.n_params)
        torch.testing.assert_close(grad, oracle, rtol=0, atol=1e-8)
        torch.testing.assert_close(value, exact_value, rtol=0, atol=1e-12)


def test_unused_parameter_gets_zero_gradient(backend):
    circuit = shared_circuit()
    _, grad = gradient(ParameterShift(), backend, circuit, random_params(circuit), random_cost(3))
    assert grad[-1].item() == 0.0
    assert grad[:3].abs().min() > 1e-6


@pytest.mark.parametrize("sharing", [False, True])
@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_shift_rule_probs_backward_equals_autograd(monkeypatch, name, sharing):
    # With sharing, the statevector backend's shifted rows reuse their common leading passes.
    monkeypatch.setattr(statevector, "SHARED_PREFIX_MIN_QUBITS", 1 if sharing else 99)
    circuit = CIRCUITS[name]
    params = random_params(circuit, 2, seed=3)
    upstream = torch.randn(2, 2**circuit.n_qubits, generator=torch.Generator().manual_seed(4))
    upstream = upstream.to(F64)
    theta = params.clone().requires_grad_(True)
    (oracle,) = torch.autograd.grad(
        StatevectorBackend(adjoint=False).probs(circuit, theta), theta, upstream
    )
    # The statevector backend's own expectations; a backend without them in one chunk, and
    # one row per chunk.
    cases = [(128 * 2**20, StatevectorBackend()), (128 * 2**20, ExactNoAutograd())]
    for chunk_bytes, simulator in [*cases, (1, ExactNoAutograd())]:
        theta = params.clone().requires_grad_(True)
        probs = ParameterShift(max_chunk_bytes=chunk_bytes).probs(simulator, circuit, theta)
        torch.testing.assert_close(
            probs, StatevectorBackend().probs(circuit, params), atol=0, rtol=0
        )
        (grad,) = torch.autograd.grad(probs, theta, upstream)
        torch.testing.assert_close(grad, oracle, rtol=0, atol=1e-8)


def test_parameter_shift_exact_needs_no_autograd_from_the_backend():
    circuit = CIRCUITS["he_ry_rz_rx_cnot"]
    params, cost = random_params(circuit, 2), random_cost(circuit.n_qubits)
    _, grad = gradient(ParameterShift(), ExactNoAutograd(), circuit, params, cost)
    torch.testing.assert_close(grad, autograd_oracle(circuit, params, cost), rtol=0, atol=1e-8)
    with pytest.raises(CapabilityError, match="backprop"):
        make_estimator("backprop", ExactNoAutograd())


def test_closed_form_shared_rotation(backend):
    # RY(θ) twice on one qubit is RY(2θ): P(s = 1) = sin²θ, so d/dθ = sin 2θ.
    circuit = Circuit(1, (Gate("ry", (0,), 0), Gate("ry", (0,), 0)))
    theta = torch.tensor([0.37, 1.1, 2.9], dtype=F64).unsqueeze(-1)
    ones = torch.tensor([0.0, 1.0], dtype=F64)
    value, grad = gradient(ParameterShift(), backend, circuit, theta, ones)
    torch.testing.assert_close(value, torch.sin(theta[:, 0]) ** 2, rtol=0, atol=1e-14)
    torch.testing.assert_close(grad[:, 0], torch.sin(2 * theta[:, 0]), rtol=0, atol=1e-14)


def test_shapes_unbatched_and_batched(backend):
    circuit = CIRCUITS["he_ry_cz"]
    cost = random_cost(circuit.n_qubits)
    single, batch = random_params(circuit), random_params(circuit, 2)
    for estimator, shots in ((Backprop(), None), (ParameterShift(), None), (ParameterShift(), 8)):
        assert estimator.expectation(backend, circuit, single, cost, shots=shots).shape == ()
        assert estimator.expectation(backend, circuit, batch, cost, shots=shots).shape == (2,)
    assert ScoreFunction().expectation(backend, circuit, single, cost, shots=4).shape == ()
    assert ParameterShift().probs(backend, circuit, single).shape == (16,)
    assert isinstance(ParameterShift(), GradientEstimator)


def test_no_shifted_circuits_without_a_gradient():
    circuit = CIRCUITS["he_ry_cz"]
    spy = Spy(StatevectorBackend())
    with torch.no_grad():
        ParameterShift().expectation(spy, circuit, random_params(circuit), random_cost(4))
    assert [(kind, c) for kind, c, _, _ in spy.calls] == [("probs", circuit)]


# ---------------------------------------------------------------------------- external oracle
def pennylane_probs(circuit: Circuit, theta: torch.Tensor, diff_method: str):
    qml = pytest.importorskip("pennylane")
    ops = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ}
    fixed = {"h": qml.Hadamard, "x": qml.PauliX, "cz": qml.CZ, "cnot": qml.CNOT}
    wires = list(range(circuit.n_qubits))

    @qml.qnode(qml.device("default.qubit", wires=wires), interface="torch", diff_method=diff_method)
    def qnode(t):
        for gate in circuit.gates:
            if gate.param is None:
                fixed[gate.name](wires=list(gate.wires))
            else:
                ops[gate.name](t[gate.param], wires=gate.wires[0])
        return qml.probs(wires=wires)

    return qnode(theta)


@pytest.mark.parametrize("sharing", [False, True])
@pytest.mark.parametrize("name", ["shared", "qhn_reference", "he_ry_rz_rx_cnot"])
def test_parameter_shift_matches_pennylane_param_shift(monkeypatch, backend, name, sharing):
    monkeypatch.setattr(statevector, "SHARED_PREFIX_MIN_QUBITS", 1 if sharing else 99)
    circuit = CIRCUITS[name]
    params, cost = random_params(circuit, seed=7), random_cost(circuit.n_qubits, seed=8)
    theta = params.clone().requires_grad_(True)
    pl_value = pennylane_probs(circuit, theta, "parameter-shift") @ cost
    (pl_grad,) = torch.autograd.grad(pl_value, theta)
    value, grad = gradient(ParameterShift(), backend, circuit, params, cost)
    torch.testing.assert_close(value, pl_value.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(grad, pl_grad, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------- plan and combine
def test_plan_shifts_is_pure_and_shifts_one_occurrence():
    circuit = shared_circuit()
    params = random_params(circuit, 2).requires_grad_(True)
    plan = plan_shifts(circuit, params)
    k = len(SHARED_ORIGIN)
    assert plan.origin.tolist() == SHARED_ORIGIN
    assert plan.expanded.n_params == k and plan.n_params == 4
    assert plan.shifted.shape == (2, 2 * k, k) and not plan.shifted.requires_grad
    torch.testing.assert_close(plan.base, params.detach()[:, SHARED_ORIGIN], rtol=0, atol=0)
    diff = plan.shifted - plan.base.unsqueeze(1)
    for row in range(2 * k):
        expected = torch.zeros(k, dtype=F64)
        expected[row % k] = math.pi / 2 if row < k else -math.pi / 2
        torch.testing.assert_close(diff[:, row], expected.expand(2, k), rtol=0, atol=1e-15)
    assert plan_shifts(circuit, params[0]).shifted.shape == (1, 2 * k, k)


def test_combine_shifts_sums_occurrences_by_hand():
    plan = plan_shifts(shared_circuit(), random_params(shared_circuit()))
    plus = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]], dtype=F64)
    minus = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 3.0]], dtype=F64)
    grad = combine_shifts(plan, torch.cat([plus, minus], 1))
    # halves of (1, 2, 2, 3, 4, 4, 4) summed by origin (0, 0, 1, 2, 0, 1, 2):
    expected = torch.tensor([[0.5 + 1.0 + 2.0, 1.0 + 2.0, 1.5 + 2.0, 0.0]], dtype=F64)
    torch.testing.assert_close(grad, expected, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="shape"):
        combine_shifts(plan, plus)


# ---------------------------------------------------------------------------- shot-based estimators
def assert_unbiased(estimates: torch.Tensor, exact: torch.Tensor, *, power: bool = True) -> None:
    """Mean over repetitions within 4 standard errors of the exact value, per component."""
    repeats = estimates.shape[0]
    mean = estimates.mean(0)
    se = estimates.std(0) / math.sqrt(repeats)
    deterministic = exact.abs() < 1e-12
    assert (se[~deterministic] > 0).all()
    if power:  # it would catch a bias of a tenth of the largest component
        assert 4 * se.max() < 0.1 * exact.abs().max()
    assert ((mean - exact).abs() <= 4 * se + 1e-12).all(), (mean, exact, se)


def test_shot_parameter_shift_is_unbiased_on_a_sample_only_backend():
    circuit = shared_circuit()
    repeats, shots = 2000, 64
    params = random_params(circuit, seed=11)
    cost = random_cost(circuit.n_qubits, seed=12)
    wrapped = SampleOnly(StatevectorBackend())
    generator = torch.Generator().manual_seed(2024)
    values, grads = gradient(
        ParameterShift(),
        wrapped,
        circuit,
        params.expand(repeats, -1),
        cost,
        shots=shots,
        generator=generator,
    )
    exact_grad = autograd_oracle(circuit, params, cost)
    assert_unbiased(grads, exact_grad)
    assert (grads[:, 3] == 0).all()
    exact_value = StatevectorBackend().probs(circuit, params) @ cost
    assert_unbiased(values.unsqueeze(-1), exact_value.reshape(1), power=False)


def test_score_function_is_unbiased():
    circuit = hardware_efficient(3, 1, ("ry", "rz"), "cnot")
    repeats, shots = 4000, 8
    params = random_params(circuit, seed=21)
    cost = random_cost(circuit.n_qubits, seed=22)
    values, grads = gradient(
        ScoreFunction(),
        StatevectorBackend(),
        circuit,
        params.expand(repeats, -1),
        cost,
        shots=shots,
        generator=torch.Generator().manual_seed(99),
    )
    assert_unbiased(grads, autograd_oracle(circuit, params, cost))
    exact_value = StatevectorBackend().probs(circuit, params) @ cost
    assert_unbiased(values.unsqueeze(-1), exact_value.reshape(1), power=False)


def test_score_function_baseline_cancels_a_constant(backend):
    circuit = CIRCUITS["he_ry_cz"]
    constant = torch.full((16,), 3.5, dtype=F64)
    value, grad = gradient(
        ScoreFunction(), backend, circuit, random_params(circuit), constant, shots=5
    )
    assert value.item() == pytest.approx(3.5, abs=1e-14)
    assert grad.abs().max().item() == 0.0


def test_shot_values_are_the_mean_of_f_over_the_shots_at_theta():
    circuit = CIRCUITS["qhn_reference"]
    params = random_params(circuit, 2, seed=5)
    spy = Spy(SampleOnly(StatevectorBackend()), expose_probs=False)
    theta = params.clone().requires_grad_(True)
    values = ParameterShift().expectation(
        spy, circuit, theta, ising_bits, shots=50, generator=torch.Generator().manual_seed(1)
    )
    ((_, _, sent, bits),) = spy.calls
    base = params[:, plan_shifts(circuit, params).origin]
    for row in range(2):
        (match,) = torch.nonzero((sent == base[row]).all(-1)).flatten().tolist()
        assert values[row].item() == pytest.approx(ising_bits(bits[match]).mean().item(), abs=1e-12)
    assert bits.shape == (2 * (1 + 2 * base.shape[1]), 50, 4)


def test_score_function_value_is_the_mean_over_its_draws(backend):
    circuit = CIRCUITS["he_ry_cz"]
    params = random_params(circuit, seed=6)
    value = ScoreFunction().expectation(
        backend, circuit, params, ising_bits, shots=64, generator=torch.Generator().manual_seed(3)
    )
    draws = sample_indices(
        backend.probs(circuit, params)[None], 64, generator=torch.Generator().manual_seed(3)
    )
    expected = ising_bits(index_to_bits(draws[0], 4)).mean()
    assert value.item() == pytest.approx(expected.item(), abs=1e-12)


# ---------------------------------------------------------------------------- f as a callable
def test_callable_f_matches_its_cost_vector(backend):
    circuit = CIRCUITS["he_ry_rz_rx_cnot"]
    params = random_params(circuit, 2)
    table = tabulate_independently(ising_bits, circuit.n_qubits)
    for estimator in (Backprop(), ParameterShift()):
        v_table, g_table = gradient(estimator, backend, circuit, params, table)
        v_call, g_call = gradient(estimator, backend, circuit, params, ising_bits)
        torch.testing.assert_close(v_call, v_table, rtol=0, atol=1e-12)
        torch.testing.assert_close(g_call, g_table, rtol=0, atol=1e-12)
    for estimator in (ParameterShift(), ScoreFunction()):
        kw = {"shots": 16}
        v_table, g_table = gradient(
            estimator,
            backend,
            circuit,
            params,
            table,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        v_call, g_call = gradient(
            estimator,
            backend,
            circuit,
            params,
            ising_bits,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        torch.testing.assert_close(v_call, v_table, rtol=0, atol=1e-12)
        torch.testing.assert_close(g_call, g_table, rtol=0, atol=1e-12)


def test_callable_f_sees_each_sampled_bitstring_once(backend):
    circuit = CIRCUITS["he_ry_cz"]
    seen: list[torch.Tensor] = []

    def counting(bits: torch.Tensor) -> torch.Tensor:
        seen.append(bits.clone())
        return ising_bits(bits)

    gradient(ParameterShift(), backend, circuit, random_params(circuit, 3), counting, shots=200)
    (bits,) = seen
    assert bits.dtype == torch.uint8 and bits.shape[1] == 4
    assert torch.unique(bits, dim=0).shape[0] == bits.shape[0] <= 16


# ------------------------------------------------------------------------ names and capabilities
def test_make_estimator_by_name(backend):
    assert ESTIMATOR_NAMES == ("backprop", "parameter-shift", "score-function")
    kinds = {name: type(make_estimator(name, backend)) for name in ESTIMATOR_NAMES}
    assert kinds == {
        "backprop": Backprop,
        "parameter-shift": ParameterShift,
        "score-function": ScoreFunction,
    }
    with pytest.raises(ConfigError) as error:
        make_estimator("finite-difference", backend)
    message = str(error.value)
    assert "'finite-difference'" in message
    assert all(name in message for name in ESTIMATOR_NAMES)


@pytest.mark.parametrize("name", ["backprop", "score-function"])
def test_sample_only_refuses_estimators_needing_probabilities(backend, name):
    with pytest.raises(CapabilityError) as error:
        make_estimator(name, SampleOnly(backend))
    message = str(error.value)
    assert f"'{name}'" in message and "SampleOnly" in message
    assert message.endswith("valid estimators for this backend: parameter-shift")


def test_valid_estimators(backend):
    assert valid_estimators(backend) == ESTIMATOR_NAMES
    assert valid_estimators(SampleOnly(backend)) == ("parameter-shift",)
    assert valid_estimators(ExactNoAutograd()) == ("parameter-shift",)
    assert isinstance(make_estimator("parameter-shift", SampleOnly(backend)), ParameterShift)


def test_errors_come_before_any_compute():
    circuit = CIRCUITS["he_ry_cz"]
    params, cost = random_params(circuit), random_cost(4)
    sample_only = Spy(SampleOnly(StatevectorBackend()), expose_probs=False)
    exact = Spy(StatevectorBackend())
    cases = [
        (
            CapabilityError,
            "shots",
            lambda: ParameterShift().expectation(sample_only, circuit, params, cost),
        ),
        (CapabilityError, "exact", lambda: ParameterShift().probs(sample_only, circuit, params)),
        (CapabilityError, "backprop", lambda: Backprop().probs(sample_only, circuit, params)),
        (
            CapabilityError,
            "score-function",
            lambda: ScoreFunction().expectation(sample_only, circuit, params, cost, shots=4),
        ),
        (
            ConfigError,
            "shots must be None",
            lambda: Backprop().expectation(exact, circuit, params, cost, shots=10),
        ),
        (ConfigError, ">= 2", lambda: ScoreFunction().expectation(exact, circuit, params, cost)),
        (
            ConfigError,
            ">= 2",
            lambda: ScoreFunction().expectation(exact, circuit, params, cost, shots=1),
        ),
        (
            ConfigError,
            "shots",
            lambda: ParameterShift().expectation(exact, circuit, params, cost, shots=0),
        ),
        (
            ConfigError,
            r"shape \(16,\)",
            lambda: ParameterShift().expectation(exact, circuit, params, cost[:8]),
        ),
        (
            ConfigError,
            "callable",
            lambda: Backprop().expectation(exact, circuit, params, [1.0] * 16),
        ),
        (
            ConfigError,
            "parameters",
            lambda: ParameterShift().expectation(exact, circuit, params[:3], cost),
        ),
    ]
    for error, pattern, call in cases:
        with pytest.raises(error, match=pattern):
            call()
    assert sample_only.calls == [] and exact.calls == []


def test_callable_returning_the_wrong_shape_is_refused(backend):
    circuit = CIRCUITS["he_ry_cz"]
    with pytest.raises(ConfigError, match="one value per bitstring"):
        ParameterShift().expectation(
            backend, circuit, random_params(circuit), lambda bits: bits.sum(), shots=4
        )


def test_statevector_expectations_refuse_weights_of_the_wrong_length(backend):
    circuit = CIRCUITS["shared"]
    params = random_params(circuit, 2)
    with pytest.raises(ConfigError, match=r"weights must have shape \(8,\)"):
        backend.expectations(circuit, params, torch.ones(9, dtype=F64))
    # The right length gives Σ_s q(s) w(s), as the probabilities do.
    weights = random_cost(circuit.n_qubits)
    torch.testing.assert_close(
        backend.expectations(circuit, params, weights),
        backend.probs(circuit, params) @ weights,
        rtol=0,
        atol=1e-14,
    )


@pytest.mark.parametrize("n_qubits", [6, 16])  # torch passes, sweeps
def test_the_adjoint_gradient_does_not_import_symbolic_shapes(n_qubits):
    """torch.autograd.grad with explicit output gradients imports torch.fx's symbolic shapes
    (and sympy) on first use, half a second of a short run; the adjoint's last step avoids it."""
    code = (
        "import torch\n"
        "from qhn.backends import StatevectorBackend\n"
        "from qhn.circuits import hardware_efficient\n"
        f"circuit = hardware_efficient({n_qubits}, 2)\n"
        "theta = torch.rand(circuit.n_params, dtype=torch.float64, requires_grad=True)\n"
        "probs = StatevectorBackend().probs(circuit, theta)\n"
        "(probs * torch.arange(probs.numel(), dtype=probs.dtype)).sum().backward()\n"
        "assert theta.grad.abs().sum() > 0\n"
    )
    assert imported_after(code, ("torch.fx.experimental.symbolic_shapes",)) == []
