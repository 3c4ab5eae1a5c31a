"""The noise model of the ``noisy`` backend and the tensor operations that apply it.

Gate noise (PastaQ's convention): after every one-qubit gate a Pauli channel with probability
``p = scale·p1`` spread evenly over the three non-identity Paulis, and after every two-qubit gate
one with ``p = scale·p2`` spread over the fifteen non-identity two-qubit Paulis:

    E(ρ) = (1 − p)·ρ + p/(4^k − 1) · Σ_{P ≠ I} P ρ P.

Since ``Σ_P P ρ P = 2^k · Tr_w(ρ) ⊗ I`` over all ``4^k`` Paulis on the ``k`` wires ``w``, this is
the depolarizing map ``E(ρ) = (1 − λ)ρ + λ · Tr_w(ρ) ⊗ I/2^k`` with ``λ = 4^k p/(4^k − 1)``
(Qiskit's ``depolarizing_error(λ, k)``).

Readout noise is classical: a measured bit flips ``0 → 1`` with probability ``readout01`` and
``1 → 0`` with ``readout10``, independently per qubit, i.e. the confusion matrix
``A = [[1 − readout01, readout01], [readout10, 1 − readout10]]`` (row: true bit, column: read bit)
acting on the outcome distribution as ``p' = (⊗_q A)ᵀ p``.

Tensors here hold ``m`` two-level axes after a batch axis, shape ``(B, 2, …, 2)``: a state vector
(``m = n``) or a density matrix (``m = 2n``: row axes ``1..n``, column axes ``n+1..2n``; qubit 0
first, so a plain reshape gives our index order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from qhn.errors import ConfigError, choices

__all__ = [
    "NOISE_KEYS",
    "NoiseModel",
    "apply_matrix",
    "apply_readout",
    "apply_superop",
    "superop",
    "superop_pair",
]

#: Keys of a ``[noise]`` table.
NOISE_KEYS = ("p1", "p2", "readout", "readout01", "readout10", "scale")


def _probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"noise {name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"noise {name} must be a probability in [0, 1], got {value!r}")
    return value


@dataclass(frozen=True)
class NoiseModel:
    """Depolarizing gate noise and readout flips; see the module docstring for the maps.

    ``p1``/``p2``: Pauli-error probability after each one-/two-qubit gate, both multiplied by
    ``scale`` (the reference study's ``x``). ``readout01``: P(read 1 | bit 0); ``readout10``:
    P(read 0 | bit 1).
    """

    p1: float = 0.0
    p2: float = 0.0
    readout01: float = 0.0
    readout10: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p1", "p2", "readout01", "readout10"):
            object.__setattr__(self, name, _probability(name, getattr(self, name)))
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ConfigError(f"noise scale must be a number >= 0, got {scale!r}")
        if not (math.isfinite(scale) and scale >= 0):
            raise ConfigError(f"noise scale must be a finite number >= 0, got {scale!r}")
        object.__setattr__(self, "scale", float(scale))
        for name in ("p1", "p2"):
            if self.scale * getattr(self, name) > 1.0:
                raise ConfigError(
                    f"noise scale·{name} = {self.scale} × {getattr(self, name)} exceeds 1; "
                    f"use a smaller scale or {name}"
                )

    @classmethod
    def from_dict(cls, table: Mapping[str, object]) -> NoiseModel:
        """Build from a ``[noise]`` table with keys :data:`NOISE_KEYS`; ``readout`` sets both
        flip rates (symmetric) and may not be combined with ``readout01``/``readout10``."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"a noise table must be a mapping, got {type(table).__name__}")
        unknown = sorted(str(k) for k in table if k not in NOISE_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown noise key(s) {choices(unknown)}; valid keys: {choices(NOISE_KEYS)}"
            )
        values = dict(table)
        if "readout" in values:
            if "readout01" in values or "readout10" in values:
                raise ConfigError(
                    "noise: give either readout (symmetric) or readout01/readout10, not both"
                )
            values["readout01"] = values["readout10"] = values.pop("readout")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def coerce(cls, noise: NoiseModel | Mapping[str, object] | None) -> NoiseModel:
        """A :class:`NoiseModel` from a model, a ``[noise]`` table, or None (noiseless)."""
        if noise is None:
            return cls()
        if isinstance(noise, NoiseModel):
            return noise
        return cls.from_dict(noise)

    @property
    def gate_p1(self) -> float:
        """Effective one-qubit Pauli-error probability ``scale·p1``."""
        return self.scale * self.p1

    @property
    def gate_p2(self) -> float:
        """Effective two-qubit Pauli-error probability ``scale·p2``."""
        return self.scale * self.p2

    def gate_error(self, arity: int) -> float:
        """Pauli-error probability after a gate on ``arity`` wires."""
        return self.gate_p1 if arity == 1 else self.gate_p2

    @property
    def has_readout(self) -> bool:
        return self.readout01 > 0 or self.readout10 > 0

    def confusion(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The readout confusion matrix ``A`` (row: true bit, column: read bit), ``(2, 2)``."""
        r01, r10 = self.readout01, self.readout10
        return torch.tensor([[1 - r01, r01], [r10, 1 - r10]], dtype=dtype)


def apply_matrix(x: torch.Tensor, matrix: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """Contract a ``2^k × 2^k`` matrix into ``k`` two-level axes: ``x' = M·x`` on those axes.

    The first axis in ``axes`` is the most significant in ``M``'s index. Shapes: ``x (B, 2, …, 2)``,
    ``matrix (B, d, d)`` or ``(1, d, d)`` with ``d = 2^k`` → like ``x``. Autograd-safe (no
    in-place writes).
    """
    k, ndim = len(axes), x.ndim
    tail = tuple(range(ndim - k, ndim))
    moved = x.movedim(tuple(axes), tail)
    shape = moved.shape
    out = torch.matmul(moved.reshape(shape[0], -1, 2**k), matrix.transpose(-1, -2))
    return out.reshape(shape).movedim(tail, tuple(axes))


def apply_readout(probs: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """Outcome distribution after readout flips: ``p' = (⊗_q A)ᵀ p``.

    Shapes: ``(B, 2**n)`` → ``(B, 2**n)``. Differentiable.
    """
    if not noise.has_readout:
        return probs
    batch, size = probs.shape
    n = size.bit_length() - 1
    a_t = noise.confusion(probs.dtype).to(probs.device).T.unsqueeze(0)
    x = probs.reshape((batch,) + (2,) * n)
    for q in range(n):
        x = apply_matrix(x, a_t, (1 + q,))
    return x.reshape(batch, size)


def superop(u: torch.Tensor, p: float) -> torch.Tensor:
    """The map ``ρ ↦ E_p(U ρ U†)`` on ``k`` wires as a ``d² × d²`` matrix on ``vec(ρ)``
    (``d = 2^k``, index ``d·i + j`` for ``ρ_ij``):
    ``((1 − λ)·I + (λ/d)·|vec I⟩⟨vec I|) · (U ⊗ Ū)`` with ``λ = d²p/(d² − 1)``.

    Shapes: ``u (B, d, d)`` → ``(B, d², d²)``.
    """
    batch, d = u.shape[0], u.shape[-1]
    s = (u[:, :, None, :, None] * u.conj()[:, None, :, None, :]).reshape(batch, d * d, d * d)
    if p <= 0:
        return s
    lam = d * d * p / (d * d - 1)
    vec_i = torch.eye(d, dtype=s.dtype, device=s.device).reshape(-1)
    eye = torch.eye(d * d, dtype=s.dtype, device=s.device)
    return ((1 - lam) * eye + (lam / d) * torch.outer(vec_i, vec_i)) @ s


def superop_pair(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Two one-qubit superoperators ``(B, 4, 4)`` on wires ``(a, b)`` as one ``(B, 16, 16)``
    in the two-qubit ordering ``(r_a, r_b, c_a, c_b)`` of :func:`superop`."""
    batch = max(first.shape[0], second.shape[0])
    x = first.expand(batch, 4, 4).reshape(batch, 2, 2, 2, 2)
    y = second.expand(batch, 4, 4).reshape(batch, 2, 2, 2, 2)
    return torch.einsum("zaceg,zbdfh->zabcdefgh", x, y).reshape(batch, 16, 16)


def apply_superop(rho: torch.Tensor, s: torch.Tensor, wires: Sequence[int], n: int) -> torch.Tensor:
    """Apply a superoperator on ``k`` wires (``(B, 4^k, 4^k)``, ordering: row bits of ``wires``,
    then their column bits) to density matrices flattened as ``(B, 4**n)`` (row bits, then
    column bits). The ``2k`` axes are moved to the front and contracted in one matrix product,
    far faster than strided elementwise products. Autograd-safe."""
    batch, k = rho.shape[0], len(wires)
    axes = tuple(1 + q for q in wires) + tuple(1 + n + q for q in wires)
    front = tuple(range(1, 1 + 2 * k))
    moved = rho.reshape((batch,) + (2,) * (2 * n)).movedim(axes, front)
    shape = moved.shape
    out = torch.matmul(s, moved.reshape(batch, 4**k, -1)).reshape(shape)
    return out.movedim(front, axes).reshape(batch, -1)
