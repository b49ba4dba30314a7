"""Helpers every environment shares: inequality, per-dollar values, JSON-safe outcomes, conservation.

One rule each, so reports and dashboards never see two meanings of the same number.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


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
