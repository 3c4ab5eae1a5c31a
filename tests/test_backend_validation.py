"""StatevectorBackend refuses bad inputs before any compute, with messages that name the problem."""

from __future__ import annotations

import re
import resource

import numpy as np
import pytest
import torch

from qhn.backends import DEFAULT_MEMORY_BUDGET, StatevectorBackend
from qhn.circuits import Circuit, Gate, hardware_efficient, product
from qhn.errors import ConfigError, MemoryBudgetError, QHNError

BACKEND = StatevectorBackend()
CIRCUIT = hardware_efficient(3, 1, ("ry", "rz"))  # P = 12
# The message names the circuit that expected the parameters, the valid shapes and the one given.
SHAPE_MESSAGE = re.escape(f"parameters for {CIRCUIT.name} must have shape (12,) or (B, 12), got ")


def run_each_entry_point(backend: StatevectorBackend, circuit: Circuit, params) -> None:
    """Every public entry point must refuse the same bad input."""
    for call in (
        lambda: backend.probs(circuit, params),
        lambda: backend.sample(circuit, params, 10),
        lambda: backend.state(circuit, params),
    ):
        call()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (torch.zeros(11), SHAPE_MESSAGE + r"\(11,\)"),
        (torch.zeros(4, 13), SHAPE_MESSAGE + r"\(4, 13\)"),
        (torch.zeros(2, 3, 12), SHAPE_MESSAGE + r"\(2, 3, 12\)"),
        (torch.tensor(0.5), SHAPE_MESSAGE + r"\(\)"),
        (torch.zeros(12, dtype=torch.int64), r"floating-point tensor, got dtype torch.int64"),
        (torch.zeros(12, dtype=torch.bool), r"floating-point tensor, got dtype torch.bool"),
        (torch.zeros(12, dtype=torch.complex128), r"floating-point.*got dtype torch.complex128"),
    ],
    ids=["P-short", "P-long", "3-D", "scalar", "int", "bool", "complex"],
)
def test_bad_parameter_shapes_and_dtypes(params, message):
    with pytest.raises(ConfigError, match=message):
        run_each_entry_point(BACKEND, CIRCUIT, params)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("batched", [False, True])
def test_non_finite_parameters_are_refused(bad, batched):
    params = torch.zeros(3, 12, dtype=torch.float64) if batched else torch.zeros(12)
    params.view(-1)[-5] = bad
    for backend in (BACKEND, StatevectorBackend(dtype=torch.float32)):
        with pytest.raises(ConfigError, match="parameters contain NaN or infinite values"):
            run_each_entry_point(backend, CIRCUIT, params)


def test_array_likes_are_accepted_as_float64():
    theta = np.linspace(-3, 3, 12)
    expected = BACKEND.probs(CIRCUIT, torch.from_numpy(theta))
    assert torch.equal(BACKEND.probs(CIRCUIT, theta), expected)
    assert torch.equal(BACKEND.probs(CIRCUIT, theta.tolist()), expected)


@pytest.mark.parametrize("shots", [0, -3, 2.5, True, "10"])
def test_shots_must_be_a_positive_integer(shots):
    with pytest.raises(ConfigError, match=rf"shots must be a positive integer, got {shots!r}"):
        BACKEND.sample(CIRCUIT, torch.zeros(12), shots)


def needed_and_budget(message: str) -> list[int]:
    """Every ``<number> bytes`` figure in a message, commas removed."""
    return [int(x.replace(",", "")) for x in re.findall(r"(\d[\d,]*) bytes", message)]


@pytest.mark.parametrize("n", [6, 10])
def test_state_over_the_budget_names_qubits_bytes_and_budget(n):
    budget = 1000
    backend = StatevectorBackend(memory_budget=budget)
    for call in (
        lambda: backend.probs(product(n), torch.zeros(n)),
        lambda: backend.sample(product(n), torch.zeros(n), 5),
        lambda: backend.state(product(n), torch.zeros(n)),
    ):
        with pytest.raises(MemoryBudgetError, match=rf"\b{n} qubits\b") as caught:
            call()
        figures = needed_and_budget(str(caught.value))
        assert budget in figures, str(caught.value)
        # At least one float64 state vector of 2**n entries is needed, and more than the budget.
        assert any(f >= 2**n * 8 and f > budget for f in figures), str(caught.value)
    assert isinstance(caught.value, QHNError) and isinstance(caught.value, MemoryError)


def test_a_large_batch_over_the_budget_is_refused():
    backend = StatevectorBackend(memory_budget=2**20)
    circuit = product(8)
    assert backend.probs(circuit, torch.zeros(8)).shape == (256,)
    with pytest.raises(MemoryBudgetError, match=r"\b8 qubits\b.*budget of 1,048,576 bytes"):
        backend.probs(circuit, torch.zeros(1000, 8))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def test_thirty_qubits_are_refused_before_allocating():
    # One complex128 state of 30 qubits is 16 GiB, a real one 8 GiB: far over the 4 GiB default.
    circuits = [
        Circuit(30, (Gate("h", (0,)), Gate("cz", (0, 29)))),
        hardware_efficient(30, 1, ("ry", "rz"), "cnot", "ring"),
    ]
    before = peak_rss_bytes()
    for circuit in circuits:
        with pytest.raises(MemoryBudgetError, match=r"\b30 qubits\b") as caught:
            BACKEND.probs(circuit, torch.zeros(circuit.n_params))
        figures = needed_and_budget(str(caught.value))
        assert DEFAULT_MEMORY_BUDGET in figures
        assert any(f >= 2**30 * 8 for f in figures), str(caught.value)
    assert peak_rss_bytes() - before < 256 * 2**20, "memory was allocated before refusing"


def test_more_qubits_than_the_simulator_supports():
    circuit = product(31)
    with pytest.raises(ConfigError, match=r"31 qubits exceed this simulator's limit of 30"):
        BACKEND.probs(circuit, torch.zeros(31))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": torch.int32}, r"dtype must be torch.float64 or torch.float32, got torch.int32"),
        ({"dtype": torch.complex64}, r"dtype must be .* got torch.complex64"),
        ({"block_qubits": 0}, r"block_qubits must be in 1\.\.10, got 0"),
        ({"block_qubits": 11}, r"block_qubits must be in 1\.\.10, got 11"),
    ],
)
def test_bad_backend_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StatevectorBackend(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(ConfigError, match="'cuda' was asked for but CUDA is not available"):
        StatevectorBackend(device="cuda")
