"""Initializations (small, warm), L-BFGS and the evaluation count of QHN runs, against closed
forms, brute force and an independent simulator."""

from __future__ import annotations

import json
import math

import pytest
import torch

from oracles import qiskit_probs
from qhn.backends.statevector import StatevectorBackend
from qhn.bits import index_to_bits
from qhn.circuits import build_ansatz
from qhn.data.tasks import get_task
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.overrides import apply_overrides
from qhn.experiments.runner import build_run, run, training_evaluations
from qhn.experiments.warm_start import product_config, warm_start
from qhn.hypernetwork import QuantumHypernetwork
from qhn.train import read_checkpoint
from qhn.train.loop import fit


def _config(*overrides: str) -> RunConfig:
    return apply_overrides(RunConfig(task="teacher-tiny"), list(overrides))


def _brute_force_costs(task) -> torch.Tensor:
    """C(s) of every network, one bitstring at a time through the task's own cost."""
    n = task.n_bits
    return torch.stack([task.cost(index_to_bits(torch.tensor([i]), n))[0] for i in range(2**n)]).to(
        torch.float64
    )


# --- small-angle init ---------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_small_init_is_within_its_bound_around_the_uniform_product_state(layers):
    n, scale = 5, 0.2
    circuit = build_ansatz("hardware_efficient", n, layers)
    model = QuantumHypernetwork(
        circuit,
        StatevectorBackend(),
        init="small",
        init_scale=scale,
        generator=torch.Generator().manual_seed(3),
    )
    theta = model.theta.detach()
    center = torch.zeros_like(theta)
    center[:n] = math.pi / 2  # the first ry layer tilts |0> to |+>; later rotations idle
    assert torch.all((theta - center).abs() <= scale)
    assert (theta - center).abs().max() > scale / 2  # the noise is really there
    q = torch.as_tensor(qiskit_probs(circuit, theta))
    if layers == 0:
        # closed form: independent qubits, P(b_i = 1) = sin²(θ_i / 2)
        p1 = torch.sin(theta / 2) ** 2
        bits = index_to_bits(torch.arange(2**n), n).to(torch.float64)
        closed = torch.prod(bits * p1 + (1 - bits) * (1 - p1), dim=1)
        torch.testing.assert_close(model.probs().detach(), closed, rtol=0, atol=1e-14)
        # |P(1) − ½| = |sin ε| / 2 ≤ scale / 2 per qubit
        assert torch.all((p1 - 0.5).abs() <= scale / 2 + 1e-15)
    torch.testing.assert_close(model.probs().detach(), q, rtol=0, atol=1e-12)
    # Each rotation is exp(−iθG/2) with ‖G‖ = 1, so ‖ψ(θ) − ψ(centre)‖ ≤ Σ|Δθ|/2, and the total
    # variation distance to the centre's distribution (uniform) is at most that.
    tv = 0.5 * (q - 2.0**-n).abs().sum()
    assert tv <= (theta - center).abs().sum() / 2


def test_small_init_center_is_the_uniform_distribution_on_qiskit():
    circuit = build_ansatz("hardware_efficient", 4, 2)
    model = QuantumHypernetwork(circuit, StatevectorBackend(), init="small", init_scale=1e-300)
    q = qiskit_probs(circuit, model.theta.detach())
    assert q == pytest.approx([1 / 16] * 16, abs=1e-12)


# --- warm start ---------------------------------------------------------------------------------


def test_warm_start_reproduces_the_trained_product_state_exactly(tmp_path):
    warm = _config("objective=elbo", "layers=2", "init=warm", "warm_steps=15", "steps=5")
    product = product_config(warm)
    assert (product.layers, product.init, product.train.steps) == (0, "uniform", 15)
    run(product, tmp_path / "product", plots=False)  # the layers-0 run, trained on its own
    state = read_checkpoint(tmp_path / "product")
    trained = build_run(product)
    trained.model.load_state_dict(state["model"])
    q_product = trained.model.probs().detach()

    built = build_run(warm)
    spent = warm_start(built)
    q_warm = built.model.probs().detach()
    torch.testing.assert_close(q_warm, q_product, rtol=0, atol=1e-13)
    oracle = torch.as_tensor(qiskit_probs(built.circuit, built.model.theta.detach()))
    torch.testing.assert_close(q_warm, oracle, rtol=0, atol=1e-12)
    assert not torch.allclose(q_product, torch.full_like(q_product, 1 / 64))  # it did train
    assert spent == 15 * 2**6  # exact ELBO with backprop: one enumeration per step


def test_warm_start_run_counts_both_phases(tmp_path):
    config = _config("objective=mle", "layers=1", "init=warm", "warm_steps=7", "steps=4")
    summary = run(config, tmp_path / "warm", plots=False)
    assert summary["evaluations"] == (7 + 4) * 2**6


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["init=warm", "layers=0"], ["layers 0", "layers >= 1"]),
        (["init=warm", "entangler=cnot"], ["'cnot'", "'cz'"]),
        (["warm_steps=5"], ["warm_steps = 5", 'init = "warm"']),
        (["init=warm", "warm_steps=0"], ["warm_steps", "0"]),
    ],
)
def test_warm_start_misconfigurations_are_one_line_errors(overrides, words):
    with pytest.raises(ConfigError) as error:
        _config(*overrides)
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


# --- L-BFGS -------------------------------------------------------------------------------------


def test_lbfgs_reaches_the_brute_force_optimum_on_teacher_tiny(tmp_path):
    task = get_task("teacher-tiny")
    costs = _brute_force_costs(task)
    c_star = float(costs.min())
    config = _config("objective=mle", "layers=1", "optimizer=lbfgs", "lr=1", "steps=10")
    summary = run(config, tmp_path / "lbfgs", plots=False)
    assert summary["mode_index"] in torch.nonzero(costs <= c_star + 1e-12).flatten().tolist()
    # E_q[C] ≥ C*; MLE's minimum is a point mass on an optimum, so the gap closes to float noise
    # (L-BFGS stops at gradient 1e-6 on a loss N·E_q[C] with N = 200).
    assert c_star - 1e-12 <= summary["expected_cost"] <= c_star + 1e-6
    assert summary["optimum_value"] == pytest.approx(c_star, abs=1e-12)


# --- evaluations --------------------------------------------------------------------------------


def test_evaluations_of_exact_adam_runs_are_steps_times_two_to_the_n(tmp_path):
    summary = run(_config("objective=selbo", "layers=1", "steps=9"), tmp_path / "a", plots=False)
    assert summary["evaluations"] == 9 * 2**6
    assert summary["example_evaluations"] == 9 * 2**6 * 200


def test_evaluations_of_sampled_runs_are_shots_of_every_shifted_circuit(tmp_path):
    config = _config(
        "objective=mle", "layers=1", "steps=3", "backend=sampled", "shots=50",
        "estimator=parameter-shift",
    )  # fmt: skip
    summary = run(config, tmp_path / "s", plots=False)
    params = 2 * 6  # (layers + 1) · n rotations, each shifted ±π/2, plus the unshifted circuit
    assert summary["evaluations"] == 3 * (2 * params + 1) * 50


def test_evaluations_of_lbfgs_count_every_function_evaluation():
    config = _config("objective=mle", "layers=1", "optimizer=lbfgs", "lr=1", "steps=2")
    built = build_run(config)
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(built.objective, name)

        def __call__(self, model, **kwargs):
            calls.append(1)
            return built.objective(model, **kwargs)

    result = fit(built.model, Counting(), config.train, checkpoint_seconds=None)
    assert len(calls) > 2  # L-BFGS evaluates several times per step
    spent = training_evaluations(result.history[-1], 6, exact=True)
    assert spent == len(calls) * 2**6


def test_summary_has_evaluations_written_to_disk(tmp_path):
    run(_config("objective=mle", "layers=0", "steps=3"), tmp_path / "r", plots=False)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["evaluations"] == 3 * 2**6


# --- restarts -----------------------------------------------------------------------------------


def test_restarts_keep_the_lowest_final_loss_and_count_every_candidate(tmp_path):
    plain = _config("objective=mle", "layers=1", "steps=12", "lr=0.1")
    single = run(plain, tmp_path / "plain", plots=False)
    config = apply_overrides(plain, ["restarts=3"])
    summary = run(config, tmp_path / "restarts", plots=False)
    losses = summary["restart_losses"]
    assert len(losses) == 3 and len(set(losses)) == 3  # three different starts
    assert losses[0] == pytest.approx(single["final_loss"], rel=1e-12)  # candidate 0 = plain run
    assert summary["restart_chosen"] == losses.index(min(losses))
    # the run directory holds the chosen candidate trained again: it ends at the same loss
    assert summary["final_loss"] == pytest.approx(min(losses), rel=1e-10)
    assert summary["final_loss"] <= single["final_loss"]
    assert summary["evaluations"] == 3 * 12 * 2**6  # k candidates, exact Adam: steps · 2^n each
    history = (tmp_path / "restarts" / "history.jsonl").read_text().splitlines()
    assert len(history) == 12


def test_restarts_with_a_warm_start_are_refused_on_one_line():
    with pytest.raises(ConfigError) as error:
        _config("init=warm", "layers=1", "restarts=2")
    assert "\n" not in str(error.value) and "restarts = 2" in str(error.value)
    with pytest.raises(ConfigError, match="restarts"):
        _config("restarts=0")
