"""Small statistics for reports: Student-t confidence intervals and the Wilcoxon signed-rank test.

Written out here (no scipy dependency):

- the Student-t CDF through the regularized incomplete beta function,
  ``F(t; ν) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½)`` for ``t ≥ 0``, the beta function evaluated by its
  continued fraction; quantiles by bisection;
- the t-interval ``x̄ ± t_{(1+level)/2, n−1} · s/√n`` (``s`` the sample standard deviation);
- the Wilcoxon signed-rank test of paired differences ``d_i`` (two-sided, zeros dropped as in
  Wilcoxon's original method, tied ``|d_i|`` given their mean rank): the statistic is
  ``W⁺ = Σ_{d_i > 0} rank(|d_i|)``. For ``n ≤ 50`` non-zero differences its exact null
  distribution (every sign pattern equally likely) is counted over doubled ranks (integers even
  with ties), and ``p = min(1, 2·min(P(W⁺ ≤ w), P(W⁺ ≥ w)))``; above that the normal approximation
  ``z = (W⁺ − n(n+1)/4)/σ``, ``σ² = n(n+1)(2n+1)/24 − Σ_ties (t³ − t)/48``, without continuity
  correction. :func:`rank_biserial` is its effect size, the matched-pairs rank-biserial
  correlation ``r = (W⁺ − W⁻)/(W⁺ + W⁻)`` in [−1, 1];
- the Hodges–Lehmann estimate of a paired shift, the median of the Walsh averages
  ``(d_i + d_j)/2``, ``i ≤ j`` — the estimate that goes with the signed-rank test (without ties,
  ``W⁺`` is the number of positive Walsh averages);
- Holm's step-down adjustment of ``m`` p-values: with ``p_(1) ≤ … ≤ p_(m)``,
  ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j))``; rejecting where ``p̃ < α`` controls the
  family-wise error rate at ``α``.
- The power of a design, before any data: the smallest two-sided Wilcoxon p that ``n`` pairs
  can give is ``2/2^n`` (exact test: only "every sign the same" reaches it, ties or not), so Holm
  over ``m`` comparisons can reject at ``α`` only if ``2/2^n < α/m`` for some comparison, i.e.
  ``n ≥ ⌊log₂(2m/α)⌋ + 1`` (:func:`smallest_wilcoxon_p`, :func:`pairs_needed`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qhn.errors import ConfigError

__all__ = [
    "Interval",
    "WilcoxonResult",
    "finite",
    "hodges_lehmann",
    "holm",
    "pairs_needed",
    "rank_biserial",
    "smallest_wilcoxon_p",
    "t_cdf",
    "t_interval",
    "t_quantile",
    "wilcoxon_signed_rank",
]

#: Largest number of non-zero differences with an exact Wilcoxon p-value.
EXACT_WILCOXON_MAX_N = 50
_EPS = 1e-15
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval over ``n`` values (``low``/``high`` are NaN when
    ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def half_width(self) -> float:
        """Half the width of the interval."""
        return (self.high - self.low) / 2

    @property
    def defined(self) -> bool:
        """Whether the interval exists (at least two values)."""
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def sign(self) -> int:
        """+1 when the whole interval lies above 0, −1 below, 0 when it contains 0 (or is
        undefined)."""
        if not self.defined:
            return 0
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0


@dataclass(frozen=True)
class WilcoxonResult:
    """``statistic``: ``W⁺``; ``n``: the non-zero differences used; ``method``: ``exact`` or
    ``normal``; ``p_value``: two-sided (1 when ``n = 0``)."""

    statistic: float
    p_value: float
    n: int
    method: str

    @property
    def direction(self) -> int:
        """+1 when ``W⁺`` lies above its null mean ``n(n+1)/4`` (differences tend positive),
        −1 below, 0 at it."""
        mean = self.n * (self.n + 1) / 4.0
        if self.statistic > mean:
            return 1
        return -1 if self.statistic < mean else 0


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite numbers among ``values`` (None and NaN dropped)."""
    out = []
    for value in values:
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            out.append(value)
    return out


# --- Student t --------------------------------------------------------------------------------


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (modified Lentz), converging for
    ``x < (a+1)/(a+b+2)``."""
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        # even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m))
        numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        # odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        result *= step
        if abs(step - 1.0) < _EPS:
            break
    return result


def _regularized_beta(x: float, a: float, b: float) -> float:
    """``I_x(a, b) = B(x; a, b) / B(a, b)`` for ``0 ≤ x ≤ 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        a * math.log(x)
        + b * math.log1p(-x)
        - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(1.0 - x, b, a) / b


def t_cdf(t: float, df: float) -> float:
    """``P(T ≤ t)`` for Student's t with ``df > 0`` degrees of freedom."""
    if not df > 0:
        raise ConfigError(f"degrees of freedom must be > 0, got {df!r}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf`; accurate to ~1e-12 relative)."""
    if not 0.0 < p < 1.0:
        raise ConfigError(f"p must lie in (0, 1), got {p!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return 0.5 * (low + high)


def t_interval(values: Iterable[float | None], level: float = 0.95) -> Interval:
    """Mean and ``level`` t-interval of the finite ``values`` (None and NaN are dropped)."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must lie in (0, 1), got {level!r}")
    data = finite(values)
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    mean = math.fsum(data) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, level)
    variance = math.fsum((x - mean) ** 2 for x in data) / (n - 1)
    half = t_quantile(0.5 + level / 2.0, n - 1) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half, n, level)


# --- Wilcoxon ---------------------------------------------------------------------------------


def _ranks_with_ties(values: list[float]) -> tuple[list[float], list[int]]:
    """Mean ranks (1-based) of ``values`` and the sizes of the tie groups; values within a
    relative 1e-9 of each other count as tied (float noise of equal differences)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and values[order[stop]] - values[order[start]] <= (
            _TIE_RTOL * abs(values[order[stop]])
        ):
            stop += 1
        rank = (start + 1 + stop) / 2.0
        for position in range(start, stop):
            ranks[order[position]] = rank
        ties.append(stop - start)
        start = stop
    return ranks, ties


def wilcoxon_signed_rank(differences: Iterable[float | None]) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of paired differences (see the module docstring)."""
    data = finite(differences)
    nonzero = [d for d in data if d != 0.0]
    n = len(nonzero)
    if n == 0:
        return WilcoxonResult(0.0, 1.0, 0, "exact")
    ranks, ties = _ranks_with_ties([abs(d) for d in nonzero])
    w_plus = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    if n <= EXACT_WILCOXON_MAX_N:
        doubled = [round(2 * r) for r in ranks]
        counts = [0] * (sum(doubled) + 1)
        counts[0] = 1
        reach = 0
        for rank in doubled:
            reach += rank
            for total in range(reach, rank - 1, -1):
                counts[total] += counts[total - rank]
        observed = round(2 * w_plus)
        all_patterns = 2**n
        lower = sum(counts[: observed + 1]) / all_patterns
        upper = sum(counts[observed:]) / all_patterns
        return WilcoxonResult(w_plus, min(1.0, 2.0 * min(lower, upper)), n, "exact")
    mean = n * (n + 1) / 4.0
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - sum(t**3 - t for t in ties) / 48.0
    z = (w_plus - mean) / math.sqrt(variance) if variance > 0 else 0.0
    return WilcoxonResult(w_plus, math.erfc(abs(z) / math.sqrt(2.0)), n, "normal")


def rank_biserial(result: WilcoxonResult) -> float:
    """The matched-pairs rank-biserial correlation ``(W⁺ − W⁻)/(W⁺ + W⁻)`` of a signed-rank
    test, ``W⁺ + W⁻ = n(n+1)/2`` (NaN when ``n = 0``)."""
    if result.n == 0:
        return math.nan
    total = result.n * (result.n + 1) / 2.0
    return (2.0 * result.statistic - total) / total


def hodges_lehmann(differences: Iterable[float | None]) -> float:
    """The median of the Walsh averages ``(d_i + d_j)/2``, ``i ≤ j``, of the finite
    ``differences`` (NaN when there are none)."""
    data = finite(differences)
    walsh = sorted((data[i] + data[j]) / 2.0 for i in range(len(data)) for j in range(i, len(data)))
    if not walsh:
        return math.nan
    middle = len(walsh) // 2
    return walsh[middle] if len(walsh) % 2 else (walsh[middle - 1] + walsh[middle]) / 2.0


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in the order given; NaN entries stay NaN and do not count in
    the family size ``m``."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None and not math.isnan(p))
    for p, _ in present:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"a p-value must lie in [0, 1], got {p!r}")
    out = [math.nan] * len(p_values)
    m = len(present)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[index] = running
    return out


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p of :func:`wilcoxon_signed_rank` with ``n`` non-zero differences:
    ``min(1, 2/2^n)`` for the exact test, the normal approximation's ``erfc(z/√2)`` at
    ``z = √(3n(n+1)/(2(2n+1)))`` (every difference positive, no ties) above
    :data:`EXACT_WILCOXON_MAX_N` (1 when ``n = 0``)."""
    if n <= 0:
        return 1.0
    if n <= EXACT_WILCOXON_MAX_N:
        return min(1.0, 2.0 / 2.0**n)
    return math.erfc(math.sqrt(3.0 * n * (n + 1) / (2.0 * (2 * n + 1))) / math.sqrt(2.0))


def pairs_needed(m: int, alpha: float) -> int:
    """The fewest pairs ``n`` with ``smallest_wilcoxon_p(n) < alpha/m``: what Holm over ``m``
    comparisons needs before any one of them can be declared at ``alpha``."""
    n = 1
    while smallest_wilcoxon_p(n) >= alpha / max(m, 1):
        n += 1
    return n
