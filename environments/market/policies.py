"""Scripted trader policies and the induced-value market setup.

A policy is a pure function `(obs, rng) -> OrderIntent | None`: everything it may use is in
the observation, and all randomness comes from the numpy Generator passed in, so a run is
reproducible from its seed. Parameterised policies (momentum, fundamental) take their knobs
as keyword arguments; bind them with `functools.partial`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from environments.market.book import Side, TraderId


@dataclass(frozen=True, slots=True)
class TraderObs:
    """What a scripted trader sees at its turn."""

    trader: TraderId
    tick: int
    max_price: int
    cash: int = 0
    units: int = 0
    role: str | None = None  # "buyer" / "seller" in induced-value markets
    next_value: int | None = None  # buyer's value of its next unit (None: schedule done)
    next_cost: int | None = None  # seller's cost of its next unit
    best_bid: int | None = None
    best_ask: int | None = None
    last_price: int | None = None
    price_history: tuple[int, ...] = field(default_factory=tuple)  # oldest first
    fundamental: int | None = None  # this trader's perceived value


@dataclass(frozen=True, slots=True)
class OrderIntent:
    side: Side
    price: int | None  # None = market order
    qty: int = 1


def _uniform(rng: np.random.Generator, low: int, high: int) -> int:
    """Integer uniform on the closed interval [low, high]."""
    return int(rng.integers(low, high + 1))


def zi_u(obs: TraderObs, rng: np.random.Generator) -> OrderIntent | None:
    """Gode–Sunder ZI-U: price uniform on [1, max_price], ignoring values and costs.

    The role still fixes the side and the trader stops once its schedule is used up, as in
    the original markets; only the no-loss constraint is dropped.
    """
    price = _uniform(rng, 1, obs.max_price)
    if obs.role == "buyer":
        return OrderIntent(Side.BUY, price) if obs.next_value is not None else None
    if obs.role == "seller":
        return OrderIntent(Side.SELL, price) if obs.next_cost is not None else None
    side = Side.BUY if rng.random() < 0.5 else Side.SELL  # roleless: coin flip
    return OrderIntent(side, price)


def zi_c(obs: TraderObs, rng: np.random.Generator) -> OrderIntent | None:
    """Gode–Sunder ZI-C: buyers bid on [1, value], sellers ask on [cost, max_price]."""
    if obs.role == "buyer" and obs.next_value is not None:
        return OrderIntent(Side.BUY, _uniform(rng, 1, min(obs.next_value, obs.max_price)))
    if obs.role == "seller" and obs.next_cost is not None:
        low = max(obs.next_cost, 1)
        if low > obs.max_price:
            return None  # cost above any admissible price: never sell at a loss
        return OrderIntent(Side.SELL, _uniform(rng, low, obs.max_price))
    return None


def _clip_price(price: float, max_price: int) -> int:
    return int(min(max(round(price), 1), max_price))


def momentum(
    obs: TraderObs,
    rng: np.random.Generator,
    window: int = 5,
    threshold: float = 0.0,
    qty: int = 1,
    aggression: int = 1,
) -> OrderIntent | None:
    """Trend follower: buy after the price rose over `window` ticks, sell after it fell.

    `threshold` is the minimum relative move; the limit price crosses the touch by
    `aggression` ticks so the order is likely to execute now.
    """
    hist = obs.price_history
    if len(hist) < window + 1 or hist[-window - 1] <= 0:
        return None
    move = hist[-1] / hist[-window - 1] - 1.0
    ref = obs.last_price if obs.last_price is not None else hist[-1]
    if move > threshold and obs.cash > 0:
        touch = obs.best_ask if obs.best_ask is not None else ref
        price = _clip_price(touch + aggression, obs.max_price)
        n = min(qty, obs.cash // price)
        return OrderIntent(Side.BUY, price, n) if n > 0 else None
    if move < -threshold and obs.units > 0:
        touch = obs.best_bid if obs.best_bid is not None else ref
        price = _clip_price(touch - aggression, obs.max_price)
        return OrderIntent(Side.SELL, price, min(qty, obs.units))
    return None


def fundamental(
    obs: TraderObs,
    rng: np.random.Generator,
    margin: float = 0.02,
    qty: int = 1,
) -> OrderIntent | None:
    """Value trader: buy below perceived value minus margin, sell above value plus margin.

    It quotes at the edge of its band (value * (1 -/+ margin)), so it trades against any
    resting order priced through that edge and otherwise provides liquidity there.
    """
    if obs.fundamental is None:
        return None
    low = _clip_price(obs.fundamental * (1 - margin), obs.max_price)
    high = _clip_price(obs.fundamental * (1 + margin), obs.max_price)
    ask, bid = obs.best_ask, obs.best_bid
    ref = obs.last_price
    cheap = (ask is not None and ask < low) or (ask is None and ref is not None and ref < low)
    rich = (bid is not None and bid > high) or (bid is None and ref is not None and ref > high)
    if cheap and obs.cash >= low:
        return OrderIntent(Side.BUY, low, min(qty, obs.cash // low))
    if rich and obs.units > 0:
        return OrderIntent(Side.SELL, high, min(qty, obs.units))
    return None


# ----- induced-value setup -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InducedMarket:
    """Per-trader redemption values (buyers) and unit costs (sellers), in trading order."""

    values: dict[int, list[int]]
    costs: dict[int, list[int]]

    @property
    def buyers(self) -> list[int]:
        return list(self.values)

    @property
    def sellers(self) -> list[int]:
        return list(self.costs)


def induced_values(
    n_buyers: int,
    n_sellers: int,
    units_each: int,
    value_range: tuple[int, int],
    cost_range: tuple[int, int],
    rng: np.random.Generator,
) -> InducedMarket:
    """Draw integer schedules uniformly from the closed ranges.

    Buyers' values are sorted high to low and sellers' costs low to high (diminishing
    marginal value, rising marginal cost), the order in which units are traded. Buyers get
    ids 0..n_buyers-1, sellers the next n_sellers ids.
    """
    vlo, vhi = value_range
    clo, chi = cost_range
    values = {
        b: sorted((int(v) for v in rng.integers(vlo, vhi + 1, units_each)), reverse=True)
        for b in range(n_buyers)
    }
    costs = {
        n_buyers + s: sorted(int(c) for c in rng.integers(clo, chi + 1, units_each))
        for s in range(n_sellers)
    }
    return InducedMarket(values, costs)


def _flatten(schedules: Mapping[object, Sequence[int]] | Iterable[Sequence[int]]) -> list[int]:
    seqs = schedules.values() if isinstance(schedules, Mapping) else schedules
    return [int(x) for s in seqs for x in s]


def competitive_quantity(
    values: Mapping[object, Sequence[int]] | Iterable[Sequence[int]],
    costs: Mapping[object, Sequence[int]] | Iterable[Sequence[int]],
) -> int:
    """Units traded in competitive equilibrium (pairs with value > cost)."""
    demand = sorted(_flatten(values), reverse=True)
    supply = sorted(_flatten(costs))
    return sum(1 for v, c in zip(demand, supply, strict=False) if v > c)


def max_surplus(
    values: Mapping[object, Sequence[int]] | Iterable[Sequence[int]],
    costs: Mapping[object, Sequence[int]] | Iterable[Sequence[int]],
) -> int:
    """Competitive-equilibrium surplus: walk sorted demand down and supply up while v > c."""
    demand = sorted(_flatten(values), reverse=True)
    supply = sorted(_flatten(costs))
    return sum(v - c for v, c in zip(demand, supply, strict=False) if v > c)
