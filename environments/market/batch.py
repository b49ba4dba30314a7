"""The market's scripted orders for a whole tick at once (the batch path of sim/batch.py).

``order_decisions`` returns, for every trader given, the order its per-agent fallback
(``MarketEnv.scripted_intent`` then ``intent_to_action``) returns against the same
pre-phase state: ZI-U, ZI-C, momentum and fundamental, induced and asset setups,
each trader drawing from its own ``rng_for("policy", tick, trader)`` stream
(``Streams.named`` holds them all as arrays). tests/environments/market/test_batch.py
holds the two paths to identical events, ledgers and outcomes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from sim.batch import Decided
from sim.streams import Streams

if TYPE_CHECKING:
    from environments.market.env import MarketEnv, Trader

HOLD, BUY, SELL = 0, 1, 2
_SIDES = ("hold", "buy", "sell")


def _clip(x: np.ndarray, max_price: int) -> np.ndarray:
    """``policies._clip_price``: round half to even (as ``round``), then clip to [1, max_price]."""
    return np.minimum(np.maximum(np.rint(x), 1), max_price).astype(np.int64)


def order_decisions(env: "MarketEnv", traders: Sequence["Trader"]) -> list[Decided]:
    """One order (side, price, qty) per trader, as the per-agent fallbacks would place them."""
    from environments.market.env import ASSET

    c = env.cfg
    n = len(traders)
    aids = [a.aid for a in traders]
    acc = env.accounts
    cash_d, held_d = acc.cash, acc.cash_held
    units_d, uheld_d = acc.units.get(ASSET, {}), acc.units_held.get(ASSET, {})
    cash = np.array([cash_d.get(x, 0) for x in aids], dtype=np.int64)
    units = np.array([units_d.get(x, 0) for x in aids], dtype=np.int64)
    if c.replace_quotes:  # a new quote replaces the resting ones: their escrow is spendable
        cash += np.array([held_d.get(x, 0) for x in aids], dtype=np.int64)
        units += np.array([uheld_d.get(x, 0) for x in aids], dtype=np.int64)
    policy = np.array([a.policy for a in traders])
    st = Streams.named(env.root_seed, ("policy", env.tick), aids)
    induced = c.setup == "induced"
    if induced:
        buyer = np.array([a.role == "buyer" for a in traders])
        nxt = [env.next_unit(x) for x in aids]
        value = np.array([-1 if v is None else v for v, _ in nxt], dtype=np.int64)  # -1: schedule used up
        cost = np.array([-1 if k is None else k for _, k in nxt], dtype=np.int64)
        remaining = np.array([env.schedule_left(x) for x in aids], dtype=np.int64)
        if not c.replace_quotes:
            remaining -= np.array([sum(o.remaining for o in env.book.open_orders(x)) for x in aids], dtype=np.int64)
        role_check = True
    else:
        bias = np.array([env.bias.get(x, 0.0) for x in aids])
        value = cost = np.maximum(1, np.rint(env.fundamental * (1.0 + bias))).astype(np.int64)
        buyer = st.random() < 0.5  # a ZI side each tick (drawn for every trader, as trader_obs does)
        remaining = None
        role_check = False
    seller = ~buyer
    risk_qty = np.array([1 + int(round(2 * a.persona.risk)) for a in traders], dtype=np.int64)

    side = np.zeros(n, dtype=np.int64)
    price = np.zeros(n, dtype=np.int64)
    want = np.ones(n, dtype=np.int64)  # the intent's quantity (ZI quotes one unit)
    mp = c.max_price

    # ZI-C: buyers bid on [1, value], sellers ask on [cost, max_price]; ZI-U: price on [1, max_price]
    zic, ziu = policy == "zic", policy == "ziu"
    zb = zic & buyer & (value >= 0)
    zs = zic & seller & (cost >= 0) & (np.maximum(cost, 1) <= mp)
    u_act = ziu & ((buyer & (value >= 0)) | (seller & (cost >= 0)))
    draw = zb | zs | ziu
    if draw.any():
        lo = np.where(zs, np.maximum(cost, 1), 1)
        hi = np.where(zb, np.minimum(value, mp), mp) + 1
        p = st.integers(lo[draw], hi[draw], m=draw)
        price[draw] = p
        act = zb | zs | u_act
        side[act] = np.where(buyer[act], BUY, SELL)

    book = env.book
    bid, ask, last = book.best_bid(), book.best_ask(), book.last_price
    mom = policy == "momentum"
    if mom.any():
        hist = env.tick_prices[-50:]
        w = c.momentum_window
        if len(hist) >= w + 1 and hist[-w - 1] > 0:
            move = hist[-1] / hist[-w - 1] - 1.0
            ref = last if last is not None else hist[-1]
            if move > 0.0:
                p = int(_clip(np.array([(ask if ask is not None else ref) + 1]), mp)[0])
                q = np.minimum(risk_qty, cash // p)
                m = mom & (cash > 0) & (q > 0)
                side[m], price[m], want[m] = BUY, p, q[m]
            elif move < 0.0:
                p = int(_clip(np.array([(bid if bid is not None else ref) - 1]), mp)[0])
                m = mom & (units > 0)
                side[m], price[m], want[m] = SELL, p, np.minimum(risk_qty, units)[m]
    fun = policy == "fundamental"
    if fun.any():
        ref = None if (bid is not None or ask is not None) else last  # quotes are the live price
        margin = c.fundamental_margin
        low, high = _clip(value * (1 - margin), mp), _clip(value * (1 + margin), mp)
        cheap = (low > ask) if ask is not None else ((low > ref) if ref is not None else np.zeros(n, bool))
        rich = (high < bid) if bid is not None else ((high < ref) if ref is not None else np.zeros(n, bool))
        b = fun & cheap & (cash >= low)
        s = fun & ~b & rich & (units > 0)
        side[b], price[b], want[b] = BUY, low[b], np.minimum(risk_qty, cash // np.maximum(low, 1))[b]
        side[s], price[s], want[s] = SELL, high[s], np.minimum(risk_qty, units)[s]

    # intent_to_action: clip the price, keep the role's side, cap the quantity at what can be committed
    price = np.minimum(np.maximum(price, 1), mp)
    if role_check:
        side[(buyer & (side == SELL)) | (seller & (side == BUY))] = HOLD
    cap = np.where(side == BUY, cash // price, units)
    qty = np.minimum(np.minimum(want, cap), c.max_qty)
    if remaining is not None:
        qty = np.minimum(qty, remaining)
    side[qty <= 0] = HOLD
    out = []
    for s_, p_, q_ in zip(side.tolist(), price.tolist(), qty.tolist()):
        out.append(Decided(side="hold", price=0, qty=0) if s_ == HOLD else Decided(side=_SIDES[s_], price=p_, qty=q_))
    return out
