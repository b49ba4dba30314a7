"""Serving: the `openai` provider against real OpenAI-compatible servers.

* llama-cpp-python's own server (``python -m llama_cpp.server``) with the embedded SmolLM2 GGUF,
  started as a subprocess: one Traitors vote and night (4 players, 4 or 5 calls), metered like any remote
  endpoint (slow).
* Cached-token accounting end to end: the loopback server reports
  ``usage.prompt_tokens_details.cached_tokens``; the ledger's ``tokens_cached`` must carry exactly
  what the server reported and the cost must use the cached-input price (fast).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

import sim
from sim.testing.loopback import LoopbackServer, cached_prefix_tokens, prompt_text

KEY_ENV = "AGORA_TEST_LLAMA_SERVER_KEY"
MODEL = "smollm2-135m-instruct"
# at most one vote and one night, no talk: 4 banishment votes, then 1 murder unless the vote
# already banished the only traitor (the model's votes decide which: the test counts the vote events)
TINY_TRAITORS = ["env=traitors", "env.n_players=4", "env.n_traitors=1", "env.max_rounds=1", "env.discussion_passes=0",
                 "env.reactions=false", "env.conclave=false", "env.belief_probe=false",
                 "agent.reflection.enabled=false", "seed=3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@pytest.fixture
def llama_server(tmp_path):
    """`python -m llama_cpp.server` on a free loopback port; terminated in the finalizer."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] not installed")
    from sim.inference.providers.local import bundled_gguf

    gguf = bundled_gguf()
    port = _free_port()
    log = tmp_path / "llama_server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL,
           "--n_ctx", "2048", "--n_threads", str(min(os.cpu_count() or 2, 4)),
           "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    models = json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not ready after 90 s:\n{_tail(log)}")
                time.sleep(0.3)
        assert [m["id"] for m in models["data"]] == [MODEL]
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_game_through_openai_provider_on_llama_cpp_server(llama_server, tmp_path, monkeypatch):
    base, log = llama_server
    monkeypatch.setenv(KEY_ENV, "sk-local-test-not-a-secret")  # keys only ever come from env vars
    run_dir = tmp_path / "run"
    t0 = time.perf_counter()
    res = sim.run([*TINY_TRAITORS, "llm=openai", f"llm.base_url={base}", f"llm.model={MODEL}",
                   f"llm.api_key_env={KEY_ENV}",
                   # llama-cpp-python's server accepts response_format json_object + schema, not json_schema
                   "llm.schema_mode=json_object",
                   # one llama.cpp context serves requests one at a time: keep latency per call honest
                   "llm.concurrency=1", "llm.timeout_s=120", "llm.max_retries=1",
                   f"run.dir={run_dir}"], progress=False)
    wall = time.perf_counter() - t0
    s = res.summary
    assert s["status"] == "completed", _tail(log)
    assert s["llm"]["provider"] == "openai" and s["llm"]["is_llm"] is True

    led = pl.read_parquet(run_dir / "ledger.parquet")
    votes = res.events.filter(pl.col("kind") == "vote").height  # one model decision per vote cast
    assert votes >= 4
    sent = led.filter(~pl.col("outcome").is_in(["denied", "fallback"]))
    assert sent.height >= votes and set(sent["provider"]) == {"openai"}, led
    ok = led.filter(pl.col("outcome") == "ok")
    # real token counts from the server's usage block, not estimates
    assert ok.height and (ok["usage_source"] == "server").all()
    assert (ok["tokens_in"] > 0).all() and (ok["tokens_out"] > 0).all()
    assert (ok["cost_nano"] > 0).all() and (ok["latency_ms"] > 0).all()
    # llama-cpp-python's server does not report prompt_tokens_details.cached_tokens: recorded as 0
    assert ok["tokens_cached"].sum() == 0
    # grammar-constrained JSON (json_object + schema): most decisions are schema-valid at the first answer (no re-ask, no fallback)
    decisions = led["call_id"].n_unique()
    first_try_valid = ok.filter(pl.col("reask") == 0)["call_id"].n_unique()
    assert decisions == votes and first_try_valid / decisions >= 0.8, led.select("call_id", "purpose", "reask", "outcome", "error")
    assert s["llm"]["tokens_in"] == led["tokens_in"].sum() and s["llm"]["usd"] > 0
    # the key's value is nowhere in what the run wrote
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert b"sk-local-test-not-a-secret" not in f.read_bytes(), f
    print(f"\nllama_cpp.server game: {ok.height} ok calls, {s['llm']['tokens_in']} tokens in, "
          f"{s['llm']['tokens_out']} out, wall {wall:.1f}s")


def test_ledger_cached_tokens_come_from_server_usage():
    """The loopback server reports prefix-cache hits in usage; the ledger records exactly those."""
    with LoopbackServer() as srv:
        res = sim.run([*TINY_TRAITORS, "env.discussion_passes=1", "llm=openai", f"llm.base_url={srv.base_url}",
                       "llm.api_key_env=null", "llm.model=loop-model", "run.dir=null"], progress=False)
        reqs = srv.chat_requests
    # what the server reported: whole 4-byte blocks shared with the previous request, in arrival order
    reported, prev = [], b""
    for r in reqs:
        cur = prompt_text(r.body["messages"]).encode()
        reported.append(cached_prefix_tokens(prev, cur))
        prev = cur
    ok = res.ledger.filter(pl.col("outcome") == "ok")
    assert ok.height == len(reqs)
    assert Counter(ok["tokens_cached"].to_list()) == Counter(reported)
    assert ok["tokens_cached"].sum() > 0  # prompts share their byte-stable persona/rules prefix
    assert (ok["tokens_cached"] <= ok["tokens_in"]).all()
    assert res.summary["llm"]["tokens_cached"] == ok["tokens_cached"].sum()
    # priced at the cached-input rate: conf/llm/openai.yaml `default` = 50 / 25 / 200 nano-USD per token
    expect = (ok["tokens_in"] - ok["tokens_cached"]) * 50 + ok["tokens_cached"] * 25 + ok["tokens_out"] * 200
    assert (ok["cost_nano"] == expect).all()
