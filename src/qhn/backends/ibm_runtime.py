"""Real IBM Quantum devices through Qiskit Runtime: ``qiskit:ibm_<device>`` (extra ``qiskit``).

Nothing else in the code path changes: :class:`qhn.backends.qiskit_backend.QiskitBackend`
transpiles the circuit once against the device's target (as for a fake snapshot), sends a whole
``(B, P)`` parameter batch as one PUB, counts jobs, executions and shots, and returns bits in qhn's
order. This module supplies the two pieces that differ from an offline snapshot:

- the device, from :class:`qiskit_ibm_runtime.QiskitRuntimeService` with the account saved on
  this machine (once: ``QiskitRuntimeService.save_account(token=..., instance=...,
  channel="ibm_quantum_platform")``; see :data:`ACCOUNT_HINT`);
- the primitive, Runtime's client-side ``Sampler`` in job mode (``qiskit_ibm_runtime.
  executor_sampler``; the older ``SamplerV2`` where that module does not exist yet).

Handed an offline fake backend instead (tests do), Runtime runs the same primitive in its local
testing mode on Aer with the snapshot's noise; then, and only then, a seed applies.
"""

from __future__ import annotations

from typing import Any

from qhn.errors import ConfigError

__all__ = [
    "ACCOUNT_HINT",
    "RUNTIME_PREFIX",
    "is_runtime_target",
    "runtime_device",
    "runtime_sampler",
]

#: Targets of real devices start with this (IBM's device names do: ``ibm_torino``, ``ibm_fez``).
RUNTIME_PREFIX = "ibm_"
#: How to give this machine an account, in one line.
ACCOUNT_HINT = (
    "save one once with QiskitRuntimeService.save_account(token=..., instance=..., "
    'channel="ibm_quantum_platform")'
)


def is_runtime_target(target: str) -> bool:
    """Whether a ``qiskit:`` target names a real IBM device (``ibm_torino``)."""
    return target.startswith(RUNTIME_PREFIX)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def runtime_device(name: str) -> Any:
    """The IBM device ``name`` of the saved account (a ``BackendV2``), or one
    :class:`ConfigError` naming what is missing: the package, the account or the device."""
    try:
        from qiskit_ibm_runtime import QiskitRuntimeService
    except ImportError:
        raise ConfigError(
            f"qiskit:{name} needs qiskit-ibm-runtime: pip install 'qhn[qiskit]'"
        ) from None
    try:
        service = QiskitRuntimeService()
    except Exception as error:  # the service raises several account and network errors
        raise ConfigError(
            f"qiskit:{name} needs an IBM Quantum account on this machine ({_first_line(error)}); "
            f"{ACCOUNT_HINT}, or use an offline snapshot such as qiskit:fake_{name[4:]}"
        ) from None
    try:
        return service.backend(name)
    except Exception as error:
        raise ConfigError(
            f"IBM Quantum gives this account no device {name!r} ({_first_line(error)}); "
            "list yours with QiskitRuntimeService().backends()"
        ) from None


def runtime_sampler(device: Any, seed: int | None) -> Any:
    """Runtime's Sampler in job mode on ``device``. ``seed`` seeds the simulator of Runtime's
    local testing mode (an offline fake backend); a real device ignores it."""
    try:
        from qiskit_ibm_runtime.executor_sampler import Sampler
    except ImportError:  # qiskit-ibm-runtime < 0.50
        from qiskit_ibm_runtime import SamplerV2 as Sampler
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    sampler = Sampler(mode=device)
    if seed is not None and isinstance(device, FakeBackendV2):
        sampler.options.simulator.seed_simulator = int(seed)
    return sampler
