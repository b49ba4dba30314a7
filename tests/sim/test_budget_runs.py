"""Budgets inside real runs: halt ends as aborted_budget (never a win); deny falls back."""
from __future__ import annotations

import json

import polars as pl

import sim
from sim.testing.loopback import LoopbackServer

BASE = ["llm=openai", "llm.api_key_env=null", "llm.model=test-model", "env.n_players=5", "env.n_traitors=1",
        "env.discussion_passes=1", "agent.reflection.enabled=false"]


def test_halt_policy_aborts_run_and_writes_everything(tmp_path):
    with LoopbackServer() as srv:
        res = sim.run([*BASE, f"llm.base_url={srv.base_url}", f"run.dir={tmp_path}",
                       "budget.run_usd=0.0001", "budget.on_exhaust=halt"])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "aborted_budget"
    assert s["outcome"]["winner"] is None
    led = pl.read_parquet(tmp_path / "ledger.parquet")
    assert (led["outcome"] == "denied").sum() >= 1
    spent = led["cost_nano"].sum()
    assert spent <= 0.0001 * 1e9  # never overshot
    assert res.events.filter(pl.col("kind") == "budget_halt").height == 1
    assert (tmp_path / "events.parquet").exists() and (tmp_path / "metrics.parquet").exists()


def test_per_team_budget_denies_only_that_team():
    with LoopbackServer() as srv:
        res = sim.run([*BASE, f"llm.base_url={srv.base_url}", "run.dir=null", "+budget.per_team_usd.traitors=0.0",
                       "env.max_rounds=1"])
    led = res.ledger
    denied = led.filter(pl.col("outcome") == "denied")
    traitors = json.loads(res.events.filter(pl.col("kind") == "team_reveal")["payload"][0])["traitors"]
    assert denied.height > 0 and set(denied["agent"]) <= set(traitors)
    assert set(denied["denial_scope"]) == {"team:traitors"}
    ok_agents = set(led.filter(pl.col("outcome") == "ok")["agent"])
    assert ok_agents and not (ok_agents & set(traitors))
    assert res.summary["status"] == "completed"
