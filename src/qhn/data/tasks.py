"""A task: what turns a bitstring ``s`` into a cost ``C(s)``, and the registry of named tasks.

A :class:`Task` holds either a binary network with seeded train/test data, or a precomputed cost
vector over all ``2**n`` bitstrings (METHOD.md §1, §6). It gives

- ``C(s)``: the mean per-example loss of network ``s`` on the training data (:meth:`Task.cost`);
- ``ℓ(s) = −N·C(s)/T``: the data term the objectives maximize (:meth:`Task.data_term`);
- accuracies and test costs for evaluation;
- a :meth:`Task.fingerprint` that keys caches (landscapes) on what defines ``C``.

Tasks are built by name through :func:`get_task`; :data:`TASKS` lists the names and their options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qhn.bits import bits_to_index, distinct_rows
from qhn.errors import ConfigError, choices

if TYPE_CHECKING:
    from qhn.models.network import BinaryNetwork

__all__ = [
    "COMMON_OPTIONS",
    "PRECOMPUTED",
    "TASKS",
    "Task",
    "TaskBuilder",
    "get_task",
    "task_options",
]

#: Bumped whenever the meaning of a fingerprint changes, so old caches are not reused.
FINGERPRINT_VERSION = 1

#: Elements of the largest intermediate ``(bitstrings × examples × width)`` evaluated at once.
_CHUNK_ELEMENTS = 2**23

SPLITS = ("train", "test")

#: The ``loss`` of a task whose ``C(s)`` comes as a precomputed vector.
PRECOMPUTED = "precomputed"


@dataclass(frozen=True, eq=False)
class Task:
    """A learning problem over ``n``-bit networks.

    Either ``network`` with data (``x_*`` float64 ``(B, d)``, ``y_*`` int64 ``(B,)`` in
    ``0..n_classes−1``), or ``network=None`` with a ``cost_vector`` and no data. A network task may
    also carry a precomputed ``cost_vector`` (``C`` on the training data for every bitstring, our
    index order); :meth:`cost` then looks values up instead of evaluating the network.

    ``options`` records every option that built the task (defaults included) and ``seed`` the seed
    of its random splits; both enter the :meth:`fingerprint`. ``info`` holds facts derived while
    building (e.g. ``teacher_index``, class names, feature scaling) that do not define the task.
    ``temperature`` ``T`` scales the data term only: ``ℓ(s) = −N·C(s)/T``.
    """

    name: str
    n_bits: int
    loss: str
    network: BinaryNetwork | None
    x_train: torch.Tensor | None
    y_train: torch.Tensor | None
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    n_classes: int | None
    cost_vector: torch.Tensor | None = None
    temperature: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from qhn.models.losses import LOSSES

        valid_losses = tuple(LOSSES) if self.network is not None else (PRECOMPUTED, *LOSSES)
        if self.loss not in valid_losses:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of: {choices(valid_losses)}")
        if not (isinstance(self.temperature, int | float) and self.temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature!r}")
        if self.cost_vector is not None and tuple(self.cost_vector.shape) != (2**self.n_bits,):
            raise ConfigError(
                f"cost vector of task {self.name!r} must have shape ({2**self.n_bits},), "
                f"got {tuple(self.cost_vector.shape)}"
            )
        if self.network is None:
            if self.cost_vector is None:
                raise ConfigError(f"task {self.name!r} needs a network or a cost vector")
            return
        if self.network.n_bits != self.n_bits:
            raise ConfigError(
                f"task {self.name!r}: network has {self.network.n_bits} bits, "
                f"task says {self.n_bits}"
            )
        if self.x_train is None or self.y_train is None:
            raise ConfigError(f"network task {self.name!r} needs training data")
        for split in SPLITS:
            x, y = self._split_data(split, required=False)
            if x is None:
                continue
            if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ConfigError(
                    f"task {self.name!r} {split} data must be x (B, d), y (B,), "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )

    # ----------------------------------------------------------------------------- sizes
    @property
    def n_train(self) -> int:
        """``N`` in ``ℓ = −N·C/T``: training examples, or option ``n_examples`` of a cost vector."""
        if self.y_train is not None:
            return int(self.y_train.shape[0])
        return int(self.options.get("n_examples", 1))

    @property
    def has_test(self) -> bool:
        """True when the task has held-out data."""
        return self.x_test is not None

    def describe_bits(self) -> list[str]:
        """A name for each bit, qubit 0 first."""
        if self.network is not None:
            return self.network.describe_bits()
        return [f"bit {q}" for q in range(self.n_bits)]

    # ----------------------------------------------------------------------------- costs
    def cost(self, bits: torch.Tensor) -> torch.Tensor:
        """``C(s)``, the mean training loss of each network.

        Shapes: bits ``(..., n)`` uint8 → ``(...)`` float64.
        """
        bits = self._check_bits(bits)
        if self.cost_vector is not None:
            return self.cost_vector[bits_to_index(bits)]
        return self._network_cost(bits, "train")

    def test_cost(self, bits: torch.Tensor) -> torch.Tensor:
        """Mean loss of each network on the test data. Shapes: ``(..., n)`` → ``(...)`` float64."""
        return self._network_cost(self._check_bits(bits), "test")

    def data_term(self, bits: torch.Tensor) -> torch.Tensor:
        """``ℓ(s) = −N·C(s)/T``. Shapes: ``(..., n)`` → ``(...)`` float64."""
        from qhn.models.losses import data_term

        return data_term(self.cost(bits), self.n_train, self.temperature)

    def accuracy(self, bits: torch.Tensor, split: str = "train") -> torch.Tensor:
        """Fraction of examples each network classifies correctly (argmax of its class
        probabilities; a tie goes to the lower class).

        Shapes: ``(..., n)`` → ``(...)`` float64.
        """
        bits = self._check_bits(bits)
        x, y = self._split_data(split)
        assert self.network is not None

        def evaluate(chunk: torch.Tensor) -> torch.Tensor:
            predicted = self.network.predict_proba(chunk, x).argmax(-1)
            return (predicted == y).to(torch.float64).mean(-1)

        return self._over_unique(bits, evaluate, x.shape[0])

    # ----------------------------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """A stable sha256 of everything that defines ``C`` and the data splits: name, seed,
        options, loss, network, data and cost-vector bytes.

        ``temperature`` is left out on purpose: it scales ``ℓ`` but not ``C``, so tasks that
        differ only in ``T`` share a landscape.
        """
        digest = hashlib.sha256()
        header = {
            "version": FINGERPRINT_VERSION,
            "name": self.name,
            "n_bits": self.n_bits,
            "loss": self.loss,
            "seed": self.seed,
            "options": {k: self.options[k] for k in sorted(self.options)},
            "network": repr(self.network),
        }
        digest.update(json.dumps(header, sort_keys=True, default=str).encode())
        for label in ("x_train", "y_train", "x_test", "y_test", "cost_vector"):
            tensor = getattr(self, label)
            if tensor is None:
                digest.update(f"{label}:none;".encode())
                continue
            array = np.ascontiguousarray(tensor.detach().cpu().numpy())
            digest.update(f"{label}:{array.dtype.str}:{array.shape};".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    # ----------------------------------------------------------------------------- helpers
    def _check_bits(self, bits: torch.Tensor) -> torch.Tensor:
        bits = torch.as_tensor(bits)
        if bits.ndim == 0 or bits.shape[-1] != self.n_bits:
            raise ConfigError(
                f"task {self.name!r} takes bitstrings of {self.n_bits} bits, "
                f"got shape {tuple(bits.shape)}"
            )
        return bits

    def _split_data(
        self, split: str, *, required: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; choose one of: {choices(SPLITS)}")
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        if required and (self.network is None or x is None):
            why = " (a cost-vector task holds only C(s))" if self.network is None else ""
            raise ConfigError(f"task {self.name!r} has no {split} data{why}")
        return x, y

    def _network_cost(self, bits: torch.Tensor, split: str) -> torch.Tensor:
        x, y = self._split_data(split)
        assert self.network is not None
        return self._over_unique(
            bits, lambda chunk: self.network.mean_loss(chunk, x, y, self.loss), x.shape[0]
        )

    def _over_unique(
        self,
        bits: torch.Tensor,
        evaluate: Callable[[torch.Tensor], torch.Tensor],
        n_examples: int,
    ) -> torch.Tensor:
        """Evaluate ``evaluate`` once per distinct bitstring, in chunks that bound memory.

        Sampled bitstrings repeat a lot once a hypernetwork concentrates, so this is often
        much cheaper than evaluating every row.
        """
        lead = bits.shape[:-1]
        flat = bits.reshape(-1, self.n_bits)
        if flat.shape[0] == 0:
            return torch.zeros(lead, dtype=torch.float64)
        unique, inverse, _ = distinct_rows(flat)
        assert self.network is not None
        width = max(self.network.layer_sizes)
        rows = max(1, _CHUNK_ELEMENTS // max(1, n_examples * width))
        values = torch.cat([evaluate(unique[i : i + rows]) for i in range(0, len(unique), rows)])
        return values.to(torch.float64)[inverse].reshape(lead)


# ================================================================================= registry
#: Options every task accepts, with their defaults.
COMMON_OPTIONS: dict[str, Any] = {"temperature": 1.0}


@dataclass(frozen=True)
class TaskBuilder:
    """How a registered name builds its task.

    ``target`` is ``"module:function"``, imported only when used; the function takes ``seed`` and
    keyword options and returns a :class:`Task`. ``fixed`` pins options for this name (they are not
    user options); ``defaults`` overrides the function's defaults.
    """

    target: str
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def function(self) -> Callable[..., Task]:
        """The builder function, imported on first use."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)

    def options(self) -> dict[str, Any]:
        """User options and their defaults (``temperature`` included)."""
        signature = inspect.signature(self.function())
        found = {
            name: parameter.default
            for name, parameter in signature.parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
            and name != "seed"
            and name not in self.fixed
        }
        found.update(self.defaults)
        found.update(COMMON_OPTIONS)
        return found


TASKS: dict[str, TaskBuilder] = {
    "qhn-gaussian": TaskBuilder(
        "qhn.data.synthetic:build_qhn_gaussian",
        "Gaussian mixture of METHOD.md §6: 2→4→1, activation bit, squared error (18 bits)",
    ),
    "moons": TaskBuilder("qhn.data.synthetic:build_moons", "two interleaving half circles"),
    "circles": TaskBuilder("qhn.data.synthetic:build_circles", "two concentric circles"),
    "xor": TaskBuilder("qhn.data.synthetic:build_xor", "four Gaussian blobs, XOR labels"),
    "teacher": TaskBuilder(
        "qhn.data.synthetic:build_teacher",
        "labels from a random binary teacher; logistic on 9 Gaussian inputs by default (10 bits)",
    ),
    "teacher-tiny": TaskBuilder(
        "qhn.data.synthetic:build_teacher",
        "6-bit teacher: logistic regression on 5 Gaussian inputs",
        defaults={"n_inputs": 5},
    ),
    "digits01": TaskBuilder(
        "qhn.data.digits:build_digits",
        "scikit-learn digits 0 vs 1 at 4×4, logistic regression (17 bits)",
        fixed={"classes": (0, 1)},
    ),
    "digits37": TaskBuilder(
        "qhn.data.digits:build_digits",
        "scikit-learn digits 3 vs 7 at 4×4, logistic regression (17 bits)",
        fixed={"classes": (3, 7)},
    ),
    "digits01+alphabet": TaskBuilder(
        "qhn.data.digits:build_digits",
        "digits 0 vs 1 with two alphabet bits (19 bits)",
        fixed={"classes": (0, 1), "alphabet_bits": True},
    ),
    "digits37+alphabet": TaskBuilder(
        "qhn.data.digits:build_digits",
        "digits 3 vs 7 with two alphabet bits (19 bits)",
        fixed={"classes": (3, 7), "alphabet_bits": True},
    ),
    "digits10": TaskBuilder(
        "qhn.data.digits10:build_digits10",
        "scikit-learn digits, all 10 classes at 8×8: 64→16→10 with ±1 weights (1,210 bits)",
    ),
    "cost-vector": TaskBuilder(
        "qhn.data.cost_vector:build_cost_vector",
        "a precomputed C(s) over all 2**n bitstrings (text or .npy)",
    ),
    "csv": TaskBuilder("qhn.data.tabular:build_csv", "a classification table from a CSV file"),
}


def task_options(name: str) -> dict[str, Any]:
    """The options of task ``name`` and their defaults."""
    return _builder(name).options()


def get_task(name: str, *, seed: int = 0, **options: Any) -> Task:
    """Build task ``name`` with ``seed`` and ``options`` (unknown ones are refused).

    A string value is converted to the type of the option's default, so command-line
    ``key=value`` pairs can be passed as they are.
    """
    builder = _builder(name)
    valid = builder.options()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {choices(unknown)} for task {name!r}; "
            f"valid options: {choices(sorted(valid))}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    resolved = {
        key: _coerce(name, key, options.get(key, default), default)
        for key, default in valid.items()
    }
    temperature = resolved.pop("temperature")
    kwargs = {**resolved, **builder.fixed}
    task = builder.function()(seed=seed, **kwargs)
    return dataclasses.replace(
        task, name=name, temperature=temperature, options={**kwargs, **task.options}
    )


def _builder(name: str) -> TaskBuilder:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of: {choices(TASKS)}")
    return TASKS[name]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(task: str, key: str, value: Any, default: Any) -> Any:
    """Convert a string option to the type of its default; other values pass unchanged."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        if isinstance(value, str) and value.lower() == "none" and default is None:
            return None
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple | list):
            kind = type(default[0]) if default else str
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return tuple(kind(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"option {key!r} of task {task!r} expects {type(default).__name__}, got {value!r}"
        ) from None
    return value
