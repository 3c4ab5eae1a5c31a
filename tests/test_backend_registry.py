"""One backend spec everywhere: ``get_backend`` and the run config's ``backend`` / ``[noise]``."""

from __future__ import annotations

import pytest

from qhn.backends import SampleOnly, StatevectorBackend, registry
from qhn.backends.registry import check_backend_spec, get_backend
from qhn.errors import ConfigError
from qhn.experiments.config import RunConfig
from qhn.experiments.overrides import apply_overrides


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("statevector", "statevector"),
        (" sampled ", "sampled"),
        ("noisy", "noisy"),
        ("qiskit:aer", "qiskit:aer"),
        ("qiskit: fake_torino", "qiskit:fake_torino"),
        ("pennylane:default.mixed", "pennylane:default.mixed"),
    ],
)
def test_valid_specs_are_accepted_without_importing_an_sdk(spec, canonical):
    assert check_backend_spec(spec) == canonical


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("statevectr", "unknown backend 'statevectr'; choose one of: statevector, sampled"),
        ("qiskit:", "unknown backend 'qiskit:'"),
        ("cirq:sim", "unknown backend 'cirq:sim'"),
        (3, "backend must be a spec string"),
    ],
)
def test_invalid_specs_name_the_valid_ones(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_backend_spec(spec)


def test_the_simulator_specs_build_the_simulator_and_its_samples_only_face():
    assert isinstance(get_backend("statevector"), StatevectorBackend)
    sampled = get_backend("sampled", seed=3)
    assert isinstance(sampled, SampleOnly) and not hasattr(sampled, "probs")
    with pytest.raises(ConfigError, match="noiseless"):
        get_backend("statevector", noise={"p1": 0.01})
    with pytest.raises(ConfigError, match="takes no option"):
        get_backend("statevector", shots=3)


def test_a_kind_missing_from_this_version_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(registry._MODULES, "noisy", "qhn.backends.no_such_module:Nope")
    with pytest.raises(ConfigError, match="not part of this version"):
        get_backend("noisy")


def test_a_missing_sdk_names_the_extra_to_install(monkeypatch, tmp_path):
    (tmp_path / "adapter_needing_qiskit.py").write_text("import qiskit\nclass A: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._MODULES, "qiskit", "adapter_needing_qiskit:A")
    monkeypatch.setitem(__import__("sys").modules, "qiskit", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'qhn\[qiskit\]'"):
        get_backend("qiskit:aer")


def test_run_configs_take_any_spec_and_check_what_a_spec_cannot_do():
    assert RunConfig(task="t", backend="qiskit:aer", objective="selbo", shots=100).backend == (
        "qiskit:aer"
    )
    assert RunConfig(task="t", backend="noisy", shots=None).resolved_estimator == (
        "parameter-shift"
    )
    with pytest.raises(ConfigError, match="samples only, so it needs shots"):
        RunConfig(task="t", backend="qiskit:aer", objective="selbo")
    with pytest.raises(ConfigError, match="objective 'elbo' needs exact probabilities"):
        RunConfig(task="t", backend="qiskit:fake_torino", objective="elbo", shots=10)
    with pytest.raises(
        ConfigError,
        match=r"a \[noise\] table needs backend noisy, qiskit:aer-noisy, pennylane:default.mixed",
    ):
        RunConfig(task="t", noise={"p1": 0.01})
    with pytest.raises(ConfigError, match="estimator 'backprop' cannot run"):
        RunConfig(task="t", backend="pennylane:default.qubit", estimator="backprop")
    noisy = apply_overrides(
        RunConfig(task="teacher"), ["backend=noisy", "noise.p1=0.002", "noise.readout=0.01"]
    )
    assert noisy.noise == {"p1": 0.002, "readout": 0.01}


def test_runs_train_on_a_backend_spec_end_to_end(tmp_path):
    import math

    from qhn.experiments.runner import run

    # Readout flips with probability ½ erase every circuit's information: q is uniform, so the
    # exact ELBO run under noise must end with H(q) = n ln 2 whatever it learned.
    noisy = RunConfig(
        task="teacher-tiny",
        layers=1,
        backend="noisy",
        noise={"p1": 0.01, "readout": 0.5},
        train={"steps": 3},
    )
    summary = run(noisy, tmp_path / "noisy", plots=False)
    assert summary["entropy"] == pytest.approx(6 * math.log(2), abs=1e-9)
    assert summary["kl_uniform"] == pytest.approx(0.0, abs=1e-9)
    sampled = RunConfig(
        task="teacher-tiny",
        layers=1,
        objective="selbo",
        backend="qiskit:aer",
        shots=64,
        train={"steps": 2},
    )
    summary = run(sampled, tmp_path / "aer", plots=False)
    assert summary["estimator"] == "parameter-shift" and summary["steps"] == 2
    assert summary["shots"] > 0


def test_the_mps_spec_builds_the_matrix_product_state_simulator():
    from qhn.backends.mps import MPSBackend

    assert check_backend_spec(" mps ") == "mps"
    backend = get_backend("mps", seed=1, noise=None, max_bond=8)
    assert isinstance(backend, MPSBackend) and backend.max_bond == 8
    with pytest.raises(ConfigError, match="backend 'mps' takes only max_bond"):
        get_backend("mps", shots=3)
