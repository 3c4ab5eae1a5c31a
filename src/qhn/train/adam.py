"""Adam without ``torch.optim``: the same update, no ``torch._dynamo`` import.

Creating any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (its methods are wrapped by
``torch._disable_dynamo``), 1–4 s of a short run's wall time. This class runs the update of
``torch.optim.Adam``'s single-tensor path (defaults: no weight decay, no AMSGrad) and reads and
writes the same ``state_dict`` layout, so checkpoints move between the two. With gradient ``g``
at step ``t``:

    m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,
    θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

__all__ = ["Adam"]


class Adam:
    """Adam over ``params`` with ``param_groups`` (``lr`` may be changed between steps)."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [
            {"params": self.params, "lr": lr, "betas": betas, "eps": eps, "weight_decay": 0,
             "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
             "differentiable": False, "fused": None, "decoupled_weight_decay": False}
        ]  # fmt: skip
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for p in self.params:
            if p.grad is None:
                continue
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": torch.zeros((), dtype=_scalar_dtype()),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            state["step"] += 1
            step = state["step"].item()
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = lr / (1 - beta1**step)
            denom = (state["exp_avg_sq"].sqrt() / (1 - beta2**step) ** 0.5).add_(eps)
            p.addcdiv_(state["exp_avg"], denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Adam``'s layout: per-parameter state by index, groups with indices."""
        index = {id(p): i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {
            "state": {index[id(p)]: dict(s) for p, s in self.state.items()},
            "param_groups": [{**group, "params": list(range(len(self.params)))}],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = copy.deepcopy(state_dict)
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(self.params):
            raise ValueError(
                f"the state has {len(group['params'])} parameters, this optimizer "
                f"{len(self.params)}"
            )
        for i, s in state_dict["state"].items():
            if s["exp_avg"].shape != self.params[i].shape:
                raise ValueError(
                    f"parameter {i} has shape {tuple(self.params[i].shape)}, its state "
                    f"{tuple(s['exp_avg'].shape)}"
                )
        self.param_groups[0].update({k: v for k, v in group.items() if k != "params"})
        self.state = {
            self.params[i]: {
                k: v.to(self.params[i].device) if k != "step" else v for k, v in s.items()
            }
            for i, s in state_dict["state"].items()
        }


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
