"""Pearson chi-square goodness of fit of sampled bitstrings, for every backend's sampling tests.

The p-value comes from ``scipy.stats.chisquare``; bins expected fewer than 5 times are pooled into
one so its asymptotic chi-square distribution holds; outcomes of probability zero must not occur.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from qhn.bits import bits_to_index


def chi_square_pvalues(bits: torch.Tensor, probs: torch.Tensor) -> list[float]:
    """p-value of each batch row's outcomes against its distribution.

    Shapes: ``bits`` ``(B, shots, n)`` in our bit order, ``probs`` ``(B, 2**n)``.
    """
    n = bits.shape[-1]
    pvalues = []
    for row_bits, p in zip(bits, probs.double().numpy(), strict=True):
        observed = torch.bincount(bits_to_index(row_bits), minlength=2**n).double().numpy()
        expected = p * observed.sum()
        small = expected < 5
        obs = np.append(observed[~small], observed[small].sum())
        exp = np.append(expected[~small], expected[small].sum())
        if exp[-1] == 0:
            assert obs[-1] == 0, "outcomes of probability zero were observed"
            obs, exp = obs[:-1], exp[:-1]
        exp *= obs.sum() / exp.sum()
        pvalues.append(float(stats.chisquare(obs, exp).pvalue))
    return pvalues


def chi_square_pvalue(bits: torch.Tensor, probs: torch.Tensor) -> float:
    """p-value of one sample ``bits`` ``(shots, n)`` against ``probs`` ``(2**n,)``."""
    return chi_square_pvalues(bits.unsqueeze(0), probs.unsqueeze(0))[0]
