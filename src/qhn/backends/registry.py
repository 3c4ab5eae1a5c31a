"""One backend spec, everywhere: ``get_backend("statevector" | "sampled" | "noisy" |
"qiskit:<target>" | "pennylane:<device>")``.

- ``statevector``: the exact torch simulator; ``sampled``: the same behind :class:`SampleOnly`,
  the code path of a quantum computer;
- ``noisy``: our noisy simulator (density matrix up to a qubit limit, Pauli trajectories above);
- ``qiskit:aer``, ``qiskit:aer-noisy``, ``qiskit:statevector``, ``qiskit:<fake device>`` (any
  ``qiskit_ibm_runtime.fake_provider`` backend by its ``.name``, e.g. ``qiskit:fake_torino``),
  ``qiskit:ibm_<device>`` (a real IBM device through Qiskit Runtime and a saved account);
- ``pennylane:<device>``: any installed PennyLane device (``pennylane:default.qubit``, …;
  ``pennylane:default.mixed`` takes a noise table and gives exact noisy probabilities);
- ``mps``: the matrix-product-state simulator (exact; option ``max_bond`` truncates).

SDK adapters live in their own modules, imported only when their spec is asked for, so
``import qhn`` imports no SDK. :func:`check_backend_spec` validates a spec's form without
importing anything (configs call it); :func:`get_backend` builds the backend.
"""

from __future__ import annotations

import importlib
from typing import Any

from qhn.backends.base import Backend
from qhn.errors import ConfigError

__all__ = ["BACKEND_KINDS", "check_backend_spec", "get_backend", "is_simulator_spec"]

#: Plain specs, and the prefixes of SDK specs (``prefix:target``).
PLAIN = ("statevector", "sampled", "noisy")
PREFIXES = ("qiskit", "pennylane")
RESERVED: dict[str, str] = {}
BACKEND_KINDS = (*PLAIN, *(f"{p}:<target>" for p in PREFIXES), "mps")

#: Where each kind's class lives, imported on first use.
_MODULES = {
    "noisy": "qhn.backends.noisy:NoisyBackend",
    "qiskit": "qhn.backends.qiskit_backend:QiskitBackend",
    "pennylane": "qhn.backends.pennylane_backend:PennyLaneBackend",
    "mps": "qhn.backends.mps:MPSBackend",
}
_EXTRAS = {"qiskit": "qiskit", "pennylane": "pennylane"}


def _valid() -> str:
    return (
        "statevector, sampled, noisy, mps, qiskit:aer, qiskit:aer-noisy, qiskit:statevector, "
        "qiskit:<fake device, e.g. fake_torino>, qiskit:<IBM device, e.g. ibm_torino>, "
        "pennylane:<device, e.g. default.qubit>"
    )


def check_backend_spec(spec: object) -> str:
    """Return ``spec`` stripped if it has a valid form (without importing any SDK), else raise
    one :class:`ConfigError` listing the valid specs."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"backend must be a spec string, got {spec!r}; choose one of: {_valid()}")
    spec = spec.strip()
    if spec in RESERVED:
        raise ConfigError(f"backend {spec!r} is reserved for {RESERVED[spec]}; choose: {_valid()}")
    if spec in PLAIN or spec == "mps":
        return spec
    prefix, sep, target = spec.partition(":")
    if sep and prefix in PREFIXES and target.strip():
        return f"{prefix}:{target.strip()}"
    raise ConfigError(f"unknown backend {spec!r}; choose one of: {_valid()}")


def is_simulator_spec(spec: str) -> bool:
    """Whether ``spec`` is our exact statevector simulator (which serves probabilities and
    backprop); every other backend is used through samples or its own capabilities."""
    return check_backend_spec(spec) == "statevector"


def _load(kind: str) -> Any:
    module_name, _, attribute = _MODULES[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise ConfigError(
                f"backend kind {kind!r} is not part of this version of qhn; choose one of: "
                f"{', '.join(k for k in PLAIN if k not in _MODULES)}"
            ) from None
        extra = _EXTRAS.get(kind)
        if extra is not None and (error.name or "").split(".")[0] == extra:
            raise ConfigError(
                f"backend {kind!r} needs {extra}: pip install 'qhn[{extra}]'"
            ) from None
        raise
    return getattr(module, attribute)


def get_backend(spec: str, **options: Any) -> Backend:
    """The backend named by ``spec`` (see the module docstring), built with ``options``
    (``seed``, ``noise`` — a table of noise rates — where the backend takes them; options a
    backend does not take are refused)."""
    spec = check_backend_spec(spec)
    if spec in ("statevector", "sampled"):
        unknown = sorted(set(options) - {"seed", "noise", "precision"})
        if unknown:
            raise ConfigError(f"backend {spec!r} takes no option(s) {', '.join(unknown)}")
        if options.get("noise"):
            raise ConfigError(
                f"backend {spec!r} is noiseless; a [noise] table needs backend 'noisy' or "
                "'qiskit:aer-noisy'"
            )
        import torch

        from qhn.backends.sample_only import SampleOnly
        from qhn.backends.statevector import StatevectorBackend

        dtypes = {"float64": torch.float64, "float32": torch.float32}
        precision = options.get("precision", "float64")
        if precision not in dtypes:
            raise ConfigError(f"precision must be 'float64' or 'float32', got {precision!r}")
        backend = StatevectorBackend(dtype=dtypes[precision])
        return backend if spec == "statevector" else SampleOnly(backend)
    if spec == "mps":
        unknown = sorted(set(options) - {"seed", "noise", "max_bond"})
        if unknown or options.get("noise"):
            raise ConfigError(
                f"backend 'mps' takes only max_bond (and seed), got {', '.join(unknown) or 'noise'}"
            )
        return _load("mps")(max_bond=options.get("max_bond"))
    if spec == "noisy":
        return _load("noisy")(noise=options.pop("noise", None), **options)
    prefix, _, target = spec.partition(":")
    return _load(prefix)(target, **options)
