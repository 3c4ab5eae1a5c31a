"""Tasks: the registry, seeded splits, the generators against closed forms and scikit-learn, the
digits loader offline, cost vectors, CSV parsing and the costs a task reports."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch

from fresh_process import imported_after
from qhn.bits import all_bits, index_to_bits
from qhn.data import TASKS, Task, get_task, task_options
from qhn.data.synthetic import concentric_circles, gaussian_mixture, two_moons, xor_blobs
from qhn.errors import ConfigError

SMALL = {
    "qhn-gaussian": {"n_train": 300, "n_test": 200},
    "moons": {},
    "circles": {},
    "xor": {},
    "teacher": {},
    "teacher-tiny": {},
    "digits01": {},
    "digits37+alphabet": {},
}


def _log_loss(y: np.ndarray, p1: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return log_loss(y, np.stack([1 - p1, p1], axis=1), labels=[0, 1])


# ================================================================================= registry
def test_import_qhn_stays_light():
    code = "import qhn, qhn.data, qhn.landscape, qhn.plots, qhn.cli\n"
    assert imported_after(code, ("sklearn", "matplotlib", "pennylane", "qiskit")) == []


def test_unknown_task_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown task 'mnist'") as info:
        get_task("mnist")
    for name in ("qhn-gaussian", "digits01", "cost-vector", "csv", "teacher"):
        assert name in str(info.value)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown option") as info:
        get_task("moons", n_trian=10)
    message = str(info.value)
    assert "n_trian" in message
    for option in ("n_train", "n_test", "noise", "temperature"):
        assert option in message


def test_fixed_options_are_not_user_options():
    assert "classes" not in task_options("digits01")
    with pytest.raises(ConfigError, match="unknown option"):
        get_task("digits01", classes=(3, 7))


def test_string_options_are_converted_to_the_default_type():
    task = get_task("moons", n_train="40", noise="0.2", temperature="2.5")
    assert task.n_train == 40 and task.options["noise"] == 0.2 and task.temperature == 2.5
    with pytest.raises(ConfigError, match="'n_train' of task 'moons' expects int"):
        get_task("moons", n_train="forty")


@pytest.mark.parametrize(
    ("name", "options"),
    [("moons", {"n_train": 0}), ("xor", {"noise": -1.0}), ("teacher", {"label_noise": 0.7})],
)
def test_invalid_option_values_are_refused(name, options):
    with pytest.raises(ConfigError):
        get_task(name, **options)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_splits_are_reproducible_and_depend_on_the_seed(name):
    first = get_task(name, seed=3, **SMALL[name])
    again = get_task(name, seed=3, **SMALL[name])
    other = get_task(name, seed=4, **SMALL[name])
    for label in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(first, label), getattr(again, label))
    assert first.fingerprint() == again.fingerprint()
    assert first.fingerprint() != other.fingerprint()
    assert not torch.equal(first.x_train, other.x_train)


def test_fingerprint_ignores_temperature_but_not_options():
    base = get_task("moons", n_train=30)
    assert get_task("moons", n_train=30, temperature=3.0).fingerprint() == base.fingerprint()
    assert get_task("moons", n_train=30, noise=0.2).fingerprint() != base.fingerprint()


def test_training_set_does_not_depend_on_the_test_size():
    small = get_task("qhn-gaussian", n_train=100, n_test=10)
    large = get_task("qhn-gaussian", n_train=100, n_test=500)
    assert torch.equal(small.x_train, large.x_train)
    assert large.x_test.shape == (500, 2)


def test_every_registered_name_is_documented():
    for name, builder in TASKS.items():
        assert builder.summary, name
        assert "temperature" in task_options(name)


# ================================================================================= generators
def test_gaussian_mixture_matches_method():
    """METHOD.md §6: means, within-component variance 0.1 and equal class probabilities."""
    n = 40_000
    x, y = gaussian_mixture(n, np.random.default_rng(11))
    class0, class1 = x[y == 0], x[y == 1]
    assert abs(len(class0) / n - 0.5) < 4 * math.sqrt(0.25 / n)
    se0 = math.sqrt(0.1 / len(class0))
    assert np.all(np.abs(class0.mean(0) - [-1.0, -2.0]) < 4 * se0)
    centres = np.array([(-2.0, 1.0), (1.0, 1.0), (2.0, -2.0)])
    mixture_var = 0.1 + centres.var(axis=0)
    assert np.all(np.abs(class1.mean(0) - centres.mean(0)) < 4 * np.sqrt(mixture_var / len(class1)))
    nearest = np.argmin(((class1[:, None, :] - centres) ** 2).sum(-1), axis=1)
    residual = class1 - centres[nearest]
    counts = np.bincount(nearest, minlength=3) / len(class1)
    assert np.all(np.abs(counts - 1 / 3) < 4 * math.sqrt(2 / 9 / len(class1)))
    assert abs(residual.var() - 0.1) < 4 * 0.1 * math.sqrt(2 / residual.size) + 1e-3
    assert abs((class0 - [-1, -2]).var() - 0.1) < 4 * 0.1 * math.sqrt(2 / class0.size)


def test_qhn_gaussian_task_is_the_reference_network():
    task = get_task("qhn-gaussian")
    assert task.n_bits == 18 and task.loss == "squared_error"
    assert task.n_train == 10_000 and task.x_test.shape == (10_000, 2)
    names = task.describe_bits()
    # METHOD.md §6 parameter order: W1 (2×4 row-major), W2 (4), b2 (1), b1 (4), activation bit.
    assert names[:8] == [f"W1[{i},{j}]" for i in range(2) for j in range(4)]
    assert names[8:12] == [f"W2[{j},0]" for j in range(4)]
    assert names[12] == "b2[0]" and names[13:17] == [f"b1[{j}]" for j in range(4)]
    assert names[17] == "act"


def test_noise_free_moons_lie_on_scikit_learn_moons():
    from sklearn.datasets import make_moons

    reference, reference_y = make_moons(n_samples=40_000, noise=0.0, shuffle=False)
    x, y = two_moons(500, 0.0, np.random.default_rng(0))
    for label in (0, 1):
        curve = reference[reference_y == label]
        distance = np.sqrt(((x[y == label][:, None, :] - curve[None]) ** 2).sum(-1)).min(1)
        assert distance.max() < 1e-3


def test_noise_free_circles_have_radii_one_and_a_half():
    x, y = concentric_circles(400, 0.0, np.random.default_rng(0))
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(radius[y == 1], 0.5, atol=1e-12)


def test_xor_labels_and_noise():
    n, noise = 20_000, 0.3
    x, y = xor_blobs(n, noise, np.random.default_rng(5))
    # Far from the axes (4 noise std from the other blobs) a point's quadrant is its centre's.
    clear = np.all(np.abs(x) > 4 * noise, axis=1)
    quadrant = np.sign(x[clear])
    assert np.array_equal(y[clear], (quadrant[:, 0] != quadrant[:, 1]).astype(int))
    clean, _ = xor_blobs(n, 0.0, np.random.default_rng(5))
    residual = x - clean
    assert abs(residual.std() - noise) < 4 * noise / math.sqrt(2 * residual.size)


@pytest.mark.parametrize("name", ["moons", "circles", "xor"])
def test_toy_tasks_are_standardized_on_train(name):
    task = get_task(name)
    assert task.n_bits == 13 and task.loss == "cross_entropy"
    np.testing.assert_allclose(task.x_train.mean(0).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(task.x_train.std(0, unbiased=False).numpy(), 1.0, atol=1e-12)
    assert get_task(name, hidden=4).n_bits == 17


# ================================================================================= teacher
def test_teacher_labels_come_from_the_teacher():
    task = get_task("teacher", seed=2)
    assert task.n_bits == 10
    teacher = index_to_bits(torch.tensor([task.info["teacher_index"]]), task.n_bits)
    assert task.accuracy(teacher, "train").item() == 1.0
    assert task.accuracy(teacher, "test").item() == 1.0
    w = 2.0 * teacher[0, :-1].double() - 1
    b = 2.0 * teacher[0, -1].double() - 1
    logits = task.x_train @ w + b  # METHOD.md: weights row-major, then the bias
    assert torch.equal((logits > 0).long(), task.y_train)


def test_teacher_tiny_has_six_bits():
    task = get_task("teacher-tiny")
    assert task.n_bits == 6 and task.network.layer_sizes == (5, 1)


def test_teacher_label_noise_flips_training_labels_only():
    n, rate = 4000, 0.2
    task = get_task("teacher", n_train=n, label_noise=rate, seed=1)
    flipped = task.info["flipped_labels"]
    assert abs(flipped / n - rate) < 4 * math.sqrt(rate * (1 - rate) / n)
    teacher = index_to_bits(torch.tensor([task.info["teacher_index"]]), task.n_bits)
    assert task.accuracy(teacher, "train").item() == pytest.approx(1 - flipped / n, abs=1e-12)
    assert task.accuracy(teacher, "test").item() == 1.0


def test_teacher_with_hidden_units_and_binary_inputs():
    task = get_task("teacher", n_inputs=3, hidden=2, inputs="binary")
    assert task.n_bits == 3 * 2 + 2 + 2 + 1
    assert set(task.x_train.unique().tolist()) == {-1.0, 1.0}
    assert 0 < task.y_train.float().mean() < 1


# ================================================================================= digits
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_digits_load_offline_with_17_or_19_bits(no_network):
    assert get_task("digits01").n_bits == 17
    assert get_task("digits37").n_bits == 17
    assert get_task("digits01+alphabet").n_bits == 19
    assert get_task("digits37+alphabet").n_bits == 19


def test_digits_are_block_averages_with_a_stratified_split():
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, (3, 7))
    images, target = digits.images[keep], digits.target[keep]
    task = get_task("digits37", seed=5)
    assert task.n_train + task.x_test.shape[0] == keep.sum()
    for label, digit in enumerate((3, 7)):
        count = int((target == digit).sum())
        assert int((task.y_test == label).sum()) == round(0.3 * count)
    # Every training row is the 2×2-block average of one of the 8×8 images, divided by 16.
    pooled = np.array(
        [
            [
                images[i, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2].mean() / 16
                for r in range(4)
                for c in range(4)
            ]
            for i in range(len(images))
        ]
    )
    x = task.x_train.numpy()
    distance = np.abs(x[:, None, :] - pooled[None]).sum(-1).min(1)
    assert distance.max() < 1e-12
    assert x.min() >= 0 and x.max() <= 1


def test_digits_scalings():
    centred = get_task("digits01", scaling="centred")
    np.testing.assert_allclose(centred.x_train.mean(0).numpy(), 0.0, atol=1e-12)
    with pytest.raises(ConfigError, match="unknown scaling"):
        get_task("digits01", scaling="zscore")


# ================================================================================= cost vectors
def test_cost_vector_from_the_reference_file(mnist01_dir):
    path = mnist01_dir / "Cop_4x4.txt"
    values = np.loadtxt(path)
    task = get_task("cost-vector", path=str(path), n_examples=12665, temperature=2.0)
    assert task.n_bits == 17 and task.network is None and task.n_train == 12665
    bits = index_to_bits(torch.tensor([0, 83097, 2**17 - 1]), 17)
    np.testing.assert_array_equal(task.cost(bits).numpy(), values[[0, 83097, 2**17 - 1]])
    np.testing.assert_allclose(
        task.data_term(bits).numpy(), -12665 * values[[0, 83097, 2**17 - 1]] / 2.0, rtol=1e-15
    )
    with pytest.raises(ConfigError, match="no test data"):
        task.test_cost(bits)
    with pytest.raises(ConfigError, match="no train data"):
        task.accuracy(bits)


def test_cost_vector_npy_and_n_examples_default(tmp_path):
    values = np.linspace(0.0, 1.0, 8)
    np.save(tmp_path / "c.npy", values)
    task = get_task("cost-vector", path=str(tmp_path / "c.npy"))
    assert task.n_bits == 3 and task.n_train == 1
    np.testing.assert_array_equal(task.cost(all_bits(3)).numpy(), values)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0.1\n0.2\n0.3\n", "3 values; a cost vector needs a power of two"),
        ("0.1\nabc\n0.3\n0.4\n", "line 2"),
        ("0.1\nnan\n", "index 1 is not finite"),
    ],
)
def test_bad_cost_vectors_are_refused(tmp_path, content, message):
    path = tmp_path / "c.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        get_task("cost-vector", path=str(path))


def test_cost_vector_needs_a_path(tmp_path):
    with pytest.raises(ConfigError, match="needs option path"):
        get_task("cost-vector")
    with pytest.raises(ConfigError, match="not found"):
        get_task("cost-vector", path=str(tmp_path / "absent.txt"))


# ================================================================================= CSV
def _write(tmp_path, text, name="table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _iris_like(tmp_path, n_per_class=10):
    rng = np.random.default_rng(0)
    lines = ["a,b,c,species"]
    for k, species in enumerate(("setosa", "virginica", "versicolor")):
        for _ in range(n_per_class):
            a, b, c = rng.normal(k, 1.0, size=3)
            lines.append(f"{a},{b},{c},{species}")
    return _write(tmp_path, "\n".join(lines) + "\n")


def test_csv_with_header_and_text_labels(tmp_path):
    task = get_task("csv", path=_iris_like(tmp_path), seed=1)
    assert task.n_classes == 3 and task.info["class_names"] == ["setosa", "versicolor", "virginica"]
    assert task.n_bits == 3 * (3 + 1)  # softmax regression: 3 outputs × (3 weights + bias)
    assert task.n_train + task.x_test.shape[0] == 30
    assert sorted(torch.bincount(task.y_test).tolist()) == [3, 3, 3]
    np.testing.assert_allclose(task.x_train.mean(0).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(task.x_train.std(0, unbiased=False).numpy(), 1.0, atol=1e-12)
    subset = get_task("csv", path=task.options["path"], features="a,c", hidden=2)
    assert subset.network.layer_sizes == (2, 2, 3)


def test_csv_without_header_and_a_named_label_column(tmp_path):
    rows = [f"{i % 2},{i * 0.5},{(i * 7) % 5}" for i in range(20)]
    path = _write(tmp_path, "\n".join(rows) + "\n")
    task = get_task("csv", path=path, label="0")
    assert task.info["feature_names"] == ["1", "2"]
    assert task.n_classes == 2 and task.n_bits == 3  # logistic: 2 weights + bias
    assert task.n_train + len(task.y_test) == 20
    assert torch.bincount(torch.cat([task.y_train, task.y_test])).tolist() == [10, 10]


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a,b,y\n1,2,0\n3,4\n5,6,1\n", {}, r"line 3: expected 3 fields"),
        ("a,b,y\n1,2,0\n3,x,1\n5,6,1\n", {}, r"line 3, column 'b': not a number: 'x'"),
        ("a,b,y\n1,2,0\n3,4,0\n5,6,0\n", {}, r"has 1 class.*need at least 2"),
        ("a,b,y\n1,2,0\n3,4,1\n", {"label": "target"}, r"label column 'target' not in"),
        ("a,b,y\n1,2,0\n3,4,1\n", {"features": "a,z"}, r"feature column\(s\) z not in"),
        ("", {}, r"is empty"),
    ],
)
def test_malformed_csv_names_the_file_and_place(tmp_path, text, options, message):
    path = _write(tmp_path, text, name="broken.csv")
    with pytest.raises(ConfigError, match=message) as info:
        get_task("csv", path=path, **options)
    assert "broken.csv" in str(info.value)


def test_csv_needs_a_path():
    with pytest.raises(ConfigError, match="needs option path"):
        get_task("csv")


# ================================================================================= costs
def test_cost_and_accuracy_match_scikit_learn_for_logistic_regression():
    task = get_task("teacher-tiny", n_train=80, seed=4)
    bits = all_bits(task.n_bits)
    weights = 2.0 * bits.double() - 1
    x, y = task.x_train.numpy(), task.y_train.numpy()
    logits = x @ weights[:, :-1].numpy().T + weights[:, -1].numpy()  # (B, S)
    p1 = 1 / (1 + np.exp(-logits))
    expected = np.array([_log_loss(y, p1[:, s]) for s in range(len(bits))])
    np.testing.assert_allclose(task.cost(bits).numpy(), expected, rtol=1e-10)
    from sklearn.metrics import accuracy_score

    accuracy = np.array([accuracy_score(y, p1[:, s] > 0.5) for s in range(len(bits))])
    np.testing.assert_allclose(task.accuracy(bits).numpy(), accuracy)
    ratio = task.data_term(bits) / task.cost(bits)
    np.testing.assert_allclose(ratio.numpy(), -80.0)


def test_cost_keeps_leading_shapes_and_repeats():
    task = get_task("moons", n_train=50)
    bits = index_to_bits(torch.tensor([[5, 9, 5], [9, 9, 1]]), task.n_bits)
    costs = task.cost(bits)
    assert costs.shape == (2, 3) and costs.dtype == torch.float64
    assert costs[0, 0] == costs[0, 2] and costs[0, 1] == costs[1, 0] == costs[1, 1]
    direct = task.network.mean_loss(
        bits.reshape(-1, task.n_bits), task.x_train, task.y_train, "cross_entropy"
    )
    np.testing.assert_allclose(costs.reshape(-1).numpy(), direct.numpy(), rtol=1e-13)
    with pytest.raises(ConfigError, match="13 bits"):
        task.cost(torch.zeros(4, 12, dtype=torch.uint8))


def test_task_validates_its_parts():
    task = get_task("moons", n_train=20)
    with pytest.raises(ConfigError, match="unknown loss"):
        Task("t", task.n_bits, "hinge", task.network, task.x_train, task.y_train, None, None, 2)
    with pytest.raises(ConfigError, match="temperature"):
        get_task("moons", temperature=0.0)
