"""The scaled-trajectory estimator and ``qhn noise-study``.

Oracles: Qiskit Aer's exact density matrix under ``depolarizing_error(4/3·p1, 1)`` and
``(16/15·p2, 2)`` (the reference noise model, METHOD.md §8); Qiskit's noiseless statevector;
brute-force sums over every flip or error pattern of tiny cases (closed forms); the stored final
losses of the reference parameter files.
"""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2
from typer.testing import CliRunner

from oracles import qiskit_probs
from qhn.backends.noisy import NoiseModel
from qhn.backends.scaled_trajectories import (
    REFERENCE_P1,
    REFERENCE_P2,
    ScaledEstimator,
    _draw_conditioned,
    flip_smoothed,
    parse_layered,
    scale_weights,
)
from qhn.circuits.ansatz import hardware_efficient, qhn_reference
from qhn.cli import app
from qhn.errors import ConfigError
from qhn.noise_study import RUNS_COLUMNS, SUMMARY_COLUMNS
from test_noisy_backend import aer_density_matrix

# Large scales so the noise is visible on a few qubits: x = 60 gives p1 = 0.06, p2 = 0.225.
SCALES = [0.0, 7.0, 25.0, 60.0]
CASES = [(4, 1), (5, 2), (7, 2)]


def observables(probs: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Like the MNIST study: a random cost that is zero on the two likeliest noiseless bitstrings,
    and the indicator of those two (so noise visibly raises the cost and drains the mass).
    Shapes: ``probs (2**n,)`` → ``(2**n, 2)``."""
    near = torch.zeros(len(probs), dtype=torch.float64)
    near[np.argsort(probs)[-2:]] = 1
    cost = torch.from_numpy(rng.uniform(1, 3, len(probs))) * (1 - near)
    return torch.stack([cost, near], 1)


@pytest.mark.parametrize(("n", "layers"), CASES)
def test_every_scale_from_one_trajectory_set_matches_aer(n, layers):
    rng = np.random.default_rng(10 * n + layers)
    circuit = qhn_reference(n, layers)
    theta = torch.from_numpy(rng.uniform(0, 2 * math.pi, circuit.n_params))
    probs = qiskit_probs(circuit, theta)
    obs = observables(probs, rng)
    estimator = ScaledEstimator(circuit, obs, SCALES)
    est = estimator.estimate(theta, 3000, torch.Generator().manual_seed(n))
    noiseless = torch.from_numpy(probs) @ obs
    for i, x in enumerate(SCALES):
        noise = NoiseModel(p1=REFERENCE_P1, p2=REFERENCE_P2, scale=x)
        rho = aer_density_matrix(circuit, theta, noise)
        exact = torch.from_numpy(np.real(np.diag(rho)).copy()) @ obs
        if x == 0:
            assert torch.equal(est.mean[i], est.noiseless)
            assert torch.equal(est.se[i], torch.zeros(2, dtype=torch.float64))
            torch.testing.assert_close(est.noiseless, noiseless, atol=1e-12, rtol=0)
            continue
        # Unbiased with the reported standard error: 2 observables × 3 scales × 3 cases = 18
        # z-scores, so |z| < 4 fails by chance with probability < 18 · 6.3e-5 ≈ 1e-3.
        z = (est.mean[i] - exact) / est.se[i]
        assert z.abs().max() < 4, f"x = {x}: z = {z.tolist()}"
        if x == SCALES[-1]:
            # The noise must be resolved, or the z-test above could not fail.
            assert ((exact - noiseless).abs() > 8 * est.se[i]).all(), (exact, noiseless, est.se)


def test_standard_error_is_the_spread_over_seeds():
    """The reported SE matches the observed spread of independent estimates (chi-square on the
    variance ratio: 40 seeds, Σ z² ~ χ²₄₀ when the SE is right)."""
    n, layers = 4, 2
    rng = np.random.default_rng(3)
    circuit = qhn_reference(n, layers)
    theta = torch.from_numpy(rng.uniform(0, 2 * math.pi, circuit.n_params))
    obs = observables(qiskit_probs(circuit, theta), rng)[:, :1]
    noise = NoiseModel(p1=REFERENCE_P1, p2=REFERENCE_P2, scale=30.0)
    exact = torch.from_numpy(np.real(np.diag(aer_density_matrix(circuit, theta, noise))).copy())
    exact = float(exact @ obs[:, 0])
    estimator = ScaledEstimator(circuit, obs, [30.0, 60.0])
    z2 = []
    for seed in range(40):
        est = estimator.estimate(theta, 200, torch.Generator().manual_seed(seed))
        z2.append(float((est.mean[0, 0] - exact) / est.se[0, 0]) ** 2)
    total = sum(z2)
    assert chi2.ppf(0.0005, 40) < total < chi2.ppf(0.9995, 40), total


def test_conditioned_patterns_follow_the_closed_form():
    """Hit patterns of ``qhn_reference(2, 1)`` (5 sampled locations) against
    ``Q(S) = P(S)/(1 − P(∅))``, by chi-square over all 31 non-empty patterns."""
    layered = parse_layered(qhn_reference(2, 1))
    p1, p2 = 0.15, 0.3
    count = 40_000
    one, two, first_layer = _draw_conditioned(
        layered, p1, p2, count, torch.Generator().manual_seed(0)
    )
    hits = torch.cat([(one[:, :, 0] > 0).reshape(count, -1), two > 0], 1).long()
    assert hits.shape[1] == 5 and (hits.sum(1) > 0).all()
    rates = torch.tensor([p1] * 4 + [p2], dtype=torch.float64)
    codes = hits @ (2 ** torch.arange(5))
    observed = torch.bincount(codes, minlength=32)[1:].double()
    patterns = torch.tensor(list(itertools.product([0, 1], repeat=5))).flip(1)
    prob = torch.where(patterns.bool(), rates, 1 - rates).prod(1)
    order = patterns @ (2 ** torch.arange(5))
    expected = torch.zeros(32, dtype=torch.float64)
    expected[order] = prob
    expected = expected[1:] / expected[1:].sum() * count
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert statistic < chi2.ppf(0.999, 30), statistic
    # Pauli codes are uniform over the non-identity ones.
    one_codes = one[one > 0]
    assert set(one_codes.unique().tolist()) == {1, 2, 3}
    assert set(two[two > 0].unique().tolist()) == set(range(1, 16))
    # The first erroneous sub-layer: RYs/RZs of sub-layer 0, the CNOT of sub-layer 1.
    assert torch.equal(first_layer, torch.where(hits[:, :4].any(1), 0, 1))


def test_weights_are_likelihood_ratios():
    """``w_x(S) = P_x(S)/Q(S)`` by brute force over the 31 patterns of ``qhn_reference(2, 1)``,
    and ``Σ_S Q(S)·w_x(S) = 1 − P_x(∅)``."""
    layered = parse_layered(qhn_reference(2, 1))
    p1, p2, top = 0.02, 0.05, 4.0
    scales = torch.tensor([0.0, 0.5, 2.0, top], dtype=torch.float64)
    patterns = torch.tensor(list(itertools.product([0, 1], repeat=5)))[1:].double()
    k1, k2 = patterns[:, :4].sum(1), patterns[:, 4]
    w = scale_weights(layered, scales, k1, k2, p1, p2)

    def prob(x: float) -> torch.Tensor:
        rates = torch.tensor([x * p1] * 4 + [x * p2], dtype=torch.float64)
        return torch.where(patterns.bool(), rates, 1 - rates).prod(1)

    q = prob(top) / prob(top).sum()
    for i, x in enumerate(scales.tolist()):
        torch.testing.assert_close(w[i], prob(x) / q, rtol=1e-12, atol=0)
        clean = (1 - x * p1) ** 4 * (1 - x * p2)
        assert float((q * w[i]).sum()) == pytest.approx(1 - clean, rel=1e-12, abs=1e-15)


def test_flip_smoothing_is_the_brute_force_average():
    n = 4
    rng = np.random.default_rng(1)
    f = torch.from_numpy(rng.normal(size=(2**n, 2)))
    rates = [0.0, 0.1, 0.35]
    smoothed = flip_smoothed(f, rates)
    for r_index, r in enumerate(rates):
        expected = torch.zeros_like(f)
        for flips in range(2**n):
            weight = r ** bin(flips).count("1") * (1 - r) ** (n - bin(flips).count("1"))
            expected += weight * f[torch.arange(2**n) ^ flips]
        torch.testing.assert_close(smoothed[:, 2 * r_index : 2 * r_index + 2], expected)
    assert torch.equal(smoothed[:, :2], f)


def test_other_circuit_shapes_and_bad_scales_are_refused():
    with pytest.raises(ConfigError, match="sub-layers"):
        parse_layered(hardware_efficient(3, 1))
    obs = torch.ones((2**3, 1), dtype=torch.float64)
    with pytest.raises(ConfigError, match="scale"):
        ScaledEstimator(qhn_reference(3, 1), obs, [0.0, -1.0])
    with pytest.raises(ConfigError, match=">= 1"):
        ScaledEstimator(qhn_reference(3, 1), obs, [300.0])
    with pytest.raises(ConfigError, match="observables"):
        ScaledEstimator(qhn_reference(3, 1), obs[:4], [1.0])


# ------------------------------------------------------------------------------------- CLI
def small_params(mnist01_dir, tmp_path, rows: int = 2):
    params = tmp_path / "params"
    params.mkdir()
    lines = (mnist01_dir / "params" / "run1.txt").read_text().splitlines()[:rows]
    (params / "run1.txt").write_text("\n".join(lines) + "\n")
    return params


def test_cli_writes_runs_summary_and_figure(mnist01_dir, tmp_path):
    params = small_params(mnist01_dir, tmp_path)
    out = tmp_path / "out"
    args = ["noise-study", "--params", str(params), "--costs", str(mnist01_dir / "Cop_4x4.txt")]
    args += ["--out", str(out), "--files", "run1.txt", "--scales", "0,0.2,2"]
    args += ["--trajectories", "4", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with open(out / "runs.csv", newline="") as handle:
        runs = list(csv.DictReader(handle))
    assert tuple(runs[0]) == RUNS_COLUMNS
    assert len(runs) == 2 * 3
    stored = np.loadtxt(params / "run1.txt", ndmin=2)[:, -1]
    for line in runs:
        if float(line["x"]) == 0:
            # The noiseless value reproduces the loss PastaQ stored for the same angles.
            assert float(line["expected_cost"]) == pytest.approx(stored[int(line["row"])], abs=1e-9)
            assert float(line["expected_cost_se"]) == 0
        else:
            assert float(line["expected_cost_se"]) > 0
        assert 0 <= float(line["mass_near_optimal"]) <= 1
    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert tuple(summary[0]) == SUMMARY_COLUMNS and [s["x"] for s in summary] == [
        "0.0",
        "0.2",
        "2.0",
    ]
    assert (out / "noise_study.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing-dir", "directory not found"),
        ("bad-scale", "is not a number"),
        ("negative-scale", ">= 0"),
        ("huge-scale", ">= 1"),
        ("short-row", "10 values"),
        ("missing-file", "not found in"),
        ("bad-trajectories", "--trajectories"),
    ],
)
def test_cli_bad_inputs_are_one_line(mnist01_dir, tmp_path, case, expect):
    params = small_params(mnist01_dir, tmp_path, rows=1)
    args = ["noise-study", "--params", str(params), "--costs", str(mnist01_dir / "Cop_4x4.txt")]
    args += ["--out", str(tmp_path / "out"), "--files", "run1.txt", "--trajectories", "4"]
    if case == "missing-dir":
        args[2] = str(tmp_path / "nowhere")
    elif case == "bad-scale":
        args += ["--scales", "0,abc"]
    elif case == "negative-scale":
        args += ["--scales", "0,-0.2"]
    elif case == "huge-scale":
        args += ["--scales", "0,400"]
    elif case == "short-row":
        (params / "run1.txt").write_text(" ".join(["0.1"] * 10) + "\n")
    elif case == "missing-file":
        args += ["--files", "run99.txt"]
    elif case == "bad-trajectories":
        args += ["--trajectories", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expect in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
