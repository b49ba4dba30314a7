"""Macro metrics: pure functions of arrays (per month, per year, per survey, per run)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

N_QUINTILES = 5


def wealth_quintiles(wealth: np.ndarray) -> np.ndarray:
    """Quintile (0 poorest .. 4 richest) of each household by wealth rank (stable for ties)."""
    w = np.asarray(wealth, dtype=float)
    q = np.empty(w.size, dtype=int)
    q[np.argsort(w, kind="stable")] = (np.arange(w.size) * N_QUINTILES) // max(w.size, 1)
    return q


def by_quintile(values: np.ndarray, quintile: np.ndarray) -> np.ndarray:
    """Mean of ``values`` within each quintile; NaN for an empty one (fewer than 5 households)."""
    v = np.asarray(values, dtype=float)
    total = np.bincount(quintile, weights=v, minlength=N_QUINTILES)
    count = np.bincount(quintile, minlength=N_QUINTILES)
    return np.divide(total, count, out=np.full(N_QUINTILES, np.nan), where=count > 0)


def spending_share(spent: np.ndarray, cash_on_hand: np.ndarray) -> np.ndarray:
    """Each household's spending over its cash on hand (0 where it had none)."""
    c = np.asarray(cash_on_hand, dtype=float)
    return np.divide(np.asarray(spent, dtype=float), c, out=np.zeros_like(c), where=c > 0)


def dispersion(forecasts: np.ndarray) -> float:
    """Cross-sectional standard deviation of forecasts (population sd); NaN when none."""
    f = np.asarray(forecasts, dtype=float)
    return float(f.std()) if f.size else math.nan


def mean_abs_error(forecasts: np.ndarray, realised: float) -> float:
    f = np.asarray(forecasts, dtype=float)
    return float(np.mean(np.abs(f - realised))) if f.size and math.isfinite(realised) else math.nan


def corr(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation over the pairs where both are finite; NaN with < 3 pairs or no variance."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def phillips(wage_inflation: Sequence[float], unemployment: Sequence[float]) -> float:
    """Correlation of annual wage inflation with annual unemployment (negative is the Phillips curve)."""
    return corr(wage_inflation, unemployment)


def okun(unemployment: Sequence[float], real_gdp: Sequence[float]) -> float:
    """Correlation of the change in unemployment with real GDP growth, year on year (negative is Okun)."""
    u, y = np.asarray(unemployment, dtype=float), np.asarray(real_gdp, dtype=float)
    if u.size < 2:
        return math.nan
    growth = np.divide(np.diff(y), y[:-1], out=np.full(y.size - 1, np.nan), where=y[:-1] > 0)
    return corr(np.diff(u), growth)


def mean_interval(xs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the finite values (NaN bounds with fewer than 2)."""
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=float)
    if a.size == 0:
        return math.nan, math.nan, math.nan
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return m, m - half, m + half


def pooled_corr_interval(r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval of a correlation from n pairs."""
    if not math.isfinite(r) or n < 4 or abs(r) >= 1:
        return math.nan, math.nan
    z, half = math.atanh(r), stats.norm.ppf(0.5 + level / 2) / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def corr_mean_interval(rs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of correlations and its interval, averaged on Fisher's z scale (so bounds stay in (-1, 1))."""
    z = [math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)) for r in rs if r is not None and math.isfinite(r)]
    m, lo, hi = mean_interval(z, level)
    return tuple(math.tanh(v) if math.isfinite(v) else math.nan for v in (m, lo, hi))  # type: ignore[return-value]
