"""Engine-free reference market runs for the tests: scripted traders driving the book directly.

`run_induced_market` is the Gode–Sunder style experiment (induced values, one unit quoted at
a time); `run_zi_flow` is a roleless ZI-U order stream used to check throughput and as a
noise background. The book, policies and metrics are the
environment's own; only the loop is a test's (an independent check of the engine's market).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from environments.market import metrics
from environments.market.book import Accounts, Fill, OrderBook, Side
from environments.market.policies import (
    OrderIntent,
    TraderObs,
    competitive_quantity,
    induced_values,
    max_surplus,
    zi_c,
    zi_u,
)

Policy = Callable[[TraderObs, np.random.Generator], OrderIntent | None]
POLICIES: dict[str, Policy] = {"zic": zi_c, "ziu": zi_u}


def fills_frame(fills: list[Fill]) -> pl.DataFrame:
    """Fills as a trades frame (tick, price, qty, buyer, seller, aggressor) in execution order."""
    return pl.DataFrame(
        {
            "tick": [f.tick for f in fills],
            "price": [f.price for f in fills],
            "qty": [f.qty for f in fills],
            "buyer": [f.buyer for f in fills],
            "seller": [f.seller for f in fills],
            "aggressor": [f.aggressor_side.value for f in fills],
        },
        schema={
            "tick": pl.Int64,
            "price": pl.Int64,
            "qty": pl.Int64,
            "buyer": pl.Int64,
            "seller": pl.Int64,
            "aggressor": pl.String,
        },
    )


def run_induced_market(
    policy: str | Policy,
    n_traders: int,
    ticks: int,
    seed: int,
    units_each: int = 3,
    max_price: int = 200,
    value_range: tuple[int, int] = (1, 200),
    cost_range: tuple[int, int] = (1, 200),
) -> dict[str, Any]:
    """One induced-value CDA: half buyers, half sellers, each with `units_each` units.

    Each tick traders act in a random order; a trader with schedule left cancels its
    standing quote and submits a new one-unit quote (at most one live quote each, as in
    Gode–Sunder). Buyers get cash for `units_each` units at `max_price` and sellers exactly
    their units, so escrow never binds even for ZI-U, while surplus is scored from the
    induced values alone. The run stops early once no trader has units left to trade.
    """
    pol = POLICIES[policy] if isinstance(policy, str) else policy
    rng = np.random.default_rng(seed)
    n_buyers = n_traders // 2
    market = induced_values(
        n_buyers, n_traders - n_buyers, units_each, value_range, cost_range, rng
    )
    accounts = Accounts()
    book = OrderBook(accounts, max_price=max_price)
    for b in market.values:
        accounts.endow(b, cash=max_price * units_each)
    for s in market.costs:
        accounts.endow(s, units=units_each)

    traded = dict.fromkeys(range(n_traders), 0)
    live: dict[int, int] = {}  # trader -> id of its standing quote
    fills: list[Fill] = []
    book_rows: list[tuple[int, int | None, int | None, int, int]] = []
    history: list[int] = []
    start = time.perf_counter()
    for tick in range(ticks):
        for t in rng.permutation(n_traders).tolist():
            sched = market.values.get(t) if t < n_buyers else market.costs.get(t)
            k = traded[t]
            if k >= len(sched):
                continue
            if t in live:
                book.cancel(live.pop(t), t)  # no-op result if it already filled
            cash, _, units, _ = accounts.holdings(t)
            obs = TraderObs(
                trader=t,
                tick=tick,
                max_price=max_price,
                cash=cash,
                units=units,
                role="buyer" if t < n_buyers else "seller",
                next_value=sched[k] if t < n_buyers else None,
                next_cost=sched[k] if t >= n_buyers else None,
                best_bid=book.best_bid(),
                best_ask=book.best_ask(),
                last_price=book.last_price,
                price_history=tuple(history[-20:]),
            )
            intent = pol(obs, rng)
            if intent is None:
                continue
            res = book.place(t, intent.side, intent.qty, intent.price, tick)
            for f in res.fills:
                traded[f.buyer] += f.qty
                traded[f.seller] += f.qty
            fills.extend(res.fills)
            if res.resting:
                live[t] = res.order.id
        snap = book.snapshot(levels=1)
        book_rows.append((tick, snap.best_bid, snap.best_ask, snap.bid_depth, snap.ask_depth))
        if book.last_price is not None:
            history.append(book.last_price)
        if all(traded[t] >= units_each for t in range(n_traders)):
            break
    elapsed = time.perf_counter() - start

    trades = fills_frame(fills)
    best = max_surplus(market.values, market.costs)
    realised = metrics.realised_surplus(trades, market.values, market.costs)
    return {
        "policy": policy if isinstance(policy, str) else getattr(pol, "__name__", "custom"),
        "seed": seed,
        "efficiency": realised / best if best else float("nan"),
        "realised_surplus": realised,
        "max_surplus": best,
        "units_traded": int(trades["qty"].sum()) if trades.height else 0,
        "ce_quantity": competitive_quantity(market.values, market.costs),
        "ticks_run": len(book_rows),
        "conserved": accounts.check_conservation(),
        "seconds": elapsed,
        "trades": trades,
        "book": pl.DataFrame(
            book_rows,
            schema=["tick", "best_bid", "best_ask", "bid_depth", "ask_depth"],
            orient="row",
        ),
        "values": market.values,
        "costs": market.costs,
    }


def run_zi_flow(
    n_traders: int = 100,
    ticks: int = 1000,
    seed: int = 0,
    max_price: int = 200,
    lifetime: int = 20,
    cash: int = 10_000_000,
    units: int = 100_000,
) -> dict[str, Any]:
    """Roleless ZI-U stream: every trader quotes one random unit per tick, orders live for
    `lifetime` ticks. Endowments are large so nothing is rejected. Returns timing, fills
    and conservation status; the book is the bottleneck being measured.
    """
    rng = np.random.default_rng(seed)
    accounts = Accounts()
    book = OrderBook(accounts, max_price=max_price)
    for t in range(n_traders):
        accounts.endow(t, cash=cash, units=units)
    n_orders = 0
    fills: list[Fill] = []
    start = time.perf_counter()
    for tick in range(ticks):
        order = rng.permutation(n_traders).tolist()
        prices = rng.integers(1, max_price + 1, n_traders).tolist()
        sides = (rng.random(n_traders) < 0.5).tolist()
        for t, p, buy in zip(order, prices, sides, strict=True):
            res = book.place(t, Side.BUY if buy else Side.SELL, 1, p, tick, tick + lifetime)
            n_orders += 1
            fills.extend(res.fills)
    elapsed = time.perf_counter() - start
    return {
        "orders": n_orders,
        "fills": len(fills),
        "seconds": elapsed,
        "conserved": accounts.check_conservation(),
        "trades": fills_frame(fills),
    }
