"""Small statistics helpers for reporting win rates and means with uncertainty.

With 10-ish games per condition, point estimates alone mislead; every rate we
report carries a Wilson interval and every mean a t interval.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

_STD_NORMAL = NormalDist()


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Preferred over the Wald interval because it stays inside [0, 1] and keeps its
    coverage at small n and extreme rates (0/10, 1/10). n == 0 gives (0, 1): no data.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def games_needed(p_alt: float, p0: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Games needed to tell a true win rate ``p_alt`` from a baseline ``p0``.

    One-sample binomial test, two-sided at level ``alpha``, normal approximation:
    n = ((z_{1-a/2} sqrt(p0 q0) + z_{power} sqrt(p1 q1)) / (p1 - p0))^2, rounded up.
    """
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie in (0, 1)")
    if not (0 <= p0 <= 1 and 0 <= p_alt <= 1):
        raise ValueError("probabilities must lie in [0, 1]")
    if p_alt == p0:
        raise ValueError("p_alt equals p0: no sample size can tell them apart")
    z_a = _STD_NORMAL.inv_cdf(1 - alpha / 2)
    z_b = _STD_NORMAL.inv_cdf(power)
    num = z_a * math.sqrt(p0 * (1 - p0)) + z_b * math.sqrt(p_alt * (1 - p_alt))
    n = (num / (p_alt - p0)) ** 2
    return max(1, math.ceil(n - 1e-9))  # guard against 12.000000001 -> 13


def mean_ci(values: Iterable[float], conf: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): Student-t interval on the mean.

    Uses t rather than normal because runs per condition are few. With one value the
    interval is undefined and lo/hi are NaN; with none, ValueError.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci of no values")
    m = sum(xs) / n
    if n == 1:
        return m, math.nan, math.nan
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    se = math.sqrt(var / n)
    q = 1 - (1 - conf) / 2
    try:
        from scipy.stats import t as student_t

        crit = float(student_t.ppf(q, n - 1))
    except ImportError:  # scipy is a project dependency; normal is the fallback
        crit = _STD_NORMAL.inv_cdf(q)
    return m, m - crit * se, m + crit * se


def bootstrap_mean_ci(values: Iterable[float], bounds: tuple[float, float] = (0.0, 1.0), conf: float = 0.95,
                      reps: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap interval for the mean of a bounded metric.

    For shares and rates (each run's value in ``bounds``) a t interval can leave the range:
    0.9333 +- t*se gave an upper bound of 1.04. Percentile bootstrap means are means of the
    data, so they stay inside the observed range and hence inside ``bounds``; the result is
    clipped to ``bounds`` anyway. The resampling is seeded: the same values always give the
    same interval. With one value the interval is undefined (NaN); with none, ValueError.
    Caveat: with all values equal the interval is a point; at n < 10 it undercovers.
    """
    import numpy as np

    xs = np.asarray([float(v) for v in values], dtype=float)
    n = xs.size
    if n == 0:
        raise ValueError("bootstrap_mean_ci of no values")
    lo_b, hi_b = bounds
    m = float(xs.mean())
    if n == 1:
        return m, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, n, size=(reps, n))].mean(axis=1)
    a = (1 - conf) / 2
    lo, hi = (float(q) for q in np.quantile(means, [a, 1 - a]))
    return m, min(max(lo, lo_b), hi_b), min(max(hi, lo_b), hi_b)
