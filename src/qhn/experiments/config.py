"""Run configuration: one frozen, validated object (and one TOML file) per run.

A :class:`RunConfig` holds everything one run needs: the task, the objective, the circuit, the
backend and gradient estimator, and the optimization (a nested :class:`~qhn.train.TrainConfig`).
In TOML, run fields are top-level keys and the two tables are ``[task_options]`` and ``[train]``:

.. code-block:: toml

    task = "teacher"
    objective = "elbo"
    beta = 1.0
    [task_options]
    n_train = 200
    [train]
    steps = 300
    lr = 0.05

Training keys may also be written at top level (``steps = 300``); ``--set`` overrides
(:func:`~qhn.experiments.overrides.apply_overrides`) accept both ``train.steps=10`` and
``steps=10``. Every value and every combination is checked when the config is built, before any
compute.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qhn.backends.registry import BACKEND_KINDS, check_backend_spec
from qhn.circuits import ANSATZE, TOPOLOGIES
from qhn.circuits.ir import ENTANGLING_GATES, ROTATION_GATES
from qhn.errors import ConfigError, choices
from qhn.experiments.step_cost import DEFAULT_MAX_STEP_SECONDS
from qhn.experiments.toml_format import toml_table, toml_value, tomllib
from qhn.gradients import ESTIMATOR_NAMES
from qhn.hypernetwork import INITS
from qhn.io import atomic_write_text
from qhn.train.loop import TrainConfig
from qhn.validation import check_choice, check_int, check_number, unknown_key_error

#: Real precision of the statevector simulator (complex circuits use the matching complex type).
PRECISIONS = ("float64", "float32")

__all__ = [
    "BACKENDS",
    "ESTIMATORS",
    "INITS",
    "OBJECTIVES",
    "RunConfig",
    "config_differences",
    "config_hash",
    "load_config",
    "loads_config",
    "read_text_file",
    "save_config",
    "to_toml",
    "validate_task",
]

OBJECTIVES = ("mle", "elbo", "selbo")
BACKENDS = BACKEND_KINDS
#: The backends that take a ``[noise]`` table.
NOISY_BACKENDS = ("noisy", "qiskit:aer-noisy", "pennylane:default.mixed")
#: ``local-expectation`` serves block-factorized runs only (:mod:`qhn.experiments.block_run`).
ESTIMATORS = ("auto", *ESTIMATOR_NAMES, "local-expectation")
#: The gradient estimators each backend can serve ("auto" resolves to the first).
ESTIMATORS_BY_BACKEND = {
    "statevector": ("backprop", "parameter-shift", "score-function"),
    "sampled": ("parameter-shift",),
    "mps": ("backprop", "parameter-shift", "score-function"),
}
_ROTATIONS = tuple(sorted(ROTATION_GATES))
_ENTANGLERS = tuple(sorted(ENTANGLING_GATES))
_INT64 = (-(2**63), 2**63 - 1)


def _group(name: str) -> dict[str, str]:
    return {"group": name}


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs (see the module docstring for the TOML form).

    Task: ``task`` (a task name), ``task_options`` (free-form options of that task: strings,
    numbers, booleans, arrays and tables) and ``data_seed`` (the seed of the task's data and
    splits, kept apart from ``train.seed`` so seeds of a sweep share one data set).
    Objective: ``objective`` (mle | elbo | selbo), ``beta`` (KL weight of the ELBO), ``lam``
    (MMD² weight λ of the SELBO), ``prior_p``
    (``P(bit = 1)`` of the factorized Bernoulli prior), ``kernel_bandwidths`` (σ_j of the Hamming
    kernel), ``analytic_prior`` (closed-form prior expectations in the MMD), ``temperature`` (T
    in ``ℓ(s) = −N·C(s)/T``). Circuit: ``ansatz``, ``layers``, ``rotations``, ``entangler``,
    ``topology``, ``init`` (``uniform`` in [0, 2π); ``small``: within ``±init_scale`` of the
    uniform product state; ``warm``: the product state trained for ``warm_steps`` steps, default
    ``train.steps``, embedded in the circuit, see :mod:`qhn.experiments.warm_start`),
    ``restarts`` (unset = 1: train that many initializations, keep the lowest final training
    loss, :mod:`qhn.experiments.restarts`).
    Method: ``method`` (unset or ``"qhn"``: this hypernetwork; a baseline name of
    :mod:`qhn.baselines` runs that baseline on the same task, seed and steps, with its own options
    in the ``baseline`` table, see :mod:`qhn.experiments.methods`).
    Execution: ``backend`` (a spec of :func:`qhn.backends.registry.get_backend`:
    ``statevector``; ``sampled``, the statevector behind a samples-only wrapper, as on hardware;
    ``noisy``; ``qiskit:<target>``; ``pennylane:<device>``), ``estimator`` (``auto`` = backprop
    for exact expectations on statevector, parameter-shift otherwise), ``shots`` (None = exact
    expectations), ``noise`` (the ``[noise]`` table of a noisy backend: ``p1``, ``p2``,
    ``readout``, ``readout01``, ``readout10``, ``scale``), ``precision`` (``float64`` or
    ``float32``: the statevector's real type; float32 halves memory and time, with probabilities
    accurate to about passes·2^k·1.2e-7), ``readout_correction`` (SELBO's MMD² of the
    pre-readout distribution from read-out shots, with the backend's known readout rates:
    :mod:`qhn.inference.readout_correction`), ``max_step_seconds`` (a sampled run on the
    statevector whose predicted step takes longer is refused up front:
    :mod:`qhn.experiments.step_cost`). Optimization: ``train``.
    """

    task: str = field(metadata=_group("task"))
    task_options: dict[str, Any] = field(default_factory=dict, metadata=_group("task"))
    data_seed: int = field(default=0, metadata=_group("task"))
    objective: str = field(default="elbo", metadata=_group("objective"))
    beta: float = field(default=1.0, metadata=_group("objective"))
    lam: float = field(default=1.0, metadata=_group("objective"))
    prior_p: float = field(default=0.5, metadata=_group("objective"))
    kernel_bandwidths: tuple[float, ...] = field(
        default=(0.5, 1.0, 2.0, 4.0), metadata=_group("objective")
    )
    analytic_prior: bool = field(default=True, metadata=_group("objective"))
    temperature: float = field(default=1.0, metadata=_group("objective"))
    method: str | None = field(default=None, metadata=_group("objective"))
    baseline: dict[str, Any] = field(default_factory=dict, metadata=_group("objective"))
    ansatz: str = field(default="hardware_efficient", metadata=_group("circuit"))
    layers: int = field(default=2, metadata=_group("circuit"))
    rotations: tuple[str, ...] = field(default=("ry",), metadata=_group("circuit"))
    entangler: str = field(default="cz", metadata=_group("circuit"))
    topology: str = field(default="chain", metadata=_group("circuit"))
    init: str = field(default="uniform", metadata=_group("circuit"))
    init_scale: float = field(default=0.1, metadata=_group("circuit"))
    warm_steps: int | None = field(default=None, metadata=_group("circuit"))
    restarts: int | None = field(default=None, metadata=_group("circuit"))
    backend: str = field(default="statevector", metadata=_group("backend and gradients"))
    estimator: str = field(default="auto", metadata=_group("backend and gradients"))
    shots: int | None = field(default=None, metadata=_group("backend and gradients"))
    noise: dict[str, Any] = field(default_factory=dict, metadata=_group("backend and gradients"))
    precision: str = field(default="float64", metadata=_group("backend and gradients"))
    readout_correction: bool = field(default=False, metadata=_group("backend and gradients"))
    max_step_seconds: float = field(
        default=DEFAULT_MAX_STEP_SECONDS, metadata=_group("backend and gradients")
    )
    train: TrainConfig = field(default_factory=TrainConfig, metadata=_group("train"))
    blocks: int | tuple[int, ...] | None = field(default=None, metadata=_group("scale"))
    batch_size: int | None = field(default=None, metadata=_group("scale"))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.task, str) or not self.task.strip():
            raise ConfigError(f"task must be a non-empty task name, got {self.task!r}")
        if not isinstance(self.task_options, dict):
            raise ConfigError(
                f"task_options must be a table of options, got {type(self.task_options).__name__}"
            )
        options = _normalize_table(self.task_options, "task_options")
        set_(self, "task_options", _absolute_data_paths(options, Path.cwd()))
        if "temperature" in self.task_options:
            raise ConfigError(
                "task_options.temperature is not a task option here: set the top-level "
                f"temperature = {self.task_options['temperature']!r} instead"
            )

        check_int("data_seed", self.data_seed, 0)
        check_choice("objective", self.objective, OBJECTIVES)
        set_(self, "beta", check_number("beta", self.beta, minimum=0.0))
        set_(self, "lam", check_number("lam", self.lam, minimum=0.0))
        set_(
            self,
            "prior_p",
            check_number(
                "prior_p", self.prior_p, minimum=0.0, maximum=1.0, open_min=True, open_max=True
            ),
        )
        set_(self, "kernel_bandwidths", _bandwidths(self.kernel_bandwidths))
        _check_bool("analytic_prior", self.analytic_prior)
        set_(
            self,
            "temperature",
            check_number("temperature", self.temperature, minimum=0.0, open_min=True),
        )

        check_choice("ansatz", self.ansatz, tuple(ANSATZE))
        check_int("layers", self.layers, 1 if self.ansatz == "qhn_reference" else 0)
        set_(self, "rotations", _rotations(self.rotations))
        check_choice("entangler", self.entangler, _ENTANGLERS)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_choice("init", self.init, INITS)
        set_(
            self,
            "init_scale",
            check_number("init_scale", self.init_scale, minimum=0.0, open_min=True),
        )

        set_(self, "backend", check_backend_spec(self.backend))
        if not isinstance(self.noise, dict):
            raise ConfigError(f"noise must be a table of noise rates, got {self.noise!r}")
        set_(self, "noise", _normalize_table(self.noise, "noise"))
        check_choice("estimator", self.estimator, ESTIMATORS)
        if self.shots is not None:
            check_int("shots", self.shots, 1)
        check_choice("precision", self.precision, PRECISIONS)
        set_(
            self,
            "max_step_seconds",
            check_number("max_step_seconds", self.max_step_seconds, minimum=0.0, open_min=True),
        )
        if self.precision != "float64" and self.backend not in ("statevector", "sampled"):
            raise ConfigError(
                f"precision = {self.precision!r} needs backend 'statevector' or 'sampled', "
                f"not {self.backend!r}; leave precision at 'float64'"
            )
        if isinstance(self.train, dict):
            set_(self, "train", TrainConfig.from_dict(self.train))
        elif not isinstance(self.train, TrainConfig):
            raise ConfigError(f"train must be a TrainConfig or a table, got {self.train!r}")
        self._check_combination()
        _check_method_and_init(self)

    def _check_combination(self) -> None:
        from qhn.experiments.mps_run import check_mps_config, is_mps_sampled

        if is_mps_sampled(self):
            check_mps_config(self)
            return
        if self.blocks is not None:
            from qhn.experiments.block_run import check_block_config

            check_block_config(self)
            return
        if self.batch_size is not None:
            raise ConfigError(
                f"batch_size = {self.batch_size} needs blocks (sampled training); exact runs use "
                "all examples: leave batch_size unset or set blocks"
            )
        samples_only = self.backend == "sampled" or self.backend.startswith("qiskit:")
        if self.objective == "elbo" and samples_only:
            raise ConfigError(
                "objective 'elbo' needs exact probabilities (its KL term), which backend "
                f'{self.backend!r} does not give; use objective = "selbo" (its sample-based '
                'counterpart) or backend = "statevector"'
            )
        if samples_only and self.shots is None:
            raise ConfigError(
                f"backend {self.backend!r} returns samples only, so it needs shots = a positive "
                "integer (e.g. shots = 1000); got shots = None"
            )
        if self.noise and self.backend not in NOISY_BACKENDS:
            raise ConfigError(
                f"a [noise] table needs backend {choices(NOISY_BACKENDS)}, not "
                f"{self.backend!r}; remove [noise] or change the backend"
            )
        valid = ESTIMATORS_BY_BACKEND.get(self.backend, ("parameter-shift",))
        if self.estimator != "auto" and self.estimator not in valid:
            raise ConfigError(
                f"estimator {self.estimator!r} cannot run on backend {self.backend!r}; "
                f"choose one of: {choices(('auto', *valid))} (backprop and score-function need "
                "the statevector backend)"
            )
        if self.objective == "elbo" and self.shots is not None:
            raise ConfigError(
                f"objective 'elbo' is exact (its KL needs the whole distribution), so "
                f"shots = {self.shots} has no use; leave shots unset, or use objective = "
                '"selbo" to train from samples'
            )
        if self.estimator == "score-function" and (self.shots or 0) < 2:
            raise ConfigError(
                "estimator 'score-function' estimates from samples and needs shots = a positive "
                'integer; for exact gradients use estimator = "backprop" or "parameter-shift"'
            )
        if self.estimator == "backprop" and self.shots is not None:
            raise ConfigError(
                f"estimator 'backprop' differentiates exact probabilities and cannot use "
                f"shots = {self.shots}; choose one of: auto, parameter-shift, score-function"
            )
        _check_bool("readout_correction", self.readout_correction)
        if self.readout_correction:
            from qhn.inference.readout_correction import check_readout_config

            check_readout_config(self.objective, self.backend, self.noise)
        if self.train.optimizer == "lbfgs" and self.stochastic:
            raise ConfigError(
                f"optimizer 'lbfgs' needs a deterministic objective, but shots = {self.shots} "
                'makes it stochastic; use train.optimizer = "adam" or leave shots unset '
                "(exact expectations, statevector backend)"
            )

    def __hash__(self) -> int:
        return hash(to_toml(self))

    @property
    def resolved_estimator(self) -> str:
        """The gradient estimator actually used: ``auto`` is backprop for exact expectations on
        the statevector backend, parameter-shift otherwise (shots, or any other backend)."""
        if self.estimator == "auto" and self.blocks is not None:
            return "local-expectation"
        if self.estimator == "auto" and self.backend == "mps" and self.shots is not None:
            return "local-expectation"
        if self.estimator == "auto":
            exact_simulator = self.shots is None and self.backend == "statevector"
            return "backprop" if exact_simulator else "parameter-shift"
        return self.estimator

    @property
    def stochastic(self) -> bool:
        """Whether the objective is estimated from shots (so its value and gradient are random)."""
        return self.shots is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples as lists, ``train`` as a dict), as written to TOML."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "train":
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = copy.deepcopy(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from plain data (a parsed TOML document); refuse unknown keys.

        Training keys may sit in ``train`` or at top level, not both.
        """
        values = dict(values)
        train = values.pop("train", {})
        if isinstance(train, TrainConfig):
            train = train.to_dict()
        if not isinstance(train, dict):
            raise ConfigError(f"train must be a table of training options, got {train!r}")
        train = dict(train)
        known_run, known_train = run_keys(), train_keys()
        for key in list(values):
            if key in known_train:
                if key in train:
                    raise ConfigError(
                        f"{key} is given twice, at top level and in [train]; keep one"
                    )
                train[key] = values.pop(key)
            elif key not in known_run:
                raise unknown_run_key(key)
        if "task" not in values:
            raise ConfigError(
                'task is required (the name of the task to train on), e.g. task = "teacher"'
            )
        return cls(**values, train=TrainConfig.from_dict(train))


#: Task options that name a data file; stored absolute, so a run directory's config.toml means
#: the same file wherever it is read from.
DATA_PATH_OPTIONS = ("path",)


def _absolute_data_paths(options: dict[str, Any], base: Path) -> dict[str, Any]:
    """``options`` with every relative data path made absolute against ``base``."""
    out = dict(options)
    for key in DATA_PATH_OPTIONS:
        value = out.get(key)
        if isinstance(value, str) and value.strip():
            out[key] = os.path.abspath(os.path.join(base, os.path.expanduser(value)))
    return out


def config_differences(old: RunConfig, new: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Every field whose value differs, as ``dotted.key -> (old, new)`` (``train.steps``,
    ``task_options.path``, ``objective``, …)."""

    def flat(prefix: str, table: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
        for key, value in table.items():
            if isinstance(value, dict):
                flat(f"{prefix}{key}.", value, into)
            else:
                into[f"{prefix}{key}"] = value
        return into

    a, b = flat("", old.to_dict(), {}), flat("", new.to_dict(), {})
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _check_method_and_init(config: RunConfig) -> None:
    """``method`` (None or ``"qhn"``: the hypernetwork; else a baseline, whose options sit in
    ``baseline``) and the warm start (``init = "warm"``, ``warm_steps``)."""
    set_ = object.__setattr__
    if config.method == "qhn":
        set_(config, "method", None)  # the default, spelled out: same TOML, same id
    if not isinstance(config.baseline, dict):
        raise ConfigError(f"baseline must be a table of baseline options, got {config.baseline!r}")
    set_(config, "baseline", _normalize_table(config.baseline, "baseline"))
    if config.method is not None:
        from qhn.experiments.methods import baseline_config, method_names

        check_choice("method", config.method, method_names())
        baseline_config(config)  # every baseline option checked now
    elif config.baseline:
        raise ConfigError(
            f"baseline options {sorted(config.baseline)} need method = a baseline name "
            '(e.g. method = "anneal"); remove the [baseline] table for a QHN run'
        )
    if config.warm_steps is not None:
        check_int("warm_steps", config.warm_steps, 1)
        if config.init != "warm":
            raise ConfigError(
                f'warm_steps = {config.warm_steps} is used only by init = "warm", not '
                f'init = {config.init!r}; remove warm_steps or set init = "warm"'
            )
    if config.restarts is not None:
        check_int("restarts", config.restarts, 1)
        if config.restarts > 1 and config.init == "warm":
            raise ConfigError(
                f'restarts = {config.restarts} cannot be combined with init = "warm" (every '
                "candidate would start from the same trained product state); use init = "
                '"uniform" or "small", or leave restarts unset'
            )
    if config.init == "warm":
        ok = config.ansatz == "hardware_efficient" and config.entangler == "cz"
        if config.layers < 1 or not ok:
            raise ConfigError(
                f'init = "warm" embeds a trained product state into a hardware_efficient '
                f"circuit with entangler 'cz' and layers >= 1; got ansatz {config.ansatz!r}, "
                f"entangler {config.entangler!r}, layers {config.layers}"
            )


def _check_bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")


def _bandwidths(values: object) -> tuple[float, ...]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(
            f"kernel_bandwidths must be a non-empty array of numbers > 0, got {values!r}"
        )
    return tuple(
        check_number(f"kernel_bandwidths[{i}]", v, minimum=0.0, open_min=True)
        for i, v in enumerate(values)
    )


def _rotations(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(
            f"rotations must be a non-empty array of {choices(_ROTATIONS)}, got {values!r}"
        )
    return tuple(check_choice(f"rotations[{i}]", v, _ROTATIONS) for i, v in enumerate(values))


def _normalize_table(table: dict[Any, Any], where: str) -> dict[str, Any]:
    """A deep copy of free-form options, checked to be writable as TOML (tuples become lists)."""
    out = {}
    for key, value in table.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where} keys must be strings, got {key!r}")
        out[key] = _normalize_value(value, f"{where}.{key}")
    return out


def _normalize_value(value: Any, where: str) -> Any:
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ConfigError(f"{where} = {value} does not fit a 64-bit TOML integer")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (list, tuple)):
        return [_normalize_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _normalize_table(value, where)
    raise ConfigError(
        f"{where} = {value!r} cannot be written to TOML; use strings, numbers, booleans, arrays "
        "or tables" + (" (leave the key out instead of None)" if value is None else "")
    )


def run_keys() -> set[str]:
    return {f.name for f in fields(RunConfig)}


def train_keys() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def unknown_run_key(key: str) -> ConfigError:
    valid = sorted(run_keys() - {"train"}) + [f"train.{k}" for k in sorted(train_keys())]
    message = f"unknown key {key!r}; valid keys: {choices(valid)}"
    close = difflib.get_close_matches(key, sorted(run_keys() | train_keys()), n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return ConfigError(message)


#: Keys added after run ids were first published: written only when they differ from these
#: defaults, so configs that do not use them keep their TOML and their ids.
OMITTED_DEFAULTS: dict[str, Any] = {
    "readout_correction": False,
    "precision": "float64",
    "max_step_seconds": DEFAULT_MAX_STEP_SECONDS,
}


def to_toml(config: RunConfig) -> str:
    """The config as a TOML document (canonical: fixed key order, every field written, except
    ``None`` values, which are the defaults of the fields that allow them).

    ``load_config`` of the result gives back an equal config.
    """
    data = config.to_dict()
    lines = ["# qhn run configuration: load it with qhn.experiments.load_config"]
    groups: dict[str, list[str]] = {}
    for f in fields(RunConfig):
        value = data[f.name]
        written = groups.setdefault(f.metadata["group"], [])
        if isinstance(value, dict) or value is None or OMITTED_DEFAULTS.get(f.name, ...) == value:
            continue
        written.append(f"{f.name} = {toml_value(value)}")
    for group, written in groups.items():
        if written:  # a group of unset keys leaves no header, so the TOML (and the id) is unchanged
            lines += ["", f"# {group}", *written]
    lines.append("")
    toml_table(lines, "task_options", data["task_options"])
    if data["noise"]:
        # Written only when set, so configs without noise keep their TOML and their ids.
        lines.append("")
        toml_table(lines, "noise", data["noise"])
    if data["baseline"]:
        lines.append("")
        toml_table(lines, "baseline", data["baseline"])
    lines.append("")
    train = {k: v for k, v in data["train"].items() if v is not None}
    lines.append("[train]")
    lines += [f"{k} = {toml_value(v)}" for k, v in train.items()]
    return "\n".join(lines) + "\n"


def validate_task(config: RunConfig) -> None:
    """Refuse a task name or task option unknown to the task registry (:mod:`qhn.data`)."""
    from qhn.data.tasks import TASKS, task_options

    check_choice("task", config.task, tuple(TASKS))
    valid = set(task_options(config.task)) - {"temperature"}
    for key in config.task_options:
        if key not in valid:
            raise unknown_key_error(key, valid, f" in task_options of task {config.task!r}")


def load_config(path: str | os.PathLike[str], *, check_task: bool = True) -> RunConfig:
    """Read a run config from a TOML file; errors name the file and the bad key.

    ``check_task``: also check the task name and options against the task registry.
    """
    path = Path(path)
    text = read_text_file(path, "config file")
    return loads_config(
        text, source=str(path), check_task=check_task, base_dir=path.resolve().parent
    )


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a user-given file; one clear :class:`ConfigError` for a missing file,
    a directory, a binary file or an unreadable one."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory; give a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a UTF-8 text file; give a TOML file") from None
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None


def loads_config(
    text: str,
    source: str = "<string>",
    *,
    check_task: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
) -> RunConfig:
    """Parse a run config from TOML text (see :func:`load_config`); relative data paths in
    ``task_options`` are taken relative to ``base_dir`` (default: the working directory)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML: {error}") from None
    options = data.get("task_options")
    if base_dir is not None and isinstance(options, dict):
        data["task_options"] = _absolute_data_paths(options, Path(base_dir))
    try:
        config = RunConfig.from_dict(data)
        if check_task:
            validate_task(config)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    return config


def save_config(config: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write ``to_toml(config)`` to ``path`` atomically."""
    atomic_write_text(path, to_toml(config))


def config_hash(config: RunConfig) -> str:
    """A short stable id of a config: the first 12 hex digits of sha256 of its canonical TOML.

    Equal configs give equal ids; a new field added to :class:`RunConfig` changes every id.
    """
    return hashlib.sha256(to_toml(config).encode("utf-8")).hexdigest()[:12]
