"""Helpers every environment shares: inequality, per-dollar values, JSON-safe outcomes, conservation,
the event study around a shock.

One rule each, so reports and dashboards never see two meanings of the same number.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import polars as pl


class ConservationError(RuntimeError):
    """Money or goods were created or destroyed where the rules move them only."""


def gini(x: Sequence[float] | np.ndarray, method: str = "exact") -> np.ndarray | float:
    """Gini normalised by n/(n-1), so one agent holding everything scores 1 (last axis; vectorised).

    ``method="exact"`` is that normalised Gini for every n, via the sorted-cumsum identity
    G = (n + 1 - 2 S)/(n - 1), S = sum_k cumsum(sorted x)_k / sum x.
    ``method="ai_economist"`` reproduces the AI Economist: the same value for n < 30, but for
    n >= 30 its faster 1 - 2 S/(n + 1), which equals the exact value times (n-1)/(n+1)
    (e.g. 0.935, not 1, for one holder among 30). All-zero (or n < 2) gives 0.
    """
    v = np.sort(np.asarray(x, dtype=float), axis=-1)
    n = v.shape[-1]
    if method not in ("exact", "ai_economist"):
        raise ValueError(f"unknown gini method {method!r}")
    if n < 2:
        return _scalar(np.zeros(v.shape[:-1]))
    total = v.sum(axis=-1)
    s = np.divide(np.cumsum(v, axis=-1).sum(axis=-1), total, out=np.full_like(total, (n + 1) / 2), where=total != 0)
    if method == "ai_economist" and n >= 30:
        return _scalar(1.0 - 2.0 * s / (n + 1))
    return _scalar((n + 1 - 2.0 * s) / (n - 1))


def _scalar(x: np.ndarray) -> np.ndarray | float:
    return float(x) if np.ndim(x) == 0 else x


def per_usd(value: float | None, usd: float | None) -> float | None:
    """``value`` per USD of compute; None when nothing was spent or the value is missing (ratio undefined)."""
    if value is None or usd is None or not usd > 0:
        return None
    v = float(value)
    return v / usd if math.isfinite(v) else None


def finite_or_none(x: Any) -> float | None:
    """A float, or None for missing, NaN and infinite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(x: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, keys -> str, recursively (summary.json is strict JSON)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def event_study(prices_by_tick: pl.DataFrame, shock_tick: int, window: int) -> dict[str, float]:
    """Mean price in [shock - window, shock) vs [shock, shock + window).

    Returns pre_mean, post_mean, change_pct (post vs pre, percent) and sign (+1, -1, 0).
    Ticks with a null price are ignored; NaN means where a side has no prices.
    """
    p = prices_by_tick.drop_nulls("price")
    pre = p.filter((pl.col("tick") >= shock_tick - window) & (pl.col("tick") < shock_tick))
    post = p.filter((pl.col("tick") >= shock_tick) & (pl.col("tick") < shock_tick + window))
    pre_mean = float(pre["price"].mean()) if pre.height else math.nan
    post_mean = float(post["price"].mean()) if post.height else math.nan
    if math.isnan(pre_mean) or math.isnan(post_mean) or pre_mean == 0:
        change = math.nan
    else:
        change = 100.0 * (post_mean - pre_mean) / pre_mean
    sign = 0.0 if math.isnan(change) or change == 0 else math.copysign(1.0, change)
    return {"pre_mean": pre_mean, "post_mean": post_mean, "change_pct": change, "sign": sign}
