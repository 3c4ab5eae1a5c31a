"""Real rotations in scaled form: one fused multiply-add per amplitude and gate instead of two.

A real rotation ``R = [[c, −s], [s, c]]`` (a product of RY gates) is a scalar times a matrix with
a unit diagonal or a unit anti-diagonal::

    R = c · [[1, −t], [t, 1]],  t = s/c   (form :data:`UNIT_DIAGONAL`, where |c| ≥ |s|)
    R = s · [[k, −1], [1, k]],  k = c/s   (form :data:`UNIT_ANTIDIAGONAL`, where |s| > |c|)

so each output is ``x ± t·y``: one multiply-add, where a general 2×2 takes a multiply and a
multiply-add. Choosing the form by the larger of ``|c|, |s|`` keeps ``|t|, |k| ≤ 1``, and the
rounding of each output stays that of the unscaled product (relative error is scale-free).

The scalars are not dropped: in each sweep the first gate keeps the general form and takes the
product of the other gates' scalars, so every sweep stays norm-preserving (no overflow or
underflow builds up across sweeps, in float32 too). :func:`scaled_rotations` chooses the forms
per gate and per row; :func:`qhn.backends.sweep_kernels.rotation_rows` and
:func:`~qhn.backends.sweep_kernels.rotation_pair` apply them.
"""

from __future__ import annotations

import numpy as np

from qhn.backends.sweep_kernels import (
    DIAGONAL,
    GATE,
    GATE_PAIR,
    GENERAL,
    LOW_GATES,
    UNIT_ANTIDIAGONAL,
    UNIT_DIAGONAL,
)

__all__ = ["rotation_forms", "scaled_rotations", "scaled_rotations_back", "sweep_gates"]


def rotation_forms(mats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each gate's form and scalar: ``mats`` ``(G, B, 2, 2)`` → forms ``(G, B)`` int64 and the
    scalars ``c`` or ``s`` (1 where general). A real matrix is a rotation when ``m00 = m11`` and
    ``m01 = −m10`` exactly; complex matrices are all general."""
    forms = np.zeros(mats.shape[:2], dtype=np.int64)
    if np.iscomplexobj(mats):
        return forms, np.ones(mats.shape[:2], dtype=mats.real.dtype)
    c, s = mats[..., 0, 0], mats[..., 1, 0]
    rotation = (mats[..., 1, 1] == c) & (mats[..., 0, 1] == -s) & ((c != 0) | (s != 0))
    diagonal = rotation & (np.abs(c) >= np.abs(s))
    antidiagonal = rotation & ~diagonal
    forms[diagonal], forms[antidiagonal] = UNIT_DIAGONAL, UNIT_ANTIDIAGONAL
    return forms, np.where(diagonal, c, np.where(antidiagonal, s, 1.0))


def scaled_rotations(
    sweeps: np.ndarray, ops: np.ndarray, mats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gate matrices in scaled form where they are real rotations, and their forms.

    ``mats`` ``(G, B, 2, 2)`` → ``(scaled (G, B, 2, 2), forms (G, B) int64)``, the forms as
    :func:`rotation_forms` gives them. In each sweep the first gate stays general and is
    multiplied by the scalars of the sweep's other rotations. Complex matrices are returned as
    they are, all general.
    """
    forms, scale = rotation_forms(mats)
    return _scale_hosts(sweeps, ops, mats, forms, scale)


def _scale_hosts(sweeps, ops, mats, forms, scale) -> tuple[np.ndarray, np.ndarray]:
    """``mats / scale``, except each sweep's first gate: general, times the others' scalars
    (``forms`` is updated in place)."""
    if np.iscomplexobj(mats):
        return mats, forms
    scaled = mats / scale[..., None, None]  # c/c and s/s are exactly 1
    for _, _, start, stop, _, _ in sweeps:
        gates = sweep_gates(ops[start:stop])
        if gates:
            host, product = gates[0], np.prod(scale[gates[1:]], axis=0)
            scaled[host] = mats[host] * product[:, None, None]
            forms[host] = GENERAL
    return np.ascontiguousarray(scaled), forms


def sweep_gates(ops: np.ndarray) -> list[int]:
    """A sweep's gate matrices (rows of its operations ``ops``) in the order it applies them
    (a pair: ``u``, then ``v``; low gates: bits 0, 1, …)."""
    return [g for op in ops for g in _op_gates(op)]


def _op_gates(op: np.ndarray) -> list[int]:
    kind = int(op[0])
    if kind == LOW_GATES:  # (kind, bits, first matrix, 0, 0)
        return list(range(int(op[2]), int(op[2]) + int(op[1])))
    return [int(op[c]) for c in _GATE_COLUMNS[kind]]


#: Columns of an operation row that hold gate matrices, by kind (register operations aside).
_GATE_COLUMNS = {GATE: [2], DIAGONAL: [], GATE_PAIR: [2, 4]}


def scaled_rotations_back(
    sweeps: np.ndarray, ops: np.ndarray, mats: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward pass's matrices, forms and gradient factors
    (:mod:`qhn.backends.sweep_kernels_back`).

    Walking a sweep in reverse, each scaled rotation un-applied leaves ψ and λ divided by its
    scalar ``σ``, so a gate's sums come out divided by ``F² = Π σ²`` over the rotations undone
    before it (and a rotation's tangent sum, taken on its scaled matrix, by its own ``σ``):
    ``factors[m, row]`` multiplies them back. The sweep's first gate, undone last, stays general
    and takes ``P = Π σ`` of the others, which restores ψ and λ; its sum is then off by ``P``
    only (λ still carries ``1/P``, ψ_in not). Shapes: ``mats`` ``(G, B, 2, 2)`` → scaled
    ``(G, B, 2, 2)``, forms ``(G, B)`` int64, factors ``(G, B)``.
    """
    forms, scale = rotation_forms(mats)
    scaled, forms = _scale_hosts(sweeps, ops, mats, forms, scale)
    factors = np.ones(forms.shape, dtype=scale.dtype)
    if np.iscomplexobj(mats):
        return scaled, forms, factors
    for _, _, start, stop, _, _ in sweeps:
        gates = sweep_gates(ops[start:stop])
        if not gates:
            continue
        undone = np.ones(forms.shape[1], dtype=scale.dtype)
        for g in reversed(gates[1:]):
            factors[g] = undone * scale[g]
            undone = undone * scale[g] ** 2
        factors[gates[0]] = np.prod(scale[gates[1:]], axis=0)
    return scaled, forms, factors
