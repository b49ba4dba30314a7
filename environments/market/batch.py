"""The market's scripted orders for a whole tick at once (the batch path of sim/batch.py).

``order_decisions`` returns, for every trader given, the order its per-agent fallback
(``MarketEnv.scripted_intent`` then ``intent_to_action``) returns against the same
pre-phase state: ZI-U, ZI-C, momentum and fundamental, induced and asset setups,
each trader drawing from its own ``rng_for("policy", tick, trader)`` stream
(``Streams`` holds them all as arrays; a small market seeds many ticks' streams in one
pass). ``apply_orders`` places a tick's batch on the book as ``MarketEnv.apply`` does one
order at a time, with the events written as one batch of payload texts.
tests/environments/market/test_batch.py holds the two paths to identical events, ledgers
and outcomes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from environments.market.book import Side
from sim.batch import Decided
from sim.events import PUBLIC, dumps, quote
from sim.streams import SEED_ARRAYS_FROM, SMALL, Streams, _PyStreams, derive_seeds

if TYPE_CHECKING:
    from environments.market.env import MarketEnv, Trader

HOLD, BUY, SELL = 0, 1, 2
_SIDES = ("hold", "buy", "sell")
_POLICIES = ("zic", "ziu", "momentum", "fundamental")
_ENUM = (None, Side.BUY, Side.SELL)
_TEXT = {Side.BUY: "buy", Side.SELL: "sell"}  # ``Side.value`` without the enum descriptor
SEED_BATCH = 4096  # streams seeded per pass (a small market's next ticks, all traders)


def _clip(x: np.ndarray, max_price: int) -> np.ndarray:
    """``policies._clip_price``: round half to even (as ``round``), then clip to [1, max_price]."""
    return np.minimum(np.maximum(np.rint(x), 1), max_price).astype(np.int64)


def order_decisions(env: "MarketEnv", traders: Sequence["Trader"]) -> list[Decided]:
    """One order (side, price, qty) per trader, as the per-agent fallbacks would place them."""
    out = []
    for s_, p_, q_ in zip(*order_columns(env, traders)):
        out.append(Decided(side="hold", price=0, qty=0) if s_ == HOLD else Decided(side=_SIDES[s_], price=p_, qty=q_))
    return out


def _static(env: "MarketEnv") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trader (``env.order``'s order): policy code, the momentum/fundamental quantity, buyer role.

    Fixed at setup, so built once per run (not kept in checkpoints: ``MarketEnv.__getstate__``).
    """
    st = getattr(env, "_batch_static", None)
    if st is None or len(st[0]) != len(env.order):
        players = [env.by_id[x] for x in env.order]
        st = env._batch_static = (
            np.array([_POLICIES.index(a.policy) for a in players], dtype=np.int64),
            np.array([1 + int(round(2 * a.persona.risk)) for a in players], dtype=np.int64),
            np.array([a.role == "buyer" for a in players]))
    return st


def policy_streams(env: "MarketEnv", aids: Sequence[str], idx: np.ndarray) -> Streams:
    """``rng_for("policy", env.tick, aid)`` for each of ``aids`` (``idx``: their places in ``env.order``).

    A small market seeds the streams of its next ticks, all traders, in one array pass
    (seeding costs about as much for 4,000 streams as for 20), then draws each tick's
    as plain integers; a large one seeds each tick's in one pass already.
    """
    n_all, tick = len(env.order), env.tick
    if len(aids) > SMALL or n_all > SMALL or n_all * 2 < SEED_ARRAYS_FROM:
        return Streams.named(env.root_seed, ("policy", tick), aids)
    cache = getattr(env, "_policy_seeded", None)
    if cache is None or not cache[0] <= tick < cache[1]:
        ticks = range(tick, max(tick + 1, min(tick + SEED_BATCH // n_all, env.horizon() + 1)))
        seeds = np.concatenate([derive_seeds(env.root_seed, ("policy", k), env.order) for k in ticks])
        big = Streams(seeds)  # array-seeded: at least SEED_ARRAYS_FROM streams
        cache = env._policy_seeded = (ticks.start, ticks.stop, big.state)
    return Streams.continuing(cache[2], (tick - cache[0]) * n_all + idx)


def order_columns(env: "MarketEnv", traders: Sequence["Trader"]) -> tuple[list[int], list[int], list[int]]:
    """Side codes (HOLD, BUY, SELL), prices and quantities of every trader's order, in ``traders``' order."""
    from environments.market.env import ASSET

    c = env.cfg
    n = len(traders)
    aids = [a.aid for a in traders]
    index = env.index
    idx = np.array([index[x] for x in aids], dtype=np.int64)
    st = policy_streams(env, aids, idx)
    pol_all, risk_all, buyer_all = _static(env)
    if c.setup == "induced" and st.plain is not None and pol_all.max(initial=0) <= 1:  # ZI-C / ZI-U only
        return _induced_small(env, traders, st.plain)
    acc = env.accounts
    cash_d, held_d = acc.cash, acc.cash_held
    units_d, uheld_d = acc.units.get(ASSET, {}), acc.units_held.get(ASSET, {})
    cash = np.array([cash_d.get(x, 0) for x in aids], dtype=np.int64)
    units = np.array([units_d.get(x, 0) for x in aids], dtype=np.int64)
    if c.replace_quotes:  # a new quote replaces the resting ones: their escrow is spendable
        cash += np.array([held_d.get(x, 0) for x in aids], dtype=np.int64)
        units += np.array([uheld_d.get(x, 0) for x in aids], dtype=np.int64)
    policy = pol_all[idx]
    induced = c.setup == "induced"
    if induced:
        buyer = buyer_all[idx]
        traded, values, costs = env.traded, env.values, env.costs
        value = np.full(n, -1, dtype=np.int64)  # -1: schedule used up (or none)
        cost = np.full(n, -1, dtype=np.int64)
        k = [traded[x] for x in aids]
        for j, (i, kj) in enumerate(zip(idx.tolist(), k)):  # env.next_unit, inlined
            sched = values.get(i)
            if sched is not None and kj < len(sched):
                value[j] = sched[kj]
            sched = costs.get(i)
            if sched is not None and kj < len(sched):
                cost[j] = sched[kj]
        remaining = c.units_each - np.array(k, dtype=np.int64)  # env.schedule_left
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
    risk_qty = risk_all[idx]

    side = np.zeros(n, dtype=np.int64)
    price = np.zeros(n, dtype=np.int64)
    want = np.ones(n, dtype=np.int64)  # the intent's quantity (ZI quotes one unit)
    mp = c.max_price

    # ZI-C: buyers bid on [1, value], sellers ask on [cost, max_price]; ZI-U: price on [1, max_price]
    zic, ziu = policy == 0, policy == 1
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
    mom = policy == 2
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
    fun = policy == 3
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
    return side.tolist(), price.tolist(), qty.tolist()


def _induced_small(env: "MarketEnv", traders: Sequence["Trader"], py: _PyStreams
                   ) -> tuple[list[int], list[int], list[int]]:
    """``order_columns`` for an induced market of a few traders (ZI-C or ZI-U), in plain integers.

    The array form's fixed cost (some forty NumPy calls) is most of a 20-trader tick; this is
    the same rule per trader, on the same streams (``Streams.integers``: a one-value range
    draws nothing).
    """
    from environments.market.env import ASSET

    c = env.cfg
    mp, max_qty, units_each, replace = c.max_price, c.max_qty, c.units_each, c.replace_quotes
    acc = env.accounts
    cash_d, held_d = acc.cash, acc.cash_held
    units_d, uheld_d = acc.units.get(ASSET, {}), acc.units_held.get(ASSET, {})
    index, traded, values, costs = env.index, env.traded, env.values, env.costs
    bounded = py.bounded
    sides, prices, qtys = [HOLD] * len(traders), [0] * len(traders), [0] * len(traders)
    for j, a in enumerate(traders):
        aid = a.aid
        i, k = index[aid], traded[aid]
        buyer = a.role == "buyer"
        sched = values.get(i) if buyer else costs.get(i)
        unit = sched[k] if sched is not None and k < len(sched) else None  # env.next_unit
        if a.policy == "zic":  # policies.zi_c
            if unit is None:
                continue
            lo, hi = (1, min(unit, mp)) if buyer else (max(unit, 1), mp)
            if lo > hi:
                continue  # a seller whose cost is above any admissible price
        else:  # policies.zi_u: a price first, whether or not the schedule is used up
            lo, hi = 1, mp
        price = lo + bounded(j, hi - lo) if hi > lo else lo
        if unit is None:
            continue
        # intent_to_action: the price is in range; one unit, capped by means and the schedule left
        if replace:
            cap = (cash_d.get(aid, 0) + held_d.get(aid, 0)) // price if buyer else \
                units_d.get(aid, 0) + uheld_d.get(aid, 0)
            left = units_each - k
        else:
            cap = cash_d.get(aid, 0) // price if buyer else units_d.get(aid, 0)
            left = units_each - k - sum(o.remaining for o in env.book.open_orders(aid))
        qty = min(1, cap, max_qty, left)
        if qty > 0:
            sides[j], prices[j], qtys[j] = BUY if buyer else SELL, price, qty
    return sides, prices, qtys


def apply_orders(env: "MarketEnv", traders: Sequence["Trader"], sides: Sequence[int], prices: Sequence[int],
                 qtys: Sequence[int], source: str) -> None:
    """``env.apply`` for every trader in turn, its events written as one batch at the end.

    The same book operations in the same order; each payload is the text ``dumps`` writes for
    ``apply``'s dict (keys sorted), built from a template. A reject (rare) is ``dumps``'d.
    """
    from environments.market.env import ASSET

    c = env.cfg
    book, acc = env.book, env.accounts
    tick = env.tick
    expires = tick + c.order_ttl
    replace, induced = c.replace_quotes, c.setup == "induced"
    cash_d, held_d = acc.cash, acc.cash_held
    units_d, uheld_d = acc.units[ASSET], acc.units_held[ASSET]
    mine_of, cancel, place = book._mine, book.cancel, book.place
    max_qty, units_each, traded = c.max_qty, c.units_each, env.traded
    src = quote(source)
    ev: list[tuple[str, str, str, str]] = []
    for a, s_, price, qty in zip(traders, sides, prices, qtys):
        if s_ == HOLD:
            continue
        aid = a.aid
        q_aid = quote(aid)
        if replace:
            mine = mine_of.get(aid)
            if mine:
                for o in list(mine.values()):
                    left = o.remaining  # the book zeroes it when it releases the escrow
                    cancel(o.id, aid)
                    ev.append((aid, "cancel", f'{{"order_id":{o.id},"price":{o.price},"qty":{left},'
                                              f'"side":"{_TEXT[o.side]}","trader":{q_aid}}}', PUBLIC))
        # env.view + actions.affordable
        cash, units = cash_d.get(aid, 0), units_d.get(aid, 0)
        remaining = units_each - traded[aid] if induced else None
        if replace:
            cash, units = cash + held_d.get(aid, 0), units + uheld_d.get(aid, 0)
        elif remaining is not None:
            remaining -= sum(o.remaining for o in book.open_orders(aid))
        side = _SIDES[s_]
        q = min(qty, cash // price if s_ == BUY else units, max_qty)
        if remaining is not None:
            q = min(q, remaining)
        qty = min(qty, max(q, 0))
        if qty <= 0:
            reason = f"cannot commit a {side} at {price} any more (cash {cash}, units {units})"
            ev.append((aid, "reject", dumps({"trader": aid, "reason": reason}), "private:" + aid))
            continue
        res = place(aid, _ENUM[s_], qty, price, tick, expires_at=expires)
        if not res.ok:
            ev.append((aid, "reject", dumps({"trader": aid, "reason": res.rejected.value}), "private:" + aid))
            continue
        ev.append((aid, "order", f'{{"order_id":{res.order.id},"price":{price},"qty":{qty},"side":"{side}",'
                                 f'"source":{src},"trader":{q_aid}}}', PUBLIC))
        for f in res.fills:
            env.settle_fill(f)
            buy = f.aggressor_side is Side.BUY
            ev.append((f.buyer if buy else f.seller, "trade",
                       f'{{"aggressor":"{"buy" if buy else "sell"}","buyer":{quote(f.buyer)},"price":{f.price},'
                       f'"qty":{f.qty},"seller":{quote(f.seller)}}}', PUBLIC))
    env.svc.events.extend_encoded(tick, env.phase, ev)
