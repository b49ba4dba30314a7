"""The real embedded model (SmolLM2-135M GGUF via llama-cpp-python), end to end."""
from __future__ import annotations

import time

import polars as pl
import pytest

import sim
from sim.runner import load_run, replay

pytestmark = pytest.mark.slow

TINY = ["llm=local", "env.n_players=4", "env.n_traitors=1", "env.max_rounds=1", "env.discussion_passes=1",
        "env.reactions=false", "env.conclave=false", "agent.reflection.enabled=false", "seed=5"]


def test_embedded_traitors_round_then_replay(tmp_path):
    live_dir = tmp_path / "live"
    t0 = time.perf_counter()
    live = sim.run([*TINY, f"run.dir={live_dir}"], progress=False)
    live_s = time.perf_counter() - t0
    s = live.summary
    assert s["status"] == "completed"
    assert s["llm"]["is_llm"] is True and s["llm"]["provider"] == "local"
    assert s["llm"]["tokens_in"] > 0 and s["llm"]["tokens_out"] > 0 and s["llm"]["usd"] > 0
    # the prefix-sharing layout: llama.cpp serves each phase's shared prefix from its KV cache
    assert s["llm"]["tokens_cached"] > 0.3 * s["llm"]["tokens_in"]
    assert "legible_speech_share" in s["outcome"] and "belief_seat_rho" in s["outcome"]
    led = pl.read_parquet(live_dir / "ledger.parquet")
    assert set(led["provider"]) <= {"local", "scripted"} and "local" in set(led["provider"])
    assert (live_dir / "llm_cache.jsonl").stat().st_size > 0

    t1 = time.perf_counter()
    rep = replay(live_dir, tmp_path / "replay", progress=False)
    rep_s = time.perf_counter() - t1
    assert rep.events.drop("seq").equals(load_run(live_dir).events.drop("seq"))
    assert rep.ledger["cache_hit"].filter(rep.ledger["outcome"] == "ok").all()
    assert rep.summary["llm"]["usd"] == pytest.approx(s["llm"]["usd"])
    assert rep_s < live_s  # replay never calls the model
