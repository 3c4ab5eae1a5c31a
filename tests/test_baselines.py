"""Baselines against closed forms and brute force on tiny tasks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from qhn.baselines import BaselineConfig, build_task, train_baseline
from qhn.baselines.anneal import anneal_bits
from qhn.baselines.bayesbinn import bayesbinn_step, log_sech2
from qhn.baselines.common import bits_with, hyper_settings, real_logits
from qhn.baselines.search import random_search
from qhn.bits import index_to_bits
from qhn.data import get_task
from qhn.errors import ConfigError


def all_costs(task):
    bits = index_to_bits(torch.arange(2**task.n_bits), task.n_bits)
    return bits, task.cost(bits).to(torch.float64)


class Counting:
    """A cost function that counts the bitstrings it is asked about."""

    def __init__(self, cost):
        self.cost, self.calls = cost, 0

    def __call__(self, bits):
        self.calls += bits.shape[0]
        return self.cost(bits)


# ------------------------------------------------------------------ the differentiable network
@pytest.mark.parametrize(
    "name, options",
    [
        ("teacher-tiny", {}),
        ("teacher", {"hidden": 2}),
        ("qhn-gaussian", {}),
        ("digits01+alphabet", {}),
    ],
)
def test_real_logits_equal_the_binary_network_on_bits(name, options):
    task = get_task(name, **options)
    network = task.network
    generator = torch.Generator().manual_seed(0)
    for setting in hyper_settings(network):
        free = torch.randint(0, 2, (5, len(setting.free)), generator=generator)
        bits = bits_with(setting, free)
        low, high = setting.alphabet
        values = torch.zeros(5, network.n_bits, dtype=torch.float64)
        values[:, list(setting.free)] = low + (high - low) * free.to(torch.float64)
        x = task.x_train[:20]
        expected = network.forward(bits, x)
        torch.testing.assert_close(real_logits(network, values, x, setting.activation), expected)


def test_hyper_settings_cover_every_hyperparameter_assignment():
    network = get_task("digits01+alphabet").network  # two alphabet bits
    settings = hyper_settings(network)
    assert len(settings) == 4
    fixed = {tuple(sorted(s.fixed.items())) for s in settings}
    assert len(fixed) == 4
    assert all(len(s.free) == network.n_bits - 2 for s in settings)


# ------------------------------------------------------------------ BayesBiNN
def test_log_sech2_matches_the_direct_formula_and_stays_finite():
    x = torch.linspace(-15, 15, 61, dtype=torch.float64)
    torch.testing.assert_close(log_sech2(x), -2 * torch.log(torch.cosh(x)))
    assert torch.isfinite(log_sech2(torch.tensor([800.0, -800.0]))).all()


def _average_lambda(tau: float) -> torch.Tensor:
    a = torch.tensor([0.3, -0.2, 0.05], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    lam, trace = torch.zeros(3, dtype=torch.float64), []
    for step in range(3000):
        lam, _ = bayesbinn_step(
            lam,
            0.2,
            lambda w: (w * a).sum(-1),
            weight=1.0,
            tau=tau,
            alpha=0.01,
            samples=8,
            generator=generator,
        )
        if step >= 1000:
            trace.append(lam)
    return torch.stack(trace).mean(0)


def test_bayesbinn_fixed_point_on_a_linear_cost_is_the_closed_form():
    # E_q[a·w] + KL(q‖p) over q(w=+1) = σ(2λ) is minimized at λ = λ0 − a. Per-iterate std is
    # ≤ 0.02 and iterates decorrelate in ~1/α = 100 steps, so the mean of 2000 has SE ≈ 0.005;
    # the relaxation bias at τ = 0.1 is ~0.01. At τ = 1 the bias is ~0.1: the check can fail.
    expected = 0.2 - torch.tensor([0.3, -0.2, 0.05], dtype=torch.float64)
    assert float((_average_lambda(0.1) - expected).abs().max()) < 0.03
    assert float((_average_lambda(1.0) - expected).abs().max()) > 0.06


def test_bayesbinn_reaches_the_enumerated_best_product_distribution_on_6_bits():
    temperature = 40.0  # N/T = 5: a spread posterior, so the optimum is not a point mass
    task = get_task("teacher-tiny", temperature=temperature)
    bits, costs = all_costs(task)
    b = bits.numpy().astype(float)
    c = costs.numpy()
    weight = task.n_train / temperature

    def free_energy(p):
        q = np.prod(np.where(b > 0, p, 1 - p), axis=1)
        kl = np.sum(
            p * np.log(np.maximum(p, 1e-300)) + (1 - p) * np.log(np.maximum(1 - p, 1e-300))
        ) + len(p) * math.log(2)
        return weight * q @ c + kl

    rng = np.random.default_rng(0)
    fits = [
        minimize(lambda z: free_energy(1 / (1 + np.exp(-z))), rng.normal(size=6) * 3)
        for _ in range(20)
    ]
    best = min(fits, key=lambda r: r.fun)
    p_star = 1 / (1 + np.exp(-best.x))
    config = BaselineConfig(
        method="bayesbinn",
        task="teacher-tiny",
        temperature=temperature,
        steps=600,
        mc_samples=8,
        tau=0.1,
        lr=0.01,
    )
    p = train_baseline(config, task).model.p.numpy()
    gap = free_energy(p) - best.fun
    # Measured over 6 seeds: gap 0.008–0.03, max |p − p*| 0.03–0.06 (MC noise at α = 0.01).
    assert -1e-6 < gap < 0.05
    assert np.abs(p - p_star).max() < 0.08
    assert free_energy(np.full(6, 0.5)) - best.fun > 1.0  # the uniform start is far away


# ------------------------------------------------------------------ search methods
@pytest.mark.parametrize("tempering", [False, True])
@pytest.mark.parametrize("name", ["teacher-tiny", "teacher"])
def test_anneal_finds_the_exhaustive_optimum_within_its_exact_budget(name, tempering):
    task = get_task(name)
    _, costs = all_costs(task)
    cost = Counting(task.cost)
    bits, value, evaluations, _ = anneal_bits(
        cost,
        task.n_bits,
        budget=1000,
        replicas=8,
        t_start=0.1,
        t_end=0.001,
        tempering=tempering,
        generator=torch.Generator().manual_seed(1),
    )
    assert cost.calls == evaluations <= 1000
    assert value == pytest.approx(float(costs.min()), abs=1e-12)
    assert float(task.cost(bits[None])[0]) == value


def test_anneal_at_tiny_temperature_is_a_descent():
    task = get_task("teacher")
    lines = []
    anneal_bits(
        task.cost,
        task.n_bits,
        budget=400,
        replicas=1,
        t_start=1e-9,
        t_end=1e-9,
        tempering=False,
        generator=torch.Generator().manual_seed(0),
        record=lines.append,
    )
    current = [line["loss"] for line in lines]
    assert all(b <= a for a, b in itertools.pairwise(current))


def test_random_search_hits_the_optimum_at_the_closed_form_rate():
    task = get_task("teacher-tiny")
    _, costs = all_costs(task)
    optimum = float(costs.min())
    d = int((costs <= optimum + 1e-12).sum())
    budget, runs = 6, 300
    hits = 0
    for seed in range(runs):
        cost = Counting(task.cost)
        _, value = random_search(cost, task.n_bits, budget, torch.Generator().manual_seed(seed))
        assert cost.calls == budget
        hits += value <= optimum + 1e-12
    rate = 1 - (1 - d / 2**task.n_bits) ** budget
    sigma = math.sqrt(rate * (1 - rate) / runs)
    assert abs(hits / runs - rate) < 4 * sigma


@pytest.mark.parametrize("method", ["anneal", "random"])
def test_searches_reading_the_landscape_find_what_the_network_finds(method, tmp_path):
    """The landscape lookup is the network's cost (brute force over every bitstring), so a
    search with the same seed and budget ends at a network of the same cost and spends the
    same evaluations."""
    from qhn.landscape import compute_landscape

    task = get_task("teacher")
    _, costs = all_costs(task)
    landscape = compute_landscape(task, cache_dir=tmp_path)
    assert torch.allclose(landscape.train_costs, costs, rtol=0, atol=1e-13)
    config = BaselineConfig(method=method, task="teacher", seed=3, budget=300)
    plain = train_baseline(config, task)
    looked_up = train_baseline(config, task, landscape=landscape)
    assert looked_up.evaluations == plain.evaluations <= 300
    assert looked_up.extra["mode_cost"] == pytest.approx(plain.extra["mode_cost"], abs=1e-12)
    chosen = float(task.cost(looked_up.model.bits[None])[0])
    assert chosen == pytest.approx(looked_up.extra["mode_cost"], abs=1e-12)


def test_exhaustive_is_the_brute_force_argmin(tmp_path):
    task = get_task("teacher")
    _, costs = all_costs(task)
    config = BaselineConfig(method="exhaustive", task="teacher")
    result = train_baseline(config, task, cache_dir=tmp_path)
    assert result.evaluations == 2**task.n_bits
    assert float(task.cost(result.model.bits[None])[0]) == pytest.approx(float(costs.min()))


def test_exhaustive_refuses_more_than_22_bits():
    config = BaselineConfig(method="exhaustive", task="teacher", task_options={"n_inputs": 22})
    with pytest.raises(ConfigError, match="stops at 22 bits"):
        train_baseline(config, build_task(config))


# ------------------------------------------------------------------ gradient methods
def test_ste_finds_the_teacher_optimum():
    config = BaselineConfig(method="ste", task="teacher", steps=200)
    task = build_task(config)
    _, costs = all_costs(task)
    result = train_baseline(config, task)
    assert result.evaluations == 200
    assert float(task.cost(result.model.bits[None])[0]) == pytest.approx(float(costs.min()))


def test_float_logistic_regression_reaches_the_convex_optimum():
    # Label noise makes the data non-separable, so the logistic loss has a finite minimizer.
    config = BaselineConfig(
        method="float", task="teacher-tiny", task_options={"label_noise": 0.2}, steps=600, lr=0.1
    )
    task = build_task(config)
    x, y = task.x_train.numpy(), task.y_train.numpy()

    def loss(theta):
        z = x @ theta[:-1] + theta[-1]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    reference = minimize(loss, np.zeros(x.shape[1] + 1), method="BFGS").fun
    result = train_baseline(config, task)
    assert result.extra["mode_cost"] == pytest.approx(reference, abs=1e-4)
    _, costs = all_costs(task)
    assert reference < float(costs.min())  # real weights beat every binary network here


@pytest.mark.parametrize("method", ["ste", "bayesbinn", "float"])
def test_hyperparameter_bits_are_trained_per_setting_and_reported_as_bits(method):
    config = BaselineConfig(method=method, task="qhn-gaussian", steps=5, mc_samples=2)
    task = build_task(config)
    result = train_baseline(config, task)
    per_step = {"ste": 1, "bayesbinn": 2, "float": 1}[method]
    # Two settings of the activation bit, plus one cost of the kept network per setting.
    assert result.evaluations == 2 * 5 * per_step + (0 if method == "ste" else 2)
    if method == "float":
        assert result.model.activation in ("relu", "sigmoid")
        return
    mode = result.model.bits if method == "ste" else result.model.mode()
    assert float(task.cost(mode[None])[0]) == pytest.approx(result.extra["mode_cost"])
    if method == "bayesbinn":
        activation = task.network.bit_layout.activation
        assert float(result.model.p[activation]) in (0.0, 1.0)


@pytest.mark.parametrize("method", ["bayesbinn", "ste", "anneal", "random", "float"])
def test_the_same_seed_gives_the_same_result(method):
    config = BaselineConfig(method=method, task="teacher", steps=20, budget=40, mc_samples=2)
    task = build_task(config)
    first, again = train_baseline(config, task), train_baseline(config, task)
    assert first.evaluations == again.evaluations
    assert first.extra["mode_cost"] == again.extra["mode_cost"]
    if method == "bayesbinn":
        torch.testing.assert_close(first.model.p, again.model.p, rtol=0, atol=0)


def test_product_model_probabilities_samples_and_kl_against_enumeration():
    from qhn.baselines.common import ProductModel

    p = torch.tensor([0.1, 0.5, 0.93, 0.0, 0.7], dtype=torch.float64)
    model = ProductModel(p)
    bits = index_to_bits(torch.arange(32), 5)
    q = torch.where(bits > 0, p, 1 - p).prod(-1)
    torch.testing.assert_close(model.probs(), q)
    prior = torch.where(bits > 0, 0.3, 0.7).prod(-1)
    kl = float((torch.xlogy(q, q) - q * torch.log(prior)).sum())
    assert model.kl_to(0.3) == pytest.approx(kl)
    shots = 20000
    draws = model.sample(shots, torch.Generator().manual_seed(0)).to(torch.float64)
    sigma = torch.sqrt(p * (1 - p) / shots)
    assert bool(((draws.mean(0) - p).abs() <= 4 * sigma + 1e-12).all())
    assert model.mode().tolist() == [0, 1, 1, 0, 1]
