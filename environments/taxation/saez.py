"""The Saez optimal-tax baseline as the AI Economist implements it (economics.md §1).

Pipeline: estimate the income elasticity e by OLS of log z on log(1 - tau), smooth it with
an EMA, bin observed incomes, compute per bin the average normalised welfare weight above z
(G) and the local Pareto parameter (A), apply tau(z) = (1 - G)/(1 - G + A e), and average
the binned schedule over each tax bracket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from environments.taxation.schedule import TaxSchedule

INITIAL_ELASTICITY = 0.5  # AI Economist's starting value for the running estimate
DEFAULT_TOP_CUTOFF = 510.3  # top US-2018 cutoff / 1000, the AI Economist's binning range

Weights = str | Callable[[np.ndarray], np.ndarray]


# ----- elasticity --------------------------------------------------------------------


def estimate_elasticity(incomes: np.ndarray, marginal_rates: np.ndarray) -> float | None:
    """OLS slope of log z on log(1 - tau) over samples with z > 0 and tau < 1.

    Returns None when the regression is not identified: fewer than 10 usable samples or
    (almost) no variation in rates, std(tau) < 1e-6 -- the AI Economist's guards.
    """
    z = np.asarray(incomes, dtype=float)
    tau = np.asarray(marginal_rates, dtype=float)
    if z.shape != tau.shape:
        raise ValueError(f"incomes and marginal_rates differ in shape: {z.shape} vs {tau.shape}")
    keep = (z > 0) & (tau < 1)
    z, tau = z[keep], tau[keep]
    if z.size < 10 or np.std(tau) < 1e-6:
        return None
    x = np.log(1.0 - tau)
    y = np.log(z)
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def update_elasticity(previous: float, estimate: float | None, decay: float = 0.98) -> float:
    """AI Economist EMA: e_t = decay * e_{t-1} + (1 - decay) * max(0, e_hat); keep e when no estimate."""
    if estimate is None:
        return float(previous)
    return float(decay * previous + (1.0 - decay) * max(0.0, estimate))


# ----- binned Saez schedule ----------------------------------------------------------


def saez_top_rate(a: float, e: float, g_top: float = 0.0) -> float:
    """Saez's top rate (1 - g)/(1 - g + a e); with g = 0 this is 1/(1 + a e)."""
    return (1.0 - g_top) / (1.0 - g_top + a * e)


@dataclass(frozen=True)
class SaezBins:
    """Binned Saez schedule: n_bins bins on [0, top cutoff] plus an open top bin (last entry)."""

    edges: np.ndarray  # (n_bins + 1,) bin lower edges, the last one is the top cutoff
    g: np.ndarray  # (n_bins + 1,) average normalised welfare weight above z
    a: np.ndarray  # (n_bins + 1,) local Pareto parameter (nan where a bin is empty)
    rates: np.ndarray  # (n_bins + 1,) marginal rate per bin, empty bins interpolated

    @property
    def sizes(self) -> np.ndarray:
        return np.append(np.diff(self.edges), np.inf)

    @property
    def top_rate(self) -> float:
        return float(self.rates[-1])


def _weight_fn(weights: Weights) -> Callable[[np.ndarray], np.ndarray]:
    if callable(weights):
        return lambda z: np.asarray(weights(z), dtype=float) * np.ones_like(z)
    if weights == "inverse_income":
        return lambda z: 1.0 / np.maximum(1.0, z)
    if weights == "uniform":
        return np.ones_like
    raise ValueError(f"unknown weights {weights!r}: use 'inverse_income', 'uniform' or a callable")


def saez_rates(
    incomes: np.ndarray,
    elasticity: float,
    weights: Weights = "inverse_income",
    n_bins: int = 100,
    top_cutoff: float = DEFAULT_TOP_CUTOFF,
) -> SaezBins:
    """Saez marginal rates on income bins, following the AI Economist's binning.

    - Welfare weights are evaluated at bin midpoints (incomes below 0 at 0, incomes above the
      top cutoff at their own value) and normalised to sum to 1 over everyone.
    - G at a bin edge = (normalised weight of incomes >= edge) / P(z' >= edge); a bin's G is
      the mean of its two edges (incomes assumed uniform within a bin); the top bin keeps its own.
    - A(z) = z p(z) / (P(z' >= z) - p(z)/2) / width at the bin midpoint z (nan for an empty bin);
      top bin A = zbar / (zbar - cutoff) over incomes above the cutoff (0 when there are none).
    - tau = (1 - G)/(1 - G + A e) (0 where that is 0/0); empty bins are filled by linear
      interpolation, starting from 0 below the first populated bin.
    """
    if n_bins < 1 or top_cutoff <= 0:
        raise ValueError(f"need n_bins >= 1 and top_cutoff > 0, got {n_bins}, {top_cutoff}")
    z = np.asarray(incomes, dtype=float)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise ValueError("saez_rates needs at least one finite income")
    weight = _weight_fn(weights)
    edges = np.linspace(0.0, top_cutoff, n_bins + 1)
    mids = 0.5 * (edges[:-1] + edges[1:])
    counts, _ = np.histogram(z, bins=edges)  # last bin is closed: z == cutoff falls inside
    below, above = z[z < 0], z[z > top_cutoff]
    n_total = z.size

    # G: weight density (bins + open top), normalised over the whole population.
    w_bins = counts * weight(mids)
    w_above = float(np.sum(weight(above))) if above.size else 0.0
    w_below = float(np.sum(weight(np.maximum(below, 0.0)))) if below.size else 0.0
    w_total = w_bins.sum() + w_above + w_below
    density = np.append(w_bins, w_above) / w_total if w_total > 0 else np.zeros(n_bins + 1)
    pz = np.append(counts, above.size) / n_total
    p_geq_edge = np.cumsum(pz[::-1])[::-1]
    w_geq_edge = np.cumsum(density[::-1])[::-1]
    g_edge = np.divide(w_geq_edge, p_geq_edge, out=np.zeros_like(w_geq_edge), where=p_geq_edge > 0)
    g = np.append(0.5 * (g_edge[:-1] + g_edge[1:]), g_edge[-1])

    # A: local Pareto parameter z f(z) / (1 - F(z)) with the half-bin correction.
    cum_pz = np.minimum(below.size / n_total + np.cumsum(pz), 1.0)
    p_geq_mid = 1.0 - cum_pz[:-1] + 0.5 * pz[:-1]
    widths = np.diff(edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_bins = np.where(counts > 0, mids * pz[:-1] / p_geq_mid / widths, np.nan)
    a_top = float(above.mean() / (above.mean() - top_cutoff)) if above.size else 0.0
    a = np.append(a_bins, a_top)

    num = 1.0 - g
    den = num + a * elasticity
    rates = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    rates[np.isnan(a)] = np.nan
    idx = np.arange(n_bins + 1)
    real = ~np.isnan(rates)
    rates = np.interp(idx, np.append(-1, idx[real]), np.append(0.0, rates[real]))
    return SaezBins(edges=edges, g=g, a=a, rates=rates)


def bracketize(bins: SaezBins, cutoffs: Sequence[float]) -> np.ndarray:
    """Average binned marginal rates over each bracket: (T(right) - T(left)) / width.

    T here is the tax the binned schedule levies on an income at the bracket's right edge;
    the open top bracket takes the top bin's rate directly. Not clipped.
    """
    cut = np.asarray(cutoffs, dtype=float)
    rates = []
    tax_left = 0.0
    for left, right in zip(cut[:-1], cut[1:]):
        in_bins = np.minimum(bins.sizes, np.maximum(0.0, right - bins.edges))
        tax_right = max(0.0, float(np.dot(bins.rates, in_bins)))
        rates.append((tax_right - tax_left) / (right - left))
        tax_left = tax_right
    rates.append(bins.top_rate)
    return np.asarray(rates)


def saez_bracket_schedule(
    incomes: np.ndarray,
    elasticity: float,
    cutoffs: Sequence[float],
    weights: Weights = "inverse_income",
    n_bins: int = 100,
    top_cutoff: float | None = None,
    rate_min: float = 0.0,
    rate_max: float = 1.0,
) -> TaxSchedule:
    """Saez rates bracketed onto ``cutoffs`` and clipped to [rate_min, rate_max].

    The binning range defaults to the top bracket's cutoff, as in the AI Economist.
    """
    cut = tuple(float(c) for c in cutoffs)
    top = cut[-1] if top_cutoff is None else top_cutoff
    if top <= 0:
        raise ValueError("a single-bracket schedule needs an explicit positive top_cutoff")
    bins = saez_rates(incomes, elasticity, weights, n_bins, top)
    return TaxSchedule(cut, tuple(np.clip(bracketize(bins, cut), rate_min, rate_max).tolist()))
