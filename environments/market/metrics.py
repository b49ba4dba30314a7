"""Market metrics: pure functions over polars frames and numeric sequences.

Frames used here:
- trades: one row per fill, columns tick, price, qty, buyer, seller, in execution order;
- book ticks: one row per tick, columns tick, best_bid, best_ask, bid_depth, ask_depth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from environments.common import gini  # noqa: F401 - the wealth gini, used by the market metrics

from environments.market.policies import max_surplus

Schedules = Mapping[object, Sequence[int]]


# ----- surplus and efficiency --------------------------------------------------------


def _schedule_frame(schedules: Schedules, who: str, col: str) -> pl.DataFrame:
    rows = [(t, k, int(x)) for t, sched in schedules.items() for k, x in enumerate(sched)]
    return pl.DataFrame(
        rows, schema=[who, "unit", col], orient="row"
    ) if rows else pl.DataFrame(schema={who: pl.Int64, "unit": pl.Int64, col: pl.Int64})


def realised_surplus(
    trades: pl.DataFrame, values: Schedules, costs: Schedules, extra_cost: int = 0
) -> int:
    """Sum over traded units of (buyer's value - seller's cost).

    Each trader's schedule is consumed in order: a buyer's k-th unit bought (across the
    frame, in row order) is worth values[buyer][k]. Units past a schedule carry no induced
    value (a buyer's extra unit is worth 0; a seller's extra unit costs `extra_cost`, default
    0, i.e. inventory with no induced cost). The scripted runners never trade past a
    schedule, so the choice matters only for free-form traders.
    """
    if trades.height == 0:
        return 0
    units = (
        trades.select("buyer", "seller", "qty")
        .with_row_index("row")
        .with_columns(pl.int_ranges(0, pl.col("qty")).alias("_k"))
        .explode("_k")
        .sort("row", "_k")
    )
    units = units.with_columns(
        pl.col("row").cum_count().over("buyer").alias("bunit"),
        pl.col("row").cum_count().over("seller").alias("sunit"),
    ).with_columns(pl.col("bunit") - 1, pl.col("sunit") - 1)
    vals = _schedule_frame(values, "buyer", "value")
    csts = _schedule_frame(costs, "seller", "cost")
    units = units.with_columns(
        pl.col("buyer").cast(vals.schema["buyer"]), pl.col("seller").cast(csts.schema["seller"])
    )
    joined = units.join(
        vals, left_on=["buyer", "bunit"], right_on=["buyer", "unit"], how="left"
    ).join(csts, left_on=["seller", "sunit"], right_on=["seller", "unit"], how="left")
    out = joined.select(
        (pl.col("value").fill_null(0) - pl.col("cost").fill_null(extra_cost)).sum()
    ).item()
    return int(out)


def allocative_efficiency(
    trades: pl.DataFrame, values: Schedules, costs: Schedules, extra_cost: int = 0
) -> float:
    """Realised surplus / competitive-equilibrium surplus (NaN when the latter is 0)."""
    best = max_surplus(values, costs)
    if best == 0:
        return math.nan
    return realised_surplus(trades, values, costs, extra_cost) / best


# ----- per-tick series ---------------------------------------------------------------


def price_series(trades: pl.DataFrame, ticks: Sequence[int] | None = None) -> pl.DataFrame:
    """Per tick: last trade price (carried forward over empty ticks), VWAP, volume, trades.

    With `ticks`, every listed tick gets a row (volume 0 where nothing traded).
    """
    per = (
        trades.group_by("tick", maintain_order=True)
        .agg(
            pl.col("price").last().alias("price"),
            ((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
            pl.col("qty").sum().alias("volume"),
            pl.len().alias("n_trades"),
        )
        .sort("tick")
    )
    if ticks is not None:
        grid = pl.DataFrame({"tick": list(ticks)}, schema={"tick": per.schema["tick"]})
        per = grid.join(per, on="tick", how="left").sort("tick")
        per = per.with_columns(
            pl.col("price").forward_fill(),
            pl.col("volume").fill_null(0),
            pl.col("n_trades").fill_null(0).cast(pl.UInt32),
        )
    return per


def book_series(book: pl.DataFrame) -> pl.DataFrame:
    """Add spread, mid and total depth to a per-tick book frame."""
    return book.sort("tick").with_columns(
        (pl.col("best_ask") - pl.col("best_bid")).alias("spread"),
        ((pl.col("best_ask") + pl.col("best_bid")) / 2).alias("mid"),
        (pl.col("bid_depth") + pl.col("ask_depth")).alias("depth"),
    )


# ----- return statistics -------------------------------------------------------------


def log_returns(prices: Sequence[float] | pl.Series | np.ndarray) -> np.ndarray:
    """log(p_t / p_{t-1}), skipping missing/non-positive prices."""
    p = np.asarray(pl.Series(prices).drop_nulls().to_numpy(), dtype=float)
    p = p[np.isfinite(p) & (p > 0)]
    return np.diff(np.log(p))


def autocorr(x: Sequence[float] | np.ndarray, lag: int = 1) -> float:
    """Sample autocorrelation at `lag` (mean-removed, normalised by total variance)."""
    a = np.asarray(x, dtype=float)
    if lag < 1 or a.size <= lag:
        return math.nan
    d = a - a.mean()
    denom = float(np.dot(d, d))
    if denom == 0:
        return math.nan
    return float(np.dot(d[:-lag], d[lag:]) / denom)


def return_autocorr(prices: Sequence[float] | np.ndarray, lag: int = 1) -> float:
    """Autocorrelation of log returns (stylized fact: about 0)."""
    return autocorr(log_returns(prices), lag)


def abs_return_autocorr(returns: Sequence[float] | np.ndarray, lag: int = 1) -> float:
    """Autocorrelation of |returns| (volatility clustering: clearly positive)."""
    return autocorr(np.abs(np.asarray(returns, dtype=float)), lag)


def excess_kurtosis(x: Sequence[float] | np.ndarray) -> float:
    """Population excess kurtosis m4/m2^2 - 3 (0 for a Gaussian; >0 for fat tails)."""
    a = np.asarray(x, dtype=float)
    if a.size < 2:
        return math.nan
    d = a - a.mean()
    m2 = float(np.mean(d**2))
    if m2 == 0:
        return math.nan
    return float(np.mean(d**4) / m2**2 - 3.0)


def hill_tail_index(returns: Sequence[float] | np.ndarray, tail_fraction: float = 0.05) -> float:
    """Hill estimator of the tail index of |returns|, from the top k = tail_fraction share.

    alpha = 1 / mean_{i<=k} log(x_(i) / x_(k+1)) with x sorted descending. Zero returns are
    dropped first (ticks without a price change would put log(0) in the threshold).
    """
    a = np.abs(np.asarray(returns, dtype=float))
    a = np.sort(a[np.isfinite(a) & (a > 0)])[::-1]
    k = int(math.floor(tail_fraction * a.size))
    if k < 1 or a.size <= k:
        return math.nan
    logs = np.log(a[:k] / a[k])
    mean = float(logs.mean())
    return math.inf if mean == 0 else 1.0 / mean


# ----- distribution and P&L ----------------------------------------------------------


def trader_pnl(trades: pl.DataFrame, last_price: float) -> pl.DataFrame:
    """Per trader: cash flow, net units and P&L marked to market at `last_price`."""
    buys = trades.select(
        pl.col("buyer").alias("trader"),
        (-pl.col("price") * pl.col("qty")).alias("cash_flow"),
        pl.col("qty").alias("net_units"),
    )
    sells = trades.select(
        pl.col("seller").alias("trader"),
        (pl.col("price") * pl.col("qty")).alias("cash_flow"),
        (-pl.col("qty")).alias("net_units"),
    )
    return (
        pl.concat([buys, sells])
        .group_by("trader")
        .agg(pl.col("cash_flow").sum(), pl.col("net_units").sum())
        .with_columns((pl.col("cash_flow") + pl.col("net_units") * last_price).alias("pnl"))
        .sort("trader")
    )
