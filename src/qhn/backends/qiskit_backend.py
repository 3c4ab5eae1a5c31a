"""Run qhn circuits on Qiskit through the SamplerV2 primitive (extra ``qiskit``).

Targets: ``aer`` (ideal Aer), ``aer-noisy`` (Aer with a noise model built from a ``noise`` table,
see :func:`noise_model`), ``statevector`` (Qiskit's reference ``StatevectorSampler``) and any fake
device of ``qiskit_ibm_runtime.fake_provider`` by its ``.name`` (``fake_torino``: Aer with that
snapshot's gate, readout and relaxation noise, fully offline), and real IBM devices by their name
(``ibm_torino``: the same path, with the device and Runtime's Sampler from
:mod:`qhn.backends.ibm_runtime` and the account saved on the machine).

Conventions: our qubit ``q`` is Qiskit qubit ``q`` (as in :mod:`qhn.circuits.qiskit_convert`) and
is measured into classical bit ``q``, so a transpiler's layout (which physical qubit carries which
logical one, swaps included) never reaches the bits. Qiskit prints classical bit 0 last
(little-endian); reversing the bit axis gives our order (qubit 0 first).

Cost: the circuit becomes a parameterized ``QuantumCircuit`` once and is transpiled once per
(circuit, target) and cached; a whole ``(B, P)`` batch (all ``2P`` shifted rows of a
parameter-shift step) is one PUB with a ``(B, P')`` parameter array, hence one primitive job.
``jobs``, ``executions`` (parameter rows) and ``shots_taken`` count what was spent.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from qhn.backends.base import (
    DEFAULT_MEMORY_BUDGET,
    Capabilities,
    as_param_batch,
    check_sample_memory,
    check_shots,
)
from qhn.backends.noise_model import NoiseModel
from qhn.bits import from_little_endian_bits
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError, choices

__all__ = ["QISKIT_TARGETS", "QiskitBackend", "fake_device_names", "noise_model", "to_qiskit"]

log = logging.getLogger(__name__)

#: Targets that are not fake devices.
QISKIT_TARGETS = ("aer", "aer-noisy", "statevector")
_ONE_QUBIT = ["rx", "ry", "rz", "h", "x"]
_TWO_QUBIT = ["cx", "cz"]
_SEED_HIGH = 2**31 - 1


def _require_qiskit(what: str = "the qiskit backend") -> None:
    try:
        import qiskit  # noqa: F401
        import qiskit_aer  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{what} needs Qiskit and Qiskit Aer: pip install 'qhn[qiskit]'"
        ) from None


def to_qiskit(circuit: Circuit) -> Any:
    """A parameterized ``QuantumCircuit`` for ``circuit``, measured into register ``meas``.

    Our qubit ``q`` is Qiskit qubit ``q`` and is measured into classical bit ``q``; ``θ[j]`` is
    ``ParameterVector('θ', P)[j]``; ``cnot`` becomes ``cx`` (control, target).
    """
    _require_qiskit("to_qiskit")
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector

    theta = ParameterVector("θ", circuit.n_params)
    qc = QuantumCircuit(
        QuantumRegister(circuit.n_qubits, "q"),
        ClassicalRegister(circuit.n_qubits, "meas"),
        name=circuit.name,
    )
    for gate in circuit.gates:
        if gate.param is not None:
            getattr(qc, gate.name)(theta[gate.param], *gate.wires)
        else:
            getattr(qc, "cx" if gate.name == "cnot" else gate.name)(*gate.wires)
    qc.measure(range(circuit.n_qubits), range(circuit.n_qubits))
    return qc


def noise_model(noise: NoiseModel | Mapping[str, object]) -> Any:
    """An Aer ``NoiseModel`` for a ``[noise]`` table or our
    :class:`~qhn.backends.noise_model.NoiseModel` (PastaQ's convention, see there).

    A Pauli channel with probability ``p`` spread evenly over the ``4^k − 1`` non-identity
    Paulis is Qiskit's ``depolarizing_error(λ, k)`` (``(1 − λ)ρ + λ I/2^k``, non-identity Pauli
    mass ``λ(4^k − 1)/4^k``) with ``λ = 4/3·scale·p1`` after every one-qubit gate and
    ``16/15·scale·p2`` after every two-qubit gate. Readout: ``ReadoutError`` with rows
    ``[1 − readout01, readout01]`` (true 0) and ``[readout10, 1 − readout10]`` (true 1).
    """
    _require_qiskit("the aer-noisy target")
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import ReadoutError, depolarizing_error

    model = NoiseModel.coerce(noise)
    aer = AerNoiseModel(basis_gates=[*_ONE_QUBIT, *_TWO_QUBIT])
    if model.gate_p1 > 0:
        aer.add_all_qubit_quantum_error(depolarizing_error(4 / 3 * model.gate_p1, 1), _ONE_QUBIT)
    if model.gate_p2 > 0:
        aer.add_all_qubit_quantum_error(depolarizing_error(16 / 15 * model.gate_p2, 2), _TWO_QUBIT)
    if model.has_readout:
        aer.add_all_qubit_readout_error(ReadoutError(model.confusion().tolist()))
    return aer


def fake_device_names() -> list[str]:
    """Names of the fake devices of ``qiskit_ibm_runtime.fake_provider`` (empty if absent)."""
    return sorted(b.name for b in _fake_backends())


def _fake_backends() -> list[Any]:
    try:
        from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2
    except ImportError:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(FakeProviderForBackendV2().backends())


class QiskitBackend:
    """Sample qhn circuits on a Qiskit target through SamplerV2 (see the module docstring).

    Args:
        target: ``aer``, ``aer-noisy``, ``statevector``, a fake device name (``fake_torino``) or
            a real IBM device name (``ibm_torino``).
        seed: makes runs reproducible when ``sample`` gets no generator: call ``k`` uses the
            ``k``-th draw of a generator seeded with it.
        noise: the ``[noise]`` table ``aer-noisy`` needs (:func:`noise_model`); refused on other
            targets (an empty table is ignored).
        optimization_level: transpiler level for fake devices.
        initial_layout: physical qubits for our qubits on a fake device (default: the
            transpiler's choice).
    """

    def __init__(
        self,
        target: str,
        *,
        seed: int | None = None,
        noise: NoiseModel | Mapping[str, object] | None = None,
        optimization_level: int = 1,
        initial_layout: list[int] | None = None,
    ) -> None:
        _require_qiskit()
        from qiskit_aer import AerSimulator

        self.target = target
        self.jobs = 0
        self.executions = 0
        self.shots_taken = 0
        self._rng = None if seed is None else torch.Generator().manual_seed(int(seed))
        self._cache: dict[Circuit, tuple[Any, list[int]]] = {}
        self._simulators: dict[Circuit, Any] = {}
        self._optimization_level = optimization_level
        self._initial_layout = initial_layout
        self._device = None
        self._runtime = False
        if noise and target != "aer-noisy":
            raise ConfigError(
                f"a noise table applies to qiskit:aer-noisy only, not qiskit:{target}; "
                "a fake device brings its own noise"
            )
        if target == "statevector":
            self._simulator = None
            max_qubits = int(math.log2(DEFAULT_MEMORY_BUDGET // 16))
        elif target in ("aer", "aer-noisy"):
            if target == "aer-noisy" and not noise:
                raise ConfigError(
                    "qiskit:aer-noisy needs a [noise] table (p1, p2, readout, scale); "
                    "use qiskit:aer for the ideal simulator"
                )
            model = noise_model(noise) if target == "aer-noisy" else None
            self._simulator = AerSimulator(noise_model=model)
            max_qubits = self._simulator.num_qubits
        else:
            from qhn.backends.ibm_runtime import is_runtime_target, runtime_device

            self._runtime = is_runtime_target(target)
            self._device = runtime_device(target) if self._runtime else self._fake_device(target)
            self._simulator = None
            max_qubits = self._device.num_qubits
        if initial_layout is not None and self._device is None:
            raise ConfigError(f"initial_layout applies to fake devices only, not {target!r}")
        self.capabilities = Capabilities(exact_probs=False, backprop=False, max_qubits=max_qubits)

    def __repr__(self) -> str:
        return f"QiskitBackend({self.target!r})"

    @staticmethod
    def _fake_device(name: str) -> Any:
        backends = _fake_backends()
        if not backends:
            raise ConfigError(
                f"qiskit:{name} is not one of {choices(QISKIT_TARGETS)} and fake devices need "
                "qiskit-ibm-runtime: pip install 'qhn[qiskit]'"
            )
        for backend in backends:
            if backend.name == name:
                return backend
        names = sorted(b.name for b in backends)
        raise ConfigError(
            f"unknown qiskit target {name!r}; choose one of: {choices([*QISKIT_TARGETS, *names])}"
        )

    def compiled(self, circuit: Circuit) -> tuple[Any, list[int]]:
        """The circuit as run on this target, cached, and our parameter index of each of its
        parameters (in Qiskit's order; the transpiler may drop some, e.g. a final RZ)."""
        if circuit in self._cache:
            return self._cache[circuit]
        width, limit = circuit.n_qubits, self.capabilities.max_qubits
        if limit is not None and width > limit:
            raise ConfigError(
                f"{circuit.name} needs {width} qubits but qiskit:{self.target} has {limit}; "
                "use a smaller circuit or a larger device"
            )
        qc = to_qiskit(circuit)
        if self._device is not None:
            from qiskit.transpiler import generate_preset_pass_manager

            manager = generate_preset_pass_manager(
                optimization_level=self._optimization_level,
                backend=self._device,
                initial_layout=self._initial_layout,
                seed_transpiler=0,
            )
            qc = manager.run(qc)
            log.debug("transpiled %s onto %s: %d ops", circuit.name, self.target, qc.size())
        # Aer and the statevector sampler run our gates natively: no rewrite, so the noise
        # model lands after exactly the gates of the qhn circuit.
        order = [int(p.index) for p in qc.parameters]
        self._cache[circuit] = (qc, order)
        if self._device is not None and not self._runtime:
            self._simulators[circuit] = self._device_simulator(qc)
        return qc, order

    def readout_confusion(self, circuit: Circuit) -> torch.Tensor:
        """The readout confusion matrix of each of ``circuit``'s bits on this fake device,
        ``(n, 2, 2)`` (row: true bit, column: read bit): the snapshot's rates (as the simulator
        applies them) on the physical qubit measured into classical bit ``q``, found in the
        transpiled circuit, so layouts and swaps are followed. Identity where none is given."""
        if self._device is None:
            raise ConfigError(f"qiskit:{self.target} is not a device snapshot: no readout rates")
        from qiskit_aer.noise.device import basic_device_readout_errors

        compiled, _ = self.compiled(circuit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            errors = basic_device_readout_errors(None, target=self._device.target)
        rates = {qubits[0]: error.probabilities for qubits, error in errors}
        confusion = torch.eye(2, dtype=torch.float64).repeat(circuit.n_qubits, 1, 1)
        for item in compiled.data:
            if item.operation.name == "measure":
                physical = compiled.find_bit(item.qubits[0]).index
                if physical in rates:
                    bit = compiled.find_bit(item.clbits[0]).index
                    confusion[bit] = torch.as_tensor(rates[physical], dtype=torch.float64)
        return confusion

    def _device_simulator(self, compiled: Any) -> Any:
        """Aer with the device snapshot's noise (as ``NoiseModel.from_backend`` builds it: gate
        errors with thermal relaxation, readout errors) on the physical qubits ``compiled``
        touches.

        Aer re-processes its whole noise model on every run (~3.5 s per job for 133 qubits), and
        building the errors of all 133 qubits takes ~5 s; errors on qubits the circuit never
        touches cannot act, so they are neither built (:func:`_touched_target`) nor added: same
        counts under the same seed at a fraction of the cost. Our circuits hold no delays, so
        the idle-relaxation pass is not needed.
        """
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel
        from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors

        used = {compiled.find_bit(q).index for item in compiled.data for q in item.qubits}
        target = _touched_target(self._device.target, used)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            readout = basic_device_readout_errors(None, target=target)
            gates = basic_device_gate_errors(None, target=target)
        model = NoiseModel(basis_gates=list(self._device.operation_names))
        for qubits, error in readout:
            model.add_readout_error(error, qubits)
        for name, qubits, error in gates:
            model.add_quantum_error(error, name, qubits)
        return AerSimulator(noise_model=model)

    def _sdk_seed(self, generator: torch.Generator | None) -> int | None:
        source = generator if generator is not None else self._rng
        if source is None:
            return None
        return int(torch.randint(_SEED_HIGH, (1,), generator=source))

    def sample(
        self,
        circuit: Circuit,
        params: torch.Tensor,
        shots: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Measure every parameter row ``shots`` times in ONE primitive job.

        Shapes: params ``(B, P)`` → bits ``(B, shots, n)`` uint8; ``(P,)`` → ``(shots, n)``.
        """
        check_shots(shots)
        batch, batched = as_param_batch(circuit, params)
        rows = batch.shape[0]
        check_sample_memory(rows, shots, circuit.n_qubits, DEFAULT_MEMORY_BUDGET)
        qc, order = self.compiled(circuit)
        values = batch.detach().to(torch.float64).cpu().numpy()[:, order]
        seed = self._sdk_seed(generator)
        simulator = self._simulators.get(circuit, self._simulator)
        if self._runtime:
            from qhn.backends.ibm_runtime import runtime_sampler

            sampler = runtime_sampler(self._device, seed)
        elif simulator is None:
            from qiskit.primitives import StatevectorSampler

            sampler = StatevectorSampler(seed=seed)
        else:
            from qiskit_aer.primitives import SamplerV2

            sampler = SamplerV2.from_backend(simulator, seed=seed)
        # Without parameters a PUB has no batch shape: draw all rows' shots at once instead.
        pub = (qc, values, shots) if order else (qc, None, rows * shots)
        result = sampler.run([pub]).result()
        self.jobs += 1
        self.executions += rows
        self.shots_taken += rows * shots
        packed = result[0].data.meas.array.reshape(rows, shots, -1)
        n = circuit.n_qubits
        little = np.unpackbits(packed, axis=-1)[..., -n:]
        # Qiskit's bit strings print classical bit 0 last; our qubit 0 comes first.
        bits = from_little_endian_bits(torch.from_numpy(np.ascontiguousarray(little))).contiguous()
        return bits if batched else bits[0]


def _touched_target(target: Any, qubits: set[int]) -> Any:
    """A copy of the device ``target`` that keeps only the instruction properties whose qubits
    all lie in ``qubits`` (same qubit count, indices and qubit properties), so Aer's device
    noise builders make errors for those qubits alone. Global instructions (control flow) carry
    no properties, hence no errors, and are left out."""
    from qiskit.transpiler import Target

    touched = Target(num_qubits=target.num_qubits, qubit_properties=target.qubit_properties)
    for name, properties in target.items():
        if properties is None or None in properties:
            continue
        kept = {q: p for q, p in properties.items() if set(q) <= qubits}
        if kept:
            touched.add_instruction(target.operation_from_name(name), kept, name=name)
    return touched
