"""Continuous double auction limit order book with price-time priority and escrow.

Rules follow the Foundation CDA (economics.md §3): bids escrow cash, asks escrow units,
best price first then oldest, self-trades skipped, the trade price is the *resting* order's
price (an aggressive bid is refunded limit - price), expiry returns escrow. All money is in
integer ticks (cents) so conservation checks are exact.

Several books (one per asset) may share one `Accounts`, so cash is common and units are
tracked per asset.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, insort
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from numbers import Integral

TraderId = Hashable


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class Reject(str, Enum):
    """Typed reasons an order or cancel is refused (no exceptions on the hot path)."""

    BAD_QTY = "bad_qty"
    BAD_PRICE = "bad_price"
    UNKNOWN_TRADER = "unknown_trader"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_UNITS = "insufficient_units"
    NOT_FOUND = "not_found"
    NOT_OWNER = "not_owner"


@dataclass(slots=True)
class Order:
    id: int
    trader: TraderId
    side: Side
    price: int | None  # None = market order
    qty: int
    remaining: int
    tick: int
    expires_at: int | None  # first tick at which the order is no longer live
    seq: int  # time priority; increases with every accepted order


@dataclass(frozen=True, slots=True)
class Fill:
    buyer: TraderId
    seller: TraderId
    price: int
    qty: int
    tick: int
    aggressor_side: Side
    buy_order: int
    sell_order: int


@dataclass(slots=True)
class PlaceResult:
    """Outcome of `place`: either rejected (reason set) or accepted with its fills."""

    order: Order | None
    fills: list[Fill] = field(default_factory=list)
    rejected: Reject | None = None

    @property
    def ok(self) -> bool:
        return self.rejected is None

    @property
    def resting(self) -> bool:
        return self.order is not None and self.order.price is not None and self.order.remaining > 0


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    bids: tuple[tuple[int, int], ...]  # (price, qty), best first
    asks: tuple[tuple[int, int], ...]
    best_bid: int | None
    best_ask: int | None
    spread: int | None
    bid_depth: int  # total resting units on the side
    ask_depth: int
    last_price: int | None

    @property
    def mid(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2


class Accounts:
    """Cash (shared) and per-asset units, each split into available and escrowed.

    Totals change only through `endow` and `pay_dividend`, which record what they inject so
    `check_conservation` can compare the live sums against the expected ones.
    """

    def __init__(self) -> None:
        self.cash: dict[TraderId, int] = {}
        self.cash_held: dict[TraderId, int] = {}
        self.units: dict[str, dict[TraderId, int]] = {}
        self.units_held: dict[str, dict[TraderId, int]] = {}
        self._cash_in = 0
        self._units_in: dict[str, int] = {}

    def open(self, trader: TraderId) -> None:
        self.cash.setdefault(trader, 0)
        self.cash_held.setdefault(trader, 0)

    def _asset(self, asset: str) -> None:
        self.units.setdefault(asset, {})
        self.units_held.setdefault(asset, {})
        self._units_in.setdefault(asset, 0)

    def endow(self, trader: TraderId, cash: int = 0, units: int = 0, asset: str = "A") -> None:
        """Explicit injection (or removal, if negative and available) of cash/units."""
        self.open(trader)
        self._asset(asset)
        if self.cash[trader] + cash < 0 or self.units[asset].get(trader, 0) + units < 0:
            raise ValueError("endowment would make a balance negative")
        self.cash[trader] += cash
        self._cash_in += cash
        self.units[asset][trader] = self.units[asset].get(trader, 0) + units
        self.units_held[asset].setdefault(trader, 0)
        self._units_in[asset] += units

    def pay_dividend(self, asset: str, per_unit: int) -> int:
        """Pay `per_unit` cash on every unit owned, escrowed ones included. Returns total paid."""
        self._asset(asset)
        paid = 0
        for trader in set(self.units[asset]) | set(self.units_held[asset]):
            owned = self.units[asset].get(trader, 0) + self.units_held[asset].get(trader, 0)
            if owned:
                self.open(trader)
                self.cash[trader] += owned * per_unit
                paid += owned * per_unit
        self._cash_in += paid
        return paid

    def holdings(self, trader: TraderId, asset: str = "A") -> tuple[int, int, int, int]:
        """(cash, cash_held, units, units_held) for one trader."""
        return (
            self.cash.get(trader, 0),
            self.cash_held.get(trader, 0),
            self.units.get(asset, {}).get(trader, 0),
            self.units_held.get(asset, {}).get(trader, 0),
        )

    def totals(self) -> tuple[int, dict[str, int]]:
        """Total cash (available + escrow) and per-asset total units (available + escrow)."""
        cash = sum(self.cash.values()) + sum(self.cash_held.values())
        units = {
            a: sum(self.units[a].values()) + sum(self.units_held[a].values()) for a in self.units
        }
        return cash, units

    def check_conservation(self) -> bool:
        """True when live totals equal everything injected and no balance is negative."""
        cash, units = self.totals()
        nonneg = all(v >= 0 for v in self.cash.values()) and all(
            v >= 0 for v in self.cash_held.values()
        )
        nonneg = nonneg and all(
            v >= 0 for d in (*self.units.values(), *self.units_held.values()) for v in d.values()
        )
        return nonneg and cash == self._cash_in and units == self._units_in


class OrderBook:
    """One asset's book. Price levels live in sorted price lists plus insertion-ordered dicts
    (order id -> Order), so a level is FIFO by construction and cancel is O(1).

    Skipping own resting orders costs a scan past them at each crossed level; with ZI-style
    flow a trader has few orders per level, so this stays cheap.
    """

    def __init__(self, accounts: Accounts, asset: str = "A", max_price: int = 1000) -> None:
        self.accounts = accounts
        self.asset = asset
        self.max_price = max_price
        accounts._asset(asset)
        self.last_price: int | None = None
        self._seq = itertools.count(1)
        self._orders: dict[int, Order] = {}
        self._levels: dict[Side, dict[int, dict[int, Order]]] = {Side.BUY: {}, Side.SELL: {}}
        self._prices: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}  # ascending
        self._level_qty: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
        self._depth: dict[Side, int] = {Side.BUY: 0, Side.SELL: 0}
        self._expiry: list[tuple[int, int]] = []  # heap of (expires_at, order id)
        # each trader's resting orders in resting order: open_orders(trader) without a scan of the book
        self._mine: dict[TraderId, dict[int, Order]] = {}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_mine" not in state:  # a snapshot from before the per-trader index
            self._mine = {}
            for o in self._orders.values():
                self._mine.setdefault(o.trader, {})[o.id] = o

    # ----- queries -------------------------------------------------------------------
    def order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def open_orders(self, trader: TraderId | None = None) -> list[Order]:
        if trader is None:
            return list(self._orders.values())
        mine = self._mine.get(trader)
        return list(mine.values()) if mine else []

    def best_bid(self) -> int | None:
        p = self._prices[Side.BUY]
        return p[-1] if p else None

    def best_ask(self) -> int | None:
        p = self._prices[Side.SELL]
        return p[0] if p else None

    def snapshot(self, levels: int = 5) -> BookSnapshot:
        bq, aq = self._level_qty[Side.BUY], self._level_qty[Side.SELL]
        bids = tuple((p, bq[p]) for p in reversed(self._prices[Side.BUY][-levels:]))
        asks = tuple((p, aq[p]) for p in self._prices[Side.SELL][:levels])
        bb, ba = self.best_bid(), self.best_ask()
        return BookSnapshot(
            bids=bids,
            asks=asks,
            best_bid=bb,
            best_ask=ba,
            spread=None if bb is None or ba is None else ba - bb,
            bid_depth=self._depth[Side.BUY],
            ask_depth=self._depth[Side.SELL],
            last_price=self.last_price,
        )

    # ----- commands ------------------------------------------------------------------
    def place(
        self,
        trader: TraderId,
        side: Side | str,
        qty: int,
        price: int | None,
        tick: int,
        expires_at: int | None = None,
    ) -> PlaceResult:
        """Place a limit (price set) or market (price None) order; match it; rest the rest.

        Expired orders are removed first so they can never trade.
        """
        side = side if type(side) is Side else Side(side)
        if self._expiry and self._expiry[0][0] <= tick:
            self.expire(tick)
        acc = self.accounts
        if trader not in acc.cash:
            return PlaceResult(None, rejected=Reject.UNKNOWN_TRADER)
        if not _is_int(qty) or qty <= 0:
            return PlaceResult(None, rejected=Reject.BAD_QTY)
        if price is not None and (not _is_int(price) or not 1 <= price <= self.max_price):
            return PlaceResult(None, rejected=Reject.BAD_PRICE)
        qty, price = int(qty), None if price is None else int(price)  # numpy ints -> int
        units = acc.units[self.asset]
        if price is None:
            if side is Side.BUY and acc.cash[trader] <= 0:
                return PlaceResult(None, rejected=Reject.INSUFFICIENT_CASH)
            if side is Side.SELL and units.get(trader, 0) <= 0:
                return PlaceResult(None, rejected=Reject.INSUFFICIENT_UNITS)
        elif side is Side.BUY:
            if acc.cash[trader] < price * qty:
                return PlaceResult(None, rejected=Reject.INSUFFICIENT_CASH)
            acc.cash[trader] -= price * qty
            acc.cash_held[trader] += price * qty
        else:
            if units.get(trader, 0) < qty:
                return PlaceResult(None, rejected=Reject.INSUFFICIENT_UNITS)
            self._hold_units(trader, qty)

        seq = next(self._seq)
        order = Order(seq, trader, side, price, qty, qty, tick, expires_at, seq)
        fills = self._match(order, tick) if self._crosses(side, price) else []
        if price is not None and order.remaining > 0:
            if expires_at is not None and expires_at <= tick:
                self._release(order)  # already dead: never rests
            else:
                self._rest(order)
        return PlaceResult(order, fills)

    def cancel(self, order_id: int, trader: TraderId) -> Reject | None:
        """Cancel a resting order of `trader`; returns None on success, else the reason."""
        order = self._orders.get(order_id)
        if order is None:
            return Reject.NOT_FOUND
        if order.trader != trader:
            return Reject.NOT_OWNER
        self._unrest(order)
        self._release(order)
        return None

    def cancel_all(self, trader: TraderId) -> int:
        """Cancel every resting order of `trader`; returns how many were cancelled."""
        mine = [o.id for o in self.open_orders(trader)]
        for oid in mine:
            self.cancel(oid, trader)
        return len(mine)

    def expire(self, tick: int) -> list[Order]:
        """Remove orders with expires_at <= tick and release their escrow."""
        gone: list[Order] = []
        heap = self._expiry
        while heap and heap[0][0] <= tick:
            _, oid = heapq.heappop(heap)
            order = self._orders.get(oid)
            if order is None:  # already filled or cancelled (lazy deletion)
                continue
            self._unrest(order)
            self._release(order)
            gone.append(order)
        return gone

    # ----- internals -----------------------------------------------------------------
    def _hold_units(self, trader: TraderId, qty: int) -> None:
        a = self.accounts
        a.units[self.asset][trader] -= qty
        held = a.units_held[self.asset]
        held[trader] = held.get(trader, 0) + qty

    def _release(self, order: Order) -> None:
        """Return the escrow still backing `order`'s unfilled remainder."""
        if order.remaining <= 0 or order.price is None:
            return
        a = self.accounts
        if order.side is Side.BUY:
            amount = order.price * order.remaining
            a.cash_held[order.trader] -= amount
            a.cash[order.trader] += amount
        else:
            a.units_held[self.asset][order.trader] -= order.remaining
            a.units[self.asset][order.trader] += order.remaining
        order.remaining = 0

    def _rest(self, order: Order) -> None:
        side, price = order.side, order.price
        assert price is not None
        levels = self._levels[side]
        level = levels.get(price)
        if level is None:
            level = levels[price] = {}
            insort(self._prices[side], price)
            self._level_qty[side][price] = 0
        level[order.id] = order
        self._level_qty[side][price] += order.remaining
        self._depth[side] += order.remaining
        self._orders[order.id] = order
        self._mine.setdefault(order.trader, {})[order.id] = order
        if order.expires_at is not None:
            heapq.heappush(self._expiry, (order.expires_at, order.id))

    def _unrest(self, order: Order) -> None:
        side, price = order.side, order.price
        assert price is not None
        level = self._levels[side][price]
        del level[order.id]
        del self._orders[order.id]
        self._forget(order)
        self._level_qty[side][price] -= order.remaining
        self._depth[side] -= order.remaining
        if not level:
            self._drop_level(side, price)

    def _forget(self, order: Order) -> None:
        mine = self._mine[order.trader]
        del mine[order.id]
        if not mine:
            del self._mine[order.trader]

    def _drop_level(self, side: Side, price: int) -> None:
        del self._levels[side][price]
        del self._level_qty[side][price]
        prices = self._prices[side]
        del prices[bisect_left(prices, price)]

    def _crosses(self, side: Side, price: int | None) -> bool:
        """Whether an order could trade now (the opposite touch is at or through its limit)."""
        if side is Side.BUY:
            asks = self._prices[Side.SELL]
            return bool(asks) and (price is None or asks[0] <= price)
        bids = self._prices[Side.BUY]
        return bool(bids) and (price is None or bids[-1] >= price)

    def _crossing_prices(self, order: Order) -> Iterable[int]:
        """Opposite-side prices the order may trade at, best first (a snapshot list)."""
        if order.side is Side.BUY:
            asks = self._prices[Side.SELL]
            end = len(asks) if order.price is None else bisect_left(asks, order.price + 1)
            return asks[:end]
        bids = self._prices[Side.BUY]
        start = 0 if order.price is None else bisect_left(bids, order.price)
        return bids[start:][::-1]

    def _match(self, order: Order, tick: int) -> list[Fill]:
        fills: list[Fill] = []
        opp = Side.SELL if order.side is Side.BUY else Side.BUY
        levels, level_qty = self._levels[opp], self._level_qty[opp]
        a, asset = self.accounts, self.asset
        units, units_held = a.units[asset], a.units_held[asset]
        is_buy = order.side is Side.BUY
        is_market = order.price is None
        me = order.trader
        for price in self._crossing_prices(order):
            if order.remaining == 0:
                break
            level = levels[price]
            done: list[int] = []
            for rest in level.values():
                if rest.trader == me:
                    continue  # no self-trades; own order keeps its place
                qty = min(order.remaining, rest.remaining)
                if is_market:
                    # Market orders are bounded by what is available right now.
                    qty = min(qty, a.cash[me] // price if is_buy else units.get(me, 0))
                    if qty == 0:
                        break
                cost = price * qty
                if is_buy:
                    buyer, seller = me, rest.trader
                    if is_market:
                        a.cash[buyer] -= cost
                    else:
                        # Escrowed at the limit; refund the price improvement.
                        a.cash_held[buyer] -= order.price * qty
                        a.cash[buyer] += (order.price - price) * qty
                    units_held[seller] -= qty
                    units[buyer] = units.get(buyer, 0) + qty
                    a.cash[seller] += cost
                    fill = Fill(buyer, seller, price, qty, tick, Side.BUY, order.id, rest.id)
                else:
                    buyer, seller = rest.trader, me
                    a.cash_held[buyer] -= cost  # resting bid escrowed at exactly this price
                    if is_market:
                        units[seller] -= qty
                    else:
                        units_held[seller] -= qty
                    units[buyer] = units.get(buyer, 0) + qty
                    a.cash[seller] += cost
                    fill = Fill(buyer, seller, price, qty, tick, Side.SELL, rest.id, order.id)
                fills.append(fill)
                order.remaining -= qty
                rest.remaining -= qty
                level_qty[price] -= qty
                self._depth[opp] -= qty
                self.last_price = price
                if rest.remaining == 0:
                    done.append(rest.id)
                if order.remaining == 0:
                    break
            for oid in done:
                del level[oid]
                self._forget(self._orders.pop(oid))
            if not level:
                self._drop_level(opp, price)
            if is_market and order.remaining > 0:
                # Out of means here means out of means at every worse level too.
                if (is_buy and a.cash[me] < price) or (not is_buy and units.get(me, 0) == 0):
                    break
        return fills


def _is_int(x: object) -> bool:
    if type(x) is int:  # the common case, without the ABC check
        return True
    return isinstance(x, Integral) and not isinstance(x, bool)


def conservation_totals(accounts: Accounts) -> tuple[int, dict[str, int]]:
    """Total cash+escrow and per-asset units+escrow (constant between endowments)."""
    return accounts.totals()
