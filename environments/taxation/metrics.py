"""Per-period taxation metrics: pure numpy functions over per-worker arrays.

Every aggregate works along the last axis, so the grid planner can score a stack of
candidate schedules, shape (m, n), in one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from environments.common import gini, per_usd


def productivity(pre_tax_income: np.ndarray) -> np.ndarray | float:
    """Mean pre-tax income (the AI Economist's per-capita productivity)."""
    return _scalar(np.mean(np.asarray(pre_tax_income, dtype=float), axis=-1))


def equality(x: np.ndarray, method: str = "exact") -> np.ndarray | float:
    """1 - gini."""
    return _scalar(1.0 - np.asarray(gini(x, method)))


def equality_times_productivity(
    coin: np.ndarray, gini_weight: float = 1.0, method: str = "exact"
) -> np.ndarray | float:
    """AI Economist's (w eq + 1 - w) * mean(coin); w = 1 gives eq x per-capita productivity."""
    eq = np.asarray(equality(coin, method))
    return _scalar((gini_weight * eq + 1.0 - gini_weight) * np.mean(np.asarray(coin, dtype=float), axis=-1))


def utilitarian_welfare(utility: np.ndarray) -> np.ndarray | float:
    """Mean utility."""
    return _scalar(np.mean(np.asarray(utility, dtype=float), axis=-1))


def inverse_income_welfare(utility: np.ndarray, pre_tax_income: np.ndarray) -> np.ndarray | float:
    """AI Economist SWF: sum_i w_i u_i with w_i = (1/max(z_i,1)) / sum_j (1/max(z_j,1)).

    Normalised weights keep it on the scale of a utility. As with any inverse-income
    weighting it leans toward the worst-off; see ``llm_economist_swf`` for the extreme case.
    """
    w = 1.0 / np.maximum(np.asarray(pre_tax_income, dtype=float), 1.0)
    w = w / w.sum(axis=-1, keepdims=True)
    return _scalar(np.sum(w * np.asarray(utility, dtype=float), axis=-1))


def llm_economist_swf(utility: np.ndarray, pre_tax_income: np.ndarray) -> np.ndarray | float:
    """LLM Economist SWF: sum_i u_i / max(z_i, 1), unnormalised.

    Caveat (economics.md §2): a worker who earns nothing gets weight 1 while a high earner
    gets ~1/z, so the sum behaves like maximin and is maximised by schedules that push many
    workers to zero labor and hand them the lump sum (a rational replica reaches ~5.7e6 with
    (100, 90, 90)% against ~1.5e3 for Saez). Report it alongside productivity and labor
    supply, never alone.
    """
    z = np.maximum(np.asarray(pre_tax_income, dtype=float), 1.0)
    return _scalar(np.sum(np.asarray(utility, dtype=float) / z, axis=-1))


def revenue(tax_paid: np.ndarray) -> np.ndarray | float:
    """Total tax collected."""
    return _scalar(np.sum(np.asarray(tax_paid, dtype=float), axis=-1))


def effective_tax_rate_by_decile(
    pre_tax_income: np.ndarray, tax_paid: np.ndarray, n_groups: int = 10
) -> np.ndarray:
    """sum(tax)/sum(income) within each income-rank group (deciles by default).

    Workers are ranked by pre-tax income (stable for ties) and group k holds ranks with
    floor(rank * n_groups / n) == k. Empty groups or groups with no income give nan. The lump
    sum is not netted out: this is the gross burden.
    """
    z = np.asarray(pre_tax_income, dtype=float)
    t = np.asarray(tax_paid, dtype=float)
    if z.shape != t.shape or z.ndim != 1:
        raise ValueError("pre_tax_income and tax_paid must be 1-D and the same shape")
    order = np.argsort(z, kind="stable")
    group = np.empty(z.size, dtype=int)
    group[order] = (np.arange(z.size) * n_groups) // max(z.size, 1)
    inc = np.bincount(group, weights=z, minlength=n_groups)
    tax = np.bincount(group, weights=t, minlength=n_groups)
    return np.divide(tax, inc, out=np.full(n_groups, np.nan), where=inc > 0)


def labor_distribution(
    hours: np.ndarray, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)
) -> dict[str, float]:
    """Mean, sd (population) and quantiles of hours worked, keyed like 'hours_q50'."""
    h = np.asarray(hours, dtype=float)
    if h.size == 0:
        return {"hours_mean": math.nan, "hours_sd": math.nan} | {f"hours_q{round(q * 100):02d}": math.nan for q in quantiles}
    out = {"hours_mean": float(h.mean()), "hours_sd": float(h.std())}
    for q in quantiles:
        out[f"hours_q{round(q * 100):02d}"] = float(np.quantile(h, q))
    return out


def share_at_cap(hours: np.ndarray, hours_cap: float = 100.0, tol: float = 1e-9) -> float:
    """Fraction of workers at the hours cap: high values mean labor barely responds to taxes."""
    h = np.asarray(hours, dtype=float)
    return float(np.mean(h >= hours_cap - tol)) if h.size else math.nan


# Social welfare functions by name, for planners: f(utility, pre_tax_income, post_tax_income).
SWF = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray | float]
SWF_BY_NAME: dict[str, SWF] = {
    "utilitarian": lambda u, z, c: utilitarian_welfare(u),
    "inverse_income": lambda u, z, c: inverse_income_welfare(u, z),
    "llm_economist": lambda u, z, c: llm_economist_swf(u, z),
    "eq_times_prod": lambda u, z, c: equality_times_productivity(c),
}


def resolve_swf(swf: str | SWF) -> SWF:
    """A named SWF from ``SWF_BY_NAME``, or the callable itself."""
    if callable(swf):
        return swf
    try:
        return SWF_BY_NAME[swf]
    except KeyError:
        raise ValueError(f"unknown swf {swf!r}; known: {sorted(SWF_BY_NAME)}") from None


def period_metrics(
    pre_tax_income: np.ndarray,
    hours: np.ndarray,
    utility: np.ndarray,
    tax_paid: np.ndarray,
    post_tax_income: np.ndarray | None = None,
    hours_cap: float = 100.0,
    compute_cost_usd: float | None = None,
) -> dict[str, float]:
    """All per-period metrics in one flat dict (one row of a metrics frame).

    Equality is measured on post-tax income (after the equal lump-sum rebate when
    ``post_tax_income`` is not given), as the AI Economist measures it on coin after
    redistribution; productivity is mean pre-tax income.
    """
    z = np.asarray(pre_tax_income, dtype=float)
    t = np.asarray(tax_paid, dtype=float)
    post = z - t + t.mean() if post_tax_income is None else np.asarray(post_tax_income, dtype=float)
    prod = float(productivity(z))
    eq = float(equality(post))
    util = float(utilitarian_welfare(utility))
    out: dict[str, float] = {
        "productivity": prod,
        "gini_pre_tax": float(gini(z)),
        "gini": float(gini(post)),
        "equality": eq,
        "eq_times_prod": eq * prod,
        "utilitarian_welfare": util,
        "inverse_income_welfare": float(inverse_income_welfare(utility, z)),
        "llm_economist_swf": float(llm_economist_swf(utility, z)),
        "revenue": float(revenue(t)),
        "lump_sum": float(t.mean()),
        "share_at_cap": share_at_cap(hours, hours_cap),
    }
    out |= labor_distribution(hours)
    for k, rate in enumerate(effective_tax_rate_by_decile(z, t), start=1):
        out[f"etr_decile_{k:02d}"] = float(rate)
    if compute_cost_usd is not None:
        out["welfare_per_dollar"] = per_usd(util, compute_cost_usd)
    return out


def _scalar(x: np.ndarray) -> np.ndarray | float:
    """0-d results come back as float, stacked ones as arrays."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x
