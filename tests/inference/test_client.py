"""The metered client against the real loopback server: retries, act, record/replay, secrets, prices."""
from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field

from sim.inference.client import Client, build_client
from sim.inference.errors import CallFailed, ReplayMiss
from sim.inference.ledger import Ledger
from sim.inference.prices import ModelPrice, PriceTable, per_mtok_to_nano_per_token, usd_to_nano
from sim.inference.replay import ReplayStore
from sim.inference.types import CallMeta, ChatRequest, Usage
from sim.testing.loopback import LoopbackServer
from tests.llm_configs import PRICES, scripted_llm
from tests.llm_configs import openai_llm as _llm

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-secret-xyz"


class Vote(BaseModel):
    target: str
    weight: int = Field(ge=1)


def _fallback() -> Vote:
    return Vote(target="abstain", weight=1)


def _req(user: str = "hello", call_id: int = 1, agent: str = "p1", tick: int = 0, **kw) -> ChatRequest:
    kw.setdefault("max_tokens", 64)
    return ChatRequest(messages=(("user", user),), model="loop-model",
                       meta=CallMeta(agent=agent, tick=tick, phase="vote", purpose="vote", call_id=call_id), **kw)


def _run(client: Client, fn):
    """Run ``fn()`` on one Runner and close the provider's HTTP client inside that loop."""
    async def go():
        try:
            return await fn()
        finally:
            layer = client.endpoint("default").stack
            while layer is not None and not hasattr(layer, "aclose"):
                layer = getattr(layer, "inner", None)
            if layer is not None:
                await layer.aclose()

    with asyncio.Runner() as runner:
        return runner.run(go())


def _rows(client: Client, *cols: str) -> list[tuple]:
    return client.ledger.frame().select(cols).rows()


@pytest.fixture
def srv():
    with LoopbackServer(hang_s=2.0) as s:
        yield s


# ---------------------------------------------------------------- retries


def test_retries_write_one_row_per_attempt_and_only_the_ok_one_costs(srv):
    srv.script(["429", "500", "ok"])
    client = build_client(_llm(srv.base_url, schema_mode="none"), {}, Ledger(), None)
    resp = _run(client, lambda: client.complete(_req()))
    assert len(srv.chat_requests) == 3
    rows = _rows(client, "attempt", "outcome", "cost_nano")
    assert [(a, o) for a, o, _ in rows] == [(1, "rate_limited"), (2, "server_error"), (3, "ok")]
    assert [c for *_, c in rows][:2] == [0, 0]
    ok = client.ledger.frame().row(2, named=True)
    # the third identical prompt "user: hello" (11 bytes) hits 2 whole cached 4-byte blocks
    assert (ok["tokens_in"], ok["tokens_cached"]) == (3, 2)
    expected = (3 - 2) * 50 + 2 * 25 + ok["tokens_out"] * 200
    assert ok["cost_nano"] == resp.cost_nano == expected == client.budget.spent["run"]


def test_all_attempts_failing_raise_call_failed_then_act_falls_back(srv):
    srv.script(["500"] * 3)
    client = build_client(_llm(srv.base_url), {"run_usd": "1"}, Ledger(), None)
    with pytest.raises(CallFailed) as e:
        _run(client, lambda: client.complete(_req()))
    assert e.value.outcome == "server_error"
    assert client.budget.reserved["run"] == 0 and client.budget.spent["run"] == 0

    srv.script(["500"] * 3)
    res = _run(client, lambda: client.act(_req(call_id=2), Vote, _fallback))
    assert (res.action, res.valid, res.source, res.reason) == (_fallback(), False, "fallback", "server_error")
    df = client.ledger.frame().filter(call_id=2)
    assert sorted(df["outcome"].to_list()) == ["fallback"] + ["server_error"] * 3
    assert df.filter(outcome="fallback")["error"].to_list() == ["server_error"]


def test_non_retryable_error_is_not_retried_and_act_falls_back(srv):
    srv.script(["400"])
    client = build_client(_llm(srv.base_url), {}, Ledger(), None)
    res = _run(client, lambda: client.act(_req(), Vote, _fallback))
    assert len(srv.chat_requests) == 1
    assert (res.valid, res.source, res.reason) == (False, "fallback", "bad_request")
    assert sorted(client.ledger.frame()["outcome"].to_list()) == ["bad_request", "fallback"]


def test_timeout_is_a_ledger_row_then_retried(srv):
    srv.script(["timeout", "ok"])
    client = build_client(_llm(srv.base_url, timeout_s=1.0, schema_mode="none"), {}, Ledger(), None)
    resp = _run(client, lambda: client.complete(_req()))
    assert resp.text.startswith("Loopback reply")
    assert [o for (o,) in _rows(client, "outcome")] == ["timeout", "ok"]

    srv.script(["timeout"])
    client = build_client(_llm(srv.base_url, timeout_s=0.2, max_retries=0), {}, Ledger(), None)
    with pytest.raises(CallFailed) as e:
        _run(client, lambda: client.complete(_req()))
    assert e.value.outcome == "timeout"


# ---------------------------------------------------------------- act


def test_act_valid_reply_is_parsed_and_schema_sent(srv):
    client = build_client(_llm(srv.base_url), {}, Ledger(), None)
    res = _run(client, lambda: client.act(_req(), Vote, _fallback))
    # the loopback answers the minimal schema instance
    assert (res.action, res.valid, res.source) == (Vote(target="", weight=1), True, "llm")
    sent = srv.chat_requests[0].body["response_format"]["json_schema"]["schema"]
    # OpenAI strict mode: every property required, no extra ones
    assert sent == {**Vote.model_json_schema(), "additionalProperties": False, "required": ["target", "weight"]}
    assert srv.chat_requests[0].body["response_format"]["json_schema"]["strict"] is True
    assert _rows(client, "outcome", "reask") == [("ok", 0)]


def test_act_reasks_once_after_non_json_reply(srv):
    srv.script(["bad_json_content", "ok"])
    client = build_client(_llm(srv.base_url), {}, Ledger(), None)
    res = _run(client, lambda: client.act(_req(), Vote, _fallback))
    assert res.valid and res.source == "llm"
    assert _rows(client, "outcome", "reask") == [("invalid_output", 0), ("ok", 1)]
    reask_msgs = srv.chat_requests[1].body["messages"]
    assert reask_msgs[1]["role"] == "assistant" and "shifty" in reask_msgs[1]["content"]
    assert "invalid" in reask_msgs[2]["content"]


def test_act_two_bad_replies_take_the_fallback(srv):
    srv.script(["bad_json_content", "bad_json_content"])
    client = build_client(_llm(srv.base_url), {}, Ledger(), None)
    res = _run(client, lambda: client.act(_req(), Vote, _fallback))
    assert (res.action, res.valid, res.source, res.reason) == (_fallback(), False, "fallback", "invalid_output")
    assert sorted(o for (o,) in _rows(client, "outcome")) == ["fallback", "invalid_output", "invalid_output"]


def test_state_validator_rejection_triggers_the_reask():
    replies = itertools.chain(['{"target": "p9", "weight": 1}'], itertools.repeat('{"target": "p2", "weight": 2}'))
    with LoopbackServer(responder=lambda body: next(replies)) as s:
        client = build_client(_llm(s.base_url), {}, Ledger(), None)
        res = _run(client, lambda: client.act(_req(), Vote, _fallback,
                                              validate=lambda a: "p9 is not alive" if a.target == "p9" else None))
        second = s.chat_requests[1].body["messages"][-1]["content"]
    assert (res.action, res.valid) == (Vote(target="p2", weight=2), True)
    assert _rows(client, "outcome", "reask", "error") == [("invalid_output", 0, "p9 is not alive"), ("ok", 1, "")]
    assert "p9 is not alive" in second


# ---------------------------------------------------------------- record / replay

PROMPTS = [("who is shifty?", 0, "p1"), ("vote now", 1, "p2"), ("plan taxes", 2, "p3")]


def _calls(client: Client, prompts=PROMPTS):
    async def go():
        return [await client.complete(_req(u, call_id=i + 1, agent=a, tick=t)) for i, (u, t, a) in enumerate(prompts)]

    return _run(client, go)


def test_record_then_replay_without_server_is_identical(tmp_path):
    with LoopbackServer() as s:
        rec = build_client(_llm(s.base_url, schema_mode="none"), {}, Ledger(), tmp_path, cache_mode="record")
        recorded = _calls(rec)
    cache = tmp_path / "llm_cache.jsonl"
    assert len(cache.read_text().splitlines()) == 3

    # no server: the base_url points at a closed port
    rep = build_client(_llm(schema_mode="none"), {}, Ledger(), None, cache_mode="replay", replay_sources=[cache])
    replayed = _calls(rep)
    assert [r.text for r in replayed] == [r.text for r in recorded]
    assert _rows(rep, "cost_nano") == _rows(rec, "cost_nano") and sum(c for (c,) in _rows(rep, "cost_nano")) > 0
    assert rep.budget.spent["run"] == rec.budget.spent["run"]
    assert all(c for (c,) in _rows(rep, "cache_hit"))

    with pytest.raises(ReplayMiss, match=r"tick=7 .*agent=p7"):
        _calls(rep, [("never recorded", 7, "p7")])
    miss = rep.ledger.frame().filter(outcome="replay_miss")
    assert miss.select("tick", "agent").rows() == [(7, "p7")]
    assert rep.budget.reserved["run"] == 0


def test_torn_last_line_is_ignored_and_later_records_survive(tmp_path):
    with LoopbackServer() as s:
        rec = build_client(_llm(s.base_url, schema_mode="none"), {}, Ledger(), tmp_path, cache_mode="record")
        _calls(rec, PROMPTS[:2])
        cache = tmp_path / "llm_cache.jsonl"
        with open(cache, "a", encoding="utf-8") as f:
            f.write('{"key": "abc", "te')  # a run killed mid-write
        assert len(ReplayStore(sources=[cache]).data) == 2
        # a resumed run appends to the same file; its record must not be glued to the torn line
        resumed = build_client(_llm(s.base_url, schema_mode="none"), {}, Ledger(), tmp_path, cache_mode="record")
        _calls(resumed, PROMPTS[2:])
    assert len(ReplayStore(sources=[cache]).data) == 3


# ---------------------------------------------------------------- secrets


def test_api_key_never_leaks_into_ledger_cache_or_reprs(srv, tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_TEST_KEY", SECRET)
    srv.script(["500", "ok"])
    client = build_client(_llm(srv.base_url, api_key_env="AGORA_TEST_KEY"), {"run_usd": "1"}, Ledger(), tmp_path,
                          cache_mode="record")

    async def go():
        await client.complete(_req(call_id=1))
        return await client.act(_req("act", call_id=2), Vote, _fallback)

    _run(client, go)
    assert srv.chat_requests[0].headers["authorization"] == f"Bearer {SECRET}"  # the key was really used
    for row in client.ledger.frame().iter_rows():
        assert all(SECRET not in str(v) for v in row)
    assert SECRET not in (tmp_path / "llm_cache.jsonl").read_text()
    ep = client.endpoint("default")
    layer, reprs = ep.stack, [repr(client), repr(ep), json.dumps(client.state())]
    while layer is not None:
        reprs.append(repr(layer))
        layer = getattr(layer, "inner", None)
    assert all(SECRET not in r for r in reprs)


# ---------------------------------------------------------------- prices


def test_prices_are_exact_integer_nano_usd():
    assert per_mtok_to_nano_per_token("0.075", "x") == 75
    assert per_mtok_to_nano_per_token("10.000", "x") == 10_000
    assert usd_to_nano("0.0000115") == 11_500
    t = PriceTable({"m": {"input_per_mtok": "0.150", "cached_input_per_mtok": "0.075", "output_per_mtok": "0.600"}},
                   "v1")
    assert (t.models["m"].input, t.models["m"].cached_input, t.models["m"].output) == (150, 75, 600)


def test_four_decimal_price_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match=r"llm\.prices\.m\.output_per_mtok"):
        PriceTable({"m": {"input_per_mtok": "0.150", "output_per_mtok": "0.6005"}}, "v1")
    with pytest.raises(ValueError, match=r"llm\.prices\.default\.input_per_mtok"):
        build_client(_llm(prices={"default": {"input_per_mtok": "0.0755", "output_per_mtok": "1"}}), {},
                     Ledger(), None)


def test_cached_tokens_are_priced_at_the_cached_rate():
    p = ModelPrice("m", input=150, cached_input=75, output=600)
    # 60 uncached * 150 + 40 cached * 75 + 10 out * 600
    assert p.cost(Usage(prompt_tokens=100, completion_tokens=10, cached_tokens=40)) == 9000 + 3000 + 6000
    # cached tokens never exceed prompt tokens
    assert p.cost(Usage(prompt_tokens=10, completion_tokens=0, cached_tokens=50)) == 10 * 75


def test_unpriced_models_fail_at_construction_naming_them():
    prices = {"loop-model": PRICES["default"]}
    with pytest.raises(KeyError, match="nope"):
        build_client(_llm(model="nope", prices=prices), {}, Ledger(), None)
    with pytest.raises(KeyError, match="tiny"):
        build_client(_llm(prices=prices, fallback_models=["tiny"]), {}, Ledger(), None)


# ---------------------------------------------------------------- scripted


def test_scripted_provider_rows_have_zero_tokens():
    llm = yaml.safe_load((ROOT / "conf/llm/scripted.yaml").read_text())
    client = build_client(llm, {"run_usd": "0.01"}, Ledger(), None)
    req = ChatRequest(messages=(("user", "vote"),), model="scripted", max_tokens=0, meta=CallMeta(agent="p1"))
    res = _run(client, lambda: client.act(req, Vote, lambda: Vote(target="p4", weight=3)))
    assert (res.action, res.valid, res.source) == (Vote(target="p4", weight=3), True, "scripted")
    df = client.ledger.frame()
    assert df["provider"].to_list() == ["scripted"] and df["outcome"].to_list() == ["ok"]
    assert df.select("tokens_in", "tokens_cached", "tokens_out", "cost_nano").row(0) == (0, 0, 0, 0)
    assert client.budget.spent["run"] == 0


def test_llm_role_under_a_scripted_default_is_recorded(tmp_path):
    from sim.inference.replay import ReplayLayer

    scripted = scripted_llm()
    role = {k: v for k, v in _llm().items() if k not in ("cache", "max_retries")}
    client = build_client(scripted, {}, Ledger(), tmp_path, llm_by_role={"traitor": role})

    def layers(ep):
        p, out = ep.stack, []
        while p is not None:
            out.append(p)
            p = getattr(p, "inner", None)
        return out

    replay = [p for p in layers(client.endpoint("role:traitor")) if isinstance(p, ReplayLayer)]
    assert replay and replay[0].mode == "record"
    assert not [p for p in layers(client.endpoint("default")) if isinstance(p, ReplayLayer)]
    # a forced mode (replay, resume) still applies to every endpoint
    forced = build_client(scripted, {}, Ledger(), tmp_path, cache_mode="reuse", llm_by_role={"traitor": role})
    assert [p for p in layers(forced.endpoint("role:traitor")) if isinstance(p, ReplayLayer)][0].mode == "reuse"
