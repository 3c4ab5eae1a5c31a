"""Synthetic tasks: the Gaussian mixture of METHOD.md §6, 2-D toy sets, and a binary teacher.

The generators return NumPy arrays ``x`` ``(B, d)`` float64 and ``y`` ``(B,)`` int64 and take an
explicit ``numpy.random.Generator``; the ``build_*`` functions turn them into :class:`Task` objects.
Classes are equally likely: each label is an independent fair coin.
"""

from __future__ import annotations

import math

import numpy as np

from qhn.data.splits import (
    as_tensors,
    rng_streams,
    standardize,
)
from qhn.data.tabular import classification_task
from qhn.data.tasks import Task
from qhn.errors import ConfigError, choices
from qhn.validation import check_int, check_number

__all__ = [
    "build_circles",
    "build_moons",
    "build_qhn_gaussian",
    "build_teacher",
    "build_xor",
    "concentric_circles",
    "gaussian_mixture",
    "teacher_inputs",
    "two_moons",
    "xor_blobs",
]

HIDDEN_ACTIVATIONS = ("sign", "relu", "sigmoid", "tanh")
TEACHER_INPUTS = ("gaussian", "binary")

#: Class-1 centres of the METHOD.md §6 mixture; class 0 sits at (−1, −2). Covariance 0.1·I.
GAUSSIAN_CLASS0_MEAN = (-1.0, -2.0)
GAUSSIAN_CLASS1_MEANS = ((-2.0, 1.0), (1.0, 1.0), (2.0, -2.0))
GAUSSIAN_VARIANCE = 0.1

#: A teacher is redrawn until its minority class holds at least this fraction of the training set.
TEACHER_MIN_MINORITY = 0.1
TEACHER_MAX_DRAWS = 1000


# ================================================================================= generators
def gaussian_mixture(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """METHOD.md §6: label 0 ~ N((−1,−2), 0.1·I); label 1 ~ an equal mix of N((−2,1)), N((1,1)),
    N((2,−2)), each 0.1·I.

    Shapes: returns ``x`` ``(n, 2)``, ``y`` ``(n,)``.
    """
    y = rng.integers(0, 2, size=n)
    component = rng.integers(0, len(GAUSSIAN_CLASS1_MEANS), size=n)
    noise = rng.standard_normal((n, 2)) * math.sqrt(GAUSSIAN_VARIANCE)
    means = np.where(
        (y == 0)[:, None],
        np.asarray(GAUSSIAN_CLASS0_MEAN),
        np.asarray(GAUSSIAN_CLASS1_MEANS)[component],
    )
    return means + noise, y.astype(np.int64)


def two_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: class 0 on ``(cos t, sin t)``, class 1 on
    ``(1 − cos t, ½ − sin t)``, ``t ~ U[0, π]``, plus isotropic Gaussian noise of std ``noise``.

    Shapes: returns ``x`` ``(n, 2)``, ``y`` ``(n,)``.
    """
    y = rng.integers(0, 2, size=n)
    t = rng.uniform(0.0, math.pi, size=n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where((y == 0)[:, None], upper, lower)
    return x + noise * rng.standard_normal((n, 2)), y.astype(np.int64)


def concentric_circles(
    n: int, noise: float, rng: np.random.Generator, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 on the unit circle, class 1 on the circle of radius ``factor``, angles uniform,
    plus isotropic Gaussian noise of std ``noise``.

    Shapes: returns ``x`` ``(n, 2)``, ``y`` ``(n,)``.
    """
    y = rng.integers(0, 2, size=n)
    angle = rng.uniform(0.0, 2 * math.pi, size=n)
    radius = np.where(y == 0, 1.0, factor)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal((n, 2)), y.astype(np.int64)


def xor_blobs(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four blobs centred at ``(±1, ±1)`` with std ``noise``; the label is 1 where the centre's
    coordinates have opposite signs (XOR of the two sign bits).

    Shapes: returns ``x`` ``(n, 2)``, ``y`` ``(n,)``.
    """
    centres = rng.choice(np.array([-1.0, 1.0]), size=(n, 2))
    y = (centres[:, 0] * centres[:, 1] < 0).astype(np.int64)
    return centres + noise * rng.standard_normal((n, 2)), y


def teacher_inputs(n: int, n_inputs: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Teacher inputs: independent standard normals (``"gaussian"``) or fair ±1 (``"binary"``).

    Shapes: returns ``(n, n_inputs)``.
    """
    if kind == "gaussian":
        return rng.standard_normal((n, n_inputs))
    return rng.choice(np.array([-1.0, 1.0]), size=(n, n_inputs))


# ================================================================================= builders
def build_qhn_gaussian(*, seed: int, n_train: int = 10_000, n_test: int = 10_000) -> Task:
    """The 18-bit Gaussian-mixture task of METHOD.md §6.

    Network 2→4→1 with biases, sigmoid output, hidden activation chosen by the last bit
    (1 → sigmoid, 0 → ReLU), parameter layout ``"qhn-gaussian"``; mean squared error. Features are
    used as drawn (no scaling). Train and test sets come from independent seeded streams.
    """
    from qhn.models.network import BinaryNetwork

    n_train = check_int("n_train", n_train, 1)
    n_test = check_int("n_test", n_test, 1)
    train_rng, test_rng = rng_streams(seed, 2)
    x_train, y_train = as_tensors(*gaussian_mixture(n_train, train_rng))
    x_test, y_test = as_tensors(*gaussian_mixture(n_test, test_rng))
    network = BinaryNetwork((2, 4, 1), bias=True, activation_bit=True, layout="qhn-gaussian")
    return Task(
        name="qhn-gaussian",
        n_bits=network.n_bits,
        loss="squared_error",
        network=network,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=2,
        options={"n_train": n_train, "n_test": n_test},
        seed=seed,
    )


def _toy_task(
    name: str,
    generate,
    *,
    seed: int,
    n_train: int,
    n_test: int,
    noise: float,
    hidden: int,
    activation: str,
) -> Task:
    """A 2-D toy task: features standardized on the training set, a 2→hidden→1 BiNN with biases
    (``4·hidden + 1`` bits), cross-entropy."""
    n_train = check_int("n_train", n_train, 1)
    n_test = check_int("n_test", n_test, 1)
    hidden = check_int("hidden", hidden, 1)
    noise = check_number("noise", noise, minimum=0.0)
    _check_activation(activation)
    train_rng, test_rng = rng_streams(seed, 2)
    x_train, y_train = generate(n_train, noise, train_rng)
    x_test, y_test = generate(n_test, noise, test_rng)
    x_train, x_test = standardize(x_train, x_test)
    return classification_task(
        name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=2,
        hidden_widths=(hidden,),
        activation=activation,
        seed=seed,
        options={
            "n_train": n_train,
            "n_test": n_test,
            "noise": noise,
            "hidden": hidden,
            "activation": activation,
        },
        info={},
    )


def build_moons(
    *,
    seed: int,
    n_train: int = 200,
    n_test: int = 1000,
    noise: float = 0.1,
    hidden: int = 3,
    activation: str = "relu",
) -> Task:
    """Two moons (:func:`two_moons`), a 2→3→1 network by default (13 bits)."""
    return _toy_task(
        "moons",
        two_moons,
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        noise=noise,
        hidden=hidden,
        activation=activation,
    )


def build_circles(
    *,
    seed: int,
    n_train: int = 200,
    n_test: int = 1000,
    noise: float = 0.1,
    hidden: int = 3,
    activation: str = "relu",
) -> Task:
    """Two concentric circles (:func:`concentric_circles`, radii 1 and ½), 2→3→1 (13 bits)."""
    return _toy_task(
        "circles",
        concentric_circles,
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        noise=noise,
        hidden=hidden,
        activation=activation,
    )


def build_xor(
    *,
    seed: int,
    n_train: int = 200,
    n_test: int = 1000,
    noise: float = 0.3,
    hidden: int = 3,
    activation: str = "relu",
) -> Task:
    """XOR of four blobs (:func:`xor_blobs`), 2→3→1 (13 bits)."""
    return _toy_task(
        "xor",
        xor_blobs,
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        noise=noise,
        hidden=hidden,
        activation=activation,
    )


def build_teacher(
    *,
    seed: int,
    n_inputs: int = 9,
    hidden: int = 0,
    activation: str = "sign",
    inputs: str = "gaussian",
    n_train: int = 200,
    n_test: int = 1000,
    label_noise: float = 0.0,
) -> Task:
    """Labels from a random binary teacher of the same architecture as the student.

    The network is ``n_inputs → hidden → 1`` with biases (``hidden = 0``, the default: logistic
    regression, ``n_inputs + 1`` bits, 10 by default). The teacher is a uniformly random
    bitstring, redrawn from the same seeded stream until its minority class holds at least
    10 % of the training set. A label is the teacher's most probable class (a tie, possible only
    with binary inputs, goes to class 0). Each *training* label is then flipped with probability
    ``label_noise``; test labels stay clean, so test accuracy measures recovery of the teacher.
    Without label noise the teacher classifies the training set perfectly; for logistic regression
    on Gaussian inputs it is then the cross-entropy optimum. With hidden units it need not be: a
    ``sign`` hidden layer gives logits that are small integers, and a network that misclassifies
    a few points with larger margins can reach a lower cross-entropy. Its index is
    ``task.info["teacher_index"]``.
    """
    import torch

    from qhn.bits import bits_to_index
    from qhn.models.network import BinaryNetwork

    n_inputs = check_int("n_inputs", n_inputs, 1)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ConfigError(f"hidden must be a non-negative integer, got {hidden!r}")
    n_train = check_int("n_train", n_train, 1)
    n_test = check_int("n_test", n_test, 1)
    label_noise = check_number("label_noise", label_noise, minimum=0.0)
    if label_noise > 0.5:
        raise ConfigError(f"label_noise must be at most 0.5, got {label_noise}")
    _check_activation(activation)
    if inputs not in TEACHER_INPUTS:
        raise ConfigError(f"unknown inputs {inputs!r}; choose one of: {choices(TEACHER_INPUTS)}")
    sizes = (n_inputs, hidden, 1) if hidden else (n_inputs, 1)
    network = BinaryNetwork(sizes, bias=True, hidden_activation=activation)

    teacher_rng, train_rng, test_rng, noise_rng = rng_streams(seed, 4)
    x_train, x_test = (
        torch.from_numpy(teacher_inputs(n, n_inputs, inputs, rng))
        for n, rng in ((n_train, train_rng), (n_test, test_rng))
    )

    def labels(bits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return network.predict_proba(bits[None], x)[0].argmax(-1).to(torch.int64)

    minority_needed = max(1, math.ceil(TEACHER_MIN_MINORITY * n_train))
    for _ in range(TEACHER_MAX_DRAWS):
        teacher = torch.from_numpy(teacher_rng.integers(0, 2, size=network.n_bits).astype(np.uint8))
        y_train = labels(teacher, x_train)
        ones = int(y_train.sum())
        if min(ones, n_train - ones) >= minority_needed:
            break
    else:
        raise ConfigError(
            f"no teacher in {TEACHER_MAX_DRAWS} draws gave both classes at least "
            f"{minority_needed} of {n_train} training labels; use more training examples"
        )
    y_test = labels(teacher, x_test)
    flips = torch.from_numpy(noise_rng.random(n_train) < label_noise)
    y_train = torch.where(flips, 1 - y_train, y_train)
    return Task(
        name="teacher",
        n_bits=network.n_bits,
        loss="cross_entropy",
        network=network,
        x_train=x_train.to(torch.float64),
        y_train=y_train,
        x_test=x_test.to(torch.float64),
        y_test=y_test,
        n_classes=2,
        options={
            "n_inputs": n_inputs,
            "hidden": hidden,
            "activation": activation,
            "inputs": inputs,
            "n_train": n_train,
            "n_test": n_test,
            "label_noise": label_noise,
        },
        seed=seed,
        info={
            "teacher_index": int(bits_to_index(teacher)),
            "flipped_labels": int(flips.sum()),
        },
    )


def _check_activation(activation: str) -> None:
    if activation not in HIDDEN_ACTIVATIONS:
        raise ConfigError(
            f"unknown hidden activation {activation!r}; "
            f"choose one of: {choices(HIDDEN_ACTIVATIONS)}"
        )
