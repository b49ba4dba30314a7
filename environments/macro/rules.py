"""The macro economy's rules as pure numpy functions (EconAgent, economics.md §4).

Every function works on arrays of households, so the scripted path decides a
whole economy in a few vector operations. The environment (env.py) only moves
state through these and checks that coin and goods are conserved.
"""
from __future__ import annotations

import math

import numpy as np

STEP = 0.02  # propensities move in steps of 0.02 (EconAgent)
N_STEPS = 50  # so a propensity is k * STEP, k in 0..50


def ranked_pareto_wages(n: int, rng: np.random.Generator, shape: float = 8.0, max_multiplier: float = 950.0,
                        n_draws: int = 1000) -> np.ndarray:
    """EconAgent's hourly wages: ``n_draws`` x n Pareto-II(shape) draws x, w = min(m, (m - 1) x + 1),
    each row sorted and the columns averaged (the expected order statistics); then shuffled so a
    household's index says nothing about its rank."""
    if n < 1 or n_draws < 1 or shape <= 0 or max_multiplier < 1:
        raise ValueError(f"need n, n_draws >= 1, shape > 0, max_multiplier >= 1; got {n}, {n_draws}, {shape}, "
                         f"{max_multiplier}")
    x = rng.pareto(shape, size=(n_draws, n))
    ranked = np.sort(np.minimum(max_multiplier, (max_multiplier - 1.0) * x + 1.0), axis=1).mean(axis=0)
    return rng.permutation(ranked)


def snap(p: np.ndarray | float) -> np.ndarray:
    """A propensity in [0, 1] down to the 0.02 grid (EconAgent's ``c // 0.02``), as a float."""
    k = np.clip(np.floor(np.asarray(p, dtype=float) / STEP + 1e-9), 0, N_STEPS)
    return k * STEP


def to_pct(p: np.ndarray) -> np.ndarray:
    """Grid propensities -> whole percent (0, 2, ..., 100), the LLM action's units."""
    return np.rint(np.asarray(p, dtype=float) * 100).astype(int)


def serve(demand: np.ndarray, stock: float, order: np.ndarray) -> np.ndarray:
    """Goods each household gets: served in ``order``, first come first served, until the stock runs out."""
    d = np.maximum(np.asarray(demand, dtype=float), 0.0)
    in_order = d[order]
    before = np.cumsum(in_order) - in_order
    got = np.empty_like(d)
    got[order] = np.clip(max(stock, 0.0) - before, 0.0, in_order)
    return got


def imbalance(demand: float, supply: float) -> float:
    """phi = (D - S) / max(D, S), in [-1, 1]; 0 when both are 0."""
    top = max(demand, supply)
    return 0.0 if top <= 0 else (demand - supply) / top


def adjust(level: np.ndarray | float, phi: float, alpha: float, u: np.ndarray | float) -> np.ndarray | float:
    """level x (1 + phi alpha U), U ~ U(0, 1) given. With alpha <= 1/2 the factor stays >= 1/2 > 0.

    (EconAgent draws uniform(0, phi alpha), undefined for phi < 0; this is the intended move.)
    """
    return level * (1.0 + phi * alpha * np.asarray(u, dtype=float))


def taylor_rate(inflation: float, unemployment: float, natural_rate: float = 0.01, target: float = 0.02,
                natural_unemployment: float = 0.04, a_pi: float = 0.5, a_u: float = 0.5) -> float:
    """r = r_n + pi* + a_pi (pi - pi*) + a_u (u_n - u), floored at 0; with no inflation yet, r_n + pi*."""
    if inflation is None or not math.isfinite(inflation):
        return max(natural_rate + target, 0.0)
    return max(natural_rate + target + a_pi * (inflation - target) + a_u * (natural_unemployment - unemployment), 0.0)


def annual_change(series: list[float] | np.ndarray, year: int, months: int = 12) -> float:
    """Mean of year ``year`` (1-based) over the mean of the year before, minus 1 (EconAgent's annual rates)."""
    s = np.asarray(series, dtype=float)
    if year < 2 or len(s) < year * months:
        return math.nan
    this = s[(year - 1) * months: year * months].mean()
    last = s[(year - 2) * months: (year - 1) * months].mean()
    return float(this / last - 1.0) if last > 0 else math.nan


def trailing_inflation(prices: list[float], p0: float, months: int = 12) -> float:
    """Price change over the last 12 months; annualised from the start before a year has passed."""
    if not prices:
        return math.nan
    if len(prices) > months:
        return prices[-1] / prices[-1 - months] - 1.0
    return (prices[-1] / p0) ** (months / len(prices)) - 1.0


def conserved(total: float, initial: float, scale: float, rtol: float = 1e-9) -> bool:
    """Whether a total equals its initial value up to float rounding of flows of size ``scale``."""
    return abs(total - initial) <= rtol * max(1.0, scale)
