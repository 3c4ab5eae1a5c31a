"""``qiskit:ibm_<device>``: the real-device path through Qiskit Runtime. No account or network
here, so the service is replaced by one that hands out an offline snapshot; Runtime then runs
its own Sampler in local testing mode, the code path a real device takes after the service."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("qiskit_aer")
runtime = pytest.importorskip("qiskit_ibm_runtime")

from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qhn.backends.registry import get_backend  # noqa: E402
from qhn.bits import bits_to_index  # noqa: E402
from qhn.circuits.ansatz import product  # noqa: E402
from qhn.circuits.ir import Circuit, Gate  # noqa: E402
from qhn.errors import ConfigError  # noqa: E402


class _Service:
    """Stands in for QiskitRuntimeService with an account that owns ``ibm_manila``."""

    def __init__(self, *args, **kwargs):
        self.asked = []

    def backend(self, name):
        if name != "ibm_manila":
            raise runtime.exceptions.QiskitBackendNotFoundError("No backend matches the criteria.")
        return FakeManilaV2()


class _NoAccount:
    def __init__(self, *args, **kwargs):
        raise runtime.accounts.AccountNotFoundError("Unable to find account.")


def test_without_a_saved_account_one_line_says_how_to_save_one(monkeypatch):
    monkeypatch.setattr(runtime, "QiskitRuntimeService", _NoAccount)
    with pytest.raises(ConfigError) as error:
        get_backend("qiskit:ibm_torino")
    text = str(error.value)
    assert "\n" not in text and "save_account" in text and "qiskit:fake_torino" in text


def test_a_device_the_account_lacks_is_named(monkeypatch):
    monkeypatch.setattr(runtime, "QiskitRuntimeService", _Service)
    with pytest.raises(ConfigError, match="no device 'ibm_nowhere'"):
        get_backend("qiskit:ibm_nowhere")


def test_runtime_sampler_returns_each_rows_bits_in_our_order_in_one_job(monkeypatch):
    """Two rows prepare two different basis states (RY(π) flips a qubit, RY(0) leaves it); after
    transpilation onto the device and Runtime's primitive, each row's most frequent bitstring is
    its own state in qhn's order (qubit 0 first), from one job."""
    monkeypatch.setattr(runtime, "QiskitRuntimeService", _Service)
    backend = get_backend("qiskit:ibm_manila", seed=5)
    assert backend.capabilities.max_qubits == 5
    circuit = Circuit(4, tuple(Gate("ry", (q,), q) for q in range(4)), name="basis")
    states = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 1]], dtype=torch.uint8)
    bits = backend.sample(circuit, states.double() * torch.pi, 400)
    assert bits.shape == (2, 400, 4) and bits.dtype == torch.uint8
    assert backend.jobs == 1 and backend.executions == 2 and backend.shots_taken == 800
    for row in range(2):
        mode = int(torch.mode(bits_to_index(bits[row])).values)
        assert mode == int(bits_to_index(states[row]))
        # Snapshot readout and gate errors flip a few percent of bits, never most of them.
        assert float((bits[row] != states[row]).double().mean()) < 0.15


def test_a_circuit_wider_than_the_device_is_refused_before_any_job(monkeypatch):
    monkeypatch.setattr(runtime, "QiskitRuntimeService", _Service)
    backend = get_backend("qiskit:ibm_manila")
    with pytest.raises(ConfigError, match="needs 6 qubits but qiskit:ibm_manila has 5"):
        backend.sample(product(6), torch.zeros(6), 10)
    assert backend.jobs == 0


def test_readout_correction_takes_the_devices_calibrated_rates(monkeypatch):
    """A real device's readout rates come from its target as a snapshot's do: the stand-in
    account's ibm_manila gives the rates of the fake_manila snapshot, bit by bit."""
    from qhn.backends.qiskit_backend import QiskitBackend
    from qhn.inference.readout_correction import check_readout_config, readout_confusion

    check_readout_config("selbo", "qiskit:ibm_torino", {})
    monkeypatch.setattr(runtime, "QiskitRuntimeService", _Service)
    circuit = product(3)
    device = readout_confusion("qiskit:ibm_manila", get_backend("qiskit:ibm_manila"), {}, circuit)
    snapshot = QiskitBackend("fake_manila").readout_confusion(circuit)
    assert device.shape == (3, 2, 2)
    assert torch.equal(device, snapshot)
    assert not torch.equal(device, torch.eye(2, dtype=torch.float64).expand(3, 2, 2))
