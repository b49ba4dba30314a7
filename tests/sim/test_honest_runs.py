"""A run never pretends to be something it was not (issue 15, section 1).

The provider is checked before a run folder is claimed; the share of model decisions the
scripted fallback answered is tracked per run, role and agent, and a run above the threshold
ends ``degraded``; a reply cut by the output cap is its own ledger outcome; the cap comes from
the action's schema. Every test here uses the real loopback server over a real socket.
"""
from __future__ import annotations

import json
import socket

import polars as pl
import pytest

import sim
from sim.cli import main
from sim.inference.caps import schema_tokens
from sim.testing.loopback import LoopbackServer, default_reply, schema_of

TINY = ["env=traitors", "env.n_players=5", "env.n_traitors=1", "env.max_rounds=1", "env.discussion_passes=1",
        "agent.reflection.enabled=false", "run.progress=off"]


def _openai(base_url: str, *more: str) -> list[str]:
    return ["llm=openai", f"llm.base_url={base_url}", "llm.model=m", "llm.max_retries=0",
            "+llm.prices.m={input_per_mtok: 1, output_per_mtok: 1}", *more]


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---------------------------------------------------------------- the provider check
def test_no_server_at_the_url_is_one_error_line_and_no_run_folder(capsys, tmp_path):
    root = tmp_path / "runs"
    rc = main(["run", *TINY, *_openai(f"http://127.0.0.1:{_closed_port()}/v1", "llm.api_key_env=null"),
               f"run.root={root}"])
    line = _error_line(capsys)
    assert rc == 2
    assert "llm.base_url=" in line and "provider check failed" in line and "refused" in line
    assert not root.exists()


def test_a_refused_key_is_one_error_line_that_never_shows_the_key(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_TEST_KEY", "sk-wrong-123456")
    root = tmp_path / "runs"
    with LoopbackServer(require_key="sk-right") as srv:
        rc = main(["run", *TINY, *_openai(srv.base_url, "llm.api_key_env=AGORA_TEST_KEY"), f"run.root={root}"])
        asked = [r.path for r in srv.requests]
    line = _error_line(capsys)
    assert rc == 2 and "HTTP 401" in line and "AGORA_TEST_KEY" in line
    assert "sk-wrong" not in line
    assert asked == ["/v1/models"]  # one cheap request, no chat call
    assert not root.exists()


def test_the_right_key_passes_the_check_and_the_run_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("AGORA_TEST_KEY", "sk-right")
    with LoopbackServer(require_key="sk-right") as srv:
        res = sim.run([*TINY, *_openai(srv.base_url, "llm.api_key_env=AGORA_TEST_KEY"), "run.dir=null"])
    assert res.status == "completed" and res.summary["llm"]["is_llm"] is True
    assert res.summary["llm"]["fallback_share"] == 0.0


def test_estimate_and_scripted_runs_need_no_server(tmp_path):
    from sim.runner import estimate

    est = estimate([*TINY, *_openai(f"http://127.0.0.1:{_closed_port()}/v1", "llm.api_key_env=null")])
    assert est["calls"] > 0
    assert sim.run([*TINY, "llm=scripted", "run.dir=null"]).status == "completed"


# ---------------------------------------------------------------- fallback share and degraded runs
def test_a_run_answered_by_fallbacks_ends_degraded_and_says_so(capsys, tmp_path):
    with LoopbackServer(responder=lambda body: "not json at all") as srv:
        rc = main(["run", *TINY, *_openai(srv.base_url, "llm.api_key_env=null"), f"run.dir={tmp_path / 'r'}"])
    out = capsys.readouterr()
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    llm = summary["llm"]
    assert summary["status"] == "degraded" and llm["degraded"] is True
    assert llm["fallback_share"] == 1.0 and llm["decisions"] == llm["fallbacks"] > 0
    assert set(llm["fallback_share_by_role"]) == {"faithful", "traitor"}
    assert all(v == 1.0 for v in llm["fallback_share_by_agent"].values()) and len(llm["fallback_share_by_agent"]) == 5
    assert llm["fallback_reasons"] == {"invalid_output": llm["fallbacks"]}
    assert all(v == 0.0 for v in llm["valid_share_by_purpose"].values())
    assert llm["is_llm"] is False
    assert "status=degraded" in out.out
    assert "DEGRADED: 100% of" in out.err and "left out of LLM aggregates" in out.err


def test_on_degraded_stop_ends_the_run_early():
    with LoopbackServer(responder=lambda body: "not json at all") as srv:
        res = sim.run([*_openai(srv.base_url, "llm.api_key_env=null"), "env=traitors", "env.n_players=6",
                       "env.n_traitors=1", "agent.reflection.enabled=false", "run.progress=off", "run.dir=null",
                       "run.on_degraded=stop"])
    assert res.status == "degraded"
    stops = res.events.filter(pl.col("kind") == "degraded")
    assert stops.height == 1 and json.loads(stops["payload"][0])["fallback_share"] == 1.0
    assert res.summary["ticks"] == 1  # the first tick's decisions were enough to stop


def test_a_few_fallbacks_below_the_threshold_keep_the_run_completed():
    faults = ["500"] + ["ok"] * 200  # the first call fails (no retries): one fallback
    with LoopbackServer() as srv:
        srv.script(faults)
        res = sim.run([*TINY, *_openai(srv.base_url, "llm.api_key_env=null"), "run.dir=null",
                       "engine.concurrency=1"])
    llm = res.summary["llm"]
    assert res.status == "completed" and llm["degraded"] is False
    assert llm["fallbacks"] == 1 and 0 < llm["fallback_share"] < 0.5
    assert llm["fallback_reasons"] == {"server_error": 1}


def test_the_threshold_is_configurable():
    with LoopbackServer() as srv:
        srv.script(["500"] + ["ok"] * 200)
        res = sim.run([*TINY, *_openai(srv.base_url, "llm.api_key_env=null"), "run.dir=null",
                       "engine.concurrency=1", "run.fallback_threshold=0"])
    assert res.status == "degraded"


# ---------------------------------------------------------------- truncation and output caps
def test_a_reply_cut_by_the_cap_is_a_truncated_row_and_counted(capsys, tmp_path):
    with LoopbackServer(fail_rate=1.0, fail_kind="length") as srv:
        rc = main(["run", *TINY, *_openai(srv.base_url, "llm.api_key_env=null"), f"run.dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err
    led = pl.read_parquet(tmp_path / "r" / "ledger.parquet")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert rc == 0
    n = led.filter(pl.col("outcome") == "truncated").height
    assert n > 0 and summary["llm"]["truncated"] == n
    assert summary["llm"]["calls"] >= n  # a cut reply was still a reply (billed)
    assert "cut by the output cap" in err


def _longest_proposal(body: dict) -> str:
    schema = schema_of(body) or {}
    props = schema.get("properties") or {}
    if any(k.startswith("bracket_") for k in props):  # the planner: every bracket at the top rate, pretty
        return json.dumps({k: max(v["enum"]) for k, v in props.items()}, indent=2)
    return default_reply(body)


@pytest.mark.parametrize("cap", [16])
def test_the_planner_cap_comes_from_its_schema_so_a_long_proposal_is_not_cut(cap):
    """planner_tokens=16 cut the 7-bracket proposal before; the cap now covers the longest valid one."""
    with LoopbackServer(responder=_longest_proposal, honour_cap=True) as srv:
        res = sim.run([*_openai(srv.base_url, "llm.api_key_env=null"), "env=taxation", "env.n_workers=3",
                       "env.ticks=3", "env.planner=llm", "env.llm_workers=false", f"env.planner_tokens={cap}",
                       "run.dir=null", "run.progress=off"])
        bodies = [r.body for r in srv.chat_requests]
    planner = [b for b in bodies if any(k.startswith("bracket_") for k in (schema_of(b) or {}).get("properties", {}))]
    assert planner, "the LLM planner was never asked"
    need = schema_tokens(schema_of(planner[0]))
    assert all(b["max_tokens"] == need > cap for b in planner)
    led = res.ledger.filter(pl.col("purpose") == "set_rates")
    assert led.filter(pl.col("outcome") == "truncated").height == 0
    assert res.summary["llm"]["valid_share_by_purpose"]["set_rates"] == 1.0
