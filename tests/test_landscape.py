"""Landscapes: the reference numbers of METHOD.md §6, brute force on a tiny task, the optimal-set
tolerance, the memory budget and the disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qhn.models.enumerate
from qhn.bits import bits_to_index, index_to_bits, parse_bitstring
from qhn.data import get_task
from qhn.errors import ConfigError, MemoryBudgetError
from qhn.landscape import QUANTILE_LEVELS, cache_path, compute_landscape

CORNERS_4X4 = {0, 3, 12, 15}  # row-major pixel positions of the four corners


@pytest.fixture(scope="module")
def gaussian_landscape():
    task = get_task("qhn-gaussian")
    return task, compute_landscape(task, with_test=False)


@pytest.fixture
def no_enumeration(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("enumerate_costs must not be called here")

    monkeypatch.setattr(qhn.models.enumerate, "enumerate_costs", refuse)


# ================================================================================= METHOD.md §6
def test_gaussian_optimum_generalizes_and_is_degenerate_by_permutations(gaussian_landscape):
    task, landscape = gaussian_landscape
    assert landscape.degeneracy > 0 and landscape.degeneracy % 24 == 0
    assert landscape.optimum_value == pytest.approx(0.0043, abs=1e-3)
    optimal = index_to_bits(landscape.optimal_indices, task.n_bits)
    assert (task.accuracy(optimal, "test") >= 0.99).all()
    assert landscape.optimum.test_accuracy >= 0.99
    assert landscape.optimum_accuracy_range["test"][0] >= 0.99
    assert landscape.test_costs is None  # with_test=False skips only the test enumeration
    assert (optimal[:, 17] == 0).all()  # METHOD.md: all optimal networks use ReLU


def test_gaussian_optimal_set_is_closed_under_hidden_unit_permutations(gaussian_landscape):
    task, landscape = gaussian_landscape
    names = task.describe_bits()
    bits = index_to_bits(landscape.optimal_indices[:1], task.n_bits)[0]
    # Swap hidden units 0 and 1: their columns of W1, entries of W2 and of b1.
    swapped = bits.clone()
    for name in ("W1[0,{}]", "W1[1,{}]", "W2[{},0]", "b1[{}]"):
        a, b = names.index(name.format(0)), names.index(name.format(1))
        swapped[a], swapped[b] = bits[b], bits[a]
    assert not torch.equal(swapped, bits)
    assert int(bits_to_index(swapped)) in landscape.optimal_indices.tolist()


def test_mnist_cost_vector_optimum_and_its_near_degenerate_cluster(mnist01_dir):
    task = get_task("cost-vector", path=str(mnist01_dir / "Cop_4x4.txt"))
    exact = compute_landscape(task)
    assert exact.optimum_value == pytest.approx(0.3268527, abs=1e-7)
    assert exact.optimal_indices.tolist() == [83097]
    assert exact.optimum.bitstring == "10100010010011001"
    assert exact.optimum.train_accuracy is None and exact.test_costs is None

    near = compute_landscape(task, tol=7e-7, rtol=0.0)
    assert near.degeneracy == 4 and 83097 in near.optimal_indices.tolist()
    costs = near.train_costs
    assert (costs[near.optimal_indices] - near.optimum_value <= 7e-7).all()
    best = parse_bitstring("10100010010011001")
    changed = set()
    for bits in index_to_bits(near.optimal_indices, 17):
        changed |= set(torch.nonzero(bits != best).flatten().tolist())
    assert len(changed) == 2 and changed <= CORNERS_4X4
    rest = torch.ones(2**17, dtype=torch.bool)
    rest[near.optimal_indices] = False
    assert costs[rest].min() >= 0.3268703 - 1e-7


def test_quantiles_and_median_against_numpy(mnist01_dir):
    values = np.loadtxt(mnist01_dir / "Cop_4x4.txt")
    task = get_task("cost-vector", path=str(mnist01_dir / "Cop_4x4.txt"))
    landscape = compute_landscape(task)
    np.testing.assert_allclose(
        [landscape.quantiles[q] for q in QUANTILE_LEVELS], np.quantile(values, QUANTILE_LEVELS)
    )
    assert landscape.median.train_cost == np.sort(values)[(len(values) - 1) // 2]
    assert values[landscape.median.index] == landscape.median.train_cost


# ================================================================================= brute force
def test_tiny_teacher_landscape_matches_closed_form_logistic_loss():
    from sklearn.metrics import log_loss

    task = get_task("teacher-tiny", n_train=60, n_test=40, seed=7)
    landscape = compute_landscape(task)
    bits = index_to_bits(torch.arange(64), 6)
    weights = (2.0 * bits.double() - 1).numpy()
    for split, costs in (("train", landscape.train_costs), ("test", landscape.test_costs)):
        x, y = (task.x_train, task.y_train) if split == "train" else (task.x_test, task.y_test)
        p1 = 1 / (1 + np.exp(-(x.numpy() @ weights[:, :5].T + weights[:, 5])))
        expected = [log_loss(y.numpy(), np.stack([1 - p, p], 1), labels=[0, 1]) for p in p1.T]
        np.testing.assert_allclose(costs.numpy(), expected, rtol=1e-10)
    best = int(np.argmin(landscape.train_costs.numpy()))
    assert landscape.optimal_indices.tolist() == [best]
    assert landscape.optimum.index == best
    assert landscape.optimum.test_cost == landscape.test_costs[best]
    probs = torch.zeros(64, dtype=torch.float64)
    probs[best], probs[(best + 1) % 64] = 0.25, 0.75
    assert landscape.mass_on_optimum(probs).item() == 0.25


@pytest.mark.parametrize("seed", range(4))
def test_noise_free_logistic_teacher_is_the_unique_optimum(seed):
    task = get_task("teacher", seed=seed, n_test=10)
    landscape = compute_landscape(task, with_test=False)
    assert landscape.optimal_indices.tolist() == [task.info["teacher_index"]]
    assert landscape.optimum.train_accuracy == 1.0


def test_optimal_set_uses_absolute_and_relative_tolerance(tmp_path):
    values = np.full(16, 5.0)
    values[[3, 9]] = 2.0
    values[4] = 2.0 + 1e-12
    values[7] = 2.0 + 1e-6
    np.save(tmp_path / "c.npy", values)
    task = get_task("cost-vector", path=str(tmp_path / "c.npy"))
    assert compute_landscape(task).optimal_indices.tolist() == [3, 4, 9]
    assert compute_landscape(task, tol=0.0, rtol=0.0).optimal_indices.tolist() == [3, 9]
    assert compute_landscape(task, tol=0.0, rtol=1e-6).degeneracy == 4
    assert compute_landscape(task, tol=2e-6, rtol=0.0).degeneracy == 4
    with pytest.raises(ConfigError, match="non-negative"):
        compute_landscape(task, tol=-1.0)


def test_random_reference_network_is_seeded():
    task = get_task("teacher-tiny", n_train=30)
    first = compute_landscape(task, seed=1).random
    assert compute_landscape(task, seed=1).random == first
    assert {compute_landscape(task, seed=s).random.index for s in range(2, 8)} != {first.index}


# ================================================================================= budget
def test_too_many_bits_are_refused_before_any_work(no_enumeration):
    task = get_task("teacher", n_inputs=26, n_train=20, n_test=5)  # 27 bits
    with pytest.raises(MemoryBudgetError, match="at most 26 bits"):
        compute_landscape(task)


def test_memory_budget_is_checked_before_any_work(no_enumeration):
    task = get_task("teacher", n_train=20)
    with pytest.raises(MemoryBudgetError, match="over the budget"):
        compute_landscape(task, max_bytes=2**12)


# ================================================================================= cache
def test_cache_is_written_atomically_and_reused(tmp_path, monkeypatch):
    task = get_task("teacher-tiny", n_train=40)
    first = compute_landscape(task, cache_dir=tmp_path)
    path = cache_path(task, tmp_path)
    assert not first.from_cache and first.cache_file == path and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left

    def refuse(*args, **kwargs):
        raise AssertionError("the cached landscape should have been used")

    monkeypatch.setattr(qhn.models.enumerate, "enumerate_costs", refuse)
    again = compute_landscape(task, cache_dir=tmp_path, tol=1e-3)
    assert again.from_cache and again.tol == 1e-3
    assert torch.equal(again.train_costs, first.train_costs)
    assert torch.equal(again.test_costs, first.test_costs)

    other = get_task("teacher-tiny", n_train=40, seed=1)
    assert cache_path(other, tmp_path) != path
    with pytest.raises(AssertionError, match="cached landscape"):
        compute_landscape(other, cache_dir=tmp_path)


def test_foreign_or_broken_cache_files_are_ignored(tmp_path):
    task = get_task("teacher-tiny", n_train=40)
    other = get_task("teacher-tiny", n_train=40, seed=1)
    path = cache_path(task, tmp_path)
    compute_landscape(other, cache_dir=tmp_path).cache_file.rename(path)  # another task's costs
    landscape = compute_landscape(task, cache_dir=tmp_path)
    assert not landscape.from_cache
    assert torch.equal(landscape.train_costs, compute_landscape(task).train_costs)
    path.write_bytes(b"not an npz file")
    assert not compute_landscape(task, cache_dir=tmp_path).from_cache
    assert compute_landscape(task, cache_dir=tmp_path).from_cache


def test_cache_without_test_costs_is_completed_when_they_are_asked_for(tmp_path):
    task = get_task("teacher-tiny", n_train=40)
    assert compute_landscape(task, cache_dir=tmp_path, with_test=False).test_costs is None
    full = compute_landscape(task, cache_dir=tmp_path)
    assert not full.from_cache and full.test_costs is not None
    assert compute_landscape(task, cache_dir=tmp_path, with_test=False).from_cache
