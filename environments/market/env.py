"""Market: traders on one continuous double auction (limit order book), on the engine.

Two setups (conf/env/market.yaml, docs/market.md):
- ``induced``: Gode–Sunder. Half the traders are buyers with private redemption values,
  half sellers with private unit costs; allocative efficiency = realised / max surplus.
- ``asset``: one risky asset with a hidden fundamental value (random walk or mean
  reverting), periodic dividends, and a news shock (an interest-rate change at
  ``shock_tick`` that moves the fundamental by ``shock_size`` percent). Traders see the
  news and their own noisy fair-value estimate; the event study compares prices around it.

One tick runs the phases news -> orders -> clear. In ``orders`` every trader decides at once
(``act_all``, in a seeded shuffled order) from the same pre-phase state; decisions are then
applied to the book in that order, so results never depend on reply timing. Cash and units
are conserved exactly (integer cents) and checked after every phase that moves them.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Literal, Optional

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from agents.base import Player
from agents.memory import DEFAULT_IMPORTANCE, MemoryStream
from agents.persona import population_for
from environments.common import ConservationError, event_study, json_safe, per_usd
from environments.market import batch as mb
from environments.market import metrics as mm
from environments.market.actions import TraderView, affordable, check_order, order_model
from environments.market.book import Accounts, Fill, OrderBook, Side
from environments.market.policies import (
    OrderIntent,
    TraderObs,
    fundamental,
    induced_values,
    max_surplus,
    momentum,
    zi_c,
    zi_u,
)
from environments.registry import register
from sim.batch import act_batch, collector_paused, decide_bulk
from sim.engine import ActRequest, Environment, MetricSpec, Truth
from sim.events import private

ASSET = "A"
MIX_CYCLE = ("fundamental", "momentum", "zic")  # asset setup, trader_policy=mix
STRATEGY_TEXT = {
    "zic": "cautious random quoting: never buy above nor sell below your own value",
    "ziu": "noise trading: quote prices more or less at random",
    "momentum": "trend following: buy after prices rise, sell after they fall",
    "fundamental": "value investing: buy below your fair-value estimate, sell above it",
}


class MarketConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["market"] = "market"
    setup: Literal["induced", "asset"] = "asset"
    n_traders: int = Field(4, ge=2, le=100_000)
    ticks: int = Field(10, ge=1, le=1_000_000)
    trader_policy: Literal["zic", "ziu", "momentum", "fundamental", "mix"] = "mix"
    max_price: int = Field(200, ge=2, le=10**7)
    max_qty: int = Field(5, ge=1, le=10_000)
    order_ttl: int = Field(3, ge=1)
    replace_quotes: bool = True
    book_levels: int = Field(3, ge=1, le=50)
    recent_trades: int = Field(5, ge=0, le=100)
    order_tokens: int = Field(40, ge=8, le=1024)
    # induced setup
    units_each: int = Field(3, ge=1, le=1000)
    value_range: tuple[int, int] = (1, 200)
    cost_range: tuple[int, int] = (1, 200)
    stop_when_done: bool = True
    # asset setup
    fundamental_process: Literal["random_walk", "mean_reverting"] = "mean_reverting"
    fundamental_start: int = Field(100, ge=1)
    volatility_pct: float = Field(0.5, ge=0, le=50)
    mean_reversion: float = Field(0.1, ge=0, le=1)
    value_noise_pct: float = Field(3.0, ge=0, le=50)
    dividend_every: int = Field(5, ge=0)
    dividend_pct: float = Field(2.0, ge=0, le=100)
    shock_tick: Optional[int] = Field(5, ge=1)
    shock_size: float = Field(-10.0, gt=-100, le=1000)
    event_window: int = Field(5, ge=1)
    endow_cash: int = Field(2000, ge=0)
    endow_units: int = Field(10, ge=0)
    momentum_window: int = Field(3, ge=1)
    fundamental_margin: float = Field(0.02, ge=0, lt=1)


# ---------------------------------------------------------------- traders and their memory


def memorable(row: Any, aid: str) -> bool:
    """Whether a trader keeps an event: news, dividends, its own orders and its own fills.

    Other traders' quotes and the per-tick book are in every observation already; storing
    them would make each memory grow with the whole market's order flow.
    """
    get = row.get if isinstance(row, dict) else (lambda k: getattr(row, k))
    kind = get("kind")
    if kind in ("news", "dividend", "market_open"):
        return True
    if kind == "trade":
        payload = get("payload")
        trade = json.loads(payload) if isinstance(payload, str) else payload
        return aid in (trade.get("buyer"), trade.get("seller"))
    return get("actor") == aid and kind in ("order", "cancel", "expire", "reject", "endowment")


class TraderMemory(MemoryStream):
    """A memory stream that only stores what `memorable` keeps."""

    def __init__(self, aid: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.aid = aid

    @classmethod
    def of(cls, stream: MemoryStream, aid: str) -> "TraderMemory":
        """``stream`` (new and empty, the one ``Player`` made) as a TraderMemory: its arrays are taken
        over, not built again (a second empty stream cost ~25 us a trader at setup)."""
        self = cls.__new__(cls)
        self.__dict__.update(stream.__dict__)
        self.aid = aid
        return self

    def observe_events(self, events_rows, viewer_id, viewer_teams=(), importance=None,
                       default_importance: float = DEFAULT_IMPORTANCE, shared: dict | None = None) -> list[int]:
        rows = [r for r in events_rows if memorable(r, viewer_id)]
        return super().observe_events(rows, viewer_id, viewer_teams, importance, default_importance, shared)


def risk_words(risk: float) -> str:
    if risk < 0.4:
        return "risk-averse: trade small quantities and avoid chasing prices"
    if risk > 0.6:
        return "risk-seeking: trade larger quantities and act on your views"
    return "measured: moderate quantities"


class Trader(Player):
    policy: str = "zic"

    def __init__(self, model, aid, persona, role, memory_cfg, endpoint: str = "default"):
        super().__init__(model, aid, persona, role, (), endpoint, memory_cfg)
        # (scripted traders get no events at all: the run skips scripted agents' memories)
        self.memory = TraderMemory.of(self.memory, aid)

    def role_text(self) -> str:
        env: MarketEnv = self.model
        c = env.cfg
        if c.setup == "induced":
            goal = (f"You are a {self.role}. Each unit you {'buy' if self.role == 'buyer' else 'sell'} earns "
                    f"the difference between your private {'value' if self.role == 'buyer' else 'cost'} and the "
                    "trade price. Maximise your profit.")
        else:
            goal = "Dividends are paid per unit held. Maximise your final wealth (cash + units at market value)."
        return (f"You are trader {self.aid} in a continuous double auction for one asset. Prices are integer "
                f"cents from 1 to {c.max_price}; orders rest for {c.order_ttl} ticks; a new order replaces your "
                f"resting ones. {goal} Your strategy: {STRATEGY_TEXT[self.policy]}. "
                f"Risk attitude: {risk_words(self.persona.risk)}.")


# ---------------------------------------------------------------- pure helpers


def fundamental_step(value: float, anchor: float, process: str, vol_pct: float, kappa: float,
                     z: float) -> float:
    """One step of the log fundamental: a random walk, or Ornstein–Uhlenbeck toward `anchor`."""
    log_v = math.log(value) + vol_pct / 100.0 * z
    if process == "mean_reverting":
        log_v += kappa * (math.log(anchor) - math.log(value))
    return math.exp(log_v)


def news_text(shock_size: float) -> str:
    """The interest-rate announcement: a hike lowers fair value, a cut raises it."""
    if shock_size < 0:
        return (f"Central bank unexpectedly RAISES interest rates. Analysts cut the asset's fair value "
                f"by {abs(shock_size):.1f}%.")
    return (f"Central bank unexpectedly CUTS interest rates. Analysts raise the asset's fair value "
            f"by {shock_size:.1f}%.")


def intent_to_action(intent: OrderIntent | None, view: TraderView) -> dict[str, Any]:
    """A scripted intent made valid: quantities clipped to what the trader can commit, else hold."""
    hold = {"side": "hold", "price": 0, "qty": 0}
    if intent is None or intent.price is None:
        return hold
    side = intent.side.value
    price = int(min(max(intent.price, 1), view.max_price))
    if view.role == "buyer" and side != "buy" or view.role == "seller" and side != "sell":
        return hold
    qty = affordable(side, price, int(intent.qty), view)
    return {"side": side, "price": price, "qty": qty} if qty > 0 else hold


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


# ---------------------------------------------------------------- the environment


@register
class MarketEnv(Environment):
    name = "market"
    phases = ("news", "orders", "clear")
    Config = MarketConfig
    reads_events = False  # outcome and artifacts come from the book and fills, never the event log
    memory_importance = {"news": 9, "trade": 6, "dividend": 4, "endowment": 8, "reject": 3, "order": 2,
                         "cancel": 1, "expire": 1, "market_open": 5}

    metrics = (
        MetricSpec("last_price", "Last trade price", "cents", "prices"),
        MetricSpec("mid", "Mid quote", "cents", "prices"),
        MetricSpec("fundamental", "Fundamental value", "cents", "prices", doc="asset setup only"),
        MetricSpec("spread", "Bid-ask spread", "cents", "liquidity", False),
        MetricSpec("bid_depth", "Bid depth", "units", "liquidity"),
        MetricSpec("ask_depth", "Ask depth", "units", "liquidity"),
        MetricSpec("volume", "Volume", "units per tick", "activity"),
        MetricSpec("n_trades", "Trades", "trades per tick", "activity"),
        MetricSpec("ret", "Log return", "log points", "activity"),
        MetricSpec("efficiency", "Allocative efficiency", "share of max surplus", "welfare", True,
                   doc="realised / maximum surplus (induced setup only)"),
        MetricSpec("gini", "Wealth Gini", "0-1", "welfare", False),
        MetricSpec("usd", "Compute spend", "USD", "compute", False),
        MetricSpec("efficiency", "Final allocative efficiency", "share of max surplus", "outcome", True, "outcome"),
        MetricSpec("surplus_per_usd", "Surplus per USD", "surplus / USD", "outcome", True, "outcome",
                   "realised surplus per USD of compute (undefined when nothing was spent)"),
        MetricSpec("wealth_gini", "Final wealth Gini", "0-1", "outcome", False, "outcome"),
        MetricSpec("n_trades", "Trades", "trades", "outcome", None, "outcome"),
        MetricSpec("return_autocorr", "Return autocorrelation (lag 1)", "correlation", "outcome", None, "outcome"),
        MetricSpec("excess_kurtosis", "Excess kurtosis of returns", "", "outcome", None, "outcome"),
    )

    # one-line meanings of outcome keys that are not declared metrics (`agora report`, docs/reports.md)
    glossary = {
        "setup": "market setup: induced (Gode-Sunder values and costs) or asset (fundamental, dividends, shock)",
        "n_traders": "traders in the market", "volume": "units traded over the run",
        "abs_return_autocorr": "lag-1 autocorrelation of absolute log returns (volatility clustering when > 0)",
        "tail_index": "Hill estimate of the tail index of absolute returns (smaller: fatter tails)",
        "conserved": "cash and units were conserved by every trade (accounting check)",
        "realised_surplus": "buyers' values minus sellers' costs over executed trades (induced setup)",
        "max_surplus": "largest surplus the induced values and costs allow (competitive equilibrium)",
        "dividends_paid": "cash paid as dividends over the run, cents (asset setup)",
        "event_study": "price reaction to the shock (asset setup with a shock; null otherwise)",
        "event_study.pre_mean": "event study: mean trade price in the window before the shock, cents",
        "event_study.post_mean": "event study: mean trade price in the window from the shock on, cents",
        "event_study.change_pct": "event study: post-shock mean price vs pre-shock mean, percent",
        "event_study.sign": "event study: sign of the price change (+1, -1, 0 if none or undetermined)",
        "event_study.shock_tick": "event study: tick of the interest-rate announcement",
        "event_study.shock_size_pct": "event study: announced shift of the fundamental, percent",
        "event_study.window": "event study: ticks compared before and after the shock",
        "event_study.sign_matches": "event study: the price moved in the shock's direction (share of runs)",
    }
    quick = ("env.n_traders=8", "env.ticks=5")
    # one order; ``stake`` scales it by the value at risk: the surplus a value-maximising order makes
    # over the mean of the valid wrong ones (each as if filled at its limit price), in dollars (prices
    # are cents): a trader whose unit is worth much, or who could overpay a lot, has more at stake
    stakes = {"order": 1.0}

    @classmethod
    def population(cls, env_cfg: dict) -> int | None:
        return env_cfg.get("n_traders")

    @classmethod
    def check_persona(cls, persona) -> str | None:
        s = persona.extra.get("strategy")
        if s and str(s) not in STRATEGY_TEXT:
            return f"persona {persona.name!r}: env.strategy={s!r}; allowed: {', '.join(STRATEGY_TEXT)}"
        return None

    @classmethod
    def cross_check(cls, cfg: dict) -> str | None:
        e = cfg["env"]
        if e["setup"] == "induced" and e["trader_policy"] not in ("zic", "ziu"):
            return (f"env.trader_policy={e['trader_policy']}: the induced setup supports zic or ziu "
                    "(momentum/fundamental need an asset with a price history and a fundamental)")
        for key in ("value_range", "cost_range"):
            lo, hi = e[key]
            if not 1 <= lo <= hi:
                return f"env.{key}={[lo, hi]}: need 1 <= low <= high"
        if e["setup"] == "asset":
            if e["fundamental_start"] >= e["max_price"]:
                return (f"env.fundamental_start={e['fundamental_start']}: must be below "
                        f"env.max_price={e['max_price']}")
        return None

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(env_cfg, seed, agent_cfg, llm_cfg)
        self.cfg = MarketConfig.model_validate(env_cfg)
        self.accounts = Accounts()
        self.book = OrderBook(self.accounts, ASSET, max_price=self.cfg.max_price)
        self.fills: list[tuple[int, int, int, int, int]] = []  # tick, price, qty, buyer idx, seller idx
        self.tick_prices: list[int] = []  # last trade price of each tick that traded
        self.values: dict[int, list[int]] = {}
        self.costs: dict[int, list[int]] = {}
        self.traded: dict[str, int] = {}
        self.surplus = 0  # realised, induced setup, updated per fill
        self.best_surplus = 0
        self.fundamental = float(self.cfg.fundamental_start)
        self.anchor = float(self.cfg.fundamental_start)
        self.bias: dict[str, float] = {}
        self.news: list[tuple[int, str]] = []
        self.dividends_paid = 0
        self._tick_fills: list[Fill] = []
        self._prev_last: int | None = None
        self._finished = False

    def __getstate__(self) -> dict:
        st = super().__getstate__()
        for k in ("_batch_static", "_policy_seeded", "_gini_at"):  # caches, rebuilt when needed
            st.pop(k, None)
        return st

    # ---- setup -----------------------------------------------------------
    def setup(self) -> None:
        c = self.cfg
        self.order = [f"t{i}" for i in range(c.n_traders)]
        self.index = {aid: i for i, aid in enumerate(self.order)}
        personas = population_for(self, c.n_traders)
        mem = (self.agent_cfg or {}).get("memory") or {}
        n_buyers = c.n_traders // 2
        if c.setup == "induced":
            market = induced_values(n_buyers, c.n_traders - n_buyers, c.units_each, tuple(c.value_range),
                                    tuple(c.cost_range), self.rng_for("induced"))
            self.values, self.costs = market.values, market.costs
            self.best_surplus = max_surplus(self.values, self.costs)
        else:
            self.book.last_price = c.fundamental_start  # opening reference price
            noise = self.rng_for("value_noise").normal(0.0, c.value_noise_pct / 100.0, c.n_traders)
        self.by_id: dict[str, Trader] = {}
        for i, (aid, persona) in enumerate(zip(self.order, personas)):
            role = ("buyer" if i < n_buyers else "seller") if c.setup == "induced" else "trader"
            a = Trader(self, aid, persona, role, mem, self.endpoint_for(role))
            a.policy = MIX_CYCLE[i % len(MIX_CYCLE)] if c.trader_policy == "mix" else c.trader_policy
            if c.trader_policy == "mix" and persona.extra.get("strategy"):  # a persona file may fix it
                problem = self.check_persona(persona)
                if problem:
                    raise ValueError(problem)
                a.policy = str(persona.extra["strategy"])
            self.by_id[aid] = a
            self.traded[aid] = 0
            if c.setup == "induced":
                cash, units = (c.max_price * c.units_each, 0) if role == "buyer" else (0, c.units_each)
            else:
                cash, units = c.endow_cash, c.endow_units
                self.bias[aid] = float(noise[i])
            self.accounts.endow(aid, cash=cash, units=units, asset=ASSET)
        self.emit("market_open", {"setup": c.setup, "traders": self.order, "max_price": c.max_price,
                                  "policies": {a.aid: a.policy for a in self.players()},
                                  "ticks": c.ticks, "order_ttl": c.order_ttl})
        for a in self.players():
            i = self.index[a.aid]
            cash, _, units, _ = self.accounts.holdings(a.aid, ASSET)
            sched = self.values.get(i) if a.role == "buyer" else self.costs.get(i)
            self.emit("endowment", {"trader": a.aid, "role": a.role, "cash": cash, "units": units,
                                    "schedule": sched, "strategy": a.policy, "risk": a.persona.risk},
                      actor=a.aid, visibility=private(a.aid))
        self._check("setup")

    def horizon(self) -> int:
        return self.cfg.ticks

    def is_done(self) -> bool:
        return self._finished

    # ---- state views -------------------------------------------------------
    def schedule_left(self, aid: str) -> int | None:
        if self.cfg.setup != "induced":
            return None
        return self.cfg.units_each - self.traded[aid]

    def view(self, aid: str) -> TraderView:
        """Resources the trader can commit now; own escrow counts when quotes are replaced."""
        cash, cash_held, units, units_held = self.accounts.holdings(aid, ASSET)
        remaining = self.schedule_left(aid)
        if self.cfg.replace_quotes:
            cash, units = cash + cash_held, units + units_held
        elif remaining is not None:
            remaining -= sum(o.remaining for o in self.book.open_orders(aid))
        role = self.by_id[aid].role
        return TraderView(cash, units, self.cfg.max_price, self.cfg.max_qty,
                          role if role in ("buyer", "seller") else None, remaining)

    def next_unit(self, aid: str) -> tuple[int | None, int | None]:
        """(next value, next cost) in the induced schedule; None once it is used up."""
        i, k = self.index[aid], self.traded[aid]
        vals, csts = self.values.get(i), self.costs.get(i)
        v = vals[k] if vals is not None and k < len(vals) else None
        c = csts[k] if csts is not None and k < len(csts) else None
        return v, c

    def perceived_value(self, aid: str) -> int:
        return max(1, int(round(self.fundamental * (1.0 + self.bias.get(aid, 0.0)))))

    # ---- phases ------------------------------------------------------------
    def phase_news(self) -> None:
        c = self.cfg
        if c.setup != "asset":
            return
        if self.tick > 1:
            z = float(self.rng_for("fundamental", self.tick).standard_normal())
            self.fundamental = fundamental_step(self.fundamental, self.anchor, c.fundamental_process,
                                                c.volatility_pct, c.mean_reversion, z)
        if c.shock_tick is not None and self.tick == c.shock_tick:
            factor = 1.0 + c.shock_size / 100.0
            self.fundamental *= factor
            self.anchor *= factor
            text = news_text(c.shock_size)
            self.news.append((self.tick, text))
            self.emit("news", {"text": text, "topic": "interest_rate", "shift_pct": c.shock_size})
        self.fundamental = min(max(self.fundamental, 1.0), float(c.max_price))

    def phase_orders(self) -> None:
        c = self.cfg
        self.book.expire(self.tick)  # nothing should be due here; clear already expired them
        self._tick_fills = []
        perm = self.rng_for("order", self.tick).permutation(c.n_traders).tolist()
        traders = [self.by_id[self.order[i]] for i in perm]
        with collector_paused():
            bulk = decide_bulk(self, traders, "order", lambda: mb.order_columns(self, traders),
                               max_tokens=c.order_tokens)
            if bulk is not None:  # every trader scripted on a direct endpoint: columns in, one batch of events out
                mb.apply_orders(self, traders, *bulk, source="scripted")
        if bulk is None:
            cls = order_model(c.max_price, c.max_qty)
            snap = self.book.snapshot(levels=c.book_levels)
            recent = [(p, q) for _, p, q, _, _ in self.fills[-c.recent_trades:]] if c.recent_trades else []

            def req(a):
                view = self.view(a.aid)
                return ActRequest(a, "order", cls, (lambda: self.observation(a, view, snap, recent)),
                                  self._fallback(a, view, cls), validate=(lambda act: check_order(act, view)),
                                  max_tokens=c.order_tokens)

            decided = act_batch(self, traders, "order", req, lambda pos: mb.order_decisions(
                self, [traders[i] for i in pos]), max_tokens=c.order_tokens)
            for a, r in zip(traders, decided):
                self.apply(a, r.action.side, int(r.action.price), int(r.action.qty), r.source)
        self._check("orders")

    def phase_clear(self) -> None:
        c = self.cfg
        for o in self.book.expire(self.tick + 1):  # not live next tick
            self.emit("expire", {"trader": o.trader, "order_id": o.id, "side": o.side.value, "price": o.price,
                                 "qty": o.qty}, actor=o.trader)
        if c.setup == "asset" and c.dividend_every and self.tick % c.dividend_every == 0:
            per_unit = int(round(self.fundamental * c.dividend_pct / 100.0))
            if per_unit > 0:
                paid = self.accounts.pay_dividend(ASSET, per_unit)
                self.dividends_paid += paid
                self.emit("dividend", {"per_unit": per_unit, "total": paid})
        snap = self.book.snapshot(levels=c.book_levels)
        self.emit("book", {"best_bid": snap.best_bid, "best_ask": snap.best_ask, "spread": snap.spread,
                           "mid": snap.mid, "bid_depth": snap.bid_depth, "ask_depth": snap.ask_depth,
                           "last": self.book.last_price})
        if self._tick_fills:
            self.tick_prices.append(self._tick_fills[-1].price)
        self._check("clear")
        done = self.tick >= c.ticks
        if c.setup == "induced" and c.stop_when_done:
            done = done or all(self.schedule_left(a) <= 0 for a in self.order)
        self._finished = done

    # ---- decisions -----------------------------------------------------------
    def observation(self, a: Trader, view: TraderView, snap, recent: list[tuple[int, int]]) -> str:
        c = self.cfg
        bids = ", ".join(f"{p}x{q}" for p, q in snap.bids) or "none"
        asks = ", ".join(f"{p}x{q}" for p, q in snap.asks) or "none"
        trades = ", ".join(f"{p}x{q}" for p, q in recent) or "none yet"
        cash, cash_held, units, units_held = self.accounts.holdings(a.aid, ASSET)
        mine = "; ".join(f"{o.side.value} {o.remaining}@{o.price}" for o in self.book.open_orders(a.aid)) or "none"
        lines = [f"Tick {self.tick} of {c.ticks}. Book bids {bids} | asks {asks}. "
                 f"Last price {self.book.last_price if self.book.last_price is not None else 'none'}. "
                 f"Recent trades (price x qty): {trades}.",
                 f"You: cash {cash} (+{cash_held} in your bids), units {units} (+{units_held} in your asks); "
                 f"open orders: {mine}."]
        if c.setup == "induced":
            v, k = self.next_unit(a.aid)
            left = self.schedule_left(a.aid)
            if a.role == "buyer":
                lines.append(f"Your next unit is worth {v} to you; you may buy {left} more." if v is not None
                             else "You have bought all your units: hold.")
            else:
                lines.append(f"Your next unit costs you {k}; you may sell {left} more." if k is not None
                             else "You have sold all your units: hold.")
        else:
            lines.append(f"Your fair-value estimate: {self.perceived_value(a.aid)}.")
            if self.news:
                lines.append("News: " + " ".join(f"(tick {t}) {txt}" for t, txt in self.news[-2:]))
        lines.append(f"Order: side buy, sell or hold; price 1-{c.max_price}; qty 1-{min(c.max_qty, 99)}. "
                     f"You can spend at most {view.cash} cash and sell at most {view.units} units.")
        return "\n".join(lines)

    def trader_obs(self, a: Trader, rng: np.random.Generator) -> TraderObs:
        """The scripted policy's view; in the asset setup ZI traders draw a side each tick and use
        their fair-value estimate as value (buyer) or cost (seller)."""
        c = self.cfg
        cash, held, units, uheld = self.accounts.holdings(a.aid, ASSET)
        if c.replace_quotes:
            cash, units = cash + held, units + uheld
        if c.setup == "induced":
            role, (v, k), perceived = a.role, self.next_unit(a.aid), None
        else:
            perceived = self.perceived_value(a.aid)
            role = "buyer" if rng.random() < 0.5 else "seller"
            v = k = perceived
        return TraderObs(trader=a.aid, tick=self.tick, max_price=c.max_price, cash=cash, units=units, role=role,
                         next_value=v if role == "buyer" else None, next_cost=k if role == "seller" else None,
                         best_bid=self.book.best_bid(), best_ask=self.book.best_ask(),
                         last_price=self.book.last_price, price_history=tuple(self.tick_prices[-50:]),
                         fundamental=perceived)

    def scripted_intent(self, a: Trader) -> OrderIntent | None:
        rng = self.rng_for("policy", self.tick, a.aid)
        obs = self.trader_obs(a, rng)
        qty = 1 + int(round(2 * a.persona.risk))  # risk-seekers trade bigger
        if a.policy == "zic":
            return zi_c(obs, rng)
        if a.policy == "ziu":
            return zi_u(obs, rng)
        if a.policy == "momentum":
            return momentum(obs, rng, window=self.cfg.momentum_window, qty=qty)
        if obs.best_bid is not None or obs.best_ask is not None:
            # Quotes are the live price; the last trade (maybe from before news) is only a
            # reference for an empty book. Otherwise a stale last price makes every value
            # trader a buyer after good news (the policy checks "cheap" first) and none sells.
            obs = replace(obs, last_price=None)
        return fundamental(obs, rng, margin=self.cfg.fundamental_margin, qty=qty)

    def _fallback(self, a: Trader, view: TraderView, cls):
        def f():
            return cls(**intent_to_action(self.scripted_intent(a), view))
        return f

    # ---- applying orders -------------------------------------------------------
    def reject(self, aid: str, reason: str) -> None:
        self.emit("reject", {"trader": aid, "reason": reason}, actor=aid, visibility=private(aid))

    def apply(self, a: Trader, side: str, price: int, qty: int, source: str) -> None:
        """Place one decision on the book; it was valid against the pre-phase state, so it is
        re-checked against the current one (earlier orders this tick may have filled ours)."""
        if side == "hold":
            return
        aid = a.aid
        if self.cfg.replace_quotes:
            for o in self.book.open_orders(aid):
                left = o.remaining  # the book zeroes it when it releases the escrow
                self.book.cancel(o.id, aid)
                self.emit("cancel", {"trader": aid, "order_id": o.id, "side": o.side.value, "price": o.price,
                                     "qty": left}, actor=aid)
        view = self.view(aid)
        qty = min(qty, affordable(side, price, qty, view))
        if qty <= 0:
            self.reject(aid, f"cannot commit a {side} at {price} any more (cash {view.cash}, units {view.units})")
            return
        res = self.book.place(aid, Side(side), qty, price, self.tick, expires_at=self.tick + self.cfg.order_ttl)
        if not res.ok:
            self.reject(aid, res.rejected.value)
            return
        self.emit("order", {"trader": aid, "side": side, "price": price, "qty": qty, "order_id": res.order.id,
                            "source": source}, actor=aid)
        for f in res.fills:
            self.record_fill(f)

    def record_fill(self, f: Fill) -> None:
        self.settle_fill(f)
        aggressor = f.buyer if f.aggressor_side is Side.BUY else f.seller
        self.emit("trade", {"buyer": f.buyer, "seller": f.seller, "price": f.price, "qty": f.qty,
                            "aggressor": f.aggressor_side.value}, actor=aggressor)

    def settle_fill(self, f: Fill) -> None:
        """A fill's effect on the run's state (schedules, surplus, the fills list); no event."""
        b, s = self.index[f.buyer], self.index[f.seller]
        if self.cfg.setup == "induced":
            for _ in range(f.qty):  # schedules are consumed one unit at a time, in order
                v, _c = self.next_unit(f.buyer)
                _v, c = self.next_unit(f.seller)
                self.surplus += (v or 0) - (c or 0)
                self.traded[f.buyer] += 1
                self.traded[f.seller] += 1
        else:
            self.traded[f.buyer] += f.qty
            self.traded[f.seller] += f.qty
        self.fills.append((self.tick, f.price, f.qty, b, s))
        self._tick_fills.append(f)

    def _check(self, where: str) -> None:
        if not self.accounts.check_conservation():
            cash, units = self.accounts.totals()
            raise ConservationError(f"tick {self.tick} {where}: cash {cash} / units {units} differ from "
                                    f"injected {self.accounts._cash_in} / {self.accounts._units_in}")

    # ---- results ---------------------------------------------------------------
    def mark_price(self) -> float:
        if self.book.last_price is not None:
            return float(self.book.last_price)
        return self.fundamental if self.cfg.setup == "asset" else 0.0

    def wealth(self) -> list[float]:
        mark = self.mark_price()
        out = []
        for aid in self.order:
            cash, ch, units, uh = self.accounts.holdings(aid, ASSET)
            out.append(cash + ch + (units + uh) * mark)
        return out

    def wealth_gini(self) -> float:
        """``gini(wealth())``, recomputed only when wealth can have moved: a fill, a dividend or a new mark
        (placing and cancelling only move cash and units between available and escrow)."""
        key = (len(self.fills), self.dividends_paid, self.mark_price())
        cached = getattr(self, "_gini_at", None)
        if cached is None or cached[0] != key:
            cached = self._gini_at = (key, mm.gini(self.wealth()))
        return cached[1]

    def usd(self) -> float:
        return self.svc.spend.usd() if self.svc is not None else 0.0

    def efficiency(self) -> float:
        if self.cfg.setup != "induced" or self.best_surplus <= 0:
            return float("nan")
        return self.surplus / self.best_surplus

    def tick_metrics(self) -> dict[str, Any]:
        snap = self.book.snapshot(levels=1)
        last = self.book.last_price if self._tick_fills or self.tick_prices else None
        ret = float("nan")
        if last is not None and self._prev_last is not None and self._prev_last > 0:
            ret = math.log(last / self._prev_last)
        if last is not None:
            self._prev_last = last
        return {
            "last_price": _num(last), "mid": _num(snap.mid), "spread": _num(snap.spread),
            "bid_depth": int(snap.bid_depth), "ask_depth": int(snap.ask_depth),
            "volume": int(sum(f.qty for f in self._tick_fills)), "n_trades": len(self._tick_fills),
            "ret": ret, "efficiency": self.efficiency(), "gini": self.wealth_gini(),
            "fundamental": self.fundamental if self.cfg.setup == "asset" else float("nan"),
            "usd": self.usd(),
        }

    def trades_frame(self) -> pl.DataFrame:
        cols = list(zip(*self.fills)) if self.fills else [[], [], [], [], []]
        return pl.DataFrame({k: list(v) for k, v in zip(("tick", "price", "qty", "buyer", "seller"), cols)},
                            schema={"tick": pl.Int64, "price": pl.Int64, "qty": pl.Int64,
                                    "buyer": pl.Int64, "seller": pl.Int64})

    @classmethod
    def report_lines(cls, summary: dict) -> list[str]:
        return report_lines(summary)

    @classmethod
    def success_value(cls, outcome) -> float | None:
        """Allocative efficiency: realised surplus as a share of the maximum (cost-of-pass: USD per unit)."""
        v = outcome.get("efficiency")
        return float(v) if isinstance(v, (int, float)) else None

    def ground_truth(self, request: ActRequest) -> Truth | None:
        """The order a value-maximising trader places now, and valid orders that lose value.

        Right: take the best quote when it is strictly profitable against the trader's value
        (its next induced value or cost, else its perceived fundamental), else quote one unit one
        tick inside its value. Wrong: hold, and one-unit orders past its value (paying more than
        it is worth, selling for less). Only orders the trader can place count.
        """
        if request.purpose != "order":
            return None
        return self._order_truth(request)[0]

    def stake(self, request: ActRequest) -> float:
        """An order's stake: the value at risk (see ``stakes``); 1.0 when there is no right order."""
        if request.purpose != "order":
            return super().stake(request)
        return self._order_truth(request)[1]

    def assess(self, request: ActRequest) -> tuple[Truth | None, float]:
        """(ground truth, stake) of a decision; an order's both from one pass over the book."""
        if request.purpose != "order":
            return super().assess(request)
        return self._order_truth(request)

    def _order_truth(self, request: ActRequest) -> tuple[Truth | None, float]:
        """(the order's ground truth with its difficulty, its stake in dollars)."""
        aid, cls = request.agent.aid, request.action_cls
        view = self.view(aid)
        v_buy, v_sell = self.next_unit(aid)
        if view.role is None:
            v_buy = v_sell = self.perceived_value(aid)
        ask, bid = self.book.best_ask(), self.book.best_bid()
        right: list = []
        wrong: list = [cls(side="hold", price=0, qty=0)]
        if view.role != "seller" and v_buy is not None:
            right.append(cls(side="buy", price=ask if ask is not None and ask < v_buy else max(1, v_buy - 1), qty=1))
            wrong += [cls(side="buy", price=p, qty=1) for p in range(v_buy + 1, view.max_price + 1, 7)]
        if view.role != "buyer" and v_sell is not None and (view.role == "seller" or view.units > 0):
            right.append(cls(side="sell", price=bid if bid is not None and bid > v_sell
                             else min(view.max_price, v_sell + 1), qty=1))
            wrong += [cls(side="sell", price=p, qty=1) for p in range(max(1, v_sell - 1), 0, -7)]
        right = [a for a in right if check_order(a, view) is None]
        wrong = [a for a in wrong if check_order(a, view) is None]
        if not right:
            return None, self.stakes["order"]

        def surplus(a) -> int:  # one unit, as if filled at its limit price
            return (v_buy - a.price) if a.side == "buy" else (a.price - v_sell) if a.side == "sell" else 0

        gains = [surplus(a) for a in right]
        at_risk = sum(gains) / len(gains) - (sum(map(surplus, wrong)) / len(wrong) if wrong else 0.0)
        # difficulty: how close the best order is to indifferent: 1 - its surplus as a share of the unit's value
        margin = max(g / max(1, v_buy if a.side == "buy" else v_sell) for a, g in zip(right, gains))
        truth = Truth(tuple(right), tuple(wrong), difficulty=min(1.0, max(0.0, 1.0 - margin)))
        return truth, max(0.0, at_risk) / 100.0

    def partial_outcome(self) -> dict[str, Any]:
        return {"setup": self.cfg.setup, "n_traders": self.cfg.n_traders, "ticks": int(self.tick),
                "n_trades": len(self.fills), "last_price": self.book.last_price}

    def outcome(self, events=None) -> dict[str, Any]:
        c = self.cfg
        trades = self.trades_frame()
        returns = mm.log_returns(trades["price"].to_list()) if trades.height else np.array([])
        usd = self.usd()
        out: dict[str, Any] = {
            "setup": c.setup, "n_traders": c.n_traders, "ticks": int(self.tick),
            "n_trades": trades.height, "volume": int(trades["qty"].sum()) if trades.height else 0,
            "last_price": self.book.last_price,
            "return_autocorr": mm.autocorr(returns, 1),
            "excess_kurtosis": mm.excess_kurtosis(returns),
            "abs_return_autocorr": mm.abs_return_autocorr(returns, 1) if returns.size else None,
            "tail_index": mm.hill_tail_index(returns, 0.1),
            "wealth_gini": mm.gini(self.wealth()),
            "usd": usd, "conserved": self.accounts.check_conservation(),
            "efficiency": None, "realised_surplus": None, "max_surplus": None, "surplus_per_usd": None,
            "event_study": None,
        }
        if c.setup == "induced":
            realised = self.surplus  # kept per fill; equals mm.realised_surplus(trades, values, costs) (tested)
            out.update(realised_surplus=realised, max_surplus=self.best_surplus,
                       efficiency=realised / self.best_surplus if self.best_surplus else None,
                       surplus_per_usd=per_usd(realised, usd))
        else:
            out.update(fundamental=self.fundamental, dividends_paid=self.dividends_paid)
            if c.shock_tick is not None and trades.height:
                series = mm.price_series(trades, ticks=list(range(1, int(self.tick) + 1)))
                es = event_study(series.select("tick", "price"), c.shock_tick, c.event_window)
                out["event_study"] = {**es, "shock_tick": c.shock_tick, "shock_size_pct": c.shock_size,
                                      "window": c.event_window,
                                      "sign_matches": (es["sign"] == math.copysign(1.0, c.shock_size)
                                                       if es["sign"] else None)}
        return json_safe(out)


# ---------------------------------------------------------------- `agora report`


def report_lines(summary: dict) -> list[str]:
    """Market lines for `agora report`: efficiency (induced) and the event study (asset)."""
    o = summary.get("outcome") or {}
    lines = [f"market ({o.get('setup', '?')}): {o.get('n_trades', 0)} trades, volume {o.get('volume', 0)}, "
             f"last price {o.get('last_price')}"]
    if o.get("efficiency") is not None:
        lines.append(f"allocative efficiency {100 * o['efficiency']:.1f}% (realised surplus "
                     f"{o.get('realised_surplus')} of max {o.get('max_surplus')})")
    if o.get("surplus_per_usd") is not None:
        lines.append(f"surplus per USD of compute: {o['surplus_per_usd']:.1f}")
    es = o.get("event_study")
    if es:
        if es.get("change_pct") is None:
            lines.append(f"event study (shock {es.get('shock_size_pct'):+.1f}% at tick {es.get('shock_tick')}): "
                         "not enough trades on one side of the shock")
        else:
            verdict = {True: "matches", False: "opposes", None: "undetermined"}[es.get("sign_matches")]
            lines.append(f"event study: shock {es['shock_size_pct']:+.1f}% at tick {es['shock_tick']}; mean price "
                         f"{es['pre_mean']:.1f} -> {es['post_mean']:.1f} ({es['change_pct']:+.1f}%), sign "
                         f"{verdict} the shock")
    if o.get("wealth_gini") is not None:
        lines.append(f"wealth gini {o['wealth_gini']:.3f}")
    return lines
