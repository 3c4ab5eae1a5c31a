"""Seeded percentile bootstrap intervals that stay inside a metric's range.

For values ``x_1..x_n`` and a statistic ``θ(x)``, draw ``B`` resamples ``x*_b`` (``n`` indices
uniformly with replacement, generator ``numpy.random.default_rng(seed)``), and take the
``(1 − level)/2`` and ``(1 + level)/2`` empirical quantiles of ``θ(x*_1..x*_B)`` (numpy's
linear interpolation) as the interval. For paired data the resampling unit is the pair, so the
interval of a paired difference resamples the differences ``d_i = b_i − a_i``.

Why percentile: a mean or a median of resampled values lies between the smallest and the largest
value, so the interval of a mean accuracy stays in [0, 1] and that of a difference of two
[0, 1] metrics in [−1, 1] without any correction; ``bounds`` clips only the float noise. The
statistics used here are the mean and the Hodges–Lehmann estimate
(:func:`qhn.experiments.stats.hodges_lehmann`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from qhn.errors import ConfigError
from qhn.experiments.stats import Interval, finite

__all__ = [
    "RESAMPLES",
    "SEED",
    "bootstrap_interval",
    "bootstrap_statistics",
    "hodges_lehmann_rows",
    "mean_rows",
]

#: Resamples per interval and the seed of every interval (reports are reproducible bit for bit).
RESAMPLES = 2000
SEED = 0
_CHUNK_CELLS = 2_000_000

Bounds = tuple[float, float]


def mean_rows(samples: np.ndarray) -> np.ndarray:
    """The mean of each row of ``samples`` (shape ``(B, n)`` → ``(B,)``)."""
    return samples.mean(axis=1)


def hodges_lehmann_rows(samples: np.ndarray) -> np.ndarray:
    """The Hodges–Lehmann estimate of each row: the median of its ``n(n+1)/2`` Walsh averages
    ``(x_i + x_j)/2``, ``i ≤ j`` (shape ``(B, n)`` → ``(B,)``)."""
    n = samples.shape[1]
    i, j = np.triu_indices(n)
    rows = max(1, _CHUNK_CELLS // max(1, len(i)))
    out = np.empty(samples.shape[0])
    for start in range(0, samples.shape[0], rows):
        block = samples[start : start + rows]
        out[start : start + rows] = np.median((block[:, i] + block[:, j]) / 2.0, axis=1)
    return out


def bootstrap_statistics(
    values: Iterable[float | None],
    statistic: Callable[[np.ndarray], np.ndarray] = mean_rows,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> np.ndarray:
    """The ``resamples`` bootstrap replicates of ``statistic`` over the finite ``values``
    (shape ``(resamples,)``; empty when there are no values)."""
    if resamples < 1:
        raise ConfigError(f"resamples must be ≥ 1, got {resamples!r}")
    data = np.asarray(finite(values), dtype=float)
    if data.size == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, data.size, size=(resamples, data.size))
    return statistic(data[indices])


def bootstrap_interval(
    values: Iterable[float | None],
    statistic: Callable[[np.ndarray], np.ndarray] = mean_rows,
    *,
    level: float = 0.95,
    bounds: Bounds = (-math.inf, math.inf),
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """``statistic`` of the finite ``values`` (its ``mean`` field) with the percentile interval
    at ``level``, clipped to ``bounds``; ``low``/``high`` are NaN for fewer than two values."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must lie in (0, 1), got {level!r}")
    data = finite(values)
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    low_bound, high_bound = bounds
    estimate = float(statistic(np.asarray([data], dtype=float))[0])
    estimate = min(max(estimate, low_bound), high_bound)
    if n == 1:
        return Interval(estimate, math.nan, math.nan, 1, level)
    replicates = bootstrap_statistics(data, statistic, resamples=resamples, seed=seed)
    alpha = (1.0 - level) / 2.0
    low, high = (float(q) for q in np.quantile(replicates, [alpha, 1.0 - alpha]))
    low = min(max(low, low_bound), high_bound)
    high = min(max(high, low_bound), high_bound)
    return Interval(estimate, low, high, n, level)
