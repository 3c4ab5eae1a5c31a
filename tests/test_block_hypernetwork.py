"""Block-factorized hypernetworks against enumeration of their product distribution.

Oracles: one statevector run of the whole n-qubit circuit with the blocks side by side (the
simulator is tested against Qiskit and PennyLane elsewhere), enumeration over all 2^n bitstrings,
scipy's chi-square test for sampling, the closed-form mean-field Bernoulli for layers = 0.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from qhn.backends.registry import get_backend
from qhn.bits import bits_to_index, index_to_bits
from qhn.block_hypernetwork import BlockHypernetwork, block_sizes
from qhn.circuits import build_ansatz
from qhn.errors import ConfigError


def _model(sizes, layers, seed=0, ansatz="hardware_efficient"):
    return BlockHypernetwork(
        sizes,
        lambda m: build_ansatz(ansatz, m, layers),
        get_backend("statevector"),
        generator=torch.Generator().manual_seed(seed),
    )


def _statevector_product(model) -> torch.Tensor:
    """q over all 2^n by one statevector run of the whole circuit: the blocks side by side."""
    from qhn.circuits.ir import Circuit, Gate

    gates, params, offset = [], [], 0
    theta = model.theta.detach()
    for start, size in zip(
        [sum(model.sizes[:b]) for b in range(len(model.sizes))], model.sizes, strict=True
    ):
        group = next(g for g in model.groups if g.size == size)
        k = group.starts.tolist().index(start)
        for gate in group.circuit.gates:
            wires = tuple(w + start for w in gate.wires)
            param = None if gate.param is None else gate.param + offset
            gates.append(Gate(gate.name, wires, param))
        params.append(theta[group.param_index[k]])
        offset += group.circuit.n_params
    circuit = Circuit(model.n_qubits, tuple(gates), offset)
    return get_backend("statevector").probs(circuit, torch.cat(params))


@pytest.mark.parametrize("sizes,layers", [((4, 4, 3), 1), ((6, 6), 2), ((5, 3, 4), 0)])
def test_distribution_entropy_kl_log_prob_match_enumeration(sizes, layers):
    model = _model(sizes, layers, seed=sum(sizes) + layers)
    n = model.n_qubits
    q = _statevector_product(model)
    assert torch.allclose(model.full_probs().detach(), q, atol=1e-12)
    bits = index_to_bits(torch.arange(2**n), n)
    assert torch.allclose(model.log_prob(bits).exp(), q, atol=1e-12)
    entropy = -torch.special.xlogy(q, q).sum()
    assert float(model.entropy()) == pytest.approx(float(entropy), abs=1e-10)
    for prior_p in (0.5, 0.3):
        ones = bits.sum(-1).double()
        log_p = ones * math.log(prior_p) + (n - ones) * math.log1p(-prior_p)
        kl = (torch.special.xlogy(q, q) - q * log_p).sum()
        assert float(model.kl(prior_p)) == pytest.approx(float(kl), abs=1e-10)
    assert float(model.kl_uniform()) == pytest.approx(n * math.log(2) - float(entropy), abs=1e-10)
    assert int(bits_to_index(model.mode()[None])[0]) == int(q.argmax())


def test_layers_zero_is_the_mean_field_bernoulli():
    model = _model((3, 4), 0, seed=3)
    p_one = torch.sin(model.theta.detach() / 2) ** 2  # P(s_q = 1) = sin²(θ_q/2) per RY
    bits = index_to_bits(torch.arange(2**7), 7).double()
    closed = (bits * p_one + (1 - bits) * (1 - p_one)).prod(-1)
    assert torch.allclose(model.full_probs().detach(), closed, atol=1e-12)


def test_sampling_frequencies_chi_square():
    model = _model((3, 4), 1, seed=5)
    q = model.full_probs().detach()
    shots = 40_000
    bits = model.sample(shots, generator=torch.Generator().manual_seed(11))
    counts = torch.bincount(bits_to_index(bits), minlength=q.numel()).double()
    keep = q * shots >= 5  # chi-square validity; pool the rest into one cell
    observed = torch.cat([counts[keep], counts[~keep].sum()[None]])
    expected = torch.cat([q[keep], q[~keep].sum()[None]]) * shots
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    # p > 1e-3: a false alarm once in a thousand seeds.
    assert stats.chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-3
    assert model.stats.shots == shots


def test_block_sizes():
    assert block_sizes(1210, 121) == (10,) * 121
    assert block_sizes(10, 3) == (4, 3, 3)
    assert block_sizes(7, [3, 4]) == (3, 4)
    with pytest.raises(ConfigError, match="sum to 6"):
        block_sizes(7, [3, 3])
    with pytest.raises(ConfigError, match="exceeds the limit"):
        block_sizes(1210, 2)
    with pytest.raises(ConfigError, match="between 1 and 7"):
        block_sizes(7, 0)
