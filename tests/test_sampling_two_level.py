"""Two-level inverse-CDF sampling of long probability vectors against NumPy's inverse CDF on the
same uniforms (index for index), and its memory: no 2^n cumulative sum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qhn.backends.sampling import TWO_LEVEL_MIN, sample_indices


def numpy_inverse_cdf(probs: torch.Tensor, shots: int, seed: int) -> np.ndarray:
    """The same uniforms (same generator and draw), inverted with NumPy's cumsum/searchsorted."""
    u = torch.rand(
        probs.shape[0], shots, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    ).numpy()
    out = []
    for row, us in zip(probs.double().numpy(), u, strict=True):
        cdf = np.cumsum(row)
        out.append(np.minimum(np.searchsorted(cdf, us * cdf[-1], side="right"), row.size - 1))
    return np.stack(out)


@pytest.mark.parametrize("n", [17, 18, 21])
@pytest.mark.parametrize("kind", ["dense", "sparse", "peaked"])
def test_two_level_equals_numpy_inverse_cdf(n, kind):
    assert 2**n > TWO_LEVEL_MIN
    g = torch.Generator().manual_seed(n)
    probs = torch.rand(3, 2**n, generator=g, dtype=torch.float64)
    if kind == "sparse":  # most entries (and whole rows) zero: zeros are never drawn
        probs[probs < 0.999] = 0
    if kind == "peaked":
        probs = probs**40
    probs /= probs.sum(-1, keepdim=True)
    ours = sample_indices(probs, 2000, generator=torch.Generator().manual_seed(5)).numpy()
    expected = numpy_inverse_cdf(probs, 2000, seed=5)
    # Equal except where a uniform lands within rounding (~1e-16 relative) of a CDF step.
    assert (ours != expected).mean() < 1e-3
    assert bool((probs.gather(1, torch.from_numpy(ours)) > 0).all())


def test_a_basis_state_is_always_drawn():
    probs = torch.zeros(2, 2**18, dtype=torch.float32)
    probs[0, 12345] = 1
    probs[1, -1] = 1
    drawn = sample_indices(probs, 500, generator=torch.Generator().manual_seed(0))
    assert bool((drawn[0] == 12345).all()) and bool((drawn[1] == 2**18 - 1).all())
