"""Order book: hand-made cases with known fills, plus property tests over random op sequences."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from environments.market.book import Accounts, OrderBook, Reject, Side
from tests.environments.market.pure_market import run_zi_flow

MAXP = 50


def make_book(traders=("a", "b", "c"), cash=10_000, units=100, max_price=MAXP):
    acc = Accounts()
    for t in traders:
        acc.endow(t, cash=cash, units=units)
    return acc, OrderBook(acc, max_price=max_price)


def escrow_matches_book(acc: Accounts, book: OrderBook) -> bool:
    """Escrow held per trader equals what its resting orders need, exactly."""
    need_cash: dict = {}
    need_units: dict = {}
    for o in book.open_orders():
        if o.side is Side.BUY:
            need_cash[o.trader] = need_cash.get(o.trader, 0) + o.price * o.remaining
        else:
            need_units[o.trader] = need_units.get(o.trader, 0) + o.remaining
    held_u = acc.units_held["A"]
    return all(acc.cash_held[t] == need_cash.get(t, 0) for t in acc.cash_held) and all(
        held_u.get(t, 0) == need_units.get(t, 0) for t in set(held_u) | set(need_units)
    )


# ----- hand-made cases --------------------------------------------------------------


def test_partial_fill_at_resting_price_refunds_buyer():
    acc, book = make_book()
    r1 = book.place("a", Side.SELL, 10, 20, tick=0)
    assert r1.ok and r1.resting and acc.holdings("a") == (10_000, 0, 90, 10)
    r2 = book.place("b", Side.BUY, 4, 25, tick=1)
    assert [(f.price, f.qty, f.buyer, f.seller) for f in r2.fills] == [(20, 4, "b", "a")]
    assert r2.fills[0].aggressor_side is Side.BUY
    # b paid 20 per unit, not its 25 limit, and nothing of b is left in escrow.
    assert acc.holdings("b") == (10_000 - 80, 0, 104, 0)
    assert acc.holdings("a") == (10_080, 0, 90, 6)
    assert book.order(r1.order.id).remaining == 6
    # A bigger bid takes the remaining 6 and rests the other 4 at its own price.
    r3 = book.place("c", Side.BUY, 10, 22, tick=2)
    assert sum(f.qty for f in r3.fills) == 6 and r3.order.remaining == 4
    assert book.snapshot().bids == ((22, 4),) and book.snapshot().asks == ()
    assert acc.holdings("c") == (10_000 - 6 * 20 - 4 * 22, 4 * 22, 106, 0)
    assert book.last_price == 20 and acc.check_conservation()


def test_price_then_time_priority_and_sell_aggressor_gets_bid_price():
    acc, book = make_book(traders=("a", "b", "c", "d"))
    old = book.place("a", Side.BUY, 1, 30, 0).order.id
    new = book.place("b", Side.BUY, 1, 30, 1).order.id
    best = book.place("c", Side.BUY, 1, 31, 2).order.id
    fills = book.place("d", Side.SELL, 3, 10, 3).fills
    assert [f.buy_order for f in fills] == [best, old, new]
    assert [f.price for f in fills] == [31, 30, 30]
    assert all(f.aggressor_side is Side.SELL for f in fills)
    assert acc.holdings("d")[0] == 10_000 + 91


def test_own_orders_are_skipped_and_stay():
    acc, book = make_book()
    mine = book.place("a", Side.SELL, 2, 10, 0).order.id
    other = book.place("b", Side.SELL, 2, 12, 1).order.id
    fills = book.place("a", Side.BUY, 3, 15, 2).fills
    assert [(f.seller, f.qty, f.price) for f in fills] == [("b", 2, 12)]
    assert book.order(mine).remaining == 2 and book.order(other) is None
    # a's own ask still rests below a's leftover bid (a self-cross is allowed, never filled).
    snap = book.snapshot()
    assert snap.best_ask == 10 and snap.best_bid == 15 and snap.spread == -5
    assert escrow_matches_book(acc, book) and acc.check_conservation()


def test_rejections_are_typed_and_change_nothing():
    acc, book = make_book(cash=100, units=2)
    before = acc.holdings("a")
    assert book.place("a", Side.BUY, 0, 10, 0).rejected is Reject.BAD_QTY
    assert book.place("a", Side.BUY, 1, 0, 0).rejected is Reject.BAD_PRICE
    assert book.place("a", Side.BUY, 1, MAXP + 1, 0).rejected is Reject.BAD_PRICE
    assert book.place("a", Side.BUY, 3, 40, 0).rejected is Reject.INSUFFICIENT_CASH
    assert book.place("a", Side.SELL, 3, 40, 0).rejected is Reject.INSUFFICIENT_UNITS
    assert book.place("zed", Side.SELL, 1, 40, 0).rejected is Reject.UNKNOWN_TRADER
    assert acc.holdings("a") == before and book.open_orders() == []
    oid = book.place("a", Side.SELL, 1, 40, 0).order.id
    assert book.cancel(oid, "b") is Reject.NOT_OWNER
    assert book.cancel(oid + 99, "a") is Reject.NOT_FOUND
    assert book.cancel(oid, "a") is None and acc.holdings("a") == before


def test_market_orders_bounded_by_means_and_never_rest():
    acc, book = make_book(traders=("a", "b", "m"), cash=10_000)
    book.place("a", Side.SELL, 3, 10, 0)
    book.place("b", Side.SELL, 3, 20, 0)
    acc.endow("m", cash=-10_000 + 55)  # m now has 55 cents
    r = book.place("m", Side.BUY, 10, None, 1)
    # 3 @ 10 = 30, then only 25 left: one unit @ 20; the rest is dropped, nothing rests.
    assert [(f.price, f.qty) for f in r.fills] == [(10, 3), (20, 1)]
    assert acc.holdings("m") == (5, 0, 104, 0) and not r.resting
    assert book.snapshot().asks == ((20, 2),)
    # Market sell limited to available units; empty opposite side gives no fills.
    acc2, book2 = make_book(traders=("s", "b"), units=2)
    book2.place("b", Side.BUY, 5, 7, 0)
    r2 = book2.place("s", Side.SELL, 5, None, 1)
    assert sum(f.qty for f in r2.fills) == 2 and acc2.holdings("s")[2] == 0
    assert book2.place("s", Side.SELL, 1, None, 2).rejected is Reject.INSUFFICIENT_UNITS
    assert acc.check_conservation() and acc2.check_conservation()


def test_expiry_releases_escrow_and_expired_orders_never_trade():
    acc, book = make_book()
    book.place("a", Side.BUY, 2, 30, 0, expires_at=5)
    book.place("b", Side.SELL, 1, 40, 0, expires_at=3)
    assert acc.holdings("a")[1] == 60 and acc.holdings("b")[3] == 1
    assert [o.trader for o in book.expire(3)] == ["b"]
    assert acc.holdings("b") == (10_000, 0, 100, 0)
    # At tick 5 the bid is dead: a crossing sell must not hit it.
    r = book.place("c", Side.SELL, 1, 10, 5)
    assert r.fills == [] and acc.holdings("a") == (10_000, 0, 100, 0)
    assert book.snapshot().bids == () and book.snapshot().asks == ((10, 1),)


def test_snapshot_levels_aggregate_and_depth():
    _, book = make_book()
    book.place("a", Side.BUY, 2, 10, 0)
    book.place("b", Side.BUY, 3, 10, 0)
    book.place("a", Side.BUY, 1, 8, 0)
    book.place("c", Side.SELL, 4, 12, 0)
    book.place("c", Side.SELL, 1, 15, 0)
    s = book.snapshot(levels=1)
    assert s.bids == ((10, 5),) and s.asks == ((12, 4),)
    assert (s.best_bid, s.best_ask, s.spread, s.bid_depth, s.ask_depth) == (10, 12, 2, 6, 5)
    assert s.mid == 11 and s.last_price is None


def test_dividend_is_an_explicit_injection():
    acc, book = make_book(traders=("a", "b"), units=3)
    book.place("a", Side.SELL, 2, 20, 0)  # escrowed units still earn the dividend
    assert acc.pay_dividend("A", 5) == 30
    assert acc.holdings("a")[0] == 10_015 and acc.check_conservation()
    acc.cash["a"] += 1  # a leak must be caught
    assert not acc.check_conservation()


def test_zi_flow_throughput_run_conserves():
    out = run_zi_flow(n_traders=30, ticks=100, seed=1)
    assert out["orders"] == 3000 and out["fills"] > 0 and out["conserved"]


# ----- property tests ---------------------------------------------------------------

TRADERS = ("a", "b", "c", "d")
op = st.one_of(
    st.tuples(
        st.just("place"),
        st.sampled_from(TRADERS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(-1, 6),  # qty, including invalid
        st.one_of(st.none(), st.integers(0, MAXP + 1)),  # price, None = market
        st.one_of(st.none(), st.integers(0, 8)),  # lifetime
    ),
    st.tuples(st.just("cancel"), st.sampled_from(TRADERS), st.integers(0, 30)),
    st.tuples(st.just("tick")),
)


def run_ops(ops, cash=300, units=6):
    acc, book = make_book(traders=TRADERS, cash=cash, units=units)
    tick, prices, fills, results = 0, {}, [], []
    for o in ops:
        if o[0] == "place":
            _, t, side, qty, price, life = o
            exp = None if life is None else tick + life
            r = book.place(t, side, qty, price, tick, expires_at=exp)
            if r.ok:
                prices[r.order.id] = (t, side, price)
            fills += r.fills
            results.append(r)
        elif o[0] == "cancel":
            book.cancel(o[2], o[1])
        else:
            tick += 1
            book.expire(tick)
        yield acc, book, prices, fills, results


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(op, max_size=40))
def test_conservation_and_escrow_after_any_sequence(ops):
    for acc, book, *_ in run_ops(ops):
        assert acc.check_conservation()
        assert escrow_matches_book(acc, book)


@SETTINGS
@given(st.lists(op, max_size=40))
def test_fills_at_resting_price_never_self_and_within_limits(ops):
    acc = book = None
    fills, prices = [], {}
    for acc, book, prices, fills, _ in run_ops(ops):
        pass
    for f in fills:
        assert f.buyer != f.seller
        buy_t, _, buy_px = prices[f.buy_order]
        sell_t, _, sell_px = prices[f.sell_order]
        assert (buy_t, sell_t) == (f.buyer, f.seller)
        resting_px = sell_px if f.aggressor_side is Side.BUY else buy_px
        aggr_px = buy_px if f.aggressor_side is Side.BUY else sell_px
        assert f.price == resting_px and f.qty > 0
        if aggr_px is not None:  # limit aggressor never trades through its own limit
            assert f.price <= aggr_px if f.aggressor_side is Side.BUY else f.price >= aggr_px


@SETTINGS
@given(st.lists(op, max_size=40))
def test_book_only_crosses_with_itself_and_empties_cleanly(ops):
    acc = book = None
    for acc, book, *_ in run_ops(ops):
        bids = [o for o in book.open_orders() if o.side is Side.BUY]
        asks = [o for o in book.open_orders() if o.side is Side.SELL]
        assert all(b.trader == a.trader for b in bids for a in asks if b.price >= a.price)
    if book is None:
        return
    for t in TRADERS:
        book.cancel_all(t)
    assert book.open_orders() == []
    assert all(v == 0 for v in acc.cash_held.values())
    assert all(v == 0 for v in acc.units_held["A"].values())
    s = book.snapshot()
    assert (s.bids, s.asks, s.bid_depth, s.ask_depth) == ((), (), 0, 0)
    assert acc.check_conservation()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("a", "b", "c")), st.integers(1, MAXP), st.integers(1, 3)),
        min_size=1,
        max_size=12,
    )
)
def test_sweep_follows_price_then_time_priority(asks):
    """A sweeping bid from a fourth trader fills resting asks sorted by (price, arrival)."""
    acc, book = make_book(traders=("a", "b", "c", "z"), cash=100_000, units=50)
    placed = []
    for seq, (t, px, q) in enumerate(asks):
        r = book.place(t, Side.SELL, q, px, 0)
        placed.append((px, seq, r.order.id, q))
    total = sum(q for *_, q in placed)
    fills = book.place("z", Side.BUY, total, MAXP, 1).fills
    expected = [(oid, px, q) for px, _, oid, q in sorted(placed)]
    assert [(f.sell_order, f.price, f.qty) for f in fills] == expected
    assert book.open_orders() == [] and acc.check_conservation()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, MAXP), st.integers(1, MAXP))
def test_partial_fill_quantities(q_rest, q_in, p_rest, p_in):
    acc, book = make_book(cash=100_000, units=50)
    rest = book.place("a", Side.SELL, q_rest, p_rest, 0).order
    r = book.place("b", Side.BUY, q_in, p_in, 1)
    filled = sum(f.qty for f in r.fills)
    assert filled == (min(q_rest, q_in) if p_in >= p_rest else 0)
    assert rest.remaining == q_rest - filled and r.order.remaining == q_in - filled
    assert acc.holdings("b")[0] == 100_000 - filled * p_rest - (q_in - filled) * p_in
