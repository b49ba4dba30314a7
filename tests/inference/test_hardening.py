"""Hardening of the inference seam against hostile servers and files (issue 14, sections 2, 4 and 5).

Budgets hold whatever usage a server claims, every ledger row says what was reserved, a replay
cache with bad lines is read as far as it is good, and no key ever lands in a run file.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import polars as pl
import pytest
from pydantic import BaseModel

import sim
from sim.inference.client import Client, build_client
from sim.inference.errors import ReplayCacheError, ReplayMiss
from sim.inference.ledger import Ledger, totals
from sim.inference.prices import ModelPrice, bill
from sim.inference.replay import ReplayStore
from sim.inference.scrub import REDACTED, Scrubber
from sim.inference.types import CallMeta, ChatRequest, Usage
from sim.testing.loopback import OVERCLAIM_FACTOR, LoopbackServer
from tests.llm_configs import openai_llm

BUDGET_NANO = 500_000
KEY_ENV = "AGORA_HARDENING_TEST_KEY"
# not shaped like a token: only the scrub by value can catch it
KEY = "AGORA-SECRET-7f3a9c1e5b2d"


class Vote(BaseModel):
    target: str


def _fallback() -> Vote:
    return Vote(target="abstain")


def _req(call_id: int, user: str = "who is shifty?", agent: str = "p1", max_tokens: int = 64) -> ChatRequest:
    return ChatRequest(messages=(("user", f"{user} #{call_id}"),), model="loop-model", max_tokens=max_tokens,
                       meta=CallMeta(agent=agent, tick=call_id, phase="vote", purpose="vote", call_id=call_id,
                                     scopes=(f"agent:{agent}",)))


def _run(client: Client, coro_fn):
    async def go():
        try:
            return await coro_fn()
        finally:
            for ep in client.endpoints.values():
                layer = ep.stack
                while layer is not None and not hasattr(layer, "aclose"):
                    layer = getattr(layer, "inner", None)
                if layer is not None:
                    await layer.aclose()

    with asyncio.Runner() as runner:
        return runner.run(go())


def _act_all(client: Client, n: int, **kw):
    """n decisions, one phase: gathered concurrently, as the engine does."""
    async def go():
        return await asyncio.gather(*(client.act(_req(i, **kw), Vote, _fallback) for i in range(1, n + 1)))

    return _run(client, go)


# ---------------------------------------------------------------- budgets against over-claiming servers


def test_bill_never_exceeds_the_reservation():
    price = ModelPrice("m", input=50, cached_input=25, output=200)
    honest = bill(price, Usage(10, 20, 0), max_tokens=64, reserved=10 * 50 + 64 * 200)
    assert (honest.cost, honest.claimed_cost, honest.overclaim) == (10 * 50 + 20 * 200,) * 2 + (False,)
    over = bill(price, Usage(10, 64_000, 0), max_tokens=64, reserved=13_300)
    assert over.overclaim and over.usage.completion_tokens == 64
    assert over.claimed_cost == 10 * 50 + 64_000 * 200 and over.cost == 10 * 50 + 64 * 200 <= 13_300
    swollen_prompt = bill(price, Usage(10_000, 1, 0), max_tokens=64, reserved=13_300)
    assert (swollen_prompt.cost, swollen_prompt.overclaim) == (13_300, True)
    negative = bill(price, Usage(-5_000, -3, -1), max_tokens=64, reserved=13_300)
    assert (negative.cost, negative.overclaim) == (0, True)  # a negative claim never credits the budget
    # our own byte estimate (no usage from the server) is capped, never called an over-claim
    est = bill(price, Usage(10, 500, 0, "estimated"), max_tokens=64, reserved=13_300)
    assert (est.usage.completion_tokens, est.overclaim) == (64, False)


def test_overclaiming_server_cannot_push_spend_past_the_budget():
    with LoopbackServer(fail_rate=1.0, fail_kind="overclaim") as srv:
        client = build_client(openai_llm(srv.base_url, max_retries=0), {"run_usd": BUDGET_NANO / 1e9},
                              Ledger(), None)
        results = _act_all(client, 60)
    led = client.ledger.frame()
    ok = led.filter(pl.col("outcome") == "ok")
    assert ok.height > 10 and led.filter(pl.col("outcome") == "denied").height > 0
    assert all(r.valid for r in results[: ok.height])
    # the server's claim is kept, the bill is not
    assert ok["claimed_tokens_out"].to_list() == [64 * OVERCLAIM_FACTOR] * ok.height
    assert ok["tokens_out"].to_list() == [64] * ok.height
    assert (ok["claimed_cost_nano"] > ok["reserved_nano"]).all() and ok["overclaim"].all()
    assert (led["cost_nano"] <= led["reserved_nano"]).all()
    assert client.budget.spent["run"] == int(led["cost_nano"].sum()) <= BUDGET_NANO
    assert client.budget.reserved["run"] == 0
    t = totals(led)
    assert t["overclaims"] == ok.height and t["cost_nano"] <= BUDGET_NANO


def test_overclaims_replay_with_the_same_bill(tmp_path):
    with LoopbackServer(fail_rate=1.0, fail_kind="overclaim") as srv:
        rec = build_client(openai_llm(srv.base_url, max_retries=0), {"run_usd": BUDGET_NANO / 1e9}, Ledger(),
                           tmp_path, cache_mode="record")
        _act_all(rec, 40)
    rep = build_client(openai_llm(max_retries=0), {"run_usd": BUDGET_NANO / 1e9}, Ledger(), None,
                       cache_mode="replay", replay_sources=[tmp_path / "llm_cache.jsonl"])
    _act_all(rep, 40)
    cols = ["call_id", "outcome", "cost_nano", "reserved_nano", "claimed_cost_nano", "overclaim"]
    live, again = rec.ledger.frame(), rep.ledger.frame()
    assert again.select(cols).equals(live.select(cols))
    assert rep.budget.spent["run"] == rec.budget.spent["run"] <= BUDGET_NANO


def test_run_against_an_overclaiming_server_stays_in_budget_and_counts_overclaims(tmp_path):
    with LoopbackServer(fail_rate=1.0, fail_kind="overclaim") as srv:
        res = sim.run(["llm=openai", "llm.api_key_env=null", "llm.model=test-model", f"llm.base_url={srv.base_url}",
                       "env.n_players=5", "env.n_traitors=1", "env.discussion_passes=1",
                       "agent.reflection.enabled=false", f"budget.run_usd={BUDGET_NANO / 1e9}",
                       f"run.dir={tmp_path}"], progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    led = pl.read_parquet(tmp_path / "ledger.parquet")
    assert summary["llm"]["cost_nano"] == int(led["cost_nano"].sum()) <= BUDGET_NANO
    assert summary["llm"]["overclaims"] == int(led["overclaim"].sum()) > 0
    assert res.summary["llm"]["overclaims"] == summary["llm"]["overclaims"]


# ---------------------------------------------------------------- reserved_nano on every row


def test_reserved_nano_is_filled_on_every_row():
    with LoopbackServer() as srv:
        srv.script(["500", "ok", "bad_json_content", "bad_json_content", "500", "500", "500"])
        client = build_client(openai_llm(srv.base_url, max_retries=2, retry_backoff_s=0.0),
                              {"per_agent_usd": 0.00003}, Ledger(), None)

        async def go():
            out = [await client.act(_req(1), Vote, _fallback),  # 500 then ok
                   await client.act(_req(2, agent="p2"), Vote, _fallback),  # two bad replies -> fallback
                   await client.act(_req(3, agent="p3"), Vote, _fallback)]  # three 500s -> fallback
            out.append(await client.act(_req(4, agent="p3", max_tokens=400), Vote, _fallback))  # denied
            return out

        _run(client, go)
    led = client.ledger.frame()
    assert set(led["outcome"]) == {"ok", "server_error", "invalid_output", "fallback", "denied"}
    assert led["reserved_nano"].null_count() == 0 and (led["reserved_nano"] > 0).all()
    price = ModelPrice("loop-model", 50, 25, 200)
    for (call_id, reask), g in led.group_by(["call_id", "reask"]):
        est = g.filter(pl.col("outcome") != "fallback")["est_tokens_in"].max()
        assert set(g["reserved_nano"]) == {price.hold(est, g["max_tokens"][0])}, (call_id, reask)
    denied = led.filter(pl.col("outcome") == "denied").row(0, named=True)
    assert f"needs {denied['reserved_nano']} nano-USD" in denied["error"]


# ---------------------------------------------------------------- replay cache files from outside


def _record(tmp_path: Path, n: int = 3) -> tuple[Path, list[str]]:
    with LoopbackServer() as srv:
        client = build_client(openai_llm(srv.base_url, schema_mode="none"), {}, Ledger(), tmp_path,
                              cache_mode="record")

        async def go():
            return [await client.complete(_req(i)) for i in range(1, n + 1)]

        texts = [r.text for r in _run(client, go)]
    return tmp_path / "llm_cache.jsonl", texts


def _replay(cache: Path, n: int) -> tuple[Client, list[str]]:
    client = build_client(openai_llm(schema_mode="none"), {}, Ledger(), None, cache_mode="replay",
                          replay_sources=[cache])

    async def go():
        return [(await client.complete(_req(i))).text for i in range(1, n + 1)]

    return client, _run(client, go)


def test_malformed_cache_lines_are_skipped_counted_and_named(tmp_path, caplog):
    cache, texts = _record(tmp_path)
    good = cache.read_text().splitlines()
    no_text = json.loads(good[0])
    no_text["key"] = "f" * 64
    del no_text["text"]
    no_usage = json.loads(good[0])
    no_usage["key"] = "e" * 64
    del no_usage["prompt_tokens"], no_usage["completion_tokens"]
    wrong_types = json.loads(good[0])
    wrong_types["key"], wrong_types["completion_tokens"] = "d" * 64, "lots"
    lines = ["{}", good[0], "123", "null", json.dumps(no_text), good[1], good[1], json.dumps(no_usage), "[1, 2]",
             '"text"', json.dumps(wrong_types), "not json at all", good[2], good[0]]
    cache.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    with caplog.at_level(logging.WARNING, logger="agora.inference"):
        client, replayed = _replay(cache, 3)
    assert replayed == texts  # every good line still replays
    store = client.store
    malformed, repeated = [1, 3, 4, 5, 8, 9, 10, 11, 12, 15], [7, 14]
    assert store.malformed[str(cache)] == malformed and store.duplicates[str(cache)] == repeated
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "10 malformed (lines 1, 3, 4, 5, 8, 9, 10, 11, 12, 15)" in warnings[0]
    assert "2 repeating an earlier key (lines 7, 14)" in warnings[0] and str(cache) in warnings[0]


def test_a_replay_miss_is_a_one_line_value_error_naming_the_call(tmp_path):
    cache, _ = _record(tmp_path, 1)
    with pytest.raises(ValueError) as e:  # the CLI's `except ValueError` prints it as one line
        _replay(cache, 2)
    assert isinstance(e.value, ReplayMiss)
    msg = str(e.value)
    assert "\n" not in msg and "call_id=2 tick=2 phase=vote agent=p1 purpose=vote" in msg


def test_a_cache_that_cannot_be_read_is_a_value_error_naming_it(tmp_path):
    folder = tmp_path / "llm_cache.jsonl"
    folder.mkdir()
    with pytest.raises(ReplayCacheError, match="llm_cache.jsonl") as e:
        ReplayStore(sources=[folder])
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_a_torn_line_is_skipped_without_a_warning(tmp_path, caplog):
    cache, texts = _record(tmp_path, 2)
    with open(cache, "ab") as f:
        f.write(b'{"key": "abc", "te')  # a run killed mid-write
    with caplog.at_level(logging.WARNING, logger="agora.inference"):
        _, replayed = _replay(cache, 2)
    assert replayed == texts
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- secrets


def test_scrubber_removes_registered_values_and_token_shapes():
    s = Scrubber([KEY, "short", None, ""])
    text = f"key {KEY}; Authorization: Bearer abc.DEF-123; other sk-live_0123456789; ask-me task-force"
    out = s(text)
    assert KEY not in out and "abc.DEF-123" not in out and "sk-live_0123456789" not in out
    assert out == (f"key {REDACTED}; Authorization: Bearer {REDACTED}; other sk-{REDACTED}; ask-me task-force")
    assert s(out) == out  # idempotent
    assert "short" in s("a short word")  # short values would cut ordinary words; shapes still apply
    import pickle
    assert KEY.encode() not in pickle.dumps(s) and KEY not in repr(s)


def test_echoed_key_lands_in_no_ledger_row_cache_or_reply(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with LoopbackServer() as srv:
        srv.script(["echo_key", "echo_key_text", "echo_key_text"])
        client = build_client(openai_llm(srv.base_url, api_key_env=KEY_ENV, schema_mode="none"), {}, Ledger(),
                              tmp_path, cache_mode="record")

        async def go():
            out = []
            for i in (1, 2):
                try:
                    out.append((await client.complete(_req(i))).text)
                except Exception as e:  # noqa: BLE001 - the failed call's message is checked too
                    out.append(str(e))
            out.append((await client.act(_req(3), Vote, _fallback)).text)
            return out

        texts = _run(client, go)
        assert srv.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"  # the key was really sent
    led = client.ledger.frame()
    assert led.filter(pl.col("outcome") == "bad_request")["error"].str.contains("Incorrect API key").all()
    _assert_no_key_in_frame(led)
    assert all(KEY not in t for t in texts)
    assert f"Bearer {REDACTED}" in texts[1]  # the echoed header reached the agent only scrubbed
    assert KEY not in (tmp_path / "llm_cache.jsonl").read_text()


def test_key_echoed_by_the_server_lands_in_no_file_of_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with LoopbackServer() as srv:
        srv.script(["echo_key", "echo_key_text", "ok", "echo_key"] * 8)
        res = sim.run(["llm=openai", f"llm.api_key_env={KEY_ENV}", "llm.model=test-model",
                       f"llm.base_url={srv.base_url}", "llm.cache.mode=record",
                       "env.n_players=5", "env.n_traitors=1", "env.discussion_passes=1",
                       "agent.reflection.enabled=false", "env.max_rounds=1", f"run.dir={tmp_path}"], progress=False)
        assert any(r.fault == "echo_key" for r in srv.chat_requests)
    _assert_no_key_in_frame(res.ledger)
    _assert_no_key_in_frame(res.events)
    assert res.ledger["error"].str.contains(REDACTED, literal=True).any()  # the echo really came back
    checked = 0
    for f in sorted(tmp_path.rglob("*")):
        if not f.is_file() or "checkpoint" in str(f.relative_to(tmp_path)):
            continue  # a compressed snapshot of the same (scrubbed) rows; its format is the checkpoint tests'
        assert KEY.encode() not in f.read_bytes(), f
        if f.suffix == ".parquet":
            _assert_no_key_in_frame(pl.read_parquet(f))
        checked += 1
    names = {f.name for f in tmp_path.rglob("*")}
    assert {"ledger.parquet", "events.parquet", "llm_cache.jsonl"} <= names and checked > 5


def _assert_no_key_in_frame(df: pl.DataFrame) -> None:
    for col, dtype in df.schema.items():
        if dtype == pl.Utf8:
            hits = df.filter(pl.col(col).str.contains(KEY, literal=True) |
                             pl.col(col).str.contains(f"Bearer {KEY}", literal=True))
            assert hits.height == 0, (col, hits.head(2).rows())


def test_an_untyped_provider_error_is_scrubbed_in_the_summary(tmp_path, monkeypatch):
    """An error no layer knows (raised mid-run) reaches summary.json and the raised message without the key."""
    import json

    import sim
    from sim.runner import RunFailed

    secret = "sk-untyped-SECRET-0123456789"
    monkeypatch.setenv("AGORA_TEST_KEY", secret)

    def boom(self):
        raise RuntimeError(f"provider exploded with Authorization: Bearer {secret}")

    from environments.traitors.env import TraitorsEnv

    monkeypatch.setattr(TraitorsEnv, "phase_roundtable", boom)
    from sim.testing.loopback import LoopbackServer

    d = tmp_path / "r"
    with LoopbackServer() as srv, pytest.raises(RunFailed) as e:
        sim.run(["llm=scripted", "env.n_players=5", "env.n_traitors=1", f"run.dir={d}",
                 f"+agent.llm_by_role.traitor={{provider: openai, model: m, base_url: '{srv.base_url}', "
                 "api_key_env: AGORA_TEST_KEY, prices: {m: {input_per_mtok: 1, output_per_mtok: 1}}}"])
    assert secret not in str(e.value)
    summary = (d / "summary.json").read_text()
    assert secret not in summary and "RuntimeError" in json.loads(summary)["error"]
