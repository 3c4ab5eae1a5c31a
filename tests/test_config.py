"""Run configs: validation, TOML round trips (checked with the standard TOML parser), overrides
and the config hash."""

from __future__ import annotations

import hashlib
import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qhn.errors import ConfigError
from qhn.experiments import (
    RunConfig,
    apply_overrides,
    config_hash,
    load_config,
    loads_config,
    save_config,
    to_toml,
)
from qhn.train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

EXAMPLE = """
task = "teacher"
objective = "elbo"
beta = 1.0
[task_options]
n_train = 200
[train]
steps = 300
lr = 0.05
"""


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def test_the_documented_example_loads_with_defaults_elsewhere():
    config = loads_config(EXAMPLE)
    assert config.task == "teacher" and config.objective == "elbo" and config.beta == 1.0
    assert config.task_options == {"n_train": 200}
    assert config.train == TrainConfig(steps=300, lr=0.05)
    assert config.backend == "statevector" and config.shots is None
    assert config.kernel_bandwidths == (0.5, 1.0, 2.0, 4.0)
    assert config.resolved_estimator == "backprop"


def test_to_toml_round_trips_and_is_standard_toml(tmp_path):
    config = RunConfig(
        task="digits 3 vs 7",
        task_options={"pair": [3, 7], "nested": {"a b": 'x"\\\n\ty', "z": [{"k": 1.5}]}},
        objective="selbo",
        backend="sampled",
        shots=512,
        rotations=["ry", "rz"],
        kernel_bandwidths=[1, 2],
        train={"steps": 5, "lr": 1, "schedule": "cosine", "grad_clip": 2},
    )
    text = to_toml(config)
    expected = _drop_none(config.to_dict())
    assert expected.pop("noise") == {}  # an empty [noise] table is not written (ids unchanged)
    assert expected.pop("baseline") == {}  # nor an empty [baseline] table
    assert expected.pop("readout_correction") is False  # likewise written only when true
    assert expected.pop("precision") == "float64"  # and only when not the default
    assert expected.pop("max_step_seconds") == 300.0  # likewise
    assert tomllib.loads(text) == expected
    assert loads_config(text, check_task=False) == config
    noisy = RunConfig(task="t", backend="noisy", noise={"p1": 0.001, "readout": 0.02})
    assert tomllib.loads(to_toml(noisy))["noise"] == {"p1": 0.001, "readout": 0.02}
    assert loads_config(to_toml(noisy), check_task=False) == noisy
    single = RunConfig(task="t", precision="float32")
    assert tomllib.loads(to_toml(single))["precision"] == "float32"
    assert loads_config(to_toml(single), check_task=False) == single
    save_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml", check_task=False) == config
    assert config.rotations == ("ry", "rz") and config.kernel_bandwidths == (1.0, 2.0)
    assert isinstance(config.train, TrainConfig) and config.train.lr == 1.0


_scalars = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_options = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        _scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=4,
)


@st.composite
def run_configs(draw):
    sampled = draw(st.booleans())
    objective = draw(st.sampled_from(("mle", "selbo") if sampled else ("mle", "elbo", "selbo")))
    exact_only = st.none() if objective == "elbo" else st.none() | st.integers(1, 10**6)
    return RunConfig(
        task=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        task_options=draw(_options),
        objective=objective,
        beta=draw(st.floats(0, 1e6)),
        lam=draw(st.floats(0, 1e6)),
        prior_p=draw(st.floats(1e-9, 1 - 1e-9)),
        kernel_bandwidths=draw(st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=4)),
        layers=draw(st.integers(1, 6)),
        rotations=draw(st.lists(st.sampled_from(["rx", "ry", "rz"]), min_size=1, max_size=3)),
        backend="sampled" if sampled else "statevector",
        shots=draw(st.integers(1, 10**6)) if sampled else draw(exact_only),
        train=TrainConfig(
            steps=draw(st.integers(1, 10**5)),
            lr=draw(st.floats(1e-8, 10)),
            schedule=draw(st.sampled_from(["constant", "cosine", "step"])),
            seed=draw(st.integers(0, 2**63 - 1)),
            grad_clip=draw(st.none() | st.floats(1e-3, 1e3)),
        ),
    )


@settings(max_examples=60, deadline=None)
@given(run_configs())
def test_round_trip_property(config):
    text = to_toml(config)
    expected = _drop_none(config.to_dict())
    if not expected["noise"]:
        del expected["noise"]  # written only when set
    if not expected["baseline"]:
        del expected["baseline"]  # likewise
    if not expected["readout_correction"]:
        del expected["readout_correction"]  # written only when true
    if expected["precision"] == "float64":
        del expected["precision"]  # written only when not the default
    if expected["max_step_seconds"] == 300.0:
        del expected["max_step_seconds"]  # likewise
    assert tomllib.loads(text) == expected
    again = loads_config(text, check_task=False)
    assert again == config
    assert config_hash(again) == config_hash(config)


def test_config_hash_is_a_short_stable_id_of_the_canonical_toml():
    config = loads_config(EXAMPLE)
    digest = config_hash(config)
    assert len(digest) == 12 and all(c in "0123456789abcdef" for c in digest)
    assert digest == hashlib.sha256(to_toml(config).encode()).hexdigest()[:12]
    reordered = RunConfig(task="t", task_options={"b": 2, "a": 1})
    assert config_hash(reordered) == config_hash(RunConfig(task="t", task_options={"a": 1, "b": 2}))
    assert config_hash(apply_overrides(config, ["train.seed=1"])) != digest
    assert config_hash(RunConfig(task="t", beta=1)) == config_hash(RunConfig(task="t", beta=1.0))
    assert len({config, loads_config(to_toml(config)), reordered}) == 2  # hashable


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (
            {"objective": "elbow"},
            ["objective", "'elbow'", "mle, elbo, selbo", "did you mean 'elbo'"],
        ),
        ({"beta": -1.0}, ["beta", "-1.0", ">= 0"]),
        ({"lam": float("inf")}, ["lam", "inf"]),
        ({"prior_p": 1.0}, ["prior_p", "1.0", "(0, 1)"]),
        ({"kernel_bandwidths": []}, ["kernel_bandwidths", "[]"]),
        ({"kernel_bandwidths": [1.0, 0.0]}, ["kernel_bandwidths[1]", "0.0"]),
        ({"analytic_prior": "yes"}, ["analytic_prior", "'yes'"]),
        ({"temperature": 0}, ["temperature", "> 0"]),
        ({"ansatz": "brickwork"}, ["ansatz", "hardware_efficient, product, qhn_reference"]),
        ({"layers": -1}, ["layers", "-1", ">= 0"]),
        ({"ansatz": "qhn_reference", "layers": 0}, ["layers", ">= 1"]),
        ({"rotations": ["ry", "ryy"]}, ["rotations[1]", "'ryy'", "rx, ry, rz"]),
        ({"entangler": "cx"}, ["entangler", "'cx'", "cnot, cz"]),
        ({"topology": "star"}, ["topology", "chain, ring, brick"]),
        ({"init": "zeros"}, ["init", "uniform, small"]),
        ({"init_scale": -0.1}, ["init_scale", "-0.1"]),
        ({"backend": "qpu"}, ["backend", "statevector, sampled"]),
        (
            {"estimator": "adjoint"},
            ["estimator", "auto, backprop, parameter-shift, score-function"],
        ),
        ({"shots": 0}, ["shots", "0", ">= 1"]),
        ({"task": ""}, ["task", "''"]),
        ({"task_options": {"n": None}}, ["task_options.n", "None"]),
        ({"task_options": {"n": 2**70}}, ["task_options.n", "64-bit"]),
    ],
)
def test_run_config_refuses_bad_values_naming_them(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{"task": "t", **overrides})
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"objective": "elbo", "backend": "sampled", "shots": 100}, ["elbo", "sampled", "selbo"]),
        ({"objective": "selbo", "backend": "sampled"}, ["sampled", "shots"]),
        (
            {"objective": "mle", "backend": "sampled", "shots": 10, "estimator": "backprop"},
            ["backprop", "sampled", "auto, parameter-shift"],
        ),
        (
            {"objective": "mle", "backend": "sampled", "shots": 10, "estimator": "score-function"},
            ["score-function", "auto, parameter-shift"],
        ),
        (
            {"objective": "mle", "shots": 100, "train": {"optimizer": "lbfgs"}},
            ["lbfgs", "shots = 100", "adam"],
        ),
        ({"objective": "elbo", "shots": 100}, ["elbo", "shots = 100", "selbo"]),
        ({"objective": "mle", "estimator": "backprop", "shots": 5}, ["backprop", "shots = 5"]),
        ({"objective": "mle", "estimator": "score-function"}, ["score-function", "shots"]),
    ],
)
def test_incompatible_combinations_are_refused(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{"task": "t", **overrides})
    for fragment in fragments:
        assert fragment in str(info.value)


def test_compatible_combinations_and_estimator_resolution():
    sampled = RunConfig(task="t", objective="selbo", backend="sampled", shots=100)
    assert sampled.resolved_estimator == "parameter-shift" and sampled.stochastic
    exact = RunConfig(task="t", estimator="parameter-shift", train={"optimizer": "lbfgs"})
    assert exact.resolved_estimator == "parameter-shift" and not exact.stochastic
    shots = RunConfig(task="t", objective="mle", shots=64)
    assert shots.resolved_estimator == "parameter-shift" and shots.stochastic
    scored = RunConfig(task="t", objective="mle", estimator="score-function", shots=64)
    assert scored.resolved_estimator == "score-function"


def test_task_options_are_copied_and_normalized():
    options = {"pair": (3, 7), "inner": {"k": 1}}
    config = RunConfig(task="t", task_options=options)
    options["inner"]["k"] = 2
    assert config.task_options == {"pair": [3, 7], "inner": {"k": 1}}


def test_from_dict_keys():
    flat = RunConfig.from_dict({"task": "t", "steps": 7, "train": {"lr": 0.1}})
    assert flat.train == TrainConfig(steps=7, lr=0.1)
    with pytest.raises(ConfigError, match="steps is given twice"):
        RunConfig.from_dict({"task": "t", "steps": 7, "train": {"steps": 8}})
    with pytest.raises(ConfigError, match="task is required"):
        RunConfig.from_dict({"objective": "mle"})
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"task": "t", "objectiv": "mle"})
    message = str(info.value)
    assert "'objectiv'" in message and "did you mean 'objective'" in message
    assert "train.steps" in message and "kernel_bandwidths" in message
    with pytest.raises(
        ConfigError, match=r"unknown key 'setps' in \[train\].*did you mean 'steps'"
    ):
        RunConfig.from_dict({"task": "t", "train": {"setps": 10}})


def test_overrides_parse_toml_literals_else_strings():
    base = loads_config(EXAMPLE)
    config = apply_overrides(
        base,
        [
            "train.steps=10",
            "objective=selbo",
            "task_options.n_train=50",
            "task_options.label = hello world",
            "task_options.deep.level=[1, 2.5]",
            'rotations=["ry", "rz"]',
            "analytic_prior=false",
            "lr=0.5",
            "shots=64",
            "train.grad_clip=1",
        ],
        check_task=False,
    )
    assert config.train.steps == 10 and config.train.lr == 0.5 and config.train.grad_clip == 1.0
    assert config.objective == "selbo" and config.analytic_prior is False
    assert config.task_options == {
        "n_train": 50,
        "label": "hello world",
        "deep": {"level": [1, 2.5]},
    }
    assert config.rotations == ("ry", "rz") and config.shots == 64
    assert base.train.steps == 300 and base.objective == "elbo"  # the original is unchanged

    unset = apply_overrides(
        config, ["shots=none", "grad_clip=None", "task_options.label=none"], check_task=False
    )
    assert unset.shots is None and unset.train.grad_clip is None
    assert unset.task_options["label"] == "none"
    dated = apply_overrides(base, ["task_options.day=2024-01-01"], check_task=False)
    assert dated.task_options["day"] == "2024-01-01"  # a TOML date stays the text typed


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("train.steps", ["key=value"]),
        ("objectiv=mle", ["unknown key 'objectiv'", "did you mean 'objective'", "train.steps"]),
        ("train.stepz=3", ["unknown key 'stepz'", "did you mean 'steps'"]),
        ("objective=elbow", ["objective", "'elbow'", "mle, elbo, selbo"]),
        ("train.optimizer=sgd", ["train.optimizer", "'sgd'", "adam, lbfgs"]),
        ("layers=two", ["layers", "'two'"]),
        ("objective.x=1", ["'objective.x'", "not a table"]),
        ("task_options=5", ["task_options", "table"]),
        ("backend=sampled", ["elbo", "sampled", "selbo"]),
    ],
)
def test_bad_overrides_are_refused_naming_key_and_value(override, fragments):
    with pytest.raises(ConfigError) as info:
        apply_overrides(loads_config(EXAMPLE), [override])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("task = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
        load_config(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "t"\nbackend = "gpu"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown backend 'gpu'"):
        load_config(bad)


def test_floats_survive_exactly():
    values = [0.1, 1e-300, 5e-324, 1.7976931348623157e308, 2.0 / 3.0, math.pi]
    config = RunConfig(task="t", task_options={"values": values, "edge": [math.inf, -0.0]})
    again = loads_config(to_toml(config), check_task=False)
    assert again.task_options["values"] == values
    assert again.task_options["edge"][0] == math.inf
    assert math.copysign(1.0, again.task_options["edge"][1]) == -1.0


def test_task_names_and_options_are_checked_against_the_registry():
    from qhn.data import TASKS, task_options

    config = loads_config(EXAMPLE)
    assert config.task in TASKS and set(config.task_options) <= set(task_options(config.task))
    with pytest.raises(ConfigError, match=r"unknown task 'teachr'.*did you mean 'teacher'"):
        apply_overrides(config, ["task=teachr"])
    with pytest.raises(ConfigError) as info:
        apply_overrides(config, ["task_options.n_trian=5"])
    assert "'n_trian'" in str(info.value) and "did you mean 'n_train'" in str(info.value)
    assert "label_noise" in str(info.value)
    with pytest.raises(ConfigError, match="top-level"):
        apply_overrides(config, ["task_options.temperature=2"])
    assert apply_overrides(config, ["task_options.n_train=5"], check_task=False).task == "teacher"


def test_backend_and_estimator_tables_agree_with_the_real_backends():
    from qhn.backends import SampleOnly, StatevectorBackend
    from qhn.backends.mps import MPSBackend
    from qhn.experiments.config import ESTIMATORS_BY_BACKEND
    from qhn.gradients import valid_estimators

    real = {
        "statevector": valid_estimators(StatevectorBackend()),
        "sampled": valid_estimators(SampleOnly(StatevectorBackend())),
        "mps": valid_estimators(MPSBackend()),
    }
    assert {k: set(v) for k, v in ESTIMATORS_BY_BACKEND.items()} == {
        k: set(v) for k, v in real.items()
    }
    for backend, names in real.items():
        for name in ("backprop", "parameter-shift", "score-function"):
            # Each estimator with the shots setting it can use: backprop is exact only.
            shots = None if name == "backprop" and backend in ("statevector", "mps") else 10
            options = {"task": "t", "backend": backend, "estimator": name, "shots": shots}
            options["objective"] = "mle"
            if name in names:
                assert RunConfig(**options).resolved_estimator == name
            else:
                with pytest.raises(ConfigError, match=f"estimator '{name}' cannot run"):
                    RunConfig(**options)
