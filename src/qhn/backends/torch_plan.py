"""The torch path's plan: a circuit's passes as cached templates, and their operands from θ.

The program of :func:`qhn.backends.torch_passes.compile_circuit` becomes a short list of
templates, computed once per gate list and block width ``k`` (a renamed copy, such as the
parameter-shift rule's expanded circuit, shares them):

- the first run of one-qubit gates is a **product state** ``left ⊗ right`` over the first
  ``⌊n/2⌋`` qubits and the rest;
- every later run is ``⌈n/k⌉`` **Kronecker blocks**
  (:func:`qhn.backends.torch_passes.qubit_blocks`), applied last block first;
- a CZ run right after a one-qubit run is folded into its operands as ±1 rows where both qubits
  of a pair lie in one block (or one half of the product); the rest negate the state in place;
- CNOT runs stay index gathers; entanglers before the first one-qubit gate are dropped.

A template holds the **gather index** of all its operands' entries: entry ``e`` of the
concatenated operands is ``sign_e · Π_j f[index[j, e]]``, where ``f`` lists every qubit's
``2 × 2`` matrix entries (its first column for the product state) followed by a 1 that pads the
narrower blocks. So one run's operands, all blocks together, are one gather and one product over
``j`` (and one multiplication by the folded signs), whatever ``n``. On the small circuits that
training mostly runs, a pass's work is microseconds and the cost of a step is the number of
operations, forward and through autograd back to θ: this takes a layer from about 35 of them to
about 10 (:mod:`qhn.backends.torch_adjoint` carries each run's gradient back in one piece).
Blocks wider than :data:`GATHERED_WIDTH` are built one Kronecker product each instead
(``w·4^w`` gathered entries per block would outgrow the block itself).

Template memory: the product's index has ``⌈n/2⌉·(2^⌊n/2⌋ + 2^⌈n/2⌉)`` entries, a layer's
``k·4^k·⌈n/k⌉``; never a ``2^n`` tensor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from qhn.backends.entanglers import CNOTRun, CZRun, group_sign, split_pairs
from qhn.backends.rotation_grads import add_rotation_grads, factor_entry_grads, is_one_slot
from qhn.backends.torch_passes import (
    Block,
    Negate,
    OneQubitRun,
    Product,
    compile_gates,
    factor_positions,
    gather_factor_entries,
    kron_matrices,
    qubit_blocks,
    run_matrices,
)
from qhn.circuits.ir import Circuit, Gate

__all__ = ["GATHERED_WIDTH", "Operands", "pass_templates", "plan_passes"]

GATHERED_WIDTH = 5
"""The widest block whose entries are gathered (``5·4^5`` = 5,120 gathered entries per block)."""


@dataclass(frozen=True)
class Operands:
    """One run's operands as built from θ: ``entries`` ``(B, E)``, the concatenated entries of
    its product halves or blocks (in pass order). Each pass's operand is a view of a slice of
    it; the adjoint carries the whole run's gradient back at once: through ``entries``' own
    graph, or, where ``template`` is set (``entries`` then has none), by
    :meth:`add_theta_grad` from the run's gate matrices ``mats`` ``(B, n, 2, 2)``."""

    entries: torch.Tensor
    template: _RunTemplate | None = None
    mats: torch.Tensor | None = None

    def add_theta_grad(self, grad: torch.Tensor, out: torch.Tensor) -> None:
        """Add the run's part of ``dL/dθ`` to ``out`` ``(B, P)``, given ``grad`` ``(B, E)``,
        the entries' gradient in the adjoint's convention (:mod:`qhn.backends.rotation_grads`).
        """
        template, mats = self.template, self.mats
        batch, n = mats.shape[:2]
        factors = (mats[..., 0] if template.product else mats).reshape(batch, -1)
        sign = template.sign_for(grad)
        per_qubit = factor_entry_grads(factors, template.index, grad, sign).view(batch, n, 2, -1)
        if template.product:
            per_qubit = torch.cat([per_qubit, torch.zeros_like(per_qubit)], -1)
        add_rotation_grads(template.run, mats, per_qubit, out)


@dataclass(frozen=True)
class _RunTemplate:
    """One one-qubit run's operands: ``parts`` ``(start, stop)`` qubit ranges in pass order
    (the product's two halves, or the blocks last first); ``index`` ``(J, E)`` positions in
    the run's flattened factor entries, padded with the position of a trailing 1 (None: blocks
    too wide to gather, built one Kronecker product each); ``signs`` the folded CZ signs per
    dtype, ``(E,)``, or None."""

    run: OneQubitRun
    product: bool
    parts: tuple[tuple[int, int], ...]
    index: torch.Tensor | None
    signs: dict[torch.dtype, torch.Tensor] | None

    @property
    def analytic(self) -> bool:
        """One slot of rotations or fixed gates, gathered: :meth:`Operands.add_theta_grad`
        carries its gradient to θ without autograd."""
        return self.index is not None and is_one_slot(self.run)

    def sign_for(self, values: torch.Tensor) -> torch.Tensor | None:
        """The folded signs ``(E,)`` in ``values``' real dtype and device, or None."""
        if self.signs is None:
            return None
        real = values.real.dtype if values.is_complex() else values.dtype
        return self.signs[real].to(values.device)

    def sizes(self) -> list[int]:
        """Entries of each part: ``2^w`` for a product half, ``4^w`` for a block."""
        base = 2 if self.product else 4
        return [base ** (stop - start) for start, stop in self.parts]


def _fold_signs(
    template: _RunTemplate, pairs: tuple[tuple[int, int], ...]
) -> tuple[_RunTemplate, tuple[tuple[int, int], ...]]:
    """Fold the CZ pairs inside one of the template's parts into its signs (rows ``(−1)^{b_a
    b_b}`` of that part); returns the template and the pairs across parts, still to apply."""
    inside, across = split_pairs(pairs, template.parts)
    if not inside:
        return template, across
    pieces = []
    for p, (start, stop) in enumerate(template.parts):
        rows = (
            group_sign(start, stop, inside[p], torch.float64, torch.device("cpu"))
            if p in inside
            else torch.ones(2 ** (stop - start), dtype=torch.float64)
        )
        per_row = 1 if template.product else 2 ** (stop - start)
        pieces.append(rows.repeat_interleave(per_row))
    sign = torch.cat(pieces)
    signs = {dtype: sign.to(dtype) for dtype in (torch.float64, torch.float32)}
    return _RunTemplate(template.run, template.product, template.parts, template.index, signs), (
        across
    )


@functools.lru_cache(maxsize=64)
def pass_templates(n: int, gates: tuple[Gate, ...], k: int) -> tuple[object, ...]:
    """The circuit's passes as templates: :class:`_RunTemplate` for one-qubit runs (their
    operands still to build from θ), :class:`Negate` and :class:`CNOTRun` as they are.
    Cached by the gate list; holds no ``2^n`` tensor."""
    templates: list[object] = []
    for step in compile_gates(n, gates):
        if isinstance(step, CZRun):
            pairs = step.pairs
            if templates and isinstance(templates[-1], _RunTemplate):
                templates[-1], pairs = _fold_signs(templates[-1], pairs)
            if templates and pairs:
                templates.append(Negate(pairs))
        elif isinstance(step, CNOTRun):
            if templates:
                templates.append(step)
        elif not templates:
            mid = max(1, n // 2)
            parts = ((0, mid), (mid, n))
            index = factor_positions(parts, 2, 1, n)
            templates.append(_RunTemplate(step, True, parts, index, None))
        else:
            parts = tuple(reversed(qubit_blocks(n, k)))
            wide = max(stop - start for start, stop in parts) > GATHERED_WIDTH
            index = None if wide else factor_positions(parts, 2, 2, n)
            templates.append(_RunTemplate(step, False, parts, index, None))
    return tuple(templates)


def circuit_templates(circuit: Circuit, k: int) -> tuple[object, ...]:
    """:func:`pass_templates` of ``circuit``, remembered on the circuit too: hashing the gate
    list for the shared cache costs more than the rest of a small circuit's plan."""
    memo = circuit.__dict__.setdefault("_pass_templates", {})
    if k not in memo:
        memo[k] = pass_templates(circuit.n_qubits, circuit.gates, k)
    return memo[k]


def _run_entries(template: _RunTemplate, mats: torch.Tensor) -> torch.Tensor:
    """The run's operand entries, ``(B, n, 2, 2)`` matrices → ``(B, E)``."""
    batch = mats.shape[0]
    factors = mats[..., 0] if template.product else mats
    if template.index is None:
        entries = torch.cat(
            [kron_matrices(factors[:, a:b]).reshape(batch, -1) for a, b in template.parts], 1
        )
    else:
        entries = gather_factor_entries(factors.reshape(batch, -1), template.index).prod(1)
    sign = template.sign_for(entries)
    return entries if sign is None else entries * sign


def plan_passes(
    circuit: Circuit,
    params: torch.Tensor,
    real: torch.dtype,
    complex_: torch.dtype,
    k: int,
    *,
    adjoint: bool = False,
) -> tuple[list[object], torch.dtype]:
    """Turn the circuit's templates and the angles into passes with their small operands.

    The operands (product halves, block matrices) are views of each run's
    :class:`Operands` entries, built with torch ops from ``params`` so that autograd can carry
    their gradients to θ; with ``adjoint`` (:mod:`qhn.backends.torch_adjoint`), the runs whose
    gradient :meth:`Operands.add_theta_grad` computes are built without a graph. Returns the
    passes and the state dtype (complex as soon as any complex gate appears). Shapes: params
    ``(B, P)``.
    """
    n = circuit.n_qubits
    batch = params.shape[0]
    dtype = real if circuit.is_real else complex_
    passes: list[object] = []
    for template in circuit_templates(circuit, k):
        if not isinstance(template, _RunTemplate):
            passes.append(template)
            continue
        if adjoint and template.analytic:
            with torch.no_grad():
                mats = run_matrices(template.run, params, n, dtype)
                source = Operands(_run_entries(template, mats), template, mats)
        else:
            source = Operands(_run_entries(template, run_matrices(template.run, params, n, dtype)))
        entries = source.entries
        views = torch.split(entries, template.sizes(), dim=1)
        if template.product:
            passes.append(Product(views[0], views[1], source))
        else:
            for (start, stop), view in zip(template.parts, views, strict=True):
                w = stop - start
                passes.append(Block(w, view.view(batch, 2**w, 2**w), source))
    if not passes:
        passes.append(_zero_product(batch, n, dtype, params.device))
    return passes, dtype


def _zero_product(batch: int, n: int, dtype: torch.dtype, device: torch.device) -> Product:
    """``|0…0⟩`` as a product pass."""
    left = torch.zeros(batch, 2, dtype=dtype, device=device)
    left[:, 0] = 1
    right = torch.zeros(batch, 2 ** (n - 1), dtype=dtype, device=device)
    right[:, 0] = 1
    return Product(left, right)
