"""Scripted endpoints at zero prices take the direct path: same game, same ledger outcomes.

The layered path is forced by giving the scripted model a (shadow) price, which makes the
endpoint not free; everything a run writes must stay the same apart from the prompt
fields only the layered path fills (prompt_hash, est_tokens_in, reserved_nano).
"""
from __future__ import annotations

import asyncio

import polars as pl
from pydantic import BaseModel

import sim
from sim.config import compose, to_dict
from sim.inference.client import build_client
from sim.inference.ledger import Ledger
from sim.inference.types import CallMeta, ChatRequest
from sim.runner import Simulation
from tests.llm_configs import scripted_llm

LAYERED = ["llm.prices.scripted.input_per_mtok=1"]
KEY = ["call_id", "reask", "attempt", "tick", "phase", "agent", "purpose", "provider", "endpoint", "model",
       "tokens_in", "tokens_out", "cost_nano", "outcome", "error"]


def _runs(base):
    a = sim.run(base, progress=False)
    b = sim.run([*base, *LAYERED], progress=False)
    return a, b


def test_direct_and_layered_scripted_runs_are_identical():
    for env in (["env=traitors", "env.n_players=8", "env.n_traitors=2", "env.recruitment=true"],
                ["env=market", "env.n_traders=12", "env.ticks=4"]):
        base = ["llm=scripted", "run.dir=null", "seed=2", "agent.memory.scripted=true", *env]
        a, b = _runs(base)
        assert a.events.drop("payload").equals(b.events.drop("payload"))
        assert a.events["payload"].to_list() == b.events["payload"].to_list()
        assert a.ledger.select(KEY).equals(b.ledger.select(KEY))
        assert a.ledger.height > 0 and a.summary["outcome"] == b.summary["outcome"]


def test_scripted_agents_keep_no_memory_unless_asked():
    for extra, want in (([], False), (["agent.memory.scripted=true"], True)):
        cfg = to_dict(compose(["llm=scripted", "run.dir=null", "seed=1", "env.n_players=6", "env.n_traitors=1",
                               *extra]))
        s = Simulation(cfg, None)
        res = s.run(progress=False)
        assert any(len(a.memory) for a in s.env.players()) is want
        if not want:  # no memories -> no reflections either
            assert res.events.filter(pl.col("kind") == "reflection").height == 0


class Pick(BaseModel):
    target: str


def test_invalid_policy_action_gives_the_same_rows_on_both_paths():
    meta = CallMeta(agent="p1", purpose="vote", tick=1, phase="banish", call_id=7)
    always_bad = lambda a: "p9 is not alive"  # noqa: E731

    direct = build_client(scripted_llm(), {}, Ledger(), None)
    assert direct.endpoint("default").direct
    r1 = direct.act_direct(meta, 16, Pick, lambda: Pick(target="p9"), always_bad, reasks=1)

    priced = scripted_llm(prices={"scripted": {"input_per_mtok": "1", "cached_input_per_mtok": "0",
                                                "output_per_mtok": "0", "shadow": True}})
    layered = build_client(priced, {}, Ledger(), None)
    assert not layered.endpoint("default").direct
    req = ChatRequest(messages=(("user", "vote"),), model="scripted", max_tokens=16, meta=meta)
    with asyncio.Runner() as rn:
        r2 = rn.run(layered.act(req, Pick, lambda: Pick(target="p9"), always_bad, reasks=1))

    assert (r1.valid, r1.source, r1.reason) == (r2.valid, r2.source, r2.reason) == (False, "fallback",
                                                                                   "invalid_output")
    cols = ["call_id", "reask", "attempt", "outcome", "error", "provider"]
    assert direct.ledger.frame().select(cols).equals(layered.ledger.frame().select(cols))
    assert sorted(direct.ledger.frame()["outcome"].to_list()) == ["fallback", "invalid_output", "invalid_output"]


def test_priced_scripted_agents_also_keep_no_memory():
    """Memory follows 'the agent is scripted', not the direct-path speed-up."""
    base = ["llm=scripted", "run.dir=null", "seed=2", "env=traitors", "env.n_players=8", "env.n_traitors=2"]
    a, b = _runs(base)
    assert b.events.filter(pl.col("kind") == "reflection").height == 0
    assert a.events["payload"].to_list() == b.events["payload"].to_list()


def test_keep_scripted_memory_in_market_and_taxation():
    for env, who in ((["env=market", "env.n_traders=6", "env.ticks=2"], lambda e: e.players()),
                     (["env=taxation", "env.n_workers=5", "env.ticks=2"], lambda e: e.workers)):
        for keep in (False, True):
            cfg = to_dict(compose(["llm=scripted", "run.dir=null", "seed=1", *env,
                                   f"agent.memory.scripted={str(keep).lower()}"]))
            s = Simulation(cfg, None)
            s.run(progress=False)
            assert any(len(a.memory) for a in who(s.env)) is keep, (env[0], keep)
