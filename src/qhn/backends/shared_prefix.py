"""Simulate a batch of circuits that differ in few passes, sharing the passes they have in common.

The ``2P' + 1`` circuits of a parameter-shift step (:mod:`qhn.gradients.parameter_shift`) are one
circuit with one angle shifted each: every pass before the shifted gate's pass is the same for
all of them. Given the compiled passes of a batch
(:func:`qhn.backends.torch_plan.plan_passes`, one small operand per row and pass), this walks
the passes once for the rows that still agree:

- at pass ``p``, the rows of the current *group* whose operand equals the group's majority
  operand stay in it; the others (those whose shifted gate lies in pass ``p``) *branch*: the
  group's state before pass ``p`` is copied for them, chunk by chunk, and they run passes
  ``p, p+1, …`` batched, each with its own operands, to their probabilities;
- the group itself advances by pass ``p`` as one state (batch 1); at the end its probabilities
  serve every row left in it.

So a row shifted in pass ``p`` costs the passes from ``p`` on instead of all of them, and the
shared prefix is simulated once. Every row goes through exactly the operations of the unshared
simulation, on its own operands, so the probabilities agree with it to rounding (batched matrix
products may round differently), and shots drawn with the same uniforms
(:func:`qhn.backends.sampling.sample_indices`) are the same bits.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from qhn.backends import torch_passes

__all__ = ["agreeing_rows", "shared_prefix_probs"]


def shared_prefix_probs(
    passes: list[object], n: int, dtype: torch.dtype, batch: int, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, probs)`` until every row of the batch is covered once.

    ``passes``: the planned passes of all ``batch`` rows (operands with a leading batch
    dimension); ``chunk``: most rows simulated at once on a branch. ``probs`` is ``(r, 2**n)``
    for ``r`` rows, or ``(1, 2**n)`` standing for every one of ``rows`` (the group at the end).
    Runs without autograd.

    Shapes: → ``rows (r,)`` int64, ``probs (r or 1, 2**n)`` real.
    """
    device = _device(passes)
    group = torch.arange(batch, device=device)
    state: torch.Tensor | None = None
    buffers = torch_passes.Buffers((1, 2**n), dtype, device)
    branch_buffers = _Rows((min(chunk, batch), 2**n), dtype, device)
    with torch.no_grad():
        for p, op in enumerate(passes):
            operand = _operand(op)
            if operand is not None and group.numel() > 1:
                stay = agreeing_rows(operand, group)
                branch = group[~stay]
                group = group[stay]
                for first in range(0, branch.numel(), chunk):
                    rows = branch[first : first + chunk]
                    yield rows, _run_rows(passes[p:], rows, state, n, branch_buffers)
            state = torch_passes.forward_pass([_select(op, group[:1])], n, buffers, state)
        assert state is not None
        yield group, torch_passes.squared_modulus(state)


def _device(passes: list[object]) -> torch.device:
    for op in passes:
        operand = _operand(op)
        if operand is not None:
            return operand[0].device
    return torch.device("cpu")


def _operand(op: object) -> tuple[torch.Tensor, ...] | None:
    """The per-row operands of a pass (None for passes that are the same for every row)."""
    if isinstance(op, torch_passes.Product):
        return op.left, op.right
    if isinstance(op, torch_passes.Block):
        return (op.matrix,)
    return None


def agreeing_rows(operand: tuple[torch.Tensor, ...], group: torch.Tensor) -> torch.Tensor:
    """Rows of ``group`` whose operand equals that of its first or last row, whichever more
    rows share (a shifted row is alone with its operand, so one of the two is the shared one).

    Shapes: → ``(len(group),)`` bool.
    """

    def same_as(row: int) -> torch.Tensor:
        equal = torch.ones(group.numel(), dtype=torch.bool, device=group.device)
        for t in operand:
            picked = t[group]
            equal &= (picked == t[row]).reshape(group.numel(), -1).all(-1)
        return equal

    first, last = same_as(int(group[0])), same_as(int(group[-1]))
    return first if int(first.sum()) >= int(last.sum()) else last


def _select(op: object, rows: torch.Tensor) -> object:
    if isinstance(op, torch_passes.Product):
        return torch_passes.Product(op.left[rows], op.right[rows])
    if isinstance(op, torch_passes.Block):
        return torch_passes.Block(op.width, op.matrix[rows])
    return op


class _Rows(torch_passes.Buffers):
    """Branch buffers kept from chunk to chunk (fresh multi-MiB tensors would be page-faulted
    in every time); a chunk of ``rows`` rows takes the first ``rows`` of each."""

    def __init__(self, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> None:
        super().__init__(shape, dtype, device)
        self.rows = shape[0]

    def take(self, *avoid: torch.Tensor) -> torch.Tensor:
        return super().take(*avoid)[: self.rows]


def _run_rows(
    passes: list[object],
    rows: torch.Tensor,
    state: torch.Tensor | None,
    n: int,
    buffers: _Rows,
) -> torch.Tensor:
    """``rows`` from ``state`` (batch 1, or None: from the start) through ``passes`` to their
    probabilities, in ``buffers``. Shapes: → ``(len(rows), 2**n)``."""
    buffers.rows = rows.numel()
    start = None
    if state is not None:
        start = buffers.take()
        start.copy_(state.expand(rows.numel(), -1))
    psi = torch_passes.forward_pass([_select(op, rows) for op in passes], n, buffers, start)
    return torch_passes.squared_modulus(psi, out=None if psi.is_complex() else psi)
