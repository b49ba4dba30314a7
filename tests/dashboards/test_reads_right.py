"""Dashboards that read right (issue 15, section 4): order, reasons, markers, units, the same counts everywhere."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import sim
from dashboards import data, declared
from sim.cli import main
from sim.engine import MetricSpec
from sim.testing.loopback import LoopbackServer, default_reply

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
RUN = ["llm=scripted", "run.progress=off", "run.checkpoint=false"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("reads_right")
    sim.run(["env=taxation", "env.n_workers=12", "env.ticks=4", "env.period_ticks=2", *RUN, f"run.dir={r / 'tax'}"])
    sim.run(["env=market", "env.setup=asset", "env.n_traders=8", "env.ticks=8", "env.shock_tick=4",
             "env.event_window=3", *RUN, f"run.dir={r / 'asset'}"])
    # a run its budget stopped before the first belief phase: priced scripted calls, a tiny cap, halt
    sim.run(["env=traitors", "env.n_players=6", "env.n_traitors=1", "llm=scripted", "run.progress=off",
             "llm.prices.scripted.input_per_mtok=1000", "llm.prices.scripted.output_per_mtok=1000",
             "budget.run_usd=0.00001", "budget.on_exhaust=halt", f"run.dir={r / 'broke'}"])
    return r


def _app(root, monkeypatch, page: str, selection: list[str]):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AGORA_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[data.SELECTION_KEY] = selection
    at.run()
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _title(spec: dict) -> str:
    t = spec.get("title")
    return t if isinstance(t, str) else (t or {}).get("text", "")


# ---------------------------------------------------------------- order
def test_numbered_columns_stay_in_number_order_not_value_order():
    met = pl.DataFrame({"tick": [1, 2], "etr_decile_10": [0.1, 0.5], "etr_decile_02": [0.9, 0.2],
                        "etr_decile_01": [0.3, 0.4], "other": [1.0, 2.0]})
    fams = declared.numbered_families(met, [])
    assert fams == {"etr_decile": ["etr_decile_01", "etr_decile_02", "etr_decile_10"]}
    last = declared.family_last(met, fams["etr_decile"])
    assert last["member"].to_list() == ["01", "02", "10"] and last["value"].to_list() == [0.4, 0.2, 0.5]


def test_tax_rate_by_decile_bars_are_drawn_in_decile_order(root, monkeypatch):
    at = _app(root, monkeypatch, "environment", ["tax"])
    bars = [s for s in _specs(at) if _title(s).startswith("etr_decile by number")]
    assert len(bars) == 1
    assert bars[0]["encoding"]["x"]["sort"] == [f"{k:02d}" for k in range(1, 11)]


# ---------------------------------------------------------------- values and reasons
def test_a_missing_per_usd_value_says_no_spend_only_when_nothing_was_spent():
    spec = MetricSpec("surplus_per_usd", "Surplus per USD", "surplus / USD", "outcome", True, "outcome")
    assert declared.shown_outcome(spec, {"surplus_per_usd": None}, 0.0) == "n/a (no spend)"
    spent = declared.shown_outcome(spec, {"surplus_per_usd": None}, 0.000562)
    assert "no spend" not in spent and "0.000562" in spent
    rows = declared.outcome_rows([spec], {"surplus_per_usd": None}, 0.000562, "shadow USD")
    assert rows["unit"].to_list() == ["surplus / shadow USD"]


def test_trust_page_gives_the_real_reason_for_missing_beliefs(root, monkeypatch):
    summary = json.loads((root / "broke" / "summary.json").read_text())
    assert summary["status"] == "aborted_budget"
    at = _app(root, monkeypatch, "trust", ["broke"])
    text = " ".join(i.value for i in at.info)
    assert "budget ran out" in text and "belief_probe=false" not in text


def test_no_beliefs_reason_names_a_config_that_turned_them_off():
    ev = pl.DataFrame({"phase": ["roundtable"]})
    why = data.no_beliefs_reason({"status": "completed"}, {"env": {"belief_probe": False}}, ev)
    assert "env.belief_probe=false" in why


def test_asset_market_charts_mark_the_shock_and_show_the_event_study(root, monkeypatch):
    outcome = json.loads((root / "asset" / "summary.json").read_text())["outcome"]
    assert declared.event_markers(outcome) == [{"tick": 4, "label": "shock (tick 4)"}]
    at = _app(root, monkeypatch, "environment", ["asset"])
    layered = [s for s in _specs(at) if "layer" in s]
    assert layered and all(any(layer.get("mark", {}).get("type") == "rule" or layer.get("mark") == "rule"
                               for layer in s["layer"]) for s in layered)
    assert "Event study (price reaction to the shock)" in [h.value for h in at.subheader]
    assert not any("Efficiency" == _title(s) for s in _specs(at))  # undefined in an asset market: not drawn empty


# ---------------------------------------------------------------- per-dollar figures and units
def _fake_run(label: str, model: str, status: str, usd: float, value: float, unit: str) -> data.Run:
    summary = {"env": "market", "status": status, "llm": {"provider": "openai", "model": model, "usd": usd,
                                                         "usd_unit": unit, "policies": {"human": 0}},
               "outcome": {"realised_surplus": value}}
    return data.Run(Path(label), summary, pl.DataFrame(), pl.DataFrame(), pl.DataFrame())


def test_per_usd_figures_are_per_comparable_group_with_units():
    runs = [_fake_run("a", "m1", "completed", 0.5, 10.0, "USD"), _fake_run("b", "m1", "completed", 0.5, 30.0, "USD"),
            _fake_run("c", "m2", "completed", 2.0, 10.0, "USD"), _fake_run("d", "m1", "degraded", 1.0, 1.0, "USD"),
            _fake_run("e", "local", "completed", 0.0, 5.0, "shadow USD")]
    t = data.per_usd_by_group(runs, "realised_surplus", "surplus per USD")
    got = {(r["model"], r["status"]): r["surplus per USD"] for r in t.iter_rows(named=True)}
    assert got[("openai/m1", "completed")] == "40 per USD"  # (10 + 30) / (0.5 + 0.5), never with m2 or degraded
    assert got[("openai/m2", "completed")] == "5 per USD"
    assert got[("openai/m1", "degraded")] == "1 per USD"
    assert got[("openai/local", "completed")] == "n/a (no spend)"
    assert t.height == 4


def test_tokens_by_kind_and_budget_share_per_cap():
    led = pl.DataFrame({"tick": [1, 1, 2], "agent": ["p1", "p2", "p1"], "tokens_in": [100, 50, 80],
                        "tokens_cached": [40, 0, 80], "tokens_out": [10, 5, 8],
                        "cost_nano": [1_000_000_000, 500_000_000, 1_000_000_000]})
    tok = data.tokens_over_ticks(led)
    got = {(r["tick"], r["kind"]): r["tokens"] for r in tok.iter_rows(named=True)}
    assert got == {(1, "input (cached)"): 40, (1, "input (not cached)"): 110, (1, "output"): 15,
                   (2, "input (cached)"): 80, (2, "input (not cached)"): 0, (2, "output"): 8}
    caps = data.budget_caps({"budget": {"run_usd": 5.0, "per_agent_usd": 2.5, "per_team_usd": {"traitors": 1}}})
    assert caps == {"run": 5.0, "per agent (most-spent agent)": 2.5, "team traitors": 1.0}
    sh = data.budget_left_shares(led, caps)
    run = sh.filter(pl.col("cap") == "run")["share_left"].to_list()
    agent = sh.filter(pl.col("cap").str.starts_with("per agent"))["share_left"].to_list()
    assert run == pytest.approx([0.7, 0.5]) and agent == pytest.approx([0.6, 0.2])  # p1 spent 1 then 2 of 2.5


def test_shadow_prices_are_labelled_shadow_usd(root, monkeypatch):
    summary = json.loads((root / "broke" / "summary.json").read_text())  # priced scripted calls: shadow prices
    assert summary["llm"]["usd_unit"] == "shadow USD" and data.usd_unit(summary) == "shadow USD"
    at = _app(root, monkeypatch, "spend", ["broke"])
    assert any(_title(s) == "Spend per tick (shadow USD)" for s in _specs(at))


# ---------------------------------------------------------------- one count of calls, and the Runs table
def test_cli_summary_and_dashboard_count_the_same_calls(tmp_path, capsys):
    replies = iter(["not json"] * 3)

    def responder(body):  # a few invalid replies first: ok rows alone would undercount
        return next(replies, None) or default_reply(body)

    with LoopbackServer(responder=responder) as srv:
        rc = main(["run", "env=traitors", "env.n_players=5", "env.n_traitors=1", "env.max_rounds=1",
                   "env.discussion_passes=1", "agent.reflection.enabled=false", "run.progress=off", "llm=openai",
                   f"llm.base_url={srv.base_url}", "llm.api_key_env=null", "llm.model=m", "llm.max_retries=0",
                   "+llm.prices.m={input_per_mtok: 1, output_per_mtok: 1}", f"run.dir={tmp_path / 'r'}"])
    assert rc == 0
    printed = int(capsys.readouterr().out.split("calls=")[1].split()[0])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    led = pl.read_parquet(tmp_path / "r" / "ledger.parquet")
    counts = data.outcome_counts(led)
    assert printed == summary["llm"]["calls"] == counts["calls"]
    assert counts["calls"] > counts["ok"]  # the invalid replies are calls too (they were billed)
    table, _ = data.runs_table(tmp_path)
    assert table["calls"].to_list() == [printed]


def test_runs_table_has_llm_fallback_degraded_and_human_columns(root):
    table, _ = data.runs_table(root)
    for col in ("is_llm", "fallback_share", "degraded", "human_seats", "usd_unit", "truncated"):
        assert col in table.columns
    row = table.filter(pl.col("run") == "tax").row(0, named=True)
    assert row["is_llm"] is False and row["degraded"] is False and row["human_seats"] == 0
    assert row["usd_unit"] == "shadow USD"
    degraded = data.summary_row("x", {"env": "traitors", "status": "degraded",
                                      "llm": {"fallback_share": 0.9, "degraded": True}})
    assert degraded["degraded"] is True and degraded["fallback_share"] == 0.9
