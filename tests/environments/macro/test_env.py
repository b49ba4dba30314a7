"""The macro environment on the engine: scripted runs, small and fast."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

import sim
from environments.macro import env as mx
from environments.macro.env import MacroConfig, MacroEnv
from environments.taxation.schedule import bracket_tax_vec
from sim.config import ConfigError, compose, to_dict

BASE = ["env=macro", "llm=scripted", "run.dir=null"]
SMALL = [*BASE, "env.n_households=12", "env.months=36", "env.n_experts=3"]
ROOT = Path(__file__).resolve().parents[3]


def payloads(result, kind: str) -> list[dict]:
    ev = result.events.filter(pl.col("kind") == kind)
    return [json.loads(p) for p in ev["payload"].to_list()]


@pytest.fixture(scope="module")
def small():
    return sim.run(SMALL + ["seed=3"])


def test_metrics_have_one_row_per_month_and_annual_columns_on_year_ends(small):
    m = small.metrics
    assert m.height == 36
    ends = m.filter(pl.col("tick") % 12 == 0)
    others = m.filter(pl.col("tick") % 12 != 0)
    assert ends["year"].to_list() == [1.0, 2.0, 3.0]
    for col in ("year", "inflation", "wage_inflation", "unemployment", "real_gdp", "interest_rate"):
        assert others[col].is_nan().all(), col
    assert math.isnan(ends["inflation"][0]) and ends["inflation"][1:].is_finite().all()  # year 1 has none
    assert ends["real_gdp"].is_finite().all() and (ends["real_gdp"] > 0).all()
    assert (ends["interest_rate"] >= 0).all()


def test_propensities_on_the_grid_and_work_all_or_nothing(small):
    rows = payloads(small, "household")
    assert len(rows) == 12 * 36
    for r in rows:
        assert r["work_pct"] % 2 == 0 and 0 <= r["work_pct"] <= 100
        assert r["consume_pct"] % 2 == 0 and 0 <= r["consume_pct"] <= 100
        assert (r["income"] > 0) == r["worked"]


def test_sales_never_exceed_what_was_on_offer(small):
    m = small.metrics
    inv_before = [0.0] + m["inventory"].to_list()[:-1]
    for sold, before, made in zip(m["sales"], inv_before, m["output"]):
        assert sold <= before + made + 1e-6


def test_taxes_are_us_brackets_and_fully_rebated(small):
    rows = payloads(small, "household")
    sched = mx.tax_schedule(MacroConfig(n_households=12))
    by_month: dict[int, list[dict]] = {}
    for tick, r in zip(small.events.filter(pl.col("kind") == "household")["tick"], rows):
        by_month.setdefault(tick, []).append(r)
    for tick, hs in list(by_month.items())[:6]:
        income = np.array([h["income"] for h in hs])
        tax = np.array([h["tax"] for h in hs])
        assert tax == pytest.approx(bracket_tax_vec(income, sched), abs=0.02)
        assert hs[0]["transfer"] == pytest.approx(tax.sum() / len(hs), abs=0.02)
    for t in payloads(small, "tax"):
        assert t["conservation_ok"] is True
    assert small.summary["outcome"]["conservation_ok"] is True


def test_coin_leak_raises_conservation_error(monkeypatch):
    def leaky(incomes, coin, schedule):
        tax = bracket_tax_vec(incomes, schedule)
        return tax, 0.0, coin - tax  # revenue kept, nothing rebated

    monkeypatch.setattr(mx, "collect_and_redistribute", leaky)
    with pytest.raises(sim.runner.RunFailed) as err:
        sim.run(BASE + ["env.n_households=4", "env.months=2"])
    assert "ConservationError" in str(err.value) and "government kept" in str(err.value)


def test_goods_leak_raises_conservation_error(monkeypatch):
    def uncapped(demand, stock, order):
        return np.asarray(demand, dtype=float)  # serves every order, in stock or not


    monkeypatch.setattr(mx.rules, "serve", uncapped)
    with pytest.raises(sim.runner.RunFailed) as err:
        sim.run(BASE + ["env.n_households=4", "env.months=2", "env.initial_savings_months=3"])
    assert "ConservationError" in str(err.value) and "inventory" in str(err.value)


def test_vectorised_path_equals_the_act_seam(monkeypatch):
    """All-scripted households are decided as arrays; through act_all (scripted fallbacks) the economy is the same."""
    cfg = BASE + ["env.n_households=6", "env.months=14", "env.n_experts=2", "seed=4"]
    fast = sim.run(cfg)
    monkeypatch.setattr(MacroEnv, "_all_scripted", lambda self, agents: False)
    slow = sim.run(cfg)
    assert slow.events.filter(pl.col("kind") == "llm_call").height == 6 * 14 + 8 * 4  # decisions + 4 surveys
    assert fast.events.filter(pl.col("kind") == "llm_call").height == 0
    cols = ["price", "wage_mean", "output", "sales", "inventory", "survey_hh_inflation"]
    assert fast.metrics.select(cols).equals(slow.metrics.select(cols))
    assert payloads(fast, "household") == payloads(slow, "household")


def test_survey_metrics_quarterly_and_scored_after_a_year(small):
    m = small.metrics
    surveyed = m.filter(pl.col("survey_hh_inflation").is_not_nan())
    assert surveyed["tick"].to_list() == list(range(3, 37, 3))
    assert (surveyed["survey_dispersion_inflation"] > 0).all()
    gap = surveyed["survey_hh_inflation"] - surveyed["survey_expert_inflation"]
    assert (gap - surveyed["survey_gap_inflation"]).abs().max() < 1e-12
    scored = m.filter(pl.col("forecast_error_inflation").is_not_nan())["tick"].to_list()
    assert scored == list(range(15, 37, 3))  # forecasts of month 3 are scored at month 15, ...
    assert len(payloads(small, "forecast")) == 12 * (12 + 3)


def test_survey_off_leaves_columns_nan_and_needs_no_experts():
    r = sim.run(BASE + ["env.n_households=5", "env.months=6", "env.survey=false"])
    assert r.metrics["survey_hh_inflation"].is_nan().all()
    assert not payloads(r, "forecast")
    assert MacroEnv.population({"name": "macro", "n_households": 5, "survey": False}) == 5
    assert MacroEnv.population({"name": "macro", "n_households": 5}) == 10


def test_supply_shock_raises_prices_in_the_event_study():
    shocks = "[{month: 25, kind: supply, size: -0.5, duration: 12}]"
    r = sim.run(BASE + ["env.n_households=30", "env.months=48", "env.survey=false", f"env.shocks={shocks}", "seed=2"])
    news = payloads(r, "news")
    assert len(news) == 1 and news[0]["kind"] == "supply" and "Supply shock" in news[0]["text"]
    (es,) = r.summary["outcome"]["event_study"]
    assert es["price"]["change_pct"] > 0 and es["sign_matches"] is True
    assert any("event study: supply" in line for line in MacroEnv.report_lines(r.summary))


def test_rate_shock_moves_the_policy_rate():
    shocks = "[{month: 5, kind: rate, size: 0.04}]"
    r = sim.run(BASE + ["env.n_households=5", "env.months=8", "env.survey=false", f"env.shocks={shocks}"])
    rate = r.metrics["policy_rate"].to_list()
    assert rate[3] == pytest.approx(0.03) and rate[4] == pytest.approx(0.07)


def test_news_reaches_household_prompts():
    env = MacroEnv({"name": "macro", "n_households": 3, "shocks": [{"month": 1, "kind": "news", "text": "Big news."}]},
                   seed=1)
    env.news.append((1, "Big news."))
    env.tick = 1
    env.wage, env.wealth, env.price, env.p0 = np.ones(3) * 10, np.zeros(3), 10.0, 10.0
    assert "News: Big news." in env.observation(0)


def test_bad_shock_month_is_one_config_line():
    with pytest.raises(ConfigError, match=r"env.shocks\[0\].month=99"):
        compose(BASE + ["env.months=12", "env.shocks=[{month: 99, kind: demand, size: 0.1}]"])
    with pytest.raises(ConfigError, match="kind"):
        compose(BASE + ["env.shocks=[{month: 2, kind: meteor}]"])


def test_buffer_stock_and_mix_rules_run():
    for rule in ("buffer_stock", "mix"):
        r = sim.run(BASE + ["env.n_households=8", "env.months=24", f"env.scripted_rule={rule}"])
        assert r.summary["status"] == "completed" and r.summary["outcome"]["conservation_ok"]


def test_commented_defaults_in_yaml_match_the_model():
    """conf/env/macro.yaml shows defaults as comments; they must be the model's own values."""
    d = to_dict(compose(["llm=scripted", "env=macro"]))["env"]
    checked = 0
    for line in (ROOT / "conf" / "env" / "macro.yaml").read_text().splitlines():
        m = re.match(r"^# ([a-z_]+): (.*)$", line)
        if not m or m.group(1) not in d:
            continue
        value = yaml.safe_load(m.group(2).split("  #")[0].strip())
        assert d[m.group(1)] == value, f"{m.group(1)} shows {value!r} but the model default is {d[m.group(1)]!r}"
        checked += 1
    assert checked == len(MacroConfig.model_fields) - 1  # every key but name


def test_ground_truth_is_the_composite_choice():
    from sim.engine import ActRequest

    env = MacroEnv({"name": "macro", "n_households": 3, "scripted_rule": "buffer_stock"}, seed=1)
    env.wage, env.wealth, env.price, env.rate = np.array([10.0, 10.0, 10.0]), np.array([0.0, 1e6, 50.0]), 10.0, 0.03
    env.index = {"h001": 0, "h002": 1, "h003": 2}

    class A:  # the agent as the request carries it
        aid = "h002"

    truth = env.ground_truth(ActRequest(A(), "decide", mx.Decision, "", lambda: None))
    w, k = env.composite_choice(1)
    assert [(d.work_pct, d.consume_pct) for d in truth.right] == [(round(100 * w), round(100 * k))]
    assert w < 1.0  # a rich household may stay home
    assert len(truth.wrong) in (120, 121) and all(not truth.is_right(d) for d in truth.wrong)
    assert env.ground_truth(ActRequest(A(), "forecast", mx.Forecast, "", lambda: None)) is None


def test_composite_spends_from_realised_pay_as_econagent():
    """complex_actions draws l first, then consumption (P / (savings + l z))^beta: a household that stays
    home spends from savings alone. (Spending from expected pay, savings + p_w z, was a divergence.)"""
    from environments.macro import baselines as bl
    from environments.macro.rules import snap

    env = MacroEnv({"name": "macro", "n_households": 20}, seed=5)
    env.tick, env.rate, env.price = 1, 0.03, 1000.0
    env.wage = np.full(20, 10.0)
    z = 168 * env.wage
    env.wealth = 5 * z  # work propensity (1 / 5.15)^0.1 -> 0.84: some stay home
    env.rule, env.perm_income = np.zeros(20, dtype=int), z.copy()
    work, consume = env.scripted_propensities()
    worked = env.work_draws() < work
    assert worked.any() and not worked.all()
    assert consume == pytest.approx(snap((env.price / (env.wealth + worked * z)) ** 0.1))
    old = snap((env.price / (env.wealth + work * z)) ** 0.1)
    assert (consume[~worked] > old[~worked]).all()  # staying home: a larger share of a smaller sum
    for i in range(20):  # the oracle's truth is the same choice
        assert env.composite_choice(i) == pytest.approx((work[i], consume[i]))
    assert bl.composite_work(z, env.wealth, env.rate) == pytest.approx(work)
