"""The closed-form gradients of products of factor entries, against the definition summed
term by term (brute force over every entry)."""

from __future__ import annotations

import itertools

import pytest
import torch

from qhn.backends.rotation_grads import kron_vector_grads


def brute_force(vectors: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``H[b, j, r] = Σ_{R: R_j = r} conj(g[b, R]) Π_{i≠j} vectors[b, i, R_i]`` entry by entry."""
    batch, m, _ = vectors.shape
    out = torch.zeros(batch, m, 2, dtype=vectors.dtype)
    for index, digits in enumerate(itertools.product((0, 1), repeat=m)):
        for j in range(m):
            others = torch.ones(batch, dtype=vectors.dtype)
            for i in range(m):
                if i != j:
                    others = others * vectors[:, i, digits[i]]
            out[:, j, digits[j]] += grad[:, index].conj() * others
    return out


@pytest.mark.parametrize("m", [1, 3, 9, 11])  # 9: the most gathered at once; 11: halves joined
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_kron_vector_grads_match_the_definition(m, dtype):
    generator = torch.Generator().manual_seed(m)
    vectors = torch.randn(2, m, 2, generator=generator, dtype=dtype)
    vectors[0, 0, 1] = 0  # a zero factor entry: the exclusive products must not divide
    grad = torch.randn(2, 2**m, generator=generator, dtype=dtype)
    torch.testing.assert_close(
        kron_vector_grads(vectors, grad), brute_force(vectors, grad), rtol=1e-12, atol=1e-12
    )
