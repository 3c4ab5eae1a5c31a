"""The Hamming kernel and MMD estimators against brute-force sums written here with numpy."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from qhn.errors import ConfigError, MemoryBudgetError
from qhn.inference.kernels import HammingKernel, hamming_distances
from qhn.inference.priors import BernoulliPrior

BANDWIDTHS = (0.5, 1.0, 2.0, 4.0)


def every_bitstring(n: int) -> np.ndarray:
    """All bitstrings in basis-index order, qubit 0 the most significant bit (METHOD.md §1)."""
    return (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1


def brute_gram(a: np.ndarray, b: np.ndarray, bandwidths=BANDWIDTHS) -> np.ndarray:
    h = (a[:, None, :] != b[None, :, :]).sum(-1)
    return np.mean([np.exp(-h / (2 * s)) for s in bandwidths], axis=0)


def brute_mmd2(q: np.ndarray, p: np.ndarray, bandwidths=BANDWIDTHS) -> float:
    """``Σ_s Σ_t (q − p)(s) k(s, t) (q − p)(t)``: the double sum over all pairs of bitstrings."""
    n = int(math.log2(len(q)))
    bits = every_bitstring(n)
    d = q - p
    total = 0.0
    for i in range(len(q)):
        for j in range(len(q)):
            h = int(np.sum(bits[i] != bits[j]))
            k = np.mean([math.exp(-h / (2 * s)) for s in bandwidths])
            total += d[i] * k * d[j]
    return total


def brute_probs(pi: np.ndarray) -> np.ndarray:
    bits = every_bitstring(len(pi))
    return np.prod(np.where(bits == 1, pi, 1 - pi), axis=1)


def draw(rng: np.random.Generator, probs: np.ndarray, count: int) -> np.ndarray:
    n = int(math.log2(len(probs)))
    return every_bitstring(n)[rng.choice(len(probs), size=count, p=probs)]


# ---- the kernel itself ------------------------------------------------------------------------


@pytest.mark.parametrize("bandwidths", [BANDWIDTHS, (0.3,), (7.0, 0.25)])
def test_gram_matches_brute_force_and_lies_in_unit_interval(bandwidths):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, size=(9, 6))
    b = rng.integers(0, 2, size=(5, 6))
    kernel = HammingKernel(bandwidths)
    gram = kernel.gram(torch.tensor(a, dtype=torch.uint8), torch.tensor(b, dtype=torch.uint8))
    assert gram.shape == (9, 5) and gram.dtype == torch.float64
    np.testing.assert_allclose(gram.numpy(), brute_gram(a, b, bandwidths), rtol=1e-14)
    assert bool((gram > 0).all()) and bool((gram <= 1).all())
    self_gram = kernel.gram(torch.tensor(a), torch.tensor(a))
    np.testing.assert_array_equal(torch.diagonal(self_gram).numpy(), np.ones(9))


def test_kernel_stays_positive_at_the_largest_distance():
    n = 62
    zeros, ones = torch.zeros(1, n, dtype=torch.uint8), torch.ones(1, n, dtype=torch.uint8)
    value = float(HammingKernel().gram(zeros, ones))
    assert value == pytest.approx(np.mean([math.exp(-n / (2 * s)) for s in BANDWIDTHS]))
    assert 0 < value < 1


def test_hamming_distances_and_bit_dtypes():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 2, size=(4, 7)), rng.integers(0, 2, size=(3, 7))
    expected = (a[:, None, :] != b[None, :, :]).sum(-1)
    for dtype in (torch.uint8, torch.bool, torch.int64, torch.float32):
        got = hamming_distances(torch.tensor(a).to(dtype), torch.tensor(b).to(dtype))
        np.testing.assert_array_equal(got.numpy(), expected)


# ---- exact MMD² ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_mmd2_exact_matches_brute_force_double_sum(n):
    rng = np.random.default_rng(10 + n)
    q, p = rng.dirichlet(np.ones(2**n)), rng.dirichlet(np.full(2**n, 0.3))
    got = HammingKernel().mmd2_exact(torch.tensor(q), torch.tensor(p))
    assert got.shape == () and got.dtype == torch.float64
    assert abs(float(got) - brute_mmd2(q, p)) < 1e-12


def test_mmd2_exact_other_bandwidths_and_batches():
    rng = np.random.default_rng(20)
    n, bandwidths = 4, (0.2, 3.0, 10.0)
    qs = rng.dirichlet(np.ones(2**n), size=3)
    p = rng.dirichlet(np.ones(2**n))
    got = HammingKernel(bandwidths).mmd2_exact(torch.tensor(qs), torch.tensor(p))
    assert got.shape == (3,)
    for row in range(3):
        assert abs(float(got[row]) - brute_mmd2(qs[row], p, bandwidths)) < 1e-12


def test_mmd2_exact_of_point_masses_is_two_minus_two_k():
    n = 5
    bits = every_bitstring(n)
    q, p = np.zeros(2**n), np.zeros(2**n)
    q[6], p[27] = 1.0, 1.0
    h = int(np.sum(bits[6] != bits[27]))
    k = np.mean([math.exp(-h / (2 * s)) for s in BANDWIDTHS])
    got = float(HammingKernel().mmd2_exact(torch.tensor(q), torch.tensor(p)))
    assert got == pytest.approx(2 - 2 * k, abs=1e-13)


def test_mmd2_exact_gradient_is_two_k_times_difference():
    rng = np.random.default_rng(21)
    n = 4
    q_np, p_np = rng.dirichlet(np.ones(2**n)), rng.dirichlet(np.ones(2**n))
    q = torch.tensor(q_np, requires_grad=True)
    HammingKernel().mmd2_exact(q, torch.tensor(p_np)).backward()
    bits = every_bitstring(n)
    expected = 2 * brute_gram(bits, bits) @ (q_np - p_np)
    np.testing.assert_allclose(q.grad.numpy(), expected, atol=1e-12)


def test_mmd2_exact_is_zero_on_equal_and_nonnegative_otherwise():
    rng = np.random.default_rng(22)
    kernel = HammingKernel()
    for n in (2, 5, 9):
        for concentration in (0.05, 1.0, 50.0):
            q = torch.tensor(rng.dirichlet(np.full(2**n, concentration)))
            p = torch.tensor(rng.dirichlet(np.full(2**n, concentration)))
            assert abs(float(kernel.mmd2_exact(q, q))) < 1e-15
            value = float(kernel.mmd2_exact(q, p))
            assert 0 <= value <= 2


def test_mmd2_exact_refuses_before_allocating():
    kernel = HammingKernel()
    q = torch.full((2**10,), 2.0**-10, dtype=torch.float64)
    with pytest.raises(MemoryBudgetError, match="10 bits"):
        kernel.mmd2_exact(q, q, max_bytes=10_000)
    with pytest.raises(ConfigError, match="power-of-two"):
        kernel.mmd2_exact(torch.ones(6) / 6, torch.ones(6) / 6)
    with pytest.raises(ConfigError, match="length 8 but p has length 4"):
        kernel.mmd2_exact(torch.ones(8) / 8, torch.ones(4) / 4)


# ---- sample estimators --------------------------------------------------------------------------


def brute_u_statistic(x: np.ndarray, y: np.ndarray) -> float:
    kxx, kyy, kxy = brute_gram(x, x), brute_gram(y, y), brute_gram(x, y)
    s, t = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (s * (s - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (t * (t - 1))
    return within_x + within_y - 2 * kxy.mean()


def test_estimators_on_one_sample_match_brute_force_with_repeated_rows():
    rng = np.random.default_rng(30)
    x = rng.integers(0, 2, size=(40, 3))  # 3 bits: many repeated rows
    y = rng.integers(0, 2, size=(25, 3))
    kernel = HammingKernel()
    u = float(kernel.mmd2_unbiased(torch.tensor(x), torch.tensor(y)))
    assert u == pytest.approx(brute_u_statistic(x, y), abs=1e-13)
    v = float(kernel.mmd2_biased(torch.tensor(x), torch.tensor(y)))
    expected_v = brute_gram(x, x).mean() + brute_gram(y, y).mean() - 2 * brute_gram(x, y).mean()
    assert v == pytest.approx(expected_v, abs=1e-13)
    assert float(kernel.mmd2_biased(torch.tensor(x), torch.tensor(x))) == pytest.approx(
        0.0, abs=1e-15
    )


def test_small_blocks_give_the_same_answers():
    rng = np.random.default_rng(31)
    x = torch.tensor(rng.integers(0, 2, size=(60, 8)), dtype=torch.uint8)
    y = torch.tensor(rng.integers(0, 2, size=(45, 8)), dtype=torch.uint8)
    prior = BernoulliPrior(rng.uniform(0.1, 0.9, size=8))
    big, small = HammingKernel(), HammingKernel(block_elements=7)
    for name in ("mmd2_unbiased", "mmd2_biased"):
        a, b = getattr(big, name)(x, y), getattr(small, name)(x, y)
        assert float(a) == pytest.approx(float(b), abs=1e-13)
    assert float(big.mmd2_vs_prior(x, prior)) == pytest.approx(
        float(small.mmd2_vs_prior(x, prior)), abs=1e-13
    )
    np.testing.assert_allclose(
        big.witness(y, x, prior).numpy(), small.witness(y, x, prior).numpy(), atol=1e-14
    )


@pytest.mark.parametrize(("n", "same"), [(3, False), (4, False), (3, True)])
def test_unbiased_estimator_is_unbiased_and_biased_one_has_the_predicted_bias(n, same):
    rng = np.random.default_rng(40 + n + 7 * same)
    q = rng.dirichlet(np.ones(2**n))
    p = q if same else rng.dirichlet(np.ones(2**n))
    exact = brute_mmd2(q, p)
    bits = every_bitstring(n)
    gram = brute_gram(bits, bits)
    # V-statistic bias: (1/S)(1 − E_q k(s, s')) + (1/T)(1 − E_p k(t, t')), with k(s, s) = 1
    s, t = 4, 6
    bias = (1 - q @ gram @ q) / s + (1 - p @ gram @ p) / t
    kernel = HammingKernel()
    reps = 2000
    unbiased, biased = np.empty(reps), np.empty(reps)
    for r in range(reps):
        x, y = torch.tensor(draw(rng, q, s)), torch.tensor(draw(rng, p, t))
        unbiased[r] = float(kernel.mmd2_unbiased(x, y))
        biased[r] = float(kernel.mmd2_biased(x, y))
    se_u = unbiased.std(ddof=1) / math.sqrt(reps)
    se_b = biased.std(ddof=1) / math.sqrt(reps)
    assert abs(unbiased.mean() - exact) < 4 * se_u
    assert abs(biased.mean() - (exact + bias)) < 4 * se_b
    assert biased.mean() - exact > 4 * se_b  # the bias is measurable at this sample size


def test_mmd2_vs_prior_is_unbiased_with_and_without_the_closed_form():
    n = 4
    rng = np.random.default_rng(50)
    pi = np.array([0.2, 0.5, 0.7, 0.9])
    prior = BernoulliPrior(pi)
    q = rng.dirichlet(np.ones(2**n))
    exact = brute_mmd2(q, brute_probs(pi))
    kernel = HammingKernel()
    generator = torch.Generator().manual_seed(51)
    reps = 1500
    analytic, sampled = np.empty(reps), np.empty(reps)
    for r in range(reps):
        x = torch.tensor(draw(rng, q, 5))
        analytic[r] = float(kernel.mmd2_vs_prior(x, prior))
        sampled[r] = float(
            kernel.mmd2_vs_prior(x, prior, analytic_prior=False, generator=generator)
        )
    for values in (analytic, sampled):
        assert abs(values.mean() - exact) < 4 * values.std(ddof=1) / math.sqrt(reps)
    # the closed form removes the prior-sampling noise
    assert analytic.var() < sampled.var()


def test_mmd2_vs_prior_biased_matches_the_v_statistic_against_the_exact_prior():
    n = 3
    rng = np.random.default_rng(52)
    pi = np.array([0.35, 0.6, 0.8])
    p = brute_probs(pi)
    x = draw(rng, rng.dirichlet(np.ones(2**n)), 30)
    bits = every_bitstring(n)
    expected = (
        brute_gram(x, x).mean()
        - 2 * (brute_gram(x, bits) @ p).mean()
        + p @ brute_gram(bits, bits) @ p
    )
    got = HammingKernel().mmd2_vs_prior(torch.tensor(x), BernoulliPrior(pi), unbiased=False)
    assert float(got) == pytest.approx(expected, abs=1e-13)


# ---- closed-form prior expectations ------------------------------------------------------------


@pytest.mark.parametrize("pi", [[0.5] * 5, [0.1, 0.45, 0.8, 0.95, 0.3]])
def test_prior_expectations_match_monte_carlo_and_enumeration(pi):
    pi = np.array(pi)
    n = len(pi)
    prior = BernoulliPrior(pi)
    kernel = HammingKernel()
    rng = np.random.default_rng(60)
    draws = 20_000
    t = (rng.random((draws, n)) < pi).astype(np.int64)
    t_other = (rng.random((draws, n)) < pi).astype(np.int64)
    s = rng.integers(0, 2, size=(6, n))
    got = kernel.expected_kernel_vs_prior(torch.tensor(s), prior).numpy()
    samples = brute_gram(s, t)  # (6, draws)
    se = samples.std(axis=1, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(got - samples.mean(axis=1)) < 4 * se)
    bits, p = every_bitstring(n), brute_probs(pi)
    np.testing.assert_allclose(got, brute_gram(s, bits) @ p, atol=1e-14)

    got_pp = float(kernel.expected_kernel_prior_prior(prior))
    pairs = np.mean([np.exp(-(t != t_other).sum(1) / (2 * sd)) for sd in BANDWIDTHS], axis=0)
    assert abs(got_pp - pairs.mean()) < 4 * pairs.std(ddof=1) / math.sqrt(draws)
    assert got_pp == pytest.approx(p @ brute_gram(bits, bits) @ p, abs=1e-14)


def test_uniform_prior_expectation_is_the_same_constant_for_every_bitstring():
    n = 6
    bits = every_bitstring(n)
    got = HammingKernel().expected_kernel_vs_prior(torch.tensor(bits), BernoulliPrior.uniform(n))
    assert got.shape == (2**n,)
    assert float(got.max() - got.min()) < 1e-15
    assert float(got[0]) == pytest.approx(brute_gram(bits[:1], bits).mean(), abs=1e-14)


def test_expected_kernel_keeps_leading_shape():
    prior = BernoulliPrior([0.3, 0.6, 0.5])
    s = torch.randint(0, 2, (2, 4, 3), generator=torch.Generator().manual_seed(0))
    got = HammingKernel().expected_kernel_vs_prior(s, prior)
    assert got.shape == (2, 4)
    flat = HammingKernel().expected_kernel_vs_prior(s.reshape(8, 3), prior)
    assert torch.equal(got.reshape(8), flat)


# ---- witness ------------------------------------------------------------------------------------


def test_witness_matches_brute_force_with_closed_form_and_with_prior_samples():
    n = 5
    rng = np.random.default_rng(70)
    pi = rng.uniform(0.1, 0.9, size=n)
    samples_q = rng.integers(0, 2, size=(33, n))
    samples_p = rng.integers(0, 2, size=(21, n))
    s = rng.integers(0, 2, size=(2, 3, n))
    kernel = HammingKernel()
    flat = s.reshape(6, n)
    on_q = brute_gram(flat, samples_q).mean(1)
    closed = kernel.witness(torch.tensor(s), torch.tensor(samples_q), BernoulliPrior(pi))
    assert closed.shape == (2, 3)
    expected = on_q - brute_gram(flat, every_bitstring(n)) @ brute_probs(pi)
    np.testing.assert_allclose(closed.numpy().reshape(6), expected, atol=1e-14)
    sampled = kernel.witness(
        torch.tensor(s), torch.tensor(samples_q), samples_p=torch.tensor(samples_p)
    )
    expected = on_q - brute_gram(flat, samples_p).mean(1)
    np.testing.assert_allclose(sampled.numpy().reshape(6), expected, atol=1e-14)


def test_witness_is_half_the_gradient_of_the_exact_mmd2():
    # METHOD.md §3: ∇_q MMD²(q, p) = 2 (K q − K p) = 2 w. With a sample holding every bitstring
    # s exactly M·q(s) times, the sample witness is the exact one.
    n = 3
    rng = np.random.default_rng(71)
    counts = rng.integers(1, 9, size=2**n)
    q = counts / counts.sum()
    pi = np.array([0.3, 0.5, 0.85])
    bits = every_bitstring(n)
    samples_q = np.repeat(bits, counts, axis=0)
    kernel = HammingKernel()
    w = kernel.witness(torch.tensor(bits), torch.tensor(samples_q), BernoulliPrior(pi))
    q_t = torch.tensor(q, requires_grad=True)
    kernel.mmd2_exact(q_t, torch.tensor(brute_probs(pi))).backward()
    np.testing.assert_allclose(w.numpy(), q_t.grad.numpy() / 2, atol=1e-13)


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bandwidths", "message"),
    [
        (-1.0, "-1.0"),
        (0, "got 0"),
        ((1.0, -2.0), "-2.0"),
        ((1.0, float("nan")), "nan"),
        (float("inf"), "inf"),
        ((True,), "True"),
        ((), "must not be empty"),
        ("1", "'1'"),
        (None, "None"),
    ],
)
def test_bad_bandwidths_raise(bandwidths, message):
    with pytest.raises(ConfigError, match=message):
        HammingKernel(bandwidths)


def test_bandwidths_accept_numbers_sequences_and_tensors():
    assert HammingKernel(2).bandwidths == (2.0,)
    assert HammingKernel(torch.tensor([1.0, 3.0])).bandwidths == (1.0, 3.0)
    assert HammingKernel(np.array([0.5, 4.0])).bandwidths == (0.5, 4.0)
    with pytest.raises(ConfigError, match="block_elements"):
        HammingKernel(block_elements=0)


def test_bad_sample_inputs_raise():
    kernel = HammingKernel()
    x3 = torch.zeros(5, 3, dtype=torch.uint8)
    x4 = torch.zeros(5, 4, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="x has 3 bits per row but y has 4"):
        kernel.mmd2_unbiased(x3, x4)
    with pytest.raises(ConfigError, match="a has 3 bits per row but b has 4"):
        kernel.gram(x3, x4)
    with pytest.raises(ConfigError, match=r"shape \(S, n\)"):
        kernel.mmd2_biased(torch.zeros(3, dtype=torch.uint8), x3)
    with pytest.raises(ConfigError, match="0 or 1"):
        kernel.mmd2_unbiased(torch.full((4, 3), 2), x3)
    with pytest.raises(ConfigError, match="0 or 1"):
        kernel.gram(torch.full((2, 3), 0.5), x3)
    with pytest.raises(ConfigError, match="at least 2"):
        kernel.mmd2_unbiased(x3[:1], x3)
    with pytest.raises(ConfigError, match="at least 2"):
        kernel.mmd2_vs_prior(x3[:1], BernoulliPrior.uniform(3))


def test_prior_width_mismatches_raise():
    kernel = HammingKernel()
    x3 = torch.zeros(5, 3, dtype=torch.uint8)
    prior4 = BernoulliPrior.uniform(4)
    with pytest.raises(ConfigError, match="prior has 4 bits but s has 3"):
        kernel.expected_kernel_vs_prior(x3, prior4)
    with pytest.raises(ConfigError, match="prior has 4 bits but samples_q has 3"):
        kernel.mmd2_vs_prior(x3, prior4)
    with pytest.raises(ConfigError, match="exactly one"):
        kernel.witness(x3, x3)
    with pytest.raises(ConfigError, match="exactly one"):
        kernel.witness(x3, x3, BernoulliPrior.uniform(3), samples_p=x3)
    with pytest.raises(ConfigError, match="s has 3 bits per row but samples_q has 4"):
        kernel.witness(x3, torch.zeros(2, 4), BernoulliPrior.uniform(3))
    with pytest.raises(ConfigError, match="BernoulliPrior"):
        kernel.expected_kernel_prior_prior([0.5, 0.5])


def test_lower_layer_imports_only_torch_bits_and_errors():
    allowed = {"__future__", "collections.abc", "functools", "math", "numbers", "typing", "torch"}
    allowed |= {"qhn.bits", "qhn.errors", "qhn.inference.entropy"}
    src = Path(__file__).resolve().parents[1] / "src" / "qhn" / "inference"
    for name in ("priors.py", "kernels.py", "entropy.py"):
        tree = ast.parse((src / name).read_text())
        for node in tree.body:  # module level only: a TYPE_CHECKING block is not an import
            if isinstance(node, ast.Import):
                modules = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                modules = {node.module}
            else:
                continue
            assert modules <= allowed, f"{name} imports {modules - allowed}"
