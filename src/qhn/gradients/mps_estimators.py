"""Sampled gradient estimators for large circuits on the ``mps`` backend (METHOD.md §8).

Both estimate ``∇θ E_{s∼q_θ}[f(s)]`` for a θ-independent ``f: bits (S, n) uint8 → (S,)`` without
enumerating ``2**n`` states, and return the *honest* sample mean of ``f`` carrying the estimated
gradient (``value + (surrogate − surrogate.detach())``, so ``.backward()`` gives the estimate).

**Score function** (:func:`mps_score_function`): ``S`` shots, ``S`` evaluations of ``f``::

    ĝ = (1/S) Σ_m (f_m − b_m) ∇θ log q_θ(s_m),   b_m = (Σ_j f_j − f_m) / (S − 1),

with the exact, differentiable ``log q`` of the MPS; unbiased because ``b_m`` is independent of
``s_m`` and ``E_q[∇ log q] = 0``.

**Local expectation** (:func:`local_expectation`, Titsias & Lázaro-Gredilla 2015, made exact for
an autoregressive ``q``): write ``q(s) = Π_i q(s_i | s_<i)`` (the MPS conditionals). Then::

    ∇ E_q[f] = Σ_i E_{s∼q}[ ∇ q(s_i = 1 | s_<i) · (V_i(s_<i, 1) − V_i(s_<i, 0)) ],
    V_i(s_≤i) = E_{s_>i ∼ q(·|s_≤i)}[f(s)],

(the product rule over the factors, and ``Σ_{s_i} ∇q(s_i|s_<i) = 0``). For each shot ``s`` and
each bit ``i``, ``V_i`` at the sampled ``s_i`` is estimated by ``f(s)`` and at the flipped bit by
``f`` of a *branch*: the prefix ``s_<i``, the flipped bit, and a suffix re-sampled from its exact
conditional with the same uniforms that drew ``s`` (so it is coupled to ``s``'s suffix, and for
the product state it *is* ``s``'s suffix: the exact two-point difference of the mean-field
estimator). Both estimates are unbiased since the uniforms of sites ``> i`` are independent of
``s_≤i``. Cost: ``S·(n + 1)`` evaluations of ``f`` and one sampling sweep of ``S·n`` branches.

Shapes: params ``(P,)`` → ``()``; ``(B, P)`` → ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from qhn.backends import mps_scan as scan
from qhn.backends.base import as_param_batch
from qhn.backends.mps import MPSBackend
from qhn.circuits.ir import Circuit
from qhn.errors import ConfigError
from qhn.gradients.base import honest
from qhn.gradients.block_estimators import score_function_surrogate

__all__ = [
    "EVAL_CHUNK",
    "EstimatorParts",
    "evaluations",
    "local_expectation",
    "local_expectation_parts",
    "mps_score_function",
    "score_function_parts",
]

BitCallable = Callable[[torch.Tensor], torch.Tensor]


def _check(backend: object, f: object, shots: object, least: int) -> None:
    if not isinstance(backend, MPSBackend):
        raise ConfigError(f"this estimator needs the 'mps' backend, got {backend!r}")
    if not callable(f) or isinstance(f, torch.Tensor):
        raise ConfigError("f must be a callable bits (S, n) uint8 -> (S,) float")
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < least:
        raise ConfigError(
            f"this estimator needs an integer number of shots >= {least}, got {shots!r}"
        )


#: Bitstrings per call of ``f`` (a network evaluation per bitstring can be large).
EVAL_CHUNK = 4096


def _evaluate(f: BitCallable, bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``f`` on ``(..., n)`` bits → ``(...)``, detached, :data:`EVAL_CHUNK` bitstrings a call."""
    flat = bits.reshape(-1, bits.shape[-1])
    with torch.no_grad():
        parts = [
            torch.as_tensor(f(flat[i : i + EVAL_CHUNK])).to(dtype).reshape(-1)
            for i in range(0, flat.shape[0], EVAL_CHUNK)
        ]
    return torch.cat(parts).reshape(bits.shape[:-1])


def evaluations(estimator: str, n_qubits: int, shots: int) -> int:
    """Evaluations of ``f`` per parameter vector: the unit of compute of the variance table."""
    if estimator == "score-function":
        return shots
    if estimator == "local-expectation":
        return shots * (n_qubits + 1)
    raise ConfigError(f"unknown estimator {estimator!r}; choose score-function, local-expectation")


class EstimatorParts(NamedTuple):
    """What one estimate is made of, for callers that need more than the mean of ``f``.

    Shapes (batched params ``(B, P)``): ``bits (B, S, n)`` uint8, the shots; ``values (B, S)``
    detached, ``f`` at the shots; ``surrogate (B,)`` differentiable, whose gradient is the
    estimate of ``∇θ E_q[f]``; ``evaluations`` of ``f`` per parameter vector.
    """

    bits: torch.Tensor
    values: torch.Tensor
    surrogate: torch.Tensor
    evaluations: int


def score_function_parts(
    backend: MPSBackend,
    circuit: Circuit,
    params: torch.Tensor,
    f: BitCallable,
    *,
    shots: int,
    generator: torch.Generator | None = None,
) -> EstimatorParts:
    """The leave-one-out score-function estimate's parts; params ``(B, P)`` (batched)."""
    _check(backend, f, shots, 2)
    state = backend.state(circuit, params)  # built once: sampled without, scored with gradient
    with torch.no_grad():
        bits = state.sample(shots, generator)  # (B, S, n)
    values = _evaluate(f, bits, params.dtype)
    log_q = state.log_prob(bits)
    return EstimatorParts(bits, values, score_function_surrogate(log_q, values), shots)


def mps_score_function(
    backend: MPSBackend,
    circuit: Circuit,
    params: torch.Tensor,
    f: BitCallable,
    *,
    shots: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean of ``f`` over ``shots`` draws, carrying the leave-one-out score-function gradient."""
    _check(backend, f, shots, 2)
    batch, batched = as_param_batch(circuit, params)
    parts = score_function_parts(backend, circuit, batch, f, shots=shots, generator=generator)
    out = honest(parts.values.mean(-1), parts.surrogate)
    return out if batched else out[0]


def local_expectation_parts(
    backend: MPSBackend,
    circuit: Circuit,
    params: torch.Tensor,
    f: BitCallable,
    *,
    shots: int,
    generator: torch.Generator | None = None,
) -> EstimatorParts:
    """The local-expectation estimate's parts; params ``(B, P)`` (batched)."""
    _check(backend, f, shots, 1)
    n, size = circuit.n_qubits, params.shape[0]
    with torch.no_grad():
        state = backend.state(circuit, params)
        u = torch.rand(n, size, shots, generator=generator, dtype=params.dtype)
        bits = state.sample_from_uniforms(u)  # (B, S, n)
        rows = torch.arange(shots).repeat_interleave(n)  # branch (m, i) → shot m
        sites = torch.arange(n).repeat(shots)  # … and flipped bit i
        forced = bits[:, rows].clone()
        forced[:, torch.arange(rows.numel()), sites] ^= 1
        branches = state.sample_from_uniforms(u, rows=rows, forced=forced, start=sites + 1)
    values = _evaluate(f, bits, params.dtype)  # (B, S)
    flipped = _evaluate(f, branches, params.dtype).view(size, shots, n)
    ones = bits.to(torch.bool)
    # V_i(s_<i, 1) − V_i(s_<i, 0), one estimate per shot and bit.
    delta = torch.where(ones, values.unsqueeze(-1) - flipped, flipped - values.unsqueeze(-1))
    # (B, S, n), differentiable; by parallel scans (a short autograd tape).
    conditionals = scan.conditionals(backend.state(circuit, params), bits)
    surrogate = (conditionals * delta).sum(-1).mean(-1)
    return EstimatorParts(bits, values, surrogate, shots * (n + 1))


def local_expectation(
    backend: MPSBackend,
    circuit: Circuit,
    params: torch.Tensor,
    f: BitCallable,
    *,
    shots: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean of ``f`` over ``shots`` draws, carrying the local-expectation gradient."""
    _check(backend, f, shots, 1)
    batch, batched = as_param_batch(circuit, params)
    parts = local_expectation_parts(backend, circuit, batch, f, shots=shots, generator=generator)
    out = honest(parts.values.mean(-1), parts.surrogate)
    return out if batched else out[0]
