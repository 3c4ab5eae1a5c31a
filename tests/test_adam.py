"""qhn.train.adam.Adam against torch.optim.Adam (the oracle): same trajectory, same state_dict
layout (checkpoints move between the two), and no torch._dynamo import."""

from __future__ import annotations

import pytest
import torch

from fresh_process import imported_after
from qhn.train.adam import Adam


def loss(p: torch.Tensor) -> torch.Tensor:
    return (p.sin() * torch.arange(1.0, p.numel() + 1, dtype=p.dtype)).sum() + (p**4).sum()


def run(optimizer, p: torch.Tensor, steps: int, lr_at=lambda t: 0.05) -> torch.Tensor:
    for t in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(t)
        optimizer.zero_grad(set_to_none=True)
        loss(p).backward()
        optimizer.step()
    return p.detach().clone()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_trajectory_equals_torch_adam(dtype):
    start = torch.randn(7, generator=torch.Generator().manual_seed(0), dtype=dtype)
    ours_p = start.clone().requires_grad_(True)
    torch_p = start.clone().requires_grad_(True)
    schedule = lambda t: 0.1 / (1 + t)  # noqa: E731 - a changing lr, as the train loop sets it
    ours = run(Adam([ours_p], lr=0.1), ours_p, 50, schedule)
    theirs = run(torch.optim.Adam([torch_p], lr=0.1), torch_p, 50, schedule)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_state_dict_moves_between_torch_adam_and_ours():
    start = torch.randn(5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = start.clone().requires_grad_(True)
    torch_opt = torch.optim.Adam([a], lr=0.05)
    run(torch_opt, a, 10)
    b = a.detach().clone().requires_grad_(True)
    ours = Adam([b], lr=0.05)
    ours.load_state_dict(torch_opt.state_dict())
    run(torch_opt, a, 10)
    run(ours, b, 10)
    torch.testing.assert_close(b.detach(), a.detach(), rtol=0, atol=0)
    back = torch.optim.Adam([a.detach().clone().requires_grad_(True)], lr=0.05)
    back.load_state_dict(ours.state_dict())
    assert back.state_dict()["state"][0]["step"].item() == 20


def test_a_mismatched_state_is_refused():
    ours = Adam([torch.zeros(3, requires_grad=True)])
    other = Adam([torch.zeros(4, requires_grad=True)])
    other.param_groups[0]["params"][0].grad = torch.ones(4)
    other.step()
    with pytest.raises(ValueError, match="shape"):
        ours.load_state_dict(other.state_dict())


def test_training_steps_do_not_import_dynamo():
    code = (
        "import torch\n"
        "from qhn.train.adam import Adam\n"
        "p = torch.zeros(3, requires_grad=True)\n"
        "opt = Adam([p], lr=0.1)\n"
        "p.sin().sum().backward(); opt.step(); opt.zero_grad()\n"
    )
    assert imported_after(code, ("torch._dynamo",)) == []
