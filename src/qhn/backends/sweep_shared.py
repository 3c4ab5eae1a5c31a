"""A batch of circuits that differ in few gates, by sweeps, sharing the sweeps they have in common.

The ``2P' + 1`` rows of a parameter-shift step are one circuit with one angle shifted each, so
every sweep before the one that applies the shifted gate is the same for all of them
(:mod:`qhn.backends.shared_prefix` does this for the torch passes). Over the schedule's sweeps
``0 … S−1``:

- at sweep ``s``, the rows of the current *group* whose operands in ``s`` (its gate matrices;
  for the first sweep also the product state's halves) equal the group's majority stay in it;
  the others *branch*: the group's state before ``s`` is copied for them, a chunk of rows at a
  time, and they run sweeps ``s … S−1`` on their own operands to their probabilities;
- the group's one state then advances by sweep ``s``; at the end its probabilities serve every
  row left in it.

A row shifted in sweep ``s`` costs ``S − s`` sweeps (plus one state copy) instead of ``S``. Every
row runs exactly the kernel operations of :func:`qhn.backends.sweeps.sweep_probs` on its own
operands (a sweep's scaled rotations depend only on its own gates), so the probabilities are the
same bits, and so are shots drawn from them with the same uniforms.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from qhn.backends.huge_pages import empty_on_huge_pages
from qhn.backends.shared_prefix import agreeing_rows
from qhn.backends.sweep_rotations import sweep_gates
from qhn.backends.sweep_schedule import SweepSchedule
from qhn.backends.sweeps import (
    ending_with,
    gate_matrices,
    product_columns,
    product_halves,
    run_operands,
)

__all__ = ["shared_sweep_probs"]


def shared_sweep_probs(
    plan: SweepSchedule,
    params: torch.Tensor,
    dtype: torch.dtype,
    chunk: int,
    out_dtype: torch.dtype | None = None,
    *,
    states: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, probs)`` until every row of ``params`` is covered once (with ``states``,
    ``(rows, ψ)``: the states in ``dtype`` before any diagonal the plan dropped at the end).

    ``plan``: the circuit's schedule (without its final diagonal); ``dtype``: the state's;
    ``out_dtype``: the probabilities' (default: ``dtype``'s real precision); ``chunk``: most
    rows run at once on a branch. ``probs`` is ``(r, 2^n)`` for ``r`` rows, or ``(1, 2^n)``
    standing for every one of ``rows`` (the group at the end); its buffer is reused by the
    next chunk, so use it before asking for the next. Memory: the group's state and one chunk
    of branch states (and their probabilities when not written in place). Runs without autograd.

    Shapes: params ``(R, P)`` → ``rows (r,)`` int64, ``probs (r or 1, 2^n)``.
    """
    batch, size, sweeps = params.shape[0], 2**plan.n, plan.sweeps
    out_dtype = out_dtype or (dtype.to_real() if dtype.is_complex else dtype)
    in_place = out_dtype == dtype or states
    if states:
        sweeps = ending_with(sweeps, 0)
    with torch.no_grad():
        columns = product_columns(plan, params.detach(), dtype)
        mats = gate_matrices(plan, params.detach(), dtype)
    group = np.arange(batch)
    state = empty_on_huge_pages(1, size, dtype)
    branch: tuple[torch.Tensor, torch.Tensor] | None = None
    for s in range(sweeps.shape[0]):
        if group.size > 1:
            gates = sweep_gates(plan.ops[sweeps[s, 2] : sweeps[s, 3]])
            operands = (mats[gates].transpose(0, 1),) + ((columns,) if sweeps[s, 4] else ())
            stay = agreeing_rows(operands, torch.from_numpy(group)).numpy()
            if not stay.all() and branch is None:
                psi = empty_on_huge_pages(min(chunk, batch), size, dtype)
                branch = (
                    psi,
                    psi if in_place else empty_on_huge_pages(psi.shape[0], size, out_dtype),
                )
            for first in range(0, int((~stay).sum()), chunk):
                rows = group[~stay][first : first + chunk]
                assert branch is not None
                psi, probs = (b[: rows.size] for b in branch)
                if not sweeps[s, 4]:
                    psi.copy_(state.expand(rows.size, -1))
                _run_rows(plan, sweeps[s:], columns[rows], mats[:, rows], psi, probs)
                yield torch.from_numpy(rows), probs
            group = group[stay]
        last = s == sweeps.shape[0] - 1
        probs = state if in_place or not last else empty_on_huge_pages(1, size, out_dtype)
        one = group[:1]
        _run_rows(plan, sweeps[s : s + 1], columns[one], mats[:, one], state, probs)
    yield torch.from_numpy(group), probs


def _run_rows(plan, sweeps, columns, mats, state, probs) -> None:
    """``sweeps`` on ``state``'s rows, from those rows' product columns ``(r, n, 2)`` and gate
    matrices ``(G, r, 2, 2)``."""
    run_operands(plan, sweeps, (*product_halves(plan, columns), mats), state.numpy(),
                 probs.numpy())  # fmt: skip
