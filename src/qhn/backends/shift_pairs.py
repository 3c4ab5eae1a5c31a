"""Both circuits of a parameter-shift pair from one simulated state.

A rotation ``R(θ) = exp(−iθG/2)`` with ``G² = I`` has ``R(±π/2) = (I ∓ iG)/√2`` and
``R(π) = −iG``, so ``R(θ ± π/2) = (R(θ) ± R(θ + π))/√2``. When parameter ``k`` drives one gate
only, the circuit is linear in that gate, and the two shifted states are::

    ψ(θ ± π/2·e_k) = (ψ(θ) ± ψ(θ + π·e_k)) / √2,    p_± = |ψ(θ) ± ψ(θ + π·e_k)|² / 2.

So a parameter-shift batch (a centre ``θ`` and the rows ``θ ± π/2·e_k``) needs the centre's state
and one state per parameter, ``P + 1`` circuits instead of ``2P``, and one pass that combines
each π-shifted state with the centre's into both probability vectors. A diagonal ±1 after the
last rotation (a CZ run) changes neither probability, so the states are taken before it.

The probabilities agree with simulating the shifted circuits to rounding (not to the bit: the
π-shifted circuit's rotation is rounded differently).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
import torch

from qhn.backends.huge_pages import empty_on_huge_pages
from qhn.backends.sweep_schedule import SweepSchedule
from qhn.backends.sweep_shared import shared_sweep_probs
from qhn.circuits.ir import ROTATION_GATES, Circuit

__all__ = ["ShiftPairs", "find_shift_pairs", "paired_buffers", "paired_probs"]

#: Fewest pairs worth the centre's extra circuit.
MIN_PAIRS = 2


@dataclass(frozen=True)
class ShiftPairs:
    """The parameter-shift pairs found in a batch.

    ``centre`` ``(P,)``: the unshifted parameters; ``plus``, ``minus`` ``(K,)``: the rows
    ``centre ± π/2·e_k`` of each pair; ``params`` ``(K,)``: each pair's ``k``; ``others``: the
    rows in no pair (the centre's own copies among them), simulated as they are.
    """

    centre: torch.Tensor
    plus: torch.Tensor
    minus: torch.Tensor
    params: torch.Tensor
    others: torch.Tensor


def _single_use_rotations(circuit: Circuit) -> torch.Tensor:
    """``(P,)`` bool: parameter ``k`` drives exactly one gate, a Pauli rotation."""
    uses = torch.zeros(circuit.n_params, dtype=torch.int64)
    rotation = torch.zeros(circuit.n_params, dtype=torch.bool)
    for gate in circuit.gates:
        if gate.param is not None:
            uses[gate.param] += 1
            rotation[gate.param] = gate.name in ROTATION_GATES
    return (uses == 1) & rotation


def find_shift_pairs(circuit: Circuit, batch: torch.Tensor) -> ShiftPairs | None:
    """The pairs ``centre ± π/2·e_k`` in ``batch``, or None when fewer than :data:`MIN_PAIRS`.

    The centre is each column's median: in a parameter-shift batch every column holds the centre's
    value in all rows but the two shifted in it. A row belongs to a pair when it differs from the
    centre in one column ``k`` only, by ``±π/2`` up to the rounding of the batch's dtype, and
    ``k`` drives a single rotation; each ``k`` pairs its first ``+`` row with its first ``−`` row.

    Shapes: batch ``(R, P)``.
    """
    rows, count = batch.shape
    if rows < 2 * MIN_PAIRS + 1:
        return None
    centre = batch.median(0).values
    delta = batch - centre
    # |θ ± π/2| rounds to within an ulp of itself; allow a few for the dtype's conversion.
    tolerance = 8 * torch.finfo(batch.dtype).eps * (centre.abs() + math.pi)
    moved = delta.abs() > tolerance
    single = moved.sum(1) == 1
    k = moved.to(torch.int8).argmax(1)
    step = delta.gather(1, k[:, None])[:, 0]
    near = tolerance[k]
    eligible = single & _single_use_rotations(circuit).to(batch.device)[k]
    plus_rows = eligible & ((step - math.pi / 2).abs() <= near)
    minus_rows = eligible & ((step + math.pi / 2).abs() <= near)
    first_plus = _first_row_per_param(plus_rows, k, count)
    first_minus = _first_row_per_param(minus_rows, k, count)
    paired = (first_plus >= 0) & (first_minus >= 0)
    if int(paired.sum()) < MIN_PAIRS:
        return None
    params = torch.nonzero(paired)[:, 0]
    plus, minus = first_plus[params], first_minus[params]
    taken = torch.zeros(rows, dtype=torch.bool)
    taken[plus] = taken[minus] = True
    others = torch.nonzero(~taken)[:, 0]
    return ShiftPairs(centre, plus, minus, params, others)


def _first_row_per_param(rows: torch.Tensor, k: torch.Tensor, count: int) -> torch.Tensor:
    """``(count,)``: for each parameter the first row in ``rows`` moved in it, or −1."""
    first = torch.full((count,), -1, dtype=torch.int64)
    for row in reversed(torch.nonzero(rows)[:, 0].tolist()):
        first[k[row]] = row
    return first


def _rows_per_branch(chunk: int) -> int:
    return max(1, chunk // 3)


def paired_buffers(chunk: int) -> int:
    """State-sized buffers :func:`paired_probs` holds at once for ``chunk``: the centre's state,
    the shared group's, and a third of a chunk of branch states with two probability vectors
    each (at most: real probabilities of a complex state are half a state)."""
    return 2 + 3 * _rows_per_branch(chunk)


def paired_probs(
    plan: SweepSchedule,
    batch: torch.Tensor,
    pairs: ShiftPairs,
    dtype: torch.dtype,
    chunk: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(rows, probs)`` covering every row of ``batch`` once, as
    :func:`qhn.backends.sweep_shared.shared_sweep_probs` yields them: the rows in no pair by
    shared sweeps, then each pair's two rows from the centre's state and its π-shifted state
    (themselves run by shared sweeps, a third of ``chunk`` at a time: each gives two probability
    vectors). ``probs`` is reused by the next yield. Memory: the centre's state, the shared
    group's, and ``chunk`` states' worth of branch states and probabilities.

    Shapes: batch ``(R, P)`` in the state's real precision → ``rows (r,)``, ``probs (r or 1,
    2^n)`` (one vector standing for every row of ``rows``).
    """
    others = pairs.others
    if others.numel():
        for which, probs in shared_sweep_probs(plan, batch[others], dtype, chunk):
            yield others[which], probs
    centre = pairs.centre[None]
    ((_, psi_centre),) = shared_sweep_probs(plan, centre, dtype, 1, states=True)
    shifted = centre.double().repeat(pairs.params.numel(), 1)
    shifted[torch.arange(pairs.params.numel()), pairs.params] += math.pi
    real = dtype.to_real() if dtype.is_complex else dtype
    per_pair = _rows_per_branch(chunk)
    out = None
    for which, psi in shared_sweep_probs(plan, shifted.to(batch.dtype), dtype, per_pair,
                                         states=True):  # fmt: skip
        count = psi.shape[0]
        if out is None or out.shape[0] < 2 * count:
            out = empty_on_huge_pages(
                2 * max(count, min(per_pair, pairs.params.numel())), 2**plan.n, real
            )
        plus, minus = out[:count], out[count : 2 * count]
        combine_pairs(psi_centre[0].numpy(), psi.numpy(), plus.numpy(), minus.numpy())
        if count == 1 and which.numel() > 1:  # one π-shifted state stands for several pairs
            yield pairs.plus[which], plus
            yield pairs.minus[which], minus
        else:
            yield torch.cat([pairs.plus[which], pairs.minus[which]]), out[: 2 * count]


@numba.njit(cache=True, nogil=True)
def combine_pairs(centre, shifted, plus, minus):
    """``plus[r] = |centre + shifted[r]|² / 2`` and ``minus[r] = |centre − shifted[r]|² / 2``
    in one pass. Shapes: centre ``(N,)``, shifted ``(r, N)`` (real or complex); plus, minus
    ``(r, N)`` real."""
    for r in range(shifted.shape[0]):
        row, up, down = shifted[r], plus[r], minus[r]
        for i in range(centre.shape[0]):
            s = centre[i] + row[i]
            d = centre[i] - row[i]
            up[i] = 0.5 * (s * np.conj(s)).real
            down[i] = 0.5 * (d * np.conj(d)).real
