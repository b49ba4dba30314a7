"""Market metrics on tiny hand-made inputs with known answers; policies and induced markets."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environments.common import event_study
from environments.market import metrics as m
from environments.market.book import Side
from environments.market.policies import (
    TraderObs,
    competitive_quantity,
    fundamental,
    induced_values,
    max_surplus,
    momentum,
    zi_c,
    zi_u,
)
from tests.environments.market.pure_market import run_induced_market


def trades(rows):
    """rows: (tick, price, qty, buyer, seller)."""
    return pl.DataFrame(
        rows, schema=["tick", "price", "qty", "buyer", "seller"], orient="row"
    )


# ----- surplus and efficiency --------------------------------------------------------


def test_max_surplus_and_ce_quantity():
    values = {0: [10, 8], 1: [4]}
    costs = {2: [2, 6], 3: [9]}
    # demand 10, 8, 4 vs supply 2, 6, 9: pairs (10,2), (8,6) gain; (4,9) does not.
    assert max_surplus(values, costs) == 8 + 2
    assert competitive_quantity(values, costs) == 2
    assert max_surplus([[5]], [[5]]) == 0


def test_realised_surplus_consumes_schedules_in_order():
    values = {0: [10, 8]}
    costs = {1: [3, 5]}
    # One row of 2 units: units are (10 - 3) + (8 - 5).
    assert m.realised_surplus(trades([(0, 6, 2, 0, 1)]), values, costs) == 10
    # Same units over two rows give the same answer.
    two = trades([(0, 6, 1, 0, 1), (1, 7, 1, 0, 1)])
    assert m.realised_surplus(two, values, costs) == 10
    assert m.allocative_efficiency(two, values, costs) == 1.0


def test_misallocation_lowers_efficiency():
    values = {0: [10], 1: [4]}
    costs = {2: [2], 3: [6]}
    # Max is 10 - 2 = 8 (4 < 6 is extramarginal). Trading 1<-2 and 0<-3 realises 2 + 4.
    t = trades([(0, 3, 1, 1, 2), (1, 8, 1, 0, 3)])
    assert m.realised_surplus(t, values, costs) == 6
    assert m.allocative_efficiency(t, values, costs) == pytest.approx(0.75)


def test_units_beyond_schedule_have_no_value():
    values = {0: [10]}
    costs = {1: [3, 4]}
    t = trades([(0, 5, 2, 0, 1)])  # buyer's second unit is worth 0
    assert m.realised_surplus(t, values, costs) == (10 - 3) + (0 - 4)
    t2 = trades([(0, 5, 1, 0, 1), (1, 5, 1, 0, 1), (2, 5, 1, 0, 1)])
    assert m.realised_surplus(t2, values, costs, extra_cost=7) == 7 - 4 - 7
    assert m.realised_surplus(trades([]), values, costs) == 0


def test_market_gini_is_the_common_gini():
    from environments.common import gini

    assert m.gini is gini


# ----- series ------------------------------------------------------------------------


def test_price_series_fills_gaps_and_vwap():
    t = trades([(0, 10, 1, 0, 1), (0, 12, 3, 0, 1), (2, 11, 2, 1, 0)])
    ps = m.price_series(t, ticks=range(3))
    assert ps["tick"].to_list() == [0, 1, 2]
    assert ps["price"].to_list() == [12, 12, 11]
    assert ps["volume"].to_list() == [4, 0, 2]
    assert ps["n_trades"].to_list() == [2, 0, 1]
    assert ps["vwap"][0] == pytest.approx(46 / 4) and ps["vwap"][1] is None


def test_book_series():
    book = pl.DataFrame(
        {"tick": [1, 0], "best_bid": [9, None], "best_ask": [12, 11],
         "bid_depth": [3, 0], "ask_depth": [2, 5]}
    )
    out = m.book_series(book)
    assert out["spread"].to_list() == [None, 3]
    assert out["mid"].to_list() == [None, 10.5]
    assert out["depth"].to_list() == [5, 5]


# ----- return statistics -------------------------------------------------------------


def test_log_returns_skip_missing():
    r = m.log_returns([100, None, 110, 99])
    assert r == pytest.approx([math.log(1.1), math.log(0.9)])


def test_autocorr_known_vectors():
    assert m.autocorr([1, -1, 1, -1], 1) == pytest.approx(-0.75)
    assert m.autocorr([1, 2, 3, 4], 1) == pytest.approx(0.25)  # (-1.5*-.5+-.5*.5+.5*1.5)/5
    assert math.isnan(m.autocorr([3, 3, 3], 1))
    # Alternating magnitudes: |r| = 1, 2, 1, 2 -> strongly negative at lag 1.
    assert m.abs_return_autocorr([1, -2, 1, -2], 1) == pytest.approx(-0.75)
    p = [100, 110, 100, 110, 100]  # returns alternate sign exactly
    assert m.return_autocorr(p, 1) == pytest.approx(-0.75)


def test_excess_kurtosis():
    assert m.excess_kurtosis([1, -1, 1, -1]) == pytest.approx(-2.0)
    # Bernoulli(p = 0.1) sample: excess kurtosis (1 - 6pq) / (pq) = 46 / 9, fat-tailed.
    assert m.excess_kurtosis([0.0] * 9 + [1.0]) == pytest.approx(46 / 9)


def test_hill_tail_index():
    # |r| sorted 8, 4, 2, 1 with k = 2: mean(log 4, log 2) = 1.5 log 2.
    assert m.hill_tail_index([1, -8, 2, 4], 0.5) == pytest.approx(1 / (1.5 * math.log(2)))
    # Zeros are dropped before choosing the threshold.
    assert m.hill_tail_index([0, 0, 1, -8, 2, 4], 0.5) == pytest.approx(1 / (1.5 * math.log(2)))
    assert math.isnan(m.hill_tail_index([1, 2], 0.1))


def test_hill_recovers_pareto_alpha():
    rng = np.random.default_rng(0)
    x = rng.pareto(3.0, 200_000) + 1.0  # Pareto with tail index 3
    assert m.hill_tail_index(x, 0.05) == pytest.approx(3.0, rel=0.05)


def test_gini_normalised():
    assert m.gini([0, 0, 0, 1]) == pytest.approx(1.0)
    assert m.gini([5, 5, 5]) == 0.0
    # sum|xi-xj| over ordered pairs = 20; raw = 20 / (2 * 16 * 2.5) = 0.25; * 4/3.
    assert m.gini([4, 1, 3, 2]) == pytest.approx(1 / 3)
    assert m.gini([7]) == 0.0 and m.gini([0, 0]) == 0.0


def test_trader_pnl_marks_to_market():
    t = pl.DataFrame(
        {"tick": [0, 1], "price": [10, 12], "qty": [2, 1],
         "buyer": ["A", "B"], "seller": ["B", "C"]}
    )
    out = m.trader_pnl(t, last_price=11)
    assert out["trader"].to_list() == ["A", "B", "C"]
    assert out["cash_flow"].to_list() == [-20, 8, 12]
    assert out["net_units"].to_list() == [2, -1, -1]
    assert out["pnl"].to_list() == [2, -3, 1]
    assert sum(out["pnl"]) == 0  # trading is zero-sum at a common mark


def test_event_study():
    prices = pl.DataFrame({"tick": list(range(10)), "price": [10] * 5 + [12] * 5})
    out = event_study(prices, shock_tick=5, window=3)
    assert (out["pre_mean"], out["post_mean"]) == (10, 12)
    assert out["change_pct"] == pytest.approx(20.0) and out["sign"] == 1.0
    down = event_study(prices.with_columns(pl.col("price").reverse()), 5, 2)
    assert down["sign"] == -1.0 and down["change_pct"] == pytest.approx(-100 * 2 / 12)
    empty = event_study(prices, shock_tick=50, window=3)
    assert math.isnan(empty["change_pct"]) and empty["sign"] == 0.0


# ----- policies ----------------------------------------------------------------------


def obs(**kw):
    base = dict(trader=0, tick=0, max_price=100)
    base.update(kw)
    return TraderObs(**base)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 100), st.integers(1, 100), st.integers(0, 2**32 - 1))
def test_zi_c_never_quotes_at_a_loss(value, cost, seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        b = zi_c(obs(role="buyer", next_value=value), rng)
        s = zi_c(obs(role="seller", next_cost=cost), rng)
        assert b.side is Side.BUY and 1 <= b.price <= value
        assert s.side is Side.SELL and cost <= s.price <= 100


def test_zi_policies_respect_schedules_and_range():
    rng = np.random.default_rng(0)
    assert zi_c(obs(role="buyer", next_value=None), rng) is None
    assert zi_u(obs(role="seller", next_cost=None), rng) is None
    prices = [zi_u(obs(role="buyer", next_value=5), rng).price for _ in range(2000)]
    assert min(prices) == 1 and max(prices) == 100  # uniform over the full range
    assert np.mean(np.array(prices) > 5) > 0.9  # ignores the value entirely


def test_momentum_follows_the_trend():
    rng = np.random.default_rng(0)
    up = momentum(obs(price_history=(10, 11, 12), best_ask=13, cash=1000, units=5), rng, window=2)
    assert up.side is Side.BUY and up.price == 14
    down = momentum(obs(price_history=(12, 11, 10), best_bid=9, cash=1000, units=5), rng, window=2)
    assert down.side is Side.SELL and down.price == 8
    assert momentum(obs(price_history=(10, 11, 10), cash=1000, units=5), rng, window=2) is None
    assert momentum(obs(price_history=(10,), cash=1000), rng, window=2) is None
    assert momentum(obs(price_history=(12, 11, 10), best_bid=9, units=0), rng, window=2) is None


def test_fundamental_buys_cheap_sells_rich():
    rng = np.random.default_rng(0)
    buy = fundamental(obs(fundamental=50, best_ask=40, cash=1000, units=3), rng, margin=0.1)
    assert buy.side is Side.BUY and buy.price == 45
    sell = fundamental(obs(fundamental=50, best_bid=60, cash=1000, units=3), rng, margin=0.1)
    assert sell.side is Side.SELL and sell.price == 55
    assert fundamental(obs(fundamental=50, best_bid=49, best_ask=51, cash=10**3, units=3),
                       rng, margin=0.1) is None
    assert fundamental(obs(fundamental=None, best_ask=1, cash=1000), rng) is None


def test_induced_values_shapes_and_order():
    mk = induced_values(3, 2, 4, (50, 60), (1, 9), np.random.default_rng(1))
    assert mk.buyers == [0, 1, 2] and mk.sellers == [3, 4]
    for v in mk.values.values():
        assert len(v) == 4 and v == sorted(v, reverse=True) and all(50 <= x <= 60 for x in v)
    for c in mk.costs.values():
        assert len(c) == 4 and c == sorted(c) and all(1 <= x <= 9 for x in c)


# ----- induced markets (Gode–Sunder direction) ---------------------------------------


def test_zic_efficient_and_beats_ziu():
    zic = [run_induced_market("zic", 10, 120, s) for s in range(6)]
    ziu = [run_induced_market("ziu", 10, 120, s) for s in range(6)]
    assert all(r["conserved"] for r in zic + ziu)
    e_c = np.mean([r["efficiency"] for r in zic])
    e_u = np.mean([r["efficiency"] for r in ziu])
    assert e_c > 0.9 and e_c > e_u + 0.3
    # ZI-C can never realise a negative-surplus trade; ZI-U runs out every schedule.
    assert all(r["realised_surplus"] >= 0 for r in zic)
    assert all(r["units_traded"] == 5 * 3 for r in ziu)
