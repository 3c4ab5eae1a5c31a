"""The showcase behind ``qhn demo``: a circuit, its most likely bitstrings, and a gradient."""

from __future__ import annotations

import torch

from qhn.backends import StatevectorBackend
from qhn.bits import bitstring
from qhn.circuits import hardware_efficient


def run_demo(n_qubits: int = 8, layers: int = 2, seed: int = 0, top: int = 5) -> str:
    """Build a hardware-efficient circuit, report its top bitstrings and ``∇θ Σ_s q(s) c(s)``.

    Returns the report as text (the CLI prints it).
    """
    generator = torch.Generator().manual_seed(seed)
    circuit = hardware_efficient(n_qubits, layers)
    backend = StatevectorBackend()
    theta = torch.rand(circuit.n_params, generator=generator, dtype=torch.float64) * 2 * torch.pi
    theta.requires_grad_(True)
    probs = backend.probs(circuit, theta)
    cost = torch.rand(2**n_qubits, generator=generator, dtype=torch.float64)
    expected = probs @ cost
    expected.backward()
    lines = [f"{circuit.name}: {circuit.n_params} parameters", f"top {top} bitstrings:"]
    values, indices = probs.detach().topk(top)
    for p, i in zip(values.tolist(), indices.tolist(), strict=True):
        lines.append(f"  {bitstring(i, n_qubits)}  q = {p:.4f}")
    lines.append(f"E_q[c] = {expected.item():.6f} for a random cost vector c")
    grad = theta.grad
    lines.append(f"gradient norm {grad.norm().item():.6f}; first entries {grad[:4].tolist()}")
    return "\n".join(lines)
