"""Scripted households and forecasters, vectorised over households.

- ``composite``: EconAgent's rule (its ``complex_actions``): work with probability
  min(1, (z / (s (1 + r)))^gamma), z the month's potential income and s savings; spend a
  share (P / resources)^beta of resources. gamma = beta = 0.1.
- ``buffer_stock``: Carroll-style: spend permanent income plus ``speed`` x the excess of cash
  on hand over a target buffer of ``target`` months of permanent income.
- ``adaptive``: expectations E_t = lambda x_t + (1 - lambda) E_{t-1}.
- ``anchored``: the expert panel: x* + rho (x_t - x*), anchored on the central bank's targets.
"""
from __future__ import annotations

import numpy as np

from environments.macro.rules import snap


def composite_work(potential_income: np.ndarray, savings: np.ndarray, rate: float, gamma: float = 0.1) -> np.ndarray:
    """Work propensity (z / (s (1 + r)))^gamma on the 0.02 grid; 1 when savings are nil."""
    s = np.maximum(np.asarray(savings, dtype=float), 0.0) * (1.0 + rate)
    with np.errstate(divide="ignore"):
        ratio = np.where(s > 0, np.asarray(potential_income, dtype=float) / np.where(s > 0, s, 1.0), np.inf)
    return snap(np.minimum(1.0, np.power(ratio, gamma)))


def composite_consumption(price: float, resources: np.ndarray, beta: float = 0.1) -> np.ndarray:
    """Consumption propensity (P / resources)^beta on the 0.02 grid; all of it when resources <= P."""
    m = np.asarray(resources, dtype=float)
    with np.errstate(divide="ignore"):
        ratio = np.where(m > 0, price / np.where(m > 0, m, 1.0), np.inf)
    return snap(np.minimum(1.0, np.power(ratio, beta)))


def buffer_stock_consumption(resources: np.ndarray, permanent_income: np.ndarray, target_months: float = 2.0,
                             speed: float = 0.3) -> np.ndarray:
    """Spend y_p + speed (m - (1 + target) y_p), within [0, m], as a share of cash on hand m."""
    m = np.asarray(resources, dtype=float)
    yp = np.asarray(permanent_income, dtype=float)
    spend = np.clip(yp + speed * (m - (1.0 + target_months) * yp), 0.0, np.maximum(m, 0.0))
    share = np.divide(spend, m, out=np.ones_like(m), where=m > 0)
    return snap(share)


def adaptive(previous: np.ndarray, observed: float, lam: np.ndarray | float) -> np.ndarray:
    """E_t = lambda x_t + (1 - lambda) E_{t-1}."""
    lam = np.asarray(lam, dtype=float)
    return lam * observed + (1.0 - lam) * np.asarray(previous, dtype=float)


def anchored(observed: float, anchor: float, persistence: float, n: int) -> np.ndarray:
    """x* + rho (x_t - x*) for each of ``n`` forecasters (noise is added by the caller)."""
    return np.full(n, anchor + persistence * (observed - anchor))
