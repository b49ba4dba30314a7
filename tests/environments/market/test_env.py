"""The market on the engine: scripted runs, conservation, efficiency, determinism, fallbacks,
the news-shock event study, config errors; plus the env's pure helpers."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

import sim
from environments.market.actions import OrderAction, TraderView, affordable, check_order, order_model
from environments.market.book import Side
from environments.market.env import (
    ConservationError,
    MarketEnv,
    fundamental_step,
    intent_to_action,
    json_safe,
    memorable,
    news_text,
    report_lines,
)
from environments.market.policies import OrderIntent
from sim.config import ConfigError, compose, to_dict
from sim.runner import RunFailed, run_config

BASE = ["env=market", "llm=scripted", "run.dir=null"]


def _payloads(events: pl.DataFrame, kind: str) -> list[dict]:
    return [json.loads(p) for p in events.filter(pl.col("kind") == kind)["payload"]]


# ---------------------------------------------------------------- pure helpers


VIEW = TraderView(cash=300, units=2, max_price=200, max_qty=5)


@pytest.mark.parametrize("action, needle", [
    (OrderAction(side="hold"), None),
    (OrderAction(side="buy", price=100, qty=3), None),  # exactly affordable: 300
    (OrderAction(side="buy", price=101, qty=3), "cannot afford"),
    (OrderAction(side="buy", price=0, qty=1), "price must be"),
    (OrderAction(side="buy", price=201, qty=1), "price must be"),
    (OrderAction(side="sell", price=50, qty=3), "cannot sell 3"),
    (OrderAction(side="sell", price=50, qty=6), "qty must be"),
])
def test_check_order_against_state(action, needle):
    msg = check_order(action, VIEW)
    assert (msg is None) if needle is None else (needle in msg)


def test_check_order_roles_and_schedule():
    buyer = TraderView(cash=1000, units=0, max_price=200, max_qty=5, role="buyer", remaining=1)
    assert "only buy" in check_order(OrderAction(side="sell", price=5, qty=1), buyer)
    assert "exceeds the 1 units" in check_order(OrderAction(side="buy", price=5, qty=2), buyer)
    assert check_order(OrderAction(side="buy", price=5, qty=1), buyer) is None


def test_order_model_bounds_schema_and_caches():
    cls = order_model(150, 4)
    assert order_model(150, 4) is cls
    props = cls.model_json_schema()["properties"]
    assert props["price"]["maximum"] == 150 and props["qty"]["maximum"] == 4
    cls.model_json_schema()["properties"]["price"]["maximum"] = 1  # callers may mutate a copy
    assert cls.model_json_schema()["properties"]["price"]["maximum"] == 150
    with pytest.raises(ValueError):
        cls(side="buy", price=151, qty=1)


def test_affordable_and_intent_clipping():
    assert affordable("buy", 100, 5, VIEW) == 3
    assert affordable("sell", 10, 5, VIEW) == 2
    assert intent_to_action(OrderIntent(Side.BUY, 100, 5), VIEW) == {"side": "buy", "price": 100, "qty": 3}
    assert intent_to_action(OrderIntent(Side.BUY, 400, 1), VIEW) == {"side": "buy", "price": 200, "qty": 1}
    broke = TraderView(cash=50, units=0, max_price=200, max_qty=5)
    assert intent_to_action(OrderIntent(Side.BUY, 60, 1), broke)["side"] == "hold"
    assert intent_to_action(None, VIEW)["side"] == "hold"
    seller = TraderView(cash=0, units=3, max_price=200, max_qty=5, role="seller", remaining=3)
    assert intent_to_action(OrderIntent(Side.BUY, 10, 1), seller)["side"] == "hold"


def test_fundamental_step_processes():
    assert fundamental_step(100.0, 100.0, "random_walk", 1.0, 0.5, 0.0) == pytest.approx(100.0)
    assert fundamental_step(100.0, 100.0, "random_walk", 1.0, 0.5, 1.0) == pytest.approx(100 * math.exp(0.01))
    # mean reversion pulls half the log gap back toward the anchor with kappa=0.5
    assert fundamental_step(121.0, 100.0, "mean_reverting", 0.0, 0.5, 0.0) == pytest.approx(110.0)
    assert "RAISES" in news_text(-10) and "CUTS" in news_text(5)


def test_memorable_keeps_own_fills_and_news_only():
    trade = {"kind": "trade", "actor": "t2", "payload": '{"buyer":"t1","seller":"t2","price":5,"qty":1}'}
    assert memorable(trade, "t1") and memorable(trade, "t2")
    assert not memorable(trade, "t12")  # "t1" is no prefix match
    assert memorable({"kind": "news", "actor": "engine", "payload": "{}"}, "t9")
    assert memorable({"kind": "order", "actor": "t3", "payload": "{}"}, "t3")
    assert not memorable({"kind": "order", "actor": "t4", "payload": "{}"}, "t3")
    assert not memorable({"kind": "book", "actor": "engine", "payload": "{}"}, "t3")


def test_json_safe_and_report_lines():
    assert json_safe({"a": float("nan"), "b": [np.float64(1.5), float("inf")]}) == {"a": None, "b": [1.5, None]}
    lines = report_lines({"outcome": {"setup": "asset", "n_trades": 3, "volume": 4, "last_price": 90,
                                      "event_study": {"pre_mean": 100.0, "post_mean": 90.0, "change_pct": -10.0,
                                                      "sign": -1.0, "shock_tick": 5, "shock_size_pct": -10.0,
                                                      "sign_matches": True}}})
    assert any("-10.0%" in s and "matches" in s for s in lines)
    lines = report_lines({"outcome": {"setup": "induced", "efficiency": 0.9512, "realised_surplus": 951,
                                      "max_surplus": 1000}})
    assert any("95.1%" in s for s in lines)
    assert report_lines({}) and report_lines({"outcome": {"event_study": {"change_pct": None,
                                                                          "shock_size_pct": 5.0,
                                                                          "shock_tick": 2}}})


# ---------------------------------------------------------------- runs on the engine


def test_scripted_100_traders_conserve_and_emit_events():
    r = sim.run([*BASE, "env.n_traders=100", "seed=3"])
    assert r.status == "completed" and r.summary["ticks"] == 10
    o = r.summary["outcome"]
    assert o["conserved"] is True and o["n_trades"] > 0
    kinds = set(r.events["kind"].to_list())
    assert {"order", "trade", "cancel", "book", "news", "dividend", "endowment"} <= kinds
    trades = _payloads(r.events, "trade")
    assert sum(t["qty"] for t in trades) == o["volume"]
    assert all(t["buyer"] != t["seller"] for t in trades)
    # dividends: every unit (10 each) paid at ticks 5 and 10
    divs = _payloads(r.events, "dividend")
    assert [d["total"] for d in divs] == [d["per_unit"] * 100 * 10 for d in divs] and len(divs) == 2
    assert r.metrics.height == 10
    assert {"last_price", "mid", "spread", "bid_depth", "ask_depth", "volume", "n_trades", "ret",
            "efficiency", "gini", "usd"} <= set(r.metrics.columns)
    assert int(r.metrics["n_trades"].sum()) == o["n_trades"]
    assert r.summary["llm"]["usd"] == 0.0 and o["surplus_per_usd"] is None
    json.dumps(r.summary, allow_nan=False)  # strict JSON: None, never NaN


def test_conservation_violation_raises(monkeypatch):
    original = MarketEnv.phase_orders

    def leak(self):  # a bug that mints one cent before the orders phase's own check
        self.accounts.cash[self.order[0]] += 1
        original(self)

    monkeypatch.setattr(MarketEnv, "phase_orders", leak)
    with pytest.raises(RunFailed) as e:
        sim.run([*BASE, "env.ticks=2"])
    assert isinstance(e.value.error, ConservationError)  # not chained: the message may quote a key
    assert e.value.result.summary["status"] == "failed"


def _efficiency(policy: str, seed: int) -> float:
    r = sim.run([*BASE, "env.setup=induced", f"env.trader_policy={policy}", "env.n_traders=20",
                 "env.ticks=25", f"seed={seed}"])
    o = r.summary["outcome"]
    # the per-tick cumulative series ends at the outcome's value
    assert r.metrics["efficiency"][-1] == pytest.approx(o["efficiency"])
    assert o["realised_surplus"] <= o["max_surplus"] and o["conserved"]
    return o["efficiency"]


def test_zic_efficiency_high_and_above_ziu():
    zic = [_efficiency("zic", s) for s in (0, 1)]
    ziu = [_efficiency("ziu", s) for s in (0, 1)]
    assert min(zic) > 0.85
    assert np.mean(zic) > np.mean(ziu) + 0.3


def test_same_seed_same_events_other_seed_differs():
    args = [*BASE, "env.n_traders=12", "env.ticks=8"]
    a, b, c = sim.run([*args, "seed=5"]), sim.run([*args, "seed=5"]), sim.run([*args, "seed=6"])
    assert a.events.equals(b.events)
    assert a.metrics.equals(b.metrics)
    assert not a.events.filter(pl.col("kind") == "trade").equals(c.events.filter(pl.col("kind") == "trade"))


def test_unaffordable_llm_order_falls_back_to_scripted():
    cfg = to_dict(compose(["env=market", "llm=langchain", "env.n_traders=2", "env.ticks=2", "env.endow_cash=500",
                           "run.dir=null"]))
    cfg["llm"]["class_kwargs"] = {"reply": '{"side": "buy", "price": 200, "qty": 5}'}  # 1000 > 500 cash
    cfg["llm"]["cache"]["mode"] = "off"
    r = run_config(cfg, progress=False)
    led = r.ledger
    assert (led["outcome"] == "invalid_output").sum() == 2 * 2 * 2  # ask + re-ask, 2 traders, 2 ticks
    assert any("cannot afford" in e for e in led["error"].to_list())
    fb = _payloads(r.events, "fallback")
    assert len(fb) == 4 and all(f["reason"] == "invalid_output" for f in fb)
    orders = _payloads(r.events, "order")
    assert all(o["source"] == "fallback" for o in orders)
    assert r.summary["outcome"]["conserved"]


@pytest.mark.parametrize("size", [-10.0, 10.0])
def test_shock_event_study_sign_follows_news(size):
    r = sim.run([*BASE, "env.trader_policy=fundamental", "env.n_traders=30", "env.ticks=20", "env.shock_tick=10",
                 f"env.shock_size={size}", "env.order_ttl=2", "seed=1"])
    es = r.summary["outcome"]["event_study"]
    assert es["sign"] == math.copysign(1.0, size) and es["sign_matches"] is True
    assert abs(es["change_pct"]) > 2.0
    news = _payloads(r.events, "news")
    assert len(news) == 1 and news[0]["shift_pct"] == size
    assert r.events.filter(pl.col("kind") == "news")["tick"].to_list() == [10]


def test_asset_without_shock_has_no_event_study():
    r = sim.run([*BASE, "env.shock_tick=null", "env.ticks=3"])
    assert r.summary["outcome"]["event_study"] is None
    assert r.events.filter(pl.col("kind") == "news").height == 0


@pytest.mark.parametrize("override, key", [
    ("env.setup=bogus", "env.setup"),
    ("env.n_traders=1", "env.n_traders"),
    ("env.ticks_max=3", "env.ticks_max"),
    ("env.value_range=[50,10]", "env.value_range"),
])
def test_bad_config_names_key(override, key):
    with pytest.raises(ConfigError) as e:
        sim.run([*BASE, override])
    assert key in str(e.value)


def test_induced_rejects_asset_only_policies():
    with pytest.raises(ConfigError, match="env.trader_policy"):
        sim.run([*BASE, "env.setup=induced", "env.trader_policy=momentum"])


def test_run_dir_checkpoints_and_report_lines(tmp_path):
    r = sim.run(["env=market", "llm=scripted", f"run.dir={tmp_path / 'm'}", "env.ticks=6", "env.shock_tick=3",
                 "env.n_traders=9"])
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["outcome"]["n_trades"] == r.summary["outcome"]["n_trades"]
    assert report_lines(summary)[0].startswith("market (asset)")


@pytest.mark.slow
def test_embedded_llm_traders_complete_and_are_metered():
    r = sim.run(["env=market", "llm=local", "env.n_traders=2", "env.ticks=2", "run.dir=null",
                 "llm.cache.mode=off"])
    assert r.status == "completed"
    assert r.summary["llm"]["tokens_in"] > 0 and r.summary["llm"]["usd"] > 0
    assert r.summary["outcome"]["conserved"] is True
    assert r.summary["outcome"]["usd"] > 0
